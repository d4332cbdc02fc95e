//! `scripts/services`, which cargo's runner (`scripts/with-services`) calls
//! before every binary, for real: in a network namespace of its own, where
//! nothing listens on 5432, 6379 or 4222, it starts PostgreSQL, Redis and NATS
//! from the local binaries, leaves a URL that is set alone, starts nothing a
//! second time, lets one of two racing callers start a service, and stops what
//! it started.
//!
//! It needs root (network namespaces), `ip`, and initdb/pg_ctl, redis-server
//! and nats-server; without one of them it says which and passes.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The whole test stays under two minutes.
const BUDGET: Duration = Duration::from_secs(110);

/// The variables that name a backing service; the test sets them itself.
const URL_VARIABLES: [&str; 5] =
    ["AUTH_DATABASE_URL", "USERS_DATABASE_URL", "TEST_POSTGRES_URL", "REDIS_URL", "NATS_URL"];

/// A network namespace with loopback up, and a copy of the scripts in a
/// project folder of their own (no `.env` but the test's). Dropping it stops
/// every process left in the namespace, deletes it and removes the folder,
/// also when the test fails.
struct Sandbox {
    namespace: String,
    folder: PathBuf,
    project: PathBuf,
    services: PathBuf,
    started: Instant,
}

struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    fn started_lines(&self) -> Vec<&str> {
        self.stderr.lines().filter(|line| line.starts_with("scripts/services: started ")).collect()
    }
}

impl Sandbox {
    /// `None` (after saying why) when this machine cannot run the test.
    fn new() -> Option<Self> {
        let skip = |why: &str| {
            eprintln!("SKIPPED services_start_answer_and_stop: {why}");
            None
        };
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return skip("network namespaces need root (CI runs as root)");
        }
        if Command::new("ip").arg("-V").output().is_err() {
            return skip("the `ip` tool (iproute2) is not installed");
        }
        for (what, found) in [
            ("initdb and pg_ctl (PostgreSQL)", postgres_installed()),
            ("redis-server", binary_installed("REDIS_SERVER_BIN", "redis-server")),
            ("nats-server", binary_installed("NATS_SERVER_BIN", "nats-server")),
        ] {
            if !found {
                return skip(&format!("{what} is not installed"));
            }
        }
        if !std::fs::read_to_string("/etc/passwd").unwrap_or_default().lines().any(|l| l.starts_with("postgres:")) {
            return skip("as root, PostgreSQL runs as the postgres user, and there is none");
        }

        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let id = format!("{}-{}", std::process::id(), nanos % 100_000);
        let namespace = format!("gh-services-{id}");
        let add = Command::new("ip").args(["netns", "add", &namespace]).output().expect("ip runs");
        if !add.status.success() {
            return skip(&format!("`ip netns add` failed: {}", String::from_utf8_lossy(&add.stderr).trim()));
        }
        // From here on, Drop cleans up.
        let folder = std::env::temp_dir().join(format!("gatehouse-services-test-{id}"));
        let sandbox = Self {
            namespace,
            project: folder.join("project"),
            services: folder.join("services"),
            folder,
            started: Instant::now(),
        };
        let up = Command::new("ip")
            .args(["netns", "exec", &sandbox.namespace, "ip", "link", "set", "lo", "up"])
            .status()
            .expect("ip runs");
        assert!(up.success(), "loopback up in the namespace");

        // The postgres user must reach the services folder: 0755 all the way.
        let source = Path::new(env!("CARGO_MANIFEST_DIR"));
        std::fs::create_dir_all(sandbox.project.join("scripts")).unwrap();
        for path in [&sandbox.folder, &sandbox.project] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        for file in ["scripts/services", "scripts/with-services", "compose.dev.yaml"] {
            std::fs::copy(source.join(file), sandbox.project.join(file)).unwrap();
        }
        Some(sandbox)
    }

    fn left(&self) -> Duration {
        BUDGET.checked_sub(self.started.elapsed()).expect("the test ran out of its two minutes")
    }

    /// A command inside the namespace: `scripts/services ARGS` or
    /// `scripts/with-services ARGS`, from the project copy, with no URL set
    /// but `env`.
    fn command(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.namespace])
            .arg(self.project.join("scripts").join(script))
            .args(args)
            .current_dir(&self.project)
            .env("GATEHOUSE_SERVICES_DIR", &self.services)
            // Docker's containers would publish their ports outside the namespace.
            .env("GATEHOUSE_SERVICES_WITH", "local")
            .env_remove("GATEHOUSE_NO_AUTOSTART")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for variable in URL_VARIABLES {
            command.env_remove(variable);
        }
        for (key, value) in env {
            command.env(key, value);
        }
        command
    }

    fn run(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        finish(self.command(script, args, env).spawn().expect("ip netns exec runs"), self.left())
    }

    /// Runs `f` on a thread inside the namespace (setns applies per thread).
    fn inside<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.namespace);
        std::thread::spawn(move || {
            let namespace = std::fs::File::open(&path).expect("the namespace exists");
            // SAFETY: setns only changes this thread's network namespace; the
            // file descriptor is valid while `namespace` lives.
            let entered = unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(entered, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    /// Which of 5432, 6379 and 4222 accept a TCP connection in the namespace.
    fn open_ports(&self) -> Vec<u16> {
        self.inside(|| {
            [5432, 6379, 4222]
                .into_iter()
                .filter(|port| {
                    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], *port).into(), Duration::from_secs(1))
                        .is_ok()
                })
                .collect()
        })
    }

    /// Each service answers as the code talks to it: PostgreSQL accepts the
    /// development URL (user postgres, trust), Redis answers PING, JetStream
    /// answers `$JS.API.INFO`.
    fn assert_answers(&self, postgres: bool, redis: bool, nats: bool) {
        self.inside(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                if postgres {
                    let pool = gatehouse_store::postgres("postgres://postgres@127.0.0.1:5432/postgres", 1)
                        .await
                        .unwrap_or_else(|e| panic!("PostgreSQL answers: {e}"));
                    pool.close().await;
                }
                if redis {
                    gatehouse_common::infra::redis(&gatehouse_common::redis_conn::RedisSettings::standalone(
                        "redis://127.0.0.1:6379",
                    ))
                    .await
                    .unwrap_or_else(|e| panic!("Redis answers PING: {e}"));
                }
                if nats {
                    let client = async_nats::connect("nats://127.0.0.1:4222").await.expect("NATS answers");
                    let reply = client.request("$JS.API.INFO", "".into()).await.expect("JetStream answers");
                    let reply = String::from_utf8_lossy(&reply.payload);
                    assert!(reply.contains("account_info_response") && !reply.contains("\"error\""), "{reply}");
                }
            })
        })
    }

    /// The pid in a service's pid file, if the file is there.
    fn pid(&self, service: &str) -> Option<u32> {
        let file = match service {
            "postgres" => self.services.join("postgres/data/postmaster.pid"),
            other => self.services.join(other).join(format!("{other}.pid")),
        };
        std::fs::read_to_string(file).ok()?.lines().next()?.trim().parse().ok()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // What the script started, the way it stops it; then anything left.
        if let Ok(child) = self.command("services", &["stop"], &[]).spawn() {
            let _ = wait_bounded(child, Duration::from_secs(40));
        }
        for _ in 0..50 {
            let pids = Command::new("ip").args(["netns", "pids", &self.namespace]).output();
            let pids = pids.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
            if pids.trim().is_empty() {
                break;
            }
            for pid in pids.split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("ip").args(["netns", "delete", &self.namespace]).status();
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

/// Waits for a child within `limit`, killing it when it takes longer.
fn finish(child: std::process::Child, limit: Duration) -> Run {
    wait_bounded(child, limit).unwrap_or_else(|why| panic!("{why}"))
}

fn wait_bounded(mut child: std::process::Child, limit: Duration) -> Result<Run, String> {
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (send, receive) = mpsc::channel();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = send.send(child.wait());
    });
    let status = match receive.recv_timeout(limit) {
        Ok(status) => status.map_err(|e| format!("waiting for the command: {e}"))?,
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            return Err(format!("the command took longer than {limit:?}"));
        }
    };
    Ok(Run { status, stdout: out.join().unwrap_or_default(), stderr: err.join().unwrap_or_default() })
}

fn binary_installed(variable: &str, name: &str) -> bool {
    match std::env::var(variable) {
        Ok(path) => Path::new(&path).is_file(),
        Err(_) => in_path(name),
    }
}

fn in_path(name: &str) -> bool {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/usr/local/sbin", "/usr/local/bin"])
        .any(|dir| Path::new(dir).join(name).is_file());
    found
}

fn postgres_installed() -> bool {
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .map(|versions| versions.flatten().any(|version| version.path().join("bin/initdb").is_file()))
        .unwrap_or(false);
    let pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .map(|o| Path::new(String::from_utf8_lossy(&o.stdout).trim()).join("initdb").is_file())
        .unwrap_or(false);
    debian || pg_config || in_path("initdb")
}

#[test]
fn services_start_answer_and_stop() {
    let Some(sandbox) = Sandbox::new() else { return };
    assert_eq!(sandbox.open_ports(), Vec::<u16>::new(), "nothing listens in a fresh namespace");

    // 1. REDIS_URL is set (to a closed port): Redis is the operator's, left
    //    alone; PostgreSQL and NATS start from the local binaries.
    let run = sandbox.run("services", &["ensure"], &[("REDIS_URL", "redis://127.0.0.1:9")]);
    assert!(run.status.success(), "ensure:\n{}", run.stderr);
    let started = run.started_lines();
    assert_eq!(started.len(), 2, "PostgreSQL and NATS started, nothing else:\n{}", run.stderr);
    assert!(started[0].starts_with("scripts/services: started PostgreSQL on 127.0.0.1:5432 from "), "{}", run.stderr);
    assert!(started[1].starts_with("scripts/services: started NATS on 127.0.0.1:4222 from "), "{}", run.stderr);
    for line in &started {
        assert!(line.contains("log ") && line.ends_with("stop it with scripts/services stop"), "{line}");
    }
    assert_eq!(sandbox.open_ports(), vec![5432, 4222], "Redis was not started");
    assert!(sandbox.pid("redis").is_none());
    sandbox.assert_answers(true, false, true);
    // The servers did not inherit the lock.
    let lock = sandbox.services.join(".lock");
    assert!(Command::new("flock").arg("-n").arg(&lock).arg("true").status().unwrap().success(), "the lock is free");

    // 2. The same through the project's .env (as dotenvy reads it).
    std::fs::write(sandbox.project.join(".env"), "# local\nexport REDIS_URL=\"redis://127.0.0.1:9\" # mine\n").unwrap();
    let run = sandbox.run("services", &["ensure"], &[]);
    assert!(run.status.success() && run.stderr.is_empty(), "nothing to start:\n{}", run.stderr);
    assert_eq!(sandbox.open_ports(), vec![5432, 4222]);
    std::fs::remove_file(sandbox.project.join(".env")).unwrap();

    // 3. No redis-server to be found: the runner says what to install and
    //    does not run the binary.
    let run = sandbox.run(
        "with-services",
        &["sh", "-c", "echo THE-BINARY-RAN"],
        &[("REDIS_SERVER_BIN", "/nonexistent/redis-server")],
    );
    assert!(!run.status.success(), "{}", run.stderr);
    assert!(!run.stdout.contains("THE-BINARY-RAN"), "{}", run.stdout);
    assert!(
        run.stderr.contains("cannot start Redis") && run.stderr.contains("apt-get install redis-server"),
        "{}",
        run.stderr
    );
    assert_eq!(sandbox.open_ports(), vec![5432, 4222]);

    // 4. Two callers at once: one starts Redis, the other waits for the lock
    //    and finds it answering.
    let racers: Vec<_> =
        (0..2).map(|_| sandbox.command("services", &["ensure"], &[]).spawn().expect("ensure runs")).collect();
    let runs: Vec<Run> = racers.into_iter().map(|child| finish(child, sandbox.left())).collect();
    for run in &runs {
        assert!(run.status.success(), "{}", run.stderr);
    }
    let started: Vec<&str> = runs.iter().flat_map(Run::started_lines).collect();
    assert_eq!(started.len(), 1, "one of the two started Redis: {started:?}");
    assert!(started[0].starts_with("scripts/services: started Redis on 127.0.0.1:6379 from "), "{}", started[0]);
    assert_eq!(sandbox.open_ports(), vec![5432, 6379, 4222]);
    sandbox.assert_answers(true, true, true);

    // 5. Everything answers: a second ensure is silent and starts nothing.
    let pids: Vec<Option<u32>> = ["postgres", "redis", "nats"].map(|s| sandbox.pid(s)).to_vec();
    assert!(pids.iter().all(Option::is_some), "{pids:?}");
    let run = sandbox.run("services", &["ensure"], &[]);
    assert!(run.status.success() && run.stderr.is_empty() && run.stdout.is_empty(), "{}", run.stderr);
    assert_eq!(["postgres", "redis", "nats"].map(|s| sandbox.pid(s)).to_vec(), pids);

    // 6. The runner runs the binary with its arguments unchanged, in the
    //    same folder, silently.
    let run = sandbox.run("with-services", &["sh", "-c", r#"printf '%s|' "$@"; pwd"#, "sh", "a b", "", "c"], &[]);
    assert!(run.status.success() && run.stderr.is_empty(), "{}", run.stderr);
    assert_eq!(run.stdout, format!("a b||c|{}\n", sandbox.project.display()));

    // 7. status names what answers and what the script started.
    let run = sandbox.run("services", &["status"], &[]);
    assert!(run.status.success(), "{}", run.stderr);
    for name in ["PostgreSQL", "Redis", "NATS"] {
        let line = run.stdout.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{}", run.stdout));
        assert!(line.contains("answers; started by scripts/services, pid "), "{line}");
    }

    // 8. stop stops all three.
    let run = sandbox.run("services", &["stop"], &[]);
    assert!(run.status.success(), "{}", run.stderr);
    for name in ["NATS", "Redis", "PostgreSQL"] {
        assert!(run.stdout.contains(&format!("stopped {name} (pid ")), "{}", run.stdout);
    }
    assert_eq!(sandbox.open_ports(), Vec::<u16>::new(), "nothing answers after stop");
    for pid in pids.into_iter().flatten() {
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "pid {pid} is gone");
    }

    // 9. GATEHOUSE_NO_AUTOSTART=1: the runner starts nothing.
    let run = sandbox.run("with-services", &["sh", "-c", "echo THE-BINARY-RAN"], &[("GATEHOUSE_NO_AUTOSTART", "1")]);
    assert!(run.status.success() && run.stderr.is_empty(), "{}", run.stderr);
    assert_eq!(run.stdout, "THE-BINARY-RAN\n");
    assert_eq!(sandbox.open_ports(), Vec::<u16>::new());
}
