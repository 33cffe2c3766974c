output "topic_ids" {
  description = "Source => Pub/Sub topic each marketing source publishes to."
  value       = module.pubsub.topic_ids
}

output "subscription_ids" {
  description = "Source => subscription the pipeline reads."
  value       = module.pubsub.subscription_ids
}

output "bigtable_instance" {
  description = "Bigtable instance of the enrichment tables (seed it with the enrichment seeder)."
  value       = module.bigtable.instance_name
}

output "bigquery_dataset" {
  description = "BigQuery dataset of the pipeline's tables (dbt's BigQuery target reads it)."
  value       = module.bigquery.dataset_id
}

output "bigquery_location" {
  description = "Location of the BigQuery dataset, where dbt's queries must run (DBT_BQ_LOCATION)."
  value       = module.bigquery.location
}

output "staging_bucket" {
  description = "Staging bucket (make launch's BUCKET for staging)."
  value       = module.gcs.staging_bucket
}

output "temp_bucket" {
  description = "Temp bucket."
  value       = module.gcs.temp_bucket
}

output "template_bucket" {
  description = "Template bucket: make template BUCKET=<this>."
  value       = module.gcs.template_bucket
}

output "image" {
  description = "Template image path: make template IMAGE=<this>:<tag>."
  value       = "${module.artifact_registry.image_prefix}/campaign-pulse"
}

output "worker_service_account" {
  description = "Email of the worker service account (make launch SERVICE_ACCOUNT=<this>)."
  value       = module.iam.worker_email
}

output "pipeline_parameters" {
  description = "The flags the job is launched with (for make launch PARAMETERS=...)."
  value       = local.pipeline_parameters
}

output "job_id" {
  description = "Dataflow job id, null while launch_job is false."
  value       = one(module.dataflow[*].job_id)
}

output "alert_policy_ids" {
  description = "Alert => Cloud Monitoring policy id."
  value       = module.monitoring.alert_policy_ids
}
