data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

data "aws_secretsmanager_secret_version" "master_key" {
  count     = var.master_key_secret_id == null ? 0 : 1
  secret_id = var.master_key_secret_id
}

data "aws_secretsmanager_secret_version" "provider_keys" {
  for_each  = var.provider_key_secret_ids
  secret_id = each.value
}

locals {
  lambda_zip = coalesce(var.lambda_zip_path, "${path.module}/../../build/laneway-lambda-${var.architecture}.zip")
  attach_vpc = var.vpc_id != null && length(var.subnet_ids) > 0
  # Without a VPC no cache is planned at all, so the precondition below reports the real problem.
  create_cache = var.redis_mode == "elasticache" && local.attach_vpc
  partition    = data.aws_partition.current.partition

  redis_url = (
    local.create_cache ? "rediss://${aws_elasticache_serverless_cache.lanes[0].endpoint[0].address}:${aws_elasticache_serverless_cache.lanes[0].endpoint[0].port}" :
    var.redis_mode == "existing" ? var.redis_url : null
  )

  # Secrets become plain environment values here (encrypted at rest by Lambda); null entries
  # are dropped so an unset option leaves no empty variable behind.
  environment = { for k, v in merge(
    var.extra_environment,
    {
      LANEWAY_CONFIG      = "s3://${local.config_bucket}/${aws_s3_object.config.key}"
      LANEWAY_LOG_LEVEL   = var.log_level
      LANEWAY_ENVIRONMENT = var.environment_name
      NO_DOCS             = "True"
      REDIS_URL           = local.redis_url
      LANEWAY_MASTER_KEY  = try(data.aws_secretsmanager_secret_version.master_key[0].secret_string, null)
    },
    { for name, secret in data.aws_secretsmanager_secret_version.provider_keys : name => secret.secret_string },
  ) : k => v if v != null }

  web_adapter_layer = "arn:${local.partition}:lambda:${data.aws_region.current.name}:753240598075:layer:${var.architecture == "arm64" ? "LambdaAdapterLayerArm64" : "LambdaAdapterLayerX86"}:${var.web_adapter_layer_version}"
}

resource "aws_cloudwatch_log_group" "laneway" {
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_iam_role" "laneway" {
  name_prefix = "${var.name}-"
  description = "laneway functions; reads one config object and writes its own logs."
  tags        = var.tags

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy" "read_config_write_logs" {
  name = "read-config-write-logs"
  role = aws_iam_role.laneway.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ReadTheConfigObjectOnly"
        Effect   = "Allow"
        Action   = "s3:GetObject"
        Resource = "arn:${local.partition}:s3:::${local.config_bucket}/${aws_s3_object.config.key}"
      },
      {
        Sid      = "WriteOwnLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = "${aws_cloudwatch_log_group.laneway.arn}:*"
      },
    ]
  })
}

resource "aws_iam_role_policy" "invoke_bedrock" {
  count = var.allow_bedrock ? 1 : 0
  name  = "invoke-bedrock"
  role  = aws_iam_role.laneway.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid    = "InvokeBedrockModels"
      Effect = "Allow"
      Action = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
      Resource = [
        "arn:${local.partition}:bedrock:*::foundation-model/*",
        "arn:${local.partition}:bedrock:*:${data.aws_caller_identity.current.account_id}:inference-profile/*",
      ]
    }]
  })
}

# Run-time reads of the secrets the config names (router/secrets), and of no others.
resource "aws_iam_role_policy" "read_named_secrets" {
  count = length(var.secret_arns) > 0 ? 1 : 0
  name  = "read-named-secrets"
  role  = aws_iam_role.laneway.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid      = "ReadTheNamedSecretsOnly"
      Effect   = "Allow"
      Action   = "secretsmanager:GetSecretValue"
      Resource = var.secret_arns
    }]
  })
}

# Only for the network interfaces a VPC-attached function needs.
resource "aws_iam_role_policy_attachment" "vpc_access" {
  count      = local.attach_vpc ? 1 : 0
  role       = aws_iam_role.laneway.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

resource "aws_lambda_function" "laneway" {
  function_name                  = var.name
  description                    = "laneway gateway (Mangum, buffered responses)"
  role                           = aws_iam_role.laneway.arn
  filename                       = local.lambda_zip
  source_code_hash               = filebase64sha256(local.lambda_zip)
  handler                        = "handler.aws_lambda.handler"
  runtime                        = "python3.12"
  architectures                  = [var.architecture]
  memory_size                    = var.memory_size
  timeout                        = var.timeout
  reserved_concurrent_executions = coalesce(var.reserved_concurrency, -1)
  tags                           = var.tags
  # SnapStart snapshots published versions only.
  publish = var.snap_start

  dynamic "snap_start" {
    for_each = var.snap_start ? [1] : []
    content {
      apply_on = "PublishedVersions"
    }
  }

  environment {
    variables = local.environment
  }

  logging_config {
    log_group  = aws_cloudwatch_log_group.laneway.name
    log_format = "Text"
  }

  dynamic "vpc_config" {
    for_each = local.attach_vpc ? [1] : []
    content {
      subnet_ids         = var.subnet_ids
      security_group_ids = concat([aws_security_group.function[0].id], var.extra_security_group_ids)
    }
  }

  lifecycle {
    precondition {
      condition     = var.function_url_auth_type != "NONE" || var.master_key_secret_id != null
      error_message = "A public Function URL (function_url_auth_type = \"NONE\") needs master_key_secret_id."
    }
    precondition {
      condition     = var.redis_mode != "existing" || var.redis_url != null
      error_message = "redis_mode = \"existing\" needs redis_url."
    }
    precondition {
      condition     = var.create_config_bucket || var.config_bucket_name != null
      error_message = "create_config_bucket = false needs config_bucket_name."
    }
    precondition {
      condition     = var.redis_mode != "elasticache" || (var.vpc_id != null && length(var.subnet_ids) > 0)
      error_message = "redis_mode = \"elasticache\" needs vpc_id and subnet_ids."
    }
    precondition {
      condition     = var.vpc_id == null || length(var.subnet_ids) > 0
      error_message = "vpc_id is set, so subnet_ids must list the function's private subnets."
    }
    precondition {
      condition     = !var.enable_streaming || var.vpc_id == null
      error_message = "Function URLs do not stream responses for VPC-attached functions: streaming needs redis_mode none or an existing Redis reachable without a VPC."
    }
  }

  depends_on = [aws_iam_role_policy.read_config_write_logs, aws_iam_role_policy_attachment.vpc_access]
}

resource "aws_lambda_alias" "live" {
  count            = var.snap_start ? 1 : 0
  name             = "live"
  function_name    = aws_lambda_function.laneway.function_name
  function_version = aws_lambda_function.laneway.version
}

resource "aws_lambda_function_url" "laneway" {
  function_name      = aws_lambda_function.laneway.function_name
  qualifier          = var.snap_start ? aws_lambda_alias.live[0].name : null
  authorization_type = var.function_url_auth_type
  invoke_mode        = "BUFFERED"
}

# run.sh (shipped in the package) starts uvicorn; the Web Adapter layer's /opt/bootstrap wraps
# it and relays each HTTP response as a stream.
resource "aws_lambda_function" "streaming" {
  count                          = var.enable_streaming ? 1 : 0
  function_name                  = "${var.name}-streaming"
  description                    = "laneway gateway under uvicorn behind the Lambda Web Adapter (true streaming)"
  role                           = aws_iam_role.laneway.arn
  filename                       = local.lambda_zip
  source_code_hash               = filebase64sha256(local.lambda_zip)
  handler                        = "run.sh"
  runtime                        = "python3.12"
  architectures                  = [var.architecture]
  memory_size                    = var.memory_size
  timeout                        = var.timeout
  reserved_concurrent_executions = coalesce(var.reserved_concurrency, -1)
  layers                         = [local.web_adapter_layer]
  tags                           = var.tags

  environment {
    variables = merge(local.environment, {
      AWS_LAMBDA_EXEC_WRAPPER      = "/opt/bootstrap"
      AWS_LWA_INVOKE_MODE          = "response_stream"
      AWS_LWA_PORT                 = "8080"
      AWS_LWA_READINESS_CHECK_PATH = "/health/liveliness"
      PORT                         = "8080"
    })
  }

  logging_config {
    log_group  = aws_cloudwatch_log_group.laneway.name
    log_format = "Text"
  }

  depends_on = [aws_iam_role_policy.read_config_write_logs]
}

resource "aws_lambda_function_url" "streaming" {
  count              = var.enable_streaming ? 1 : 0
  function_name      = aws_lambda_function.streaming[0].function_name
  authorization_type = var.function_url_auth_type
  invoke_mode        = "RESPONSE_STREAM"
}
