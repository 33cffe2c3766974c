variable "project_id" {
  description = "Project that owns the buckets."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project id: 6-30 lowercase letters, digits or hyphens."
  }
}

variable "name_prefix" {
  description = "Prefix of the bucket names; bucket names are global, so include the project id or another unique word (e.g. acme-prod-campaign-pulse)."
  type        = string

  # The longest bucket name, <name_prefix>-templates, must stay within
  # Cloud Storage's 63 characters.
  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,52}$", var.name_prefix))
    error_message = "name_prefix must be 2-53 lowercase letters, digits or hyphens, starting with a letter or digit: bucket names (<name_prefix>-templates the longest) have at most 63 characters."
  }
}

variable "location" {
  description = "Bucket location; use the Dataflow region so staging and temp traffic stays in-region."
  type        = string
}

variable "staging_retention_days" {
  description = "Days staged files (the pipeline binary of each launch) are kept in the staging bucket; 0 (the default) keeps them. A running job's new workers download its binary from there whenever Dataflow scales up or replaces a worker, so set this only longer than any job runs."
  type        = number
  default     = 0

  validation {
    condition     = var.staging_retention_days >= 0
    error_message = "staging_retention_days must be 0 (keep) or more days."
  }
}

variable "temp_retention_days" {
  description = "Days temporary files of running jobs are kept in the temp bucket; longer than any job keeps a temp file."
  type        = number
  default     = 7

  validation {
    condition     = var.temp_retention_days >= 1
    error_message = "temp_retention_days must be at least 1."
  }
}

variable "scratch_soft_delete_seconds" {
  description = "Soft-delete retention of the staging and temp buckets, in seconds. 0 (the default) turns soft delete off there, as Dataflow advises for the buckets it writes its files to (the Beam SDK warns at every launch otherwise): each temp file a job deletes would be billed for another 7 days. Where an organization policy (constraints/storage.softDeletePolicySeconds) requires a retention, set it here: 604800 (7 days) to 7776000 (90 days). The template bucket keeps Cloud Storage's default."
  type        = number
  default     = 0

  validation {
    condition     = var.scratch_soft_delete_seconds == 0 || (var.scratch_soft_delete_seconds >= 604800 && var.scratch_soft_delete_seconds <= 7776000)
    error_message = "scratch_soft_delete_seconds must be 0 (off) or 604800 to 7776000 (7 to 90 days), the retentions Cloud Storage accepts."
  }
}

variable "template_noncurrent_versions" {
  description = "Older versions of each template spec kept in the (versioned) template bucket, for rollback."
  type        = number
  default     = 10

  validation {
    condition     = var.template_noncurrent_versions >= 1
    error_message = "template_noncurrent_versions must be at least 1."
  }
}

variable "log_bucket" {
  description = "Optional bucket that receives the usage (access) logs of these buckets; null disables usage logs (Cloud Audit Logs still record admin access)."
  type        = string
  default     = null
}

variable "force_destroy" {
  description = "Let terraform destroy delete buckets that still hold objects (dev only)."
  type        = bool
  default     = false
}

variable "kms_key_name" {
  description = "Optional Cloud KMS key for default customer-managed encryption of every object; must be in the bucket location. The Cloud Storage service agent needs roles/cloudkms.cryptoKeyEncrypterDecrypter on it (the iam module grants it)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_name == null || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.kms_key_name))
    error_message = "kms_key_name must be null or projects/P/locations/L/keyRings/R/cryptoKeys/K."
  }
}

variable "labels" {
  description = "Labels put on every bucket."
  type        = map(string)
  default     = {}
}
