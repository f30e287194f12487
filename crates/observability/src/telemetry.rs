//! JSON logs on stdout and OpenTelemetry traces.
//!
//! Every log line is one JSON object: `timestamp`, `level`, `service`, `version`, `env`, `message`,
//! `trace_id`, `span_id`, `target`, then the event's fields and the fields of the spans it happened in
//! (innermost wins). The trace ids come from the OpenTelemetry layer, which is always installed so logs and
//! Kafka headers carry trace context even when no exporter is configured; spans are exported over OTLP
//! (HTTP/protobuf) only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set.

use std::fmt;
use std::io;

use anyhow::Context as _;
use chrono::{SecondsFormat, Utc};
use opentelemetry::{KeyValue, trace::TracerProvider as _};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use serde_json::{Map, Value};
use tracing::{Event, Subscriber, field::Field};
use tracing_opentelemetry::OtelData;
use tracing_subscriber::{
    EnvFilter, Layer as _,
    fmt::{
        FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter, format::JsonFields,
        format::Writer,
    },
    layer::SubscriberExt,
    registry::LookupSpan,
};

use crate::ServiceInfo;

/// Flushes and shuts down trace export when dropped (or explicitly with [`TelemetryGuard::shutdown`]).
#[must_use = "dropping the guard shuts telemetry down"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl fmt::Debug for TelemetryGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelemetryGuard").finish_non_exhaustive()
    }
}

impl TelemetryGuard {
    /// Export every finished span still buffered and stop the exporter.
    pub fn shutdown(mut self) {
        self.flush_and_stop();
    }

    fn flush_and_stop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(error) = provider.force_flush() {
                eprintln!("telemetry: flushing spans failed: {error}");
            }
            if let Err(error) = provider.shutdown() {
                eprintln!("telemetry: shutting down the tracer provider failed: {error}");
            }
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        self.flush_and_stop();
    }
}

/// Whether the standard OpenTelemetry variables ask for trace export.
pub fn otlp_export_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|var| std::env::var(var).is_ok_and(|v| !v.trim().is_empty()))
}

/// The OpenTelemetry resource of `info`: `service.name` (unless `OTEL_SERVICE_NAME` overrides it),
/// `service.version`, `deployment.environment.name`, plus `OTEL_RESOURCE_ATTRIBUTES`.
pub fn resource(info: &ServiceInfo) -> Resource {
    let mut builder = Resource::builder().with_attributes([
        KeyValue::new("service.version", info.version),
        KeyValue::new("deployment.environment.name", info.env.clone()),
        KeyValue::new("vcs.ref.head.revision", info.git_sha),
    ]);
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        builder = builder.with_service_name(info.name);
    }
    builder.build()
}

/// Build the tracer provider: OTLP/HTTP batch export when configured, otherwise ids only.
pub fn tracer_provider(info: &ServiceInfo) -> anyhow::Result<SdkTracerProvider> {
    let builder = SdkTracerProvider::builder().with_resource(resource(info));
    let builder = if otlp_export_configured() {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .context("building the OTLP span exporter from OTEL_* settings")?;
        builder.with_batch_exporter(exporter)
    } else {
        builder
    };
    Ok(builder.build())
}

/// Initialise logging and tracing for the whole process. Call once, from `main`, before the runtime
/// starts serving. `RUST_LOG` sets the filter (default `info`).
pub fn init_telemetry(info: &ServiceInfo) -> anyhow::Result<TelemetryGuard> {
    let provider = tracer_provider(info)?;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new("info"))
        .context("parsing RUST_LOG")?;
    let subscriber = subscriber(info, io::stdout, &provider, filter);
    tracing::subscriber::set_global_default(subscriber)
        .context("a global tracing subscriber is already installed")?;
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    opentelemetry::global::set_tracer_provider(provider.clone());
    Ok(TelemetryGuard {
        provider: Some(provider),
    })
}

/// The subscriber [`init_telemetry`] installs, writing to `writer`; exposed so tests can capture output.
pub fn subscriber<W>(
    info: &ServiceInfo,
    writer: W,
    provider: &SdkTracerProvider,
    filter: EnvFilter,
) -> impl Subscriber + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let tracer = provider.tracer(info.name);
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_error_records_to_exceptions(true);
    let fmt = tracing_subscriber::fmt::layer()
        .fmt_fields(JsonFields::new())
        .event_format(JsonLogFormat::new(info))
        .with_writer(writer);
    tracing_subscriber::registry()
        .with(otel.with_filter(filter.clone()))
        .with(fmt.with_filter(filter))
}

/// The event formatter behind the JSON log lines.
#[derive(Debug, Clone)]
pub struct JsonLogFormat {
    service: &'static str,
    version: &'static str,
    env: String,
}

impl JsonLogFormat {
    /// A formatter stamping every line with `info`'s service, version and environment.
    pub fn new(info: &ServiceInfo) -> Self {
        Self {
            service: info.name,
            version: info.version,
            env: info.env.clone(),
        }
    }
}

impl<S, N> FormatEvent<S, N> for JsonLogFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = FieldVisitor::default();
        event.record(&mut fields);

        let mut span_fields = Map::new();
        let mut trace_id = None;
        let mut span_id = None;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(formatted) = extensions.get::<FormattedFields<N>>()
                    && let Ok(Value::Object(map)) = serde_json::from_str::<Value>(formatted)
                {
                    span_fields.extend(map);
                }
                if let Some(otel) = extensions.get::<OtelData>() {
                    if let Some(id) = otel.trace_id() {
                        trace_id = Some(id.to_string());
                    }
                    if let Some(id) = otel.span_id() {
                        span_id = Some(id.to_string());
                    }
                }
            }
        }

        let meta = event.metadata();
        let mut line: Vec<(&str, Value)> = vec![
            (
                "timestamp",
                Value::String(Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)),
            ),
            ("level", Value::String(meta.level().as_str().to_owned())),
            ("service", Value::String(self.service.to_owned())),
            ("version", Value::String(self.version.to_owned())),
            ("env", Value::String(self.env.clone())),
            (
                "message",
                fields.message.take().map(Value::String).unwrap_or_default(),
            ),
        ];
        if let Some(id) = trace_id {
            line.push(("trace_id", Value::String(id)));
        }
        if let Some(id) = span_id {
            line.push(("span_id", Value::String(id)));
        }
        line.push(("target", Value::String(meta.target().to_owned())));

        // Event fields win over span fields of the same name; reserved keys are never overwritten.
        for (key, value) in fields.fields.iter() {
            span_fields.insert(key.clone(), value.clone());
        }
        let mut out = String::with_capacity(256);
        out.push('{');
        let mut first = true;
        let mut push = |out: &mut String, key: &str, value: &Value| {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(&Value::String(key.to_owned()).to_string());
            out.push(':');
            out.push_str(&value.to_string());
        };
        for (key, value) in &line {
            push(&mut out, key, value);
        }
        for (key, value) in &span_fields {
            if !line.iter().any(|(reserved, _)| reserved == key) {
                push(&mut out, key, value);
            }
        }
        out.push('}');
        writeln!(writer, "{out}")
    }
}

#[derive(Default)]
struct FieldVisitor {
    message: Option<String>,
    fields: Map<String, Value>,
}

impl FieldVisitor {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else if !field.name().starts_with("otel.") {
            self.fields.insert(field.name().to_owned(), value);
        }
    }
}

impl tracing::field::Visit for FieldVisitor {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, serde_json::json!(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // Log the whole cause chain: "outer: inner: root".
        let mut chain = value.to_string();
        let mut source = value.source();
        while let Some(cause) = source {
            chain.push_str(": ");
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        self.put(field, Value::String(chain));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Capture {
        type Writer = Capture;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    impl Capture {
        fn lines(&self) -> Vec<Value> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(|line| serde_json::from_str(line).expect("every line is JSON"))
                .collect()
        }
    }

    fn info() -> ServiceInfo {
        ServiceInfo::new("vault", "vault", "1.2.3", "test")
    }

    #[test]
    fn a_log_line_inside_a_span_carries_that_spans_trace_and_span_id() {
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        let capture = Capture::default();
        let provider = SdkTracerProvider::builder().build();
        let subscriber = subscriber(&info(), capture.clone(), &provider, EnvFilter::new("debug"));
        let (expected_trace, expected_span) = tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("place_bet", round_id = "r-1");
            let _entered = span.enter();
            tracing::info!(player_id = "p-9", amount = 150, "bet accepted");
            let cx = span.context();
            let span_context = opentelemetry::trace::TraceContextExt::span(&cx)
                .span_context()
                .clone();
            (
                span_context.trace_id().to_string(),
                span_context.span_id().to_string(),
            )
        });
        let lines = capture.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        assert_eq!(line["message"], "bet accepted");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["service"], "vault");
        assert_eq!(line["version"], "1.2.3");
        assert_eq!(line["env"], "test");
        assert_eq!(line["player_id"], "p-9");
        assert_eq!(line["amount"], 150);
        assert_eq!(line["round_id"], "r-1", "span fields are included");
        assert_eq!(line["trace_id"], expected_trace.as_str());
        assert_eq!(line["span_id"], expected_span.as_str());
        assert_ne!(expected_trace, "00000000000000000000000000000000");
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn a_log_line_outside_any_span_has_no_trace_id_and_keeps_the_reserved_fields() {
        let capture = Capture::default();
        let provider = SdkTracerProvider::builder().build();
        let subscriber = subscriber(&info(), capture.clone(), &provider, EnvFilter::new("info"));
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!("filtered out by the level");
            tracing::warn!(service = "spoofed", "startup done");
        });
        let lines = capture.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["message"], "startup done");
        assert_eq!(
            lines[0]["service"], "vault",
            "reserved keys are never overwritten"
        );
        assert!(lines[0].get("trace_id").is_none());
    }

    #[test]
    fn errors_are_logged_with_their_cause_chain() {
        let capture = Capture::default();
        let provider = SdkTracerProvider::builder().build();
        let subscriber = subscriber(&info(), capture.clone(), &provider, EnvFilter::new("info"));
        let error = anyhow::anyhow!("connection refused").context("loading the wallet");
        tracing::subscriber::with_default(subscriber, || {
            let error: &(dyn std::error::Error + 'static) = error.as_ref();
            tracing::error!(error, "request failed");
        });
        assert_eq!(
            capture.lines()[0]["error"],
            "loading the wallet: connection refused"
        );
    }
}
