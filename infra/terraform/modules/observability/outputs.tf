output "sns_topic_arns" {
  description = "SNS topic ARN per severity (page, ticket)."
  value       = { for k, t in aws_sns_topic.this : k => t.arn }
}

output "amp_workspace_id" {
  description = "Amazon Managed Prometheus workspace id."
  value       = aws_prometheus_workspace.this.id
}

output "amp_workspace_arn" {
  description = "Amazon Managed Prometheus workspace ARN."
  value       = aws_prometheus_workspace.this.arn
}

output "amp_endpoint" {
  description = "Prometheus-compatible endpoint of the workspace (…/workspaces/<id>/)."
  value       = aws_prometheus_workspace.this.prometheus_endpoint
}

output "amp_remote_write_url" {
  description = "Remote-write URL for the ADOT sidecars."
  value       = "${aws_prometheus_workspace.this.prometheus_endpoint}api/v1/remote_write"
}

output "amp_rule_namespaces" {
  description = "Rule group namespaces loaded from alerts/*.rules.yml."
  value       = sort([for n in aws_prometheus_rule_group_namespace.this : n.name])
}

output "grafana_endpoint" {
  description = "Amazon Managed Grafana URL."
  value       = "https://${aws_grafana_workspace.this.endpoint}"
}

output "grafana_workspace_id" {
  description = "Amazon Managed Grafana workspace id (for infra/terraform/grafana-dashboards)."
  value       = aws_grafana_workspace.this.id
}

output "canary_names" {
  description = "Synthetics canary names."
  value       = { for k, c in aws_synthetics_canary.this : k => c.name }
}
