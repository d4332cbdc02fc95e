//! Subgraphs over TLS and HTTP/2: the configured certificate authorities
//! trusted, HTTP/2 chosen by ALPN or spoken in plain text (h2c) where
//! configured, client certificates presented (and renewed on disk without a
//! restart), and every way that goes wrong ending in a clear error rather
//! than a hang or a panic.

use crate::common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::http::Version;
use common::shop::{accounts_schema, Shop};
use common::TestSubgraph;
use gatehouse_common::testing::{TestCertificate, TestPki};
use gatehouse_gateway::client::{FetchError, SubgraphClient};
use gatehouse_gateway::config::TransportSpec;
use gatehouse_gateway::supergraph::{endpoint_url, FetchMetrics, SubgraphEndpoint};
use gatehouse_gateway::transport::Transport;
use gatehouse_gateway::{Application, GatewayConfig};
use gatehouse_listener::tls::{Tls, TlsFiles};
use gatehouse_listener::{Limits, Server};
use serde_json::Value;

const ME: &str = "{ me { id name } }";

/// A listener serving `cert`, requiring client certificates from `client_ca`
/// when given.
fn tls_server(cert: &TestCertificate, client_ca: Option<PathBuf>) -> Arc<Server> {
    let files = TlsFiles { cert: cert.cert.clone(), key: cert.key.clone(), client_ca };
    Server::with_tls("accounts", "TEST_MAX_CONNECTIONS", Limits::default(), Tls::load(files).expect("the files load"))
}

/// The accounts subgraph over TLS with `cert`.
async fn tls_accounts(cert: &TestCertificate, client_ca: Option<PathBuf>) -> TestSubgraph {
    TestSubgraph::schema_on("accounts", accounts_schema(), tls_server(cert, client_ca), true).await
}

fn error_code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {response}"))
}

/// Copies a certificate and key to `to`, as a certificate manager renews
/// them: each written beside and renamed into place.
fn install(from: &TestCertificate, to: &TestCertificate) {
    for (source, target) in [(&from.key, &to.key), (&from.cert, &to.cert)] {
        let partial = target.with_extension("partial");
        std::fs::copy(source, &partial).unwrap();
        std::fs::rename(&partial, target).unwrap();
    }
}

#[tokio::test]
async fn an_https_subgraph_is_reached_over_http2_trusting_the_configured_ca() {
    let pki = TestPki::new("subgraphs");
    let accounts = tls_accounts(&pki.server("accounts", "accounts"), None).await;
    assert!(accounts.url.starts_with("https://localhost:"), "{}", accounts.url);
    let shop = Shop::start().await;
    let ca = pki.ca_file();
    let gateway = shop.gateway_with(&[&accounts]).config(move |c| c.subgraph_ca_file = Some(ca)).start().await;

    let response = gateway.query(ME).await;
    assert!(response.get("errors").is_none(), "{response}");
    assert_eq!(response["data"]["me"]["id"], "u1");
    assert_eq!(accounts.recorder.versions(), vec![Version::HTTP_2], "ALPN chose HTTP/2");
}

#[tokio::test]
async fn a_subgraph_certificate_from_an_untrusted_ca_fails_clearly_and_tells_the_client_nothing_of_it() {
    let pki = TestPki::new("subgraphs");
    let stranger = TestPki::new("stranger");
    let accounts = tls_accounts(&pki.server("accounts", "accounts"), None).await;
    let shop = Shop::start().await;
    let ca = stranger.ca_file();
    let gateway = shop.gateway_with(&[&accounts]).config(move |c| c.subgraph_ca_file = Some(ca)).start().await;

    let response = gateway.query(ME).await;
    assert_eq!(error_code(&response), "SUBGRAPH_REQUEST_FAILED");
    let message = response["errors"][0]["message"].as_str().unwrap();
    assert!(!message.to_lowercase().contains("certificate"), "TLS details stay in the log: {message}");
    assert_eq!(accounts.recorder.requests(), 0);

    // What the log says: a TLS failure, and which.
    let spec = TransportSpec { ca_files: vec![stranger.ca_file()], ..TransportSpec::default() };
    let client = SubgraphClient::with_transports(vec![Transport::build(&spec).unwrap()]);
    let endpoint = SubgraphEndpoint {
        name: Arc::from("accounts"),
        url: endpoint_url("accounts", &accounts.url).unwrap(),
        timeout: Duration::from_secs(5),
        header_rules: Arc::from([]),
        response_headers: Arc::from([]),
        max_request_bytes: None,
        transport: 0,
        metrics: FetchMetrics::register("accounts"),
    };
    let body = br#"{"query":"{ me { id } }"}"#.to_vec();
    match client.post(&endpoint, body, &http::HeaderMap::new(), false).await {
        Err(FetchError::Tls(reason)) => assert!(reason.contains("UnknownIssuer"), "{reason}"),
        other => panic!("expected a TLS failure, got {:?}", other.map(|reply| reply.body)),
    }
}

#[tokio::test]
async fn a_plain_subgraph_speaks_http2_with_prior_knowledge_only_where_configured() {
    let plain = || Server::new("accounts", "TEST_MAX_CONNECTIONS", Limits::default());
    let h2c = TestSubgraph::schema_on("accounts", accounts_schema(), plain(), false).await;
    let shop = Shop::start().await;
    let gateway = shop.gateway_with(&[&h2c]).config(|c| c.subgraph_h2c = vec!["accounts".into()]).start().await;
    let response = gateway.query(ME).await;
    assert_eq!(response["data"]["me"]["id"], "u1", "{response}");
    assert_eq!(h2c.recorder.versions(), vec![Version::HTTP_2]);

    // The other subgraphs, and the same one without the setting, stay on HTTP/1.1.
    let http1 = TestSubgraph::schema_on("accounts", accounts_schema(), plain(), false).await;
    let gateway = shop.gateway_with(&[&http1]).start().await;
    let response = gateway.query("{ me { id } topProducts(first: 1) { upc } }").await;
    assert!(response.get("errors").is_none(), "{response}");
    assert_eq!(http1.recorder.versions(), vec![Version::HTTP_11]);
}

#[tokio::test]
async fn a_subgraph_requiring_client_certificates_gets_the_configured_one() {
    let pki = TestPki::new("mesh");
    let accounts = tls_accounts(&pki.server("accounts", "accounts"), Some(pki.ca_file())).await;
    let shop = Shop::start().await;

    let ca = pki.ca_file();
    let without = shop.gateway_with(&[&accounts]).config(move |c| c.subgraph_ca_file = Some(ca)).start().await;
    assert_eq!(error_code(&without.query(ME).await), "SUBGRAPH_REQUEST_FAILED");
    assert_eq!(accounts.recorder.requests(), 0, "no request got past the handshake");

    let client = pki.client("gateway", "gateway");
    let ca = pki.ca_file();
    let with = shop
        .gateway_with(&[&accounts])
        .config(move |c| {
            c.subgraph_ca_files = vec![format!("accounts={}", ca.display())];
            c.subgraph_client_certs = vec![format!("accounts={}:{}", client.cert.display(), client.key.display())];
        })
        .start()
        .await;
    let response = with.query("{ me { id } topProducts(first: 1) { upc } }").await;
    assert!(response.get("errors").is_none(), "{response}");
    assert_eq!(accounts.recorder.requests(), 1);
}

#[tokio::test]
async fn a_renewed_client_certificate_is_presented_without_a_restart() {
    let pki = TestPki::new("mesh");
    let stranger = TestPki::new("stranger");
    let accounts = tls_accounts(&pki.server("accounts", "accounts"), Some(pki.ca_file())).await;
    let shop = Shop::start().await;
    // The gateway starts with a certificate the subgraph does not accept.
    let dir = tempfile::tempdir().unwrap();
    let presented = TestCertificate { cert: dir.path().join("client.pem"), key: dir.path().join("client.key") };
    install(&stranger.client("old", "gateway"), &presented);
    let (ca, files) = (pki.ca_file(), presented.clone());
    let gateway = shop
        .gateway_with(&[&accounts])
        .config(move |c| {
            c.subgraph_ca_file = Some(ca);
            c.subgraph_client_cert = Some(files.cert);
            c.subgraph_client_key = Some(files.key);
        })
        .start()
        .await;
    assert_eq!(error_code(&gateway.query(ME).await), "SUBGRAPH_REQUEST_FAILED");

    install(&pki.client("renewed", "gateway"), &presented);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let response = gateway.query(ME).await;
        if response.get("errors").is_none() {
            assert_eq!(response["data"]["me"]["id"], "u1");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the renewed certificate was never presented: {response}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn requests_keep_succeeding_while_the_subgraphs_certificate_is_renewed() {
    let pki = TestPki::new("subgraphs");
    let served = pki.server("accounts", "accounts");
    let accounts = tls_accounts(&served, None).await;
    let shop = Shop::start().await;
    let ca = pki.ca_file();
    let gateway =
        Arc::new(shop.gateway_with(&[&accounts]).config(move |c| c.subgraph_ca_file = Some(ca)).start().await);

    let load = {
        let gateway = gateway.clone();
        tokio::spawn(async move {
            let mut answers = Vec::new();
            for _ in 0..60 {
                answers.push(gateway.query(ME).await);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            answers
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    install(&pki.server("renewed", "accounts renewed"), &served);
    for answer in load.await.unwrap() {
        assert!(answer.get("errors").is_none(), "{answer}");
    }
}

/// Starts a gateway over the shop supergraph with `tweak` applied, for the
/// error it fails to start with.
async fn start_error(tweak: impl FnOnce(&mut GatewayConfig)) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("supergraph.graphql");
    std::fs::write(&path, common::fixture("shop/supergraph.graphql")).unwrap();
    let mut config = GatewayConfig::new(path, "127.0.0.1:0".parse().unwrap());
    config.security = gatehouse_gateway::security::SecurityConfig::off();
    tweak(&mut config);
    match Application::build(config).await {
        Ok(_) => panic!("the gateway started"),
        Err(error) => format!("{error:#}"),
    }
}

#[tokio::test]
async fn subgraph_tls_files_that_do_not_load_stop_the_gateway_with_their_name() {
    let missing = start_error(|c| c.subgraph_ca_file = Some(PathBuf::from("/nonexistent/ca.pem"))).await;
    assert!(missing.contains("GATEWAY_SUBGRAPH_CA_FILE") && missing.contains("/nonexistent/ca.pem"), "{missing}");

    let pki = TestPki::new("mesh");
    let (one, other) = (pki.client("one", "one"), pki.client("other", "other"));
    let mismatched = start_error(move |c| {
        c.subgraph_client_cert = Some(one.cert);
        c.subgraph_client_key = Some(other.key);
    })
    .await;
    assert!(mismatched.contains("does not match"), "{mismatched}");

    let not_pem = pki.ca_file().with_file_name("garbage.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let garbage = start_error(move |c| c.subgraph_ca_files = vec![format!("accounts={}", not_pem.display())]).await;
    assert!(garbage.contains("no PEM certificate"), "{garbage}");

    let malformed = start_error(|c| c.subgraph_client_certs = vec!["accounts=/only/a/cert.pem".into()]).await;
    assert!(malformed.contains("NAME=CERT_PATH:KEY_PATH"), "{malformed}");
}

#[tokio::test]
async fn subgraph_urls_other_than_http_and_https_are_refused_naming_the_subgraph() {
    for url in ["ftp://127.0.0.1/graphql", "localhost:4001/graphql", "/graphql", "https://user:secret@host/graphql"] {
        let url = url.to_string();
        let error = start_error({
            let url = url.clone();
            move |c| c.subgraph_urls = vec![format!("accounts={url}")]
        })
        .await;
        assert!(error.contains("accounts"), "{url}: {error}");
        assert!(!error.contains("secret"), "credentials are not repeated: {error}");
    }
}

#[test]
fn default_ports_are_not_written_out_so_one_host_has_one_key() {
    let canonical = |url: &str| endpoint_url("s", url).unwrap().to_string();
    assert_eq!(canonical("https://api.example:443/graphql"), "https://api.example/graphql");
    assert_eq!(canonical("http://api.example:80/graphql"), "http://api.example/graphql");
    assert_eq!(canonical("http://[::1]:80/graphql"), "http://[::1]/graphql");
    assert_eq!(canonical("https://api.example:80/graphql"), "https://api.example:80/graphql");
    assert_eq!(canonical("http://api.example:4001/graphql?x=1"), "http://api.example:4001/graphql?x=1");
}
