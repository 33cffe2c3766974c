output "staging_bucket" {
  description = "Name of the staging bucket (Dataflow staging_location is gs://<this>/staging)."
  value       = google_storage_bucket.this["staging"].name
}

output "temp_bucket" {
  description = "Name of the temp bucket (Dataflow temp_location is gs://<this>/tmp)."
  value       = google_storage_bucket.this["temp"].name
}

output "template_bucket" {
  description = "Name of the template bucket; make template writes gs://<this>/campaign-pulse.json."
  value       = google_storage_bucket.this["templates"].name
}

output "bucket_names" {
  description = "Purpose (staging, temp, templates) => bucket name."
  value       = { for k, b in google_storage_bucket.this : k => b.name }
}
