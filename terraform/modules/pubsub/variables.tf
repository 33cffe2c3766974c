variable "project_id" {
  description = "Project that owns the topics and subscriptions."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project id: 6-30 lowercase letters, digits or hyphens."
  }
}

variable "name_prefix" {
  description = "Prefix of every topic and subscription name, e.g. campaign-pulse-dev."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,40}$", var.name_prefix))
    error_message = "name_prefix must start with a letter and hold 3-41 lowercase letters, digits or hyphens."
  }
}

variable "sources" {
  description = "Marketing sources: each gets its own topic and subscription (the pipeline reads every subscription and flattens them). Defaults to the platforms of the event contract (transforms.Platforms)."
  type        = list(string)
  default     = ["google_ads", "meta", "tiktok", "linkedin", "x", "youtube"]

  validation {
    condition     = length(var.sources) > 0 && alltrue([for s in var.sources : can(regex("^[a-z][a-z0-9_]{0,30}$", s))])
    error_message = "sources must be a non-empty list of lowercase identifiers (letters, digits, underscores)."
  }

  validation {
    condition     = length(distinct(var.sources)) == length(var.sources)
    error_message = "sources must not repeat a name."
  }
}

variable "message_retention_duration" {
  description = "How long a source subscription keeps unacknowledged messages (seconds, as \"604800s\"); the window in which a stopped job can catch up or be replaced without loss. 10 minutes to 31 days (Pub/Sub's bounds)."
  type        = string
  default     = "604800s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.message_retention_duration)) && try(tonumber(trimsuffix(var.message_retention_duration, "s")) >= 600 && tonumber(trimsuffix(var.message_retention_duration, "s")) <= 2678400, false)
    error_message = "message_retention_duration must be seconds with an s suffix, between 600s (10 minutes) and 2678400s (31 days)."
  }
}

variable "topic_retention_duration" {
  description = "How long each topic itself keeps published messages, so a new subscription can be seeked back (seconds with an s suffix; null keeps none). At most 31 days."
  type        = string
  default     = "86400s"

  validation {
    condition     = var.topic_retention_duration == null || (can(regex("^[0-9]+s$", var.topic_retention_duration)) && try(tonumber(trimsuffix(var.topic_retention_duration, "s")) >= 600 && tonumber(trimsuffix(var.topic_retention_duration, "s")) <= 2678400, false))
    error_message = "topic_retention_duration must be null or seconds with an s suffix between 600s (10 minutes) and 2678400s (31 days), e.g. 86400s."
  }
}

variable "ack_deadline_seconds" {
  description = "Ack deadline of the source subscriptions. Dataflow extends it while it holds a message; 60 s leaves room for a slow bundle."
  type        = number
  default     = 60

  validation {
    condition     = var.ack_deadline_seconds >= 10 && var.ack_deadline_seconds <= 600
    error_message = "ack_deadline_seconds must be between 10 and 600."
  }
}

variable "allowed_persistence_regions" {
  description = "Regions where Pub/Sub may store messages (message storage policy); empty leaves the organisation's default."
  type        = list(string)
  default     = []
}

variable "kms_key_name" {
  description = "Optional Cloud KMS key (projects/P/locations/L/keyRings/R/cryptoKeys/K) for customer-managed encryption of every topic; null uses Google-managed keys. The Pub/Sub service agent needs roles/cloudkms.cryptoKeyEncrypterDecrypter on it (the iam module grants it)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_name == null || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.kms_key_name))
    error_message = "kms_key_name must be null or projects/P/locations/L/keyRings/R/cryptoKeys/K."
  }
}

variable "labels" {
  description = "Labels put on every topic and subscription."
  type        = map(string)
  default     = {}
}
