//! One tracing subscriber and one Prometheus recorder per process, and, when
//! an OTLP endpoint is configured, OpenTelemetry traces.
//!
//! `gatehouse dev` runs three services in one process, so the subscriber and
//! the recorder are global and installed at most once; every service renders
//! the same recorder on `/metrics`.
//!
//! # Traces
//!
//! With `OTEL_EXPORTER_OTLP_ENDPOINT` unset nothing of OpenTelemetry is
//! installed: no layer, no propagator, no thread, and [`otel_enabled`] is
//! false, so request code keeps its cheap path. With it set, one
//! `tracing-opentelemetry` layer turns `tracing` spans into OpenTelemetry
//! spans. Each service has a tracer provider of its own, and so its own
//! `service.name` (`gatehouse-gateway`, `gatehouse-auth`, `gatehouse-users`)
//! even when the three share a process: a root span names its service in
//! its OpenTelemetry context ([`continue_trace`], [`start_trace`]), its
//! descendants inherit that context, and the layer's tracer ([`ServiceTracer`])
//! hands each span to its service's provider. Spans no service owns (start-up
//! chores, the exporter's own work) are not recorded.

use std::ffi::OsStr;
use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::{SpanBuilder, TraceContextExt, TracerProvider as _};
use opentelemetry::Context;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::{fmt, prelude::*, registry::LookupSpan, EnvFilter, Layer, Registry};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// How traces are sent to the OTLP endpoint (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OtlpProtocol {
    /// gRPC (HTTP/2 without TLS), usually port 4317.
    Grpc,
    /// Protobuf over HTTP POST to `<endpoint>/v1/traces`, usually port 4318.
    #[value(name = "http/protobuf")]
    HttpProtobuf,
}

/// Where and how traces are exported, resolved from the shared settings.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpConfig {
    /// The collector's base URL (`OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub endpoint: String,
    pub protocol: OtlpProtocol,
    /// The share of new traces recorded, 0 to 1; a trace a caller started
    /// follows the caller's decision.
    pub sample_ratio: f64,
    /// Replaces every service's own name (`OTEL_SERVICE_NAME`).
    pub service_name: Option<String>,
}

impl OtlpConfig {
    /// The URL spans are sent to: the endpoint as given for gRPC, with the
    /// traces path appended for HTTP, as the OpenTelemetry specification
    /// says of `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn traces_url(&self) -> String {
        match self.protocol {
            OtlpProtocol::Grpc => self.endpoint.clone(),
            OtlpProtocol::HttpProtobuf => format!("{}/v1/traces", self.endpoint.trim_end_matches('/')),
        }
    }
}

/// The services a process can run, each its own `service.name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Gateway,
    Auth,
    Users,
}

impl Service {
    const ALL: [Service; 3] = [Service::Gateway, Service::Auth, Service::Users];

    fn index(self) -> usize {
        self as usize
    }

    /// `service.name` unless `OTEL_SERVICE_NAME` says otherwise.
    pub fn default_name(self) -> &'static str {
        match self {
            Service::Gateway => "gatehouse-gateway",
            Service::Auth => "gatehouse-auth",
            Service::Users => "gatehouse-users",
        }
    }
}

/// Installs the global subscriber without OpenTelemetry. `RUST_LOG`
/// overrides `default_filter`. Calling it twice is harmless (tests do).
///
/// Logs go to standard output. `pretty` colours them only when standard
/// output is a terminal and `NO_COLOR` is unset or empty (https://no-color.org),
/// so pipes, files and log collectors get plain text.
pub fn init_tracing(default_filter: &str, format: LogFormat) {
    drop(init(default_filter, format, None));
}

/// Installs the global subscriber, with the OpenTelemetry layer when `otlp`
/// is given. Keep the answer until the process ends: dropping it sends the
/// spans still waiting and stops the exporters.
///
/// Must run inside a Tokio runtime when `otlp` uses gRPC (the exporter's
/// connection is a task of that runtime).
pub fn init(default_filter: &str, format: LogFormat, otlp: Option<OtlpConfig>) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let ansi = colour_logs(std::io::stdout().is_terminal(), std::env::var_os("NO_COLOR").as_deref());
    let Some(config) = otlp else {
        // Logs only, exactly as before OpenTelemetry: one global filter.
        let registry = tracing_subscriber::registry().with(filter);
        let result = match format {
            LogFormat::Pretty => {
                registry.with(fmt::layer().with_writer(std::io::stdout).with_ansi(ansi).with_target(false)).try_init()
            }
            LogFormat::Json => registry
                .with(fmt::layer().json().flatten_event(true).with_writer(std::io::stdout).with_ansi(false))
                .try_init(),
        };
        // Already installed (a second service in the same process, or a test): keep the first.
        let _ = result;
        return Telemetry { _private: () };
    };
    // Lives as long as the process: the layer's tracer and [`OTEL`] share it.
    let otel: &'static Otel = Box::leak(Box::new(Otel::new(config)));
    // `RUST_LOG` filters the logs only; traces get every span and event at
    // info and above, whatever the logs show.
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Pretty => {
            fmt::layer().with_writer(std::io::stdout).with_ansi(ansi).with_target(false).with_filter(filter).boxed()
        }
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stdout)
            .with_ansi(false)
            .with_filter(filter)
            .boxed(),
    };
    let traces = otel_layer(otel).with_filter(LevelFilter::INFO).boxed();
    if tracing_subscriber::registry().with(vec![logs, traces]).try_init().is_ok() {
        opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
        let _ = OTEL.set(otel);
    }
    Telemetry { _private: () }
}

/// The telemetry of the process; dropping it flushes and stops the span
/// exporters (within a few seconds, even when the collector is gone).
#[must_use = "dropping it stops the trace exporters"]
pub struct Telemetry {
    _private: (),
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(otel) = OTEL.get() {
            otel.shutdown();
        }
    }
}

/// Whether spans are exported. Request code asks before any work done only
/// for traces; the answer is one atomic load.
#[inline]
pub fn otel_enabled() -> bool {
    OTEL.get().is_some()
}

/// Readies `service`'s tracer provider (its exporter and batch thread), once.
/// Each service calls it when it builds its router; a no-op without OTLP.
pub fn enable(service: Service) {
    if let Some(otel) = OTEL.get() {
        otel.provider(service);
    }
}

/// Makes `span` the first span of `service` in the trace whose W3C context
/// `headers` carry (`traceparent`, `tracestate`), or of a new trace when
/// they carry none. Call it before the span is first entered. A no-op without
/// OTLP.
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap, service: Service) {
    if !otel_enabled() || span.is_disabled() {
        return;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&Headers(headers)));
    let _ = span.set_parent(parent.with_value(service));
}

/// Makes `span` the root of a new trace of `service` (background work such
/// as the outbox relay). A no-op without OTLP.
pub fn start_trace(span: &tracing::Span, service: Service) {
    if otel_enabled() && !span.is_disabled() {
        let _ = span.set_parent(Context::new().with_value(service));
    }
}

/// Writes `span`'s W3C context into `headers` (`traceparent`, and
/// `tracestate` when the trace has one), so the next service continues the
/// trace below `span`. A no-op without OTLP.
pub fn inject(span: &tracing::Span, headers: &mut http::HeaderMap) {
    if !otel_enabled() {
        return;
    }
    let context = span.context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeadersMut(headers))
    });
}

/// `span`'s W3C `traceparent`, to store with work done later in another
/// trace (an outbox row); `None` without OTLP.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    if !otel_enabled() {
        return None;
    }
    // The propagator writes nothing for an invalid context.
    let mut carrier = std::collections::HashMap::new();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&span.context(), &mut carrier)
    });
    carrier.remove("traceparent")
}

/// Links `span` to the span a stored `traceparent` names (see
/// [`traceparent`]). Call it before the span is first entered. A no-op
/// without OTLP or for a malformed value.
pub fn link(span: &tracing::Span, traceparent: &str) {
    if !otel_enabled() {
        return;
    }
    let carrier = std::collections::HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let context = opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&carrier));
    let linked = context.span().span_context().clone();
    if linked.is_valid() {
        span.add_link(linked);
    }
}

/// The trace id of `span` as 32 hex digits, when it is exported.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    if !otel_enabled() {
        return None;
    }
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| span_context.trace_id().to_string())
}

/// Reads W3C headers from an `http::HeaderMap`.
struct Headers<'a>(&'a http::HeaderMap);

impl opentelemetry::propagation::Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Writes W3C headers into an `http::HeaderMap`.
struct HeadersMut<'a>(&'a mut http::HeaderMap);

impl opentelemetry::propagation::Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) =
            (http::HeaderName::from_bytes(key.as_bytes()), http::HeaderValue::try_from(value))
        {
            self.0.insert(name, value);
        }
    }
}

static OTEL: OnceLock<&'static Otel> = OnceLock::new();

/// The installed OpenTelemetry pipeline: one provider per service, made on
/// first use, and a tracer that records nothing for spans no service owns.
struct Otel {
    config: OtlpConfig,
    providers: [OnceLock<(SdkTracerProvider, SdkTracer)>; 3],
    unowned: SdkTracer,
}

/// How long stopping waits for the last spans to go out.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

impl Otel {
    fn new(config: OtlpConfig) -> Self {
        let unowned = SdkTracerProvider::builder().with_sampler(Sampler::AlwaysOff).build().tracer("gatehouse");
        Self { config, providers: Default::default(), unowned }
    }

    fn provider(&self, service: Service) -> &(SdkTracerProvider, SdkTracer) {
        self.providers[service.index()].get_or_init(|| {
            let provider = build_provider(&self.config, service);
            (provider.clone(), provider.tracer("gatehouse"))
        })
    }

    fn tracer(&self, service: Option<&Service>) -> &SdkTracer {
        service.and_then(|service| self.providers[service.index()].get()).map_or(&self.unowned, |(_, tracer)| tracer)
    }

    fn shutdown(&self) {
        for service in Service::ALL {
            if let Some((provider, _)) = self.providers[service.index()].get() {
                if let Err(error) = provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
                    eprintln!("{}: the last spans could not be exported: {error}", service.default_name());
                }
            }
        }
    }
}

fn build_provider(config: &OtlpConfig, service: Service) -> SdkTracerProvider {
    let exporter = match config.protocol {
        OtlpProtocol::Grpc => {
            opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(config.traces_url()).build()
        }
        OtlpProtocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(config.traces_url())
            .build(),
    };
    let name = config.service_name.clone().unwrap_or_else(|| service.default_name().to_owned());
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(name)
        .with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sample_ratio)));
    let builder = SdkTracerProvider::builder().with_sampler(sampler).with_resource(resource);
    match exporter {
        Ok(exporter) => builder.with_batch_exporter(exporter).build(),
        Err(error) => {
            tracing::error!(%error, endpoint = %config.endpoint, "cannot export traces; {} records none", service.default_name());
            builder.build()
        }
    }
}

/// The layer's tracer: hands each span to the provider of the service its
/// OpenTelemetry context names.
#[derive(Clone, Copy)]
struct ServiceTracer(&'static Otel);

impl opentelemetry::trace::Tracer for ServiceTracer {
    type Span = opentelemetry_sdk::trace::Span;

    fn build_with_context(&self, builder: SpanBuilder, parent_cx: &Context) -> Self::Span {
        self.0.tracer(parent_cx.get::<Service>()).build_with_context(builder, parent_cx)
    }
}

fn otel_layer<S>(otel: &'static Otel) -> tracing_opentelemetry::OpenTelemetryLayer<S, ServiceTracer>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
{
    tracing_opentelemetry::layer()
        .with_tracer(ServiceTracer(otel))
        // The parent of a span is the `tracing` parent; no OpenTelemetry
        // context is attached to the thread on every poll.
        .with_context_activation(false)
        .with_tracked_inactivity(false)
        .with_threads(false)
        .with_location(false)
}

/// Whether log lines written to an output get ANSI colours: only on a
/// terminal, and never when `NO_COLOR` is set to anything but the empty string.
fn colour_logs(output_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    output_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// Bucket bounds, in seconds, of every histogram (all of them are `*_seconds`):
/// from half a millisecond, a cached gateway answer, to ten seconds, past any
/// subgraph timeout. Buckets, unlike summaries, add up across instances.
const LATENCY_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// How often recorded histogram samples are folded into their buckets. The
/// recorder keeps every sample (8 bytes) until then, so without this a
/// process nobody scrapes grows by every request it serves.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The process-wide Prometheus recorder, installed on first use, with a
/// thread that folds histogram samples into buckets every second.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // Only an empty list of buckets is refused.
            let builder =
                PrometheusBuilder::new().set_buckets(&LATENCY_BUCKETS).unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed by an embedding program;
            // then this handle renders nothing, which is the honest answer.
            if metrics::set_global_recorder(recorder).is_ok() {
                spawn_upkeep(handle.clone());
            }
            handle
        })
        .clone()
}

fn spawn_upkeep(handle: PrometheusHandle) {
    let upkeep = move || loop {
        std::thread::sleep(UPKEEP_INTERVAL);
        handle.run_upkeep();
    };
    if let Err(e) = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(upkeep) {
        tracing::warn!(error = %e, "could not start the metrics upkeep thread; histograms are folded only when /metrics is read");
    }
}

/// Describes an error with every cause it wraps, skipping a cause whose text
/// the description already ends with: HTTP clients' own messages are often
/// only "client error (Connect)" or "error sending request".
pub fn describe_error(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_are_coloured_only_on_a_terminal_without_no_color() {
        assert!(colour_logs(true, None));
        // no-color.org: an empty NO_COLOR does not count as set.
        assert!(colour_logs(true, Some(OsStr::new(""))));
        assert!(!colour_logs(true, Some(OsStr::new("1"))));
        assert!(!colour_logs(true, Some(OsStr::new("false"))));
        assert!(!colour_logs(false, None));
        assert!(!colour_logs(false, Some(OsStr::new("1"))));
    }

    #[test]
    fn the_traces_url_follows_the_protocol() {
        let config = |endpoint: &str, protocol| OtlpConfig {
            endpoint: endpoint.into(),
            protocol,
            sample_ratio: 1.0,
            service_name: None,
        };
        assert_eq!(config("http://c:4317", OtlpProtocol::Grpc).traces_url(), "http://c:4317");
        assert_eq!(config("http://c:4318", OtlpProtocol::HttpProtobuf).traces_url(), "http://c:4318/v1/traces");
        assert_eq!(config("http://c:4318/", OtlpProtocol::HttpProtobuf).traces_url(), "http://c:4318/v1/traces");
    }
}
