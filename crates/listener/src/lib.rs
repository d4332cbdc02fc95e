//! How every Gatehouse service accepts clients.
//!
//! A [`Server`] owns the rules one listener applies to the connections it
//! accepts, so that a stranger's socket costs a bounded amount of memory for
//! a bounded time:
//!
//! - at most [`Limits::max_connections`] open at once; past that, accepting
//!   pauses (the kernel's backlog holds newcomers) and a warning names the
//!   service and the setting;
//! - a request head must arrive within [`Limits::header_read_timeout`] of its
//!   first byte, or the connection is closed (half-sent headers);
//! - a connection with no request in flight for [`Limits::idle_timeout`] is
//!   closed gracefully;
//! - request bodies are read with [`read_body`], whole within
//!   [`Limits::body_read_timeout`] and under a byte limit;
//! - on shutdown every connection finishes its in-flight requests and
//!   closes, for at most [`Limits::shutdown_timeout`];
//! - with [`tls::Tls`], connections are TLS (HTTP/2 or HTTP/1.1 by ALPN),
//!   the handshake bounded like a request head; plain connections may speak
//!   HTTP/2 with prior knowledge (h2c) or HTTP/1.1.
//!
//! The gateway accepts on one thread and serves each connection on one of
//! its server threads ([`Accepted::detach`], [`Detached::attach`]); the
//! subgraphs accept and serve on one runtime ([`serve`]).

mod activity;
mod args;
mod body;
pub mod tls;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use activity::{Activity, Tracked, Verdict, Watched};
pub use body::{buffer_bodies, close_after_refused_body, read_body, BodyError};

/// The limits one listener applies. [`Limits::default`] is what the services
/// use unless configured otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most connections open at once; 0 means no limit.
    pub max_connections: usize,
    /// Longest time from the first byte of a request head to its end.
    pub header_read_timeout: Duration,
    /// Longest time to receive a whole request body (see [`read_body`]).
    pub body_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
    /// How long in-flight requests may take to finish at shutdown.
    pub shutdown_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(25),
        }
    }
}

/// One listener's rules, shared by every thread that serves its connections.
pub struct Server {
    /// The service's name in logs and metrics (`gateway`, `auth`, `users`).
    name: &'static str,
    /// The setting that raises the connection limit, for the warning.
    max_connections_setting: &'static str,
    limits: Limits,
    slots: Option<Arc<Semaphore>>,
    /// When the "connection limit reached" warning was last logged, in
    /// milliseconds since `started`, so a flood logs a line every few
    /// seconds rather than one per connection.
    last_full_warning: AtomicU64,
    started: Instant,
    builder: auto::Builder<TokioExecutor>,
    tls: Option<tls::Tls>,
}

/// How often, at most, the connection-limit warning is repeated.
const FULL_WARNING_EVERY: Duration = Duration::from_secs(10);

impl Server {
    pub fn new(name: &'static str, max_connections_setting: &'static str, limits: Limits) -> Arc<Self> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // hyper's own head timer also runs while a kept-alive connection
        // waits for its next request; the activity watch applies both rules
        // separately instead (see `activity`).
        builder.http1().timer(TokioTimer::new()).header_read_timeout(None).keep_alive(true);
        builder.http2().timer(TokioTimer::new()).max_concurrent_streams(Some(256));
        let slots = (limits.max_connections > 0).then(|| Arc::new(Semaphore::new(limits.max_connections)));
        Arc::new(Self {
            name,
            max_connections_setting,
            limits,
            slots,
            last_full_warning: AtomicU64::new(u64::MAX),
            started: Instant::now(),
            builder,
            tls: None,
        })
    }

    /// A server whose connections are TLS, with `tls`'s certificate.
    pub fn with_tls(
        name: &'static str,
        max_connections_setting: &'static str,
        limits: Limits,
        tls: tls::Tls,
    ) -> Arc<Self> {
        let mut server = Arc::into_inner(Self::new(name, max_connections_setting, limits)).expect("just made");
        server.tls = Some(tls);
        Arc::new(server)
    }

    /// Keeps the TLS certificate in step with its files until `shutdown`
    /// (on the current runtime), when the listener has TLS.
    pub fn watch_tls(&self, shutdown: &CancellationToken) {
        if let Some(tls) = &self.tls {
            tokio::spawn(tls.clone().watch(self.name, shutdown.clone()));
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// How many connections are open (accepted and not yet closed), when limited.
    pub fn open_connections(&self) -> Option<usize> {
        self.slots.as_ref().map(|slots| self.limits.max_connections - slots.available_permits())
    }

    /// Waits for a free connection slot, then accepts the next connection.
    pub async fn accept(&self, listener: &TcpListener) -> std::io::Result<Accepted> {
        let slot = match &self.slots {
            None => None,
            Some(slots) => Some(match slots.clone().try_acquire_owned() {
                Ok(slot) => slot,
                Err(_) => {
                    self.warn_full();
                    slots.clone().acquire_owned().await.expect("the slots are never closed")
                }
            }),
        };
        let (stream, peer) = listener.accept().await?;
        metrics::counter!("gatehouse_http_connections_accepted_total", "service" => self.name).increment(1);
        Ok(Accepted { stream, peer, slot })
    }

    fn warn_full(&self) {
        metrics::counter!("gatehouse_http_connection_limit_reached_total", "service" => self.name).increment(1);
        let now = self.started.elapsed().as_millis() as u64;
        let last = self.last_full_warning.load(Ordering::Relaxed);
        let due = last == u64::MAX || now.saturating_sub(last) >= FULL_WARNING_EVERY.as_millis() as u64;
        if due && self.last_full_warning.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            tracing::warn!(
                service = self.name,
                max_connections = self.limits.max_connections,
                setting = self.max_connections_setting,
                "connection limit reached: new connections wait until one closes (raise {} to allow more)",
                self.max_connections_setting,
            );
        }
    }

    /// Serves one connection until the client closes it, it breaks one of
    /// the limits, or `shutdown` fires (then its in-flight requests finish
    /// first). `stop` ends it at once, whatever it is doing.
    pub async fn serve_connection(
        &self,
        accepted: Accepted,
        router: Router,
        shutdown: &CancellationToken,
        stop: &CancellationToken,
    ) {
        let Accepted { stream, peer, slot } = accepted;
        // Released when this connection ends, letting the next one in.
        let _slot = slot;
        let _ = stream.set_nodelay(true);
        match &self.tls {
            None => self.serve_io(stream, peer, router, shutdown, stop).await,
            Some(tls) => {
                // A handshake is held to the same bound as a request head.
                let handshake = tls.acceptor().accept(stream);
                let stream = tokio::select! {
                    handshake = tokio::time::timeout(self.limits.header_read_timeout, handshake) => match handshake {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(error)) => {
                            metrics::counter!("gatehouse_http_tls_handshake_failures_total", "service" => self.name).increment(1);
                            tracing::debug!(service = self.name, %peer, %error, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            metrics::counter!("gatehouse_http_slow_heads_total", "service" => self.name).increment(1);
                            tracing::debug!(service = self.name, %peer, "TLS handshake not finished in time; closing");
                            return;
                        }
                    },
                    () = stop.cancelled() => return,
                };
                self.serve_io(stream, peer, router, shutdown, stop).await
            }
        }
    }

    async fn serve_io<I>(
        &self,
        io: I,
        peer: SocketAddr,
        router: Router,
        shutdown: &CancellationToken,
        stop: &CancellationToken,
    ) where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Watched::new(io, activity.clone()));
        let service = TowerToHyperService::new(Tracked::new(router, activity.clone(), ConnectInfo(peer)));
        let connection = self.builder.serve_connection_with_upgrades(io, service);
        tokio::pin!(connection);
        let mut closing = false;
        loop {
            let check = activity.next_check(&self.limits);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(service = self.name, %peer, %error, "connection ended with an error");
                    }
                    return;
                }
                () = shutdown.cancelled(), if !closing => {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
                () = stop.cancelled() => return,
                () = tokio::time::sleep_until(check.into()) => match activity.verdict(&self.limits) {
                    Verdict::Open => {}
                    Verdict::Idle => {
                        if !closing {
                            connection.as_mut().graceful_shutdown();
                            closing = true;
                        }
                    }
                    Verdict::SlowHead => {
                        metrics::counter!("gatehouse_http_slow_heads_total", "service" => self.name).increment(1);
                        tracing::debug!(service = self.name, %peer, "request head not received in time; closing");
                        return;
                    }
                },
            }
        }
    }
}

/// A connection taken from the listener, holding its connection slot.
pub struct Accepted {
    stream: TcpStream,
    peer: SocketAddr,
    slot: Option<OwnedSemaphorePermit>,
}

impl Accepted {
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The connection detached from the accepting runtime, to be handed to
    /// another thread (a socket is driven by the runtime that registered it).
    pub fn detach(self) -> std::io::Result<Detached> {
        Ok(Detached { stream: self.stream.into_std()?, peer: self.peer, slot: self.slot })
    }
}

/// A connection on its way to the thread that will serve it.
pub struct Detached {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    slot: Option<OwnedSemaphorePermit>,
}

impl Detached {
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The connection registered with the current thread's runtime.
    pub fn attach(self) -> std::io::Result<Accepted> {
        Ok(Accepted { stream: TcpStream::from_std(self.stream)?, peer: self.peer, slot: self.slot })
    }
}

/// Accepts and serves connections on the current runtime until `shutdown`;
/// then stops accepting, lets in-flight requests finish for at most
/// [`Limits::shutdown_timeout`], and closes what is left.
pub async fn serve(
    server: Arc<Server>,
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let connections = TaskTracker::new();
    let stop = CancellationToken::new();
    server.watch_tls(&shutdown);
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = server.accept(&listener) => accepted,
        };
        match accepted {
            Ok(accepted) => {
                let (server, router, shutdown, stop) = (server.clone(), router.clone(), shutdown.clone(), stop.clone());
                connections.spawn(async move { server.serve_connection(accepted, router, &shutdown, &stop).await });
            }
            Err(error) => pause_after_accept_error(server.name, &error).await,
        }
    }
    drop(listener);
    drain(&server, connections, stop).await;
    Ok(())
}

/// Waits for the connections in `connections` to finish, at most the
/// shutdown timeout, then ends the rest.
pub async fn drain(server: &Server, connections: TaskTracker, stop: CancellationToken) {
    connections.close();
    if tokio::time::timeout(server.limits.shutdown_timeout, connections.wait()).await.is_err() {
        tracing::warn!(
            service = server.name,
            timeout_secs = server.limits.shutdown_timeout.as_secs(),
            "in-flight requests did not finish in time; closing their connections"
        );
        stop.cancel();
        connections.wait().await;
    }
}

/// After a failed accept (out of file descriptors, say), waits a moment
/// rather than spinning.
pub async fn pause_after_accept_error(service: &str, error: &std::io::Error) {
    tracing::warn!(service, %error, "accepting a connection failed");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Binds `address` for `service`, saying which service and which setting
/// when the port is taken.
pub async fn bind(service: &str, setting: &str, address: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(address).await.map_err(|source| BindError {
        service: service.to_owned(),
        setting: setting.to_owned(),
        address,
        source,
    })
}

/// A listener that could not be bound, naming the service, the address and
/// the setting that moves it.
#[derive(Debug, thiserror::Error)]
#[error("{service} cannot listen on {address}{hint}", hint = bind_hint(.source, .setting))]
pub struct BindError {
    pub service: String,
    pub setting: String,
    pub address: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

fn bind_hint(source: &std::io::Error, setting: &str) -> String {
    match source.kind() {
        std::io::ErrorKind::AddrInUse => {
            format!(" (another process holds the port; stop it, or set {setting} to another address)")
        }
        std::io::ErrorKind::PermissionDenied => format!(" (ports below 1024 need privileges; set {setting})"),
        _ => String::new(),
    }
}
