//! TLS on a listener against real clients: HTTP/2 by ALPN, h2c with prior
//! knowledge, a certificate renewed on disk while connections stay open,
//! client certificates required, and files that do not load.

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use gatehouse_common::testing::TestPki;
use gatehouse_listener::tls::{Tls, TlsFiles};
use gatehouse_listener::{serve, Limits, Server};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

fn app() -> Router {
    Router::new().route("/", get(|| async { "ok" }))
}

struct Running {
    address: std::net::SocketAddr,
    _shutdown: tokio_util::sync::DropGuard,
}

async fn start(server: Arc<Server>) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(serve(server, listener, app(), shutdown.clone()));
    Running { address, _shutdown: shutdown.drop_guard() }
}

fn tls_server(files: TlsFiles) -> Arc<Server> {
    Server::with_tls("test", "TEST_MAX_CONNECTIONS", Limits::default(), Tls::load(files).expect("the files load"))
}

/// A rustls client configuration trusting `ca` (and presenting `client`).
fn client_config(ca: &std::path::Path, client: Option<(&std::path::Path, &std::path::Path)>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in gatehouse_listener::tls::read_certificates(ca).unwrap() {
        roots.add(certificate).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(gatehouse_listener::tls::provider())
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)
        .unwrap()
        .with_root_certificates(roots);
    match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                gatehouse_listener::tls::read_certificates(cert).unwrap(),
                gatehouse_listener::tls::read_private_key(key).unwrap(),
            )
            .unwrap(),
    }
}

/// A hyper client over TLS that offers HTTP/2 and HTTP/1.1.
fn https_client(config: rustls::ClientConfig) -> Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .enable_http2()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}

/// Opens a TLS connection and returns the certificate the server presented.
async fn served_certificate(address: std::net::SocketAddr, config: rustls::ClientConfig) -> CertificateDer<'static> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let stream = TcpStream::connect(address).await.unwrap();
    let tls = connector.connect(ServerName::try_from("localhost").unwrap(), stream).await.expect("handshake");
    tls.get_ref().1.peer_certificates().unwrap()[0].clone().into_owned()
}

#[tokio::test]
async fn https_answers_over_http2_by_alpn_and_http1_for_clients_without_it() {
    let pki = TestPki::new("alpn");
    let cert = pki.server("server", "alpn server");
    let running = start(tls_server(TlsFiles { cert: cert.cert, key: cert.key, client_ca: None })).await;
    let url: http::Uri = format!("https://localhost:{}/", running.address.port()).parse().unwrap();

    let both = https_client(client_config(&pki.ca_file(), None));
    let response = both.get(url.clone()).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "ok");

    // reqwest (HTTP/1.1 only here) trusting the CA gets the same answer.
    let reqwest = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let answer = reqwest.get(url.to_string()).send().await.unwrap();
    assert_eq!(answer.version(), http::Version::HTTP_11);
    assert_eq!(answer.text().await.unwrap(), "ok");

    // A client that does not trust the CA is refused at the handshake.
    let stranger = https_client(client_config(&TestPki::new("stranger").ca_file(), None));
    assert!(stranger.get(url).await.is_err());
}

#[tokio::test]
async fn plain_connections_may_speak_http2_with_prior_knowledge() {
    let running = start(Server::new("test", "TEST_MAX_CONNECTIONS", Limits::default())).await;
    let h2c: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).http2_only(true).build(HttpConnector::new());
    let response = h2c.get(format!("http://127.0.0.1:{}/", running.address.port()).parse().unwrap()).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "ok");
}

#[tokio::test]
async fn a_certificate_renewed_on_disk_is_served_without_dropping_connections() {
    let pki = TestPki::new("renewal");
    let first = pki.server("server", "first");
    let running =
        start(tls_server(TlsFiles { cert: first.cert.clone(), key: first.key.clone(), client_ca: None })).await;
    let config = client_config(&pki.ca_file(), None);
    let before = served_certificate(running.address, config.clone()).await;

    // A connection opened before the renewal, kept alive across it.
    let kept = https_client(config.clone());
    let url: http::Uri = format!("https://localhost:{}/", running.address.port()).parse().unwrap();
    assert_eq!(kept.get(url.clone()).await.unwrap().status(), 200);

    // The certificate manager writes a new certificate and key in place.
    std::thread::sleep(Duration::from_millis(1100)); // a new modification time on coarse clocks
    pki.server("server", "second");
    let mut renewed = None;
    for _ in 0..100 {
        let now = served_certificate(running.address, config.clone()).await;
        if now != before {
            renewed = Some(now);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(renewed.is_some(), "the renewed certificate was never served");
    // The connection from before still answers (over HTTP/2 it is the same one).
    for _ in 0..3 {
        assert_eq!(kept.get(url.clone()).await.unwrap().status(), 200);
    }
}

#[tokio::test]
async fn client_certificates_can_be_required() {
    let pki = TestPki::new("mutual");
    let server_cert = pki.server("server", "mutual server");
    let clients = TestPki::new("clients");
    let good = clients.client("good", "good client");
    let running = start(tls_server(TlsFiles {
        cert: server_cert.cert,
        key: server_cert.key,
        client_ca: Some(clients.ca_file()),
    }))
    .await;
    let url: http::Uri = format!("https://localhost:{}/", running.address.port()).parse().unwrap();

    let with = https_client(client_config(&pki.ca_file(), Some((&good.cert, &good.key))));
    assert_eq!(with.get(url.clone()).await.unwrap().status(), 200);
    let without = https_client(client_config(&pki.ca_file(), None));
    assert!(without.get(url.clone()).await.is_err(), "no client certificate, no answer");
    // A client certificate from another CA is refused too.
    let foreign = pki.client("foreign", "foreign client");
    let other = https_client(client_config(&pki.ca_file(), Some((&foreign.cert, &foreign.key))));
    assert!(other.get(url).await.is_err());
}

#[test]
fn files_that_do_not_make_a_certificate_are_named() {
    let pki = TestPki::new("broken");
    let one = pki.server("one", "one");
    let two = pki.server("two", "two");
    let mismatched = Tls::load(TlsFiles { cert: one.cert.clone(), key: two.key.clone(), client_ca: None }).unwrap_err();
    assert!(mismatched.to_string().contains("does not match"), "{mismatched}");
    let missing = Tls::load(TlsFiles { cert: "/nonexistent/cert.pem".into(), key: one.key.clone(), client_ca: None })
        .unwrap_err();
    assert!(missing.to_string().starts_with("cannot read /nonexistent/cert.pem"), "{missing}");
    let not_pem = Tls::load(TlsFiles { cert: one.key.clone(), key: one.key, client_ca: None }).unwrap_err();
    assert!(not_pem.to_string().contains("holds no PEM certificate"), "{not_pem}");
}

/// What a stranger may send a TLS port instead of a handshake: plain HTTP,
/// bytes that start like a TLS record and go nowhere, or nothing. Each
/// connection is closed (the silent one within the head timeout), and a
/// real client is served all along.
#[tokio::test]
async fn plain_http_garbage_and_silence_on_a_tls_port_are_closed_and_clients_still_served() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let pki = TestPki::new("hostile");
    let cert = pki.server("server", "hostile server");
    let limits = Limits { header_read_timeout: Duration::from_millis(300), ..Limits::default() };
    let tls = Tls::load(TlsFiles { cert: cert.cert, key: cert.key, client_ca: None }).unwrap();
    let running = start(Server::with_tls("test", "TEST_MAX_CONNECTIONS", limits, tls)).await;
    let url: http::Uri = format!("https://localhost:{}/", running.address.port()).parse().unwrap();
    let client = https_client(client_config(&pki.ca_file(), None));

    let mut record_header_then_junk = vec![0x16, 0x03, 0x01, 0x40, 0x00];
    record_header_then_junk.extend(std::iter::repeat_n(0xAB, 64));
    for sent in [&b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"[..], &record_header_then_junk[..], &[][..]] {
        let mut stream = TcpStream::connect(running.address).await.unwrap();
        stream.write_all(sent).await.unwrap();
        let mut answer = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut answer)).await;
        assert!(closed.is_ok(), "the connection is closed, not held ({} bytes sent)", sent.len());
        // At most a TLS alert comes back, never an HTTP answer.
        assert!(!answer.starts_with(b"HTTP/"), "{:?}", String::from_utf8_lossy(&answer));
        let response = client.get(url.clone()).await.expect("a real client is still served");
        assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "ok");
    }
}
