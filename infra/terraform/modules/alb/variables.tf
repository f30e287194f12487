variable "name" {
  description = "Name prefix (e.g. casino-production); the ALB and target group names derive from it."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the ALB and targets."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets for the internet-facing ALB."
  type        = list(string)
}

variable "certificate_arn" {
  description = "ACM certificate of the HTTPS listener."
  type        = string
}

variable "ssl_policy" {
  description = "TLS policy of the HTTPS listener (TLS 1.3 + 1.2 only)."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "idle_timeout_seconds" {
  description = "ALB idle timeout. Long because socket.io (WebSocket and HTTP long-polling) connections of Room-Service go through the same ALB; socket.io pings every 25 s."
  type        = number
  default     = 300
}

variable "routes" {
  description = "Per service: listener rule priority, path patterns (at most 5 per rule) and whether the target group uses cookie stickiness."
  type = map(object({
    priority      = number
    path_patterns = list(string)
    stickiness    = bool
  }))
}

variable "target_port" {
  description = "Container port of the targets (public port)."
  type        = number
}

variable "health_check_path" {
  description = "Readiness path the target groups check on the traffic port."
  type        = string
}

variable "deregistration_delay_seconds" {
  description = "Target deregistration delay; equal to the services' drain delay (P_DRAIN_DELAY_SECONDS)."
  type        = number
}

variable "waf_web_acl_arn" {
  description = "Existing REGIONAL WAFv2 web ACL; null creates one with AWS managed rule groups."
  type        = string
  default     = null
}

variable "kms_key_arn" {
  description = "KMS key for the WAF log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of WAF logs and ALB access logs (days)."
  type        = number
}
