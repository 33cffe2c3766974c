output "topic_ids" {
  description = "Source name => topic id (projects/P/topics/T), where each marketing source publishes its events."
  value       = { for k, t in google_pubsub_topic.source : k => t.id }
}

output "topic_names" {
  description = "Source name => short topic name, for IAM bindings."
  value       = { for k, t in google_pubsub_topic.source : k => t.name }
}

output "subscription_ids" {
  description = "Source name => subscription id (projects/P/subscriptions/S) the pipeline reads."
  value       = { for k, s in google_pubsub_subscription.source : k => s.id }
}

output "subscription_names" {
  description = "Source name => short subscription name, for IAM bindings."
  value       = { for k, s in google_pubsub_subscription.source : k => s.name }
}
