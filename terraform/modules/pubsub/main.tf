/**
 * Pub/Sub for Campaign Pulse: one topic and one pull subscription per
 * marketing source (the pipeline reads all subscriptions and flattens them),
 * and a dead-letter topic that receives, from Pub/Sub itself, every message
 * delivered max_delivery_attempts times without an ack.
 *
 * Pub/Sub forwards dead letters as its own service agent: it must be allowed
 * to publish to the dead-letter topic and to subscribe to (ack on) each source
 * subscription. Both grants are here.
 */

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  sources              = toset(var.sources)
  labels               = merge(var.labels, { component = "pubsub" })
}

resource "google_pubsub_topic" "source" {
  for_each = local.sources

  project                    = var.project_id
  name                       = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  kms_key_name               = var.kms_key_name
  message_retention_duration = var.topic_retention_duration
  labels                     = merge(local.labels, { source = each.key })

  dynamic "message_storage_policy" {
    for_each = length(var.allowed_persistence_regions) > 0 ? [1] : []
    content {
      allowed_persistence_regions = var.allowed_persistence_regions
    }
  }
}

resource "google_pubsub_topic" "dead_letter" {
  project                    = var.project_id
  name                       = "${var.name_prefix}-dead-letter"
  kms_key_name               = var.kms_key_name
  message_retention_duration = var.dead_letter_retention_duration
  labels                     = merge(local.labels, { source = "dead_letter" })

  dynamic "message_storage_policy" {
    for_each = length(var.allowed_persistence_regions) > 0 ? [1] : []
    content {
      allowed_persistence_regions = var.allowed_persistence_regions
    }
  }
}

resource "google_pubsub_subscription" "source" {
  for_each = local.sources

  project                    = var.project_id
  name                       = "${google_pubsub_topic.source[each.key].name}-dataflow"
  topic                      = google_pubsub_topic.source[each.key].id
  ack_deadline_seconds       = var.ack_deadline_seconds
  message_retention_duration = var.message_retention_duration
  retain_acked_messages      = false
  labels                     = merge(local.labels, { source = each.key })

  # A streaming job's subscription must never expire while the job is down.
  expiration_policy {
    ttl = ""
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  # The grant must exist before Pub/Sub forwards the first dead letter.
  depends_on = [google_pubsub_topic_iam_member.dead_letter_publisher]
}

resource "google_pubsub_subscription" "dead_letter" {
  project                    = var.project_id
  name                       = "${google_pubsub_topic.dead_letter.name}-inspect"
  topic                      = google_pubsub_topic.dead_letter.id
  ack_deadline_seconds       = 600
  message_retention_duration = var.dead_letter_retention_duration
  retain_acked_messages      = true
  labels                     = merge(local.labels, { source = "dead_letter" })

  expiration_policy {
    ttl = ""
  }
}

# The Pub/Sub service agent publishes undeliverable messages to the
# dead-letter topic ...
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

# ... and acknowledges them on the source subscription it took them from.
resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each = local.sources

  project      = var.project_id
  subscription = google_pubsub_subscription.source[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}
