//! Client connections served on several threads: connections are handed to
//! the threads in turn, hostile peers cost a thread nothing, and every
//! thread's requests reach the subgraphs.

use crate::common;

use std::sync::Arc;

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

const THREADS: usize = 3;

/// Answers `{ me { id } }` on a connection of its own.
async fn on_a_new_connection(url: String) -> Value {
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(json!({"query": "{ me { id } }"}).to_string())
        .send()
        .await
        .unwrap();
    response.json().await.unwrap()
}

#[tokio::test]
async fn every_thread_answers_after_hostile_connections() {
    let shop = common::shop::Shop::start().await;
    // Without de-duplication, so every request's own subgraph fetch is counted.
    let gateway = shop
        .gateway()
        .config(|c| {
            c.server_threads = THREADS;
            c.dedupe_subgraph_requests = false;
        })
        .start()
        .await;
    let address = gateway.base.trim_start_matches("http://").to_string();

    // Each kind of hostile peer more times than there are threads, so every
    // thread is handed some: not HTTP, a request cut off mid-body, a
    // connection closed at once, and one that says nothing and stays open.
    let cut_off = b"POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{\"qu".as_slice();
    let mut silent = Vec::new();
    for payload in [b"\x16\x03\x01\x02\x00 not http\r\n\r\n".as_slice(), cut_off, b"".as_slice()] {
        for _ in 0..THREADS + 1 {
            let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
            stream.write_all(payload).await.unwrap();
        }
        silent.push(tokio::net::TcpStream::connect(&address).await.unwrap());
    }

    // Then more clients than threads at once, each on its own connection.
    let answers: Vec<_> = (0..THREADS * 4).map(|_| tokio::spawn(on_a_new_connection(gateway.graphql_url()))).collect();
    for answer in answers {
        assert_eq!(answer.await.unwrap(), json!({"data": {"me": {"id": "u1"}}}));
    }
    assert_eq!(shop.accounts.recorder.requests(), THREADS * 4);
    drop(silent);
}

#[tokio::test]
async fn one_thread_serves_everything_and_shuts_down_cleanly() {
    let shop = common::shop::Shop::start().await;
    let gateway = Arc::new(shop.gateway().config(|c| c.server_threads = 1).start().await);
    let answers = common::fire_me_queries(&gateway, 8);
    for answer in answers {
        assert_eq!(answer.await.unwrap(), json!({"data": {"me": {"id": "u1"}}}));
    }
    gateway.shutdown();
    // Stopped: the port no longer answers.
    let mut refused = false;
    for _ in 0..100 {
        if reqwest::get(format!("{}/health", gateway.base)).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(refused, "the gateway still answers after shutdown");
}
