# ------------------------------------------------------------------------------------------------
# Where
# ------------------------------------------------------------------------------------------------
variable "name" {
  description = "Name prefix for every resource (ECS cluster, ALB, MSK, RDS, ...)."
  type        = string
  default     = "casino"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name: lowercase letters, digits and dashes, at most 21 characters (ALB/target group names are limited to 32)."
  }
}

variable "environment" {
  description = "Deployment environment; becomes P_ENV of every service (docs/conventions.md)."
  type        = string

  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment must be staging or production."
  }
}

variable "aws_region" {
  description = "AWS region, e.g. eu-west-1."
  type        = string
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

# ------------------------------------------------------------------------------------------------
# Existing network
# ------------------------------------------------------------------------------------------------
variable "vpc_id" {
  description = "Existing VPC."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets (at least two AZs) for the ALB."
  type        = list(string)

  validation {
    condition     = length(var.public_subnet_ids) >= 2
    error_message = "The ALB needs public subnets in at least two availability zones."
  }
}

variable "private_subnet_ids" {
  description = "Private subnets (with NAT or VPC endpoints for ECR, Secrets Manager, SSM, logs, X-Ray, APS) for ECS tasks, RDS and MSK. MSK uses one broker per subnet, so give 3 (or 2) subnets in distinct AZs."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "At least two private subnets in distinct availability zones."
  }
}

# ------------------------------------------------------------------------------------------------
# Public entry point
# ------------------------------------------------------------------------------------------------
variable "certificate_arn" {
  description = "ACM certificate for the HTTPS listener (covers public_hostname)."
  type        = string
}

variable "public_hostname" {
  description = "Public DNS name of the API (e.g. api.casino.example.com); canaries and the chat probe use https://<public_hostname>."
  type        = string
}

variable "route53_zone_id" {
  description = "If set, an alias record public_hostname -> ALB is created in this hosted zone."
  type        = string
  default     = null
}

variable "waf_web_acl_arn" {
  description = "Existing WAFv2 web ACL (REGIONAL) to associate with the ALB. When null a managed-rules ACL is created."
  type        = string
  default     = null
}

# ------------------------------------------------------------------------------------------------
# Images
# ------------------------------------------------------------------------------------------------
variable "image_repository_prefix" {
  description = "Registry and repository prefix; images are <prefix>/<service>:<tag>, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/casino (repositories vault, concierge, room-service, casino)."
  type        = string
}

variable "image_tags" {
  description = "Image tag per image (immutable tags, e.g. the git SHA). Keys: vault, concierge, room-service, casino (chat probe)."
  type        = map(string)

  validation {
    condition     = alltrue([for k in ["vault", "concierge", "room-service", "casino"] : contains(keys(var.image_tags), k)])
    error_message = "image_tags needs the keys vault, concierge, room-service and casino."
  }
}

variable "adot_image" {
  description = "AWS Distro for OpenTelemetry collector image used as sidecar."
  type        = string
  default     = "public.ecr.aws/aws-observability/aws-otel-collector:v0.47.0"
}

variable "bootstrap_postgres_image" {
  description = "Image with psql for the one-off bootstrap task (creates databases and roles)."
  type        = string
  default     = "public.ecr.aws/docker/library/postgres:15-bookworm"
}

variable "bootstrap_kafka_image" {
  description = "Image with the Kafka CLI tools for the one-off bootstrap task (creates topics). Mirror it into ECR (pull-through cache) to avoid Docker Hub rate limits."
  type        = string
  default     = "apache/kafka:3.9.1"
}

# ------------------------------------------------------------------------------------------------
# Services
# ------------------------------------------------------------------------------------------------
variable "drain_delay_seconds" {
  description = "Seconds a stopping task answers /readyz 503 before it stops accepting (P_DRAIN_DELAY_SECONDS); also the ALB deregistration delay. Must leave room inside the 25 s shutdown deadline and the 45 s ECS stopTimeout."
  type        = number
  default     = 15

  validation {
    condition     = var.drain_delay_seconds >= 0 && var.drain_delay_seconds <= 20
    error_message = "drain_delay_seconds must be between 0 and 20 (shutdown deadline 25 s, stopTimeout 45 s)."
  }
}

variable "service_scaling" {
  description = "Per service: task count bounds and autoscaling targets (CPU percent, ALB requests per target per minute)."
  type = map(object({
    min_tasks                  = number
    max_tasks                  = number
    cpu_target_percent         = number
    requests_per_target_target = number
  }))
  default = {
    vault        = { min_tasks = 3, max_tasks = 20, cpu_target_percent = 60, requests_per_target_target = 3000 }
    concierge    = { min_tasks = 2, max_tasks = 10, cpu_target_percent = 60, requests_per_target_target = 2000 }
    room-service = { min_tasks = 3, max_tasks = 20, cpu_target_percent = 50, requests_per_target_target = 2000 }
  }
}

variable "deploy_services" {
  description = "false on the very first apply: creates everything except the ECS services (and their task-count alarms), so the bootstrap task can create the databases and topics before any service starts. See README."
  type        = bool
  default     = true
}

variable "trace_sample_ratio" {
  description = "OTEL_TRACES_SAMPLER_ARG (parentbased_traceidratio) for the services."
  type        = number
  default     = 0.1
}

variable "enable_chat_probe_service" {
  description = "Run `casino probe chat --serve` as a one-task ECS service so probe_success{probe=\"chat\"} reaches Amazon Managed Prometheus (the alerts/ rules page on it)."
  type        = bool
  default     = true
}

# ------------------------------------------------------------------------------------------------
# Data stores
# ------------------------------------------------------------------------------------------------
variable "rds_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.m6g.large"
}

variable "rds_allocated_storage_gb" {
  description = "Initial RDS storage (GiB); storage autoscaling up to rds_max_allocated_storage_gb."
  type        = number
  default     = 100
}

variable "rds_max_allocated_storage_gb" {
  description = "Upper bound for RDS storage autoscaling (GiB)."
  type        = number
  default     = 1000
}

variable "rds_backup_retention_days" {
  description = "Automated backup retention (days)."
  type        = number
  default     = 14
}

variable "msk_kafka_version" {
  description = "MSK Kafka version."
  type        = string
  default     = "3.6.0"
}

variable "msk_broker_instance_type" {
  description = "MSK broker instance type."
  type        = string
  default     = "kafka.m7g.large"
}

variable "msk_broker_volume_gb" {
  description = "EBS volume per broker (GiB); storage autoscaling raises it up to msk_broker_max_volume_gb."
  type        = number
  default     = 200
}

variable "msk_broker_max_volume_gb" {
  description = "Upper bound for MSK broker storage autoscaling (GiB)."
  type        = number
  default     = 1000
}

variable "kafka_topics" {
  description = "Kafka topics (docs/conventions.md, crates/events). Not created by Terraform: rendered into the one-off bootstrap task (KAFKA_TOPICS) and the kafka_topics output. scripts/infra/consistency.py checks the names against crates/events."
  type = list(object({
    name         = string
    partitions   = number
    retention_ms = number
  }))
  default = [
    { name = "vault.transactions.v1", partitions = 12, retention_ms = 604800000 },
    { name = "vault.players.v1", partitions = 6, retention_ms = 2592000000 },
    { name = "vault.payments.v1", partitions = 6, retention_ms = 2592000000 },
    { name = "concierge.rewards.v1", partitions = 12, retention_ms = 604800000 },
    { name = "room.chat.v1", partitions = 6, retention_ms = 86400000 },
    { name = "vault.transactions.v1.dlq", partitions = 3, retention_ms = 1209600000 },
    { name = "vault.players.v1.dlq", partitions = 3, retention_ms = 1209600000 },
    { name = "vault.payments.v1.dlq", partitions = 3, retention_ms = 1209600000 },
    { name = "concierge.rewards.v1.dlq", partitions = 3, retention_ms = 1209600000 },
    { name = "room.chat.v1.dlq", partitions = 3, retention_ms = 1209600000 },
  ]
}

# ------------------------------------------------------------------------------------------------
# Observability and paging
# ------------------------------------------------------------------------------------------------
variable "log_retention_days" {
  description = "CloudWatch Logs retention for service, ADOT, MSK and canary logs."
  type        = number
  default     = 365
}

variable "pagerduty_page_integration_secret_id" {
  description = "Secrets Manager secret (name or ARN) whose value is the PagerDuty CloudWatch integration URL (https://events.pagerduty.com/integration/<key>/enqueue) of the high-urgency service. Subscribed to the `page` SNS topic."
  type        = string
}

variable "pagerduty_ticket_integration_secret_id" {
  description = "Same for the low-urgency PagerDuty service, subscribed to the `ticket` SNS topic. Null: the ticket topic has no PagerDuty subscription (add e-mail/Slack/Chatbot yourself)."
  type        = string
  default     = null
}

variable "alerts_dir" {
  description = "Directory whose *.rules.yml files become Amazon Managed Prometheus rule group namespaces (read at plan time, never copied)."
  type        = string
  default     = null
}

variable "grafana_authentication_providers" {
  description = "Amazon Managed Grafana authentication (AWS_SSO needs IAM Identity Center in the account; or SAML)."
  type        = list(string)
  default     = ["AWS_SSO"]
}

variable "canary_runtime_version" {
  description = "CloudWatch Synthetics runtime for the canaries (Node.js + Puppeteer runtime; socket.io-client is bundled in the zip)."
  type        = string
  default     = "syn-nodejs-puppeteer-9.1"
}

variable "canary_player_secret_id" {
  description = "Secrets Manager secret (name or ARN) with JSON {\"username\":..., \"password\":...} of the synthetic player that the chat canary and the chat probe log in as (a normal player account created once by an operator; see README)."
  type        = string
}
