//! The whole run: build ours, start the subgraphs, then for every gateway
//! and variant: install if needed, start it on the benchmark port, check its
//! TestQuery answer, warm up, measure a few times at steady load, ramp the
//! connections, stop it; finally print the table and write `BENCHMARKS.md`.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};

use crate::compare;
use crate::expected;
use crate::gateways::{Gateway, OursOptions, Paths, TlsSetup, Variant};
use crate::http::HttpClient;
use crate::load::{self, LoadResult, LoadSpec};
use crate::procstat::{self, RssSampler, TICKS_PER_SECOND};
use crate::report::{self, Machine, Measurement, Outcome, RampStep, Report, Row, SystemLine, SystemSection};
use crate::stats::median_by;
use crate::subgraphs::{CounterSnapshot, Subgraph};
use crate::system::{self, SystemSettings};

/// Everything a run can be told.
#[derive(Debug, Clone)]
pub struct Settings {
    pub gateways: Vec<Gateway>,
    pub variants: Vec<Variant>,
    pub warmup: Duration,
    pub duration: Duration,
    pub repeats: usize,
    pub connections: u32,
    /// Connection counts of the ramp, each held for `ramp_step`.
    pub ramp: Vec<u32>,
    pub ramp_step: Duration,
    pub port: u16,
    pub subgraph_base_port: u16,
    /// First port of the subgraphs over TLS (the `tls` variant).
    pub subgraph_tls_base_port: u16,
    /// Install missing peers (Hive Router takes ~25 minutes).
    pub install: bool,
    /// Build ours with `--profile bench-release` first.
    pub build: bool,
    /// Write the results into `BENCHMARKS.md`.
    pub write_markdown: bool,
    pub ours: OursOptions,
    /// Use this gateway binary instead of building one.
    pub gatehouse_bin: Option<PathBuf>,
    /// Record a `perf` profile of our gateway during its first measured run
    /// and write `perf-<variant>.txt` (a flat report) next to the results.
    pub profile_ours: bool,
    /// Run the gateway comparison (off with `--system-only`).
    pub peers: bool,
    /// Measure the system's own numbers on `gatehouse dev` (off with `--no-system`).
    pub system: bool,
    /// Sign-ups of the sign-up → users sync measurement.
    pub signups: usize,
}

impl Settings {
    /// The full run: 5 s warm-up, 3 × 20 s at 50 connections, a 50→500 ramp.
    pub fn full() -> Self {
        Settings {
            gateways: Gateway::ALL.to_vec(),
            variants: Variant::ALL.to_vec(),
            warmup: Duration::from_secs(5),
            duration: Duration::from_secs(20),
            repeats: 3,
            connections: 50,
            ramp: vec![50, 100, 200, 500],
            ramp_step: Duration::from_secs(10),
            port: 4200,
            subgraph_base_port: 4201,
            subgraph_tls_base_port: 4211,
            install: true,
            build: true,
            write_markdown: true,
            ours: OursOptions::default(),
            gatehouse_bin: None,
            profile_ours: false,
            peers: true,
            system: true,
            signups: 200,
        }
    }

    /// A try-out: seconds instead of minutes, one repeat.
    pub fn quick() -> Self {
        Settings {
            warmup: Duration::from_secs(2),
            duration: Duration::from_secs(5),
            repeats: 1,
            ramp: vec![100, 500],
            ramp_step: Duration::from_secs(3),
            signups: 100,
            ..Settings::full()
        }
    }

    fn describe(&self) -> String {
        format!(
            "Load: wrk, 2 threads, {warmup} s warm-up then {repeats} × {duration} s at {conns} connections (medians), \
             then a ramp over {ramp} connections, {step} s each. Gateway, subgraphs and wrk share the machine.",
            warmup = self.warmup.as_secs(),
            repeats = self.repeats,
            duration = self.duration.as_secs(),
            conns = self.connections,
            ramp = self.ramp.iter().map(u32::to_string).collect::<Vec<_>>().join("/"),
            step = self.ramp_step.as_secs(),
        )
    }
}

/// The workspace root, where `bench/` lives.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

fn target_dir(workspace: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace.join("target"))
}

/// Where `build_ours` puts our gateway.
pub fn bench_release_bin(workspace: &Path) -> PathBuf {
    target_dir(workspace).join("bench-release").join("gatehouse")
}

/// Builds our gateway with `--profile bench-release` (thin LTO), or says
/// why it could not.
pub fn build_ours(workspace: &Path) -> Result<(), String> {
    say("building gatehouse with --profile bench-release");
    let status = Command::new("cargo")
        .args(["build", "--profile", "bench-release", "-p", "gatehouse", "--bin", "gatehouse"])
        .current_dir(workspace)
        .status();
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("cargo build --profile bench-release failed ({s})")),
        Err(e) => Err(format!("cargo could not run: {e}")),
    }
}

/// Runs the benchmark and returns its report (also printed and written).
pub fn run(settings: &Settings) -> anyhow::Result<Report> {
    if settings.peers && !load::wrk_available() {
        bail!("wrk is not installed: apt-get install -y wrk (bench/run.sh does it)");
    }
    let workspace = workspace_root();
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let run_dir = workspace.join("bench/results").join(format!("run-{stamp}"));
    std::fs::create_dir_all(&run_dir)?;
    let paths = Paths {
        workspace: workspace.clone(),
        peers: workspace.join("bench/.peers"),
        run_dir: run_dir.clone(),
        supergraph: workspace.join("bench/supergraph.graphql"),
        gatehouse_bin: settings.gatehouse_bin.clone().unwrap_or_else(|| bench_release_bin(&workspace)),
        tls: None,
    };
    // The `tls` variant's CA and the certificate the gateway and the
    // subgraphs serve (for 127.0.0.1), made for this run; kept until it ends.
    let pki = (settings.peers && settings.variants.contains(&Variant::Tls))
        .then(|| gatehouse_common::testing::TestPki::new("gatehouse-bench"));
    let paths = Paths {
        tls: pki.as_ref().map(|pki| {
            let served = pki.server("served", "gatehouse-bench");
            TlsSetup {
                ca: pki.ca_file(),
                cert: served.cert,
                key: served.key,
                subgraph_urls: Subgraph::ALL
                    .into_iter()
                    .enumerate()
                    .map(|(offset, subgraph)| {
                        let port = settings.subgraph_tls_base_port + offset as u16;
                        (subgraph.name().to_owned(), format!("https://127.0.0.1:{port}/graphql"))
                    })
                    .collect(),
            }
        }),
        ..paths
    };
    let machine = machine();
    say(&format!("results and logs in {}", run_dir.display()));

    let needs_ours = settings.system || (settings.peers && settings.gateways.contains(&Gateway::Ours));
    let mut build_error = None;
    if needs_ours && settings.build && settings.gatehouse_bin.is_none() {
        build_error = build_ours(&workspace).err();
    }

    let (rows, baseline) = if settings.peers {
        compare_gateways(settings, &paths, build_error.as_deref())?
    } else {
        (Vec::new(), Vec::new())
    };

    let system = settings.system.then(|| {
        let load_average = procstat::load_average();
        let mut section = SystemSection { date: utc_now(), load_average, ..SystemSection::default() };
        match &build_error {
            Some(why) => {
                section.lines.push(SystemLine { name: "`gatehouse dev`".into(), result: format!("not run: {why}") })
            }
            None => {
                let measured = system::run(&SystemSettings {
                    bin: paths.gatehouse_bin.clone(),
                    workspace: workspace.clone(),
                    run_dir: run_dir.clone(),
                    connections: settings.connections,
                    warmup: settings.warmup,
                    duration: settings.duration,
                    signups: settings.signups,
                });
                section.lines = measured.lines;
                section.notes = measured.notes;
            }
        }
        section
    });

    let report = Report { date: utc_now(), machine, settings: settings.describe(), rows, baseline, system };
    let markdown = report.markdown();
    println!("\n{markdown}");
    std::fs::write(run_dir.join("report.json"), serde_json::to_string_pretty(&report)?)?;
    std::fs::write(run_dir.join("report.md"), &markdown)?;
    if settings.write_markdown {
        let path = workspace.join("BENCHMARKS.md");
        let existing = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".to_owned());
        let updated = match (&report.system, settings.peers) {
            // Only the system's numbers were measured: the comparison stays.
            (Some(system), false) => report::splice_system_section(&existing, &system.markdown()),
            // The whole block is new; without a system run, its last numbers stay.
            (None, _) => {
                let kept = report::system_section(&existing).map(|s| format!("\n{s}")).unwrap_or_default();
                report::splice_benchmarks_md(&existing, &format!("{markdown}{kept}"))
            }
            (Some(_), true) => report::splice_benchmarks_md(&existing, &markdown),
        };
        std::fs::write(&path, updated)?;
        say(&format!("wrote {}", path.display()));
    }
    Ok(report)
}

/// Our gateway and each peer on the benchmark subgraphs, variant by variant,
/// and the subgraphs alone.
fn compare_gateways(
    settings: &Settings,
    paths: &Paths,
    build_error: Option<&str>,
) -> anyhow::Result<(Vec<Row>, Vec<SystemLine>)> {
    let run_dir = &paths.run_dir;
    std::fs::write(crate::gateways::persisted_manifest(run_dir), expected::persisted_manifest())?;
    let body_file = |variant: Variant| run_dir.join(format!("test-query-{variant}.json"));
    for &variant in &settings.variants {
        std::fs::write(body_file(variant), expected::request_body_for(variant))?;
    }
    let expected: serde_json::Value = serde_json::from_str(expected::EXPECTED_JSON)?;
    let client = HttpClient::new(paths.tls.as_ref().map(|tls| tls.ca.as_path()))?;
    let mut subgraphs = start_subgraphs(settings, paths)?;
    let mut baseline = Vec::new();
    let counters_url = format!("http://127.0.0.1:{}/counters", settings.subgraph_base_port);
    let result = (|| -> anyhow::Result<Vec<Row>> {
        wait_until(Duration::from_secs(20), || client.get(&counters_url).is_ok_and(|a| a.status == 200))
            .context("the benchmark subgraphs did not start")?;
        baseline = subgraph_baseline(settings, run_dir);
        let mut rows = Vec::new();
        for &gateway in &settings.gateways {
            let unavailable = if gateway == Gateway::Ours {
                build_error.map(str::to_owned).or_else(|| {
                    (!gateway.installed(paths)).then(|| format!("no binary at {}", paths.gatehouse_bin.display()))
                })
            } else {
                ensure_installed(gateway, paths, settings.install).err()
            };
            for &variant in &settings.variants {
                let outcome = match &unavailable {
                    Some(why) => Outcome::Skipped(why.clone()),
                    None => bench_one(
                        gateway,
                        variant,
                        settings,
                        paths,
                        &client,
                        &counters_url,
                        &body_file(variant),
                        &expected,
                    ),
                };
                say(&format!("{} / {variant}: {}", gateway.label(), summary(&outcome)));
                rows.push(Row { gateway, variant, outcome });
            }
        }
        Ok(rows)
    })();
    stop(&mut subgraphs);
    Ok((result?, baseline))
}

fn summary(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Measured { steady, .. } => format!(
            "{:.0} RPS, p99 {:.1} ms, peak RSS {:.0} MB, {:.2} subgraph requests per request",
            steady.rps, steady.p99_ms, steady.peak_rss_mb, steady.subgraph_requests_per_request
        ),
        Outcome::WrongResponse(why) => format!("wrong response, not measured: {why}"),
        Outcome::Skipped(why) => format!("skipped: {why}"),
        Outcome::Failed(why) => format!("failed: {why}"),
    }
}

fn say(line: &str) {
    eprintln!("[bench] {line}");
}

fn ensure_installed(gateway: Gateway, paths: &Paths, install: bool) -> Result<(), String> {
    if gateway.installed(paths) {
        return Ok(());
    }
    if !install {
        return Err(format!("not installed in {} and --no-install was given", paths.peers.display()));
    }
    gateway.install(paths).map_err(|e| format!("cannot be installed: {e:#}"))
}

#[allow(clippy::too_many_arguments)]
fn bench_one(
    gateway: Gateway,
    variant: Variant,
    settings: &Settings,
    paths: &Paths,
    client: &HttpClient,
    counters_url: &str,
    body_file: &Path,
    expected: &serde_json::Value,
) -> Outcome {
    let launch = match gateway.launch(paths, variant, settings.port, &settings.ours) {
        Ok(launch) => launch,
        Err(why) => return Outcome::Skipped(why),
    };
    if port_open(settings.port) {
        return Outcome::Failed(format!("port {} is already in use", settings.port));
    }
    let log_path = paths.run_dir.join(format!("{}-{variant}.log", gateway.id()));
    let mut command = launch.command;
    let log = match std::fs::File::create(&log_path) {
        Ok(log) => log,
        Err(e) => return Outcome::Failed(format!("creating {}: {e}", log_path.display())),
    };
    let log_err = match log.try_clone() {
        Ok(log) => log,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    command.stdin(Stdio::null()).stdout(log).stderr(log_err).current_dir(&paths.workspace);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return Outcome::Failed(format!("could not start: {e}")),
    };
    let pid = child.id();
    let sampler = RssSampler::start(pid);
    let outcome = measure(gateway, variant, settings, client, counters_url, body_file, expected, &mut child, pid);
    let peak_kb = sampler.finish(pid);
    stop(&mut child);
    // Wait for the port to be free for the next gateway.
    let _ = wait_until(Duration::from_secs(10), || !port_open(settings.port));
    match outcome {
        Ok(Outcome::Measured { mut steady, ramp }) => {
            steady.peak_rss_mb = peak_kb as f64 / 1024.0;
            Outcome::Measured { steady, ramp }
        }
        Ok(other) => other,
        Err(e) => Outcome::Failed(format!("{e:#} (log: {})", log_path.display())),
    }
}

#[allow(clippy::too_many_arguments)]
fn measure(
    gateway: Gateway,
    variant: Variant,
    settings: &Settings,
    client: &HttpClient,
    counters_url: &str,
    body_file: &Path,
    expected: &serde_json::Value,
    child: &mut Child,
    pid: u32,
) -> anyhow::Result<Outcome> {
    let scheme = if variant == Variant::Tls { "https" } else { "http" };
    let url = format!("{scheme}://127.0.0.1:{}/graphql", settings.port);
    let body = expected::request_body_for(variant);
    let authorization = (variant == Variant::UniqueAuth).then_some("Bearer bench-check");

    // Node gateways take a while to start; the first answer also plans. A 503
    // is a gateway still loading its supergraph (Hive Router answers requests
    // before it has one), so it is waited out like a closed port.
    let started = Instant::now();
    let answer = loop {
        if let Ok(Some(status)) = child.try_wait() {
            bail!("exited during start-up ({status})");
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("no answer on {url} within 120 s");
        }
        if port_open(settings.port) {
            match client.post_json(&url, &body, authorization) {
                Ok(answer) if answer.status != 503 => break answer,
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    if answer.status != 200 {
        let text: String = String::from_utf8_lossy(&answer.body).chars().take(300).collect();
        return Ok(Outcome::WrongResponse(format!("HTTP {}: {text}", answer.status)));
    }
    if let Err(difference) = compare::check_body(expected, &answer.body) {
        return Ok(Outcome::WrongResponse(difference));
    }
    if variant == Variant::UniqueAuth {
        let before = counters(client, counters_url)?;
        client.post_json(&url, &body, authorization)?;
        let after = counters(client, counters_url)?;
        let forwarded = after.total_with_authorization() - before.total_with_authorization();
        let sent = after.total_requests() - before.total_requests();
        if forwarded < sent {
            return Ok(Outcome::WrongResponse(format!(
                "authorization reached {forwarded} of {sent} subgraph requests"
            )));
        }
    }

    let spec = |connections: u32, duration: Duration, count_graphql_errors: bool| LoadSpec {
        url: url.clone(),
        connections,
        duration,
        body_file: body_file.to_path_buf(),
        unique_authorization: variant == Variant::UniqueAuth,
        count_graphql_errors,
    };
    let work_dir = body_file.parent().unwrap_or(Path::new("."));

    let warmup = load::run(&spec(settings.connections, settings.warmup, true), work_dir)?;
    let mut runs: Vec<(LoadResult, f64, f64)> = Vec::new();
    for repeat in 0..settings.repeats.max(1) {
        let profiler = (settings.profile_ours && gateway == Gateway::Ours && repeat == 0)
            .then(|| Profiler::start(pid, &work_dir.join(format!("perf-{variant}.data"))))
            .flatten();
        let ticks_before = procstat::tree_cpu_ticks(pid);
        let counters_before = counters(client, counters_url)?;
        let result = load::run(&spec(settings.connections, settings.duration, false), work_dir)?;
        let counters_after = counters(client, counters_url)?;
        if let Some(profiler) = profiler {
            profiler.finish(&work_dir.join(format!("perf-{variant}.txt")));
        }
        let ticks = procstat::tree_cpu_ticks(pid).saturating_sub(ticks_before) as f64;
        let subgraph_requests = (counters_after.total_requests() - counters_before.total_requests()) as f64;
        runs.push((result, ticks, subgraph_requests));
    }
    let mut ramp = Vec::new();
    for &connections in &settings.ramp {
        let result = load::run(&spec(connections, settings.ramp_step, false), work_dir)?;
        ramp.push(RampStep {
            connections,
            rps: result.rps(),
            p99_ms: result.p99_us as f64 / 1000.0,
            non2xx: result.non2xx + result.socket_errors,
            timeouts: result.timeouts,
        });
    }
    if let Ok(Some(status)) = child.try_wait() {
        bail!("{} exited during the load ({status})", gateway.label());
    }

    let per_request =
        |value: f64, result: &LoadResult| if result.requests == 0 { 0.0 } else { value / result.requests as f64 };
    let steady = Measurement {
        rps: median_by(&runs, |(r, _, _)| r.rps()).unwrap_or(0.0),
        p50_ms: median_by(&runs, |(r, _, _)| r.p50_us as f64 / 1000.0).unwrap_or(0.0),
        p99_ms: median_by(&runs, |(r, _, _)| r.p99_us as f64 / 1000.0).unwrap_or(0.0),
        max_ms: median_by(&runs, |(r, _, _)| r.max_us as f64 / 1000.0).unwrap_or(0.0),
        non2xx: runs.iter().map(|(r, _, _)| r.non2xx).sum::<u64>() + warmup.non2xx,
        socket_errors: runs.iter().map(|(r, _, _)| r.socket_errors + r.timeouts).sum(),
        graphql_errors: warmup.graphql_errors,
        cpu_cores: median_by(&runs, |(r, ticks, _)| {
            ticks / TICKS_PER_SECOND / (r.duration_us as f64 / 1e6).max(f64::EPSILON)
        })
        .unwrap_or(0.0),
        cpu_ms_per_request: median_by(&runs, |(r, ticks, _)| per_request(ticks * 1000.0 / TICKS_PER_SECOND, r))
            .unwrap_or(0.0),
        peak_rss_mb: 0.0,
        subgraph_requests_per_request: median_by(&runs, |(r, _, n)| per_request(*n, r)).unwrap_or(0.0),
        repeats: runs.len(),
    };
    Ok(Outcome::Measured { steady, ramp })
}

/// `perf record` attached to a running gateway, with call graphs.
struct Profiler {
    child: Child,
    data: PathBuf,
}

impl Profiler {
    fn start(pid: u32, data: &Path) -> Option<Profiler> {
        let child = Command::new("perf")
            .args(["record", "-F", "499", "-g", "-o"])
            .arg(data)
            .args(["-p", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| say(&format!("perf is not available, no profile: {e}")))
            .ok()?;
        Some(Profiler { child, data: data.to_path_buf() })
    }

    /// Stops recording (SIGINT lets perf write its file) and writes a flat
    /// report of the hottest functions, callers folded in.
    fn finish(mut self, report: &Path) {
        let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
        let output = Command::new("perf")
            .args(["report", "--stdio", "--no-children", "--percent-limit", "1", "-g", "none", "-i"])
            .arg(&self.data)
            .output();
        match output {
            Ok(output) => {
                let _ = std::fs::write(report, &output.stdout);
                say(&format!("profile: {}", report.display()));
            }
            Err(e) => say(&format!("perf report failed: {e}")),
        }
    }
}

/// The heaviest subgraph call of the TestQuery plan (reviews' `_entities`
/// for products, with authors and their reviews), straight at the subgraph:
/// shows how much headroom the subgraphs leave the gateways.
pub const BASELINE_QUERY: &str = "query($representations:[_Any!]!){_entities(representations:$representations){\
    ...on Product{reviews{id body author{__typename id username reviews{id body product{__typename upc}}}}}}}";

fn subgraph_baseline(settings: &Settings, run_dir: &Path) -> Vec<SystemLine> {
    let representations: Vec<serde_json::Value> =
        (1..=5).map(|upc| serde_json::json!({"__typename": "Product", "upc": upc.to_string()})).collect();
    let body = serde_json::json!({"query": BASELINE_QUERY, "variables": {"representations": representations}});
    let body_file = run_dir.join("baseline.json");
    if let Err(e) = std::fs::write(&body_file, body.to_string()) {
        return vec![SystemLine { name: "reviews subgraph alone".into(), result: format!("not run: {e}") }];
    }
    let spec = LoadSpec {
        url: format!("http://127.0.0.1:{}/graphql", settings.subgraph_base_port + 3),
        connections: settings.connections,
        duration: settings.warmup.max(Duration::from_secs(2)),
        body_file,
        unique_authorization: false,
        count_graphql_errors: true,
    };
    let result = match load::run(&spec, run_dir) {
        Ok(r) => format!(
            "{:.0} RPS, p50 {:.2} ms, p99 {:.2} ms, {} GraphQL errors, {} failed",
            r.rps(),
            r.p50_us as f64 / 1000.0,
            r.p99_us as f64 / 1000.0,
            r.graphql_errors.unwrap_or(0),
            r.non2xx + r.socket_errors
        ),
        Err(e) => format!("failed: {e:#}"),
    };
    say(&format!("reviews subgraph alone: {result}"));
    vec![SystemLine {
        name: format!("reviews `_entities` (5 products, nested), {} connections", settings.connections),
        result,
    }]
}

fn counters(client: &HttpClient, url: &str) -> anyhow::Result<CounterSnapshot> {
    let answer = client.get(url).context("reading the subgraph counters")?;
    Ok(serde_json::from_slice(&answer.body)?)
}

fn start_subgraphs(settings: &Settings, paths: &Paths) -> anyhow::Result<Child> {
    if port_open(settings.subgraph_base_port) {
        bail!("port {} is already in use: is another benchmark running?", settings.subgraph_base_port);
    }
    let exe = std::env::current_exe().context("finding the benchmark binary")?;
    let log = std::fs::File::create(paths.run_dir.join("subgraphs.log"))?;
    let mut command = Command::new(exe);
    command.args(["subgraphs", "--base-port", &settings.subgraph_base_port.to_string()]);
    if let Some(tls) = &paths.tls {
        command
            .args(["--tls-base-port", &settings.subgraph_tls_base_port.to_string()])
            .arg("--tls-cert")
            .arg(&tls.cert)
            .arg("--tls-key")
            .arg(&tls.key);
    }
    command.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log).spawn().context("starting the subgraphs")
}

/// Ends a child we started and everything it forked, by pid.
fn stop(child: &mut Child) {
    let tree = procstat::process_tree(child.id());
    for pid in tree.iter().rev() {
        let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

fn wait_until(limit: Duration, mut ready: impl FnMut() -> bool) -> anyhow::Result<()> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("timed out after {} s", limit.as_secs())
}

/// nproc, CPU model, memory, kernel and load, from `/proc`.
pub fn machine() -> Machine {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let memory_kb = procstat::parse_status_kb(&read("/proc/meminfo"), "MemTotal:").unwrap_or(0);
    Machine {
        cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        cpu_model,
        memory_gib: memory_kb as f64 / 1024.0 / 1024.0,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        load_average: procstat::load_average(),
    }
}

fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown date".to_owned())
}
