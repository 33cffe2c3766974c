variable "project_id" {
  description = "Project of the service account and of every resource it is granted on."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project id: 6-30 lowercase letters, digits or hyphens."
  }
}

variable "account_id" {
  description = "Id of the Dataflow worker service account (6-30 characters); its email is <account_id>@<project>.iam.gserviceaccount.com."
  type        = string
  default     = "campaign-pulse-worker"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.account_id))
    error_message = "account_id must be 6-30 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "subscription_names" {
  description = "Source name => Pub/Sub subscription name the pipeline reads (pubsub module output subscription_names). The worker may consume these and no others."
  type        = map(string)
}

variable "topic_names" {
  description = "Source name => Pub/Sub topic name of the source subscriptions (pubsub module output topic_names). Dataflow attaches its watermark tracking subscriptions to these."
  type        = map(string)
}

variable "tracking_subscriptions" {
  description = "Let the worker create, read and delete Dataflow's watermark tracking subscriptions on the source topics: needed only when the job reads event time from a message attribute (pubsub_timestamp_attribute)."
  type        = bool
  default     = false
}

variable "bigtable_instance_name" {
  description = "Bigtable instance the enrichment reads (bigtable module output instance_name)."
  type        = string
}

variable "bigquery_dataset_id" {
  description = "Dataset the pipeline writes (bigquery module output dataset_id)."
  type        = string
}

variable "staging_bucket" {
  description = "Staging bucket name (gcs module output staging_bucket)."
  type        = string
}

variable "temp_bucket" {
  description = "Temp bucket name (gcs module output temp_bucket)."
  type        = string
}

variable "artifact_registry_location" {
  description = "Region of the Artifact Registry repository holding the template image."
  type        = string
}

variable "artifact_registry_repository" {
  description = "Artifact Registry repository id holding the template image."
  type        = string
}

variable "launcher_members" {
  description = "Principals that launch the job (\"user:ops@example.com\", \"serviceAccount:ci@p.iam.gserviceaccount.com\"): they get roles/iam.serviceAccountUser on the worker account, which launching a job that runs as it requires. Empty: grant it elsewhere."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.launcher_members : can(regex("^(user|serviceAccount|group):", m))])
    error_message = "launcher_members must be IAM members such as user:a@example.com or serviceAccount:x@p.iam.gserviceaccount.com."
  }
}
