//! librdkafka's own lines (here: the producer failing to reach its broker) reach the service's JSON log
//! under target `librdkafka`. Its own test binary: it installs a global subscriber.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use casino_messaging::{KafkaConfig, Producer};
use casino_observability::{ServiceInfo, telemetry};
use opentelemetry_sdk::trace::SdkTracerProvider;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_that_cannot_reach_its_broker_says_so_in_the_json_log() {
    let captured = Captured::default();
    let writer = captured.clone();
    let provider = SdkTracerProvider::builder().build();
    let info = ServiceInfo::new("log-test", "log_test", "0.0.0", "test");
    let subscriber = telemetry::subscriber(
        &info,
        move || writer.clone(),
        &provider,
        tracing_subscriber::EnvFilter::new("info"),
    );
    tracing::subscriber::set_global_default(subscriber).unwrap();

    // A port nobody listens on: connection refused at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = closed.local_addr().unwrap();
    drop(closed);
    let producer = Producer::new(
        &KafkaConfig::plaintext(address.to_string(), "log-test"),
        Duration::from_secs(2),
    )
    .unwrap();
    let sent = producer.send("log.test.v1", "k", b"{}", &[]).await;
    assert!(sent.is_err(), "nothing listens on {address}");

    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let found = text
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|line| line["target"] == "librdkafka");
        if let Some(line) = found {
            break line;
        }
        assert!(
            Instant::now() < deadline,
            "no librdkafka line in the log:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(line["client"], "producer", "{line}");
    assert!(
        line["level"] == "ERROR" || line["level"] == "WARN" || line["level"] == "INFO",
        "{line}"
    );
}
