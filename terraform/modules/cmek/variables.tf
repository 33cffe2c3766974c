variable "project_id" {
  description = "Project whose Google service agents use the key."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project id: 6-30 lowercase letters, digits or hyphens."
  }
}

variable "kms_key_name" {
  description = "Cloud KMS key (projects/P/locations/L/keyRings/R/cryptoKeys/K) the other modules encrypt with; null grants nothing. Its location must match the resources' (a regional key for regional resources)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_name == null || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.kms_key_name))
    error_message = "kms_key_name must be null or projects/P/locations/L/keyRings/R/cryptoKeys/K."
  }
}

variable "services" {
  description = "Services whose agents get roles/cloudkms.cryptoKeyEncrypterDecrypter on the key. Their APIs must be enabled first. The module creates the agents Google creates only on first use (BigQuery's and Cloud Storage's by reading them, Bigtable's and Artifact Registry's by generating their service identities); the others exist once their APIs are enabled."
  type        = list(string)
  default     = ["pubsub", "bigquery", "storage", "bigtable", "artifact_registry", "dataflow", "compute"]

  validation {
    condition     = alltrue([for s in var.services : contains(["pubsub", "bigquery", "storage", "bigtable", "artifact_registry", "dataflow", "compute"], s)])
    error_message = "services may name only pubsub, bigquery, storage, bigtable, artifact_registry, dataflow and compute."
  }
}
