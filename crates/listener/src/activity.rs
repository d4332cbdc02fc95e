//! What one connection is doing, as far as the timeouts care.
//!
//! hyper's HTTP/1 head timer also runs while a kept-alive connection waits
//! for its next request, so one setting would have to be both "how long may
//! a head take to arrive" (seconds) and "how long may a connection sit idle"
//! (a minute or more). Instead, the socket ([`Watched`]) notes when the
//! first byte of a head arrives, the service ([`Tracked`]) notes when each
//! request starts and when its response is ready, and the connection's loop
//! asks [`Activity::verdict`] when a deadline passes.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::ConnectInfo;
use axum::Router;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::Limits;

/// "No head is being read": nothing arrived since the last request started.
const NONE: u64 = u64::MAX;

/// The HTTP/2 connection preface; connections that start with it have no
/// HTTP/1 heads to time.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

pub(crate) struct Activity {
    /// Time zero of this connection's clock (milliseconds).
    opened: Instant,
    /// Requests whose response is not ready yet.
    in_flight: AtomicUsize,
    /// When a request last started or had its response ready.
    last_change: AtomicU64,
    /// When the first byte of the head being read arrived, or [`NONE`].
    head_since: AtomicU64,
    /// An HTTP/2 connection: streams, not heads.
    http2: AtomicBool,
    /// No byte has been read yet (the preface check looks at the first read).
    fresh: AtomicBool,
}

pub(crate) enum Verdict {
    Open,
    /// Nothing in flight for the idle timeout: close gracefully.
    Idle,
    /// A head started arriving and did not finish in time: close now.
    SlowHead,
}

impl Activity {
    pub(crate) fn new() -> Self {
        Self {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_change: AtomicU64::new(0),
            head_since: AtomicU64::new(NONE),
            http2: AtomicBool::new(false),
            fresh: AtomicBool::new(true),
        }
    }

    fn now(&self) -> u64 {
        self.opened.elapsed().as_millis() as u64
    }

    /// Bytes arrived from the client.
    fn read(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.fresh.swap(false, Ordering::Relaxed) && bytes.starts_with(H2_PREFACE) {
            self.http2.store(true, Ordering::Relaxed);
        }
        // Between requests, the first byte starts a head; while a request is
        // in flight, bytes are its body (or a pipelined head that the next
        // request start clears).
        if self.in_flight.load(Ordering::Relaxed) == 0 && !self.http2.load(Ordering::Relaxed) {
            let _ = self.head_since.compare_exchange(NONE, self.now(), Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_since.store(NONE, Ordering::Relaxed);
        self.last_change.store(self.now(), Ordering::Relaxed);
    }

    fn response_ready(&self) {
        self.last_change.store(self.now(), Ordering::Relaxed);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// When the connection should next be looked at.
    pub(crate) fn next_check(&self, limits: &Limits) -> Instant {
        let ms = |d: std::time::Duration| d.as_millis() as u64;
        let head = self.head_since.load(Ordering::Relaxed);
        let idle_at = self.last_change.load(Ordering::Relaxed).saturating_add(ms(limits.idle_timeout));
        let at = if head == NONE { idle_at } else { idle_at.min(head.saturating_add(ms(limits.header_read_timeout))) };
        // While a request is in flight the idle deadline moves; look again then.
        self.opened + std::time::Duration::from_millis(at.max(self.now() + 1))
    }

    pub(crate) fn verdict(&self, limits: &Limits) -> Verdict {
        let now = self.now();
        let head = self.head_since.load(Ordering::Relaxed);
        if head != NONE && now.saturating_sub(head) >= limits.header_read_timeout.as_millis() as u64 {
            return Verdict::SlowHead;
        }
        let idle_for = now.saturating_sub(self.last_change.load(Ordering::Relaxed));
        if head == NONE
            && self.in_flight.load(Ordering::Relaxed) == 0
            && idle_for >= limits.idle_timeout.as_millis() as u64
        {
            return Verdict::Idle;
        }
        Verdict::Open
    }
}

/// A socket that reports what it reads to the connection's [`Activity`].
pub(crate) struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Watched<S> {
    pub(crate) fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            self.activity.read(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The router as one connection's service: each request gets the peer's
/// address (`ConnectInfo`) and is counted in flight until its response is
/// ready.
#[derive(Clone)]
pub(crate) struct Tracked {
    router: Router,
    activity: Arc<Activity>,
    peer: ConnectInfo<SocketAddr>,
}

impl Tracked {
    pub(crate) fn new(router: Router, activity: Arc<Activity>, peer: ConnectInfo<SocketAddr>) -> Self {
        Self { router, activity, peer }
    }
}

impl<B> tower::Service<http::Request<B>> for Tracked
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = InFlight<<Router as tower::Service<http::Request<B>>>::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        <Router as tower::Service<http::Request<B>>>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        self.activity.request_started();
        request.extensions_mut().insert(self.peer);
        InFlight { inner: self.router.call(request), activity: Some(self.activity.clone()) }
    }
}

pin_project_lite::pin_project! {
    /// A request's response future; its request stops counting as in flight
    /// when the response is ready (or the future is dropped).
    pub(crate) struct InFlight<F> {
        #[pin]
        inner: F,
        activity: Option<Arc<Activity>>,
    }

    impl<F> PinnedDrop for InFlight<F> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(activity) = this.project().activity.take() {
                activity.response_ready();
            }
        }
    }
}

impl<F: Future> Future for InFlight<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let output = std::task::ready!(this.inner.poll(cx));
        if let Some(activity) = this.activity.take() {
            activity.response_ready();
        }
        Poll::Ready(output)
    }
}
