//! The idempotent producer.

use std::time::Duration;

use anyhow::Context as _;
use casino_events::Envelope;
use rdkafka::{
    ClientContext,
    message::OwnedHeaders,
    producer::{FutureProducer, FutureRecord, Producer as _},
};
use serde::Serialize;

use crate::{KafkaConfig, trace};

/// An idempotent, `acks=all` producer. Cheap to clone.
#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer<ProducerLog>,
}

/// Routes the producer's librdkafka lines (broker down, delivery timeouts) to the JSON log.
#[derive(Clone, Copy)]
struct ProducerLog;

impl ClientContext for ProducerLog {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        crate::consumer::log_librdkafka_line("producer", level, fac, log_message);
    }
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").finish_non_exhaustive()
    }
}

/// Where a message landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

impl Producer {
    /// Create the producer. `message_timeout` bounds how long one send may wait for the cluster (librdkafka
    /// retries internally until then).
    pub fn new(config: &KafkaConfig, message_timeout: Duration) -> anyhow::Result<Self> {
        let inner: FutureProducer<ProducerLog> = config
            .client_config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("compression.type", "lz4")
            .set(
                "message.timeout.ms",
                message_timeout.as_millis().to_string(),
            )
            .create_with_context(ProducerLog)
            .context("creating the Kafka producer")?;
        Ok(Self { inner })
    }

    /// Publish an event keyed by its player, with the current trace context in the headers.
    pub async fn send_envelope<T: Serialize>(
        &self,
        topic: &str,
        event: &Envelope<T>,
    ) -> anyhow::Result<Delivery> {
        let headers = trace::current_context_headers();
        self.send(topic, &event.key(), &event.to_vec(), &headers)
            .await
    }

    /// Publish raw bytes with explicit header pairs (for the outbox relay, which carries the trace context
    /// captured when the row was written).
    pub async fn send(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
        headers: &[(String, String)],
    ) -> anyhow::Result<Delivery> {
        self.send_with_headers(
            topic,
            key.as_bytes(),
            payload,
            trace::to_kafka_headers(headers, OwnedHeaders::new()),
        )
        .await
    }

    /// Publish with prepared Kafka headers.
    pub async fn send_with_headers(
        &self,
        topic: &str,
        key: &[u8],
        payload: &[u8],
        headers: OwnedHeaders,
    ) -> anyhow::Result<Delivery> {
        let record = FutureRecord::to(topic)
            .key(key)
            .payload(payload)
            .headers(headers);
        match self.inner.send(record, Duration::from_secs(0)).await {
            Ok(delivery) => {
                metrics::counter!("kafka_producer_messages_total", "topic" => topic.to_owned(), "outcome" => "ok")
                    .increment(1);
                Ok(Delivery {
                    partition: delivery.partition,
                    offset: delivery.offset,
                })
            }
            Err((error, _)) => {
                metrics::counter!("kafka_producer_messages_total", "topic" => topic.to_owned(), "outcome" => "error")
                    .increment(1);
                Err(anyhow::Error::new(error).context(format!("publishing to {topic}")))
            }
        }
    }

    /// Wait until every queued message is delivered, up to `timeout`.
    pub fn flush(&self, timeout: Duration) -> anyhow::Result<()> {
        self.inner
            .flush(timeout)
            .context("flushing the Kafka producer")
    }

    /// Whether the cluster answered a metadata request within `timeout` (for optional health checks).
    pub async fn ping(&self, timeout: Duration) -> Result<(), String> {
        let producer = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, timeout)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }
}
