//! Kafka for casino services: what every producer and consumer must get right, written once.
//!
//! - [`KafkaConfig`]: brokers and (for MSK) SASL/SCRAM over TLS, read by each service from its settings.
//! - [`producer::Producer`]: idempotent (`enable.idempotence=true`, `acks=all`), injects the current W3C
//!   trace context into the message headers.
//! - [`consumer`]: the at-least-once loop. The handler runs; the offset is stored only after it succeeded;
//!   a message that keeps failing goes to `<topic>.dlq` with the reason in a header instead of blocking its
//!   partition; shutdown commits the stored offsets. Exports `kafka_consumer_messages_total{topic, outcome}`,
//!   `kafka_consumer_lag_messages{topic, partition, group}`, `kafka_consumer_lag_seconds{topic, group}` and
//!   `kafka_dlq_messages_total{topic}`.
//! - [`outbox`]: the transactional outbox (`enqueue` inside a transaction) and its ordered relay.
//! - [`trace`]: W3C `traceparent`/`tracestate` in Kafka headers, both directions.

pub mod batch;
pub mod consumer;
pub mod outbox;
pub mod producer;
pub mod trace;

pub use batch::{BatchHandler, BatchOutcome, BatchSettings, Rejected, run_batch_consumer};
pub use consumer::{ConsumerSettings, Handler, HandlerError, Incoming, run_consumer};
pub use producer::Producer;

use rdkafka::ClientConfig;

/// Publish `kafka_producer_messages_total{topic, outcome}` at zero for `topics` and both outcomes (`ok`,
/// `error`), so error ratios read 0 rather than nothing before the first failure. Call once the metrics
/// recorder is installed, with the topics the service produces to.
pub fn describe_producer(topics: &[&str]) {
    for topic in topics {
        for outcome in ["ok", "error"] {
            metrics::counter!("kafka_producer_messages_total",
                "topic" => (*topic).to_owned(), "outcome" => outcome)
            .increment(0);
        }
    }
}

/// Publish a consumer's counters at zero for each of its topics: `kafka_consumer_messages_total{topic,
/// outcome}` (`ok`, `retry`, `dlq`) and `kafka_dlq_messages_total{topic}` (the DLQ alert uses
/// `increase()`, which would miss the first dead letter of a series that starts at 1). The consumer
/// loops call it when they subscribe.
pub fn describe_consumer(topics: &[&str]) {
    for topic in topics {
        for outcome in ["ok", "retry", "dlq"] {
            metrics::counter!("kafka_consumer_messages_total",
                "topic" => (*topic).to_owned(), "outcome" => outcome)
            .increment(0);
        }
        metrics::counter!("kafka_dlq_messages_total", "topic" => (*topic).to_owned()).increment(0);
    }
}

/// How to reach the cluster.
#[derive(Clone)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port]`.
    pub brokers: String,
    /// `plaintext` (local, tests) or `sasl_ssl` (MSK with SCRAM).
    pub security_protocol: String,
    /// SCRAM user name (MSK).
    pub sasl_username: Option<String>,
    /// SCRAM password (MSK); never logged.
    pub sasl_password: Option<String>,
    /// Client id, usually the service name.
    pub client_id: String,
}

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("security_protocol", &self.security_protocol)
            .field("sasl_username", &self.sasl_username)
            .field(
                "sasl_password",
                &self.sasl_password.as_ref().map(|_| "<redacted>"),
            )
            .field("client_id", &self.client_id)
            .finish()
    }
}

impl KafkaConfig {
    /// Plaintext access to `brokers`.
    pub fn plaintext(brokers: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            security_protocol: "plaintext".into(),
            sasl_username: None,
            sasl_password: None,
            client_id: client_id.into(),
        }
    }

    /// The librdkafka settings shared by producers and consumers.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", &self.client_id)
            .set("security.protocol", &self.security_protocol);
        // librdkafka's debug contexts (`cgrp,fetch,broker`), for diagnosing a client in place; consumers log
        // them at DEBUG under target `librdkafka` (`RUST_LOG=info,librdkafka=debug`).
        if let Ok(debug) = std::env::var("KAFKA_DEBUG")
            && !debug.is_empty()
        {
            config.set("debug", debug);
        }
        if self.security_protocol.starts_with("sasl") {
            config.set("sasl.mechanism", "SCRAM-SHA-512");
            if let Some(user) = &self.sasl_username {
                config.set("sasl.username", user);
            }
            if let Some(password) = &self.sasl_password {
                config.set("sasl.password", password);
            }
        }
        config
    }
}

impl KafkaConfig {
    /// The Kafka part of a service's common settings.
    pub fn from_settings(
        settings: &casino_observability::settings::CommonSettings,
        client_id: &str,
    ) -> Self {
        Self {
            brokers: settings.kafka_brokers.clone(),
            security_protocol: settings.kafka_security_protocol.clone(),
            sasl_username: settings.kafka_sasl_username.clone(),
            sasl_password: settings.kafka_sasl_password.clone(),
            client_id: client_id.to_owned(),
        }
    }
}

/// An optional health check: the cluster answers a metadata request. Kafka down makes a service
/// *degraded*, never unready (blueprint §6): restarting tasks would not bring Kafka back.
pub fn health_check(producer: &Producer) -> casino_observability::health::Check {
    let producer = producer.clone();
    casino_observability::health::Check::optional("kafka", move || {
        let producer = producer.clone();
        async move { producer.ping(std::time::Duration::from_secs(2)).await }
    })
    .timeout(std::time::Duration::from_secs(3))
    .cache_for(std::time::Duration::from_secs(5))
}
