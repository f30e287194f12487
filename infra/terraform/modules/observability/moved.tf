# State moves from the one-resource-per-alarm layout of alarms.tf (and the canary alarm of
# canaries.tf) to aws_cloudwatch_metric_alarm.this, keyed by alarm name without the "<var.name>-"
# prefix: `terraform plan` shows these alarms as moved, not replaced. The alarm names, and so the
# CloudWatch alarms, do not change.
#
# moved blocks cannot iterate, so the instance keys are spelled out: those the root module deploys
# (its three services, for target groups and ECS services; MSK broker ids 1-3, as MSK takes 2 or 3
# client subnets and the root module runs one broker per subnet; the default consumer_lag_alarms).
# A caller with other keys must add its own moves before applying (or `terraform state mv`): an
# instance without one is planned as a destroy plus a create of the same alarm name, and the destroy
# can run after the create and delete the alarm (until the next apply creates it again).

# Alarms with a single instance.
moved {
  from = aws_cloudwatch_metric_alarm.alb_5xx_ratio
  to   = aws_cloudwatch_metric_alarm.this["alb-5xx-ratio"]
}

moved {
  from = aws_cloudwatch_metric_alarm.alb_rejected_connections
  to   = aws_cloudwatch_metric_alarm.this["alb-rejected-connections"]
}

moved {
  from = aws_cloudwatch_metric_alarm.rds_cpu
  to   = aws_cloudwatch_metric_alarm.this["rds-cpu-high"]
}

moved {
  from = aws_cloudwatch_metric_alarm.rds_connections
  to   = aws_cloudwatch_metric_alarm.this["rds-connections-high"]
}

moved {
  from = aws_cloudwatch_metric_alarm.rds_free_storage
  to   = aws_cloudwatch_metric_alarm.this["rds-free-storage-low"]
}

moved {
  from = aws_cloudwatch_metric_alarm.msk_offline_partitions
  to   = aws_cloudwatch_metric_alarm.this["msk-offline-partitions"]
}

moved {
  from = aws_cloudwatch_metric_alarm.msk_active_controller
  to   = aws_cloudwatch_metric_alarm.this["msk-active-controller"]
}

# Per target group (service).
moved {
  from = aws_cloudwatch_metric_alarm.target_5xx_ratio["vault"]
  to   = aws_cloudwatch_metric_alarm.this["vault-5xx-ratio"]
}

moved {
  from = aws_cloudwatch_metric_alarm.unhealthy_targets["vault"]
  to   = aws_cloudwatch_metric_alarm.this["vault-unhealthy-targets"]
}

moved {
  from = aws_cloudwatch_metric_alarm.no_healthy_targets["vault"]
  to   = aws_cloudwatch_metric_alarm.this["vault-no-healthy-targets"]
}

moved {
  from = aws_cloudwatch_metric_alarm.target_5xx_ratio["concierge"]
  to   = aws_cloudwatch_metric_alarm.this["concierge-5xx-ratio"]
}

moved {
  from = aws_cloudwatch_metric_alarm.unhealthy_targets["concierge"]
  to   = aws_cloudwatch_metric_alarm.this["concierge-unhealthy-targets"]
}

moved {
  from = aws_cloudwatch_metric_alarm.no_healthy_targets["concierge"]
  to   = aws_cloudwatch_metric_alarm.this["concierge-no-healthy-targets"]
}

moved {
  from = aws_cloudwatch_metric_alarm.target_5xx_ratio["room-service"]
  to   = aws_cloudwatch_metric_alarm.this["room-service-5xx-ratio"]
}

moved {
  from = aws_cloudwatch_metric_alarm.unhealthy_targets["room-service"]
  to   = aws_cloudwatch_metric_alarm.this["room-service-unhealthy-targets"]
}

moved {
  from = aws_cloudwatch_metric_alarm.no_healthy_targets["room-service"]
  to   = aws_cloudwatch_metric_alarm.this["room-service-no-healthy-targets"]
}

# Per ECS service.
moved {
  from = aws_cloudwatch_metric_alarm.ecs_running_below_desired["vault"]
  to   = aws_cloudwatch_metric_alarm.this["vault-running-below-desired"]
}

moved {
  from = aws_cloudwatch_metric_alarm.ecs_cpu["vault"]
  to   = aws_cloudwatch_metric_alarm.this["vault-cpu-high"]
}

moved {
  from = aws_cloudwatch_metric_alarm.ecs_memory["vault"]
  to   = aws_cloudwatch_metric_alarm.this["vault-memory-high"]
}

moved {
  from = aws_cloudwatch_metric_alarm.ecs_running_below_desired["concierge"]
  to   = aws_cloudwatch_metric_alarm.this["concierge-running-below-desired"]
}

moved {
  from = aws_cloudwatch_metric_alarm.ecs_cpu["concierge"]
  to   = aws_cloudwatch_metric_alarm.this["concierge-cpu-high"]
}

moved {
  from = aws_cloudwatch_metric_alarm.ecs_memory["concierge"]
  to   = aws_cloudwatch_metric_alarm.this["concierge-memory-high"]
}

moved {
  from = aws_cloudwatch_metric_alarm.ecs_running_below_desired["room-service"]
  to   = aws_cloudwatch_metric_alarm.this["room-service-running-below-desired"]
}

moved {
  from = aws_cloudwatch_metric_alarm.ecs_cpu["room-service"]
  to   = aws_cloudwatch_metric_alarm.this["room-service-cpu-high"]
}

moved {
  from = aws_cloudwatch_metric_alarm.ecs_memory["room-service"]
  to   = aws_cloudwatch_metric_alarm.this["room-service-memory-high"]
}

# Per MSK broker.
moved {
  from = aws_cloudwatch_metric_alarm.msk_disk["1"]
  to   = aws_cloudwatch_metric_alarm.this["msk-broker-1-disk"]
}

moved {
  from = aws_cloudwatch_metric_alarm.msk_disk_critical["1"]
  to   = aws_cloudwatch_metric_alarm.this["msk-broker-1-disk-critical"]
}

moved {
  from = aws_cloudwatch_metric_alarm.msk_disk["2"]
  to   = aws_cloudwatch_metric_alarm.this["msk-broker-2-disk"]
}

moved {
  from = aws_cloudwatch_metric_alarm.msk_disk_critical["2"]
  to   = aws_cloudwatch_metric_alarm.this["msk-broker-2-disk-critical"]
}

moved {
  from = aws_cloudwatch_metric_alarm.msk_disk["3"]
  to   = aws_cloudwatch_metric_alarm.this["msk-broker-3-disk"]
}

moved {
  from = aws_cloudwatch_metric_alarm.msk_disk_critical["3"]
  to   = aws_cloudwatch_metric_alarm.this["msk-broker-3-disk-critical"]
}

# Per consumer group and topic.
moved {
  from = aws_cloudwatch_metric_alarm.consumer_lag["concierge/vault.transactions.v1"]
  to   = aws_cloudwatch_metric_alarm.this["lag-concierge-vault.transactions.v1"]
}

# Per canary.
moved {
  from = aws_cloudwatch_metric_alarm.canary["chat"]
  to   = aws_cloudwatch_metric_alarm.this["canary-chat"]
}

moved {
  from = aws_cloudwatch_metric_alarm.canary["health"]
  to   = aws_cloudwatch_metric_alarm.this["canary-health"]
}
