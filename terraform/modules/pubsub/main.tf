/**
 * Pub/Sub for Campaign Pulse: one topic and one pull subscription per
 * marketing source (the pipeline reads all subscriptions and flattens them).
 *
 * The subscriptions have no dead-letter policy and no retry policy: Pub/Sub
 * documents both as not supported with Dataflow. Dataflow acks a message
 * once it has committed it durably and extends the deadline while it holds
 * it; under a backlog or a worker restart missed extensions count as
 * delivery attempts, and a dead-letter policy would move messages the job
 * still holds to a topic no one reads, losing them silently. A record the
 * pipeline cannot use goes to its own dead letter (the dead_letter_events
 * table) with a reason; nothing needs Pub/Sub's.
 */

locals {
  sources = toset(var.sources)
  labels  = merge(var.labels, { component = "pubsub" })
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
}
