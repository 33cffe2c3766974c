variable "project_id" {
  description = "Project that owns the dataset."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project id: 6-30 lowercase letters, digits or hyphens."
  }
}

variable "dataset_id" {
  description = "Dataset that holds the pipeline's tables (letters, digits, underscores)."
  type        = string
  default     = "campaign_pulse"

  validation {
    condition     = can(regex("^[A-Za-z0-9_]{1,1024}$", var.dataset_id))
    error_message = "dataset_id may hold only letters, digits and underscores."
  }
}

variable "location" {
  description = "Dataset location: a region (e.g. europe-west1, same as Dataflow to avoid cross-region writes) or a multi-region (EU, US)."
  type        = string
}

variable "schemas_dir" {
  description = "Directory of the BigQuery JSON schemas, one <table>.json per table, generated from the Go row types (transforms/rows.go). null: terraform/schemas of this repository."
  type        = string
  default     = null
}

variable "partition_expiration_days" {
  description = "Days a partition of the fact tables is kept; null (the default) keeps them forever. The incremental marts keep expired hours, but dim_campaign, the staging views and the reconciliation tests read the facts: once a partition expires, dbt's relationships and reconciliation tests fail for its hours. Set it only with those tests narrowed to the retained days."
  type        = number
  default     = null

  validation {
    condition     = var.partition_expiration_days == null || try(var.partition_expiration_days >= 1, false)
    error_message = "partition_expiration_days must be null or at least 1."
  }
}

variable "dead_letter_expiration_days" {
  description = "Days a partition of dead_letter_events is kept (raw payloads may hold personal data: keep them only as long as replay needs). dbt's data-quality marts must know it: run dbt with --vars '{dead_letter_retention_days: N}' when it is not 30."
  type        = number
  default     = 30

  validation {
    condition     = var.dead_letter_expiration_days >= 1
    error_message = "dead_letter_expiration_days must be at least 1."
  }
}

variable "require_partition_filter" {
  description = "Reject queries on the fact tables that do not filter on the partition column (protects against full scans)."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Refuse to destroy tables that hold data; set false only for a throw-away dev environment."
  type        = bool
  default     = true
}

variable "delete_contents_on_destroy" {
  description = "Let terraform destroy delete the dataset even when it still holds tables (dev only)."
  type        = bool
  default     = false
}

variable "kms_key_name" {
  description = "Optional Cloud KMS key for customer-managed encryption of the dataset and its tables; must be in the dataset's location. The BigQuery service agent needs roles/cloudkms.cryptoKeyEncrypterDecrypter on it (the iam module grants it)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_name == null || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.kms_key_name))
    error_message = "kms_key_name must be null or projects/P/locations/L/keyRings/R/cryptoKeys/K."
  }
}

variable "labels" {
  description = "Labels put on the dataset and tables."
  type        = map(string)
  default     = {}
}
