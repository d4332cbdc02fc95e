//! GraphQL over HTTP: `POST`/`GET /graphql`, content negotiation and status
//! codes as the GraphQL-over-HTTP specification says, body limits, batching
//! (off by default), GraphiQL, `/health`, `/ready` and `/metrics`.

mod compression;
mod graphiql;
mod stream;
mod ws;

pub use graphiql::GraphiqlConfig;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use gatehouse_common::telemetry::{self, Service};
use gatehouse_listener::BodyError;
use serde_json::{Map, Value};

use crate::error::{codes, GraphQLError, RequestError};
use crate::pipeline::project::write_errors;
use crate::pipeline::{Gateway, GraphQLRequest, RequestMeta};
use crate::rate_limit::CallerKey;
use gatehouse_access::guards::Caller;
use gatehouse_common::identity::Identity;

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const APPLICATION_JSON: &str = "application/json";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MediaType {
    /// `application/graphql-response+json`: request errors get 4xx statuses.
    GraphQLResponse,
    /// Legacy `application/json`: well-formed GraphQL requests always get 200.
    Json,
}

impl MediaType {
    fn content_type(self) -> HeaderValue {
        match self {
            Self::GraphQLResponse => HeaderValue::from_static("application/graphql-response+json; charset=utf-8"),
            Self::Json => HeaderValue::from_static("application/json; charset=utf-8"),
        }
    }
}

/// What the client's `Accept` allows: plain JSON, a streaming format, or both.
#[derive(Clone, Copy)]
struct Accepted {
    plain: Option<MediaType>,
    streaming: Option<stream::Streaming>,
}

impl Accepted {
    /// `None` when neither is acceptable (406).
    fn of(headers: &HeaderMap) -> Option<Self> {
        let accepted = Accepted { plain: negotiate(headers), streaming: stream::Streaming::negotiate(headers) };
        (accepted.plain.is_some() || accepted.streaming.is_some()).then_some(accepted)
    }

    /// The media type of plain answers and refusals.
    fn media(self) -> MediaType {
        self.plain.unwrap_or(MediaType::Json)
    }
}

/// Answers one request, streamed when the client accepts a stream.
async fn answer(
    gateway: &Arc<Gateway>,
    request: GraphQLRequest,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    is_get: bool,
    accepted: Accepted,
) -> Response {
    match accepted.streaming {
        Some(format) => stream::respond(gateway, request, headers, peer, is_get, format, accepted.plain).await,
        None => run(gateway, request, headers, peer, is_get, accepted.media()).await,
    }
}

/// Picks the response media type from `Accept`; `None` means 406.
fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
    let accept: Vec<&str> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.split(';').next().unwrap_or("").trim())
        .filter(|v| !v.is_empty())
        .collect();
    if accept.is_empty() {
        return Some(MediaType::Json);
    }
    accept.iter().find_map(|media| match media.to_ascii_lowercase().as_str() {
        GRAPHQL_RESPONSE_JSON => Some(MediaType::GraphQLResponse),
        APPLICATION_JSON | "*/*" | "application/*" => Some(MediaType::Json),
        _ => None,
    })
}

/// The gateway's routes.
///
/// Every response of `/graphql` is counted in `gateway_requests_total{status}`
/// and timed in `gateway_request_duration_seconds` by one layer, whatever
/// answered it (GraphQL, a CSRF or token refusal, a body too large, JSON
/// that does not parse, a batch, a method or media type refused), and runs in
/// that request's span; the probes and `/metrics` are not counted.
///
/// With `GATEWAY_COMPRESSION` (the default), responses of at least 1 KiB are
/// compressed as `Accept-Encoding` allows (br, gzip, zstd), and request
/// bodies may come compressed (`Content-Encoding`); see [`compression`].
pub fn router(gateway: Arc<Gateway>) -> Router {
    let mut graphql = Router::new().route("/graphql", get(get_graphql).post(post_graphql));
    if gateway.config.forwarded_for {
        graphql = graphql.layer(axum::middleware::from_fn(append_forwarded_for));
    }
    if gateway.config.compression {
        // An encoding it does not know is refused with 415, and counted below.
        graphql = compression::decompress_requests(graphql);
    }
    graphql = graphql.layer(gatehouse_common::http::ObserveLayer::new(
        Service::Gateway,
        "gateway_requests_total",
        "gateway_request_duration_seconds",
        &[],
    ));
    if gateway.config.graphiql {
        graphql = graphql.merge(graphiql::routes());
    }
    let routes = graphql.route("/ready", get(ready)).route("/health", get(gatehouse_common::http::health));
    let routes = if gateway.config.admin_listener {
        routes
    } else {
        routes.route("/metrics", get(gatehouse_common::http::metrics))
    };
    let routes = routes.with_state(gateway.clone()).layer(gateway.security.cors.layer());
    if gateway.config.compression {
        compression::compress_responses(routes)
    } else {
        routes
    }
}

/// The admin listener's routes (`GATEWAY_ADMIN_LISTEN`): `/metrics`,
/// `/health` and `/ready`, for the monitoring only.
pub fn admin_router(gateway: Arc<Gateway>) -> Router {
    Router::new().route("/ready", get(ready)).with_state(gateway).merge(gatehouse_common::http::common_routes())
}

/// Appends the connection's peer address to `X-Forwarded-For`, as a proxy
/// does, so subgraphs (the auth subgraph's per-IP limits) see the client.
/// What the client itself sent stays in front, for trusted proxies before us.
async fn append_forwarded_for(mut request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let peer = request.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|info| info.0.ip());
    if let Some(peer) = peer {
        let headers = request.headers_mut();
        let earlier: Vec<&str> =
            headers.get_all(crate::config::X_FORWARDED_FOR).iter().filter_map(|v| v.to_str().ok()).collect();
        let chain = if earlier.is_empty() { peer.to_string() } else { format!("{}, {peer}", earlier.join(", ")) };
        if let Ok(value) = HeaderValue::from_str(&chain) {
            headers.insert(crate::config::X_FORWARDED_FOR, value);
        }
    }
    next.run(request).await
}

async fn ready(State(gateway): State<Arc<Gateway>>) -> Response {
    if gateway.store.current().is_some() {
        (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], r#"{"status":"ready"}"#).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"status":"no supergraph loaded"}"#,
        )
            .into_response()
    }
}

fn respond(status: StatusCode, media: MediaType, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, media.content_type());
    response
}

/// A refused request, with the status its media type calls for.
fn error_response(error: RequestError, media: MediaType) -> Response {
    let status = match (&error, media) {
        (RequestError::BadRequest(_), _) => error.status(),
        (RequestError::MethodNotAllowed(_), _) => 405,
        (RequestError::RateLimited(..), _) => 429,
        (RequestError::NotReady(_), _) => 503,
        (RequestError::Internal(_), _) => 500,
        (_, MediaType::GraphQLResponse) => error.status(),
        (_, MediaType::Json) => 200,
    };
    let allow_post = matches!(error, RequestError::MethodNotAllowed(_));
    let retry_after = match &error {
        RequestError::RateLimited(_, seconds) => Some(*seconds),
        _ => None,
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = respond(status, media, write_errors(&error.into_errors()));
    if allow_post {
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    if let Some(seconds) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// The `traceparent` the gateway sends its subgraphs when OpenTelemetry is
/// off. With it on, each subgraph fetch sends its own span's context instead
/// (`executor::fetch`), and this is not needed.
fn traceparent(headers: &HeaderMap) -> Option<HeaderValue> {
    if telemetry::otel_enabled() {
        return None;
    }
    Some(own_traceparent(headers))
}

fn own_traceparent(headers: &HeaderMap) -> HeaderValue {
    // Keep the caller's trace id and flags; this gateway is a new parent span.
    // Ids come from the thread's random generator, which needs no system call
    // per request; the specification forbids all-zero ids.
    let span_id = rand::random::<u64>().max(1);
    let incoming = headers.get("traceparent").and_then(|v| v.to_str().ok()).and_then(|v| {
        let parts: Vec<&str> = v.trim().split('-').collect();
        let valid = parts.len() >= 4
            && parts[1].len() == 32
            && parts[2].len() == 16
            && parts[3].len() == 2
            && parts[1..4].iter().all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
            && parts[1].bytes().any(|b| b != b'0');
        valid.then(|| (parts[1].to_ascii_lowercase(), parts[3].to_ascii_lowercase()))
    });
    let value = match incoming {
        Some((trace_id, flags)) => format!("00-{trace_id}-{span_id:016x}-{flags}"),
        None => format!("00-{:032x}-{span_id:016x}-01", rand::random::<u128>().max(1)),
    };
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static(""))
}

async fn run(
    gateway: &Gateway,
    request: GraphQLRequest,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    is_get: bool,
    media: MediaType,
) -> Response {
    // The request span is `ObserveLayer`'s; log lines inside it name the
    // operation and the trace.
    let span = tracing::Span::current();
    span.record("operation_name", request.operation_name.as_deref().unwrap_or(""));
    let traceparent = traceparent(headers);
    if let Some(trace_id) = traceparent.as_ref().and_then(|t| t.to_str().ok()).and_then(|t| t.get(3..35)) {
        span.record("trace_id", trace_id);
    }
    let admitted = match admit(gateway, headers, peer, media).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let meta = admitted.meta(headers, is_get, traceparent);
    match gateway.execute(request, meta).await {
        Ok(answer) => answer_response(answer, media),
        Err(error) => error_response(error, media),
    }
}

/// An operation's answer as an HTTP response.
fn answer_response(answer: crate::pipeline::Answer, media: MediaType) -> Response {
    let mut response = with_headers(respond(StatusCode::OK, media, answer.body), answer.headers);
    if let Some(seconds) = answer.retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// Who a request is from, once admitted.
struct Admitted {
    /// The caller for the guards; `None` when authentication is off.
    caller: Option<Caller>,
    /// The signed identity for subgraphs.
    identity_header: Option<HeaderValue>,
    /// The caller's verified claims.
    identity: Option<Identity>,
    /// Whom the request counts against, when rate limits are configured.
    caller_key: Option<CallerKey>,
    /// When the access token expires (Unix seconds).
    expires_at: Option<u64>,
}

impl Admitted {
    /// Whom the per-caller subscription limit counts: the user, or else the
    /// address.
    fn subscription_caller(&self, peer: Option<IpAddr>) -> String {
        match (&self.identity, peer) {
            (Some(identity), _) => identity.user_id.to_string(),
            (None, Some(peer)) => peer.to_string(),
            (None, None) => "anonymous".to_owned(),
        }
    }

    fn meta<'a>(&self, headers: &'a HeaderMap, is_get: bool, traceparent: Option<HeaderValue>) -> RequestMeta<'a> {
        RequestMeta {
            is_get,
            headers,
            traceparent,
            caller: self.caller.clone(),
            identity_header: self.identity_header.clone(),
            identity: self.identity.clone(),
            caller_key: self.caller_key.clone(),
            expires_at: self.expires_at,
        }
    }
}

/// Why a request was refused before any GraphQL work.
struct Refusal {
    status: StatusCode,
    error: GraphQLError,
    /// `WWW-Authenticate`, for refused credentials.
    challenge: Option<HeaderValue>,
    /// `Retry-After`, for a rate limit.
    retry_after: Option<u64>,
}

impl Refusal {
    fn into_response(self, media: MediaType) -> Response {
        let mut response = respond(self.status, media, write_errors(&[self.error]));
        if let Some(challenge) = self.challenge {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The security checks before any GraphQL work: the CSRF rule, the bearer
/// token, then the caller's rate limit.
async fn admit(
    gateway: &Gateway,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    media: MediaType,
) -> Result<Admitted, Response> {
    if let Err(rejected) = gateway.security.csrf.check(headers) {
        metrics::counter!("gateway_csrf_refused_total").increment(1);
        let error = GraphQLError::new(rejected.to_string(), codes::BAD_REQUEST);
        return Err(respond(StatusCode::BAD_REQUEST, media, write_errors(&[error])));
    }
    admit_credentials(gateway, headers, peer).await.map_err(|refusal| refusal.into_response(media))
}

/// The bearer token, then the caller's rate limit (no CSRF rule: a
/// WebSocket's credentials travel in its first message, not with the
/// browser's cookies).
async fn admit_credentials(gateway: &Gateway, headers: &HeaderMap, peer: Option<IpAddr>) -> Result<Admitted, Refusal> {
    let (caller, identity_header, identity, expires_at) = authenticate(gateway, headers).await?;
    let caller_key = match &gateway.rate_limits {
        Some(limits) => {
            let user_id = identity.as_ref().map(|identity| identity.user_id.to_string());
            let key = CallerKey::of(user_id, peer, headers, limits.proxy_hops());
            if let Err(error) = limits.check_caller(&key).await {
                return Err(refusal_of(error));
            }
            Some(key)
        }
        None => None,
    };
    Ok(Admitted { caller, identity_header, identity, caller_key, expires_at })
}

/// A refused request error as a [`Refusal`] (a rate limit, mostly).
fn refusal_of(error: RequestError) -> Refusal {
    let retry_after = match &error {
        RequestError::RateLimited(_, seconds) => Some(*seconds),
        _ => None,
    };
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let error = error.into_errors().into_iter().next().unwrap_or_else(GraphQLError::internal);
    Refusal { status, error, challenge: None, retry_after }
}

/// The bearer token: the caller for the guards, the signed identity for
/// subgraphs, the verified claims and when they expire.
#[allow(clippy::type_complexity)]
async fn authenticate(
    gateway: &Gateway,
    headers: &HeaderMap,
) -> Result<(Option<Caller>, Option<HeaderValue>, Option<Identity>, Option<u64>), Refusal> {
    let Some(gatekeeper) = &gateway.security.gatekeeper else { return Ok((None, None, None, None)) };
    match gatekeeper.authenticate(headers).await {
        Ok(None) => Ok((Some(Caller::anonymous()), None, None, None)),
        Ok(Some(who)) => Ok((
            Some(who.caller()),
            Some(gatekeeper.identity_header(&who.identity)),
            Some(who.identity),
            Some(who.expires_at),
        )),
        Err(rejection) => {
            metrics::counter!("gateway_auth_refused_total", "status" => rejection.status().to_string()).increment(1);
            tracing::info!(reason = %rejection, "request refused before any subgraph call");
            Err(Refusal {
                status: StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::UNAUTHORIZED),
                error: GraphQLError::new(rejection.to_string(), rejection.code()),
                challenge: rejection.challenge(),
                retry_after: None,
            })
        }
    }
}

fn with_headers(mut response: Response, headers: Vec<(header::HeaderName, HeaderValue)>) -> Response {
    for (name, value) in headers {
        response.headers_mut().append(name, value);
    }
    response
}

/// Reads one request object from JSON, checking every field's type.
fn request_from_json(value: Value) -> Result<GraphQLRequest, RequestError> {
    let Value::Object(mut object) = value else {
        return Err(RequestError::bad_request("The request body must be a JSON object"));
    };
    let query = match object.remove("query") {
        Some(Value::String(query)) => Some(query),
        Some(Value::Null) | None => None,
        Some(_) => return Err(RequestError::bad_request("\"query\" must be a string")),
    };
    let document_id = match object.remove("documentId") {
        Some(Value::String(id)) if !id.is_empty() => Some(id),
        Some(Value::Null) | None => None,
        Some(_) => return Err(RequestError::bad_request("\"documentId\" must be a non-empty string")),
    };
    let operation_name = match object.remove("operationName") {
        Some(Value::String(name)) if !name.is_empty() => Some(name),
        Some(Value::String(_)) | Some(Value::Null) | None => None,
        Some(_) => return Err(RequestError::bad_request("\"operationName\" must be a string")),
    };
    let variables = match object.remove("variables") {
        Some(Value::Object(v)) => Some(v),
        Some(Value::Null) | None => None,
        Some(_) => return Err(RequestError::bad_request("\"variables\" must be an object")),
    };
    let extensions = match object.remove("extensions") {
        Some(Value::Object(v)) => Some(v),
        Some(Value::Null) | None => None,
        Some(_) => return Err(RequestError::bad_request("\"extensions\" must be an object")),
    };
    let query = require_document(query, document_id.is_some(), extensions.as_ref())?;
    Ok(GraphQLRequest { query, document_id, operation_name, variables, extensions })
}

/// The document's text: required unless the request names a persisted
/// document (`documentId`, or an APQ hash in `extensions.persistedQuery`),
/// in which case it may be left out (empty until resolved).
fn require_document(
    query: Option<String>,
    has_document_id: bool,
    extensions: Option<&Map<String, Value>>,
) -> Result<String, RequestError> {
    match query {
        Some(query) => Ok(query),
        None if has_document_id || extensions.is_some_and(|e| e.contains_key("persistedQuery")) => Ok(String::new()),
        None => Err(RequestError::bad_request("The request must have a \"query\" string or a \"documentId\"")),
    }
}

fn is_json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .is_some_and(|v| v == APPLICATION_JSON || v == GRAPHQL_RESPONSE_JSON || v == "application/graphql+json")
}

/// The client's address, from the connection.
type Peer = Option<axum::Extension<axum::extract::ConnectInfo<SocketAddr>>>;

fn peer_ip(peer: Peer) -> Option<IpAddr> {
    peer.map(|axum::Extension(axum::extract::ConnectInfo(address))| address.ip())
}

async fn post_graphql(
    State(gateway): State<Arc<Gateway>>,
    peer: Peer,
    version: axum::http::Version,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let peer = peer_ip(peer);
    let Some(accepted) = Accepted::of(&headers) else { return not_acceptable() };
    let media = accepted.media();
    if !is_json_content_type(&headers) {
        let mut response =
            error_response(RequestError::bad_request("The request body must be application/json"), media);
        *response.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        return response;
    }
    let (limit, timeout) = (gateway.config.max_body_bytes, gateway.config.body_read_timeout);
    let bytes = match gatehouse_listener::read_body(body, limit, timeout).await {
        Ok(bytes) => bytes,
        Err(error) => {
            let code = match error {
                BodyError::TooLarge(_) => codes::LIMIT_EXCEEDED,
                BodyError::TimedOut(_) => codes::REQUEST_TIMEOUT,
                BodyError::Unreadable => codes::BAD_REQUEST,
            };
            let mut response =
                respond(error.status(), media, write_errors(&[GraphQLError::new(error.to_string(), code)]));
            gatehouse_listener::close_after_refused_body(version, &mut response);
            return response;
        }
    };
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(value) => value,
        Err(e) => {
            let message = if std::str::from_utf8(&bytes).is_err() {
                "The request body is not valid UTF-8".to_string()
            } else {
                format!("The request body is not valid JSON: {e}")
            };
            return error_response(RequestError::bad_request(message), media);
        }
    };
    match value {
        Value::Array(_) if accepted.streaming.is_some() => {
            error_response(RequestError::bad_request("A batch cannot be answered as a stream"), media)
        }
        Value::Array(items) => {
            if !gateway.config.batching {
                return error_response(RequestError::bad_request("Batched requests are not enabled"), media);
            }
            if items.is_empty() || items.len() > gateway.config.max_batch_size {
                return error_response(
                    RequestError::bad_request(format!(
                        "A batch must hold between 1 and {} requests",
                        gateway.config.max_batch_size
                    )),
                    media,
                );
            }
            let admitted = match admit(&gateway, &headers, peer, media).await {
                Ok(admitted) => admitted,
                Err(refused) => return refused,
            };
            let mut bodies = Vec::with_capacity(items.len());
            let mut passed = Vec::new();
            for (i, item) in items.into_iter().enumerate() {
                let meta = admitted.meta(&headers, false, traceparent(&headers));
                // The first item counted against the caller's limit at
                // admission; every further one counts too.
                let admitted = match (i, &gateway.rate_limits, &meta.caller_key) {
                    (1.., Some(limits), Some(key)) => limits.check_caller(key).await,
                    _ => Ok(()),
                };
                let body = match admitted.and_then(|()| request_from_json(item)) {
                    Ok(request) => match gateway.execute(request, meta).await {
                        Ok(answer) => {
                            passed.extend(answer.headers);
                            answer.body
                        }
                        Err(error) => write_errors(&error.into_errors()),
                    },
                    Err(error) => write_errors(&error.into_errors()),
                };
                bodies.push(body);
            }
            let mut out = Vec::new();
            out.push(b'[');
            for (i, body) in bodies.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&body);
            }
            out.push(b']');
            with_headers(respond(StatusCode::OK, media, out), passed)
        }
        other => match request_from_json(other) {
            Ok(request) => answer(&gateway, request, &headers, peer, false, accepted).await,
            Err(error) => error_response(error, media),
        },
    }
}

fn not_acceptable() -> Response {
    let body = write_errors(&[GraphQLError::new(
        "Accept application/graphql-response+json or application/json",
        codes::BAD_REQUEST,
    )]);
    respond(StatusCode::NOT_ACCEPTABLE, MediaType::Json, body)
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/html"))
}

async fn get_graphql(
    State(gateway): State<Arc<Gateway>>,
    peer: Peer,
    headers: HeaderMap,
    upgrade: Result<axum::extract::WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
    params: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Ok(upgrade) = upgrade {
        return ws::upgrade(gateway, upgrade, headers, peer_ip(peer));
    }
    let params = params.map(|Query(p)| p).unwrap_or_default();
    let names_document = ["query", "documentId", "extensions"].iter().any(|key| params.contains_key(*key));
    if gateway.config.graphiql && wants_html(&headers) && !names_document {
        return graphiql::page(&gateway.config.graphiql_samples);
    }
    let Some(accepted) = Accepted::of(&headers) else { return not_acceptable() };
    let media = accepted.media();
    let parse_object = |name: &str| -> Result<Option<Map<String, Value>>, RequestError> {
        match params.get(name) {
            None => Ok(None),
            Some(raw) if raw.is_empty() => Ok(None),
            Some(raw) => match serde_json::from_str::<Value>(raw) {
                Ok(Value::Object(map)) => Ok(Some(map)),
                Ok(Value::Null) => Ok(None),
                _ => Err(RequestError::bad_request(format!("\"{name}\" must be a JSON object"))),
            },
        }
    };
    let request = (|| {
        let extensions = parse_object("extensions")?;
        let document_id = params.get("documentId").filter(|id| !id.is_empty()).cloned();
        let query = require_document(params.get("query").cloned(), document_id.is_some(), extensions.as_ref())?;
        Ok::<_, RequestError>(GraphQLRequest {
            query,
            document_id,
            operation_name: params.get("operationName").filter(|n| !n.is_empty()).cloned(),
            variables: parse_object("variables")?,
            extensions,
        })
    })();
    match request {
        Ok(request) => answer(&gateway, request, &headers, peer_ip(peer), true, accepted).await,
        Err(error) => error_response(error, media),
    }
}
