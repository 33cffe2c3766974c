/**
 * The Dataflow worker service account and the least privilege it needs. The
 * flex template launcher VM and every worker VM run as this account; nothing
 * here is granted on the whole project except what exists only at project
 * level: roles/dataflow.worker, and the custom role with which Dataflow
 * creates its watermark tracking subscriptions. No roles/bigquery.jobUser:
 * the sink appends through the Storage Write API, which runs no job.
 *
 * Not granted, on purpose: Pub/Sub publish (the pipeline's own dead letters go
 * to BigQuery), Bigtable writes (the seeder writes, the
 * pipeline only reads), BigQuery dataset creation or any BigQuery access
 * outside the pipeline's dataset, and any access to the template bucket (the
 * Dataflow service reads the spec with the launching user's credentials).
 *
 * Granted though the pipeline does not use it: roles/bigquery.dataEditor on
 * the dataset also lets the account create, update and delete tables in it
 * and read their rows (bigquery.tables.create, .update, .delete, .getData,
 * among others), not only append (bigquery.tables.updateData). Terraform
 * creates the tables; the pipeline only appends. A narrower custom role is
 * possible but not made here: what the Storage Write API client calls could
 * not be checked against a live project (see the grant below).
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

# The watermark tracking subscriptions, granted only when the job reads event
# time from a message attribute (var.tracking_subscriptions: the job's
# pubsub_timestamp_attribute parameter is set; by default it is not, and the
# job reads publish time). For that attribute Dataflow
# creates a second subscription per source, <subscription>__df_internal<hex>,
# on the source topic, reads it to estimate the watermark, and deletes it when
# the job ends. It does so as this account. Without these grants the job
# starts, reports healthy and reads nothing, logging "Creating watermark
# tracking pubsub subscription ... failed with error: User not authorized"
# (Dataflow's troubleshooting guide). A subscription that does not exist yet
# can be granted on only at project level, so a custom role there holds just
# the subscription permissions this needs (roles/pubsub.editor would add
# publishing and deleting every topic); attaching to a topic is granted on
# the source topics only.
resource "google_project_iam_custom_role" "tracking_subscriptions" {
  count = var.tracking_subscriptions ? 1 : 0

  project     = var.project_id
  role_id     = "dataflowTrackingSubscriptions_${replace(var.account_id, "-", "_")}"
  title       = "Dataflow watermark tracking subscriptions (${var.account_id})"
  description = "Create, read, consume and delete the tracking subscriptions Dataflow makes for a Pub/Sub timestamp attribute. See terraform/modules/iam."
  permissions = [
    "pubsub.subscriptions.consume",
    "pubsub.subscriptions.create",
    "pubsub.subscriptions.delete",
    "pubsub.subscriptions.get",
  ]
}

resource "google_project_iam_member" "tracking_subscriptions" {
  count = var.tracking_subscriptions ? 1 : 0

  project = var.project_id
  role    = google_project_iam_custom_role.tracking_subscriptions[0].id
  member  = local.worker
}

# roles/pubsub.subscriber on each source topic: its
# pubsub.topics.attachSubscription lets the tracking subscription attach.
resource "google_pubsub_topic_iam_member" "attach" {
  for_each = var.tracking_subscriptions ? var.topic_names : {}

  project = var.project_id
  topic   = each.value
  role    = "roles/pubsub.subscriber"
  member  = local.worker
}

# roles/bigtable.reader on the enrichment instance only: ReadRows for the
# user and campaign lookups. No writes.
resource "google_bigtable_instance_iam_member" "reader" {
  project  = var.project_id
  instance = var.bigtable_instance_name
  role     = "roles/bigtable.reader"
  member   = local.worker
}

# roles/bigquery.dataEditor on the pipeline's dataset only: append rows
# (the Storage Write API's default stream, pipelines/bigquery.go) to its
# existing tables, which needs bigquery.tables.updateData. The role holds
# more than that, on the whole dataset: creating, updating and deleting
# tables (and routines and models) and reading rows. No predefined role is
# narrower and still writes. A custom role on the dataset would have to hold
# bigquery.tables.updateData and whatever else the managedwriter client needs
# (it also calls GetWriteStream on the table's _default stream when it opens
# it, to find the table's location); test one on a live project before
# replacing this grant with it.
resource "google_bigquery_dataset_iam_member" "data_editor" {
  project    = var.project_id
  dataset_id = var.bigquery_dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = local.worker
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
