//! Helpers for the services' tests (feature `test-support`): fault tests that
//! stop a broker start their own `nats-server` or `redis-server`, never the
//! shared one (a private PostgreSQL is `gatehouse_store::testing`); TLS tests
//! make their certificates with [`TestPki`]; tests of outside identity
//! providers start a real OpenID provider with [`OpenIdProvider`].

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A loopback port nothing listens on at the moment of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Asks `check` every 50 ms until it holds; panics, naming `what`, once
/// `limit` has passed.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "{what} did not happen within {} s", limit.as_secs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A private nats-server with JetStream on a free port and a store of its
/// own; killed (and its store removed) on drop.
pub struct PrivateNats {
    pub port: u16,
    store: tempfile::TempDir,
    child: Option<Child>,
    /// Further `nats-server` arguments (credentials, say).
    extra: Vec<String>,
}

impl PrivateNats {
    /// Starts one and waits until JetStream answers.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts one with further arguments, such as `["--user", "u", "--pass", "p"]`.
    pub async fn start_with(extra: &[&str]) -> Self {
        let port = free_port();
        let store = tempfile::tempdir().expect("a temporary store");
        let extra = extra.iter().map(|s| s.to_string()).collect();
        let mut server = Self { port, store, child: None, extra };
        server.restart().await;
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn log_path(&self) -> PathBuf {
        self.store.path().with_extension("log")
    }

    /// The server's log, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills it and starts it again with an empty store, as after losing its disk.
    pub async fn restart_empty(&mut self) {
        self.kill();
        for entry in std::fs::read_dir(self.store.path()).into_iter().flatten().flatten() {
            let _ = std::fs::remove_dir_all(entry.path()).or_else(|_| std::fs::remove_file(entry.path()));
        }
        self.restart().await;
    }

    /// Starts it (again) on the same port and store, and waits until
    /// JetStream answers (it has recovered its store by then).
    pub async fn restart(&mut self) {
        self.kill();
        let binary = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "/usr/sbin/nats-server".into());
        let log = std::fs::File::create(self.log_path()).map(Stdio::from).unwrap_or(Stdio::null());
        let child = Command::new(binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(self.store.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let start = Instant::now();
        let credentials = self
            .extra
            .iter()
            .position(|a| a == "--user")
            .map(|at| (self.extra[at + 1].clone(), self.extra.get(at + 3).cloned().unwrap_or_default()));
        loop {
            let options = match &credentials {
                Some((user, password)) => {
                    async_nats::ConnectOptions::with_user_and_password(user.clone(), password.clone())
                }
                None => async_nats::ConnectOptions::new(),
            };
            if let Ok(client) = options.connect(self.url()).await {
                if client.request("$JS.API.INFO", "".into()).await.is_ok_and(|reply| !reply.payload.is_empty()) {
                    return;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the private nats-server never answered:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(self.log_path());
    }
}

/// A private redis-server on a free port, without persistence; killed on drop.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts one and waits until it answers `PING`.
    pub async fn start() -> Self {
        let port = free_port();
        let mut server = Self { port, child: None };
        server.restart().await;
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server at once (SIGKILL), as a crash would; what it held is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again, empty) on the same port, and waits until it answers.
    pub async fn restart(&mut self) {
        self.kill();
        let binary = std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(binary)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        self.child = Some(child);
        let start = Instant::now();
        loop {
            if let Ok(client) = redis::Client::open(self.url()) {
                if let Ok(mut connection) = client.get_multiplexed_async_connection().await {
                    if redis::cmd("PING").query_async::<String>(&mut connection).await.is_ok() {
                        return;
                    }
                }
            }
            assert!(start.elapsed() < Duration::from_secs(30), "the private redis-server never answered");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A certificate authority made for one test, and the certificates it signs,
/// written as PEM files into a temporary folder.
pub struct TestPki {
    dir: tempfile::TempDir,
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
    name: String,
}

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct TestCertificate {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestPki {
    /// A CA named `name`.
    pub fn new(name: &str) -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, format!("{name} test CA"));
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let ca_key = rcgen::KeyPair::generate().expect("a CA key");
        let ca = params.self_signed(&ca_key).expect("a self-signed CA");
        let pki = Self { dir: tempfile::tempdir().expect("a folder for the PKI"), ca, ca_key, name: name.to_owned() };
        std::fs::write(pki.ca_file(), pki.ca.pem()).expect("the CA file");
        pki
    }

    /// The CA certificate as a PEM file (what a client or server trusts).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join(format!("{}-ca.pem", self.name))
    }

    /// The CA certificate's PEM text.
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// A server certificate for `localhost` and 127.0.0.1, written as
    /// `<file>.pem` and `<file>.key`; `label` goes into its common name.
    pub fn server(&self, file: &str, label: &str) -> TestCertificate {
        self.issue(file, label, &["localhost", "127.0.0.1"], rcgen::ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate (for mutual TLS).
    pub fn client(&self, file: &str, label: &str) -> TestCertificate {
        self.issue(file, label, &[], rcgen::ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(&self, file: &str, label: &str, names: &[&str], usage: rcgen::ExtendedKeyUsagePurpose) -> TestCertificate {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).expect("certificate parameters");
        params.distinguished_name.push(rcgen::DnType::CommonName, label);
        params.extended_key_usages = vec![usage];
        let key = rcgen::KeyPair::generate().expect("a key");
        let certificate = params.signed_by(&key, &self.ca, &self.ca_key).expect("a signed certificate");
        let written = TestCertificate {
            cert: self.dir.path().join(format!("{file}.pem")),
            key: self.dir.path().join(format!("{file}.key")),
        };
        // Written to a side file and renamed, as a certificate manager would,
        // so a reader never sees half a file.
        for (path, text) in [(&written.key, key.serialize_pem()), (&written.cert, certificate.pem())] {
            let partial = path.with_extension("partial");
            std::fs::write(&partial, text).expect("a certificate file");
            std::fs::rename(&partial, path).expect("the certificate file in place");
        }
        written
    }
}

/// A real OpenID provider (panva's certified `oidc-provider`, from
/// `tests/oidc-provider` at the workspace root) on a free local port; it
/// exits when this is dropped (its standard input closes). The script says
/// which clients and people it has.
pub struct OpenIdProvider {
    pub issuer: String,
    _process: tokio::process::Child,
}

impl OpenIdProvider {
    /// Where the provider's Node project is.
    pub fn dir() -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/oidc-provider"))
    }

    /// Installs the project's locked packages once per process, when missing.
    fn install_once() {
        static INSTALLED: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
        let mut installed = INSTALLED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if *installed || Self::dir().join("node_modules/oidc-provider").is_dir() {
            *installed = true;
            return;
        }
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(Self::dir())
            .status()
            .expect("npm runs (Node.js is on every machine of this project)");
        assert!(status.success(), "npm ci in tests/oidc-provider failed");
        *installed = true;
    }

    /// Starts one with these environment settings (`OIDC_*`, see the script).
    pub async fn start(env: &[(&str, &str)]) -> Self {
        use tokio::io::AsyncBufReadExt;
        tokio::task::spawn_blocking(Self::install_once).await.expect("the install does not panic");
        let mut command = tokio::process::Command::new("node");
        command.arg(Self::dir().join("provider.mjs")).envs(env.iter().copied());
        let mut process = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // It warns about the Node.js version at every start.
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let stdout = process.stdout.take().expect("piped");
        let mut reader = tokio::io::BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line).await.expect("the provider writes its issuer");
        // It prints notices now and then; a closed pipe would kill it (EPIPE).
        tokio::spawn(async move { tokio::io::copy(&mut reader, &mut tokio::io::sink()).await });
        let started: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("the provider said {line:?}"));
        let issuer = started["issuer"].as_str().expect("an issuer").to_owned();
        Self { issuer, _process: process }
    }
}
