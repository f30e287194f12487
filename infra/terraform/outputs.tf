output "public_url" {
  description = "Public base URL (point public_hostname at alb_dns_name if route53_zone_id is not set)."
  value       = local.public_base_url
}

output "alb_dns_name" {
  description = "DNS name of the ALB."
  value       = module.alb.dns_name
}

output "ecs_cluster_name" {
  description = "ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "ecs_services" {
  description = "ECS service name and current task definition per service."
  value = {
    for svc, m in module.service : svc => {
      service         = m.service_name
      task_definition = m.task_definition_arn
      log_group       = m.log_group_name
    }
  }
}

output "bootstrap_run_task_command" {
  description = "Runs the one-off bootstrap task (databases, roles, Kafka topics); idempotent."
  value = join(" ", [
    "aws ecs run-task --region ${var.aws_region} --cluster ${aws_ecs_cluster.this.name}",
    "--launch-type FARGATE --task-definition ${module.bootstrap.task_definition_arn}",
    "--network-configuration 'awsvpcConfiguration={subnets=[${join(",", var.private_subnet_ids)}],securityGroups=[${aws_security_group.tasks.id}],assignPublicIp=DISABLED}'",
  ])
}

output "kafka_topics" {
  description = "Topics the bootstrap task creates (name, partitions, retention)."
  value       = var.kafka_topics
}

output "kafka_bootstrap_brokers" {
  description = "MSK SASL/SCRAM bootstrap servers (P_KAFKA_BROKERS)."
  value       = module.msk.bootstrap_brokers_sasl_scram
}

output "rds_address" {
  description = "RDS PostgreSQL hostname."
  value       = module.rds.address
}

output "rds_master_secret_arn" {
  description = "RDS-managed master credentials (used only by the bootstrap task)."
  value       = module.rds.master_user_secret_arn
}

output "operator_secrets_to_fill" {
  description = "Secrets Terraform creates empty; put their values before the first deployment (README)."
  value = {
    vault_app = aws_secretsmanager_secret.vault_app.arn
  }
}

output "sns_topic_arns" {
  description = "SNS topics per severity (page, ticket)."
  value       = module.observability.sns_topic_arns
}

output "amp_workspace_id" {
  description = "Amazon Managed Prometheus workspace."
  value       = module.observability.amp_workspace_id
}

output "amp_query_endpoint" {
  description = "Prometheus-compatible query endpoint (SigV4)."
  value       = module.observability.amp_endpoint
}

output "amp_rule_namespaces" {
  description = "Rule namespaces loaded from alerts/*.rules.yml."
  value       = module.observability.amp_rule_namespaces
}

output "grafana_url" {
  description = "Amazon Managed Grafana URL."
  value       = module.observability.grafana_endpoint
}

output "grafana_workspace_id" {
  description = "Amazon Managed Grafana workspace id (input of infra/terraform/grafana-dashboards)."
  value       = module.observability.grafana_workspace_id
}

output "canaries" {
  description = "CloudWatch Synthetics canaries."
  value       = module.observability.canary_names
}
