//! TLS on a listener: a certificate and key read from files and read again
//! when they change (a certificate renewed on disk is served to the next
//! handshake; connections already open keep theirs), HTTP/2 offered by ALPN,
//! and, optionally, client certificates required (mutual TLS).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::client::ResolvesClientCert;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;
use tokio_util::sync::CancellationToken;

/// Where a listener's certificate and key are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM: the certificate, then its chain.
    pub cert: PathBuf,
    /// PEM: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM: certificate authorities whose client certificates are required,
    /// when set (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// Why a certificate, key or CA could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no PEM private key")]
    NoKey { path: PathBuf },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// The ring provider: the one every TLS user in this binary links.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads every certificate of a PEM file.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let text = std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_owned(), source })?;
    let certificates = rustls_pemfile::certs(&mut text.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Read { path: path.to_owned(), source })?;
    if certificates.is_empty() {
        return Err(TlsError::NoCertificate { path: path.to_owned() });
    }
    Ok(certificates)
}

/// Reads the private key of a PEM file.
pub fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let text = std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_owned(), source })?;
    rustls_pemfile::private_key(&mut text.as_slice())
        .map_err(|source| TlsError::Read { path: path.to_owned(), source })?
        .ok_or_else(|| TlsError::NoKey { path: path.to_owned() })
}

/// A certificate and its key, checked to belong together.
fn certified_key(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = read_certificates(cert)?;
    let private = read_private_key(key)?;
    let invalid = |reason: String| TlsError::Invalid { path: key.to_owned(), reason };
    let signing = provider().key_provider.load_private_key(private).map_err(|e| invalid(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| invalid(format!("the key does not match the certificate: {e}")))?;
    Ok(Arc::new(certified))
}

/// A certificate and key read from files, and read again by
/// [`KeyPair::watch`] when they change: what a listener serves, or what the
/// gateway presents to subgraphs that require client certificates. A renewed
/// certificate is used from the next handshake on; connections already open
/// keep theirs.
#[derive(Debug)]
pub struct KeyPair {
    cert: PathBuf,
    key: PathBuf,
    current: ArcSwap<CertifiedKey>,
}

/// How often the files are looked at for a change.
const WATCH_EVERY: Duration = Duration::from_secs(2);

impl KeyPair {
    /// Reads the pair, failing with a clear error if the files do not hold
    /// a certificate and its matching key.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Self>, TlsError> {
        let current = ArcSwap::new(certified_key(cert, key)?);
        Ok(Arc::new(Self { cert: cert.to_owned(), key: key.to_owned(), current }))
    }

    /// Reads the files again now; on failure the pair in use stays and the
    /// error says why.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.current.store(certified_key(&self.cert, &self.key)?);
        Ok(())
    }

    /// Reads the pair again whenever one of its files changes, until `stop`.
    /// A pair that does not load (a certificate written before its key, say)
    /// is logged and retried on the next change; the last good one stays.
    pub async fn watch(self: Arc<Self>, service: &'static str, stop: CancellationToken) {
        let stamp = |pair: &KeyPair| -> Vec<Option<SystemTime>> {
            [&pair.cert, &pair.key]
                .into_iter()
                .map(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok())
                .collect()
        };
        let mut seen = stamp(&self);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(WATCH_EVERY) => {}
            }
            let now = stamp(&self);
            if now == seen {
                continue;
            }
            seen = now;
            match self.reload() {
                Ok(()) => tracing::info!(service, cert = %self.cert.display(), "TLS certificate reloaded"),
                Err(error) => {
                    tracing::warn!(service, %error, "the changed TLS certificate or key does not load; keeping the previous one")
                }
            }
        }
    }
}

impl ResolvesServerCert for KeyPair {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

impl ResolvesClientCert for KeyPair {
    fn resolve(&self, _root_hint_subjects: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Certificate authorities from a PEM file, as a root store.
pub fn read_roots(path: &Path, roots: &mut rustls::RootCertStore) -> Result<(), TlsError> {
    for certificate in read_certificates(path)? {
        roots.add(certificate).map_err(|e| TlsError::Invalid { path: path.to_owned(), reason: e.to_string() })?;
    }
    Ok(())
}

/// A listener's TLS: the acceptor, and the certificate it serves, which
/// [`Tls::watch`] keeps in step with the files.
#[derive(Clone)]
pub struct Tls {
    files: TlsFiles,
    pair: Arc<KeyPair>,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("files", &self.files).finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads the files (and fails with a clear error if they do not make a
    /// certificate and a matching key); offers HTTP/2 and HTTP/1.1 by ALPN.
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let pair = KeyPair::load(&files.cert, &files.key)?;
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)
            .expect("the ring provider supports the default protocol versions");
        let builder = match &files.client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let mut roots = rustls::RootCertStore::empty();
                read_roots(path, &mut roots)?;
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                    .build()
                    .map_err(|e| TlsError::Invalid { path: path.clone(), reason: e.to_string() })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_cert_resolver(pair.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        Ok(Self { files, pair, acceptor })
    }

    pub(crate) fn acceptor(&self) -> &tokio_rustls::TlsAcceptor {
        &self.acceptor
    }

    /// Reads the certificate and key again now; on failure the one served
    /// stays and the error says why.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.pair.reload()
    }

    /// Reads the certificate and key again whenever one of them changes,
    /// until `stop` (the client CA is read once, at start).
    pub async fn watch(self, service: &'static str, stop: CancellationToken) {
        self.pair.clone().watch(service, stop).await
    }
}
