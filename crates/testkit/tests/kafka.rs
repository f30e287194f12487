//! The embedded broker speaks the Kafka protocol over TCP and injects faults.

use std::time::Duration;

use casino_testkit::kafka::TestKafka;
use rdkafka::{
    ClientConfig, Message as _,
    consumer::{Consumer as _, StreamConsumer},
    producer::{FutureProducer, FutureRecord},
};

fn producer(kafka: &TestKafka, timeout_ms: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap_servers())
        .set("message.timeout.ms", timeout_ms)
        .create()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_round_trip_through_the_embedded_broker_over_tcp() {
    let kafka = TestKafka::start(&["roundtrip.v1"]).unwrap();
    assert!(kafka.bootstrap_servers().contains("127.0.0.1:") || !kafka.is_embedded());
    let producer = producer(&kafka, "10000");
    producer
        .send(
            FutureRecord::to("roundtrip.v1").key("k").payload("hello"),
            Duration::ZERO,
        )
        .await
        .unwrap();
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap_servers())
        .set("group.id", "roundtrip")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["roundtrip.v1"]).unwrap();
    let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(message.payload(), Some(&b"hello"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downed_broker_fails_sends_until_it_comes_back() {
    let kafka = TestKafka::start(&["faults.v1"]).unwrap();
    if !kafka.is_embedded() {
        assert!(
            kafka.broker_down().is_err(),
            "faults need the embedded broker"
        );
        return;
    }
    let producer = producer(&kafka, "1500");
    producer
        .send(
            FutureRecord::to("faults.v1").key("k").payload("before"),
            Duration::ZERO,
        )
        .await
        .unwrap();
    kafka.broker_down().unwrap();
    let failed = producer
        .send(
            FutureRecord::to("faults.v1").key("k").payload("during"),
            Duration::ZERO,
        )
        .await;
    assert!(failed.is_err(), "a send with the broker down times out");
    kafka.broker_up().unwrap();
    let producer = self::producer(&kafka, "10000");
    producer
        .send(
            FutureRecord::to("faults.v1").key("k").payload("after"),
            Duration::ZERO,
        )
        .await
        .unwrap();
}

#[test]
#[allow(unsafe_code)]
fn taking_the_broker_down_waits_for_a_child_between_fork_and_exec() {
    use casino_testkit::process::SafeSpawn as _;
    use std::os::unix::process::CommandExt as _;
    let kafka = TestKafka::start(&["child.test.v1"]).unwrap();
    // A child between fork and exec holds a copy of the broker's listening socket; were the broker taken
    // down then, it could not re-bind its port and librdkafka would abort this process. Stretch that window.
    let mut cmd = casino_testkit::process::command("true");
    // SAFETY: usleep is async-signal-safe and touches no shared memory.
    unsafe {
        cmd.pre_exec(|| {
            libc::usleep(300_000);
            Ok(())
        });
    }
    let spawner = std::thread::spawn(move || cmd.safe_status().unwrap());
    std::thread::sleep(Duration::from_millis(100));
    kafka.broker_down().unwrap();
    kafka.broker_up().unwrap();
    assert!(spawner.join().unwrap().success());
}
