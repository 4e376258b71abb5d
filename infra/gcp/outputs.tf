output "service_url" {
  description = "Gateway URL; the OpenAI base URL is this plus \"/v1\"."
  value       = google_cloud_run_v2_service.laneway.uri
}

output "redis_host" {
  description = "Memorystore address (TLS on port 6378), when redis_mode = \"memorystore\"."
  value       = local.use_memorystore ? "${google_redis_instance.lanes[0].host}:${google_redis_instance.lanes[0].port}" : null
}

output "config_object" {
  description = "Where the service reads its config."
  value       = "gs://${local.config_bucket}/${google_storage_bucket_object.config.name}"
}

output "service_account_email" {
  description = "Identity of the service (reads the config object and its secrets only)."
  value       = google_service_account.laneway.email
}
