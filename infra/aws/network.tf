resource "aws_security_group" "function" {
  count       = local.attach_vpc ? 1 : 0
  name_prefix = "${var.name}-function-"
  description = "laneway function; talks out to HTTPS providers and Redis only."
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_egress_rule" "function_https" {
  count             = local.attach_vpc ? 1 : 0
  security_group_id = aws_security_group.function[0].id
  description       = "HTTPS to model providers, S3 and AWS APIs"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "function_to_cache" {
  count                        = local.create_cache ? 1 : 0
  security_group_id            = aws_security_group.function[0].id
  description                  = "Redis protocol to the laneway cache"
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6380
  referenced_security_group_id = aws_security_group.cache[0].id
}

resource "aws_security_group" "cache" {
  count       = local.create_cache ? 1 : 0
  name_prefix = "${var.name}-cache-"
  description = "laneway cache; reachable from the laneway function only."
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "cache_from_function" {
  count                        = local.create_cache ? 1 : 0
  security_group_id            = aws_security_group.cache[0].id
  description                  = "Redis protocol (primary and reader endpoints) from laneway"
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6380
  referenced_security_group_id = aws_security_group.function[0].id
}

resource "aws_elasticache_serverless_cache" "lanes" {
  count                = local.create_cache ? 1 : 0
  name                 = "${var.name}-lanes"
  description          = "laneway lanes, rate limits and cooldowns"
  engine               = var.cache_engine
  major_engine_version = var.cache_engine == "valkey" ? "8" : "7"
  security_group_ids   = [aws_security_group.cache[0].id]
  subnet_ids           = var.subnet_ids
  # Lanes are short-lived coordination state: nothing worth a snapshot.
  snapshot_retention_limit = 0
  tags                     = var.tags

  cache_usage_limits {
    data_storage {
      maximum = var.cache_max_data_storage_gb
      unit    = "GB"
    }
    ecpu_per_second {
      maximum = var.cache_max_ecpu_per_second
    }
  }
}
