//! The at-least-once consumer loop, in batches.
//!
//! Same guarantees as [`crate::consumer::run_consumer`], for handlers that do their database work once per
//! batch instead of once per message (one transaction for hundreds of events):
//!
//! - messages are collected until `max_batch` are in hand or `max_wait` passed since the first one; a
//!   batch may hold messages of several partitions and topics, each partition's messages in their order;
//! - the handler processes the batch as a whole and names the messages it refuses for good
//!   ([`BatchOutcome::rejected`]); those go to `<topic>.dlq` with the reason;
//! - offsets (the last of each partition in the batch) are stored only after the handler succeeded and every
//!   rejected message was written to the DLQ; the loop commits stored offsets when `stop` is cancelled;
//! - a batch that keeps failing (`Transient` up to `max_attempts`, or `Permanent` at once) is split and its
//!   messages are retried one by one, in order, so a single bad message goes to the DLQ alone and never
//!   blocks its partition.
//!
//! Metrics are those of the single-message loop: `kafka_consumer_messages_total{topic, outcome}`,
//! `kafka_dlq_messages_total{topic}`, `kafka_consumer_lag_messages{topic, partition, group}` and
//! `kafka_consumer_lag_seconds{topic, group}`.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use opentelemetry::trace::TraceContextExt as _;
use rdkafka::consumer::Consumer as _;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::consumer::{
    ConsumerSettings, Flow, HandlerError, Incoming, consumer_error, dead_letter,
};
use crate::{producer::Producer, trace};

/// Most messages of a batch whose trace contexts are linked from the batch span.
const MAX_SPAN_LINKS: usize = 32;

/// How a batching consumer runs.
#[derive(Debug, Clone)]
pub struct BatchSettings {
    /// Cluster, group, topics, retry policy and librdkafka overrides (as for the single-message loop).
    pub consumer: ConsumerSettings,
    /// Most messages handed to the handler at once.
    pub max_batch: usize,
    /// Longest wait for more messages once the first one of a batch arrived.
    pub max_wait: Duration,
}

impl BatchSettings {
    /// Batches of up to 500 messages, collected for at most 10 ms.
    pub fn new(consumer: ConsumerSettings) -> Self {
        Self {
            consumer,
            max_batch: 500,
            max_wait: Duration::from_millis(10),
        }
    }
}

/// A message the handler refuses for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Its index in the batch.
    pub index: usize,
    /// Why (goes into the DLQ's `x-dlq-error` header).
    pub reason: String,
}

/// What a handler did with a batch it finished.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Messages that can never be processed: each goes to its topic's DLQ; the rest of the batch is done.
    pub rejected: Vec<Rejected>,
}

/// What a batching consumer does with each batch.
pub trait BatchHandler: Send + Sync + 'static {
    /// Process `batch` as a whole (for example in one database transaction), keeping each partition's
    /// order. `Ok` means every message not listed in [`BatchOutcome::rejected`] is done. Must be
    /// idempotent: a batch, or any message of it, can arrive again after a failure or restart.
    fn handle_batch(
        &self,
        batch: &[Incoming],
    ) -> impl Future<Output = Result<BatchOutcome, HandlerError>> + Send;
}

enum Attempt {
    Done(BatchOutcome),
    Failed(HandlerError, u32),
    Stopped,
}

/// Consume in batches until `stop` is cancelled, then commit the stored offsets and return.
pub async fn run_batch_consumer<H: BatchHandler>(
    settings: BatchSettings,
    handler: H,
    dlq: Producer,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let max_batch = settings.max_batch.max(1);
    let common = &settings.consumer;
    let consumer = crate::consumer::subscribe(common)?;
    let topics: Vec<&str> = common.topics.iter().map(String::as_str).collect();
    tracing::info!(group = %common.group_id, topics = ?topics, max_batch, "batch consumer started");

    let mut batch: Vec<Incoming> = Vec::with_capacity(max_batch);
    'outer: loop {
        batch.clear();
        let first = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            message = consumer.recv() => message,
        };
        match first {
            Ok(message) => batch.push(Incoming::from_message(&message)),
            Err(error) => {
                consumer_error(&common.group_id, &error);
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        }
        let deadline = tokio::time::Instant::now() + settings.max_wait;
        while batch.len() < max_batch {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(Ok(message)) => batch.push(Incoming::from_message(&message)),
                Ok(Err(error)) => {
                    consumer_error(&common.group_id, &error);
                    break;
                }
                Err(_) => break,
            }
        }

        let span = batch_span(&batch, &common.group_id);
        match process_batch(&batch, &handler, common, &dlq, &stop, &span).await {
            Flow::Done => {}
            Flow::Stopped => break 'outer,
        }
        // librdkafka's offset store commits `offset + 1`, the next message to read.
        let mut last: BTreeMap<(&str, i32), (i64, Option<i64>)> = BTreeMap::new();
        for message in &batch {
            last.insert(
                (message.topic.as_str(), message.partition),
                (message.offset, message.timestamp_ms),
            );
        }
        let now = Utc::now().timestamp_millis();
        let mut newest: BTreeMap<&str, i64> = BTreeMap::new();
        for ((topic, partition), (offset, timestamp)) in &last {
            if let Some(ts) = timestamp {
                let entry = newest.entry(topic).or_insert(*ts);
                *entry = (*entry).max(*ts);
            }
            if let Err(error) = consumer.store_offset(topic, *partition, *offset) {
                // Happens after a rebalance took the partition away; the new owner redelivers.
                tracing::warn!(topic = %topic, partition, offset, error = %error, "could not store offset");
            }
        }
        for (topic, ts) in newest {
            let lag = (now - ts).max(0) as f64 / 1000.0;
            metrics::gauge!("kafka_consumer_lag_seconds",
                "topic" => topic.to_owned(), "group" => common.group_id.clone())
            .set(lag);
        }
    }

    crate::consumer::commit_final(&consumer, &common.group_id);
    tracing::info!(group = %common.group_id, "batch consumer stopped, offsets committed");
    Ok(())
}

/// One span per batch. A batch of one continues its message's trace; a larger batch links (some of) the
/// traces of its messages, as the OpenTelemetry messaging conventions do for batch processing.
fn batch_span(batch: &[Incoming], group: &str) -> tracing::Span {
    let topic = batch.first().map(|m| m.topic.as_str()).unwrap_or_default();
    let span = tracing::info_span!(
        "kafka.process_batch",
        otel.name = %format!("{topic} process"),
        otel.kind = "consumer",
        messaging.system = "kafka",
        messaging.operation.type = "process",
        messaging.destination.name = %topic,
        messaging.batch.message_count = batch.len(),
        messaging.consumer.group.name = %group,
    );
    if let [only] = batch {
        let _ = span.set_parent(trace::context_from_pairs(&only.headers));
    } else {
        for message in batch.iter().take(MAX_SPAN_LINKS) {
            let cx = trace::context_from_pairs(&message.headers);
            let context = cx.span().span_context().clone();
            if context.is_valid() {
                span.add_link(context);
            }
        }
    }
    span
}

async fn process_batch<H: BatchHandler>(
    batch: &[Incoming],
    handler: &H,
    settings: &ConsumerSettings,
    dlq: &Producer,
    stop: &CancellationToken,
    span: &tracing::Span,
) -> Flow {
    let error = match attempt(batch, handler, settings, stop, span).await {
        Attempt::Stopped => return Flow::Stopped,
        Attempt::Done(outcome) => return finish(batch, outcome, dlq, settings, stop, span).await,
        Attempt::Failed(error, attempts) => {
            if let [message] = batch {
                return dead_letter(
                    message,
                    &error.to_string(),
                    attempts,
                    dlq,
                    settings,
                    stop,
                    span,
                )
                .await;
            }
            error
        }
    };
    span.in_scope(|| {
        tracing::warn!(batch_size = batch.len(), error = %error,
            "batch keeps failing, retrying its messages one by one")
    });
    for message in batch {
        let single = std::slice::from_ref(message);
        let span = batch_span(single, &settings.group_id);
        let flow = match attempt(single, handler, settings, stop, &span).await {
            Attempt::Stopped => Flow::Stopped,
            Attempt::Done(outcome) => finish(single, outcome, dlq, settings, stop, &span).await,
            Attempt::Failed(error, attempts) => {
                dead_letter(
                    message,
                    &error.to_string(),
                    attempts,
                    dlq,
                    settings,
                    stop,
                    &span,
                )
                .await
            }
        };
        if let Flow::Stopped = flow {
            return Flow::Stopped;
        }
    }
    Flow::Done
}

/// Dead-letter the messages the handler rejected and count the rest as done.
async fn finish(
    batch: &[Incoming],
    outcome: BatchOutcome,
    dlq: &Producer,
    settings: &ConsumerSettings,
    stop: &CancellationToken,
    span: &tracing::Span,
) -> Flow {
    let mut rejected = vec![false; batch.len()];
    for Rejected { index, reason } in &outcome.rejected {
        let Some(message) = batch.get(*index) else {
            continue;
        };
        rejected[*index] = true;
        if let Flow::Stopped = dead_letter(message, reason, 1, dlq, settings, stop, span).await {
            return Flow::Stopped;
        }
    }
    count_ok(batch, &rejected);
    Flow::Done
}

/// Run the handler with retries: `Transient` errors up to `max_attempts` with backoff, `Permanent` never.
async fn attempt<H: BatchHandler>(
    batch: &[Incoming],
    handler: &H,
    settings: &ConsumerSettings,
    stop: &CancellationToken,
    span: &tracing::Span,
) -> Attempt {
    let mut attempts = 0;
    let mut backoff = settings.retry_backoff;
    loop {
        attempts += 1;
        let error = match handler.handle_batch(batch).instrument(span.clone()).await {
            Ok(outcome) => return Attempt::Done(outcome),
            Err(error) => error,
        };
        if matches!(error, HandlerError::Permanent(_)) || attempts >= settings.max_attempts {
            return Attempt::Failed(error, attempts);
        }
        count_per_topic(batch, "retry");
        span.in_scope(|| {
            tracing::warn!(batch_size = batch.len(), attempt = attempts, error = %error,
                "batch handler failed, retrying")
        });
        tokio::select! {
            _ = stop.cancelled() => return Attempt::Stopped,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(settings.max_backoff);
    }
}

fn count_ok(batch: &[Incoming], rejected: &[bool]) {
    let mut per_topic: BTreeMap<&str, u64> = BTreeMap::new();
    for (message, rejected) in batch.iter().zip(rejected) {
        if !rejected {
            *per_topic.entry(message.topic.as_str()).or_default() += 1;
        }
    }
    for (topic, count) in per_topic {
        metrics::counter!("kafka_consumer_messages_total", "topic" => topic.to_owned(), "outcome" => "ok")
            .increment(count);
    }
}

fn count_per_topic(batch: &[Incoming], outcome: &'static str) {
    let mut per_topic: BTreeMap<&str, u64> = BTreeMap::new();
    for message in batch {
        *per_topic.entry(message.topic.as_str()).or_default() += 1;
    }
    for (topic, count) in per_topic {
        metrics::counter!("kafka_consumer_messages_total", "topic" => topic.to_owned(), "outcome" => outcome)
            .increment(count);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use casino_testkit::kafka::TestKafka;
    use rdkafka::{
        Message as _, Offset, TopicPartitionList,
        consumer::{BaseConsumer, Consumer as _},
        message::Headers as _,
    };

    use super::*;
    use crate::KafkaConfig;

    /// Fails (transiently) every batch that contains `poison`; records the batches that succeeded.
    #[derive(Clone, Default)]
    struct Picky {
        done: Arc<Mutex<Vec<Vec<String>>>>,
        calls: Arc<Mutex<usize>>,
    }

    impl BatchHandler for Picky {
        async fn handle_batch(&self, batch: &[Incoming]) -> Result<BatchOutcome, HandlerError> {
            *self.calls.lock().unwrap() += 1;
            let payloads: Vec<String> = batch
                .iter()
                .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
                .collect();
            if payloads.iter().any(|p| p == "poison") {
                return Err(HandlerError::Transient(anyhow::anyhow!(
                    "poison in the batch"
                )));
            }
            let rejected = payloads
                .iter()
                .enumerate()
                .filter(|(_, p)| p.as_str() == "garbage")
                .map(|(index, _)| Rejected {
                    index,
                    reason: "not an event".into(),
                })
                .collect();
            self.done.lock().unwrap().push(payloads);
            Ok(BatchOutcome { rejected })
        }
    }

    fn read_all(brokers: &str, topic: &str) -> Vec<(String, Option<String>)> {
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", "reader")
            .create()
            .unwrap();
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, 0, Offset::Beginning)
            .unwrap();
        consumer.assign(&assignment).unwrap();
        let mut out = Vec::new();
        while let Some(message) = consumer.poll(Duration::from_millis(1500)) {
            let message = message.unwrap();
            let reason = message.headers().and_then(|h| {
                h.iter()
                    .find(|h| h.key == crate::consumer::DLQ_ERROR_HEADER)
                    .and_then(|h| h.value.map(|v| String::from_utf8_lossy(v).into_owned()))
            });
            out.push((
                String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned(),
                reason,
            ));
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_batch_is_split_so_only_its_bad_message_reaches_the_dlq_in_order() {
        let kafka = TestKafka::start(&[]).unwrap();
        kafka.create_topic("batch.events.v1", 1).unwrap();
        kafka.create_topic("batch.events.v1.dlq", 1).unwrap();
        let brokers = kafka.bootstrap_servers().to_owned();
        let producer = Producer::new(
            &KafkaConfig::plaintext(&brokers, "batch-test"),
            Duration::from_secs(10),
        )
        .unwrap();
        for payload in ["a", "b", "poison", "c", "garbage", "d"] {
            producer
                .send("batch.events.v1", "k", payload.as_bytes(), &[])
                .await
                .unwrap();
        }
        let mut consumer = ConsumerSettings::new(
            KafkaConfig::plaintext(&brokers, "batch-test"),
            "batch-test",
            &["batch.events.v1"],
        );
        consumer.retry_backoff = Duration::from_millis(10);
        consumer.max_backoff = Duration::from_millis(20);
        consumer.max_attempts = 3;
        let settings = BatchSettings {
            consumer,
            max_batch: 100,
            max_wait: Duration::from_millis(200),
        };
        let handler = Picky::default();
        let stop = CancellationToken::new();
        let running = tokio::spawn(run_batch_consumer(
            settings,
            handler.clone(),
            producer.clone(),
            stop.clone(),
        ));
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let done: usize = handler.done.lock().unwrap().iter().map(Vec::len).sum();
            if done >= 5 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "only {done} messages done"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.cancel();
        running.await.unwrap().unwrap();

        // Everything but the poison was handled, in order, one by one after the batch kept failing.
        let done: Vec<String> = handler.done.lock().unwrap().concat();
        assert_eq!(done, ["a", "b", "c", "garbage", "d"]);
        let dead = read_all(&brokers, "batch.events.v1.dlq");
        assert_eq!(
            dead,
            [
                (
                    "poison".to_owned(),
                    Some("transient: poison in the batch".to_owned())
                ),
                ("garbage".to_owned(), Some("not an event".to_owned())),
            ]
        );
        // 3 attempts of the whole batch, then 6 singles (the poison 3 times).
        assert_eq!(*handler.calls.lock().unwrap(), 3 + 5 + 3);
    }
}
