//! The few HTTP calls the runner makes outside the load itself (readiness,
//! the correctness check, subgraph counters), on a small blocking wrapper
//! around hyper's client.

use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http::{header, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

pub struct HttpClient {
    runtime: tokio::runtime::Runtime,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// A response's status and whole body.
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

impl HttpClient {
    pub fn new() -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let client = Client::builder(TokioExecutor::new()).build_http();
        Ok(HttpClient { runtime, client })
    }

    /// POSTs a JSON body, with an optional `authorization` header.
    pub fn post_json(&self, url: &str, body: &str, authorization: Option<&str>) -> anyhow::Result<Answer> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json");
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        let request = request.body(Full::new(Bytes::from(body.to_owned())))?;
        self.send(request)
    }

    pub fn get(&self, url: &str) -> anyhow::Result<Answer> {
        let request = Request::builder().method(Method::GET).uri(url).body(Full::new(Bytes::new()))?;
        self.send(request)
    }

    fn send(&self, request: Request<Full<Bytes>>) -> anyhow::Result<Answer> {
        self.runtime.block_on(async {
            let response = tokio::time::timeout(Duration::from_secs(30), self.client.request(request))
                .await
                .context("no answer within 30 s")??;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await?.to_bytes();
            Ok(Answer { status, body })
        })
    }
}
