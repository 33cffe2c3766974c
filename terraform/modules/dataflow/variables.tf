variable "project_id" {
  description = "Project the job runs in."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project id: 6-30 lowercase letters, digits or hyphens."
  }
}

variable "region" {
  description = "Dataflow region (the regional endpoint that runs the job and its workers)."
  type        = string
}

variable "job_name" {
  description = "Name of the streaming job; the monitoring module's alerts filter on it."
  type        = string

  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$", var.job_name))
    error_message = "job_name must be lowercase letters, digits and hyphens, starting with a letter, at most 63 characters."
  }
}

variable "template_gcs_path" {
  description = "gs:// path of the flex template spec that make template writes (gs://<template bucket>/<object>). Every job this module creates, a re-creation after a failure included, starts from the spec at this path at that moment."
  type        = string

  validation {
    condition     = can(regex("^gs://[^/]+/.+\\.json$", var.template_gcs_path))
    error_message = "template_gcs_path must be a gs:// path to a .json template spec."
  }
}

variable "parameters" {
  description = "Pipeline flags, name => value as strings (no leading --): every name must be a parameter of templates/metadata.json. Dataflow's own options (project, region, staging and temp locations, service account) are set by the job's arguments, not here. Not run_id: the module sets it, new for each job it creates and kept by updates (see main.tf)."
  type        = map(string)
  default     = {}

  validation {
    condition     = !contains(keys(var.parameters), "run_id")
    error_message = "parameters must not set run_id: the module gives every job it creates its own (<job_name>-<plan time>) and keeps it through updates; a fixed run_id would let dbt take one job's pane of a window that a re-created job also wrote for the window's total."
  }
}

variable "service_account_email" {
  description = "Worker service account (iam module output worker_email): the launcher and every worker run as it."
  type        = string
}

variable "staging_location" {
  description = "gs:// path where the launcher stages the pipeline binary."
  type        = string

  validation {
    condition     = startswith(var.staging_location, "gs://")
    error_message = "staging_location must start with gs://."
  }
}

variable "temp_location" {
  description = "gs:// path for the job's temporary files."
  type        = string

  validation {
    condition     = startswith(var.temp_location, "gs://")
    error_message = "temp_location must start with gs://."
  }
}

variable "network" {
  description = "VPC network of the workers (name or self link). With private IPs only, the subnetwork needs Private Google Access, and a firewall rule must let workers reach each other on TCP 12345-12346."
  type        = string
  default     = "default"
}

variable "subnetwork" {
  description = "Subnetwork of the workers as regions/REGION/subnetworks/NAME (or a full self link); null lets Dataflow pick the network's subnetwork in the region."
  type        = string
  default     = null

  validation {
    condition     = var.subnetwork == null || can(regex("(^|/)regions/[^/]+/subnetworks/[^/]+$", var.subnetwork))
    error_message = "subnetwork must be null or regions/REGION/subnetworks/NAME (optionally a full self link)."
  }
}

variable "machine_type" {
  description = "Worker machine type. Streaming Engine moves state and shuffle off the workers, so a small type is enough."
  type        = string
  default     = "n2-standard-2"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]*(-[a-z0-9]+)+$", var.machine_type))
    error_message = "machine_type must be a Compute Engine machine type such as n2-standard-2 or n2-custom-4-16384."
  }
}

variable "num_workers" {
  description = "Workers at start; autoscaling moves between this and max_workers."
  type        = number
  default     = 1

  validation {
    condition     = var.num_workers >= 1
    error_message = "num_workers must be at least 1."
  }
}

variable "max_workers" {
  description = "Upper bound of autoscaling (cost ceiling). 1-1000."
  type        = number
  default     = 10

  validation {
    condition     = var.max_workers >= 1 && var.max_workers <= 1000
    error_message = "max_workers must be between 1 and 1000."
  }
}

variable "additional_experiments" {
  description = "Dataflow experiments, e.g. enable_stackdriver_agent_metrics."
  type        = list(string)
  default     = []
}

variable "on_delete" {
  description = "What terraform destroy (or a replacement) does to the running job: drain (finish in-flight data, the safe default for a streaming job) or cancel."
  type        = string
  default     = "drain"

  validation {
    condition     = contains(["drain", "cancel"], var.on_delete)
    error_message = "on_delete must be drain or cancel."
  }
}

variable "kms_key_name" {
  description = "Optional Cloud KMS key for the job's state and worker disks; the Dataflow and Compute Engine service agents need roles/cloudkms.cryptoKeyEncrypterDecrypter on it (the cmek module grants it)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_name == null || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.kms_key_name))
    error_message = "kms_key_name must be null or projects/P/locations/L/keyRings/R/cryptoKeys/K."
  }
}

variable "labels" {
  description = "Labels of the job (and its worker VMs)."
  type        = map(string)
  default     = {}
}
