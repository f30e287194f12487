# Paging and monitoring: SNS topics `page` and `ticket` (PagerDuty subscribed), Amazon Managed
# Prometheus (rules loaded from alerts/*.rules.yml, alert manager routing to the SNS topics), Amazon
# Managed Grafana, CloudWatch alarms (alarms.tf) and Synthetics canaries (canaries.tf).

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  severities = ["page", "ticket"]
}

# ---------------------------------------------------------------------------------------------------
# SNS -> PagerDuty
# ---------------------------------------------------------------------------------------------------
resource "aws_sns_topic" "this" {
  for_each          = toset(local.severities)
  name              = "${var.name}-${each.key}"
  kms_master_key_id = var.kms_key_arn
}

data "aws_iam_policy_document" "sns" {
  for_each = toset(local.severities)

  statement {
    sid       = "CloudWatchAlarms"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.this[each.key].arn]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "ManagedPrometheusAlertManager"
    actions   = ["sns:Publish", "sns:GetTopicAttributes"]
    resources = [aws_sns_topic.this[each.key].arn]
    principals {
      type        = "Service"
      identifiers = ["aps.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_prometheus_workspace.this.arn]
    }
  }

  statement {
    sid       = "AccountOwner"
    actions   = ["sns:Publish", "sns:Subscribe", "sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:ListSubscriptionsByTopic"]
    resources = [aws_sns_topic.this[each.key].arn]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }
}

resource "aws_sns_topic_policy" "this" {
  for_each = toset(local.severities)
  arn      = aws_sns_topic.this[each.key].arn
  policy   = data.aws_iam_policy_document.sns[each.key].json
}

resource "aws_sns_topic_subscription" "pagerduty_page" {
  topic_arn              = aws_sns_topic.this["page"].arn
  protocol               = "https"
  endpoint               = var.pagerduty_page_url
  endpoint_auto_confirms = true
}

resource "aws_sns_topic_subscription" "pagerduty_ticket" {
  count                  = var.enable_ticket_pagerduty ? 1 : 0
  topic_arn              = aws_sns_topic.this["ticket"].arn
  protocol               = "https"
  endpoint               = var.pagerduty_ticket_url
  endpoint_auto_confirms = true
}

# ---------------------------------------------------------------------------------------------------
# Amazon Managed Prometheus
# ---------------------------------------------------------------------------------------------------
resource "aws_cloudwatch_log_group" "amp" {
  name              = "/aws/prometheus/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_prometheus_workspace" "this" {
  alias       = var.name
  kms_key_arn = var.kms_key_arn

  logging_configuration {
    log_group_arn = "${aws_cloudwatch_log_group.amp.arn}:*"
  }
}

locals {
  # Exactly the rule files of alerts/ (one namespace per file), read at plan time: the repository's
  # files are the single source, promtool-tested by scripts/test. Never copy them into this module.
  rule_files = fileset(var.alerts_dir, "*.rules.yml")
}

resource "aws_prometheus_rule_group_namespace" "this" {
  for_each     = local.rule_files
  name         = trimsuffix(each.value, ".rules.yml")
  workspace_id = aws_prometheus_workspace.this.id
  data         = file("${var.alerts_dir}/${each.value}")
}

# AMP's alert manager cannot call PagerDuty (or Slack) itself: receivers are SNS topics only. Alerts
# keep the `severity` label of alerts/ (page | ticket) and are routed to the SNS topic of that name,
# which PagerDuty is subscribed to. Grouping mirrors alerts/alertmanager.yml (by service and alert).
resource "aws_prometheus_alert_manager_definition" "this" {
  workspace_id = aws_prometheus_workspace.this.id
  definition   = <<-EOT
    alertmanager_config: |
      route:
        receiver: ticket
        group_by: ['alertname', 'service']
        group_wait: 30s
        group_interval: 5m
        repeat_interval: 4h
        routes:
          # Dead-man switch: always firing by design; nothing to page on AWS (AMP has no heartbeat
          # receiver). Watch it in Grafana or route it to a heartbeat service via SNS if you have one.
          - receiver: blackhole
            matchers: ['alertname="Watchdog"']
          - receiver: page
            matchers: ['severity="page"']
            repeat_interval: 1h
          - receiver: ticket
            matchers: ['severity="ticket"']
      inhibit_rules:
        # A page for a service silences that service's tickets with the same alert name.
        - source_matchers: ['severity="page"']
          target_matchers: ['severity="ticket"']
          equal: ['alertname', 'service']
      receivers:
        - name: blackhole
        - name: page
          sns_configs:
            - topic_arn: ${aws_sns_topic.this["page"].arn}
              sigv4:
                region: ${local.region}
              subject: '[PAGE] {{ .CommonLabels.alertname }} ({{ .CommonLabels.service }})'
              attributes:
                severity: page
        - name: ticket
          sns_configs:
            - topic_arn: ${aws_sns_topic.this["ticket"].arn}
              sigv4:
                region: ${local.region}
              subject: '[TICKET] {{ .CommonLabels.alertname }} ({{ .CommonLabels.service }})'
              attributes:
                severity: ticket
  EOT
}

# ---------------------------------------------------------------------------------------------------
# Amazon Managed Grafana (dashboards: infra/terraform/grafana-dashboards)
# ---------------------------------------------------------------------------------------------------
data "aws_iam_policy_document" "grafana_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["grafana.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "grafana" {
  name               = "${var.name}-grafana"
  assume_role_policy = data.aws_iam_policy_document.grafana_assume.json
}

data "aws_iam_policy_document" "grafana" {
  # checkov:skip=CKV_AWS_356:CloudWatch/X-Ray read APIs (GetMetricData, ListMetrics, GetTraceSummaries, ...) do not support resource-level permissions.
  # checkov:skip=CKV_AWS_111:No write actions on "*": the only writes are sns:Publish on the two topics.
  statement {
    sid = "QueryPrometheus"
    actions = [
      "aps:QueryMetrics", "aps:GetSeries", "aps:GetLabels", "aps:GetMetricMetadata",
      "aps:DescribeWorkspace", "aps:ListWorkspaces", "aps:ListRules", "aps:ListAlertManagerAlerts",
    ]
    resources = [aws_prometheus_workspace.this.arn]
  }
  statement {
    sid = "ReadCloudWatchAndXRay"
    actions = [
      "cloudwatch:DescribeAlarmsForMetric", "cloudwatch:DescribeAlarmHistory", "cloudwatch:DescribeAlarms",
      "cloudwatch:ListMetrics", "cloudwatch:GetMetricData", "cloudwatch:GetInsightRuleReport",
      "logs:DescribeLogGroups", "logs:GetLogGroupFields", "logs:StartQuery", "logs:StopQuery",
      "logs:GetQueryResults", "logs:GetLogEvents",
      "ec2:DescribeTags", "ec2:DescribeInstances", "ec2:DescribeRegions", "tag:GetResources",
      "xray:BatchGetTraces", "xray:GetServiceGraph", "xray:GetTraceGraph", "xray:GetTraceSummaries",
      "xray:GetGroups", "xray:GetGroup", "xray:GetTimeSeriesServiceStatistics", "xray:GetInsightSummaries",
      "xray:GetInsight", "xray:GetInsightEvents",
    ]
    resources = ["*"]
  }
  statement {
    sid       = "NotifySns"
    actions   = ["sns:Publish"]
    resources = [for t in aws_sns_topic.this : t.arn]
  }
  statement {
    sid       = "DecryptLogsAndTopics"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "grafana" {
  name   = "datasources"
  role   = aws_iam_role.grafana.id
  policy = data.aws_iam_policy_document.grafana.json
}

resource "aws_grafana_workspace" "this" {
  name                      = var.name
  description               = "Dashboards of ${var.name} (dashboards/*.json)"
  account_access_type       = "CURRENT_ACCOUNT"
  authentication_providers  = var.grafana_authentication_providers
  permission_type           = "CUSTOMER_MANAGED"
  role_arn                  = aws_iam_role.grafana.arn
  data_sources              = ["PROMETHEUS", "CLOUDWATCH", "XRAY"]
  notification_destinations = ["SNS"]
  grafana_version           = "10.4"

  configuration = jsonencode({
    plugins         = { pluginAdminEnabled = false }
    unifiedAlerting = { enabled = false }
  })
}
