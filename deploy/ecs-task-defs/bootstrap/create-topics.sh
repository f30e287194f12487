# Run by the `create-topics` container of the one-off bootstrap task (deploy/ecs-task-defs/bootstrap.json)
# as `bash -c` in the apache/kafka image. Idempotent (--if-not-exists; partitions are only ever raised,
# retention is re-applied). KAFKA_TOPICS is rendered by Terraform from var.kafka_topics as
# "name:partitions:retention_ms,..." and KAFKA_SASL_* come from the MSK SCRAM admin secret.
set -euo pipefail
cfg=/tmp/client.properties
umask 077
cat > "$cfg" <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="${KAFKA_SASL_USERNAME}" password="${KAFKA_SASL_PASSWORD}";
PROPS
bin=/opt/kafka/bin
IFS=',' read -ra topics <<< "$KAFKA_TOPICS"
for spec in "${topics[@]}"; do
  IFS=':' read -r name partitions retention <<< "$spec"
  "$bin/kafka-topics.sh" --bootstrap-server "$KAFKA_BROKERS" --command-config "$cfg" --create --if-not-exists \
    --topic "$name" --partitions "$partitions" --replication-factor "$KAFKA_REPLICATION_FACTOR" \
    --config "retention.ms=$retention" --config "min.insync.replicas=$KAFKA_MIN_INSYNC_REPLICAS" --config cleanup.policy=delete
  current=$("$bin/kafka-topics.sh" --bootstrap-server "$KAFKA_BROKERS" --command-config "$cfg" --describe --topic "$name" \
    | sed -n 's/.*PartitionCount: *\([0-9]*\).*/\1/p' | head -n1)
  if [ -n "$current" ] && [ "$current" -lt "$partitions" ]; then
    "$bin/kafka-topics.sh" --bootstrap-server "$KAFKA_BROKERS" --command-config "$cfg" --alter --topic "$name" --partitions "$partitions"
  fi
  "$bin/kafka-configs.sh" --bootstrap-server "$KAFKA_BROKERS" --command-config "$cfg" --alter \
    --entity-type topics --entity-name "$name" --add-config "retention.ms=$retention"
  echo "topic ${name} ready"
done
rm -f "$cfg"
