output "job_id" {
  description = "Dataflow job id."
  value       = google_dataflow_flex_template_job.this.job_id
}

output "job_name" {
  description = "Dataflow job name."
  value       = google_dataflow_flex_template_job.this.name
}

output "state" {
  description = "Job state when Terraform last read it (JOB_STATE_RUNNING once started)."
  value       = google_dataflow_flex_template_job.this.state
}
