resource "google_storage_bucket" "config" {
  count                       = var.create_config_bucket ? 1 : 0
  project                     = var.project_id
  name                        = coalesce(var.config_bucket_name, "${var.project_id}-${var.name}-config")
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = var.labels

  # Versions let a bad config be rolled back by restoring the previous generation.
  versioning {
    enabled = true
  }

  depends_on = [google_project_service.apis]
}

resource "google_storage_bucket_object" "config" {
  bucket       = local.config_bucket
  name         = var.config_object
  source       = var.config_file
  content_type = "application/yaml"
}

# Read access to this one object only: an IAM condition on the object's resource name
# (conditions need uniform bucket-level access on the bucket).
resource "google_storage_bucket_iam_member" "read_config_object" {
  bucket = local.config_bucket
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.laneway.email}"

  condition {
    title       = "laneway-config-object-only"
    description = "Only the laneway config object"
    expression  = "resource.name == \"projects/_/buckets/${local.config_bucket}/objects/${google_storage_bucket_object.config.name}\""
  }
}
