#!/bin/bash
# Creates the topics listed in topics.txt on the compose Kafka broker (idempotent: --if-not-exists).
# Runs in the `kafka-init` container (apache/kafka image) once the broker is healthy.
set -euo pipefail
bootstrap="${KAFKA_BOOTSTRAP:-kafka:19092}"
topics_file="${TOPICS_FILE:-/init/topics.txt}"
kt=/opt/kafka/bin/kafka-topics.sh
while read -r name partitions retention _; do
  case "$name" in ''|'#'*) continue ;; esac
  "$kt" --bootstrap-server "$bootstrap" --create --if-not-exists \
    --topic "$name" --partitions "$partitions" --replication-factor 1 \
    --config "retention.ms=$retention" --config cleanup.policy=delete
done < "$topics_file"
"$kt" --bootstrap-server "$bootstrap" --list
