# CloudWatch alarms for what Prometheus cannot see from inside the tasks: the ALB, ECS task counts,
# RDS, MSK brokers and consumer lag, and the Synthetics canaries. Each alarm notifies the SNS topic of
# its severity (page | ticket) on ALARM and on OK.
#
# Every alarm is an entry of local.alarm_definitions, keyed by its name without the "<var.name>-"
# prefix (the names in infra/terraform/README.md, "What pages"); one resource creates them all. An
# entry either watches one metric (namespace, metric_name, dimensions, statistic, period) or
# evaluates metric math (`math`: the expression, and the metrics it reads, which share one namespace,
# dimensions, statistic and period). " severity=<severity>" is appended to every description.
# moved.tf maps the addresses of the one-resource-per-alarm layout that preceded this one.

locals {
  topic = { for k, t in aws_sns_topic.this : k => t.arn }

  # Dimensions of what the alarms watch.
  alb_dimensions = { LoadBalancer = var.alb_arn_suffix }
  target_group_dimensions = {
    for svc, tg in var.target_group_arn_suffixes : svc => { LoadBalancer = var.alb_arn_suffix, TargetGroup = tg }
  }
  ecs_service_dimensions = {
    for svc in toset(var.ecs_service_names) : svc => { ClusterName = var.ecs_cluster_name, ServiceName = svc }
  }
  rds_dimensions = { DBInstanceIdentifier = var.rds_instance_id }
  msk_dimensions = { "Cluster Name" = var.msk_cluster_name }
  broker_dimensions = {
    for i in range(1, var.msk_broker_count + 1) : tostring(i) => merge(local.msk_dimensions, { "Broker ID" = tostring(i) })
  }

  # Consumer group and topic of each lag alarm.
  lag_pairs = flatten([
    for group, topics in var.consumer_lag_alarms : [
      for topic in topics : { group = group, topic = topic }
    ]
  ])

  # <svc>-cpu-high and <svc>-memory-high: one condition on either reservation.
  ecs_utilization = {
    cpu    = { metric_name = "CPUUtilization", what = "CPU", consequence = "autoscaling at its maximum or not keeping up" }
    memory = { metric_name = "MemoryUtilization", what = "memory", consequence = "OOM kills next" }
  }

  # What an entry leaves out is not set on the alarm.
  alarm_defaults = {
    namespace           = null
    metric_name         = null
    dimensions          = null
    statistic           = null
    period              = null
    datapoints_to_alarm = null
    math                = null
  }

  alarm_definitions = merge(
    # -----------------------------------------------------------------------------------------------
    # ALB
    # -----------------------------------------------------------------------------------------------
    {
      "alb-5xx-ratio" = {
        description         = "More than 5 % of ALB requests answered 5xx (ALB or targets) for 5 minutes, with at least 100 requests per minute."
        severity            = "page"
        evaluation_periods  = 5
        datapoints_to_alarm = 5
        comparison_operator = "GreaterThanThreshold"
        threshold           = 5
        treat_missing_data  = "notBreaching"
        math = {
          id         = "ratio"
          expression = "IF(requests >= 100, 100 * (FILL(elb5xx, 0) + FILL(target5xx, 0)) / requests, 0)"
          label      = "5xx percent"
          metrics    = { requests = "RequestCount", elb5xx = "HTTPCode_ELB_5XX_Count", target5xx = "HTTPCode_Target_5XX_Count" }
          namespace  = "AWS/ApplicationELB"
          dimensions = local.alb_dimensions
          statistic  = "Sum"
          period     = 60
        }
      }
      "alb-rejected-connections" = {
        description         = "The ALB rejected connections (it reached its connection limit)."
        severity            = "ticket"
        namespace           = "AWS/ApplicationELB"
        metric_name         = "RejectedConnectionCount"
        dimensions          = local.alb_dimensions
        statistic           = "Sum"
        period              = 300
        evaluation_periods  = 1
        comparison_operator = "GreaterThanThreshold"
        threshold           = 0
        treat_missing_data  = "notBreaching"
      }
    },
    merge([for svc, dimensions in local.target_group_dimensions : {
      "${svc}-5xx-ratio" = {
        description         = "More than 2 % of ${svc} responses are 5xx for 10 minutes (at least 50 requests per minute)."
        severity            = "ticket"
        evaluation_periods  = 10
        datapoints_to_alarm = 8
        comparison_operator = "GreaterThanThreshold"
        threshold           = 2
        treat_missing_data  = "notBreaching"
        math = {
          id         = "ratio"
          expression = "IF(requests >= 50, 100 * FILL(target5xx, 0) / requests, 0)"
          label      = "${svc} 5xx percent"
          metrics    = { requests = "RequestCount", target5xx = "HTTPCode_Target_5XX_Count" }
          namespace  = "AWS/ApplicationELB"
          dimensions = dimensions
          statistic  = "Sum"
          period     = 60
        }
      }
      "${svc}-unhealthy-targets" = {
        description         = "${svc} has targets failing the ALB /readyz health check for 5 minutes."
        severity            = "ticket"
        namespace           = "AWS/ApplicationELB"
        metric_name         = "UnHealthyHostCount"
        dimensions          = dimensions
        statistic           = "Maximum"
        period              = 60
        evaluation_periods  = 5
        datapoints_to_alarm = 5
        comparison_operator = "GreaterThanThreshold"
        threshold           = 0
        treat_missing_data  = "notBreaching"
      }
      "${svc}-no-healthy-targets" = {
        description         = "${svc} has no healthy target behind the ALB for 2 minutes: its routes answer 503."
        severity            = "page"
        namespace           = "AWS/ApplicationELB"
        metric_name         = "HealthyHostCount"
        dimensions          = dimensions
        statistic           = "Minimum"
        period              = 60
        evaluation_periods  = 2
        datapoints_to_alarm = 2
        comparison_operator = "LessThanThreshold"
        threshold           = 1
        treat_missing_data  = "breaching"
      }
    }]...),

    # -----------------------------------------------------------------------------------------------
    # ECS (Container Insights)
    # -----------------------------------------------------------------------------------------------
    merge([for svc, dimensions in local.ecs_service_dimensions : {
      "${svc}-running-below-desired" = {
        description         = "${svc}: fewer running tasks than desired for 10 minutes (tasks crash-looping, failing health checks or unable to start)."
        severity            = "page"
        evaluation_periods  = 10
        datapoints_to_alarm = 10
        comparison_operator = "GreaterThanThreshold"
        threshold           = 0
        treat_missing_data  = "breaching"
        math = {
          id         = "missing"
          expression = "desired - running"
          label      = "desired minus running tasks"
          metrics    = { desired = "DesiredTaskCount", running = "RunningTaskCount" }
          namespace  = "ECS/ContainerInsights"
          dimensions = dimensions
          statistic  = "Average"
          period     = 60
        }
      }
    }]...),
    # <svc>-cpu-high and <svc>-memory-high (local.ecs_utilization)
    merge([for svc, dimensions in local.ecs_service_dimensions : {
      for kind, u in local.ecs_utilization : "${svc}-${kind}-high" => {
        description         = "${svc}: average ${u.what} above 85 % of the reservation for 15 minutes (${u.consequence})."
        severity            = "ticket"
        namespace           = "AWS/ECS"
        metric_name         = u.metric_name
        dimensions          = dimensions
        statistic           = "Average"
        period              = 60
        evaluation_periods  = 15
        datapoints_to_alarm = 15
        comparison_operator = "GreaterThanThreshold"
        threshold           = 85
        treat_missing_data  = "notBreaching"
      }
    }]...),

    # -----------------------------------------------------------------------------------------------
    # RDS
    # -----------------------------------------------------------------------------------------------
    {
      "rds-cpu-high" = {
        description         = "RDS CPU above 80 % for 15 minutes."
        severity            = "ticket"
        namespace           = "AWS/RDS"
        metric_name         = "CPUUtilization"
        dimensions          = local.rds_dimensions
        statistic           = "Average"
        period              = 60
        evaluation_periods  = 15
        datapoints_to_alarm = 15
        comparison_operator = "GreaterThanThreshold"
        threshold           = 80
        treat_missing_data  = "breaching"
      }
      "rds-connections-high" = {
        description         = "RDS connections above ${var.rds_max_connections_alarm} for 10 minutes (pools x tasks approaching max_connections)."
        severity            = "ticket"
        namespace           = "AWS/RDS"
        metric_name         = "DatabaseConnections"
        dimensions          = local.rds_dimensions
        statistic           = "Maximum"
        period              = 60
        evaluation_periods  = 10
        datapoints_to_alarm = 10
        comparison_operator = "GreaterThanThreshold"
        threshold           = var.rds_max_connections_alarm
        treat_missing_data  = "breaching"
      }
      "rds-free-storage-low" = {
        description         = "RDS free storage below 10 GiB (storage autoscaling at its ceiling or not keeping up)."
        severity            = "page"
        namespace           = "AWS/RDS"
        metric_name         = "FreeStorageSpace"
        dimensions          = local.rds_dimensions
        statistic           = "Minimum"
        period              = 300
        evaluation_periods  = 2
        datapoints_to_alarm = 2
        comparison_operator = "LessThanThreshold"
        threshold           = 10737418240
        treat_missing_data  = "breaching"
      }
    },

    # -----------------------------------------------------------------------------------------------
    # MSK
    # -----------------------------------------------------------------------------------------------
    merge([for id, dimensions in local.broker_dimensions : {
      "msk-broker-${id}-disk" = {
        description         = "MSK broker ${id}: data log disk above 80 % (storage autoscaling targets 70 %)."
        severity            = "ticket"
        namespace           = "AWS/Kafka"
        metric_name         = "KafkaDataLogsDiskUsed"
        dimensions          = dimensions
        statistic           = "Maximum"
        period              = 300
        evaluation_periods  = 2
        datapoints_to_alarm = 2
        comparison_operator = "GreaterThanThreshold"
        threshold           = 80
        treat_missing_data  = "breaching"
      }
      "msk-broker-${id}-disk-critical" = {
        description         = "MSK broker ${id}: data log disk above 90 %; a full disk stops the broker."
        severity            = "page"
        namespace           = "AWS/Kafka"
        metric_name         = "KafkaDataLogsDiskUsed"
        dimensions          = dimensions
        statistic           = "Maximum"
        period              = 300
        evaluation_periods  = 1
        comparison_operator = "GreaterThanThreshold"
        threshold           = 90
        treat_missing_data  = "breaching"
      }
    }]...),
    {
      "msk-offline-partitions" = {
        description         = "MSK has offline partitions: producers and consumers of those partitions are stuck."
        severity            = "page"
        namespace           = "AWS/Kafka"
        metric_name         = "OfflinePartitionsCount"
        dimensions          = local.msk_dimensions
        statistic           = "Maximum"
        period              = 60
        evaluation_periods  = 3
        datapoints_to_alarm = 3
        comparison_operator = "GreaterThanThreshold"
        threshold           = 0
        treat_missing_data  = "breaching"
      }
      "msk-active-controller" = {
        description         = "MSK does not have exactly one active controller."
        severity            = "page"
        namespace           = "AWS/Kafka"
        metric_name         = "ActiveControllerCount"
        dimensions          = local.msk_dimensions
        statistic           = "Sum"
        period              = 60
        evaluation_periods  = 5
        datapoints_to_alarm = 5
        comparison_operator = "LessThanThreshold"
        threshold           = 1
        treat_missing_data  = "breaching"
      }
    },
    {
      for p in local.lag_pairs : "lag-${p.group}-${p.topic}" => {
        description         = "Consumer group ${p.group} is more than ${var.consumer_lag_threshold_seconds} s behind on ${p.topic} for 5 minutes, or reports no lag at all (group gone: missing data is breaching)."
        severity            = "page"
        namespace           = "AWS/Kafka"
        metric_name         = "EstimatedMaxTimeLag"
        dimensions          = merge(local.msk_dimensions, { "Consumer Group" = p.group, "Topic" = p.topic })
        statistic           = "Maximum"
        period              = 60
        evaluation_periods  = 5
        datapoints_to_alarm = 5
        comparison_operator = "GreaterThanThreshold"
        threshold           = var.consumer_lag_threshold_seconds
        treat_missing_data  = "breaching"
      }
    },

    # -----------------------------------------------------------------------------------------------
    # Synthetics canaries (canaries.tf)
    # -----------------------------------------------------------------------------------------------
    {
      for name, c in local.canaries : "canary-${name}" => {
        description         = c.alarm.description
        severity            = c.alarm.severity
        namespace           = "CloudWatchSynthetics"
        metric_name         = "SuccessPercent"
        dimensions          = { CanaryName = aws_synthetics_canary.this[name].name }
        statistic           = "Average"
        period              = c.alarm.period
        evaluation_periods  = c.alarm.evaluation_periods
        datapoints_to_alarm = 3
        comparison_operator = "LessThanThreshold"
        threshold           = 100
        treat_missing_data  = "breaching"
      }
    },
  )

  alarms = { for name, a in local.alarm_definitions : name => merge(local.alarm_defaults, a) }
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = local.alarms

  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = "${each.value.description} severity=${each.value.severity}"
  namespace           = each.value.namespace
  metric_name         = each.value.metric_name
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = each.value.period
  evaluation_periods  = each.value.evaluation_periods
  datapoints_to_alarm = each.value.datapoints_to_alarm
  comparison_operator = each.value.comparison_operator
  threshold           = each.value.threshold
  treat_missing_data  = each.value.treat_missing_data
  alarm_actions       = [local.topic[each.value.severity]]
  ok_actions          = [local.topic[each.value.severity]]

  # Metric math: the expression the alarm evaluates...
  dynamic "metric_query" {
    for_each = each.value.math[*]
    content {
      id          = metric_query.value.id
      expression  = metric_query.value.expression
      label       = metric_query.value.label
      return_data = true
    }
  }

  # ...and the metrics it reads.
  dynamic "metric_query" {
    for_each = each.value.math == null ? {} : each.value.math.metrics
    content {
      id = metric_query.key
      metric {
        namespace   = each.value.math.namespace
        metric_name = metric_query.value
        dimensions  = each.value.math.dimensions
        period      = each.value.math.period
        stat        = each.value.math.statistic
      }
    }
  }
}
