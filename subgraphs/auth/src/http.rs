//! HTTP: mounts the schema and serves the JWKS.
//!
//! Routes: `POST /graphql`, `GET /.well-known/jwks.json`,
//! `GET /.well-known/openid-configuration`, `GET /ready`, and the common
//! `/health` and `/metrics`. This is the only module that reads headers: it
//! turns the identity header, the refresh cookie, the user agent and the
//! client address into a [`RequestContext`] for the resolvers.

use std::net::SocketAddr;

use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use gatehouse_common::redis_conn::RedisConn;

use gatehouse_common::http::{client_ip, common_routes};
use gatehouse_common::identity::{Identity, IDENTITY_HEADER};
use gatehouse_common::telemetry::Service;

use crate::schema::AuthSchema;
use crate::service::{AuthService, RequestContext};

#[derive(Clone)]
pub struct AppState {
    pub schema: AuthSchema,
    pub service: AuthService,
    pub redis: RedisConn,
    /// For readiness: account events and revocation notices go out through it.
    pub nats: async_nats::Client,
}

pub fn router(state: AppState) -> Router {
    let settings = state.service.settings();
    let (max_body, body_timeout) = (settings.max_body_bytes, settings.body_read_timeout);
    let api = Router::new()
        .route("/graphql", post(graphql))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/.well-known/openid-configuration", get(openid_configuration));
    // async-graphql-axum streams the body itself, past axum's DefaultBodyLimit.
    let api = gatehouse_listener::buffer_bodies(api, max_body, body_timeout);
    // Counted, timed and traced (continuing the gateway's trace), refusals of
    // the body limit included; the probes and `/metrics` are not.
    let api = gatehouse_common::http::observe_subgraph(api, Service::Auth);
    api.route("/ready", get(ready)).merge(common_routes()).with_state(state)
}

async fn graphql(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> Response {
    let settings = state.service.settings();
    let caller = match caller(&headers, settings) {
        Ok(caller) => caller,
        Err(reason) => {
            tracing::warn!(%reason, "refused a request with a bad identity header");
            return unauthenticated("invalid identity header");
        }
    };
    let context = RequestContext {
        caller,
        client_ip: client_ip(&headers, peer.ip(), settings.trusted_proxy_hops),
        user_agent: headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned),
        refresh_cookie: cookie(&headers, &settings.tokens.cookie_name),
        device_cookie: cookie(&headers, &settings.tokens.device_cookie_name),
        started_sessions: Default::default(),
    };
    let started = context.started_sessions.clone();
    let mut response = state.schema.execute(request.into_inner().data(context)).await;
    let started = std::mem::take(&mut *started.lock().unwrap_or_else(|e| e.into_inner()));
    end_undelivered_sessions(&state.service, &mut response, &started).await;
    // A refusal for too many attempts says, in HTTP too, when to try again.
    let retry_after = response
        .errors
        .iter()
        .filter(|e| {
            e.extensions.as_ref().and_then(|x| x.get("code")) == Some(&async_graphql::Value::from("RATE_LIMITED"))
        })
        .filter_map(|e| match e.extensions.as_ref()?.get("retryAfter")? {
            async_graphql::Value::Number(n) => n.as_u64(),
            _ => None,
        })
        .max();
    let mut response = GraphQLResponse::from(response).into_response();
    if let Some(seconds) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, axum::http::HeaderValue::from(seconds));
    }
    response
}

/// A login whose answer is `null`, or has a failed field below it (which the
/// gateway's non-null rules turn into a `null` answer), reached nobody: its
/// session is ended and its cookies are not set.
async fn end_undelivered_sessions(
    service: &AuthService,
    response: &mut async_graphql::Response,
    started: &[crate::service::StartedSession],
) {
    // An error below a login's answer counts as undelivered too: every field
    // that can fail below it is non-null in the supergraph, so the gateway
    // nulls the answer even where async-graphql left a `null` inside it.
    let failed_below = |key: &str| {
        response
            .errors
            .iter()
            .any(|error| matches!(error.path.first(), Some(async_graphql::PathSegment::Field(first)) if first == key))
    };
    let delivered = |key: &str| match &response.data {
        async_graphql::Value::Object(fields) => {
            !matches!(fields.get(key), None | Some(async_graphql::Value::Null)) && !failed_below(key)
        }
        _ => false,
    };
    let undelivered: Vec<_> = started.iter().filter(|s| !delivered(&s.response_key)).collect();
    if undelivered.is_empty() {
        return;
    }
    for session in undelivered {
        if let Err(error) = service.end_undelivered(session).await {
            tracing::error!(error = %error.log_line(), "could not end a session whose login answer was null");
        }
    }
    // Neither the refresh token nor the device of a login nobody saw.
    let tokens = &service.settings().tokens;
    let kept: Vec<_> = response
        .http_headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter(|v| {
            let v = v.to_str().unwrap_or_default();
            !v.starts_with(&format!("{}=", tokens.cookie_name))
                && !v.starts_with(&format!("{}=", tokens.device_cookie_name))
        })
        .cloned()
        .collect();
    response.http_headers.remove(header::SET_COOKIE);
    for value in kept {
        response.http_headers.append(header::SET_COOKIE, value);
    }
}

/// The forwarded identity: absent means anonymous, present but forged,
/// malformed or stale means the request is refused. A caller signed in with
/// an outside provider has no account here, and its scopes are another
/// issuer's words: to this service it is anonymous, so no outside role can
/// ever manage our accounts.
fn caller(
    headers: &HeaderMap,
    settings: &crate::settings::AuthSettings,
) -> Result<Option<Identity>, gatehouse_common::identity::IdentityError> {
    let mut values = headers.get_all(IDENTITY_HEADER).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(gatehouse_common::identity::IdentityError::Malformed);
    }
    let value = value.to_str().map_err(|_| gatehouse_common::identity::IdentityError::Malformed)?;
    let identity = settings.identity.verify(value, chrono::Utc::now().timestamp())?;
    Ok(identity.external.is_none().then_some(identity))
}

fn unauthenticated(message: &str) -> Response {
    let body = serde_json::json!({
        "data": null,
        "errors": [{ "message": message, "extensions": { "code": "UNAUTHENTICATED" } }],
    });
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}

/// The value of cookie `name`, if the request carries exactly one.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    gatehouse_common::http::cookie(headers, name).map(str::to_owned)
}

async fn jwks(State(state): State<AppState>) -> Response {
    let ring = state.service.keys().ring();
    let max_age = state.service.settings().jwks_max_age.as_secs();
    (
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::CACHE_CONTROL, format!("public, max-age={max_age}")),
        ],
        ring.jwks_json().to_owned(),
    )
        .into_response()
}

async fn openid_configuration(State(state): State<AppState>) -> Response {
    let issuer = state.service.settings().tokens.issuer.trim_end_matches('/').to_owned();
    let body = serde_json::json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "id_token_signing_alg_values_supported": ["RS256"],
    });
    let max_age = state.service.settings().jwks_max_age.as_secs();
    ([(header::CACHE_CONTROL, format!("public, max-age={max_age}"))], Json(body)).into_response()
}

/// Ready when PostgreSQL and Redis answer.
async fn ready(State(state): State<AppState>) -> Response {
    let db = sqlx::query("SELECT 1").execute(state.service.pool()).await.is_ok();
    let redis = redis::cmd("PING").query_async::<String>(&mut state.redis.clone()).await.is_ok();
    let nats = state.nats.connection_state() == async_nats::connection::State::Connected;
    let status = if db && redis && nats { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(serde_json::json!({ "postgres": db, "redis": redis, "nats": nats }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duplicated_cookie_is_not_trusted() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=1; __Host-r=tok; b=2".parse().unwrap());
        assert_eq!(cookie(&headers, "__Host-r").as_deref(), Some("tok"));
        headers.append(header::COOKIE, "__Host-r=other".parse().unwrap());
        assert_eq!(cookie(&headers, "__Host-r"), None);
    }
}
