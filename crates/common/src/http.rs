//! Routes every service mounts the same way.

use axum::{http::header, response::IntoResponse, routing::get, Router};

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
