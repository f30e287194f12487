output "cluster_arn" {
  description = "MSK cluster ARN."
  value       = aws_msk_cluster.this.arn
}

output "cluster_name" {
  description = "MSK cluster name (CloudWatch dimension \"Cluster Name\")."
  value       = aws_msk_cluster.this.cluster_name
}

output "bootstrap_brokers_sasl_scram" {
  description = "Comma-separated host:9096 list for SASL_SSL/SCRAM clients (P_KAFKA_BROKERS)."
  value       = aws_msk_cluster.this.bootstrap_brokers_sasl_scram
}

output "broker_count" {
  description = "Number of brokers (broker ids 1..n)."
  value       = local.broker_count
}

output "replication_factor" {
  description = "Replication factor for topics."
  value       = local.replication_factor
}

output "security_group_id" {
  description = "Security group of the brokers."
  value       = aws_security_group.this.id
}

output "min_insync_replicas" {
  description = "min.insync.replicas for topics: 2, or 1 on a single-broker cluster."
  value       = min(2, local.replication_factor)
}
