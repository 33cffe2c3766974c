output "instance_name" {
  description = "Bigtable instance id, the pipeline's Bigtable instance parameter."
  value       = google_bigtable_instance.this.name
}

output "instance_id" {
  description = "Full instance id (projects/P/instances/I)."
  value       = google_bigtable_instance.this.id
}

output "table_names" {
  description = "Names of the tables created."
  value       = [for t in google_bigtable_table.this : t.name]
}
