//! Real processes on loopback: a 3-node JetStream cluster, a 6-node Redis
//! Cluster (3 primaries, 3 replicas), and the Gatehouse services. Every
//! process is killed with SIGKILL on drop and keeps its log in the run's
//! temporary folder, whose tail a failing run prints.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use gatehouse_common::testing::{eventually, free_port};

/// A child process with a name and a log file.
pub struct Process {
    pub name: String,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Process {
    pub fn spawn(name: &str, command: &mut Command, log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).expect("a log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("{name} starts: {e}"));
        Self { name: name.to_owned(), log, child: Some(child) }
    }

    /// SIGKILL, as a crash or an evicted pod.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn alive(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// The last lines of the log.
    pub fn tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct NatsNode {
    pub name: String,
    pub port: u16,
    pub process: Process,
}

/// Three nats-server processes in one cluster with JetStream.
pub struct NatsCluster {
    pub nodes: Vec<NatsNode>,
}

impl NatsCluster {
    pub async fn start(dir: &Path) -> Self {
        let binary = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "/usr/sbin/nats-server".into());
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let routes = ports.iter().map(|(_, route)| format!("nats://127.0.0.1:{route}")).collect::<Vec<_>>().join(",");
        let mut nodes = Vec::new();
        for (i, (port, route)) in ports.iter().enumerate() {
            let name = format!("n{}", i + 1);
            let store = dir.join(format!("nats-{name}"));
            std::fs::create_dir_all(&store).unwrap();
            let mut command = Command::new(&binary);
            command.args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-n", &name, "-sd"]).arg(&store).args([
                "--cluster_name",
                "fault",
                "--cluster",
                &format!("nats://127.0.0.1:{route}"),
                "--routes",
                &routes,
            ]);
            let process = Process::spawn(&format!("nats {name}"), &mut command, dir.join(format!("nats-{name}.log")));
            nodes.push(NatsNode { name, port: *port, process });
        }
        let cluster = Self { nodes };
        for node in &cluster.nodes {
            let url = format!("nats://127.0.0.1:{}", node.port);
            eventually(&format!("JetStream on {}", node.name), Duration::from_secs(60), || {
                let url = url.clone();
                async move {
                    let Ok(client) = async_nats::connect(url).await else { return false };
                    let Ok(reply) = client.request("$JS.API.INFO", "".into()).await else { return false };
                    let text = String::from_utf8_lossy(&reply.payload);
                    text.contains("account_info_response") && !text.contains("\"error\"")
                }
            })
            .await;
        }
        cluster
    }

    pub fn urls(&self) -> String {
        self.nodes.iter().map(|n| format!("nats://127.0.0.1:{}", n.port)).collect::<Vec<_>>().join(",")
    }

    pub fn node_mut(&mut self, name: &str) -> Option<&mut NatsNode> {
        self.nodes.iter_mut().find(|n| n.name == name)
    }
}

pub struct RedisNode {
    pub port: u16,
    pub process: Process,
}

/// Six redis-server processes in cluster mode: three primaries, each with a replica.
pub struct RedisCluster {
    pub nodes: Vec<RedisNode>,
}

impl RedisCluster {
    pub async fn start(dir: &Path) -> Self {
        let mut nodes = Vec::new();
        for _ in 0..6 {
            let port = free_port();
            let store = dir.join(format!("redis-{port}"));
            std::fs::create_dir_all(&store).unwrap();
            let mut command = Command::new("redis-server");
            command
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "1000", "--dir"])
                .arg(&store);
            let process =
                Process::spawn(&format!("redis :{port}"), &mut command, dir.join(format!("redis-{port}.log")));
            nodes.push(RedisNode { port, process });
        }
        for node in &nodes {
            let port = node.port;
            eventually(&format!("redis :{port} answering"), Duration::from_secs(30), || async move {
                redis_cli(port, &["PING"]).is_some_and(|out| out.trim() == "PONG")
            })
            .await;
        }
        let addresses: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli runs");
        assert!(created.status.success(), "redis-cli --cluster create: {}", String::from_utf8_lossy(&created.stdout));
        let cluster = Self { nodes };
        for node in &cluster.nodes {
            let port = node.port;
            eventually(&format!("redis :{port} in a healthy cluster"), Duration::from_secs(60), || async move {
                redis_cli(port, &["CLUSTER", "INFO"]).is_some_and(|out| out.contains("cluster_state:ok"))
            })
            .await;
        }
        // Every replica has its first copy, so a failover has one to promote.
        eventually("every replica in sync", Duration::from_secs(60), || {
            let ports: Vec<u16> = cluster.nodes.iter().map(|n| n.port).collect();
            async move {
                ports.iter().all(|port| {
                    redis_cli(*port, &["INFO", "replication"])
                        .is_some_and(|out| out.contains("role:master") || out.contains("master_link_status:up"))
                })
            }
        })
        .await;
        cluster
    }

    pub fn urls(&self) -> String {
        self.nodes.iter().map(|n| format!("redis://127.0.0.1:{}", n.port)).collect::<Vec<_>>().join(",")
    }

    /// The port of a live primary that serves slots.
    pub fn a_primary(&mut self) -> u16 {
        for node in &mut self.nodes {
            if !node.process.alive() {
                continue;
            }
            if let Some(out) = redis_cli(node.port, &["CLUSTER", "NODES"]) {
                for line in out.lines() {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    if fields.len() > 8 && fields[2].contains("myself") && fields[2].contains("master") {
                        return node.port;
                    }
                }
            }
        }
        panic!("no live primary");
    }

    pub fn node_mut(&mut self, port: u16) -> &mut RedisNode {
        self.nodes.iter_mut().find(|n| n.port == port).expect("a node of the cluster")
    }

    /// Whether every slot is served again (after a failover).
    pub fn healthy(&mut self) -> bool {
        self.nodes
            .iter_mut()
            .filter_map(|n| n.process.alive().then_some(n.port))
            .collect::<Vec<_>>()
            .into_iter()
            .all(|port| redis_cli(port, &["CLUSTER", "INFO"]).is_some_and(|out| out.contains("cluster_state:ok")))
    }
}

pub fn redis_cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli").args(["-p", &port.to_string()]).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One Gatehouse service process (`gatehouse auth|users|gateway`).
pub struct Service {
    pub port: u16,
    pub process: Process,
}

impl Service {
    pub fn spawn(kind: &str, replica: usize, env: &[(String, String)], dir: &Path) -> Self {
        let port = free_port();
        let listen = match kind {
            "auth" => "AUTH_LISTEN",
            "users" => "USERS_LISTEN",
            _ => "GATEWAY_LISTEN",
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
        command.arg(kind).current_dir(env!("CARGO_MANIFEST_DIR")).env(listen, format!("127.0.0.1:{port}"));
        // Only what the suite sets: not the caller's environment or config file.
        for inherited in ["GATEHOUSE_ENV", "GATEHOUSE_CONFIG", "GATEWAY_SUBGRAPH_URLS"] {
            command.env_remove(inherited);
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let name = format!("{kind}-{replica}");
        let process = Process::spawn(&name, &mut command, dir.join(format!("{name}.log")));
        Self { port, process }
    }

    pub async fn wait_ready(&mut self, http: &reqwest::Client) {
        let url = format!("http://127.0.0.1:{}/ready", self.port);
        let started = Instant::now();
        loop {
            if let Ok(response) = http.get(&url).send().await {
                if response.status().is_success() {
                    return;
                }
            }
            assert!(self.process.alive(), "{} exited during start-up:\n{}", self.process.name, self.process.tail(40));
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "{} not ready within 90 s:\n{}",
                self.process.name,
                self.process.tail(40)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
