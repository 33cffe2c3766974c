/**
 * Artifact Registry: the Docker repository of the flex template's launcher
 * image (templates/Dockerfile). A cleanup policy keeps the newest
 * keep_recent_versions images and deletes the rest.
 */

resource "google_artifact_registry_repository" "this" {
  project       = var.project_id
  location      = var.location
  repository_id = var.repository_id
  description   = "Campaign Pulse flex template images"
  format        = "DOCKER"
  kms_key_name  = var.kms_key_name
  labels        = merge(var.labels, { component = "artifact-registry" })

  docker_config {
    immutable_tags = var.immutable_tags
  }

  cleanup_policy_dry_run = false

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = var.keep_recent_versions
    }
  }

  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      tag_state  = "ANY"
      older_than = "2592000s"
    }
  }
}
