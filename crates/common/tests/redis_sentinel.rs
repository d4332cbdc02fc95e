//! `REDIS_MODE=sentinel`: a connection follows the primary through a failover.
//!
//! A private primary, its replica and one sentinel (quorum 1) run on free
//! ports; the primary is killed, the sentinel promotes the replica, and the
//! same `RedisConn` reads what was written before and writes again, without
//! being made anew.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gatehouse_common::redis_conn::{RedisConn, RedisMode, RedisSettings};
use gatehouse_common::testing::{eventually, free_port};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis_server(args: &[&str]) -> Server {
    let binary = std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".into());
    let child = Command::new(binary)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is installed");
    Server(child)
}

async fn answers(port: u16, command: &str) -> Option<redis::Value> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let mut connection = client.get_multiplexed_async_connection().await.ok()?;
    redis::cmd(command).query_async(&mut connection).await.ok()
}

#[tokio::test]
async fn a_sentinel_connection_follows_the_primary_through_a_failover() {
    let (primary_port, replica_port, sentinel_port) = (free_port(), free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    // A replica writes the copy it receives to its folder: this test's own.
    let folder = dir.path().to_str().unwrap().to_owned();
    let common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", &folder];
    let mut primary = redis_server(&[&["--port", &primary_port.to_string()][..], &common].concat());
    let replica_of = primary_port.to_string();
    let _replica = redis_server(
        &[&["--port", &replica_port.to_string(), "--replicaof", "127.0.0.1", &replica_of][..], &common].concat(),
    );
    let config = dir.path().join("sentinel.conf");
    std::fs::write(
        &config,
        format!(
            "port {sentinel_port}\nbind 127.0.0.1\ndir {}\nsentinel monitor gh 127.0.0.1 {primary_port} 1\n\
             sentinel down-after-milliseconds gh 500\nsentinel failover-timeout gh 3000\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let _sentinel = redis_server(&[config.to_str().unwrap(), "--sentinel"]);
    eventually("the replica in sync", Duration::from_secs(30), || async {
        let info: Option<String> = match answers(replica_port, "INFO").await {
            Some(redis::Value::BulkString(bytes)) => Some(String::from_utf8_lossy(&bytes).into_owned()),
            Some(redis::Value::VerbatimString { text, .. }) => Some(text),
            _ => None,
        };
        info.is_some_and(|text| text.contains("master_link_status:up"))
    })
    .await;
    // A sentinel learns a primary's replicas from its INFO, every 10 s: a
    // failover before it knows the replica would have nothing to promote.
    eventually("the sentinel knowing the replica", Duration::from_secs(60), || async {
        let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{sentinel_port}")) else { return false };
        let Ok(mut connection) = client.get_multiplexed_async_connection().await else { return false };
        let replicas: redis::RedisResult<Vec<redis::Value>> =
            redis::cmd("SENTINEL").arg("REPLICAS").arg("gh").query_async(&mut connection).await;
        replicas.is_ok_and(|replicas| !replicas.is_empty())
    })
    .await;

    let settings = RedisSettings {
        url: format!("redis://127.0.0.1:{sentinel_port}"),
        mode: RedisMode::Sentinel,
        sentinel_master: Some("gh".into()),
    };
    let mut connection = RedisConn::connect(&settings, Duration::from_secs(2), Duration::from_secs(1))
        .await
        .expect("the sentinel names the primary");
    assert!(connection.legacy_keys(), "a Sentinel deployment may hold keys older releases wrote");
    let _: () = redis::cmd("SET").arg("k").arg("before").query_async(&mut connection).await.unwrap();
    // Acknowledged by the replica too, so the failover keeps it.
    let copies: i64 = redis::cmd("WAIT").arg(1).arg(2000).query_async(&mut connection).await.unwrap();
    assert_eq!(copies, 1);

    let _ = primary.0.kill();
    let _ = primary.0.wait();
    let started = Instant::now();
    let mut failures = 0;
    let value = loop {
        match redis::cmd("GET").arg("k").query_async::<Option<String>>(&mut connection).await {
            Ok(value) => break value,
            Err(error) => {
                assert!(gatehouse_common::infra::is_redis_unavailable(&error), "a failover error: {error}");
                failures += 1;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no new primary within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(value.as_deref(), Some("before"));
    assert!(failures > 0, "the old primary is gone: some request must have failed");
    // The promoted replica takes writes: this is the new primary, not a replica.
    let _: () = redis::cmd("SET").arg("k").arg("after").query_async(&mut connection).await.unwrap();
    let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut connection).await.unwrap();
    assert_eq!(role.first(), Some(&redis::Value::BulkString(b"master".to_vec())));
}
