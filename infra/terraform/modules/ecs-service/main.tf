# One ECS Fargate service (or only a task definition, for one-off tasks) from a task definition JSON
# in deploy/ecs-task-defs/, rendered with templatefile(). The JSON file is the single source of the
# container definitions: ports, env names, health check, stopTimeout, logging, secrets, sidecar.

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  log_group_name = "/ecs/${var.name_prefix}/${var.name}"

  template_vars = merge(var.template_vars, {
    name_prefix           = var.name_prefix
    execution_role_arn    = aws_iam_role.execution.arn
    task_role_arn         = aws_iam_role.task.arn
    log_group             = aws_cloudwatch_log_group.this.name
    adot_config_param_arn = var.adot_config == null ? "" : aws_ssm_parameter.adot_config[0].arn
  })

  # Container definitions need every value (some only known after apply).
  rendered = jsondecode(templatefile(var.task_definition_template, local.template_vars))

  # Task-level fields (family, cpu, memory, volumes, platform) are literals in the JSON (family only
  # uses name_prefix): render once more with constants so they are known at plan time.
  skeleton = jsondecode(templatefile(var.task_definition_template, merge(
    { for k in keys(local.template_vars) : k => "unknown" },
    { name_prefix = var.name_prefix },
  )))

  ssm_parameter_arns = var.adot_config == null ? [] : [aws_ssm_parameter.adot_config[0].arn]
}

# ---------------------------------------------------------------------------------------------------
# Logs
# ---------------------------------------------------------------------------------------------------
resource "aws_cloudwatch_log_group" "this" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

# ---------------------------------------------------------------------------------------------------
# ADOT collector configuration
# ---------------------------------------------------------------------------------------------------
resource "aws_ssm_parameter" "adot_config" {
  count       = var.adot_config == null ? 0 : 1
  name        = "/${var.name_prefix}/${var.name}/adot-config"
  description = "AWS OTel collector config of ${var.name} (deploy/ecs-task-defs/adot-config.yaml)"
  type        = "SecureString"
  key_id      = var.kms_key_arn
  tier        = length(var.adot_config) > 4000 ? "Advanced" : "Standard"
  value       = var.adot_config
}

# ---------------------------------------------------------------------------------------------------
# IAM
# ---------------------------------------------------------------------------------------------------
data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

# Execution role: what ECS needs to start the task (pull the image, write logs, fetch secrets).
resource "aws_iam_role" "execution" {
  name               = "${var.name_prefix}-${var.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "Secrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = length(var.secret_arns) > 0 ? var.secret_arns : ["arn:aws:secretsmanager:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:secret:none"]
  }
  statement {
    sid       = "Parameters"
    actions   = ["ssm:GetParameters"]
    resources = length(local.ssm_parameter_arns) > 0 ? local.ssm_parameter_arns : ["arn:aws:ssm:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:parameter/none"]
  }
  statement {
    sid       = "Decrypt"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# Task role: what the containers call (the ADOT sidecar: X-Ray, AMP remote write).
resource "aws_iam_role" "task" {
  name               = "${var.name_prefix}-${var.name}-task"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy" "task" {
  count  = var.task_role_policy_json == null ? 0 : 1
  name   = "task"
  role   = aws_iam_role.task.id
  policy = var.task_role_policy_json
}

# ---------------------------------------------------------------------------------------------------
# Task definition
# ---------------------------------------------------------------------------------------------------
resource "aws_ecs_task_definition" "this" {
  family                   = local.skeleton.family
  requires_compatibilities = local.skeleton.requiresCompatibilities
  network_mode             = local.skeleton.networkMode
  cpu                      = local.skeleton.cpu
  memory                   = local.skeleton.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  container_definitions    = jsonencode(local.rendered.containerDefinitions)

  runtime_platform {
    operating_system_family = local.skeleton.runtimePlatform.operatingSystemFamily
    cpu_architecture        = local.skeleton.runtimePlatform.cpuArchitecture
  }

  dynamic "volume" {
    for_each = local.skeleton.volumes
    content {
      name = volume.value.name
    }
  }
}

# ---------------------------------------------------------------------------------------------------
# Service discovery (Cloud Map) for service-to-service calls on the admin port
# ---------------------------------------------------------------------------------------------------
resource "aws_service_discovery_service" "this" {
  count = var.create_service && var.service_discovery_namespace_id != null ? 1 : 0
  name  = var.name

  dns_config {
    namespace_id   = var.service_discovery_namespace_id
    routing_policy = "MULTIVALUE"
    dns_records {
      type = "A"
      ttl  = 10
    }
  }

  # ECS reports task health to Cloud Map (custom health checks; failure threshold is fixed at 1).
  health_check_custom_config {}
}

# ---------------------------------------------------------------------------------------------------
# Service
# ---------------------------------------------------------------------------------------------------
resource "aws_ecs_service" "this" {
  count = var.create_service ? 1 : 0

  name                               = var.name
  cluster                            = var.cluster_arn
  task_definition                    = aws_ecs_task_definition.this.arn
  desired_count                      = var.min_tasks
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  propagate_tags                     = "SERVICE"
  enable_ecs_managed_tags            = true
  enable_execute_command             = false
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = var.target_group_arn == null ? null : var.health_check_grace_period_seconds
  wait_for_steady_state              = false

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  deployment_controller {
    type = "ECS"
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = var.security_group_ids
    assign_public_ip = false
  }

  dynamic "load_balancer" {
    for_each = var.target_group_arn == null ? [] : [var.target_group_arn]
    content {
      target_group_arn = load_balancer.value
      container_name   = var.name
      container_port   = var.container_port
    }
  }

  dynamic "service_registries" {
    for_each = aws_service_discovery_service.this
    content {
      registry_arn = service_registries.value.arn
    }
  }

  lifecycle {
    # Application Auto Scaling owns the task count after creation.
    ignore_changes = [desired_count]
  }
}

# ---------------------------------------------------------------------------------------------------
# Autoscaling: target tracking on CPU and on ALB requests per target
# ---------------------------------------------------------------------------------------------------
locals {
  autoscale = var.create_service && var.max_tasks > var.min_tasks

  # One policy per target that is set (requests also needs the target group's resource label).
  scaling_policies = {
    cpu = {
      enabled = var.cpu_target_percent != null
      name    = "${var.name}-cpu"
      metric  = "ECSServiceAverageCPUUtilization"
      label   = null
      target  = var.cpu_target_percent
    }
    requests = {
      enabled = var.requests_per_target_target != null && var.alb_resource_label != null
      name    = "${var.name}-alb-requests"
      metric  = "ALBRequestCountPerTarget"
      label   = var.alb_resource_label
      target  = var.requests_per_target_target
    }
  }
}

resource "aws_appautoscaling_target" "this" {
  count              = local.autoscale ? 1 : 0
  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = "service/${element(split("/", var.cluster_arn), 1)}/${aws_ecs_service.this[0].name}"
  min_capacity       = var.min_tasks
  max_capacity       = var.max_tasks
}

resource "aws_appautoscaling_policy" "this" {
  for_each           = { for k, p in local.scaling_policies : k => p if local.autoscale && p.enabled }
  name               = each.value.name
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[0].service_namespace
  scalable_dimension = aws_appautoscaling_target.this[0].scalable_dimension
  resource_id        = aws_appautoscaling_target.this[0].resource_id

  target_tracking_scaling_policy_configuration {
    predefined_metric_specification {
      predefined_metric_type = each.value.metric
      resource_label         = each.value.label
    }
    target_value       = each.value.target
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
  }
}

# Addresses of the two count-based resources these policies used to be.
moved {
  from = aws_appautoscaling_policy.cpu[0]
  to   = aws_appautoscaling_policy.this["cpu"]
}

moved {
  from = aws_appautoscaling_policy.requests[0]
  to   = aws_appautoscaling_policy.this["requests"]
}
