/**
 * Campaign Pulse, prod environment: everything the streaming pipeline needs in
 * one project, and the job itself. See terraform/README.md for every variable,
 * role and alert, and the README's Production section for the order of
 * commands (the first apply runs with launch_job = false).
 */

provider "google" {
  project = var.project_id
  region  = var.region
}

provider "google-beta" {
  project = var.project_id
  region  = var.region
}

locals {
  env    = "prod"
  prefix = "${var.name_prefix}-${local.env}"
  labels = merge(var.labels, { app = "campaign-pulse", env = local.env })

  # A new release is a new job name, so a new job (Dataflow updates a job
  # only under its own name). modules/dataflow gives every job it creates,
  # a new release's or one launched again after a failure, its own run_id in
  # its pane rows (<job name>-<plan time>): dbt adds the two jobs' panes of a
  # window both wrote, instead of taking one job's pane for the window's
  # whole count.
  job_name_prefix = "${local.prefix}-streaming-"
  job_name        = "${local.job_name_prefix}${var.release}"

  # Pipeline flags (every name is a parameter of templates/metadata.json;
  # terraform/terraform_test.go checks). The Pub/Sub source, the BigQuery sink
  # and the Bigtable enrichment are the production choices.
  pipeline_parameters = merge({
    source            = "pubsub"
    subscriptions     = join(",", values(module.pubsub.subscription_ids))
    sink              = "bigquery"
    bq_project        = var.project_id
    bq_dataset        = module.bigquery.dataset_id
    bigtable_project  = var.project_id
    bigtable_instance = module.bigtable.instance_name
    lanes             = "1"
  }, var.pipeline_parameters)
}

module "cmek" {
  source       = "../../modules/cmek"
  project_id   = var.project_id
  kms_key_name = var.kms_key_name
}

module "pubsub" {
  source       = "../../modules/pubsub"
  project_id   = var.project_id
  name_prefix  = local.prefix
  sources      = var.sources
  kms_key_name = module.cmek.kms_key_name
  labels       = local.labels
}

module "bigtable" {
  source              = "../../modules/bigtable"
  project_id          = var.project_id
  instance_name       = "${local.prefix}-bt"
  zone                = coalesce(var.bigtable_zone, "${var.region}-b")
  max_nodes           = var.bigtable_max_nodes
  deletion_protection = var.deletion_protection
  kms_key_name        = module.cmek.kms_key_name
  labels              = local.labels
}

module "bigquery" {
  source                     = "../../modules/bigquery"
  project_id                 = var.project_id
  dataset_id                 = replace(local.prefix, "-", "_")
  location                   = coalesce(var.bigquery_location, var.region)
  deletion_protection        = var.deletion_protection
  delete_contents_on_destroy = !var.deletion_protection
  kms_key_name               = module.cmek.kms_key_name
  labels                     = local.labels
}

module "gcs" {
  source        = "../../modules/gcs"
  project_id    = var.project_id
  name_prefix   = "${var.project_id}-${local.prefix}"
  location      = var.region
  force_destroy = !var.deletion_protection
  kms_key_name  = module.cmek.kms_key_name
  labels        = local.labels
}

module "artifact_registry" {
  source        = "../../modules/artifact_registry"
  project_id    = var.project_id
  location      = var.region
  repository_id = local.prefix
  kms_key_name  = module.cmek.kms_key_name
  labels        = local.labels
}

module "iam" {
  source                       = "../../modules/iam"
  project_id                   = var.project_id
  account_id                   = "${local.prefix}-worker"
  subscription_names           = module.pubsub.subscription_names
  topic_names                  = module.pubsub.topic_names
  tracking_subscriptions       = lookup(local.pipeline_parameters, "pubsub_timestamp_attribute", "") != ""
  bigtable_instance_name       = module.bigtable.instance_name
  bigquery_dataset_id          = module.bigquery.dataset_id
  staging_bucket               = module.gcs.staging_bucket
  temp_bucket                  = module.gcs.temp_bucket
  artifact_registry_location   = var.region
  artifact_registry_repository = module.artifact_registry.repository_id
  launcher_members             = var.launcher_members
}

module "dataflow" {
  source = "../../modules/dataflow"
  count  = var.launch_job ? 1 : 0

  project_id            = var.project_id
  region                = var.region
  job_name              = local.job_name
  template_gcs_path     = "gs://${module.gcs.template_bucket}/${var.template_object}"
  parameters            = local.pipeline_parameters
  service_account_email = module.iam.worker_email
  staging_location      = "gs://${module.gcs.staging_bucket}/staging"
  temp_location         = "gs://${module.gcs.temp_bucket}/tmp"
  network               = var.network
  subnetwork            = var.subnetwork
  machine_type          = var.machine_type
  max_workers           = var.max_workers
  kms_key_name          = module.cmek.kms_key_name
  labels                = local.labels

  # The worker's roles must be in place before the launcher starts, and
  # every table with its current schema before the workers append to it:
  # the parameters name only the dataset, and an append of a column the
  # table lacks fails its bundle until the column exists. Likewise the
  # Bigtable tables: the parameters name only the instance, and a read of a
  # missing table fails Enrich's bundles until it exists.
  depends_on = [module.iam, module.bigquery, module.bigtable]
}

module "monitoring" {
  source                = "../../modules/monitoring"
  project_id            = var.project_id
  job_name              = local.job_name
  job_name_prefix       = local.job_name_prefix
  job_expected          = var.launch_job
  notification_channels = var.notification_channels
  labels                = local.labels
}
