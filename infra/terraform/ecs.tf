# ECS cluster, Cloud Map namespace, the three services, the chat probe and the one-off bootstrap task.

resource "aws_ecs_cluster" "this" {
  name = local.name_prefix

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

# <service>.<name_prefix>.internal -> task IPs (Concierge -> Vault /internal/v1 on the admin port,
# Room-Service -> Vault JWKS on the public port).
resource "aws_service_discovery_private_dns_namespace" "this" {
  name        = "${local.name_prefix}.internal"
  description = "Service-to-service names of ${local.name_prefix}"
  vpc         = var.vpc_id
}

locals {
  internal_domain = aws_service_discovery_private_dns_namespace.this.name
  adot_template   = "${path.module}/../../deploy/ecs-task-defs/adot-config.yaml"

  # Values shared by every service task definition template.
  common_template_vars = {
    env                       = var.environment
    region                    = var.aws_region
    kafka_brokers             = module.msk.bootstrap_brokers_sasl_scram
    drain_delay_seconds       = tostring(var.drain_delay_seconds)
    trace_sample_ratio        = tostring(var.trace_sample_ratio)
    adot_image                = var.adot_image
    internal_token_secret_arn = aws_secretsmanager_secret.internal_token.arn
  }

  # Per-service placeholders on top of the common ones (scripts/infra/consistency.py checks that every
  # ${...} in deploy/ecs-task-defs/<service>.json is provided here, in common_template_vars or by the
  # ecs-service module, and that nothing provided here is unused).
  service_template_vars = {
    vault = {
      image          = local.images["vault"]
      db_secret_arn  = aws_secretsmanager_secret.db["vault"].arn
      msk_secret_arn = aws_secretsmanager_secret.kafka["vault"].arn
      app_secret_arn = aws_secretsmanager_secret.vault_app.arn
    }
    concierge = {
      image              = local.images["concierge"]
      db_secret_arn      = aws_secretsmanager_secret.db["concierge"].arn
      msk_secret_arn     = aws_secretsmanager_secret.kafka["concierge"].arn
      vault_internal_url = "http://vault.${local.internal_domain}:${local.admin_port}"
      vault_public_url   = "http://vault.${local.internal_domain}:${local.public_port}"
    }
    room-service = {
      image            = local.images["room-service"]
      db_secret_arn    = aws_secretsmanager_secret.db["room-service"].arn
      msk_secret_arn   = aws_secretsmanager_secret.kafka["room-service"].arn
      vault_public_url = "http://vault.${local.internal_domain}:${local.public_port}"
    }
  }

  service_secret_arns = {
    for svc, _ in local.services : svc => compact([
      aws_secretsmanager_secret.db[svc].arn,
      aws_secretsmanager_secret.kafka[svc].arn,
      aws_secretsmanager_secret.internal_token.arn,
      svc == "vault" ? aws_secretsmanager_secret.vault_app.arn : "",
    ])
  }

  # Escapes a script for insertion into a JSON string of a task definition template.
  bootstrap_scripts = {
    for k in ["create-databases", "create-topics"] :
    k => substr(jsonencode(file("${path.module}/../../deploy/ecs-task-defs/bootstrap/${k}.sh")), 1,
    length(jsonencode(file("${path.module}/../../deploy/ecs-task-defs/bootstrap/${k}.sh"))) - 2)
  }
}

# What the containers may call: the ADOT sidecar exports traces to X-Ray and remote-writes to AMP.
data "aws_iam_policy_document" "task" {
  # checkov:skip=CKV_AWS_356:X-Ray PutTraceSegments/PutTelemetryRecords/GetSampling* do not support resource-level permissions.
  # checkov:skip=CKV_AWS_111:The only write actions on "*" are X-Ray trace and telemetry uploads.
  statement {
    sid       = "XRay"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets", "xray:GetSamplingStatisticSummaries"]
    resources = ["*"]
  }
  statement {
    sid       = "ManagedPrometheusRemoteWrite"
    actions   = ["aps:RemoteWrite"]
    resources = [module.observability.amp_workspace_arn]
  }
}

module "service" {
  source   = "./modules/ecs-service"
  for_each = local.services

  name                     = each.key
  name_prefix              = local.name_prefix
  cluster_arn              = aws_ecs_cluster.this.arn
  task_definition_template = each.value.template
  template_vars            = merge(local.common_template_vars, local.service_template_vars[each.key])
  adot_config = templatefile(local.adot_template, {
    service              = each.key
    region               = var.aws_region
    env                  = var.environment
    amp_remote_write_url = module.observability.amp_remote_write_url
    metrics_port         = local.admin_port
  })
  create_service        = var.deploy_services
  secret_arns           = local.service_secret_arns[each.key]
  kms_key_arn           = aws_kms_key.main.arn
  task_role_policy_json = data.aws_iam_policy_document.task.json
  log_retention_days    = var.log_retention_days

  subnet_ids                     = var.private_subnet_ids
  security_group_ids             = [aws_security_group.tasks.id]
  target_group_arn               = module.alb.target_group_arns[each.key]
  container_port                 = local.public_port
  service_discovery_namespace_id = aws_service_discovery_private_dns_namespace.this.id

  min_tasks                  = var.service_scaling[each.key].min_tasks
  max_tasks                  = var.service_scaling[each.key].max_tasks
  cpu_target_percent         = var.service_scaling[each.key].cpu_target_percent
  requests_per_target_target = var.service_scaling[each.key].requests_per_target_target
  alb_resource_label         = module.alb.target_group_resource_labels[each.key]

  depends_on = [aws_ecs_cluster_capacity_providers.this, module.alb]
}

# `casino probe chat --serve 0.0.0.0:9100` through the public URL; its ADOT sidecar remote-writes
# probe_success{probe="chat"} to AMP, where the alerts/ rule for "customer chat is down" evaluates it.
module "chat_probe" {
  source = "./modules/ecs-service"
  count  = var.enable_chat_probe_service ? 1 : 0

  name                     = "chat-probe"
  name_prefix              = local.name_prefix
  cluster_arn              = aws_ecs_cluster.this.arn
  task_definition_template = "${path.module}/../../deploy/ecs-task-defs/chat-probe.json"
  template_vars = {
    region                   = var.aws_region
    image                    = local.images["casino"]
    adot_image               = var.adot_image
    public_base_url          = local.public_base_url
    canary_player_secret_arn = data.aws_secretsmanager_secret.canary_player.arn
  }
  adot_config = templatefile(local.adot_template, {
    service              = "chat-probe"
    region               = var.aws_region
    env                  = var.environment
    amp_remote_write_url = module.observability.amp_remote_write_url
    metrics_port         = 9100
  })
  create_service        = var.deploy_services
  secret_arns           = [data.aws_secretsmanager_secret.canary_player.arn]
  kms_key_arn           = aws_kms_key.main.arn
  task_role_policy_json = data.aws_iam_policy_document.task.json
  log_retention_days    = var.log_retention_days

  subnet_ids         = var.private_subnet_ids
  security_group_ids = [aws_security_group.tasks.id]
  min_tasks          = 1
  max_tasks          = 1

  depends_on = [aws_ecs_cluster_capacity_providers.this]
}

# One-off task (no service): creates the per-service databases and roles on RDS and the Kafka topics
# on MSK. Idempotent; run after the first apply and whenever var.kafka_topics changes:
#   terraform output -raw bootstrap_run_task_command | bash
module "bootstrap" {
  source = "./modules/ecs-service"

  name                     = "bootstrap"
  name_prefix              = local.name_prefix
  cluster_arn              = aws_ecs_cluster.this.arn
  task_definition_template = "${path.module}/../../deploy/ecs-task-defs/bootstrap.json"
  create_service           = false
  template_vars = {
    region                     = var.aws_region
    postgres_image             = var.bootstrap_postgres_image
    kafka_image                = var.bootstrap_kafka_image
    db_host                    = module.rds.address
    db_port                    = tostring(module.rds.port)
    db_master_secret_arn       = module.rds.master_user_secret_arn
    db_secret_arn_vault        = aws_secretsmanager_secret.db["vault"].arn
    db_secret_arn_concierge    = aws_secretsmanager_secret.db["concierge"].arn
    db_secret_arn_room_service = aws_secretsmanager_secret.db["room-service"].arn
    msk_admin_secret_arn       = aws_secretsmanager_secret.kafka["bootstrap"].arn
    kafka_brokers              = module.msk.bootstrap_brokers_sasl_scram
    kafka_topics               = join(",", [for t in var.kafka_topics : "${t.name}:${t.partitions}:${t.retention_ms}"])
    kafka_replication_factor   = tostring(module.msk.replication_factor)
    kafka_min_insync_replicas  = tostring(module.msk.min_insync_replicas)
    create_databases_script    = local.bootstrap_scripts["create-databases"]
    create_topics_script       = local.bootstrap_scripts["create-topics"]
  }
  secret_arns = concat(
    [module.rds.master_user_secret_arn, aws_secretsmanager_secret.kafka["bootstrap"].arn],
    [for svc, _ in local.services : aws_secretsmanager_secret.db[svc].arn],
  )
  kms_key_arn        = aws_kms_key.main.arn
  log_retention_days = var.log_retention_days
}
