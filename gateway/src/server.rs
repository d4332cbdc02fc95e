//! Serving client connections on a fixed set of threads, one single-threaded
//! runtime each. The accept loop hands each new connection to the next
//! thread in turn; the connection, its requests and the subgraph connections
//! they open (each thread has its own pool) stay on that thread.
//!
//! One runtime shared by every thread moves tasks between its workers: a
//! request woken by a subgraph answer often ran on the other core, and the
//! same load cost from 0.44 to 0.75 ms of CPU per request depending on how
//! the tasks happened to spread (BENCHMARKS.md).

use std::sync::Arc;

use axum::Router;
use gatehouse_listener::{Detached, Server};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::pipeline::{enter_server_thread, Gateway};

/// Stack of each server thread. Parsing a subgraph's answer recurses once
/// per nesting level; the response tree stops at 128 levels, but `errors`
/// entries are parsed as `serde_json` values, which sonic-rs lets nest 255
/// levels deep, and an unoptimised build spends several kilobytes a level.
const SERVER_THREAD_STACK_BYTES: usize = 8 * 1024 * 1024;

/// Serves `router` on `listener` with one thread per client of
/// `gateway.thread_clients` until `shutdown`, under `server`'s limits; each
/// thread lets its in-flight requests finish (within the shutdown timeout)
/// before this returns.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    gateway: &Arc<Gateway>,
    server: Arc<Server>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let threads = gateway.thread_clients.len().max(1);
    let mut handoffs = Vec::with_capacity(threads);
    let mut workers = Vec::with_capacity(threads);
    for index in 0..threads {
        let (handoff, connections) = mpsc::unbounded_channel();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (router, shutdown, server) = (router.clone(), shutdown.clone(), server.clone());
        let worker = std::thread::Builder::new()
            .name(format!("gateway-server-{index}"))
            .stack_size(SERVER_THREAD_STACK_BYTES)
            .spawn(move || {
                enter_server_thread(index);
                runtime.block_on(serve_handed(server, connections, router, shutdown));
            })?;
        handoffs.push(handoff);
        workers.push(worker);
    }

    server.watch_tls(&shutdown);
    let mut next = 0;
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = server.accept(&listener) => accepted,
        };
        match accepted.and_then(|accepted| accepted.detach()) {
            Ok(connection) => {
                if hand_off(&handoffs, &mut next, connection).is_err() {
                    tracing::error!("no server thread is running; stopping");
                    shutdown.cancel();
                }
            }
            Err(error) => gatehouse_listener::pause_after_accept_error("gateway", &error).await,
        }
    }
    // Refuse new connections at once, not when the last thread is done.
    drop(listener);
    drop(handoffs);
    let mut failure = None;
    for worker in workers {
        match tokio::task::spawn_blocking(move || worker.join()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => failure = Some(anyhow::anyhow!("a server thread panicked")),
        }
    }
    failure.map_or(Ok(()), Err)
}

/// One server thread: serves each connection it is handed until the accept
/// loop stops handing them, then drains its own.
async fn serve_handed(
    server: Arc<Server>,
    mut handed: mpsc::UnboundedReceiver<Detached>,
    router: Router,
    shutdown: CancellationToken,
) {
    let connections = TaskTracker::new();
    let stop = CancellationToken::new();
    while let Some(connection) = handed.recv().await {
        let peer = connection.peer();
        match connection.attach() {
            Ok(connection) => {
                let (server, router, shutdown, stop) = (server.clone(), router.clone(), shutdown.clone(), stop.clone());
                connections.spawn(async move {
                    server.serve_connection(connection, router, &shutdown, &stop).await;
                });
            }
            Err(error) => {
                tracing::warn!(%error, %peer, "a connection could not be taken over by its server thread")
            }
        }
    }
    gatehouse_listener::drain(&server, connections, stop).await;
}

/// Hands `connection` to the next thread in turn. A thread whose runtime has
/// ended cannot take it, so the one after it is asked; the connection comes
/// back when no thread is running.
fn hand_off(
    handoffs: &[mpsc::UnboundedSender<Detached>],
    next: &mut usize,
    connection: Detached,
) -> Result<(), Detached> {
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
