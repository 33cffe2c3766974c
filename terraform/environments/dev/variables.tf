variable "project_id" {
  description = "Google Cloud project everything is created in (its id, not its name or number)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project id: 6-30 lowercase letters, digits or hyphens."
  }
}

variable "region" {
  description = "Region of the Dataflow job, the buckets, the Artifact Registry repository and (unless bigquery_location says otherwise) the dataset."
  type        = string
  default     = "europe-west1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a region name such as europe-west1."
  }
}

variable "bigtable_zone" {
  description = "Zone of the Bigtable cluster, in region; null: <region>-b."
  type        = string
  default     = null
}

variable "bigquery_location" {
  description = "Location of the BigQuery dataset; null: region. A multi-region (EU, US) suits dbt users in other regions."
  type        = string
  default     = null
}

variable "name_prefix" {
  description = "Prefix of resource names; the environment is appended (campaign-pulse => campaign-pulse-dev-...)."
  type        = string
  default     = "campaign-pulse"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,17}$", var.name_prefix))
    error_message = "name_prefix must be 3-18 lowercase letters, digits or hyphens, starting with a letter: the longest names made from it (<prefix>-prod-worker, the service account id, and the Bigtable cluster <prefix>-prod-bt-c1) must stay within 30 characters."
  }
}

variable "sources" {
  description = "Marketing sources, one Pub/Sub topic and subscription each (the event contract's platforms by default)."
  type        = list(string)
  default     = ["google_ads", "meta", "tiktok", "linkedin", "x", "youtube"]
}

variable "launch_job" {
  description = "Launch the streaming job. False (the default) for the first apply: the template bucket and the image repository must exist before make template can publish the template the job starts from; then true."
  type        = bool
  default     = false
}

variable "release" {
  description = "Names this launch of the job, which runs as <name_prefix>-<env>-streaming-<release>. To ship a new version: make template, then terraform apply -var release=<a new value> (such as make template's tag). The new name replaces the job (the old one drains first), and the new job's pane rows carry its name as their run_id, so dbt adds both jobs' panes of a window they both wrote. Replacing the job under the same name would let dbt take one job's pane of such a window for its whole count."
  type        = string
  default     = "r1"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,22}[a-z0-9])?$", var.release))
    error_message = "release must be 1-24 lowercase letters, digits or hyphens, not starting or ending with a hyphen: it ends the Dataflow job name."
  }
}

variable "template_object" {
  description = "Object name of the template spec in the template bucket (make template's TEMPLATE_PATH)."
  type        = string
  default     = "campaign-pulse.json"
}

variable "pipeline_parameters" {
  description = "Extra pipeline flags for the job, name => value (see templates/metadata.json); they override the defaults main.tf sets."
  type        = map(string)
  default     = {}
}

variable "network" {
  description = "VPC network of the Dataflow workers. Workers have private IPs only: the subnetwork needs Private Google Access, and a firewall rule must allow TCP 12345-12346 between workers."
  type        = string
  default     = "default"
}

variable "subnetwork" {
  description = "Subnetwork of the workers, regions/REGION/subnetworks/NAME; null lets Dataflow choose."
  type        = string
  default     = null
}

variable "machine_type" {
  description = "Dataflow worker machine type."
  type        = string
  default     = "n2-standard-2"
}

variable "max_workers" {
  description = "Autoscaling ceiling of the Dataflow job (the cost ceiling)."
  type        = number
  default     = 3
}

variable "bigtable_max_nodes" {
  description = "Autoscaling ceiling of the Bigtable cluster."
  type        = number
  default     = 1
}

variable "notification_channels" {
  description = "Cloud Monitoring notification channel ids every alert notifies (projects/P/notificationChannels/N)."
  type        = list(string)
  default     = []
}

variable "launcher_members" {
  description = "Who may launch jobs as the worker account (gets roles/iam.serviceAccountUser on it), e.g. [\"user:you@example.com\"]. Include whoever runs terraform apply."
  type        = list(string)
  default     = []
}

variable "kms_key_name" {
  description = "Optional Cloud KMS key (projects/P/locations/L/keyRings/R/cryptoKeys/K, in region) for customer-managed encryption of Pub/Sub, BigQuery, GCS, Bigtable, Artifact Registry and the job; null: Google-managed keys."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Protect the Bigtable instance and tables, the BigQuery tables and the buckets' contents from terraform destroy. Set false (in terraform.tfvars) only to tear an environment down."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels added to every resource that takes labels."
  type        = map(string)
  default     = {}
}
