output "repository_id" {
  description = "Repository id."
  value       = google_artifact_registry_repository.this.repository_id
}

output "repository_name" {
  description = "Full repository name (projects/P/locations/L/repositories/R)."
  value       = google_artifact_registry_repository.this.id
}

output "image_prefix" {
  description = "Docker path images are pushed to: <location>-docker.pkg.dev/<project>/<repository>."
  value       = "${var.location}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.this.repository_id}"
}
