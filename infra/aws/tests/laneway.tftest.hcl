# Plan/apply checks against a mocked AWS provider: nothing is created and no credentials are
# needed. Run from infra/aws with `terraform test` (Terraform >= 1.7).

mock_provider "aws" {
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_secretsmanager_secret_version" {
    defaults = { secret_string = "sk-test-from-secrets-manager" }
  }
  # The provider checks ARNs it receives, so the mocked ones must look real.
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/laneway-mock" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/laneway" }
  }
  mock_resource "aws_lambda_function" {
    defaults = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:laneway" }
  }
  mock_resource "aws_elasticache_serverless_cache" {
    defaults = {
      endpoint = [{ address = "lanes.serverless.euw1.cache.amazonaws.com", port = 6379 }]
    }
  }
}

variables {
  config_file     = "tests/fixture-config.yaml"
  lambda_zip_path = "tests/fixture-config.yaml" # any file: only its hash is taken
  # The CLI grant would run the real AWS CLI; the tests check the Terraform-side grants only.
  public_invoke_permission_via_cli = false
}

run "defaults_are_private_buffered_and_stateless" {
  command = apply

  assert {
    condition     = aws_lambda_function.laneway.handler == "handler.aws_lambda.handler"
    error_message = "the buffered function must use laneway's Mangum handler"
  }
  assert {
    condition     = aws_lambda_function.laneway.runtime == "python3.12" && aws_lambda_function.laneway.architectures == tolist(["arm64"])
    error_message = "python3.12 on arm64 by default"
  }
  assert {
    condition     = aws_lambda_function_url.laneway.invoke_mode == "BUFFERED" && aws_lambda_function_url.laneway.authorization_type == "AWS_IAM"
    error_message = "the main URL is buffered and IAM-protected by default"
  }
  assert {
    condition     = length(aws_lambda_function.streaming) == 0 && length(aws_elasticache_serverless_cache.lanes) == 0
    error_message = "streaming function and cache are opt-in"
  }
  assert {
    condition     = aws_lambda_function.laneway.environment[0].variables["LANEWAY_CONFIG"] == "s3://${aws_s3_bucket.config[0].id}/laneway/config.yaml"
    error_message = "the function must be pointed at the uploaded config object"
  }
  assert {
    condition     = !contains(keys(aws_lambda_function.laneway.environment[0].variables), "REDIS_URL") && !contains(keys(aws_lambda_function.laneway.environment[0].variables), "LANEWAY_MASTER_KEY")
    error_message = "unset options must not leave empty variables behind"
  }
  assert {
    condition     = jsondecode(aws_iam_role_policy.read_config_write_logs.policy).Statement[0].Resource == "arn:aws:s3:::${aws_s3_bucket.config[0].id}/laneway/config.yaml"
    error_message = "the role may read the config object and nothing else in S3"
  }
  assert {
    condition     = length(aws_lambda_permission.public_url) == 0
    error_message = "an IAM-protected URL needs no public grant"
  }
}

run "public_streaming_with_secrets" {
  command = apply

  variables {
    function_url_auth_type  = "NONE"
    master_key_secret_id    = "laneway/master-key"
    provider_key_secret_ids = { OPENAI_API_KEY = "laneway/openai" }
    enable_streaming        = true
    redis_mode              = "existing"
    redis_url               = "rediss://redis.example.internal:6379"
    architecture            = "x86_64"
  }

  assert {
    condition     = aws_lambda_function_url.streaming[0].invoke_mode == "RESPONSE_STREAM"
    error_message = "the streaming URL must use RESPONSE_STREAM"
  }
  assert {
    condition     = aws_lambda_function.streaming[0].handler == "run.sh" && aws_lambda_function.streaming[0].environment[0].variables["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    error_message = "the streaming function runs run.sh behind the Web Adapter wrapper"
  }
  assert {
    condition     = aws_lambda_function.streaming[0].layers[0] == "arn:aws:lambda:eu-west-1:753240598075:layer:LambdaAdapterLayerX86:26"
    error_message = "the Web Adapter layer must match the architecture"
  }
  assert {
    condition     = aws_lambda_function.laneway.environment[0].variables["LANEWAY_MASTER_KEY"] == "sk-test-from-secrets-manager" && aws_lambda_function.laneway.environment[0].variables["OPENAI_API_KEY"] == "sk-test-from-secrets-manager"
    error_message = "secrets must reach the function's environment"
  }
  assert {
    condition     = aws_lambda_function.laneway.environment[0].variables["REDIS_URL"] == "rediss://redis.example.internal:6379"
    error_message = "an existing Redis is passed as REDIS_URL"
  }
  assert {
    condition     = length(aws_lambda_permission.public_url) == 2
    error_message = "both public URLs need the InvokeFunctionUrl grant"
  }
}

run "elasticache_in_a_vpc" {
  command = apply

  variables {
    redis_mode = "elasticache"
    vpc_id     = "vpc-0123456789abcdef0"
    subnet_ids = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
  }

  assert {
    condition     = aws_lambda_function.laneway.environment[0].variables["REDIS_URL"] == "rediss://lanes.serverless.euw1.cache.amazonaws.com:6379"
    error_message = "the cache is reached over TLS (rediss://)"
  }
  assert {
    condition     = length(aws_lambda_function.laneway.vpc_config) == 1 && length(aws_iam_role_policy_attachment.vpc_access) == 1
    error_message = "the function joins the VPC and may manage its network interfaces"
  }
  assert {
    condition     = aws_vpc_security_group_ingress_rule.cache_from_function[0].referenced_security_group_id == aws_security_group.function[0].id
    error_message = "only the function's security group may reach the cache"
  }
}

run "snap_start_publishes_and_serves_the_alias" {
  command = apply

  variables {
    snap_start             = true
    function_url_auth_type = "NONE"
    master_key_secret_id   = "laneway/master-key"
  }

  assert {
    condition     = aws_lambda_function.laneway.publish && aws_lambda_function.laneway.snap_start[0].apply_on == "PublishedVersions"
    error_message = "SnapStart needs published versions"
  }
  assert {
    condition     = aws_lambda_function_url.laneway.qualifier == "live" && aws_lambda_alias.live[0].name == "live"
    error_message = "the Function URL must serve the alias, whose versions have snapshots"
  }
  assert {
    condition     = aws_lambda_permission.public_url["main"].qualifier == "live"
    error_message = "the public grant must name the alias the URL is on"
  }
}

run "elasticache_without_a_vpc_is_refused" {
  command = plan

  variables {
    redis_mode = "elasticache"
  }

  expect_failures = [aws_lambda_function.laneway]
}

run "streaming_in_a_vpc_is_refused" {
  command = plan

  variables {
    enable_streaming = true
    vpc_id           = "vpc-0123456789abcdef0"
    subnet_ids       = ["subnet-0123456789abcdef0"]
  }

  expect_failures = [aws_lambda_function.laneway]
}

run "public_url_without_master_key_is_refused" {
  command = plan

  variables {
    function_url_auth_type = "NONE"
  }

  expect_failures = [aws_lambda_function.laneway]
}

run "timeout_above_lambda_maximum_is_refused" {
  command = plan

  variables {
    timeout = 901
  }

  expect_failures = [var.timeout]
}

run "named_secrets_only_are_readable_at_run_time" {
  command = apply

  variables {
    secret_arns = [
      "arn:aws:secretsmanager:eu-west-1:123456789012:secret:laneway/openai-AbCdEf",
      "arn:aws:secretsmanager:eu-west-1:123456789012:secret:laneway/anthropic-GhIjKl",
    ]
  }

  assert {
    condition     = length(aws_iam_role_policy.read_named_secrets) == 1
    error_message = "named secrets get one policy"
  }
  assert {
    condition     = jsondecode(aws_iam_role_policy.read_named_secrets[0].policy).Statement[0].Action == "secretsmanager:GetSecretValue"
    error_message = "the function may only read the secrets' values"
  }
  assert {
    condition     = jsonencode(jsondecode(aws_iam_role_policy.read_named_secrets[0].policy).Statement[0].Resource) == jsonencode(var.secret_arns)
    error_message = "exactly the named secrets, nothing else"
  }
}

run "no_named_secrets_no_policy" {
  command = plan

  assert {
    condition     = length(aws_iam_role_policy.read_named_secrets) == 0
    error_message = "without secret_arns the role reads no secrets at run time"
  }
}

run "secret_arns_must_be_secret_arns" {
  command = plan

  variables {
    secret_arns = ["arn:aws:s3:::some-bucket"]
  }
  expect_failures = [var.secret_arns]
}
