# CloudWatch alarms for what Prometheus cannot see from inside the tasks: the ALB, ECS task counts,
# RDS, MSK brokers and consumer lag, and the Synthetics canaries. Each alarm notifies the SNS topic of
# its severity (page | ticket) on ALARM and on OK.

locals {
  topic = { for k, t in aws_sns_topic.this : k => t.arn }

  broker_ids = [for i in range(1, var.msk_broker_count + 1) : tostring(i)]

  lag_pairs = flatten([
    for group, topics in var.consumer_lag_alarms : [
      for topic in topics : { group = group, topic = topic }
    ]
  ])
}

# ---------------------------------------------------------------------------------------------------
# ALB
# ---------------------------------------------------------------------------------------------------
resource "aws_cloudwatch_metric_alarm" "alb_5xx_ratio" {
  alarm_name          = "${var.name}-alb-5xx-ratio"
  alarm_description   = "More than 5 % of ALB requests answered 5xx (ALB or targets) for 5 minutes, with at least 100 requests per minute. severity=page"
  comparison_operator = "GreaterThanThreshold"
  threshold           = 5
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.topic["page"]]
  ok_actions          = [local.topic["page"]]

  metric_query {
    id          = "ratio"
    expression  = "IF(requests >= 100, 100 * (FILL(elb5xx, 0) + FILL(target5xx, 0)) / requests, 0)"
    label       = "5xx percent"
    return_data = true
  }
  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      period      = 60
      stat        = "Sum"
    }
  }
  metric_query {
    id = "elb5xx"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_ELB_5XX_Count"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      period      = 60
      stat        = "Sum"
    }
  }
  metric_query {
    id = "target5xx"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      period      = 60
      stat        = "Sum"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "target_5xx_ratio" {
  for_each            = var.target_group_arn_suffixes
  alarm_name          = "${var.name}-${each.key}-5xx-ratio"
  alarm_description   = "More than 2 % of ${each.key} responses are 5xx for 10 minutes (at least 50 requests per minute). severity=ticket"
  comparison_operator = "GreaterThanThreshold"
  threshold           = 2
  evaluation_periods  = 10
  datapoints_to_alarm = 8
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.topic["ticket"]]
  ok_actions          = [local.topic["ticket"]]

  metric_query {
    id          = "ratio"
    expression  = "IF(requests >= 50, 100 * FILL(target5xx, 0) / requests, 0)"
    label       = "${each.key} 5xx percent"
    return_data = true
  }
  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      dimensions  = { LoadBalancer = var.alb_arn_suffix, TargetGroup = each.value }
      period      = 60
      stat        = "Sum"
    }
  }
  metric_query {
    id = "target5xx"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      dimensions  = { LoadBalancer = var.alb_arn_suffix, TargetGroup = each.value }
      period      = 60
      stat        = "Sum"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "unhealthy_targets" {
  for_each            = var.target_group_arn_suffixes
  alarm_name          = "${var.name}-${each.key}-unhealthy-targets"
  alarm_description   = "${each.key} has targets failing the ALB /readyz health check for 5 minutes. severity=ticket"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "UnHealthyHostCount"
  dimensions          = { LoadBalancer = var.alb_arn_suffix, TargetGroup = each.value }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.topic["ticket"]]
  ok_actions          = [local.topic["ticket"]]
}

resource "aws_cloudwatch_metric_alarm" "no_healthy_targets" {
  for_each            = var.target_group_arn_suffixes
  alarm_name          = "${var.name}-${each.key}-no-healthy-targets"
  alarm_description   = "${each.key} has no healthy target behind the ALB for 2 minutes: its routes answer 503. severity=page"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "HealthyHostCount"
  dimensions          = { LoadBalancer = var.alb_arn_suffix, TargetGroup = each.value }
  statistic           = "Minimum"
  period              = 60
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"
  alarm_actions       = [local.topic["page"]]
  ok_actions          = [local.topic["page"]]
}

resource "aws_cloudwatch_metric_alarm" "alb_rejected_connections" {
  alarm_name          = "${var.name}-alb-rejected-connections"
  alarm_description   = "The ALB rejected connections (it reached its connection limit). severity=ticket"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "RejectedConnectionCount"
  dimensions          = { LoadBalancer = var.alb_arn_suffix }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.topic["ticket"]]
  ok_actions          = [local.topic["ticket"]]
}

# ---------------------------------------------------------------------------------------------------
# ECS (Container Insights)
# ---------------------------------------------------------------------------------------------------
resource "aws_cloudwatch_metric_alarm" "ecs_running_below_desired" {
  for_each            = toset(var.ecs_service_names)
  alarm_name          = "${var.name}-${each.key}-running-below-desired"
  alarm_description   = "${each.key}: fewer running tasks than desired for 10 minutes (tasks crash-looping, failing health checks or unable to start). severity=page"
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  evaluation_periods  = 10
  datapoints_to_alarm = 10
  treat_missing_data  = "breaching"
  alarm_actions       = [local.topic["page"]]
  ok_actions          = [local.topic["page"]]

  metric_query {
    id          = "missing"
    expression  = "desired - running"
    label       = "desired minus running tasks"
    return_data = true
  }
  metric_query {
    id = "desired"
    metric {
      namespace   = "ECS/ContainerInsights"
      metric_name = "DesiredTaskCount"
      dimensions  = { ClusterName = var.ecs_cluster_name, ServiceName = each.key }
      period      = 60
      stat        = "Average"
    }
  }
  metric_query {
    id = "running"
    metric {
      namespace   = "ECS/ContainerInsights"
      metric_name = "RunningTaskCount"
      dimensions  = { ClusterName = var.ecs_cluster_name, ServiceName = each.key }
      period      = 60
      stat        = "Average"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "ecs_cpu" {
  for_each            = toset(var.ecs_service_names)
  alarm_name          = "${var.name}-${each.key}-cpu-high"
  alarm_description   = "${each.key}: average CPU above 85 % of the reservation for 15 minutes (autoscaling at its maximum or not keeping up). severity=ticket"
  namespace           = "AWS/ECS"
  metric_name         = "CPUUtilization"
  dimensions          = { ClusterName = var.ecs_cluster_name, ServiceName = each.key }
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 15
  datapoints_to_alarm = 15
  comparison_operator = "GreaterThanThreshold"
  threshold           = 85
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.topic["ticket"]]
  ok_actions          = [local.topic["ticket"]]
}

resource "aws_cloudwatch_metric_alarm" "ecs_memory" {
  for_each            = toset(var.ecs_service_names)
  alarm_name          = "${var.name}-${each.key}-memory-high"
  alarm_description   = "${each.key}: average memory above 85 % of the reservation for 15 minutes (OOM kills next). severity=ticket"
  namespace           = "AWS/ECS"
  metric_name         = "MemoryUtilization"
  dimensions          = { ClusterName = var.ecs_cluster_name, ServiceName = each.key }
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 15
  datapoints_to_alarm = 15
  comparison_operator = "GreaterThanThreshold"
  threshold           = 85
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.topic["ticket"]]
  ok_actions          = [local.topic["ticket"]]
}

# ---------------------------------------------------------------------------------------------------
# RDS
# ---------------------------------------------------------------------------------------------------
resource "aws_cloudwatch_metric_alarm" "rds_cpu" {
  alarm_name          = "${var.name}-rds-cpu-high"
  alarm_description   = "RDS CPU above 80 % for 15 minutes. severity=ticket"
  namespace           = "AWS/RDS"
  metric_name         = "CPUUtilization"
  dimensions          = { DBInstanceIdentifier = var.rds_instance_id }
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 15
  datapoints_to_alarm = 15
  comparison_operator = "GreaterThanThreshold"
  threshold           = 80
  treat_missing_data  = "breaching"
  alarm_actions       = [local.topic["ticket"]]
  ok_actions          = [local.topic["ticket"]]
}

resource "aws_cloudwatch_metric_alarm" "rds_connections" {
  alarm_name          = "${var.name}-rds-connections-high"
  alarm_description   = "RDS connections above ${var.rds_max_connections_alarm} for 10 minutes (pools x tasks approaching max_connections). severity=ticket"
  namespace           = "AWS/RDS"
  metric_name         = "DatabaseConnections"
  dimensions          = { DBInstanceIdentifier = var.rds_instance_id }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 10
  datapoints_to_alarm = 10
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.rds_max_connections_alarm
  treat_missing_data  = "breaching"
  alarm_actions       = [local.topic["ticket"]]
  ok_actions          = [local.topic["ticket"]]
}

resource "aws_cloudwatch_metric_alarm" "rds_free_storage" {
  alarm_name          = "${var.name}-rds-free-storage-low"
  alarm_description   = "RDS free storage below 10 GiB (storage autoscaling at its ceiling or not keeping up). severity=page"
  namespace           = "AWS/RDS"
  metric_name         = "FreeStorageSpace"
  dimensions          = { DBInstanceIdentifier = var.rds_instance_id }
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  comparison_operator = "LessThanThreshold"
  threshold           = 10737418240
  treat_missing_data  = "breaching"
  alarm_actions       = [local.topic["page"]]
  ok_actions          = [local.topic["page"]]
}

# ---------------------------------------------------------------------------------------------------
# MSK
# ---------------------------------------------------------------------------------------------------
resource "aws_cloudwatch_metric_alarm" "msk_disk" {
  for_each            = toset(local.broker_ids)
  alarm_name          = "${var.name}-msk-broker-${each.key}-disk"
  alarm_description   = "MSK broker ${each.key}: data log disk above 80 % (storage autoscaling targets 70 %). severity=ticket"
  namespace           = "AWS/Kafka"
  metric_name         = "KafkaDataLogsDiskUsed"
  dimensions          = { "Cluster Name" = var.msk_cluster_name, "Broker ID" = each.key }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = 80
  treat_missing_data  = "breaching"
  alarm_actions       = [local.topic["ticket"]]
  ok_actions          = [local.topic["ticket"]]
}

resource "aws_cloudwatch_metric_alarm" "msk_disk_critical" {
  for_each            = toset(local.broker_ids)
  alarm_name          = "${var.name}-msk-broker-${each.key}-disk-critical"
  alarm_description   = "MSK broker ${each.key}: data log disk above 90 %; a full disk stops the broker. severity=page"
  namespace           = "AWS/Kafka"
  metric_name         = "KafkaDataLogsDiskUsed"
  dimensions          = { "Cluster Name" = var.msk_cluster_name, "Broker ID" = each.key }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 90
  treat_missing_data  = "breaching"
  alarm_actions       = [local.topic["page"]]
  ok_actions          = [local.topic["page"]]
}

resource "aws_cloudwatch_metric_alarm" "msk_offline_partitions" {
  alarm_name          = "${var.name}-msk-offline-partitions"
  alarm_description   = "MSK has offline partitions: producers and consumers of those partitions are stuck. severity=page"
  namespace           = "AWS/Kafka"
  metric_name         = "OfflinePartitionsCount"
  dimensions          = { "Cluster Name" = var.msk_cluster_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "breaching"
  alarm_actions       = [local.topic["page"]]
  ok_actions          = [local.topic["page"]]
}

resource "aws_cloudwatch_metric_alarm" "msk_active_controller" {
  alarm_name          = "${var.name}-msk-active-controller"
  alarm_description   = "MSK does not have exactly one active controller. severity=page"
  namespace           = "AWS/Kafka"
  metric_name         = "ActiveControllerCount"
  dimensions          = { "Cluster Name" = var.msk_cluster_name }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"
  alarm_actions       = [local.topic["page"]]
  ok_actions          = [local.topic["page"]]
}

resource "aws_cloudwatch_metric_alarm" "consumer_lag" {
  for_each          = { for p in local.lag_pairs : "${p.group}/${p.topic}" => p }
  alarm_name        = "${var.name}-lag-${each.value.group}-${each.value.topic}"
  alarm_description = "Consumer group ${each.value.group} is more than ${var.consumer_lag_threshold_seconds} s behind on ${each.value.topic} for 5 minutes, or reports no lag at all (group gone: missing data is breaching). severity=page"
  namespace         = "AWS/Kafka"
  metric_name       = "EstimatedMaxTimeLag"
  dimensions = {
    "Cluster Name"   = var.msk_cluster_name
    "Consumer Group" = each.value.group
    "Topic"          = each.value.topic
  }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.consumer_lag_threshold_seconds
  treat_missing_data  = "breaching"
  alarm_actions       = [local.topic["page"]]
  ok_actions          = [local.topic["page"]]
}
