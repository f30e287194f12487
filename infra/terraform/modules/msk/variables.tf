variable "name" {
  description = "Cluster name prefix (e.g. casino-production)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the cluster."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets, one broker per subnet (2 or 3 distinct AZs)."
  type        = list(string)
}

variable "client_security_group_ids" {
  description = "Security groups allowed to reach the brokers on 9096 (SASL/SCRAM over TLS)."
  type        = list(string)
}

variable "kafka_version" {
  description = "Kafka version."
  type        = string
}

variable "broker_instance_type" {
  description = "Broker instance type."
  type        = string
}

variable "brokers_per_subnet" {
  description = "Brokers per subnet (total = subnets x this)."
  type        = number
  default     = 1
}

variable "broker_volume_gb" {
  description = "Initial EBS volume per broker (GiB)."
  type        = number
}

variable "broker_max_volume_gb" {
  description = "Storage autoscaling ceiling per broker (GiB)."
  type        = number
}

variable "kms_key_arn" {
  description = "KMS key for encryption at rest and broker logs."
  type        = string
}

variable "scram_secret_arns" {
  description = "Secrets (AmazonMSK_ prefix, CMK-encrypted) associated as SASL/SCRAM users."
  type        = list(string)
}

variable "log_retention_days" {
  description = "Retention of the broker logs."
  type        = number
}
