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

  # A zone elsewhere would pass every other check and then fail the apply
  # with kms_key_name, whose key Bigtable wants in the cluster's region.
  validation {
    condition     = var.bigtable_zone == null || startswith(coalesce(var.bigtable_zone, "-"), "${var.region}-")
    error_message = "bigtable_zone must be a zone of region, such as <region>-b."
  }
}

variable "bigquery_location" {
  description = "Location of the BigQuery dataset; null: region. A multi-region (EU, US) suits dbt users in other regions, but not with kms_key_name: BigQuery needs the key in the dataset's location, and the one key is regional."
  type        = string
  default     = null

  validation {
    condition     = var.bigquery_location == null || can(regex("^(EU|US|[a-z]+-[a-z]+[0-9]+)$", var.bigquery_location))
    error_message = "bigquery_location must be null (the region), a multi-region EU or US, or a region name such as europe-west1."
  }
}

variable "name_prefix" {
  description = "Prefix of resource names; the environment is appended (campaign-pulse => campaign-pulse-dev-...)."
  type        = string
  default     = "campaign-pulse"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,17}$", var.name_prefix))
    error_message = "name_prefix must be 3-18 lowercase letters, digits or hyphens, starting with a letter: the service account id <prefix>-dev-worker and the Bigtable cluster id <prefix>-dev-bt-c1 made from it must stay within 30 characters."
  }

  # Bucket names are global, so they start with the project id, and the
  # longest is <project_id>-<name_prefix>-dev-templates: modules/gcs takes a
  # name prefix of at most 53 characters and appends -staging, -temp or
  # -templates (at most 63 in all). TestLongestNamePrefixFits checks the two
  # limits agree.
  validation {
    condition     = length("${var.project_id}-${var.name_prefix}-dev") <= 53
    error_message = "name_prefix is too long for this project id: the bucket names <project_id>-<name_prefix>-dev-<staging|temp|templates> must stay within 63 characters, so project_id and name_prefix together may have at most 48 characters (with a 30-character project id, name_prefix may have 18)."
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
  description = "Names this launch of the job, which runs as <name_prefix>-<env>-streaming-<release>. To ship a new version: make template, then terraform apply -var release=<a new value> (such as make template's tag). The new name replaces the job (the old one drains first). Every job Terraform creates, a new release's or the same release's launched again by an apply after the job failed or was cancelled, gets its own run_id (<job name>-<plan time>, modules/dataflow), so dbt adds the panes of different jobs that wrote one window; Terraform never updates the running job in place (a change of its settings replaces it, under the same name and a new run_id). A job starts from the spec at template_object when it is created, re-creations included: pin template_object per release so that is the release's code, and roll back by applying the previous release and template_object."
  type        = string
  default     = "r1"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,22}[a-z0-9])?$", var.release))
    error_message = "release must be 1-24 lowercase letters, digits or hyphens, not starting or ending with a hyphen: it ends the Dataflow job name."
  }
}

variable "template_object" {
  description = "Object name of the template spec in the template bucket (the object of make template's TEMPLATE_PATH, by default campaign-pulse.json). Every job Terraform creates starts from the spec at this object at that moment, including a job re-created by an apply after it failed or was cancelled: with the fixed default that is whatever make template wrote last, even under an older release. To pin a release's code, publish a spec per release (make template TAG=<tag> TEMPLATE_PATH=gs://<template bucket>/campaign-pulse-<tag>.json) and set this to campaign-pulse-<tag>.json along with release = <tag>; to roll back, apply the previous release and object. Changing only this object replaces the running job under the same name and a new run_id (the old one drains first; modules/dataflow: no update in place)."
  type        = string
  default     = "campaign-pulse.json"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-][A-Za-z0-9_./-]*[.]json$", var.template_object))
    error_message = "template_object must be an object name in the template bucket ending in .json, without gs:// or the bucket name, e.g. campaign-pulse-v2.json."
  }
}

variable "pipeline_parameters" {
  description = "Extra pipeline flags for the job, name => value (see templates/metadata.json); they override the defaults main.tf sets. Not run_id: modules/dataflow gives each job it creates its own."
  type        = map(string)
  default     = {}

  validation {
    condition     = !contains(keys(var.pipeline_parameters), "run_id")
    error_message = "pipeline_parameters must not set run_id: modules/dataflow gives every job Terraform creates its own run_id and keeps it through updates; a fixed one would let dbt take one job's pane of a window a re-created job also wrote for the window's total."
  }
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

  validation {
    condition     = can(regex("^[a-z][a-z0-9]*(-[a-z0-9]+)+$", var.machine_type))
    error_message = "machine_type must be a Compute Engine machine type such as n2-standard-2 or n2-custom-4-16384."
  }
}

variable "max_workers" {
  description = "Autoscaling ceiling of the Dataflow job (the cost ceiling), 1-1000."
  type        = number
  default     = 3

  validation {
    condition     = var.max_workers >= 1 && var.max_workers <= 1000 && floor(var.max_workers) == var.max_workers
    error_message = "max_workers must be a whole number from 1 to 1000."
  }
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
  description = "Optional Cloud KMS key (projects/P/locations/L/keyRings/R/cryptoKeys/K, in region) for customer-managed encryption of Pub/Sub, BigQuery, GCS, Bigtable, Artifact Registry and the job; null: Google-managed keys. The key must be in region, and BigQuery requires it in the dataset's location, so with a key the dataset must be in region too (bigquery_location null, not EU or US)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_name == null || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.kms_key_name))
    error_message = "kms_key_name must be null or projects/P/locations/L/keyRings/R/cryptoKeys/K."
  }

  # One key serves every resource. The buckets, the Bigtable cluster and the
  # image repository are in region and need their key there, and BigQuery
  # refuses a key whose location is not the dataset's: a multi-region dataset
  # would need a key in the multi-region KMS location (europe, us), which the
  # regional resources cannot use. (Terraform >= 1.9: a validation may read
  # other variables.)
  validation {
    condition     = var.kms_key_name == null || try(split("/", var.kms_key_name)[3] == var.region, false)
    error_message = "kms_key_name must be a key in region (its locations/<L> must equal region): the buckets, the Bigtable cluster and the image repository are in region, and Cloud Storage, Bigtable and Artifact Registry need the key in their resource's location."
  }

  validation {
    condition     = var.kms_key_name == null || lower(coalesce(var.bigquery_location, var.region)) == var.region
    error_message = "With kms_key_name set, bigquery_location must be null (or equal to region): BigQuery requires a customer-managed key in the dataset's location, and the one regional key cannot encrypt a multi-region (EU, US) or other-region dataset. Set bigquery_location = null, or kms_key_name = null."
  }
}

variable "deletion_protection" {
  description = "Protect the Bigtable instance and tables, the BigQuery tables and the buckets' contents from terraform destroy. Set false (in terraform.tfvars) only to tear an environment down."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels added to every resource that takes labels (the environment sets app and env over them; modules add component and, on buckets, purpose)."
  type        = map(string)
  default     = {}

  validation {
    condition = length(var.labels) <= 60 && alltrue([
      for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))
    ])
    error_message = "labels must be at most 60 pairs, each key 1-63 lowercase letters, digits, underscores or hyphens starting with a letter, each value at most 63 of the same characters (Google Cloud's label rules, ASCII only here)."
  }
}
