/**
 * Cloud Storage for Dataflow: a staging bucket (the pipeline binary each
 * launch uploads), a temp bucket (the job's scratch files) and a template
 * bucket (the flex template spec that `make template` writes).
 *
 * All three: uniform bucket-level access (IAM only, no object ACLs), public
 * access prevention enforced, lifecycle rules on temp and templates. Only the
 * template bucket is versioned: its spec is the one file worth rolling back.
 *
 * Soft delete is off on staging and temp (scratch_soft_delete_seconds), as
 * Dataflow advises for the buckets it writes its files to.
 *
 * Staging keeps its files unless staging_retention_days is set: it holds the
 * worker binary a running job's new workers download, every time Dataflow
 * scales up or replaces a worker, for as long as the job runs. An age rule
 * would delete a long-lived streaming job's binary under it, and from then
 * on the job could neither scale up nor replace a failed worker. Each launch
 * adds one binary; delete the ones of jobs that no longer run.
 */

locals {
  buckets = {
    staging = {
      versioning  = false
      soft_delete = var.scratch_soft_delete_seconds
      rules = var.staging_retention_days > 0 ? [
        { action = "Delete", age = var.staging_retention_days, num_newer_versions = null, with_state = "ANY" },
      ] : []
    }
    temp = {
      versioning  = false
      soft_delete = var.scratch_soft_delete_seconds
      rules = [
        { action = "Delete", age = var.temp_retention_days, num_newer_versions = null, with_state = "ANY" },
      ]
    }
    templates = {
      versioning  = true
      soft_delete = null # Cloud Storage's default
      rules = [
        { action = "Delete", age = null, num_newer_versions = var.template_noncurrent_versions, with_state = "ARCHIVED" },
      ]
    }
  }
}

resource "google_storage_bucket" "this" {
  for_each = local.buckets

  #checkov:skip=CKV_GCP_78:Versioning is on for the template bucket only (each.value.versioning); staging holds re-creatable binaries (a new launch uploads its own) and temp short-lived scratch files that a lifecycle rule deletes.
  project                     = var.project_id
  name                        = "${var.name_prefix}-${each.key}"
  location                    = var.location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy
  labels                      = merge(var.labels, { component = "gcs", purpose = each.key })

  versioning {
    enabled = each.value.versioning
  }

  dynamic "lifecycle_rule" {
    for_each = each.value.rules
    content {
      action {
        type = lifecycle_rule.value.action
      }
      condition {
        age                = lifecycle_rule.value.age
        num_newer_versions = lifecycle_rule.value.num_newer_versions
        with_state         = lifecycle_rule.value.with_state
      }
    }
  }

  # Dataflow writes and deletes many files in staging and temp; soft delete
  # there would bill each deleted one for its retention again.
  dynamic "soft_delete_policy" {
    for_each = each.value.soft_delete == null ? [] : [each.value.soft_delete]
    content {
      retention_duration_seconds = soft_delete_policy.value
    }
  }

  # Incomplete multipart uploads of an interrupted staging upload.
  lifecycle_rule {
    action {
      type = "AbortIncompleteMultipartUpload"
    }
    condition {
      age = 1
    }
  }

  dynamic "encryption" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      default_kms_key_name = encryption.value
    }
  }

  dynamic "logging" {
    for_each = var.log_bucket == null ? [] : [var.log_bucket]
    content {
      log_bucket        = logging.value
      log_object_prefix = "${var.name_prefix}-${each.key}/"
    }
  }
}
