//! How the gateway reaches subgraphs: plain HTTP or TLS, HTTP/1.1 or
//! HTTP/2, whom it trusts and what certificate it presents. One connector is
//! built per distinct [`TransportSpec`] when the gateway starts; subgraphs
//! with the same settings share it.
//!
//! Over TLS the protocol is chosen by ALPN (HTTP/2 when the subgraph offers
//! it); plain-text connections speak HTTP/1.1 unless the subgraph is listed
//! for h2c, HTTP/2 with prior knowledge. Trusted are the system's
//! certificate authorities (`SSL_CERT_FILE`/`SSL_CERT_DIR` honoured) and the
//! configured CA files; a client certificate, when configured, is read again
//! whenever its files change, so renewing it needs no restart.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use gatehouse_listener::tls::{self, KeyPair};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::pki_types::CertificateDer;

use crate::config::TransportSpec;

/// A connector for `http` and `https` subgraph URLs.
pub type Connector = HttpsConnector<HttpConnector>;

/// One way of reaching subgraphs, ready to open connections.
#[derive(Clone)]
pub struct Transport {
    pub connector: Connector,
    /// Whether every connection speaks HTTP/2 (h2c on plain text).
    pub http2_only: bool,
    /// The client certificate presented, to be watched for renewal.
    pub client_pair: Option<Arc<KeyPair>>,
    /// The same trust and client certificate for WebSocket connections
    /// (subscriptions), which speak HTTP/1.1.
    pub websocket_tls: Arc<rustls::ClientConfig>,
}

/// The system's certificate authorities, read once per process: reading them
/// means parsing a few hundred kilobytes of PEM.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| match rustls_native_certs::load_native_certs() {
        Ok(roots) => roots,
        Err(error) => {
            tracing::warn!(%error, "the system's certificate authorities could not be read; https subgraphs need GATEWAY_SUBGRAPH_CA_FILE");
            Vec::new()
        }
    })
}

/// A plain connector: TCP without delay, kept alive, connecting within 5 s.
fn tcp() -> HttpConnector {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_keepalive(Some(Duration::from_secs(60)));
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    // The https connector wraps it and needs `https` URLs passed through.
    connector.enforce_http(false);
    connector
}

impl Transport {
    /// Builds the transport `spec` describes, reading its files; a file that
    /// is missing or holds no usable certificate or key is an error naming it.
    pub fn build(spec: &TransportSpec) -> anyhow::Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        // Certificates the platform ships that webpki cannot parse are
        // skipped, as every TLS client does.
        let (_added, _skipped) = roots.add_parsable_certificates(system_roots().iter().cloned());
        for path in &spec.ca_files {
            tls::read_roots(path, &mut roots).context("a subgraph CA file does not load")?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(tls::provider())
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)
            .expect("the ring provider supports the default protocol versions")
            .with_root_certificates(roots);
        let (config, client_pair) = match &spec.client_cert {
            None => (builder.with_no_client_auth(), None),
            Some((cert, key)) => {
                let pair = load_pair(cert, key)?;
                (builder.with_client_cert_resolver(pair.clone()), Some(pair))
            }
        };
        let mut websocket_tls = config.clone();
        websocket_tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(tcp());
        Ok(Self { connector, http2_only: spec.h2c, client_pair, websocket_tls: Arc::new(websocket_tls) })
    }

    /// Plain HTTP/1.1 and TLS trusting the system's authorities only.
    pub fn system() -> Self {
        Self::build(&TransportSpec::default()).expect("the default transport reads no files")
    }
}

fn load_pair(cert: &Path, key: &Path) -> anyhow::Result<Arc<KeyPair>> {
    KeyPair::load(cert, key).context("a subgraph client certificate does not load")
}

/// Describes an error with every cause it wraps: hyper's own message for a
/// failed connection is only "client error (Connect)".
pub use gatehouse_common::telemetry::describe_error as describe;

/// Whether the error, or a cause of it, is a TLS failure (an untrusted or
/// expired certificate, a refused client certificate, a handshake that broke
/// off), and which.
pub fn tls_failure(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        // An `io::Error` wrapping another error answers that error's source
        // as its own, skipping the wrapped error (the connector wraps the
        // handshake's `io::Error`, which wraps the rustls error): step into it.
        cause = match current.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => current.source(),
        };
    }
    None
}
