//! The at-least-once consumer loop.
//!
//! Offsets are committed automatically, but only offsets the loop has *stored*, and it stores a message's
//! offset only after the handler succeeded (or the message was safely written to the DLQ). A crash or
//! restart therefore redelivers whatever was not finished; handlers make that harmless by recording the
//! `event_id` in their own transaction. Messages of one partition are handled one at a time, in order.

use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use rdkafka::{
    ClientContext, Message as _,
    consumer::{CommitMode, Consumer as _, ConsumerContext, StreamConsumer},
    error::KafkaError,
    message::{Header, OwnedHeaders},
    statistics::Statistics,
    types::RDKafkaErrorCode,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::{KafkaConfig, producer::Producer, trace};

/// Header naming why a message was dead-lettered.
pub const DLQ_ERROR_HEADER: &str = "x-dlq-error";
/// Header with the topic the message came from.
pub const DLQ_TOPIC_HEADER: &str = "x-dlq-original-topic";
/// Header with the partition the message came from.
pub const DLQ_PARTITION_HEADER: &str = "x-dlq-original-partition";
/// Header with the offset the message had.
pub const DLQ_OFFSET_HEADER: &str = "x-dlq-original-offset";
/// Header with how many times the handler was tried.
pub const DLQ_ATTEMPTS_HEADER: &str = "x-dlq-attempts";

/// A message as the handler sees it (owned, so the handler may hold it across awaits).
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// Key bytes (the player id for our topics).
    pub key: Option<Vec<u8>>,
    /// Payload bytes (an envelope's JSON for our topics).
    pub payload: Vec<u8>,
    /// Headers whose values are UTF-8.
    pub headers: Vec<(String, String)>,
    /// Broker or producer timestamp in milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
}

impl Incoming {
    /// A header's value.
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a handler did not finish.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The message can never be processed (malformed, unknown schema, impossible values): DLQ at once.
    #[error("permanent: {0:#}")]
    Permanent(anyhow::Error),
    /// Something may work on retry (database unavailable, a deadlock): retried with backoff, then DLQ.
    #[error("transient: {0:#}")]
    Transient(anyhow::Error),
}

/// What a consumer does with each message.
pub trait Handler: Send + Sync + 'static {
    /// Process one message. Must be idempotent: the same message can arrive more than once.
    fn handle(&self, message: &Incoming) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// How a consumer runs.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// Cluster access.
    pub kafka: KafkaConfig,
    /// Consumer group.
    pub group_id: String,
    /// Topics to subscribe to.
    pub topics: Vec<String>,
    /// Handler attempts before a transiently failing message goes to the DLQ.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt up to `max_backoff`.
    pub retry_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Extra librdkafka settings (for example `auto.offset.reset=latest` for live-only consumers).
    pub overrides: Vec<(String, String)>,
}

impl ConsumerSettings {
    /// Settings with the defaults: 5 attempts, 100 ms backoff doubling up to 5 s, from the earliest offset.
    pub fn new(kafka: KafkaConfig, group_id: impl Into<String>, topics: &[&str]) -> Self {
        Self {
            kafka,
            group_id: group_id.into(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            max_attempts: 5,
            retry_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            overrides: Vec::new(),
        }
    }

    /// Set a librdkafka option.
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.overrides.push((key.to_owned(), value.to_owned()));
        self
    }
}

/// librdkafka's own lines (broker down, group rebalances, delivery failures, and the `KAFKA_DEBUG` contexts)
/// as tracing events under target `librdkafka`, so they reach the JSON log (rdkafka's default goes to the
/// `log` crate, which the services do not route). `client` is the consumer group, or `producer`.
pub(crate) fn log_librdkafka_line(
    client: &str,
    level: rdkafka::config::RDKafkaLogLevel,
    fac: &str,
    log_message: &str,
) {
    use rdkafka::config::RDKafkaLogLevel as L;
    match level {
        L::Emerg | L::Alert | L::Critical | L::Error => {
            tracing::error!(target: "librdkafka", client, facility = fac, "{log_message}")
        }
        L::Warning => {
            tracing::warn!(target: "librdkafka", client, facility = fac, "{log_message}")
        }
        L::Notice | L::Info => {
            tracing::info!(target: "librdkafka", client, facility = fac, "{log_message}")
        }
        L::Debug => {
            tracing::debug!(target: "librdkafka", client, facility = fac, "{log_message}")
        }
    }
}

/// Log and count an error the consumer returned instead of a message (the loops retry after a pause).
pub(crate) fn consumer_error(group: &str, error: &rdkafka::error::KafkaError) {
    tracing::warn!(group = %group, error = %error, "kafka consumer error");
    metrics::counter!("kafka_consumer_errors_total").increment(1);
}

impl Incoming {
    /// Copy what the handler needs out of a message borrowed from the consumer.
    pub(crate) fn from_message(message: &rdkafka::message::BorrowedMessage<'_>) -> Self {
        Self {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            headers: crate::trace::header_pairs(message.headers()),
            timestamp_ms: message.timestamp().to_millis(),
        }
    }
}

/// Publishes consumer lag from librdkafka's statistics, labelled by consumer group (Room-Service runs two
/// groups on the same topics).
pub(crate) struct LagContext {
    pub(crate) group: String,
}

impl ClientContext for LagContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_librdkafka_line(&self.group, level, fac, log_message);
    }

    fn stats(&self, statistics: Statistics) {
        for (topic, stats) in statistics.topics {
            let mut total = 0;
            let mut known = false;
            for (partition, p) in stats.partitions {
                // Partition -1 is librdkafka's internal "unassigned" queue; lag -1 means unknown.
                if partition < 0 || p.consumer_lag < 0 {
                    continue;
                }
                known = true;
                total += p.consumer_lag;
                metrics::gauge!("kafka_consumer_lag_messages",
                    "topic" => topic.clone(), "partition" => partition.to_string(), "group" => self.group.clone())
                .set(p.consumer_lag as f64);
            }
            if known && total == 0 {
                metrics::gauge!("kafka_consumer_lag_seconds", "topic" => topic.clone(), "group" => self.group.clone())
                    .set(0.0);
            }
        }
    }
}

impl ConsumerContext for LagContext {}

pub(crate) enum Flow {
    /// Offset may be stored.
    Done,
    /// Shutdown interrupted the message: leave its offset so it is redelivered.
    Stopped,
}

/// A consumer of `settings.topics` in `settings.group_id`, subscribed, with offsets stored only for finished
/// messages and committed every second (the batch consumer uses the same set-up), and its counters at zero.
pub(crate) fn subscribe(settings: &ConsumerSettings) -> anyhow::Result<StreamConsumer<LagContext>> {
    let mut config = settings.kafka.client_config();
    config
        .set("group.id", &settings.group_id)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("statistics.interval.ms", "5000")
        .set("session.timeout.ms", "10000");
    for (key, value) in &settings.overrides {
        config.set(key, value);
    }
    let consumer: StreamConsumer<LagContext> = config
        .create_with_context(LagContext {
            group: settings.group_id.clone(),
        })
        .context("creating the Kafka consumer")?;
    let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .with_context(|| format!("subscribing to {topics:?}"))?;
    crate::describe_consumer(&topics);
    Ok(consumer)
}

/// Commit the stored offsets on the way out (nothing stored is not an error).
pub(crate) fn commit_final(consumer: &StreamConsumer<LagContext>, group: &str) {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => {}
        Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(error) => tracing::warn!(group = %group, error = %error, "final offset commit failed"),
    }
}

/// Consume until `stop` is cancelled, then commit the stored offsets and return.
pub async fn run_consumer<H: Handler>(
    settings: ConsumerSettings,
    handler: H,
    dlq: Producer,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let consumer = subscribe(&settings)?;
    let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
    tracing::info!(group = %settings.group_id, topics = ?topics, "consumer started");

    loop {
        let message = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            message = consumer.recv() => message,
        };
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                consumer_error(&settings.group_id, &error);
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let incoming = Incoming::from_message(&message);
        drop(message);
        match process(&incoming, &handler, &settings, &dlq, &stop).await {
            Flow::Done => {
                if let Some(ts) = incoming.timestamp_ms {
                    let lag = (Utc::now().timestamp_millis() - ts).max(0) as f64 / 1000.0;
                    metrics::gauge!("kafka_consumer_lag_seconds",
                        "topic" => incoming.topic.clone(), "group" => settings.group_id.clone())
                    .set(lag);
                }
                // librdkafka's offset store commits `offset + 1`, the next message to read.
                if let Err(error) =
                    consumer.store_offset(&incoming.topic, incoming.partition, incoming.offset)
                {
                    // Happens after a rebalance took the partition away; the new owner redelivers.
                    tracing::warn!(topic = %incoming.topic, partition = incoming.partition,
                        offset = incoming.offset, error = %error, "could not store offset");
                }
            }
            Flow::Stopped => break,
        }
    }

    commit_final(&consumer, &settings.group_id);
    tracing::info!(group = %settings.group_id, "consumer stopped, offsets committed");
    Ok(())
}

async fn process<H: Handler>(
    incoming: &Incoming,
    handler: &H,
    settings: &ConsumerSettings,
    dlq: &Producer,
    stop: &CancellationToken,
) -> Flow {
    let span = tracing::info_span!(
        "kafka.process",
        otel.name = %format!("{} process", incoming.topic),
        otel.kind = "consumer",
        messaging.system = "kafka",
        messaging.operation.type = "process",
        messaging.destination.name = %incoming.topic,
        messaging.destination.partition.id = incoming.partition,
        messaging.kafka.offset = incoming.offset,
        messaging.consumer.group.name = %settings.group_id,
    );
    let _ = span.set_parent(trace::context_from_pairs(&incoming.headers));
    let topic = incoming.topic.clone();
    let mut attempt = 0;
    let mut backoff = settings.retry_backoff;
    loop {
        attempt += 1;
        let error = match handler.handle(incoming).instrument(span.clone()).await {
            Ok(()) => {
                metrics::counter!("kafka_consumer_messages_total", "topic" => topic, "outcome" => "ok")
                    .increment(1);
                return Flow::Done;
            }
            Err(error) => error,
        };
        let permanent = matches!(error, HandlerError::Permanent(_));
        if permanent || attempt >= settings.max_attempts {
            return dead_letter(
                incoming,
                &error.to_string(),
                attempt,
                dlq,
                settings,
                stop,
                &span,
            )
            .await;
        }
        metrics::counter!("kafka_consumer_messages_total", "topic" => topic.clone(), "outcome" => "retry")
            .increment(1);
        span.in_scope(|| {
            tracing::warn!(topic = %incoming.topic, partition = incoming.partition,
                offset = incoming.offset, attempt, error = %error, "handler failed, retrying")
        });
        tokio::select! {
            _ = stop.cancelled() => return Flow::Stopped,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(settings.max_backoff);
    }
}

pub(crate) async fn dead_letter(
    incoming: &Incoming,
    reason: &str,
    attempts: u32,
    dlq: &Producer,
    settings: &ConsumerSettings,
    stop: &CancellationToken,
    span: &tracing::Span,
) -> Flow {
    let dlq_topic = casino_events::topics::dlq(&incoming.topic);
    let mut headers = OwnedHeaders::new();
    for (key, value) in &incoming.headers {
        headers = headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        });
    }
    let partition = incoming.partition.to_string();
    let offset = incoming.offset.to_string();
    let attempts_text = attempts.to_string();
    for (key, value) in [
        (DLQ_ERROR_HEADER, reason),
        (DLQ_TOPIC_HEADER, incoming.topic.as_str()),
        (DLQ_PARTITION_HEADER, partition.as_str()),
        (DLQ_OFFSET_HEADER, offset.as_str()),
        (DLQ_ATTEMPTS_HEADER, attempts_text.as_str()),
    ] {
        headers = headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        });
    }
    let key = incoming.key.clone().unwrap_or_default();
    let mut backoff = settings.retry_backoff;
    loop {
        // Never drop the message: if the DLQ itself is unreachable, keep trying (the partition waits).
        match dlq
            .send_with_headers(&dlq_topic, &key, &incoming.payload, headers.clone())
            .await
        {
            Ok(_) => {
                metrics::counter!("kafka_consumer_messages_total",
                    "topic" => incoming.topic.clone(), "outcome" => "dlq")
                .increment(1);
                metrics::counter!("kafka_dlq_messages_total", "topic" => incoming.topic.clone())
                    .increment(1);
                span.in_scope(|| {
                    tracing::error!(topic = %incoming.topic, partition = incoming.partition,
                        offset = incoming.offset, attempts, reason, dlq_topic = %dlq_topic,
                        "message sent to the dead-letter topic")
                });
                return Flow::Done;
            }
            Err(error) => {
                tracing::error!(dlq_topic = %dlq_topic, error = %error, "could not publish to the dead-letter topic, retrying");
                tokio::select! {
                    _ = stop.cancelled() => return Flow::Stopped,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(settings.max_backoff);
            }
        }
    }
}
