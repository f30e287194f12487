variable "name" {
  description = "Name prefix (e.g. casino-production)."
  type        = string
}

variable "short_name" {
  description = "At most 14 lowercase characters; canary names are <short_name>-chat / <short_name>-health (Synthetics limit 21)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9_-]{1,14}$", var.short_name))
    error_message = "short_name: 1-14 characters of a-z, 0-9, _ and -."
  }
}

variable "kms_key_arn" {
  description = "KMS key for SNS, AMP, logs and canary artifacts."
  type        = string
}

variable "log_retention_days" {
  description = "Retention for AMP and canary logs."
  type        = number
}

# --- paging -----------------------------------------------------------------------------------------
variable "pagerduty_page_url" {
  description = "PagerDuty integration URL (high urgency) subscribed to the page topic."
  type        = string
  sensitive   = true
}

variable "pagerduty_ticket_url" {
  description = "PagerDuty integration URL (low urgency) subscribed to the ticket topic; used when enable_ticket_pagerduty."
  type        = string
  sensitive   = true
  default     = null
}

variable "enable_ticket_pagerduty" {
  description = "Subscribe pagerduty_ticket_url to the ticket topic (kept separate because count cannot depend on a sensitive value)."
  type        = bool
  default     = false
}

# --- Amazon Managed Prometheus -------------------------------------------------------------------------
variable "alerts_dir" {
  description = "Directory whose *.rules.yml files are loaded as AMP rule group namespaces (one per file)."
  type        = string
}

# --- Amazon Managed Grafana ----------------------------------------------------------------------------
variable "grafana_authentication_providers" {
  description = "AWS_SSO and/or SAML."
  type        = list(string)
}

# --- what the alarms watch -----------------------------------------------------------------------------
variable "alb_arn_suffix" {
  description = "ALB dimension LoadBalancer."
  type        = string
}

variable "target_group_arn_suffixes" {
  description = "Service name -> target group dimension TargetGroup."
  type        = map(string)
}

variable "ecs_cluster_name" {
  description = "ECS cluster (Container Insights enabled)."
  type        = string
}

variable "ecs_service_names" {
  description = "ECS services whose running/desired tasks, CPU and memory are alarmed."
  type        = list(string)
}

variable "rds_instance_id" {
  description = "RDS DBInstanceIdentifier."
  type        = string
}

variable "rds_max_connections_alarm" {
  description = "DatabaseConnections threshold (ticket); about 80 % of max_connections of the instance class."
  type        = number
  default     = 500
}

variable "msk_cluster_name" {
  description = "MSK dimension \"Cluster Name\"."
  type        = string
}

variable "msk_broker_count" {
  description = "Number of brokers (ids 1..n) for the per-broker disk alarms."
  type        = number
}

variable "consumer_lag_alarms" {
  description = "Consumer group -> topics whose EstimatedMaxTimeLag (seconds) is alarmed; missing data is breaching (a group that stopped committing is as bad as a lagging one)."
  type        = map(list(string))
  default = {
    concierge = ["vault.transactions.v1"]
  }
}

variable "consumer_lag_threshold_seconds" {
  description = "EstimatedMaxTimeLag threshold (seconds)."
  type        = number
  default     = 300
}

# --- canaries ------------------------------------------------------------------------------------------
variable "public_base_url" {
  description = "https://<public hostname> the canaries call."
  type        = string
}

variable "canary_player_secret_arn" {
  description = "Secret with JSON {username, password} of the synthetic player."
  type        = string
}

variable "canary_runtime_version" {
  description = "Synthetics runtime version."
  type        = string
}

variable "canaries_build_dir" {
  description = "Directory with the built canaries (infra/terraform/canaries/build.sh): <dir>/chat and <dir>/health, each with nodejs/node_modules/."
  type        = string
}

variable "health_check_paths" {
  description = "Public paths the health canary GETs through the ALB, one per service (2xx expected)."
  type        = map(string)
  default = {
    vault        = "/.well-known/jwks.json"
    room-service = "/socket.io/?EIO=4&transport=polling"
    concierge    = "/api/v1/leaderboards"
  }
}
