//! HTTP: `/graphql` (the schema; subscriptions over graphql-ws on `GET`
//! with an upgrade), `/health`, `/ready`, `/metrics`.
//!
//! The caller's identity comes from the gateway in the signed
//! [`IDENTITY_HEADER`]: verified here and put in the request data. No header
//! means an anonymous caller; a forged, malformed or stale one refuses the
//! whole request with 401 and `UNAUTHENTICATED`, before any resolver runs.
//! A WebSocket carries it on the upgrade request or, failing that, in its
//! `connection_init` payload (under the header's name); a refused one
//! refuses the upgrade (401) or closes the connection before its ack (with
//! 1002, async-graphql's code for a refused `connection_init`).

use async_graphql::{Data, ParseRequestError};
use async_graphql_axum::{
    rejection::GraphQLRejection, GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket,
};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use sqlx::PgPool;

use gatehouse_common::http::common_routes;
use gatehouse_common::identity::{IdentityCodec, IDENTITY_HEADER};
use gatehouse_common::telemetry::Service;

use crate::schema::UsersSchema;

#[derive(Clone)]
pub struct HttpState {
    pub schema: UsersSchema,
    pub codec: IdentityCodec,
    pub pool: PgPool,
    pub nats: async_nats::Client,
}

pub fn router(state: HttpState, max_body_bytes: usize, body_read_timeout: std::time::Duration) -> Router {
    let api = Router::new().route("/graphql", post(graphql).get(subscribe));
    // async-graphql reads the body as a stream, past axum's own limit.
    let api = gatehouse_listener::buffer_bodies(api, max_body_bytes, body_read_timeout);
    // Counted, timed and traced (continuing the gateway's trace), refusals of
    // the body limit included; the probes and `/metrics` are not.
    let api = gatehouse_common::http::observe_subgraph(api, Service::Users);
    api.route("/ready", get(ready)).merge(common_routes()).with_state(state)
}

async fn graphql(
    State(state): State<HttpState>,
    headers: HeaderMap,
    request: Result<GraphQLRequest, GraphQLRejection>,
) -> Response {
    let mut request = match request {
        Ok(request) => request.into_inner(),
        Err(GraphQLRejection(ParseRequestError::PayloadTooLarge)) => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large", "BAD_REQUEST");
        }
        Err(GraphQLRejection(rejection)) => {
            return error(StatusCode::BAD_REQUEST, &format!("not a GraphQL request: {rejection}"), "BAD_REQUEST");
        }
    };
    if let Some(value) = headers.get(IDENTITY_HEADER) {
        match verify(&state.codec, value.to_str().ok()) {
            Ok(identity) => request = request.data(identity),
            Err(reason) => return refuse_identity(&reason),
        }
    }
    GraphQLResponse::from(state.schema.execute(request).await).into_response()
}

/// Verifies a forwarded identity's text (`None`: not text at all).
fn verify(codec: &IdentityCodec, header: Option<&str>) -> Result<gatehouse_common::identity::Identity, String> {
    let now = chrono::Utc::now().timestamp();
    header
        .ok_or_else(|| "identity header is malformed".to_owned())
        .and_then(|header| codec.verify(header, now).map_err(|e| e.to_string()))
}

fn refuse_identity(reason: &str) -> Response {
    tracing::warn!(reason, "refused a forwarded identity");
    error(StatusCode::UNAUTHORIZED, &format!("forwarded identity refused: {reason}"), "UNAUTHENTICATED")
}

/// Subscriptions over graphql-ws, for the gateway.
async fn subscribe(
    State(state): State<HttpState>,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let mut data = Data::default();
    let on_upgrade = headers.get(IDENTITY_HEADER).is_some();
    if let Some(value) = headers.get(IDENTITY_HEADER) {
        match verify(&state.codec, value.to_str().ok()) {
            Ok(identity) => data.insert(identity),
            Err(reason) => return refuse_identity(&reason),
        }
    }
    let (schema, codec) = (state.schema.clone(), state.codec.clone());
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .max_message_size(MAX_WEBSOCKET_MESSAGE_BYTES)
        .on_upgrade(move |socket| {
            GraphQLWebSocket::new(socket, schema, protocol)
                .with_data(data)
                .on_connection_init(move |payload| async move {
                    let mut data = Data::default();
                    // The upgrade's identity stands; a payload's is read only without one.
                    let carried = payload.get(IDENTITY_HEADER).filter(|_| !on_upgrade);
                    if let Some(value) = carried {
                        let identity = verify(&codec, value.as_str()).map_err(|reason| {
                            tracing::warn!(reason, "refused a forwarded identity");
                            async_graphql::Error::new(format!("forwarded identity refused: {reason}"))
                        })?;
                        data.insert(identity);
                    }
                    Ok(data)
                })
                .serve()
        })
}

/// Largest graphql-ws message accepted from the gateway.
const MAX_WEBSOCKET_MESSAGE_BYTES: usize = 256 * 1024;

/// A request refused before execution, still in the GraphQL response shape.
fn error(status: StatusCode, message: &str, code: &str) -> Response {
    let body = serde_json::json!({
        "data": null,
        "errors": [{ "message": message, "extensions": { "code": code } }],
    });
    (status, Json(body)).into_response()
}

/// Ready when the database answers and NATS is connected.
async fn ready(State(state): State<HttpState>) -> Response {
    let database = sqlx::query("SELECT 1").execute(&state.pool).await.is_ok();
    let nats = state.nats.connection_state() == async_nats::connection::State::Connected;
    let status = if database && nats { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(serde_json::json!({ "database": database, "nats": nats }))).into_response()
}
