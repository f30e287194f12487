//! Process-level tests: the fixture binary is a real process receiving real signals over real sockets.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use axum::{Router, body::Bytes, extract::State, routing::post};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use serde_json::Value;
use tokio::sync::mpsc as tmpsc;

struct Fixture {
    child: Child,
    lines: mpsc::Receiver<Value>,
    public: SocketAddr,
    admin: SocketAddr,
}

impl Fixture {
    fn start(envs: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_casino-observability-fixture"))
            .envs(envs.iter().copied())
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the fixture binary starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| panic!("a log line that is not JSON: {line}"));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        let listening = wait_for_line(&lines, "listening");
        let public = listening["public_addr"].as_str().unwrap().parse().unwrap();
        let admin = listening["admin_addr"].as_str().unwrap().parse().unwrap();
        Self {
            child,
            lines,
            public,
            admin,
        }
    }

    fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "the process did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for_line(lines: &mpsc::Receiver<Value>, message: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line["message"] == message => return line,
            Ok(_) => {}
            Err(_) => panic!("no log line {message:?} within 20 s"),
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_finishes_the_in_flight_request_refuses_new_connections_and_exits_0() {
    let mut fixture = Fixture::start(&[("FIXTURE_DRAIN_DELAY_MS", "1500")]);
    let http = client();
    let base = format!("http://{}", fixture.public);
    assert_eq!(
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // A slow request is in flight when the signal arrives.
    let slow = tokio::spawn({
        let http = http.clone();
        let url = format!("{base}/slow?ms=2500");
        async move { http.get(url).send().await }
    });
    wait_for_line(&fixture.lines, "slow request started");
    fixture.sigterm();
    wait_for_line(&fixture.lines, "readiness is now 503, draining");

    // During the drain delay the service still answers, but is not ready.
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "draining");

    // After the delay, new connections are refused (fresh client: no pooled connection).
    wait_for_line(
        &fixture.lines,
        "stopped accepting connections, finishing in-flight requests",
    );
    let refused = client().get(format!("{base}/livez")).send().await;
    assert!(
        refused.is_err(),
        "a new connection was accepted after the drain: {refused:?}"
    );

    // The in-flight request still completes with 200.
    let slow = slow
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(slow.status(), 200);
    assert_eq!(slow.text().await.unwrap(), "done");

    let status = fixture.wait(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_ignores_cancellation_makes_the_process_exit_1_at_the_deadline() {
    let mut fixture = Fixture::start(&[
        ("FIXTURE_STUBBORN_TASK", "1"),
        ("FIXTURE_SHUTDOWN_TIMEOUT_MS", "1000"),
    ]);
    let started = Instant::now();
    fixture.sigterm();
    let status = fixture.wait(Duration::from_secs(15));
    assert_eq!(status.code(), Some(1));
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "exited before the deadline"
    );
    wait_for_line(&fixture.lines, "shutdown deadline exceeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    let mut fixture = Fixture::start(&[("FIXTURE_DRAIN_DELAY_MS", "30000")]);
    fixture.sigterm();
    wait_for_line(&fixture.lines, "readiness is now 503, draining");
    let started = Instant::now();
    fixture.sigterm();
    let status = fixture.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(1));
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A minimal OTLP/HTTP receiver: decodes protobuf trace exports and forwards them to the test.
async fn otlp_receiver() -> (
    SocketAddr,
    tmpsc::UnboundedReceiver<ExportTraceServiceRequest>,
) {
    let (tx, rx) = tmpsc::unbounded_channel();
    let app = Router::new()
        .route(
            "/v1/traces",
            post(
                |State(tx): State<tmpsc::UnboundedSender<ExportTraceServiceRequest>>,
                 body: Bytes| async move {
                    let request =
                        ExportTraceServiceRequest::decode(body).expect("valid OTLP protobuf");
                    let _ = tx.send(request);
                    ""
                },
            ),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, rx)
}

fn attribute(
    attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue],
    key: &str,
) -> Option<String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            V::StringValue(s) => Some(s.clone()),
            V::IntValue(i) => Some(i.to_string()),
            _ => None,
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_receiver_with_the_service_name_and_the_route_template() {
    let (receiver, mut exports) = otlp_receiver().await;
    let endpoint = format!("http://{receiver}");
    let mut fixture = Fixture::start(&[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())]);
    let http = client();
    let response = http
        .get(format!("http://{}/api/v1/players/42", fixture.public))
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let log = wait_for_line(&fixture.lines, "player looked up");
    assert_eq!(
        log["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
        "the log line carries the caller's trace id"
    );
    // Shutdown flushes the batch exporter.
    fixture.sigterm();
    assert_eq!(fixture.wait(Duration::from_secs(15)).code(), Some(0));

    let mut spans = Vec::new();
    while let Ok(Some(export)) = tokio::time::timeout(Duration::from_secs(5), exports.recv()).await
    {
        for resource_spans in export.resource_spans {
            let resource = resource_spans.resource.unwrap_or_default();
            let service = attribute(&resource.attributes, "service.name");
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    spans.push((service.clone(), span));
                }
            }
        }
        if !spans.is_empty() {
            break;
        }
    }
    let (service, span) = spans
        .iter()
        .find(|(_, span)| span.name == "GET /api/v1/players/{id}")
        .unwrap_or_else(|| {
            panic!(
                "no server span for the request among {:?}",
                spans.iter().map(|(_, s)| &s.name).collect::<Vec<_>>()
            )
        });
    assert_eq!(service.as_deref(), Some("fixture"));
    assert_eq!(hex(&span.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(hex(&span.parent_span_id), "00f067aa0ba902b7");
    assert_eq!(
        attribute(&span.attributes, "http.route").as_deref(),
        Some("/api/v1/players/{id}")
    );
    assert_eq!(
        attribute(&span.attributes, "http.response.status_code").as_deref(),
        Some("200")
    );
    let _ = fixture.admin;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
