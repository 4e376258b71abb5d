locals {
  use_memorystore = var.redis_mode == "memorystore"
  config_bucket   = var.create_config_bucket ? google_storage_bucket.config[0].name : var.config_bucket_name

  # Every secret the service reads, by environment variable name. Values stay in Secret
  # Manager: Cloud Run resolves them when an instance starts, so they never enter Terraform state
  # (except the Memorystore URL, which Terraform itself creates).
  # A missing secret id is dropped here so that the preconditions below report it clearly.
  secret_env = { for k, v in merge(
    var.provider_key_secret_ids,
    { LANEWAY_MASTER_KEY = var.master_key_secret_id },
    var.redis_mode == "existing" ? { REDIS_URL = var.redis_url_secret_id } : {},
    local.use_memorystore ? { REDIS_URL = google_secret_manager_secret.redis_url[0].secret_id } : {},
  ) : k => v if v != null }

  plain_env = merge({
    LANEWAY_CONFIG      = "gs://${local.config_bucket}/${google_storage_bucket_object.config.name}"
    LANEWAY_LOG_LEVEL   = var.log_level
    LANEWAY_ENVIRONMENT = var.environment_name
    NO_DOCS             = "True"
  }, length(var.secret_manager_secret_ids) > 0 ? { GOOGLE_SECRET_MANAGER_PROJECT_ID = var.project_id } : {})

  redis_ca_dir = "/etc/laneway/redis-ca"
}

resource "google_project_service" "apis" {
  for_each = var.enable_apis ? toset([
    "run.googleapis.com",
    "storage.googleapis.com",
    "secretmanager.googleapis.com",
    "redis.googleapis.com",
    "vpcaccess.googleapis.com",
  ]) : toset([])
  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

resource "google_service_account" "laneway" {
  project      = var.project_id
  account_id   = "${var.name}-run"
  display_name = "laneway on Cloud Run: reads its config object and its secrets only"
}

resource "google_cloud_run_v2_service" "laneway" {
  name     = var.name
  project  = var.project_id
  location = var.region
  ingress  = var.ingress
  labels   = var.labels

  deletion_protection = var.deletion_protection

  template {
    service_account                  = google_service_account.laneway.email
    timeout                          = "${var.request_timeout_seconds}s"
    max_instance_request_concurrency = var.concurrency
    labels                           = var.labels

    scaling {
      min_instance_count = var.min_instances
      max_instance_count = var.max_instances
    }

    # Only private ranges go through the connector: provider APIs stay on Google's egress.
    dynamic "vpc_access" {
      for_each = local.use_memorystore ? [1] : []
      content {
        connector = google_vpc_access_connector.laneway[0].id
        egress    = "PRIVATE_RANGES_ONLY"
      }
    }

    containers {
      image = var.image

      # Cloud Run sets PORT to this; the image's entry command listens on $PORT.
      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.memory
        }
        cpu_idle          = true
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.plain_env
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = local.secret_env
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value
              version = "latest"
            }
          }
        }
      }

      startup_probe {
        http_get {
          path = "/health/readiness"
        }
        period_seconds    = 2
        failure_threshold = 30
      }

      liveness_probe {
        http_get {
          path = "/health/liveliness"
        }
        period_seconds = 30
      }

      dynamic "volume_mounts" {
        for_each = local.use_memorystore ? [1] : []
        content {
          name       = "redis-ca"
          mount_path = local.redis_ca_dir
        }
      }
    }

    # Memorystore's TLS certificate is signed by a CA unique to the instance; the client needs it.
    dynamic "volumes" {
      for_each = local.use_memorystore ? [1] : []
      content {
        name = "redis-ca"
        secret {
          secret = google_secret_manager_secret.redis_ca[0].secret_id
          items {
            version = "latest"
            path    = "ca.pem"
          }
        }
      }
    }
  }

  lifecycle {
    precondition {
      condition     = !var.allow_unauthenticated || var.master_key_secret_id != null
      error_message = "allow_unauthenticated = true needs master_key_secret_id."
    }
    precondition {
      condition     = var.redis_mode != "existing" || var.redis_url_secret_id != null
      error_message = "redis_mode = \"existing\" needs redis_url_secret_id."
    }
    precondition {
      condition     = var.create_config_bucket || var.config_bucket_name != null
      error_message = "create_config_bucket = false needs config_bucket_name."
    }
  }

  depends_on = [
    google_project_service.apis,
    google_secret_manager_secret_iam_member.read,
    google_storage_bucket_iam_member.read_config_object,
  ]
}

resource "google_cloud_run_v2_service_iam_member" "public" {
  count    = var.allow_unauthenticated ? 1 : 0
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.laneway.name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

resource "google_secret_manager_secret_iam_member" "read" {
  for_each  = local.secret_env_with_ca
  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.laneway.email}"
}

# Run-time reads of the secrets the config names (router/secrets), and of no others.
resource "google_secret_manager_secret_iam_member" "read_named" {
  for_each  = toset(var.secret_manager_secret_ids)
  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.laneway.email}"
}

locals {
  secret_env_with_ca = merge(
    local.secret_env,
    local.use_memorystore ? { REDIS_CA = google_secret_manager_secret.redis_ca[0].secret_id } : {},
  )
}
