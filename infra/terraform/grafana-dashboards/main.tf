# Second, small root module: provisions dashboards/*.json and the datasources they use into the Amazon
# Managed Grafana workspace created by infra/terraform. Separate because the grafana provider needs the
# workspace URL and an API token, which only exist after the main apply:
#
#   cd infra/terraform && terraform output -raw grafana_url / grafana_workspace_id / amp_query_endpoint
#   aws grafana create-workspace-service-account --workspace-id <id> --grafana-role ADMIN --name terraform
#   aws grafana create-workspace-service-account-token --workspace-id <id> --service-account-id <sa> \
#       --name terraform --seconds-to-live 3600          # -> TF_VAR_grafana_token
#   cd grafana-dashboards && terraform init && terraform apply
#
# Datasource uids are the ones docker-compose provisions (deploy/compose/grafana/provisioning), so the
# same dashboard JSON works locally and on AWS: "prometheus" (AMP, SigV4 with the workspace role) and
# "cloudwatch". scripts/infra/consistency.py checks both.

terraform {
  required_version = ">= 1.6"

  required_providers {
    grafana = {
      source  = "grafana/grafana"
      version = "~> 3.0"
    }
  }

  backend "s3" {}
}

variable "grafana_url" {
  description = "Workspace URL (terraform output grafana_url of infra/terraform)."
  type        = string
}

variable "grafana_token" {
  description = "Short-lived service account token of the workspace (ADMIN)."
  type        = string
  sensitive   = true
}

variable "aws_region" {
  description = "Region of the AMP workspace and the CloudWatch metrics."
  type        = string
}

variable "amp_query_endpoint" {
  description = "AMP workspace endpoint (terraform output amp_query_endpoint of infra/terraform)."
  type        = string
}

variable "dashboards_dir" {
  description = "Directory of the dashboard JSON files (the same files docker-compose provisions)."
  type        = string
  default     = null
}

provider "grafana" {
  url  = var.grafana_url
  auth = var.grafana_token
}

locals {
  dashboards_dir = coalesce(var.dashboards_dir, "${path.module}/../../../dashboards")
}

resource "grafana_data_source" "prometheus" {
  type       = "prometheus"
  name       = "Prometheus"
  uid        = "prometheus"
  url        = var.amp_query_endpoint
  is_default = true

  json_data_encoded = jsonencode({
    httpMethod    = "POST"
    sigV4Auth     = true
    sigV4AuthType = "ec2_iam_role"
    sigV4Region   = var.aws_region
    timeInterval  = "30s"
  })
}

resource "grafana_data_source" "cloudwatch" {
  type = "cloudwatch"
  name = "CloudWatch"
  uid  = "cloudwatch"

  json_data_encoded = jsonencode({
    authType      = "ec2_iam_role"
    defaultRegion = var.aws_region
  })
}

resource "grafana_folder" "casino" {
  title = "Casino"
  uid   = "casino"
}

resource "grafana_dashboard" "this" {
  for_each    = fileset(local.dashboards_dir, "*.json")
  folder      = grafana_folder.casino.uid
  config_json = file("${local.dashboards_dir}/${each.value}")
  overwrite   = true

  depends_on = [grafana_data_source.prometheus, grafana_data_source.cloudwatch]
}

output "dashboards" {
  description = "Provisioned dashboard URLs."
  value       = { for k, d in grafana_dashboard.this : k => d.url }
}
