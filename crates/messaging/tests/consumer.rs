//! The consumer loop against a real Kafka-protocol broker (librdkafka's mock cluster over TCP).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use casino_events::Envelope;
use casino_messaging::{
    ConsumerSettings, Handler, HandlerError, Incoming, KafkaConfig, consumer::DLQ_ERROR_HEADER,
    run_consumer,
};
use casino_testkit::kafka::TestKafka;
use serde_json::json;
use support::{eventually, producer, read};
use tokio_util::sync::CancellationToken;

// Each test has its own topic: metrics are process-wide and tests run concurrently.
const RESTART: (&str, &str) = ("restart.events.v1", "restart.events.v1.dlq");
const POISON: (&str, &str) = ("poison.events.v1", "poison.events.v1.dlq");
const ATTEMPTS: (&str, &str) = ("attempts.events.v1", "attempts.events.v1.dlq");

/// Records what it saw; fails (transiently) on payloads listed in `fail_on`, permanently on garbage.
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<String>>>,
    fail_on: Arc<Vec<String>>,
}

impl Recorder {
    fn failing_on(payloads: &[&str]) -> Self {
        Self {
            seen: Default::default(),
            fail_on: Arc::new(payloads.iter().map(|p| (*p).to_owned()).collect()),
        }
    }
    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Handler for Recorder {
    async fn handle(&self, message: &Incoming) -> Result<(), HandlerError> {
        let envelope = Envelope::from_slice(&message.payload)
            .map_err(|e| HandlerError::Permanent(e.into()))?;
        let name = envelope.data["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.seen.lock().unwrap().push(name.clone());
        if self.fail_on.contains(&name) {
            return Err(HandlerError::Transient(anyhow::anyhow!(
                "database unavailable (simulated)"
            )));
        }
        Ok(())
    }
}

fn settings(kafka: &TestKafka, group: &str, topic: &str) -> ConsumerSettings {
    let mut settings = ConsumerSettings::new(
        KafkaConfig::plaintext(kafka.bootstrap_servers(), "test-consumer"),
        group,
        &[topic],
    );
    settings.retry_backoff = Duration::from_millis(20);
    settings.max_backoff = Duration::from_millis(100);
    settings
}

fn event(name: &str) -> Envelope {
    // One fixed player: every event lands on the same partition, in order.
    let player = uuid::Uuid::from_u128(7);
    Envelope::new(
        "test.happened",
        "test",
        Some(player),
        json!({ "name": name }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_whose_handler_did_not_complete_is_delivered_again_after_a_restart() {
    let (topic, dlq) = RESTART;
    let kafka = TestKafka::start(&[topic, dlq]).unwrap();
    let producer = producer(kafka.bootstrap_servers());
    for name in ["first", "second"] {
        producer.send_envelope(topic, &event(name)).await.unwrap();
    }

    // First run: "second" keeps failing (never reaching the DLQ) when shutdown arrives.
    let mut first_settings = settings(&kafka, "restart-group", topic);
    first_settings.max_attempts = u32::MAX;
    let first = Recorder::failing_on(&["second"]);
    let stop = CancellationToken::new();
    let task = tokio::spawn(run_consumer(
        first_settings,
        first.clone(),
        producer.clone(),
        stop.clone(),
    ));
    assert!(
        eventually(Duration::from_secs(30), || first
            .seen()
            .iter()
            .filter(|n| *n == "second")
            .count()
            >= 2)
        .await,
        "the failing message was retried: {:?}",
        first.seen()
    );
    stop.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(first.seen()[0], "first");

    // Second run, same group: "second" comes back, "first" (finished) does not.
    let second = Recorder::default();
    let stop = CancellationToken::new();
    let task = tokio::spawn(run_consumer(
        settings(&kafka, "restart-group", topic),
        second.clone(),
        producer.clone(),
        stop.clone(),
    ));
    assert!(
        eventually(Duration::from_secs(30), || !second.seen().is_empty()).await,
        "nothing was redelivered"
    );
    // Give a wrongly uncommitted "first" time to show up too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(second.seen(), ["second"]);
    // Nothing went to the DLQ along the way.
    let probe = producer.send_envelope(dlq, &event("marker")).await.unwrap();
    assert_eq!(probe.offset, 0, "the DLQ was empty before the marker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_lands_in_the_dlq_with_the_reason_and_the_partition_keeps_flowing() {
    let metrics = casino_observability::metrics::install(&casino_observability::ServiceInfo::new(
        "messaging-test",
        "messaging_test",
        "0.0.0",
        "test",
    ));
    let (topic, dlq) = POISON;
    let kafka = TestKafka::start(&[topic, dlq]).unwrap();
    let producer = producer(kafka.bootstrap_servers());
    let key = uuid::Uuid::from_u128(7).to_string();
    producer
        .send(topic, &key, b"{ this is not an envelope", &[])
        .await
        .unwrap();
    producer
        .send_envelope(topic, &event("after-poison"))
        .await
        .unwrap();

    let recorder = Recorder::default();
    let stop = CancellationToken::new();
    let task = tokio::spawn(run_consumer(
        settings(&kafka, "poison-group", topic),
        recorder.clone(),
        producer.clone(),
        stop.clone(),
    ));
    assert!(
        eventually(Duration::from_secs(30), || recorder.seen()
            == ["after-poison"])
        .await,
        "the message after the poison one was processed: {:?}",
        recorder.seen()
    );
    stop.cancel();
    task.await.unwrap().unwrap();

    let dead = read(kafka.bootstrap_servers(), dlq, 1).await;
    assert_eq!(dead[0].payload, b"{ this is not an envelope");
    assert_eq!(dead[0].key.as_deref(), Some(key.as_bytes()));
    let reason = dead[0].header(DLQ_ERROR_HEADER).unwrap();
    assert!(reason.contains("malformed envelope"), "{reason}");
    assert_eq!(dead[0].header("x-dlq-original-topic"), Some(topic));
    assert_eq!(dead[0].header("x-dlq-attempts"), Some("1"));

    let text = casino_observability::metrics::render(&metrics);
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix) && l.contains(&format!("topic=\"{topic}\"")))
            .map(str::to_owned)
    };
    assert!(line("kafka_dlq_messages_total{").unwrap().ends_with(" 1"));
    let ok = text
        .lines()
        .find(|l| {
            l.starts_with("kafka_consumer_messages_total{")
                && l.contains(&format!("topic=\"{topic}\""))
                && l.contains("outcome=\"ok\"")
        })
        .unwrap();
    assert!(ok.ends_with(" 1"), "{ok}");
    assert!(line("kafka_consumer_lag_seconds{").is_some(), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_keeps_failing_goes_to_the_dlq_after_the_configured_attempts() {
    let (topic, dlq) = ATTEMPTS;
    let kafka = TestKafka::start(&[topic, dlq]).unwrap();
    let producer = producer(kafka.bootstrap_servers());
    producer
        .send_envelope(topic, &event("flaky"))
        .await
        .unwrap();
    producer.send_envelope(topic, &event("fine")).await.unwrap();

    let mut settings = settings(&kafka, "attempts-group", topic);
    settings.max_attempts = 3;
    let recorder = Recorder::failing_on(&["flaky"]);
    let stop = CancellationToken::new();
    let task = tokio::spawn(run_consumer(
        settings,
        recorder.clone(),
        producer.clone(),
        stop.clone(),
    ));
    assert!(
        eventually(Duration::from_secs(30), || recorder
            .seen()
            .contains(&"fine".to_owned()))
        .await
    );
    stop.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(recorder.seen(), ["flaky", "flaky", "flaky", "fine"]);
    let dead = read(kafka.bootstrap_servers(), dlq, 1).await;
    assert_eq!(dead[0].header("x-dlq-attempts"), Some("3"));
    assert!(
        dead[0]
            .header(DLQ_ERROR_HEADER)
            .unwrap()
            .contains("database unavailable")
    );
}
