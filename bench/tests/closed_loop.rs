//! The closed loop counts only accepted answers as throughput: refused
//! answers, HTTP errors and unmeasured set-up steps are counted apart.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use gatehouse_bench::closed_loop::{self, Conversation, LoopSpec, Step};

/// Answers `{"data":…}` to `good`, a GraphQL error to `bad`, 500 to `fail`.
async fn answer(request: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let (status, text) = match &body[..] {
        b"good" | b"setup" => (200, r#"{"data":{"ok":true}}"#),
        b"bad" => (200, r#"{"data":null,"errors":[{"message":"no"}]}"#),
        _ => (500, "oops"),
    };
    Ok(Response::builder().status(status).body(Full::new(Bytes::from(text))).unwrap())
}

async fn server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service_fn(answer)));
        }
    });
    address
}

/// One set-up step, then good, bad, fail, good, bad, fail, …
struct Cycle {
    sent: usize,
}

impl Conversation for Cycle {
    fn next_step(&mut self) -> Step {
        self.sent += 1;
        match self.sent {
            1 => Step::setup("setup"),
            n => Step::measured(["good", "bad", "fail"][(n - 2) % 3]),
        }
    }

    fn check(&mut self, status: u16, body: &[u8]) -> Result<(), String> {
        if status == 200 && body == br#"{"data":{"ok":true}}"# {
            Ok(())
        } else {
            Err(format!("status {status}"))
        }
    }
}

#[tokio::test]
async fn refused_answers_and_http_errors_are_failures_not_throughput() {
    let address = server().await;
    let spec = LoopSpec {
        address,
        path: "/graphql".into(),
        warmup: Duration::ZERO,
        duration: Duration::from_millis(500),
        timeout: Duration::from_secs(5),
    };
    let outcome = closed_loop::run(&spec, vec![Cycle { sent: 0 }, Cycle { sent: 0 }]).await;
    let result = &outcome.result;
    assert!(result.requests >= 30, "{result:?}");
    let refused = result.graphql_errors.expect("refusals are counted");
    let ok = result.requests - refused - result.non2xx;
    // Each connection cycles good, bad, fail: a third of each, give or take
    // the cycle a connection was in when the window closed.
    for count in [ok, refused, result.non2xx] {
        assert!(count.abs_diff(result.requests / 3) <= 2, "{result:?}");
    }
    assert_eq!(result.failed(), refused + result.non2xx);
    assert_eq!((result.socket_errors, result.timeouts, outcome.setup_failures), (0, 0, 0));
    let expected_rate = ok as f64 / 0.5;
    assert!((result.ok_per_second() - expected_rate).abs() < 1e-6, "{} vs {expected_rate}", result.ok_per_second());
    assert!(result.p50_us > 0 && result.p50_us <= result.p99_us && result.p99_us <= result.max_us, "{result:?}");
    assert!(outcome.failure_samples.contains(&"status 500".to_owned()), "{:?}", outcome.failure_samples);
}

#[tokio::test]
async fn a_server_that_is_not_there_is_counted_as_socket_errors() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let spec = LoopSpec {
        address: closed,
        path: "/graphql".into(),
        warmup: Duration::ZERO,
        duration: Duration::from_millis(200),
        timeout: Duration::from_secs(1),
    };
    let outcome = closed_loop::run(&spec, vec![Cycle { sent: 0 }]).await;
    assert_eq!(outcome.result.requests, 0);
    assert!(outcome.result.socket_errors > 0, "{:?}", outcome.result);
    assert_eq!(outcome.result.ok_per_second(), 0.0);
}
