/**
 * Alert policies for the streaming job:
 *
 * - system lag: elements wait too long inside the pipeline (workers too few
 *   or stuck, a hot key, a slow sink);
 * - data freshness: the output's event time trails the clock (the source
 *   backs up, or the watermark is held by a stuck step);
 * - dead-letter share: too much input is rejected (a sender broke the
 *   contract, or a sink rejects rows);
 * - job not running: the job failed, or its metrics stopped (cancelled,
 *   drained, never started). The three above only compare values, and a job
 *   that is gone writes none, so they would stay silent; only while a job is
 *   expected (job_expected, the environments' launch_job). It watches every
 *   release's job of the environment as one (job_name_prefix): a release
 *   change drains the old job, then launches the new one, and a policy on
 *   the new name alone would see no metrics from the update of its filter
 *   until the new job's workers report.
 *
 * Dataflow exports the job metrics (dataflow.googleapis.com/job/system_lag,
 * /job/data_watermark_age) and the pipeline's Beam counters, namespace
 * campaignpulse, as dataflow.googleapis.com/job/user_counter with the counter
 * in the metric_name label. Counters are cumulative values reported as a
 * gauge, so the dead-letter share is a PromQL condition over delta().
 */

locals {
  job_filter = "resource.type = \"dataflow_job\" AND resource.labels.job_name = \"${var.job_name}\""
  # Every release's job: the old one reports until it has drained, then
  # the new one once it runs.
  family_filter = "resource.type = \"dataflow_job\" AND resource.labels.job_name = starts_with(\"${var.job_name_prefix}\")"
  labels        = merge(var.labels, { component = "monitoring" })

  counter      = "dataflow_googleapis_com:job_user_counter"
  counter_sel  = "monitored_resource=\"dataflow_job\",job_name=\"${var.job_name}\""
  dead_letters = "sum(delta(${local.counter}{${local.counter_sel},metric_name=~\"${var.dead_letter_counter_regex}\"}[${var.dead_letter_window}]))"
  events_in    = "sum(delta(${local.counter}{${local.counter_sel},metric_name=\"${var.input_counter}\"}[${var.dead_letter_window}]))"
}

resource "google_monitoring_alert_policy" "system_lag" {
  project               = var.project_id
  display_name          = "Campaign Pulse ${var.job_name}: system lag above ${var.system_lag_threshold_seconds}s"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = var.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "system lag > ${var.system_lag_threshold_seconds}s"
    condition_threshold {
      filter          = "${local.job_filter} AND metric.type = \"dataflow.googleapis.com/job/system_lag\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.system_lag_threshold_seconds
      duration        = var.duration
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Elements of ${var.job_name} have waited more than ${var.system_lag_threshold_seconds}s in the pipeline. Check the job graph for the step with the highest lag, worker CPU and autoscaling (max_workers), and errors in the worker logs. See the README's Production section."
  }
}

resource "google_monitoring_alert_policy" "data_freshness" {
  project               = var.project_id
  display_name          = "Campaign Pulse ${var.job_name}: data freshness above ${var.data_freshness_threshold_seconds}s"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = var.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "data watermark age > ${var.data_freshness_threshold_seconds}s"
    condition_threshold {
      filter          = "${local.job_filter} AND metric.type = \"dataflow.googleapis.com/job/data_watermark_age\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.data_freshness_threshold_seconds
      duration        = var.duration
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The output of ${var.job_name} trails event time by more than ${var.data_freshness_threshold_seconds}s: the marts are stale. Check the Pub/Sub subscriptions' backlog (oldest unacked message age), the system lag alert, and whether a step holds the watermark."
  }
}

resource "google_monitoring_alert_policy" "dead_letter_ratio" {
  project               = var.project_id
  display_name          = "Campaign Pulse ${var.job_name}: dead letters above ${var.dead_letter_ratio_threshold * 100}% of input"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = var.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "dead-lettered / events_in > ${var.dead_letter_ratio_threshold}"
    condition_prometheus_query_language {
      query               = "${local.dead_letters} / clamp_min(${local.events_in}, 1) > ${var.dead_letter_ratio_threshold}"
      duration            = var.duration
      evaluation_interval = "60s"
      # The user counters exist only once a job has reported them, and the
      # first apply creates this policy before any job runs (launch_job =
      # false): without this the API refuses a policy on a metric it has not
      # seen.
      disable_metric_validation = true
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Dead-letter records of ${var.job_name} over ${var.dead_letter_window} exceed ${var.dead_letter_ratio_threshold * 100}% of the events it read (they include rows BigQuery refused, pane rows too, so with little input a single refused pane can fire this). Group dead_letter_events by stage and error_code for the last hour to see which sender or rule, and replay the payloads once fixed. If BigQuery refuses everything, dead letters may be missing from dead_letter_events too: look for sink_unwritable_dead_letters and the worker logs."
  }
}

resource "google_monitoring_alert_policy" "job_not_running" {
  count = var.job_expected ? 1 : 0

  project               = var.project_id
  display_name          = "Campaign Pulse ${var.job_name_prefix}*: job failed or not reporting"
  combiner              = "OR"
  severity              = "CRITICAL"
  notification_channels = var.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "job failed"
    condition_threshold {
      filter          = "${local.family_filter} AND metric.type = \"dataflow.googleapis.com/job/is_failed\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
        # One series for all the jobs: absent only when none reports (a
        # drained job's own series going quiet is not an outage).
        cross_series_reducer = "REDUCE_MAX"
      }
      trigger {
        count = 1
      }
    }
  }

  conditions {
    display_name = "no system lag reported for ${var.absent_duration}"
    condition_absent {
      filter   = "${local.family_filter} AND metric.type = \"dataflow.googleapis.com/job/system_lag\""
      duration = var.absent_duration
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
        # One series for all the jobs: absent only when none reports (a
        # drained job's own series going quiet is not an outage).
        cross_series_reducer = "REDUCE_MAX"
      }
      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A job of ${var.job_name_prefix}* (the running release: ${var.job_name}) failed, or none has reported metrics for ${var.absent_duration} (cancelled, drained, or never started): nothing reads the subscriptions, and events wait there up to their retention. Check gcloud dataflow jobs list --status=all and the job's logs; terraform apply launches a failed or cancelled job again (with a new release if its panes must not mix with the old job's, see the README's Production section)."
  }
}
