//! Routes every service mounts the same way, and the layer that counts,
//! times and traces every request of a service.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use axum::{http::header, response::IntoResponse, routing::get, Router};
use tracing::field::Empty;

use crate::telemetry::{self, Service};

/// The value of cookie `name`, when the request carries exactly one with a
/// value: two cookies of the same name mean someone planted one (a
/// subdomain or a network attacker can add cookies, not remove them), so
/// neither is trusted.
pub fn cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(key, _)| *key == name)
        .map(|(_, value)| value.trim());
    let first = found.next()?;
    if found.next().is_some() || first.is_empty() {
        return None;
    }
    Some(first)
}

/// `/health` (the process is up) and `/metrics` (Prometheus text format).
///
/// Readiness differs per service, so each service adds its own `/ready`.
pub fn common_routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/health", get(health)).route("/metrics", get(metrics))
}

/// `/health`: the process is up.
pub async fn health() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], r#"{"status":"ok"}"#)
}

/// `/metrics`: Prometheus text format.
pub async fn metrics() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::telemetry::metrics_handle().render())
}

/// The client address: the connection's peer, or with `hops` trusted proxies
/// in front, the `X-Forwarded-For` entry the outermost trusted proxy
/// appended. A chain shorter than `hops`, or an entry that is no address,
/// gives the peer: nothing in it can be trusted then.
pub fn client_ip(headers: &http::HeaderMap, peer: IpAddr, hops: usize) -> IpAddr {
    if hops == 0 {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    entries
        .len()
        .checked_sub(hops)
        .and_then(|index| entries.get(index))
        .and_then(|entry| entry.parse().ok())
        .unwrap_or(peer)
}

/// Counts, times and traces a subgraph's requests: every response of the
/// routes of `router`, whatever answered it (a handler, a body limit, a
/// refusal), in `gatehouse_http_requests_total{service,status}` and
/// `gatehouse_http_request_duration_seconds{service}`, each request in a
/// `request` span that continues the caller's trace.
pub fn observe_subgraph<S: Clone + Send + Sync + 'static>(router: Router<S>, service: Service) -> Router<S> {
    let label = match service {
        Service::Gateway => "gateway",
        Service::Auth => "auth",
        Service::Users => "users",
    };
    router.layer(ObserveLayer::new(
        service,
        "gatehouse_http_requests_total",
        "gatehouse_http_request_duration_seconds",
        &[("service", label)],
    ))
}

/// A tower layer that records, for every response of the service it wraps,
/// a request counter labelled with the status and a duration histogram, and
/// runs the request in a `request` span.
///
/// The span carries `operation_name` and `trace_id` for the handlers to fill
/// in (log lines inside the request show them). With OpenTelemetry on it is
/// the service's server span: it continues the W3C context of the request
/// headers and records the method, path and status. Without it the span is
/// created with no field set, and the metrics are handles registered once
/// per status: the layer allocates nothing per request.
#[derive(Clone)]
pub struct ObserveLayer {
    shared: Arc<Observed>,
}

/// The statuses with a counter slot each (100 to 599); anything else counts as 500.
const STATUSES: std::ops::RangeInclusive<u16> = 100..=599;

struct Observed {
    service: Service,
    requests_total: &'static str,
    labels: Vec<(&'static str, &'static str)>,
    /// Counter handles per status, registered on first use.
    by_status: Box<[OnceLock<metrics::Counter>]>,
    duration: metrics::Histogram,
}

impl ObserveLayer {
    /// `requests_total{labels, status}` and `duration{labels}`.
    pub fn new(
        service: Service,
        requests_total: &'static str,
        duration: &'static str,
        labels: &[(&'static str, &'static str)],
    ) -> Self {
        // Handles taken before the recorder is installed would count nothing.
        let _ = telemetry::metrics_handle();
        telemetry::enable(service);
        let duration_labels: Vec<metrics::Label> =
            labels.iter().map(|(key, value)| metrics::Label::new(*key, *value)).collect();
        let shared = Observed {
            service,
            requests_total,
            labels: labels.to_vec(),
            by_status: STATUSES.map(|_| OnceLock::new()).collect(),
            duration: metrics::histogram!(duration, duration_labels),
        };
        Self { shared: Arc::new(shared) }
    }
}

impl Observed {
    fn counter(&self, status: http::StatusCode) -> &metrics::Counter {
        let status = if STATUSES.contains(&status.as_u16()) { status } else { http::StatusCode::INTERNAL_SERVER_ERROR };
        let slot = &self.by_status[usize::from(status.as_u16() - STATUSES.start())];
        slot.get_or_init(|| {
            let mut labels: Vec<metrics::Label> =
                self.labels.iter().map(|(key, value)| metrics::Label::new(*key, *value)).collect();
            labels.push(metrics::Label::new("status", status.as_str().to_owned()));
            metrics::counter!(self.requests_total, labels)
        })
    }

    fn record(&self, status: http::StatusCode, elapsed: Duration, span: &tracing::Span) {
        self.counter(status).increment(1);
        self.duration.record(elapsed.as_secs_f64());
        if telemetry::otel_enabled() {
            span.record("http.response.status_code", status.as_u16());
            if status.is_server_error() {
                span.record("otel.status_code", "error");
            }
        }
    }
}

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe { inner, shared: self.shared.clone() }
    }
}

/// The service of [`ObserveLayer`].
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    shared: Arc<Observed>,
}

impl<S, RequestBody, ResponseBody> tower::Service<http::Request<RequestBody>> for Observe<S>
where
    S: tower::Service<http::Request<RequestBody>, Response = http::Response<ResponseBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ObservedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<RequestBody>) -> Self::Future {
        let started = Instant::now();
        let span = tracing::info_span!(
            "request",
            otel.name = Empty,
            otel.kind = Empty,
            otel.status_code = Empty,
            http.request.method = Empty,
            url.path = Empty,
            http.response.status_code = Empty,
            operation_name = Empty,
            trace_id = Empty,
        );
        if telemetry::otel_enabled() {
            telemetry::continue_trace(&span, request.headers(), self.shared.service);
            let (method, path) = (request.method().as_str(), request.uri().path());
            span.record("otel.name", format!("{method} {path}"));
            span.record("otel.kind", "server");
            span.record("http.request.method", method);
            span.record("url.path", path);
            if let Some(trace_id) = telemetry::trace_id(&span) {
                span.record("trace_id", trace_id);
            }
        }
        let inner = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        ObservedFuture { inner, span, started, shared: self.shared.clone() }
    }
}

pin_project_lite::pin_project! {
    /// A response on its way, inside its request span.
    pub struct ObservedFuture<F> {
        #[pin]
        inner: F,
        span: tracing::Span,
        started: Instant,
        shared: Arc<Observed>,
    }
}

impl<F, ResponseBody, E> Future for ObservedFuture<F>
where
    F: Future<Output = Result<http::Response<ResponseBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _entered = this.span.enter();
            ready!(this.inner.poll(cx))
        };
        if let Ok(response) = &result {
            this.shared.record(response.status(), this.started.elapsed(), this.span);
        }
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_ignored_unless_proxies_are_trusted() {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-forwarded-for", "1.1.1.1, 2.2.2.2".parse().unwrap());
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(client_ip(&headers, peer, 0), peer);
        assert_eq!(client_ip(&headers, peer, 1), "2.2.2.2".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip(&headers, peer, 2), "1.1.1.1".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip(&headers, peer, 3), peer);
        headers.insert("x-forwarded-for", "not an address".parse().unwrap());
        assert_eq!(client_ip(&headers, peer, 1), peer);
    }
}
