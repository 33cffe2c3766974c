/**
 * BigQuery for Campaign Pulse: the dataset and the three tables the pipeline
 * writes. Their schemas are not written here: each table reads
 * schemas/<table>.json, generated from the Go row types in
 * transforms/rows.go, so Terraform, the pipeline and dbt share one
 * definition (a Go test in terraform/ checks that every table of
 * transforms.Tables is below and that partitioning and clustering name real
 * columns).
 *
 * Every table is partitioned by day on its event-time (or rejection-time)
 * column and clustered by campaign and platform, the filters every mart and
 * dashboard uses.
 */

locals {
  schemas_dir = coalesce(var.schemas_dir, "${path.module}/../../schemas")

  tables = {
    fact_campaign_metrics_1m = {
      description     = "One row per emitted pane of a one-minute window x campaign x platform x event type; the highest pane_version of a window key is the complete one."
      partition_field = "window_start"
      clustering      = ["campaign_id", "platform"]
      expiration_days = var.partition_expiration_days
    }
    fact_marketing_events = {
      description     = "One row per valid, de-duplicated event, late or too late, with its enrichment."
      partition_field = "event_timestamp"
      clustering      = ["campaign_id", "platform"]
      expiration_days = var.partition_expiration_days
    }
    dead_letter_events = {
      description     = "Every rejected input record with its stage, error code, reason and raw payload, for replay."
      partition_field = "processing_timestamp"
      clustering      = ["stage", "error_code"]
      expiration_days = var.dead_letter_expiration_days
    }
  }
}

resource "google_bigquery_dataset" "this" {
  project                    = var.project_id
  dataset_id                 = var.dataset_id
  friendly_name              = "Campaign Pulse"
  description                = "Star-schema facts written by the Campaign Pulse streaming pipeline; dbt builds the marts from them."
  location                   = var.location
  delete_contents_on_destroy = var.delete_contents_on_destroy
  labels                     = merge(var.labels, { component = "bigquery" })

  dynamic "default_encryption_configuration" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      kms_key_name = default_encryption_configuration.value
    }
  }
}

resource "google_bigquery_table" "this" {
  for_each = local.tables

  project                  = var.project_id
  dataset_id               = google_bigquery_dataset.this.dataset_id
  table_id                 = each.key
  description              = each.value.description
  schema                   = file("${local.schemas_dir}/${each.key}.json")
  clustering               = each.value.clustering
  require_partition_filter = var.require_partition_filter
  deletion_protection      = var.deletion_protection
  labels                   = merge(var.labels, { component = "bigquery", table = each.key })

  time_partitioning {
    type          = "DAY"
    field         = each.value.partition_field
    expiration_ms = each.value.expiration_days == null ? null : each.value.expiration_days * 86400000
  }

  dynamic "encryption_configuration" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      kms_key_name = encryption_configuration.value
    }
  }
}
