variable "project_id" {
  description = "Project that owns the repository."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project id: 6-30 lowercase letters, digits or hyphens."
  }
}

variable "location" {
  description = "Region of the repository; the Dataflow region, so the launcher pulls the image in-region."
  type        = string
}

variable "repository_id" {
  description = "Repository id; the template image is <location>-docker.pkg.dev/<project>/<repository_id>/campaign-pulse."
  type        = string
  default     = "campaign-pulse"

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", var.repository_id))
    error_message = "repository_id must be lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "keep_recent_versions" {
  description = "Image versions kept by the cleanup policy; older ones are deleted."
  type        = number
  default     = 20

  validation {
    condition     = var.keep_recent_versions >= 1
    error_message = "keep_recent_versions must be at least 1."
  }
}

variable "immutable_tags" {
  description = "Refuse to move an existing tag to a new image (the Makefile tags images with the git version)."
  type        = bool
  default     = true
}

variable "kms_key_name" {
  description = "Optional Cloud KMS key for customer-managed encryption of the repository; must be in its location. The Artifact Registry service agent needs roles/cloudkms.cryptoKeyEncrypterDecrypter on it (the iam module grants it)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_name == null || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.kms_key_name))
    error_message = "kms_key_name must be null or projects/P/locations/L/keyRings/R/cryptoKeys/K."
  }
}

variable "labels" {
  description = "Labels put on the repository."
  type        = map(string)
  default     = {}
}
