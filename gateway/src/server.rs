//! Serving client connections on a fixed set of threads, one single-threaded
//! runtime each. The accept loop hands each new connection to the next
//! thread in turn; the connection, its requests and the subgraph connections
//! they open (each thread has its own pool) stay on that thread.
//!
//! One runtime shared by every thread moves tasks between its workers: a
//! request woken by a subgraph answer often ran on the other core, and the
//! same load cost from 0.44 to 0.75 ms of CPU per request depending on how
//! the tasks happened to spread (BENCHMARKS.md).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::{Listener, ListenerExt};
use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::pipeline::{enter_server_thread, Gateway};

type Handoff = (std::net::TcpStream, SocketAddr);

/// Stack of each server thread. Parsing a subgraph's answer recurses once
/// per nesting level; the response tree stops at 128 levels, but `errors`
/// entries are parsed as `serde_json` values, which sonic-rs lets nest 255
/// levels deep, and an unoptimised build spends several kilobytes a level.
const SERVER_THREAD_STACK_BYTES: usize = 8 * 1024 * 1024;

/// The connections one server thread is handed.
struct Handed {
    connections: mpsc::UnboundedReceiver<Handoff>,
    local: SocketAddr,
}

impl Listener for Handed {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let Some((stream, peer)) = self.connections.recv().await else {
                // The accept loop has stopped: shutdown is under way, and
                // `serve` stops asking once its signal fires.
                return std::future::pending().await;
            };
            match TcpStream::from_std(stream) {
                Ok(stream) => return (stream, peer),
                Err(error) => {
                    tracing::warn!(%error, %peer, "a connection could not be taken over by its server thread")
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// Serves `router` on `listener` with one thread per client of
/// `gateway.thread_clients` until `shutdown`; each thread finishes its
/// in-flight requests before this returns.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    gateway: &Arc<Gateway>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let local = listener.local_addr()?;
    let threads = gateway.thread_clients.len().max(1);
    let mut handoffs = Vec::with_capacity(threads);
    let mut workers = Vec::with_capacity(threads);
    for index in 0..threads {
        let (handoff, connections) = mpsc::unbounded_channel();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (router, shutdown) = (router.clone(), shutdown.clone());
        let worker = std::thread::Builder::new()
            .name(format!("gateway-server-{index}"))
            .stack_size(SERVER_THREAD_STACK_BYTES)
            .spawn(move || {
                enter_server_thread(index);
                let listener = Handed { connections, local }.tap_io(|stream: &mut TcpStream| {
                    let _ = stream.set_nodelay(true);
                });
                let service = router.into_make_service_with_connect_info::<SocketAddr>();
                runtime.block_on(async move {
                    axum::serve(listener, service).with_graceful_shutdown(shutdown.cancelled_owned()).await
                })
            })?;
        handoffs.push(handoff);
        workers.push(worker);
    }

    let mut next = 0;
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted.and_then(|(stream, peer)| Ok((stream.into_std()?, peer))) {
            Ok(connection) => {
                if hand_off(&handoffs, &mut next, connection).is_err() {
                    tracing::error!("no server thread is running; stopping");
                    shutdown.cancel();
                }
            }
            Err(error) => {
                // Out of file descriptors, say: wait a moment rather than spin.
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    // Refuse new connections at once, not when the last thread is done.
    drop(listener);
    drop(handoffs);
    let mut failure = None;
    for worker in workers {
        match tokio::task::spawn_blocking(move || worker.join()).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => failure = Some(anyhow::Error::from(error)),
            Ok(Err(_)) | Err(_) => failure = Some(anyhow::anyhow!("a server thread panicked")),
        }
    }
    failure.map_or(Ok(()), Err)
}

/// Hands `connection` to the next thread in turn. A thread whose runtime has
/// ended cannot take it, so the one after it is asked; the connection comes
/// back when no thread is running.
fn hand_off(handoffs: &[mpsc::UnboundedSender<Handoff>], next: &mut usize, connection: Handoff) -> Result<(), Handoff> {
    let mut connection = connection;
    for _ in 0..handoffs.len() {
        let thread = &handoffs[*next];
        *next = (*next + 1) % handoffs.len();
        match thread.send(connection) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::SendError(back)) => connection = back,
        }
    }
    Err(connection)
}
