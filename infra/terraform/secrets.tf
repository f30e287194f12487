# How secrets get in (see README "Deploying"):
#   * generated here once, then left alone (ignore_changes): per-service database credentials + URL,
#     MSK SCRAM credentials, the internal bearer token. Values live in Secrets Manager (KMS-encrypted)
#     and in the encrypted Terraform state.
#   * created empty here, filled by an operator with `aws secretsmanager put-secret-value`:
#     Vault's application secrets (JWT signing key, game-provider and PSP secrets).
#   * referenced only (created outside Terraform): PagerDuty integration URLs, the synthetic player.
# Task definitions reference secrets by ARN (+ JSON key); ECS injects them at task start, never as
# literal values in a task definition.

locals {
  # MSK SCRAM users: one per service plus the bootstrap task that creates topics.
  kafka_users = concat(keys(local.services), ["bootstrap"])
}

# ---------------------------------------------------------------------------------------------------
# PostgreSQL: one login role and one database per service (created by the bootstrap task).
# ---------------------------------------------------------------------------------------------------
data "aws_secretsmanager_random_password" "db" {
  for_each            = local.services
  password_length     = 40
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret" "db" {
  # checkov:skip=CKV2_AWS_57:Rotation is coordinated by hand (README: rotating secrets); the role password and the service must change together.
  for_each                = local.services
  name                    = "${local.name_prefix}/${each.key}/database"
  description             = "PostgreSQL credentials and URL of ${each.key} (database ${each.value.db})"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "db" {
  for_each  = local.services
  secret_id = aws_secretsmanager_secret.db[each.key].id
  secret_string = jsonencode({
    username = each.value.db
    password = data.aws_secretsmanager_random_password.db[each.key].random_password
    # checkov:skip=CKV_SECRET_4:A format string with placeholders, not a credential; the password comes from the random-password data source.
    url = format("postgres://%s:%s@%s:%d/%s?sslmode=require",
      each.value.db, data.aws_secretsmanager_random_password.db[each.key].random_password,
    module.rds.address, module.rds.port, each.value.db)
  })

  lifecycle {
    # The data source draws a new password on every plan; keep the first one.
    ignore_changes = [secret_string]
  }
}

# ---------------------------------------------------------------------------------------------------
# MSK SASL/SCRAM users. MSK requires the "AmazonMSK_" name prefix and a customer-managed KMS key.
# ---------------------------------------------------------------------------------------------------
data "aws_secretsmanager_random_password" "kafka" {
  for_each            = toset(local.kafka_users)
  password_length     = 40
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret" "kafka" {
  # checkov:skip=CKV2_AWS_57:SCRAM rotation needs the clients restarted with the new password; done by hand (README).
  for_each                = toset(local.kafka_users)
  name                    = "AmazonMSK_${replace(local.name_prefix, "-", "_")}_${replace(each.key, "-", "_")}"
  description             = "MSK SASL/SCRAM credentials of ${each.key}"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "kafka" {
  for_each  = toset(local.kafka_users)
  secret_id = aws_secretsmanager_secret.kafka[each.key].id
  secret_string = jsonencode({
    username = replace(each.key, "-", "_")
    password = data.aws_secretsmanager_random_password.kafka[each.key].random_password
  })

  lifecycle {
    ignore_changes = [secret_string]
  }
}

data "aws_iam_policy_document" "kafka_secret" {
  # checkov:skip=CKV_AWS_108:Required by MSK SASL/SCRAM: the kafka service reads this one secret (resource policy on the secret itself).
  for_each = toset(local.kafka_users)
  statement {
    sid       = "AWSKafkaResourcePolicy"
    actions   = ["secretsmanager:getSecretValue"]
    resources = [aws_secretsmanager_secret.kafka[each.key].arn]
    principals {
      type        = "Service"
      identifiers = ["kafka.amazonaws.com"]
    }
  }
}

resource "aws_secretsmanager_secret_policy" "kafka" {
  for_each   = toset(local.kafka_users)
  secret_arn = aws_secretsmanager_secret.kafka[each.key].arn
  policy     = data.aws_iam_policy_document.kafka_secret[each.key].json
}

# ---------------------------------------------------------------------------------------------------
# Bearer secret for /internal/v1 (P_INTERNAL_TOKEN of every service; Concierge sends it to Vault).
# ---------------------------------------------------------------------------------------------------
data "aws_secretsmanager_random_password" "internal_token" {
  password_length     = 64
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret" "internal_token" {
  # checkov:skip=CKV2_AWS_57:Rotation needs every service restarted together; done by hand (README).
  name                    = "${local.name_prefix}/internal-token"
  description             = "Bearer secret of the services' /internal/v1 APIs"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "internal_token" {
  secret_id     = aws_secretsmanager_secret.internal_token.id
  secret_string = data.aws_secretsmanager_random_password.internal_token.random_password

  lifecycle {
    ignore_changes = [secret_string]
  }
}

# ---------------------------------------------------------------------------------------------------
# Vault application secrets: filled by an operator (JSON keys jwt_signing_key, game_provider_secrets,
# psp_providers). Terraform never sees the values.
# ---------------------------------------------------------------------------------------------------
resource "aws_secretsmanager_secret" "vault_app" {
  # checkov:skip=CKV2_AWS_57:Operator-managed values (JWT signing key, provider/PSP secrets) rotate with the provider, by hand (README).
  name                    = "${local.name_prefix}/vault/app"
  description             = "Vault: JWT signing key (base64 Ed25519 seed), game provider HMAC secrets, PSP providers and secrets. JSON keys: jwt_signing_key, game_provider_secrets, psp_providers"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 30
}

# ---------------------------------------------------------------------------------------------------
# Referenced, created outside Terraform.
# ---------------------------------------------------------------------------------------------------
data "aws_secretsmanager_secret" "canary_player" {
  arn  = startswith(var.canary_player_secret_id, "arn:") ? var.canary_player_secret_id : null
  name = startswith(var.canary_player_secret_id, "arn:") ? null : var.canary_player_secret_id
}

data "aws_secretsmanager_secret_version" "pagerduty_page" {
  secret_id = var.pagerduty_page_integration_secret_id
}

data "aws_secretsmanager_secret_version" "pagerduty_ticket" {
  count     = var.pagerduty_ticket_integration_secret_id == null ? 0 : 1
  secret_id = var.pagerduty_ticket_integration_secret_id
}
