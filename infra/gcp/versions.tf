terraform {
  required_version = ">= 1.5"

  # google 6.0 added deletion_protection to Cloud Run services, which this module sets.
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 8.0"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}
