//! A consumer must resume by itself after the broker goes away and comes back (MSK broker restarts,
//! `casino fault kafka-down`): messages produced during and after the outage are all delivered.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use casino_events::Envelope;
use casino_messaging::{
    ConsumerSettings, Handler, HandlerError, Incoming, KafkaConfig, run_consumer,
};
use casino_testkit::kafka::TestKafka;
use serde_json::json;
use support::eventually;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Default)]
struct Names(Arc<Mutex<Vec<String>>>);

impl Handler for Names {
    async fn handle(&self, message: &Incoming) -> Result<(), HandlerError> {
        let envelope = Envelope::from_slice(&message.payload)
            .map_err(|e| HandlerError::Permanent(e.into()))?;
        self.0.lock().unwrap().push(
            envelope.data["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
        Ok(())
    }
}

fn event(name: &str) -> Envelope {
    Envelope::new(
        "test.happened",
        "test",
        Some(uuid::Uuid::from_u128(9)),
        json!({ "name": name }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_resumes_after_the_broker_was_down_and_misses_nothing() {
    let (topic, dlq) = ("outage.events.v1", "outage.events.v1.dlq");
    let kafka = TestKafka::start(&[topic, dlq]).unwrap();
    // Long enough a delivery timeout that the message sent during the outage waits for the broker.
    let producer = casino_messaging::Producer::new(
        &KafkaConfig::plaintext(kafka.bootstrap_servers(), "outage-producer"),
        Duration::from_secs(60),
    )
    .unwrap();
    let names = Names::default();
    let stop = CancellationToken::new();
    let settings = ConsumerSettings::new(
        KafkaConfig::plaintext(kafka.bootstrap_servers(), "outage-consumer"),
        "outage-group",
        &[topic],
    );
    let task = tokio::spawn(run_consumer(
        settings,
        names.clone(),
        producer.clone(),
        stop.clone(),
    ));
    producer
        .send_envelope(topic, &event("before"))
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(30), || names.0.lock().unwrap().len()
            == 1)
        .await,
        "the first message arrives"
    );

    kafka.broker_down().unwrap();
    let during = {
        let producer = producer.clone();
        tokio::spawn(async move { producer.send_envelope(topic, &event("during")).await })
    };
    tokio::time::sleep(Duration::from_secs(8)).await;
    kafka.broker_up().unwrap();
    during.await.unwrap().unwrap();
    producer
        .send_envelope(topic, &event("after"))
        .await
        .unwrap();

    assert!(
        eventually(Duration::from_secs(60), || names.0.lock().unwrap().len()
            >= 3)
        .await,
        "the consumer resumed after the outage: {:?}",
        names.0.lock().unwrap()
    );
    stop.cancel();
    task.await.unwrap().unwrap();
    // At least once: "before" may come again if its offset was not committed before the outage.
    let mut seen = names.0.lock().unwrap().clone();
    seen.dedup();
    assert_eq!(seen, ["before", "during", "after"]);
}
