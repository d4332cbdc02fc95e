//! The pooled keep-alive HTTP client every subgraph request goes through.

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::supergraph::SubgraphEndpoint;

/// Subgraph responses larger than this are refused rather than buffered.
const MAX_SUBGRAPH_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("the request timed out after {0:?}")]
    Timeout(Duration),
    #[error("the request failed: {0}")]
    Transport(String),
    #[error("the subgraph answered with HTTP status {0}")]
    Status(u16),
}

/// Shared by all requests and all supergraph reloads, so connections are reused.
#[derive(Clone)]
pub struct SubgraphClient {
    inner: Client<HttpConnector, Full<Bytes>>,
}

impl Default for SubgraphClient {
    fn default() -> Self {
        Self::new()
    }
}

impl SubgraphClient {
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_keepalive(Some(Duration::from_secs(60)));
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(512)
            .build(connector);
        Self { inner }
    }

    /// POSTs a GraphQL request body and returns the response body.
    pub async fn post(
        &self,
        endpoint: &SubgraphEndpoint,
        body: Vec<u8>,
        headers: &HeaderMap,
    ) -> Result<Bytes, FetchError> {
        let mut request = Request::post(endpoint.url.clone())
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| FetchError::Transport(e.to_string()))?;
        let request_headers = request.headers_mut();
        for (name, value) in headers {
            request_headers.append(name.clone(), value.clone());
        }
        request_headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        request_headers
            .insert(ACCEPT, HeaderValue::from_static("application/graphql-response+json, application/json;q=0.9"));

        let exchange = async {
            let response = self.inner.request(request).await.map_err(|e| FetchError::Transport(e.to_string()))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_SUBGRAPH_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| FetchError::Transport(e.to_string()))?
                .to_bytes();
            // GraphQL-over-HTTP allows 4xx with a GraphQL body; keep it if it parses.
            let graphql_error_body = status.is_client_error() && body.starts_with(b"{");
            if !(status.is_success() || graphql_error_body) {
                return Err(FetchError::Status(status.as_u16()));
            }
            Ok(body)
        };
        match tokio::time::timeout(endpoint.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout(endpoint.timeout)),
        }
    }
}
