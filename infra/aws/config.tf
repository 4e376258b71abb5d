resource "aws_s3_bucket" "config" {
  count         = var.create_config_bucket ? 1 : 0
  bucket        = var.config_bucket_name
  bucket_prefix = var.config_bucket_name == null ? "${var.name}-config-" : null
  tags          = var.tags
}

resource "aws_s3_bucket_public_access_block" "config" {
  count                   = var.create_config_bucket ? 1 : 0
  bucket                  = aws_s3_bucket.config[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "config" {
  count  = var.create_config_bucket ? 1 : 0
  bucket = aws_s3_bucket.config[0].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

# Versions let a bad config be rolled back by restoring the previous object.
resource "aws_s3_bucket_versioning" "config" {
  count  = var.create_config_bucket ? 1 : 0
  bucket = aws_s3_bucket.config[0].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "config" {
  count  = var.create_config_bucket ? 1 : 0
  bucket = aws_s3_bucket.config[0].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

locals {
  config_bucket = var.create_config_bucket ? aws_s3_bucket.config[0].id : var.config_bucket_name
}

resource "aws_s3_object" "config" {
  bucket       = local.config_bucket
  key          = var.config_key
  source       = var.config_file
  etag         = filemd5(var.config_file)
  content_type = "application/yaml"
  tags         = var.tags

  depends_on = [aws_s3_bucket_public_access_block.config]
}
