//! HTTP: `/graphql` (the schema), `/health`, `/ready`, `/metrics`.
//!
//! The caller's identity comes from the gateway in the signed
//! [`IDENTITY_HEADER`]: verified here and put in the request data. No header
//! means an anonymous caller; a forged, malformed or stale one refuses the
//! whole request with 401 and `UNAUTHENTICATED`, before any resolver runs.

use async_graphql::ParseRequestError;
use async_graphql_axum::{rejection::GraphQLRejection, GraphQLRequest, GraphQLResponse};
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
    let api = Router::new().route("/graphql", post(graphql));
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
        let now = chrono::Utc::now().timestamp();
        let verified = value
            .to_str()
            .map_err(|_| "identity header is malformed".to_owned())
            .and_then(|header| state.codec.verify(header, now).map_err(|e| e.to_string()));
        match verified {
            Ok(identity) => request = request.data(identity),
            Err(reason) => {
                tracing::warn!(reason, "refused a forwarded identity");
                let message = format!("forwarded identity refused: {reason}");
                return error(StatusCode::UNAUTHORIZED, &message, "UNAUTHENTICATED");
            }
        }
    }
    GraphQLResponse::from(state.schema.execute(request).await).into_response()
}

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
