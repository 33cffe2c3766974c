output "dataset_id" {
  description = "Dataset id, the pipeline's BigQuery dataset parameter."
  value       = google_bigquery_dataset.this.dataset_id
}

output "dataset_full_id" {
  description = "Dataset id as projects/P/datasets/D."
  value       = google_bigquery_dataset.this.id
}

output "table_ids" {
  description = "Table name => full table id (projects/P/datasets/D/tables/T)."
  value       = { for k, t in google_bigquery_table.this : k => t.id }
}

output "location" {
  description = "Location of the dataset, where queries of it must run."
  value       = google_bigquery_dataset.this.location
}
