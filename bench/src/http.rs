//! The few HTTP calls the runner makes outside the load itself (readiness,
//! the correctness check, subgraph counters), on a small blocking wrapper
//! around hyper's client; https trusts only the run's own CA.

use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http::{header, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

pub struct HttpClient {
    runtime: tokio::runtime::Runtime,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// A response's status and whole body.
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

impl HttpClient {
    /// A client for http URLs and, with `ca`, for https URLs whose
    /// certificate that CA signed.
    pub fn new(ca: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let mut roots = rustls::RootCertStore::empty();
        if let Some(ca) = ca {
            gatehouse_listener::tls::read_roots(ca, &mut roots)?;
        }
        let tls = rustls::ClientConfig::builder_with_provider(gatehouse_listener::tls::provider())
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector =
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
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
