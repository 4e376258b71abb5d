data "google_compute_network" "vpc" {
  count   = local.use_memorystore ? 1 : 0
  project = var.project_id
  name    = var.network
}

resource "google_redis_instance" "lanes" {
  count              = local.use_memorystore ? 1 : 0
  project            = var.project_id
  region             = var.region
  name               = "${var.name}-lanes"
  display_name       = "laneway lanes, rate limits and cooldowns"
  tier               = var.redis_tier
  memory_size_gb     = var.redis_memory_size_gb
  redis_version      = var.redis_version
  authorized_network = data.google_compute_network.vpc[0].id
  connect_mode       = "DIRECT_PEERING"
  labels             = var.labels

  auth_enabled            = true
  transit_encryption_mode = "SERVER_AUTHENTICATION"

  depends_on = [google_project_service.apis]
}

# Cloud Run reaches the instance's private address through this connector.
resource "google_vpc_access_connector" "laneway" {
  count         = local.use_memorystore ? 1 : 0
  project       = var.project_id
  region        = var.region
  name          = "${var.name}-vpc"
  network       = var.network
  ip_cidr_range = var.connector_cidr
  machine_type  = var.connector_machine_type
  min_instances = 2
  max_instances = var.connector_max_instances

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret" "redis_url" {
  count     = local.use_memorystore ? 1 : 0
  project   = var.project_id
  secret_id = "${var.name}-redis-url"
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

# The URL carries the AUTH string and points redis-py at the mounted CA. That CA belongs to this
# instance alone, so trusting only it pins the server; names in the certificate are not checked
# because the URL addresses the instance by its private IP.
resource "google_secret_manager_secret_version" "redis_url" {
  count  = local.use_memorystore ? 1 : 0
  secret = google_secret_manager_secret.redis_url[0].id
  secret_data = format(
    "rediss://:%s@%s:%d/0?ssl_ca_certs=%s/ca.pem&ssl_check_hostname=false",
    google_redis_instance.lanes[0].auth_string,
    google_redis_instance.lanes[0].host,
    google_redis_instance.lanes[0].port,
    local.redis_ca_dir,
  )
}

resource "google_secret_manager_secret" "redis_ca" {
  count     = local.use_memorystore ? 1 : 0
  project   = var.project_id
  secret_id = "${var.name}-redis-ca"
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "redis_ca" {
  count       = local.use_memorystore ? 1 : 0
  secret      = google_secret_manager_secret.redis_ca[0].id
  secret_data = google_redis_instance.lanes[0].server_ca_certs[0].cert
}
