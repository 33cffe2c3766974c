output "kms_key_name" {
  description = "The key, passed through once its grants exist: modules that read it from here are created after the grants."
  value       = var.kms_key_name == null ? null : var.kms_key_name
  depends_on  = [google_kms_crypto_key_iam_member.service_agents]
}

output "granted_members" {
  description = "Service => service agent granted the key."
  value       = local.granted
}
