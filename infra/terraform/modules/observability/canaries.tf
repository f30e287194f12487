# CloudWatch Synthetics canaries through the public ALB:
#   <short>-chat    the chat round trip (log in, socket.io connect, join, send, receive): "customer chat is down"
#   <short>-health  one public endpoint per service answers 2xx
# Code: infra/terraform/canaries/ (built into canaries/build/ by canaries/build.sh before plan).

locals {
  canaries = {
    chat = {
      handler  = "chat-round-trip.handler"
      schedule = "rate(5 minutes)"
      timeout  = 60
      # SuccessPercent alarm (alarms.tf): 3 failed runs in a row.
      alarm = {
        severity           = "page"
        description        = "Synthetic chat round trip failing through the public ALB for 3 of the last 3 runs: customer chat is down."
        period             = 300
        evaluation_periods = 3
      }
      env = {
        BASE_URL         = var.public_base_url
        PLAYER_SECRET_ID = var.canary_player_secret_arn
        CHAT_ROOM        = "game:synthetics-probe"
      }
    }
    health = {
      handler  = "health-endpoints.handler"
      schedule = "rate(1 minute)"
      timeout  = 30
      # SuccessPercent alarm (alarms.tf): failed runs in 3 of the last 5 minutes.
      alarm = {
        severity           = "page"
        description        = "A public health endpoint failed through the ALB in 3 of the last 5 minutes."
        period             = 60
        evaluation_periods = 5
      }
      env = {
        BASE_URL = var.public_base_url
        PATHS    = join(",", [for svc, path in var.health_check_paths : "${svc}=${path}"])
      }
    }
  }
}

resource "aws_s3_bucket" "canaries" {
  # checkov:skip=CKV_AWS_18:Canary artifacts (screenshots, HAR, logs) are not audit data; no access logging.
  # checkov:skip=CKV_AWS_144:Cross-region replication of canary artifacts is not required.
  # checkov:skip=CKV2_AWS_62:No consumer of object-created events for canary artifacts.
  bucket_prefix = "${var.short_name}-canaries-"
  force_destroy = true
}

resource "aws_s3_bucket_public_access_block" "canaries" {
  bucket                  = aws_s3_bucket.canaries.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "canaries" {
  bucket = aws_s3_bucket.canaries.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "canaries" {
  bucket = aws_s3_bucket.canaries.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "canaries" {
  bucket = aws_s3_bucket.canaries.id
  rule {
    id     = "expire"
    status = "Enabled"
    filter {}
    expiration {
      days = 31
    }
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

data "archive_file" "canary" {
  for_each    = local.canaries
  type        = "zip"
  source_dir  = "${var.canaries_build_dir}/${each.key}"
  output_path = "${var.canaries_build_dir}/${each.key}.zip"
}

resource "aws_s3_object" "canary" {
  for_each    = local.canaries
  bucket      = aws_s3_bucket.canaries.id
  key         = "code/${each.key}-${data.archive_file.canary[each.key].output_md5}.zip"
  source      = data.archive_file.canary[each.key].output_path
  source_hash = data.archive_file.canary[each.key].output_md5
  kms_key_id  = var.kms_key_arn
}

data "aws_iam_policy_document" "canary_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "canary" {
  name               = "${var.name}-canary"
  assume_role_policy = data.aws_iam_policy_document.canary_assume.json
}

data "aws_iam_policy_document" "canary" {
  # checkov:skip=CKV_AWS_356:cloudwatch:PutMetricData and xray:PutTraceSegments do not support resource-level permissions (PutMetricData is limited to the CloudWatchSynthetics namespace by condition).
  # checkov:skip=CKV_AWS_111:See above; the write actions on "*" are metric and trace publishing only.
  statement {
    sid       = "Artifacts"
    actions   = ["s3:PutObject", "s3:GetObject", "s3:GetBucketLocation", "s3:ListAllMyBuckets"]
    resources = [aws_s3_bucket.canaries.arn, "${aws_s3_bucket.canaries.arn}/*", "arn:${local.partition}:s3:::*"]
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:CreateLogGroup"]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/cwsyn-*"]
  }
  statement {
    sid       = "Metrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = ["CloudWatchSynthetics"]
    }
  }
  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments"]
    resources = ["*"]
  }
  statement {
    sid       = "SyntheticPlayer"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.canary_player_secret_arn]
  }
  statement {
    sid       = "Kms"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "canary" {
  name   = "canary"
  role   = aws_iam_role.canary.id
  policy = data.aws_iam_policy_document.canary.json
}

resource "aws_synthetics_canary" "this" {
  for_each             = local.canaries
  name                 = "${var.short_name}-${each.key}"
  artifact_s3_location = "s3://${aws_s3_bucket.canaries.id}/results/${each.key}/"
  execution_role_arn   = aws_iam_role.canary.arn
  runtime_version      = var.canary_runtime_version
  handler              = each.value.handler
  s3_bucket            = aws_s3_object.canary[each.key].bucket
  s3_key               = aws_s3_object.canary[each.key].key
  start_canary         = true
  delete_lambda        = true

  success_retention_period = 7
  failure_retention_period = 31

  schedule {
    expression = each.value.schedule
  }

  run_config {
    timeout_in_seconds    = each.value.timeout
    memory_in_mb          = 960
    active_tracing        = true
    environment_variables = each.value.env
  }

  artifact_config {
    s3_encryption {
      encryption_mode = "SSE_KMS"
      kms_key_arn     = var.kms_key_arn
    }
  }
}
