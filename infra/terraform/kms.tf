# One customer-managed key for the platform's data at rest: CloudWatch Logs, SNS, Secrets Manager,
# SSM parameters, RDS (storage + Performance Insights), MSK, AMP, S3 (canary artifacts).
# IAM policies in this configuration grant the individual principals; the key policy delegates to the
# account and lets the AWS services that encrypt on their own behalf use it.
data "aws_iam_policy_document" "kms" {
  # checkov:skip=CKV_AWS_109:Key policies must name the key itself as "*"; access is constrained by the principals and conditions below.
  # checkov:skip=CKV_AWS_111:Key policies must name the key itself as "*"; access is constrained by the principals and conditions below.
  # checkov:skip=CKV_AWS_356:Key policies must name the key itself as "*".
  statement {
    sid       = "AccountAdministration"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogs"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.aws_region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${var.aws_region}:${local.account_id}:log-group:*"]
    }
  }

  statement {
    sid       = "ServicesPublishingToEncryptedSns"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com", "aps.amazonaws.com"]
    }
  }
}

resource "aws_kms_key" "main" {
  description             = "${local.name_prefix}: logs, secrets, SNS, RDS, MSK, AMP"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "main" {
  name          = "alias/${local.name_prefix}"
  target_key_id = aws_kms_key.main.key_id
}
