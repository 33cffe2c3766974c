output "worker_email" {
  description = "Email of the Dataflow worker service account (the job's service_account_email)."
  value       = google_service_account.worker.email
}

output "worker_member" {
  description = "The worker as an IAM member (serviceAccount:<email>)."
  value       = local.worker
}
