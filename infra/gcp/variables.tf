variable "project_id" {
  description = "Google Cloud project that hosts laneway."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project id (6-30 lowercase letters, digits, hyphens)."
  }
}

variable "region" {
  description = "Region of the Cloud Run service, the config bucket, Memorystore and the connector."
  type        = string
  default     = "europe-west1"
}

variable "name" {
  description = "Name of the service and prefix of everything else this module creates."
  type        = string
  default     = "laneway"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,19}$", var.name))
    error_message = "name: 3-20 lowercase letters, digits and hyphens, starting with a letter (it prefixes names with tight limits)."
  }
}

variable "image" {
  description = "Container image built from the repository's Dockerfile, e.g. europe-west1-docker.pkg.dev/PROJECT/laneway/laneway:0.1.0."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/.+", var.image))
    error_message = "image must be a full image reference (registry/path:tag or @digest)."
  }
}

variable "enable_apis" {
  description = "Enable the Google Cloud APIs this module uses (Cloud Run, Storage, Secret Manager, Memorystore, Serverless VPC Access)."
  type        = bool
  default     = true
}

variable "config_file" {
  description = "Local path of laneway's config.yaml (LiteLLM proxy dialect); uploaded to GCS and read at cold start."
  type        = string

  validation {
    condition     = can(regex("\\.(ya?ml)$", var.config_file))
    error_message = "config_file must be a .yaml or .yml file."
  }
}

variable "create_config_bucket" {
  description = "Create a private, versioned bucket for the config; false uses config_bucket_name as it is."
  type        = bool
  default     = true
}

variable "config_bucket_name" {
  description = "Bucket for the config: the name of the bucket to create (null picks PROJECT-NAME-config), or an existing bucket with uniform bucket-level access."
  type        = string
  default     = null

  validation {
    condition     = var.config_bucket_name == null || can(regex("^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$", var.config_bucket_name))
    error_message = "config_bucket_name must be a valid bucket name."
  }
}

variable "config_object" {
  description = "Object name of the config; the service account may read only this object."
  type        = string
  default     = "laneway/config.yaml"

  validation {
    condition     = length(var.config_object) > 0 && !startswith(var.config_object, "/")
    error_message = "config_object must be a non-empty name without a leading slash."
  }
}

variable "concurrency" {
  description = "Requests one instance serves at once. Queued requests hold a slot while they wait, so allow for them."
  type        = number
  default     = 80

  validation {
    condition     = var.concurrency >= 1 && var.concurrency <= 1000
    error_message = "concurrency must be between 1 and 1000."
  }
}

variable "request_timeout_seconds" {
  description = "Cloud Run request timeout. Covers queue wait plus the upstream call; streams end when it fires."
  type        = number
  default     = 300

  validation {
    condition     = var.request_timeout_seconds >= 1 && var.request_timeout_seconds <= 3600
    error_message = "request_timeout_seconds must be between 1 and 3600."
  }
}

variable "min_instances" {
  description = "Instances kept warm (0 scales to zero; billed while idle when above 0)."
  type        = number
  default     = 0

  validation {
    condition     = var.min_instances >= 0
    error_message = "min_instances cannot be negative."
  }
}

variable "max_instances" {
  description = "Upper bound of instances (also bounds Redis connections: one pool per instance)."
  type        = number
  default     = 10

  validation {
    condition     = var.max_instances >= 1
    error_message = "max_instances must be at least 1."
  }
}

variable "cpu" {
  description = "vCPU per instance."
  type        = string
  default     = "1"

  validation {
    condition     = contains(["1", "2", "4", "6", "8"], var.cpu)
    error_message = "cpu must be 1, 2, 4, 6 or 8."
  }
}

variable "memory" {
  description = "Memory per instance, e.g. 512Mi or 1Gi."
  type        = string
  default     = "1Gi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.memory))
    error_message = "memory must look like 512Mi or 1Gi."
  }
}

variable "ingress" {
  description = "Who may reach the service over the network."
  type        = string
  default     = "INGRESS_TRAFFIC_ALL"

  validation {
    condition     = contains(["INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"], var.ingress)
    error_message = "ingress must be INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  }
}

variable "allow_unauthenticated" {
  description = "Let anyone invoke the service (OpenAI SDK clients cannot sign Google ID tokens); then master_key_secret_id is required."
  type        = bool
  default     = false
}

variable "master_key_secret_id" {
  description = "Secret Manager secret (id or projects/.../secrets/...) holding the master key; null for none. Read by Cloud Run at start, never by Terraform."
  type        = string
  default     = null
}

variable "provider_key_secret_ids" {
  description = "Environment variable name => Secret Manager secret for provider keys the config references as os.environ/NAME."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.provider_key_secret_ids) : can(regex("^[A-Z_][A-Z0-9_]*$", k))])
    error_message = "provider_key_secret_ids keys must be environment variable names (A-Z, 0-9, _)."
  }
}

variable "secret_manager_secret_ids" {
  description = "Secret Manager secrets the config reads at run time (general_settings.key_management_system = google_secret_manager); the service account gets roles/secretmanager.secretAccessor on exactly these, and GOOGLE_SECRET_MANAGER_PROJECT_ID is set to project_id."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.secret_manager_secret_ids : can(regex("^[A-Za-z0-9_-]{1,255}$", id))])
    error_message = "secret_manager_secret_ids must be secret ids (letters, digits, _ and -)."
  }
}

variable "redis_mode" {
  description = "none keeps lanes in each instance's memory; existing reads REDIS_URL from redis_url_secret_id; memorystore creates Memorystore for Redis (AUTH + TLS) behind a Serverless VPC Access connector."
  type        = string
  default     = "memorystore"

  validation {
    condition     = contains(["none", "existing", "memorystore"], var.redis_mode)
    error_message = "redis_mode must be none, existing or memorystore."
  }
}

variable "redis_url_secret_id" {
  description = "Secret Manager secret holding a redis:// or rediss:// URL, for redis_mode = \"existing\"."
  type        = string
  default     = null
}

variable "network" {
  description = "VPC network for Memorystore and the connector."
  type        = string
  default     = "default"
}

variable "connector_cidr" {
  description = "Unused /28 range in the network for the Serverless VPC Access connector."
  type        = string
  default     = "10.8.0.0/28"

  validation {
    condition     = can(cidrhost(var.connector_cidr, 0)) && endswith(var.connector_cidr, "/28")
    error_message = "connector_cidr must be a /28 CIDR block."
  }
}

variable "connector_machine_type" {
  description = "Machine type of the connector's instances (they bill while they exist)."
  type        = string
  default     = "e2-micro"

  validation {
    condition     = contains(["f1-micro", "e2-micro", "e2-standard-4"], var.connector_machine_type)
    error_message = "connector_machine_type must be f1-micro, e2-micro or e2-standard-4."
  }
}

variable "connector_max_instances" {
  description = "Upper bound of connector instances (minimum is 2)."
  type        = number
  default     = 3

  validation {
    condition     = var.connector_max_instances >= 3 && var.connector_max_instances <= 10
    error_message = "connector_max_instances must be between 3 and 10."
  }
}

variable "redis_tier" {
  description = "BASIC (one node) or STANDARD_HA (replica with automatic failover)."
  type        = string
  default     = "BASIC"

  validation {
    condition     = contains(["BASIC", "STANDARD_HA"], var.redis_tier)
    error_message = "redis_tier must be BASIC or STANDARD_HA."
  }
}

variable "redis_memory_size_gb" {
  description = "Memorystore capacity in GB (the smallest, 1, holds far more lanes than one gateway needs)."
  type        = number
  default     = 1

  validation {
    condition     = var.redis_memory_size_gb >= 1 && var.redis_memory_size_gb <= 300
    error_message = "redis_memory_size_gb must be between 1 and 300."
  }
}

variable "redis_version" {
  description = "Memorystore Redis version."
  type        = string
  default     = "REDIS_7_2"
}

variable "log_level" {
  description = "LANEWAY_LOG_LEVEL."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "environment_name" {
  description = "LANEWAY_ENVIRONMENT (filters deployments by model_info.environment)."
  type        = string
  default     = "production"
}

variable "deletion_protection" {
  description = "Stop Terraform from destroying the Cloud Run service (it holds no data; false lets `terraform destroy` remove it)."
  type        = bool
  default     = false
}

variable "labels" {
  description = "Labels for every resource that takes them."
  type        = map(string)
  default     = {}
}
