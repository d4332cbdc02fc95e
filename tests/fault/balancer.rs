//! A TCP load balancer in front of a service's replicas, as HAProxy or a
//! Kubernetes Service would be: each new connection goes to the next replica
//! that accepts one, so a killed replica drops its own connections and
//! nothing else.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

pub struct Balancer {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Balancer {
    /// Listens on a free loopback port and spreads connections over `backends`.
    pub async fn start(backends: Vec<u16>) -> Self {
        Self::start_on(0, backends).await
    }

    /// Listens on `port` (0: any free one).
    pub async fn start_on(port: u16, backends: Vec<u16>) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("the balancer's port");
        let port = listener.local_addr().unwrap().port();
        let backends: Arc<Vec<SocketAddr>> =
            Arc::new(backends.into_iter().map(|p| SocketAddr::from(([127, 0, 0, 1], p))).collect());
        let turn = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                let backends = backends.clone();
                let first = turn.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    let _ = client.set_nodelay(true);
                    let Some(backend) = connect_any(&backends, first).await else { return };
                    let _ = backend.set_nodelay(true);
                    let (mut client, mut backend) = (client, backend);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
                });
            }
        });
        Self { port, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The first backend, starting at `first`, that accepts a connection.
async fn connect_any(backends: &[SocketAddr], first: usize) -> Option<TcpStream> {
    for i in 0..backends.len() {
        let address = backends[(first + i) % backends.len()];
        if let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(address)).await {
            return Some(stream);
        }
    }
    None
}
