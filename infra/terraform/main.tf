# Casino platform on AWS, in an existing VPC:
#   ALB (modules/alb) -> ECS Fargate services vault, concierge, room-service (modules/ecs-service)
#   MSK (modules/msk), RDS PostgreSQL (modules/rds)
#   SNS -> PagerDuty, AMP + rules from alerts/, AMG, CloudWatch alarms, Synthetics (modules/observability)
# Task definitions are deploy/ecs-task-defs/*.json rendered with templatefile().

# ---------------------------------------------------------------------------------------------------
# Security group of the service tasks (ingress from the ALB, service-to-service on the admin port)
# ---------------------------------------------------------------------------------------------------
resource "aws_security_group" "tasks" {
  # checkov:skip=CKV2_AWS_5:Attached to the ECS services and the bootstrap task through module inputs (security_group_ids), which the graph does not follow.
  name        = "${local.name_prefix}-tasks"
  description = "ECS tasks of ${local.name_prefix}"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "tasks_public_from_alb" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "Public port from the ALB (traffic and /readyz health checks)"
  ip_protocol                  = "tcp"
  from_port                    = local.public_port
  to_port                      = local.public_port
  referenced_security_group_id = module.alb.security_group_id
}

resource "aws_vpc_security_group_ingress_rule" "tasks_internal" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "Public and admin ports between tasks (/internal/v1, JWKS)"
  ip_protocol                  = "tcp"
  from_port                    = local.public_port
  to_port                      = local.admin_port
  referenced_security_group_id = aws_security_group.tasks.id
}

resource "aws_vpc_security_group_egress_rule" "tasks_https" {
  security_group_id = aws_security_group.tasks.id
  description       = "HTTPS to AWS APIs (ECR, Secrets Manager, SSM, logs, X-Ray, AMP) and the public ALB"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "tasks_internal" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "Public and admin ports of other tasks"
  ip_protocol                  = "tcp"
  from_port                    = local.public_port
  to_port                      = local.admin_port
  referenced_security_group_id = aws_security_group.tasks.id
}

resource "aws_vpc_security_group_egress_rule" "tasks_postgres" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "PostgreSQL"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = module.rds.security_group_id
}

resource "aws_vpc_security_group_egress_rule" "tasks_kafka" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "Kafka SASL_SSL (SCRAM)"
  ip_protocol                  = "tcp"
  from_port                    = 9096
  to_port                      = 9096
  referenced_security_group_id = module.msk.security_group_id
}

data "aws_vpc" "this" {
  id = var.vpc_id
}

resource "aws_vpc_security_group_egress_rule" "tasks_dns" {
  for_each          = toset(["udp", "tcp"])
  security_group_id = aws_security_group.tasks.id
  description       = "DNS over ${each.key} (Route 53 Resolver in the VPC)"
  ip_protocol       = each.key
  from_port         = 53
  to_port           = 53
  cidr_ipv4         = data.aws_vpc.this.cidr_block
}

# ---------------------------------------------------------------------------------------------------
# Data stores
# ---------------------------------------------------------------------------------------------------
module "rds" {
  source = "./modules/rds"

  name                      = local.name_prefix
  vpc_id                    = var.vpc_id
  subnet_ids                = var.private_subnet_ids
  client_security_group_ids = [aws_security_group.tasks.id]
  kms_key_arn               = aws_kms_key.main.arn
  engine_version            = "15"
  instance_class            = var.rds_instance_class
  allocated_storage_gb      = var.rds_allocated_storage_gb
  max_allocated_storage_gb  = var.rds_max_allocated_storage_gb
  backup_retention_days     = var.rds_backup_retention_days
  log_retention_days        = var.log_retention_days
}

module "msk" {
  source = "./modules/msk"

  name                      = local.name_prefix
  vpc_id                    = var.vpc_id
  subnet_ids                = var.private_subnet_ids
  client_security_group_ids = [aws_security_group.tasks.id]
  kafka_version             = var.msk_kafka_version
  broker_instance_type      = var.msk_broker_instance_type
  broker_volume_gb          = var.msk_broker_volume_gb
  broker_max_volume_gb      = var.msk_broker_max_volume_gb
  kms_key_arn               = aws_kms_key.main.arn
  scram_secret_arns         = [for u in local.kafka_users : aws_secretsmanager_secret.kafka[u].arn]
  log_retention_days        = var.log_retention_days

  depends_on = [aws_secretsmanager_secret_version.kafka, aws_secretsmanager_secret_policy.kafka]
}

# ---------------------------------------------------------------------------------------------------
# Load balancer
# ---------------------------------------------------------------------------------------------------
module "alb" {
  source = "./modules/alb"

  name                         = local.name_prefix
  vpc_id                       = var.vpc_id
  public_subnet_ids            = var.public_subnet_ids
  certificate_arn              = var.certificate_arn
  routes                       = local.routes
  target_port                  = local.public_port
  health_check_path            = local.health_check_path
  deregistration_delay_seconds = var.drain_delay_seconds
  waf_web_acl_arn              = var.waf_web_acl_arn
  kms_key_arn                  = aws_kms_key.main.arn
  log_retention_days           = var.log_retention_days
}

resource "aws_route53_record" "public" {
  count   = var.route53_zone_id == null ? 0 : 1
  zone_id = var.route53_zone_id
  name    = var.public_hostname
  type    = "A"

  alias {
    name                   = module.alb.dns_name
    zone_id                = module.alb.zone_id
    evaluate_target_health = true
  }
}

# ---------------------------------------------------------------------------------------------------
# Observability and paging
# ---------------------------------------------------------------------------------------------------
module "observability" {
  source = "./modules/observability"

  name                             = local.name_prefix
  short_name                       = substr(replace(local.name_prefix, "production", "prod"), 0, 14)
  kms_key_arn                      = aws_kms_key.main.arn
  log_retention_days               = var.log_retention_days
  pagerduty_page_url               = data.aws_secretsmanager_secret_version.pagerduty_page.secret_string
  pagerduty_ticket_url             = var.pagerduty_ticket_integration_secret_id == null ? null : data.aws_secretsmanager_secret_version.pagerduty_ticket[0].secret_string
  enable_ticket_pagerduty          = var.pagerduty_ticket_integration_secret_id != null
  alerts_dir                       = local.alerts_dir
  grafana_authentication_providers = var.grafana_authentication_providers

  alb_arn_suffix            = module.alb.arn_suffix
  target_group_arn_suffixes = module.alb.target_group_arn_suffixes
  ecs_cluster_name          = aws_ecs_cluster.this.name
  ecs_service_names         = var.deploy_services ? keys(local.services) : []
  rds_instance_id           = module.rds.instance_id
  msk_cluster_name          = module.msk.cluster_name
  msk_broker_count          = module.msk.broker_count

  public_base_url          = local.public_base_url
  canary_player_secret_arn = data.aws_secretsmanager_secret.canary_player.arn
  canary_runtime_version   = var.canary_runtime_version
  canaries_build_dir       = "${path.module}/canaries/build"
}
