variable "project_id" {
  description = "Project whose Cloud Monitoring holds the alert policies (the job's project)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project id: 6-30 lowercase letters, digits or hyphens."
  }
}

variable "job_name" {
  description = "Name of the Dataflow job the alerts watch (dataflow module output job_name)."
  type        = string
}

variable "job_name_prefix" {
  description = "The start of every release's job name in this environment (<prefix>-streaming-): the job-not-running alert watches these jobs as one, so the change of a release, the old job draining before the new one reports, does not fire it while it lasts under absent_duration."
  type        = string

  validation {
    condition     = length(var.job_name_prefix) > 0
    error_message = "job_name_prefix must not be empty: it would watch every Dataflow job of the project."
  }
}

variable "notification_channels" {
  description = "Notification channel ids (projects/P/notificationChannels/N) that every alert notifies; create them once in the console or with gcloud beta monitoring channels create. Empty: alerts open incidents without notifying anyone."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", c))])
    error_message = "notification_channels must be ids of the form projects/P/notificationChannels/N."
  }
}

variable "system_lag_threshold_seconds" {
  description = "Alert when the job's system lag (the longest time an element has waited in the pipeline) stays above this. The freshness target is seconds; 300 s means the job is clearly falling behind."
  type        = number
  default     = 300

  validation {
    condition     = var.system_lag_threshold_seconds > 0
    error_message = "system_lag_threshold_seconds must be positive."
  }
}

variable "data_freshness_threshold_seconds" {
  description = "Alert when the data watermark age (how far event time in the output trails the wall clock) stays above this. A lagging watermark holds windows open: the marts are stale and panes delayed, but no data becomes late by it (lateness is arrival, Pub/Sub publish time, against event time)."
  type        = number
  default     = 900

  validation {
    condition     = var.data_freshness_threshold_seconds > 0
    error_message = "data_freshness_threshold_seconds must be positive."
  }
}

variable "dead_letter_ratio_threshold" {
  description = "Alert when dead-lettered records exceed this share of the events read (0-1) over dead_letter_window. The generator's malformed rate is 1%; a real source should stay far below."
  type        = number
  default     = 0.05

  validation {
    condition     = var.dead_letter_ratio_threshold > 0 && var.dead_letter_ratio_threshold < 1
    error_message = "dead_letter_ratio_threshold must be between 0 and 1."
  }
}

variable "dead_letter_window" {
  description = "PromQL range over which the dead-letter share is computed, e.g. 10m."
  type        = string
  default     = "10m"

  validation {
    condition     = can(regex("^[0-9]+[smh]$", var.dead_letter_window))
    error_message = "dead_letter_window must be a PromQL duration such as 10m."
  }
}

variable "dead_letter_counter_regex" {
  description = "Regex over the metric_name of the pipeline's user counters (namespace campaignpulse) that count dead letters; one counter per stage: dead_letter_parse, dead_letter_validate, dead_letter_enrich (Bigtable unavailable) and dead_letter_sink (rows BigQuery refused); transforms.DeadLetterCounters."
  type        = string
  default     = "dead_letter_.*"
}

variable "input_counter" {
  description = "metric_name of the user counter that counts every event read (the denominator of the dead-letter share)."
  type        = string
  default     = "events_in"
}

variable "duration" {
  description = "How long a condition must hold before the alert fires (seconds with an s suffix, a multiple of 60)."
  type        = string
  default     = "300s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.duration)) && try(tonumber(trimsuffix(var.duration, "s")) % 60 == 0, false)
    error_message = "duration must be seconds with an s suffix and a multiple of 60, e.g. 300s."
  }
}

variable "job_expected" {
  description = "Whether a job should be running (the environments' launch_job): only then does the job-not-running alert exist, so the first apply, before any job, alerts no one."
  type        = bool
  default     = true
}

variable "absent_duration" {
  description = "How long the job may report no system lag before the job-not-running alert fires (seconds with an s suffix, a multiple of 60, at least 120s)."
  type        = string
  default     = "600s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.absent_duration)) && try(tonumber(trimsuffix(var.absent_duration, "s")) % 60 == 0 && tonumber(trimsuffix(var.absent_duration, "s")) >= 120, false)
    error_message = "absent_duration must be seconds with an s suffix, a multiple of 60 and at least 120s, e.g. 600s."
  }
}

variable "labels" {
  description = "User labels put on every alert policy."
  type        = map(string)
  default     = {}
}
