output "alert_policy_ids" {
  description = "Alert => policy id (projects/P/alertPolicies/A)."
  value = {
    system_lag        = google_monitoring_alert_policy.system_lag.id
    data_freshness    = google_monitoring_alert_policy.data_freshness.id
    dead_letter_ratio = google_monitoring_alert_policy.dead_letter_ratio.id
    job_not_running   = one(google_monitoring_alert_policy.job_not_running[*].id)
  }
}
