//! Sending one subgraph request and turning its answer into data and errors.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::time::Instant;

use hive_router_query_planner::planner::plan_nodes::FetchNode;
use hive_router_query_planner::state::supergraph_state::OperationKind;
use http::header::COOKIE;
use http::{HeaderMap, HeaderName};
use serde_json::{Map, Value};
use tracing::Instrument;

use super::merge::{apply_rewrites, merge_value, rename_error_path};
use super::tree::Node;
use super::Execution;
use crate::client::{FetchError, Received};
use crate::error::{codes, GraphQLError, PathSegment};

static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
static IDENTITY: HeaderName = HeaderName::from_static(gatehouse_common::identity::IDENTITY_HEADER);

/// Writes a `{"query":..,"variables":{..}}` body. Only variables the fetch
/// uses are sent; `extra` appends further variables given as JSON text
/// (representations).
pub(crate) fn request_body(
    query: &str,
    variables: &Map<String, Value>,
    usages: Option<&BTreeSet<String>>,
    extra: &[(&str, &[u8])],
) -> Vec<u8> {
    let extra_len: usize = extra.iter().map(|(name, json)| name.len() + json.len() + 4).sum();
    let mut body = Vec::with_capacity(query.len() + extra_len + 128);
    body.extend_from_slice(b"{\"query\":");
    let _ = serde_json::to_writer(&mut body, query);
    body.extend_from_slice(b",\"variables\":{");
    let mut first = true;
    let mut comma = |body: &mut Vec<u8>| {
        if !std::mem::take(&mut first) {
            body.push(b',');
        }
    };
    for (name, json) in extra {
        comma(&mut body);
        let _ = serde_json::to_writer(&mut body, name);
        body.push(b':');
        body.extend_from_slice(json);
    }
    if let Some(usages) = usages {
        for name in usages {
            if let Some(value) = variables.get(name) {
                comma(&mut body);
                let _ = serde_json::to_writer(&mut body, name);
                body.push(b':');
                let _ = serde_json::to_writer(&mut body, value);
            }
        }
    }
    body.extend_from_slice(b"}}");
    body
}

/// A subgraph's error as the client sees it: the subgraph's message and
/// extensions, a code, the subgraph's name, and a path in client terms.
pub(crate) fn subgraph_error(raw: &Value, service: &str, path: Option<Vec<PathSegment>>) -> GraphQLError {
    let message = raw.get("message").and_then(Value::as_str).unwrap_or("Subgraph error");
    let mut error = GraphQLError::new(message, codes::DOWNSTREAM_SERVICE_ERROR);
    if let Some(Value::Object(extensions)) = raw.get("extensions") {
        for (k, v) in extensions {
            error.extensions.insert(k.clone(), v.clone());
        }
        if !error.extensions.get("code").is_some_and(Value::is_string) {
            error.extensions.insert("code".into(), codes::DOWNSTREAM_SERVICE_ERROR.into());
        }
    }
    error.extensions.insert("serviceName".into(), Value::String(service.to_string()));
    error.path = path;
    error
}

/// The value at `key` of an answer's `data`: moved out of an answer of the
/// request's own (leaving a null, which is cheaper than removing the key
/// from an object about to be dropped), borrowed from a shared one; null
/// when it is missing.
pub(super) fn take_field<'a>(data: &mut Cow<'a, Node>, key: &str) -> Cow<'a, Node> {
    static NULL: Node = Node::Null;
    match data {
        Cow::Owned(Node::Object(object)) => Cow::Owned(object.get_mut(key).map(std::mem::take).unwrap_or_default()),
        Cow::Owned(_) => Cow::Borrowed(&NULL),
        Cow::Borrowed(data) => Cow::Borrowed(data.get(key).unwrap_or(&NULL)),
    }
}

pub(super) fn raw_path(raw: &Value) -> Option<Vec<PathSegment>> {
    raw.get("path")?.as_array()?.iter().map(PathSegment::from_json).collect()
}

impl Execution<'_> {
    /// The headers of a request to `service`: its header rules, the trace
    /// context, the client's cookies where allowed, and the signed identity.
    pub(crate) fn subgraph_headers(&self, service: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(endpoint) = self.supergraph.subgraphs.get(service) {
            crate::header_rules::apply(&endpoint.header_rules, self.client_headers, self.identity, &mut headers);
        }
        if let Some(traceparent) = &self.traceparent {
            headers.insert(TRACEPARENT.clone(), traceparent.clone());
        }
        if self.cookie_subgraphs.contains(service) {
            for value in self.client_headers.get_all(COOKIE) {
                headers.append(COOKIE, value.clone());
            }
        }
        // Always set by the gateway, replacing anything a client tried to send.
        headers.remove(IDENTITY.clone());
        if let Some(identity) = &self.identity_header {
            headers.insert(IDENTITY.clone(), identity.clone());
        }
        headers
    }

    /// Sends `body` to `service`. Transport failures come back as one client
    /// error; the cause is logged.
    pub(super) async fn send(&self, service: &str, body: Vec<u8>, is_query: bool) -> Result<Received, GraphQLError> {
        let Some(endpoint) = self.supergraph.subgraphs.get(service) else {
            tracing::error!(subgraph = service, "the plan names a subgraph the supergraph does not define");
            return Err(GraphQLError::internal());
        };
        if let Some(limit) = endpoint.max_request_bytes.filter(|limit| body.len() > *limit) {
            // The subgraph would refuse it (413): say so plainly, without sending it.
            return Err(GraphQLError::new(
                format!(
                    "The request to subgraph \"{service}\" would be {} bytes, more than the {limit} it accepts",
                    body.len()
                ),
                codes::LIMIT_EXCEEDED,
            )
            .with_extension("serviceName", Value::String(service.to_string())));
        }
        let span = tracing::info_span!(
            "subgraph_fetch",
            subgraph = service,
            url = %endpoint.url,
            otel.kind = tracing::field::Empty,
        );
        let mut headers = self.subgraph_headers(service);
        if gatehouse_common::telemetry::otel_enabled() {
            // The subgraph continues the trace below this fetch's span
            // (`self.traceparent` is unset then).
            span.record("otel.kind", "client");
            gatehouse_common::telemetry::inject(&span, &mut headers);
        }
        let started = Instant::now();
        let dedupe = is_query && self.dedupe;
        let result = self.client.post(endpoint, body, &headers, dedupe).instrument(span).await;
        let counted = &endpoint.metrics;
        let outcome = match &result {
            Ok(_) => &counted.ok,
            Err(FetchError::Timeout(_)) => &counted.timeout,
            Err(_) => &counted.error,
        };
        outcome.increment(1);
        counted.duration.record(started.elapsed().as_secs_f64());

        let failed = |code: &'static str, detail: String| {
            GraphQLError::new(format!("Request to subgraph \"{service}\" failed: {detail}"), code)
                .with_extension("serviceName", Value::String(service.to_string()))
        };
        let reply = match result {
            Ok(reply) => reply,
            Err(FetchError::Timeout(t)) => {
                tracing::warn!(subgraph = service, timeout = ?t, "subgraph request timed out");
                return Err(failed(codes::SUBGRAPH_TIMEOUT, "timed out".into()));
            }
            Err(e) => {
                tracing::warn!(subgraph = service, error = %e, "subgraph request failed");
                let detail = match e {
                    FetchError::Status(status) => format!("HTTP status {status}"),
                    _ => "the subgraph could not be reached".into(),
                };
                return Err(failed(codes::SUBGRAPH_REQUEST_FAILED, detail));
            }
        };
        self.received.fetch_add(reply.body.len(), std::sync::atomic::Ordering::Relaxed);
        let cookies = if self.cookie_subgraphs.contains(service) { reply.set_cookies.as_slice() } else { &[] };
        if !cookies.is_empty() || !reply.headers.is_empty() {
            let mut passed = self.response_headers.lock().unwrap_or_else(|e| e.into_inner());
            passed.extend(cookies.iter().map(|cookie| (http::header::SET_COOKIE, cookie.clone())));
            for header in &reply.headers {
                // Several subgraphs (or fetches) may send the same value: once is enough.
                if !passed.contains(header) {
                    passed.push(header.clone());
                }
            }
        }
        reply.decode().map_err(|error| {
            tracing::warn!(subgraph = service, %error, "subgraph answered with invalid JSON");
            failed(codes::SUBGRAPH_RESPONSE_INVALID, "the response is not a GraphQL response".into())
        })
    }

    /// A fetch at the root of the operation: its data merges into the root.
    pub(super) async fn root_fetch(&self, fetch: &FetchNode) {
        let body = request_body(&fetch.operation.document_str, self.variables, fetch.variable_usages.as_ref(), &[]);
        let is_query = !matches!(fetch.operation_kind, Some(OperationKind::Mutation));
        match self.send(&fetch.service_name, body, is_query).await {
            Ok(response) => self.merge_root(fetch, response),
            Err(error) => self.push_error(error),
        }
    }

    /// Merges a root answer into the response tree: a fetch's, or a
    /// subscription event's (whose fetch is the subscription's primary).
    pub(super) fn merge_root(&self, fetch: &FetchNode, mut response: Received) {
        let (errors, mut data) = response.parts();
        self.push_errors(errors.iter().map(|raw| {
            let mut path = raw_path(raw);
            if let (Some(path), Some(rewrites)) = (&mut path, &fetch.output_rewrites) {
                rename_error_path(path, &data, rewrites, &self.supergraph.schema);
            }
            subgraph_error(raw, &fetch.service_name, path)
        }));
        if let Some(rewrites) = &fetch.output_rewrites {
            apply_rewrites(data.to_mut(), rewrites, &self.supergraph.schema);
        }
        if matches!(*data, Node::Object(_)) {
            self.with_data(|root| merge_value(root, data, &self.supergraph.schema));
        } else if errors.is_empty() {
            self.push_error(
                GraphQLError::new(
                    format!("Subgraph \"{}\" returned no data", fetch.service_name),
                    codes::SUBGRAPH_RESPONSE_INVALID,
                )
                .with_extension("serviceName", Value::String(fetch.service_name.clone())),
            );
        }
    }
}
