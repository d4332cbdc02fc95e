//! Helpers for tests (feature `test-support`): a private PostgreSQL that a
//! fault test may kill and start again, never the shared server.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A private PostgreSQL server (initdb into a temporary folder, trust
/// authentication, loopback only) on a free port; killed on drop. As root it
/// runs as the `postgres` user, since PostgreSQL refuses to run as root.
pub struct PrivatePostgres {
    pub port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    /// The process started (`postgres`, or `runuser` waiting for it).
    child: Option<Child>,
}

impl PrivatePostgres {
    /// Initialises a cluster and starts it.
    pub async fn start() -> Self {
        let bin = std::env::var_os("PG_BIN_DIR").map(PathBuf::from).unwrap_or_else(|| {
            let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path().join("bin"))
                .filter(|p| p.join("initdb").exists())
                .collect();
            found.sort();
            found.pop().expect("PostgreSQL's server binaries under /usr/lib/postgresql (or PG_BIN_DIR)")
        });
        let port = gatehouse_common::testing::free_port();
        let dir = tempfile::tempdir().expect("a temporary folder");
        // Running as root: /proc/self belongs to the process's effective user.
        let as_postgres =
            std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap_or(false);
        if as_postgres {
            let owned = Command::new("chown").arg("postgres:").arg(dir.path()).status().expect("chown runs");
            assert!(owned.success(), "cannot hand the folder to the postgres user");
        }
        let server = Self { port, dir, bin, as_postgres, child: None };
        let initdb = server
            .command("initdb")
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "-N", "-D"])
            .arg(server.data())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("initdb runs");
        assert!(initdb.success(), "initdb failed");
        let mut server = server;
        server.restart().await;
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Kills the postmaster at once (SIGKILL), as a crash or a lost host would.
    pub fn kill(&mut self) {
        let pid_file = self.data().join("postmaster.pid");
        if let Some(pid) = std::fs::read_to_string(&pid_file).ok().and_then(|t| t.lines().next().map(str::to_owned)) {
            let _ = Command::new("kill").args(["-9", pid.trim()]).status();
            let started = Instant::now();
            while Command::new("kill")
                .args(["-0", pid.trim()])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
            {
                if started.elapsed() > Duration::from_secs(10) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server (again) on the same port and data, and waits until
    /// it accepts connections.
    pub async fn restart(&mut self) {
        self.kill();
        let log = std::fs::File::create(self.dir.path().join("postgres.log")).ok();
        let started = Instant::now();
        loop {
            // Backends of a killed postmaster may still hold its shared
            // memory for a moment: the start is tried again until they are gone.
            if let Some(mut earlier) = self.child.take() {
                let _ = earlier.kill();
                let _ = earlier.wait();
            }
            let child = self
                .command("postgres")
                .arg("-D")
                .arg(self.data())
                .args([
                    "-p",
                    &self.port.to_string(),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "unix_socket_directories=",
                ])
                .args(["-c", "fsync=off"])
                .stdout(Stdio::null())
                .stderr(log.as_ref().and_then(|f| f.try_clone().ok()).map(Stdio::from).unwrap_or(Stdio::null()))
                .spawn()
                .expect("postgres starts");
            self.child = Some(child);
            let wait = Instant::now();
            while wait.elapsed() < Duration::from_secs(5) {
                if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                    let url = self.url("postgres");
                    if let Ok(pool) = sqlx::PgPool::connect(&url).await {
                        pool.close().await;
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "the private PostgreSQL never started");
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.kill();
    }
}
