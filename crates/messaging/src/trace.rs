//! W3C trace context in Kafka headers.
//!
//! Uses the process's global text-map propagator (set by `casino_observability::init_telemetry` to W3C
//! TraceContext), so one trace follows a bet from the Vault request through Concierge to Room-Service.

use opentelemetry::propagation::{Extractor, Injector};
use rdkafka::message::{BorrowedHeaders, Header, Headers as _, OwnedHeaders};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The current span's trace context as header pairs (`traceparent`, `tracestate`); empty outside a trace.
pub fn current_context_headers() -> Vec<(String, String)> {
    let cx = tracing::Span::current().context();
    let mut pairs = Vec::new();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&cx, &mut PairInjector(&mut pairs));
    });
    pairs
}

/// Append `pairs` to Kafka headers.
pub fn to_kafka_headers(pairs: &[(String, String)], mut headers: OwnedHeaders) -> OwnedHeaders {
    for (key, value) in pairs {
        headers = headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        });
    }
    headers
}

/// The trace context carried by a message's headers (an empty context when there is none).
pub fn context_from_headers(headers: Option<&BorrowedHeaders>) -> opentelemetry::Context {
    context_from_pairs(&header_pairs(headers))
}

/// A message's headers as (key, value) pairs; headers without a value or not UTF-8 are left out.
pub(crate) fn header_pairs(headers: Option<&BorrowedHeaders>) -> Vec<(String, String)> {
    headers
        .map(|headers| {
            headers
                .iter()
                .filter_map(|h| {
                    Some((h.key.to_owned(), String::from_utf8(h.value?.to_vec()).ok()?))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The trace context carried by header pairs.
pub fn context_from_pairs(pairs: &[(String, String)]) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&PairExtractor(pairs))
    })
}

/// Make `span` a child of the trace carried by a message's header pairs (no-op without a trace context):
/// how a batch consumer gives each event its own place in the trace that produced it.
pub fn set_parent_from_pairs(span: &tracing::Span, pairs: &[(String, String)]) {
    let _ = span.set_parent(context_from_pairs(pairs));
}

struct PairInjector<'a>(&'a mut Vec<(String, String)>);

impl Injector for PairInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_owned(), value));
    }
}

struct PairExtractor<'a>(&'a [(String, String)]);

impl Extractor for PairExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }
}
