/**
 * The Dataflow worker service account and the least privilege it needs. The
 * flex template launcher VM and every worker VM run as this account; nothing
 * here is granted on the whole project except the two roles that exist only
 * at project level (roles/dataflow.worker, roles/bigquery.jobUser).
 *
 * Not granted, on purpose: Pub/Sub publish (the pipeline's own dead letters go
 * to BigQuery), Bigtable writes (the seeder writes, the
 * pipeline only reads), BigQuery dataset or table creation (Terraform creates
 * the tables), and any access to the template bucket (the Dataflow service
 * reads the spec with the launching user's credentials).
 */

resource "google_service_account" "worker" {
  project      = var.project_id
  account_id   = var.account_id
  display_name = "Campaign Pulse Dataflow worker"
  description  = "Runs the Campaign Pulse flex template launcher and workers; least privilege, see terraform/modules/iam."
}

locals {
  worker = "serviceAccount:${google_service_account.worker.email}"
}

# roles/dataflow.worker: what every Dataflow worker needs to talk to the
# Dataflow service (lease work items, report status and metrics, including the
# user counters the dead-letter alert reads, and write worker logs). Project
# level only.
resource "google_project_iam_member" "dataflow_worker" {
  project = var.project_id
  role    = "roles/dataflow.worker"
  member  = local.worker
}

# roles/pubsub.subscriber on each source subscription only: pull and ack the
# marketing events. Not on topics, not project-wide.
resource "google_pubsub_subscription_iam_member" "subscriber" {
  for_each = var.subscription_names

  project      = var.project_id
  subscription = each.value
  role         = "roles/pubsub.subscriber"
  member       = local.worker
}

# roles/pubsub.viewer on the same subscriptions: Dataflow's Pub/Sub reader
# reads the subscription's configuration (ack deadline, topic) and its backlog
# metrics before pulling.
resource "google_pubsub_subscription_iam_member" "viewer" {
  for_each = var.subscription_names

  project      = var.project_id
  subscription = each.value
  role         = "roles/pubsub.viewer"
  member       = local.worker
}

# roles/bigtable.reader on the enrichment instance only: ReadRows for the
# user and campaign lookups. No writes.
resource "google_bigtable_instance_iam_member" "reader" {
  project  = var.project_id
  instance = var.bigtable_instance_name
  role     = "roles/bigtable.reader"
  member   = local.worker
}

# roles/bigquery.dataEditor on the pipeline's dataset only: insert rows
# (Storage Write API or streaming inserts) into its existing tables.
resource "google_bigquery_dataset_iam_member" "data_editor" {
  project    = var.project_id
  dataset_id = var.bigquery_dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = local.worker
}

# roles/bigquery.jobUser on the project: BigQuery write paths that run as load
# or query jobs (file loads, bigqueryio's table checks) need to create jobs,
# and jobs exist only at project level. Grants no data access by itself.
resource "google_project_iam_member" "bigquery_job_user" {
  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = local.worker
}

# roles/storage.objectAdmin on the staging and temp buckets only: the
# launcher stages the pipeline binary, workers read it, and the job writes
# and deletes its temporary files. Not on the template bucket.
resource "google_storage_bucket_iam_member" "object_admin" {
  for_each = {
    staging = var.staging_bucket
    temp    = var.temp_bucket
  }

  bucket = each.value
  role   = "roles/storage.objectAdmin"
  member = local.worker
}

# roles/artifactregistry.reader on the template image's repository only: the
# launcher VM pulls the flex template image.
resource "google_artifact_registry_repository_iam_member" "reader" {
  project    = var.project_id
  location   = var.artifact_registry_location
  repository = var.artifact_registry_repository
  role       = "roles/artifactregistry.reader"
  member     = local.worker
}

# roles/iam.serviceAccountUser on the worker account, for whoever launches
# the job (terraform apply, make launch): running a job as an account needs it.
resource "google_service_account_iam_member" "launcher" {
  for_each = toset(var.launcher_members)

  service_account_id = google_service_account.worker.name
  role               = "roles/iam.serviceAccountUser"
  member             = each.value
}
