//! A trace started by the producer is continued by the consumer (W3C headers over real Kafka).
//! Its own test binary: it installs a global subscriber.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use casino_events::Envelope;
use casino_messaging::{
    ConsumerSettings, Handler, HandlerError, Incoming, KafkaConfig, run_consumer,
};
use casino_observability::{ServiceInfo, telemetry};
use casino_testkit::kafka::TestKafka;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::{propagation::TraceContextPropagator, trace::SdkTracerProvider};
use support::{eventually, producer};
use tokio_util::sync::CancellationToken;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

#[derive(Clone, Default)]
struct TraceRecorder(Arc<Mutex<Vec<(String, String)>>>);

impl Handler for TraceRecorder {
    async fn handle(&self, message: &Incoming) -> Result<(), HandlerError> {
        let cx = tracing::Span::current().context();
        let trace_id = cx.span().span_context().trace_id().to_string();
        let traceparent = message.header("traceparent").unwrap_or_default().to_owned();
        self.0.lock().unwrap().push((trace_id, traceparent));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_started_by_the_producer_is_continued_by_the_consumer() {
    let provider = SdkTracerProvider::builder().build();
    let info = ServiceInfo::new("trace-test", "trace_test", "0.0.0", "test");
    let subscriber = telemetry::subscriber(
        &info,
        std::io::sink,
        &provider,
        tracing_subscriber::EnvFilter::new("info"),
    );
    tracing::subscriber::set_global_default(subscriber).unwrap();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let topic = "trace.events.v1";
    let kafka = TestKafka::start(&[topic, "trace.events.v1.dlq"]).unwrap();
    let producer = producer(kafka.bootstrap_servers());

    let span = tracing::info_span!("place_bet");
    let expected = span.context().span().span_context().trace_id().to_string();
    {
        use tracing::Instrument as _;
        let event = Envelope::new("bet.placed", "vault", None, serde_json::json!({}));
        producer
            .send_envelope(topic, &event)
            .instrument(span)
            .await
            .unwrap();
    }

    let recorder = TraceRecorder::default();
    let stop = CancellationToken::new();
    let settings = ConsumerSettings::new(
        KafkaConfig::plaintext(kafka.bootstrap_servers(), "trace-consumer"),
        "trace-group",
        &[topic],
    );
    let task = tokio::spawn(run_consumer(
        settings,
        recorder.clone(),
        producer.clone(),
        stop.clone(),
    ));
    assert!(
        eventually(Duration::from_secs(30), || !recorder
            .0
            .lock()
            .unwrap()
            .is_empty())
        .await
    );
    stop.cancel();
    task.await.unwrap().unwrap();

    let (seen_trace, traceparent) = recorder.0.lock().unwrap()[0].clone();
    assert!(
        traceparent.starts_with(&format!("00-{expected}-")),
        "{traceparent}"
    );
    assert_eq!(
        seen_trace, expected,
        "the consumer span belongs to the producer's trace"
    );
    assert_ne!(expected, "00000000000000000000000000000000");
}
