variable "name" {
  description = "Service name (vault, concierge, room-service, chat-probe, bootstrap): ECS service, container and log stream prefix."
  type        = string
}

variable "name_prefix" {
  description = "Environment prefix (e.g. casino-production) for IAM roles, log groups and SSM parameters."
  type        = string
}

variable "cluster_arn" {
  description = "ECS cluster ARN."
  type        = string
}

variable "task_definition_template" {
  description = "Path of the task definition JSON in deploy/ecs-task-defs/ (ECS RegisterTaskDefinition shape with $${...} placeholders)."
  type        = string
}

variable "template_vars" {
  description = "Values for the template's placeholders. The module adds name_prefix, execution_role_arn, task_role_arn, log_group and adot_config_param_arn."
  type        = map(string)
}

variable "adot_config" {
  description = "Rendered ADOT collector configuration (stored in SSM, injected as AOT_CONFIG_CONTENT). Null when the task has no collector sidecar."
  type        = string
  default     = null
}

variable "secret_arns" {
  description = "Secrets Manager secrets the execution role may read (those referenced by the task definition's `secrets`)."
  type        = list(string)
  default     = []
}

variable "kms_key_arn" {
  description = "KMS key of the secrets, SSM parameter and log group."
  type        = string
}

variable "task_role_policy_json" {
  description = "Inline policy for the task role (what the containers themselves may call); null for none."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention."
  type        = number
}

variable "create_service" {
  description = "false: only the task definition (one-off tasks such as bootstrap, run with `aws ecs run-task`)."
  type        = bool
  default     = true
}

variable "subnet_ids" {
  description = "Private subnets of the tasks."
  type        = list(string)
  default     = []
}

variable "security_group_ids" {
  description = "Security groups of the tasks."
  type        = list(string)
  default     = []
}

variable "target_group_arn" {
  description = "ALB target group of the public port; null for services without a load balancer."
  type        = string
  default     = null
}

variable "container_port" {
  description = "Container port registered in the target group."
  type        = number
  default     = 8080
}

variable "health_check_grace_period_seconds" {
  description = "Seconds ECS ignores failing ALB health checks after a task starts."
  type        = number
  default     = 60
}

variable "min_tasks" {
  description = "Minimum (and initial) task count."
  type        = number
  default     = 1
}

variable "max_tasks" {
  description = "Maximum task count."
  type        = number
  default     = 1
}

variable "cpu_target_percent" {
  description = "Target-tracking value for average service CPU; null disables CPU scaling."
  type        = number
  default     = null
}

variable "requests_per_target_target" {
  description = "Target-tracking value for ALBRequestCountPerTarget (requests per target per minute); null disables it."
  type        = number
  default     = null
}

variable "alb_resource_label" {
  description = "app/<lb>/<id>/targetgroup/<tg>/<id>, required with requests_per_target_target."
  type        = string
  default     = null
}

variable "service_discovery_namespace_id" {
  description = "Cloud Map private DNS namespace; when set the tasks register <name>.<namespace> A records (used for /internal/v1 calls)."
  type        = string
  default     = null
}
