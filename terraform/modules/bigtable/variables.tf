variable "project_id" {
  description = "Project that owns the Bigtable instance."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project id: 6-30 lowercase letters, digits or hyphens."
  }
}

variable "instance_name" {
  description = "Bigtable instance id holding the enrichment tables: 6-27 characters, as the cluster id <instance_name>-c1 must fit Bigtable's 30 (and the display name, which defaults to it, 30)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,25}[a-z0-9]$", var.instance_name))
    error_message = "instance_name must be 6-27 lowercase letters, digits or hyphens, starting with a letter (the cluster id <instance_name>-c1 has at most 30 characters)."
  }
}

variable "display_name" {
  description = "Human-readable name of the instance (4-30 characters); null uses instance_name."
  type        = string
  default     = null
}

variable "zone" {
  description = "Zone of the instance's single cluster; put it in the Dataflow region so lookups stay in-region."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+-[a-z]$", var.zone))
    error_message = "zone must be a zone name such as europe-west1-b."
  }
}

variable "storage_type" {
  description = "SSD (low-latency point lookups, what the enrichment needs) or HDD."
  type        = string
  default     = "SSD"

  validation {
    condition     = contains(["SSD", "HDD"], var.storage_type)
    error_message = "storage_type must be SSD or HDD."
  }
}

variable "min_nodes" {
  description = "Autoscaling lower bound of the cluster's nodes."
  type        = number
  default     = 1

  validation {
    condition     = var.min_nodes >= 1
    error_message = "min_nodes must be at least 1."
  }
}

variable "max_nodes" {
  description = "Autoscaling upper bound of the cluster's nodes (at least min_nodes)."
  type        = number
  default     = 3

  validation {
    condition     = var.max_nodes >= 1 && var.max_nodes <= 1000
    error_message = "max_nodes must be between 1 and 1000."
  }
}

variable "cpu_target" {
  description = "Autoscaling CPU utilisation target in percent (10-80); Google recommends at most 70 for latency-sensitive reads."
  type        = number
  default     = 60

  validation {
    condition     = var.cpu_target >= 10 && var.cpu_target <= 80
    error_message = "cpu_target must be between 10 and 80."
  }
}

variable "tables" {
  description = <<-EOT
    Tables => column families => garbage-collection rule. max_versions keeps the newest N cells of a
    column (0: no version rule); max_age (a duration such as "9600h", null: no age rule) drops older
    cells; with both set a cell goes when either says so (UNION). The default is the enrichment
    layout (enrichment.Layout in enrichment/layout.go); a Go test keeps the two equal.
  EOT
  type = map(object({
    column_families = map(object({
      max_versions = optional(number, 0)
      max_age      = optional(string)
    }))
  }))
  default = {
    user_profiles = {
      column_families = {
        p = { max_versions = 1, max_age = "9600h" }
      }
    }
    campaigns = {
      column_families = {
        c = { max_versions = 1 }
      }
    }
  }

  validation {
    condition = alltrue(flatten([
      for t, spec in var.tables : [
        for f, gc in spec.column_families :
        gc.max_versions >= 0 && (gc.max_age == null || can(regex("^[0-9]+(h|m|s)$", gc.max_age))) && (gc.max_versions > 0 || gc.max_age != null)
      ]
    ]))
    error_message = "every column family needs max_versions > 0 or a max_age such as \"9600h\" (hours, minutes or seconds)."
  }
}

variable "deletion_protection" {
  description = "Protect the instance and its tables from terraform destroy; set false only for a throw-away dev environment."
  type        = bool
  default     = true
}

variable "kms_key_name" {
  description = "Optional Cloud KMS key for customer-managed encryption of the cluster; must be in the cluster's region. The Bigtable service agent needs roles/cloudkms.cryptoKeyEncrypterDecrypter on it (the iam module grants it)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_name == null || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.kms_key_name))
    error_message = "kms_key_name must be null or projects/P/locations/L/keyRings/R/cryptoKeys/K."
  }
}

variable "labels" {
  description = "Labels put on the instance."
  type        = map(string)
  default     = {}
}
