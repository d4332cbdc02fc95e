//! Reading a whole request body within a byte limit and a deadline.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the request body did not arrive within {} seconds", .0.as_secs())]
    TimedOut(Duration),
    #[error("the request body could not be read")]
    Unreadable,
}

impl BodyError {
    /// The HTTP status that answers it: 413, 408 or 400.
    pub fn status(&self) -> http::StatusCode {
        match self {
            BodyError::TooLarge(_) => http::StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::TimedOut(_) => http::StatusCode::REQUEST_TIMEOUT,
            BodyError::Unreadable => http::StatusCode::BAD_REQUEST,
        }
    }
}

/// Marks the answer to a request whose body was refused as the last on its
/// connection (HTTP/1; HTTP/2 ends only the stream). The unread rest of the
/// body still stands on the connection, so the server closes it after this
/// answer; saying so keeps a client from sending its next request down a
/// connection that is about to close.
pub fn close_after_refused_body<B>(version: http::Version, response: &mut http::Response<B>) {
    if version <= http::Version::HTTP_11 {
        response.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
    }
}

/// Reads `body` whole: at most `limit` bytes, all of them within `timeout`
/// (a client trickling a byte at a time is cut off, not waited for).
pub async fn read_body(body: axum::body::Body, limit: usize, timeout: Duration) -> Result<Bytes, BodyError> {
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Err(_) => Err(BodyError::TimedOut(timeout)),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => Err(BodyError::TooLarge(limit)),
        Ok(Err(_)) => Err(BodyError::Unreadable),
    }
}

/// `router` with every request body read whole before its handler runs: at
/// most `limit` bytes within `timeout`, or a GraphQL-shaped error (413 with
/// `LIMIT_EXCEEDED`, 408 with `REQUEST_TIMEOUT`, 400 with `BAD_REQUEST`).
/// For services whose handlers read bodies with code of their own (the
/// subgraphs' async-graphql extractor), so the same limits hold there.
pub fn buffer_bodies<S: Clone + Send + Sync + 'static>(
    router: axum::Router<S>,
    limit: usize,
    timeout: Duration,
) -> axum::Router<S> {
    router.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| async move {
            let (parts, body) = request.into_parts();
            let version = parts.version;
            match read_body(body, limit, timeout).await {
                Ok(bytes) => next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))).await,
                Err(error) => {
                    let code = match error {
                        BodyError::TooLarge(_) => "LIMIT_EXCEEDED",
                        BodyError::TimedOut(_) => "REQUEST_TIMEOUT",
                        BodyError::Unreadable => "BAD_REQUEST",
                    };
                    let body = format!(r#"{{"errors":[{{"message":"{error}","extensions":{{"code":"{code}"}}}}]}}"#);
                    let mut response = axum::response::Response::new(axum::body::Body::from(body));
                    *response.status_mut() = error.status();
                    response
                        .headers_mut()
                        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
                    close_after_refused_body(version, &mut response);
                    response
                }
            }
        },
    ))
}
