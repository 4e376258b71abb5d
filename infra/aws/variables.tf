variable "name" {
  description = "Name of the function and prefix of everything else this module creates."
  type        = string
  default     = "laneway"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,39}$", var.name))
    error_message = "name: lowercase letters, digits and hyphens, starting with a letter, at most 40 characters."
  }
}

variable "architecture" {
  description = "Lambda CPU architecture; must match the --arch given to scripts/build-lambda.py."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "lambda_zip_path" {
  description = "Lambda package built by scripts/build-lambda.py; null means build/laneway-lambda-<architecture>.zip in the repository."
  type        = string
  default     = null
}

variable "memory_size" {
  description = "Function memory in MB (CPU share grows with it)."
  type        = number
  default     = 1024

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be between 128 and 10240 MB."
  }
}

variable "timeout" {
  description = "Seconds one invocation may run. Queued requests wait inside the invocation, so leave room for the longest queue wait plus the slowest upstream call."
  type        = number
  default     = 300

  validation {
    condition     = var.timeout >= 3 && var.timeout <= 900
    error_message = "timeout must be between 3 and 900 seconds (the Lambda maximum)."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions for each function; null for none."
  type        = number
  default     = null

  validation {
    condition     = var.reserved_concurrency == null || try(var.reserved_concurrency >= 0, false)
    error_message = "reserved_concurrency must be null or a number of executions (0 or more)."
  }
}

variable "function_url_auth_type" {
  description = "AWS_IAM needs SigV4-signed callers; NONE makes the URL public and then requires master_key_secret_id so that laneway checks a bearer key itself."
  type        = string
  default     = "AWS_IAM"

  validation {
    condition     = contains(["AWS_IAM", "NONE"], var.function_url_auth_type)
    error_message = "function_url_auth_type must be AWS_IAM or NONE."
  }
}

variable "public_invoke_permission_via_cli" {
  description = "With auth type NONE, add the lambda:InvokeFunction permission (limited to calls through the URL) that new function URLs need, using the AWS CLI, because aws provider 5.x cannot express it."
  type        = bool
  default     = true
}

variable "config_file" {
  description = "Local path of laneway's config.yaml (LiteLLM proxy dialect); uploaded to S3 and read by the function at cold start."
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
  description = "Bucket for the config: the name of the bucket to create (null picks a unique NAME-config-... name), or an existing bucket."
  type        = string
  default     = null

  validation {
    condition     = var.config_bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.config_bucket_name))
    error_message = "config_bucket_name must be a valid S3 bucket name."
  }
}

variable "config_key" {
  description = "Object key of the config; the function may read only this object."
  type        = string
  default     = "laneway/config.yaml"

  validation {
    condition     = length(var.config_key) > 0 && !startswith(var.config_key, "/")
    error_message = "config_key must be a non-empty key without a leading slash."
  }
}

variable "master_key_secret_id" {
  description = "Name or ARN of a Secrets Manager secret whose SecretString is the master key; null for none. Its value is read at plan time and stored in the function's environment (and in Terraform state)."
  type        = string
  default     = null
}

variable "provider_key_secret_ids" {
  description = "Environment variable name => Secrets Manager secret (name or ARN) for provider keys the config references as os.environ/NAME, e.g. { OPENAI_API_KEY = \"laneway/openai\" }."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.provider_key_secret_ids) : can(regex("^[A-Z_][A-Z0-9_]*$", k))])
    error_message = "provider_key_secret_ids keys must be environment variable names (A-Z, 0-9, _)."
  }
}

variable "secret_arns" {
  description = "ARNs of the Secrets Manager secrets the config reads at run time (general_settings.key_management_system = aws_secret_manager); the function may call secretsmanager:GetSecretValue on exactly these."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.secret_arns : can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", arn))])
    error_message = "secret_arns must be Secrets Manager secret ARNs (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)."
  }
}

variable "extra_environment" {
  description = "More non-secret environment variables for the function."
  type        = map(string)
  default     = {}
}

variable "allow_bedrock" {
  description = "Let the function invoke Amazon Bedrock models with its own role."
  type        = bool
  default     = false
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

variable "log_retention_days" {
  description = "CloudWatch Logs retention of the function's log group."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

variable "redis_mode" {
  description = "none keeps lanes and limits in each instance's memory; existing uses redis_url; elasticache creates an ElastiCache Serverless cache (TLS) in vpc_id/subnet_ids."
  type        = string
  default     = "none"

  validation {
    condition     = contains(["none", "existing", "elasticache"], var.redis_mode)
    error_message = "redis_mode must be none, existing or elasticache."
  }
}

variable "redis_url" {
  description = "redis:// or rediss:// URL for redis_mode = \"existing\"."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.redis_url == null || can(regex("^rediss?://", var.redis_url))
    error_message = "redis_url must start with redis:// or rediss://."
  }
}

variable "vpc_id" {
  description = "VPC for the function (and the cache); null keeps the function outside any VPC."
  type        = string
  default     = null
}

variable "subnet_ids" {
  description = "Private subnets for the function and cache, with a NAT gateway or VPC endpoints so the function still reaches the providers and S3."
  type        = list(string)
  default     = []
}

variable "extra_security_group_ids" {
  description = "Extra security groups for the function, e.g. one allowed into an existing Redis or a model server in the VPC."
  type        = list(string)
  default     = []
}

variable "cache_engine" {
  description = "Engine of the ElastiCache Serverless cache."
  type        = string
  default     = "valkey"

  validation {
    condition     = contains(["valkey", "redis"], var.cache_engine)
    error_message = "cache_engine must be valkey or redis."
  }
}

variable "cache_max_data_storage_gb" {
  description = "Upper bound of the cache's data in GB (lanes need little; this caps cost)."
  type        = number
  default     = 1

  validation {
    condition     = var.cache_max_data_storage_gb >= 1 && var.cache_max_data_storage_gb <= 5000
    error_message = "cache_max_data_storage_gb must be between 1 and 5000."
  }
}

variable "cache_max_ecpu_per_second" {
  description = "Upper bound of ElastiCache Processing Units per second."
  type        = number
  default     = 5000

  validation {
    condition     = var.cache_max_ecpu_per_second >= 1000 && var.cache_max_ecpu_per_second <= 15000000
    error_message = "cache_max_ecpu_per_second must be between 1000 and 15000000."
  }
}

variable "snap_start" {
  description = "Lambda SnapStart for the buffered function: publish a version per change, behind the alias \"live\" that the Function URL then serves, and restore new instances from its snapshot (see docs/deploy-aws.md)."
  type        = bool
  default     = false
}

variable "enable_streaming" {
  description = "Add a second function whose URL streams (RESPONSE_STREAM) through the Lambda Web Adapter running laneway under uvicorn. The main URL is buffered."
  type        = bool
  default     = false
}

variable "web_adapter_layer_version" {
  description = "Version of the public LambdaAdapterLayer (account 753240598075) attached to the streaming function."
  type        = number
  default     = 26
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
