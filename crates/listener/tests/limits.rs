//! The listener's limits against real sockets: slow heads, idle and busy
//! connections, the connection cap, trickled bodies and draining.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::routing::{get, post};
use axum::Router;
use gatehouse_listener::{read_body, serve, Limits, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Far longer than any limit below: a connection still open after this was
/// held, not closed by a rule.
const PATIENCE: Duration = Duration::from_secs(10);

fn limits() -> Limits {
    Limits {
        max_connections: 0,
        header_read_timeout: Duration::from_millis(300),
        body_read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(400),
        shutdown_timeout: Duration::from_secs(5),
    }
}

fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "ok" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(1200)).await;
                "slow ok"
            }),
        )
        .route(
            "/upload",
            post(|body: Body| async move {
                match read_body(body, 1024, Duration::from_millis(300)).await {
                    Ok(bytes) => (http::StatusCode::OK, format!("{} bytes", bytes.len())),
                    Err(error) => (error.status(), error.to_string()),
                }
            }),
        )
}

struct Running {
    address: std::net::SocketAddr,
    server: Arc<Server>,
    shutdown: CancellationToken,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(limits: Limits) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = Server::new("test", "TEST_MAX_CONNECTIONS", limits);
    let shutdown = CancellationToken::new();
    let done = tokio::spawn(serve(server.clone(), listener, app(), shutdown.clone()));
    Running { address, server, shutdown, done }
}

/// Reads until the server closes the connection; the bytes read.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut out)).await.expect("the server closed the connection").ok();
    out
}

/// Sends one keep-alive GET and reads its whole response.
async fn get_on(stream: &mut TcpStream, path: &str) -> String {
    stream.write_all(format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n").as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf)).await.expect("an answer").unwrap();
        assert!(n > 0, "closed before answering: {}", String::from_utf8_lossy(&response));
        response.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&response);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length: usize = text[..head_end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length: ").map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if response.len() >= head_end + 4 + length {
                return text.into_owned();
            }
        }
    }
}

#[tokio::test]
async fn a_half_sent_head_is_cut_off() {
    let running = start(limits()).await;
    let mut stream = TcpStream::connect(running.address).await.unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nhost: test\r\nx-slow: ").await.unwrap();
    // No answer, just a closed socket: the head never ended.
    assert!(read_to_close(&mut stream).await.is_empty());
}

#[tokio::test]
async fn a_head_trickled_a_byte_at_a_time_is_cut_off() {
    let running = start(limits()).await;
    let mut stream = TcpStream::connect(running.address).await.unwrap();
    let head = b"GET / HTTP/1.1\r\nhost: test\r\nx-padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut closed = false;
    for byte in head {
        if stream.write_all(std::slice::from_ref(byte)).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut probe = [0u8; 64];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(1), stream.read(&mut probe)).await {
            closed = true;
            break;
        }
    }
    // 70 bytes at 50 ms each is 3.5 s; the limit is 0.3 s from the first byte.
    assert!(closed, "the trickled head was served");
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_and_a_busy_one_is_not() {
    let running = start(limits()).await;
    let mut idle = TcpStream::connect(running.address).await.unwrap();
    assert!(get_on(&mut idle, "/").await.ends_with("ok"));
    let mut busy = TcpStream::connect(running.address).await.unwrap();
    // Requests every 100 ms for 1.2 s: three idle timeouts long, never idle that long.
    for _ in 0..12 {
        assert!(get_on(&mut busy, "/").await.ends_with("ok"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(read_to_close(&mut idle).await.is_empty(), "the idle connection was closed without a word");
}

#[tokio::test]
async fn a_request_in_flight_longer_than_the_idle_timeout_is_answered() {
    let running = start(limits()).await;
    let mut stream = TcpStream::connect(running.address).await.unwrap();
    // The handler takes three idle timeouts; the connection is busy, not idle.
    assert!(get_on(&mut stream, "/slow").await.ends_with("slow ok"));
    assert!(get_on(&mut stream, "/").await.ends_with("ok"));
}

#[tokio::test]
async fn past_the_connection_limit_newcomers_wait_for_a_free_slot() {
    let running = start(Limits { max_connections: 2, idle_timeout: Duration::from_secs(30), ..limits() }).await;
    let mut first = TcpStream::connect(running.address).await.unwrap();
    let mut second = TcpStream::connect(running.address).await.unwrap();
    assert!(get_on(&mut first, "/").await.ends_with("ok"));
    assert!(get_on(&mut second, "/").await.ends_with("ok"));
    assert_eq!(running.server.open_connections(), Some(2));

    // The kernel completes the third handshake, but the server does not take it.
    let mut third = TcpStream::connect(running.address).await.unwrap();
    third.write_all(b"GET / HTTP/1.1\r\nhost: test\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 16];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
    assert!(early.is_err(), "a third connection was served while two were open");

    drop(first);
    let answered = tokio::time::timeout(PATIENCE, third.read(&mut buf)).await.expect("served once a slot freed");
    assert!(answered.unwrap() > 0);
    assert!(get_on(&mut second, "/").await.ends_with("ok"), "the open connection kept working");
}

#[tokio::test]
async fn a_trickled_body_is_answered_408_and_a_large_one_413() {
    let running = start(limits()).await;
    let mut stream = TcpStream::connect(running.address).await.unwrap();
    stream.write_all(b"POST /upload HTTP/1.1\r\nhost: test\r\ncontent-length: 100\r\n\r\n0123456789").await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf)).await.expect("answered").unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    let mut stream = TcpStream::connect(running.address).await.unwrap();
    let body = vec![b'x'; 4096];
    let head = format!("POST /upload HTTP/1.1\r\nhost: test\r\ncontent-length: {}\r\n\r\n", body.len());
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf)).await.expect("answered").unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    let mut stream = TcpStream::connect(running.address).await.unwrap();
    stream.write_all(b"POST /upload HTTP/1.1\r\nhost: test\r\ncontent-length: 5\r\n\r\nhello").await.unwrap();
    let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf)).await.expect("answered").unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("5 bytes"), "{answer}");
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight_and_stops_accepting() {
    let running = start(limits()).await;
    let mut stream = TcpStream::connect(running.address).await.unwrap();
    stream.write_all(b"GET /slow HTTP/1.1\r\nhost: test\r\n\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    running.shutdown.cancel();
    let answer = String::from_utf8(read_to_close(&mut stream).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("slow ok"), "{answer}");
    tokio::time::timeout(PATIENCE, running.done).await.expect("serve returned").unwrap().unwrap();
    assert!(TcpStream::connect(running.address).await.is_err(), "still accepting after shutdown");
}

#[tokio::test]
async fn a_taken_port_names_the_service_and_the_setting() {
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = taken.local_addr().unwrap();
    let error = gatehouse_listener::bind("auth", "AUTH_LISTEN", address).await.unwrap_err().to_string();
    assert!(error.starts_with(&format!("auth cannot listen on {address}")), "{error}");
    assert!(error.contains("set AUTH_LISTEN to another address"), "{error}");
}
