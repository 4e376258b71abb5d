output "function_url" {
  description = "Gateway URL (buffered responses); the OpenAI base URL is this plus \"v1\"."
  value       = aws_lambda_function_url.laneway.function_url
}

output "streaming_function_url" {
  description = "Gateway URL with true response streaming, when enable_streaming is set."
  value       = var.enable_streaming ? aws_lambda_function_url.streaming[0].function_url : null
}

output "cache_endpoint" {
  description = "ElastiCache Serverless endpoint (TLS) used as REDIS_URL, when redis_mode = \"elasticache\"."
  value       = local.create_cache ? "${aws_elasticache_serverless_cache.lanes[0].endpoint[0].address}:${aws_elasticache_serverless_cache.lanes[0].endpoint[0].port}" : null
}

output "function_name" {
  description = "Name of the buffered function (for logs and metrics)."
  value       = aws_lambda_function.laneway.function_name
}

output "config_object" {
  description = "Where the function reads its config."
  value       = "s3://${local.config_bucket}/${aws_s3_object.config.key}"
}
