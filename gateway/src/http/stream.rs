//! Subscriptions over plain HTTP responses that stay open:
//!
//! - GraphQL over Server-Sent Events, distinct-connections mode
//!   (`Accept: text/event-stream`, GET or POST): each result is an
//!   `event: next`, the end an `event: complete`; a comment line is the
//!   heartbeat.
//! - Multipart HTTP subscriptions as Apollo clients send them
//!   (`Accept: multipart/mixed;subscriptionSpec="1.0"`): each result is a
//!   part `{"payload":{..}}`, an ending with an error is a part with
//!   `"payload":null` and top-level `errors`, the heartbeat is a part `{}`.
//!
//! The request is admitted as any other (CSRF, token, rate limit) and
//! refused the same way, with a JSON body, before the stream starts. A
//! query or mutation sent this way is answered as a stream of one result.
//! A client that stops reading stops the stream being polled: its
//! subscription falls behind and is ended (`SLOW_CONSUMER`) when next polled,
//! and what waits for it is bounded by `GATEWAY_SUBSCRIPTION_BUFFER`.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use std::convert::Infallible;

use super::{admit, answer_response, error_response, traceparent, MediaType};
use crate::pipeline::project::write_errors;
use crate::pipeline::{Gateway, GraphQLRequest};
use crate::subscription::{Item, Live, Subscribed, Subscriber};

/// A streaming format the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Streaming {
    ServerSentEvents,
    Multipart,
}

impl Streaming {
    /// The streaming format `Accept` asks for, if any; listed first wins.
    pub(super) fn negotiate(headers: &HeaderMap) -> Option<Self> {
        headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).find_map(
            |media| {
                let mut parts = media.split(';').map(str::trim);
                let essence = parts.next().unwrap_or("").to_ascii_lowercase();
                match essence.as_str() {
                    "text/event-stream" => Some(Self::ServerSentEvents),
                    "multipart/mixed" => {
                        let subscriptions = parts.any(|p| {
                            p.split_once('=').is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("subscriptionspec"))
                        });
                        subscriptions.then_some(Self::Multipart)
                    }
                    _ => None,
                }
            },
        )
    }

    fn content_type(self) -> HeaderValue {
        match self {
            Self::ServerSentEvents => HeaderValue::from_static("text/event-stream; charset=utf-8"),
            Self::Multipart => {
                HeaderValue::from_static("multipart/mixed; boundary=\"graphql\"; subscriptionSpec=\"1.0\"")
            }
        }
    }

    fn next(self, body: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(body.len() + 64);
        match self {
            Self::ServerSentEvents => {
                // A JSON text has no line breaks outside strings, where they
                // are escaped: one `data:` line holds it.
                out.extend_from_slice(b"event: next\ndata: ");
                out.extend_from_slice(body);
                out.extend_from_slice(b"\n\n");
            }
            Self::Multipart => {
                out.extend_from_slice(b"\r\n--graphql\r\ncontent-type: application/json; charset=utf-8\r\n\r\n");
                out.extend_from_slice(b"{\"payload\":");
                out.extend_from_slice(body);
                out.push(b'}');
            }
        }
        Bytes::from(out)
    }

    fn ended(self, errors: &[u8]) -> Bytes {
        match self {
            Self::ServerSentEvents => self.next(errors),
            Self::Multipart => {
                // `{"errors":[..]}` becomes `{"payload":null,"errors":[..]}`.
                let mut out = Vec::with_capacity(errors.len() + 96);
                out.extend_from_slice(b"\r\n--graphql\r\ncontent-type: application/json; charset=utf-8\r\n\r\n");
                out.extend_from_slice(b"{\"payload\":null,");
                out.extend_from_slice(errors.strip_prefix(b"{").unwrap_or(errors));
                Bytes::from(out)
            }
        }
    }

    fn heartbeat(self) -> Bytes {
        match self {
            Self::ServerSentEvents => Bytes::from_static(b":\n\n"),
            Self::Multipart => {
                Bytes::from_static(b"\r\n--graphql\r\ncontent-type: application/json; charset=utf-8\r\n\r\n{}")
            }
        }
    }

    fn complete(self) -> Bytes {
        match self {
            Self::ServerSentEvents => Bytes::from_static(b"event: complete\ndata:\n\n"),
            Self::Multipart => Bytes::from_static(b"\r\n--graphql--\r\n"),
        }
    }
}

/// Answers a request that accepts a streaming format. A subscription is
/// streamed; any other operation is answered as plain JSON when `plain` says
/// the client accepts that too (urql and Apollo Client list the streaming
/// formats beside JSON on every request), and as a stream of one otherwise.
pub(super) async fn respond(
    gateway: &Arc<Gateway>,
    request: GraphQLRequest,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    is_get: bool,
    format: Streaming,
    plain: Option<MediaType>,
) -> Response {
    // Refusals before the stream starts are ordinary JSON responses.
    let media = plain.unwrap_or(MediaType::Json);
    let admitted = match admit(gateway, headers, peer, media).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let meta = admitted.meta(headers, is_get, traceparent(headers));
    let caller = admitted.subscription_caller(peer);
    // The token's expiry cannot move here: the stream ends with it.
    let expires_at = admitted.expires_at.map(|at| tokio::sync::watch::channel(at).1);
    let live = match gateway.subscribe(request, meta, Subscriber { caller, expires_at }).await {
        Ok(Subscribed::Answer(answer)) if plain.is_some() => return answer_response(answer, media),
        Ok(subscribed) => subscribed.into_live(),
        Err(error) => return error_response(error, media),
    };
    let heartbeat = gateway.subscriptions.config.heartbeat();
    let beats = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    let body = futures::stream::unfold(Body { live, beats, format, ending: Ending::Open }, Body::next);
    let mut response = Response::new(axum::body::Body::from_stream(body));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, format.content_type());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies that buffer (nginx) pass the stream through at once.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// Where a streamed body is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ending {
    Open,
    /// The last result was written; the closing marker is next.
    Closing,
    Done,
}

/// A streamed response body: results, heartbeats between them, the end.
struct Body {
    live: Live,
    beats: tokio::time::Interval,
    format: Streaming,
    ending: Ending,
}

impl Body {
    async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Self)> {
        let format = self.format;
        match self.ending {
            Ending::Done => return None,
            Ending::Closing => {
                self.ending = Ending::Done;
                return Some((Ok(format.complete()), self));
            }
            Ending::Open => {}
        }
        let chunk = tokio::select! {
            item = self.live.next() => match item {
                Some(Item::Next(body)) => format.next(&body),
                Some(Item::Ended(error)) => {
                    self.ending = Ending::Closing;
                    format.ended(&write_errors(&[error]))
                }
                None => {
                    self.ending = Ending::Done;
                    format.complete()
                }
            },
            _ = self.beats.tick() => format.heartbeat(),
        };
        Some((Ok(chunk), self))
    }
}
