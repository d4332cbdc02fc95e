//! `gatehouse-bench`: see `bench/README.md`. The work is in the library.

use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use gatehouse_bench::gateways::{Gateway, Variant};
use gatehouse_bench::runner::{self, Settings};
use gatehouse_bench::subgraphs::{server, State};

#[derive(Parser)]
#[command(about = "Benchmarks the Gatehouse gateway against its peers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serves the four benchmark subgraphs on consecutive ports.
    Subgraphs {
        /// First port: accounts, then inventory, products, reviews.
        #[arg(long, default_value_t = 4201)]
        base_port: u16,
        /// Worker threads for the subgraphs' runtime.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Also serve the four over TLS from this port on (the `tls`
        /// variant), with `--tls-cert` and `--tls-key`.
        #[arg(long, requires_all = ["tls_cert", "tls_key"])]
        tls_base_port: Option<u16>,
        /// PEM certificate of the TLS subgraphs.
        #[arg(long)]
        tls_cert: Option<std::path::PathBuf>,
        /// PEM key of the TLS subgraphs.
        #[arg(long)]
        tls_key: Option<std::path::PathBuf>,
    },
    /// Runs the benchmark (`all` is the same): every gateway, every variant.
    #[command(alias = "all")]
    Run(Box<RunArgs>),
    /// Subscribers over graphql-ws and SSE on our gateway, one event
    /// fanned out to all of them; prints a table.
    Subscriptions {
        /// Subscribers in all; half graphql-ws, half SSE.
        #[arg(long, default_value_t = 10_000)]
        subscribers: usize,
        /// Events published once all are idle.
        #[arg(long, default_value_t = 20)]
        events: usize,
        /// Milliseconds between two events.
        #[arg(long, default_value_t = 500)]
        interval_ms: u64,
        /// Connections opened at once while subscribing.
        #[arg(long, default_value_t = 200)]
        connect_concurrency: usize,
        /// Do not build our gateway; use the existing bench-release binary.
        #[arg(long)]
        no_build: bool,
        /// Our gateway's binary (default: $CARGO_TARGET_DIR/bench-release/gatehouse).
        #[arg(long)]
        gatehouse_bin: Option<std::path::PathBuf>,
    },
    /// Prints (or with --write, rewrites) the expected TestQuery response.
    Expected {
        #[arg(long)]
        write: bool,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Seconds instead of minutes: 2 s warm-up, 1 × 5 s, a short ramp.
    #[arg(long)]
    quick: bool,
    /// Gateways to run, comma-separated: gatehouse, hive-router, hive-gateway,
    /// hive-gateway-router-runtime, apollo-gateway. Default: all.
    #[arg(long, value_delimiter = ',')]
    gateways: Vec<String>,
    /// Variants to run, comma-separated: dedup-on, dedup-off, unique-auth. Default: all.
    #[arg(long, value_delimiter = ',')]
    variants: Vec<String>,
    /// Warm-up seconds (default 5, quick 2).
    #[arg(long)]
    warmup: Option<u64>,
    /// Seconds of each measured run (default 20, quick 5).
    #[arg(long)]
    duration: Option<u64>,
    /// Measured runs per gateway and variant; the table shows medians (default 3, quick 1).
    #[arg(long)]
    repeats: Option<usize>,
    /// Connections of the measured runs (default 50).
    #[arg(long)]
    connections: Option<u32>,
    /// Connection counts of the ramp, comma-separated (default 50,100,200,500; quick 100,500).
    #[arg(long, value_delimiter = ',')]
    ramp: Vec<u32>,
    /// Seconds of each ramp step (default 10, quick 3).
    #[arg(long)]
    ramp_step: Option<u64>,
    /// Skip peers that are not installed instead of installing them.
    #[arg(long)]
    no_install: bool,
    /// Do not build our gateway; use the existing bench-release binary.
    #[arg(long)]
    no_build: bool,
    /// Do not rewrite BENCHMARKS.md (results still go to bench/results/).
    #[arg(long)]
    no_write: bool,
    /// Our gateway's binary (default: $CARGO_TARGET_DIR/bench-release/gatehouse).
    #[arg(long)]
    gatehouse_bin: Option<std::path::PathBuf>,
    /// Our gateway's de-duplication flag; it gets `=true` or `=false` per
    /// variant. Default --dedupe-subgraph-requests; `none` for a build without one.
    #[arg(long)]
    ours_dedup_flag: Option<String>,
    /// Record a perf profile of our gateway during its first measured run
    /// (bench/results/run-*/perf-<variant>.txt).
    #[arg(long)]
    profile_ours: bool,
    /// An extra argument for every run of our gateway (repeatable).
    #[arg(long = "ours-arg", allow_hyphen_values = true)]
    ours_args: Vec<String>,
    /// Only the system's own numbers (login, refresh, sign-up sync, `me`) on
    /// `gatehouse dev`; BENCHMARKS.md keeps its gateway comparison.
    #[arg(long, conflicts_with = "no_system")]
    system_only: bool,
    /// Skip the system's own numbers; BENCHMARKS.md keeps its last ones.
    #[arg(long)]
    no_system: bool,
    /// Sign-ups timed until the users subgraph has them (default 200, quick 100).
    #[arg(long)]
    signups: Option<usize>,
}

impl RunArgs {
    fn settings(self) -> anyhow::Result<Settings> {
        let mut settings = if self.quick { Settings::quick() } else { Settings::full() };
        if !self.gateways.is_empty() {
            settings.gateways = self
                .gateways
                .iter()
                .map(|id| Gateway::parse(id).with_context(|| format!("unknown gateway {id}")))
                .collect::<anyhow::Result<_>>()?;
        }
        if !self.variants.is_empty() {
            settings.variants = self
                .variants
                .iter()
                .map(|name| Variant::parse(name).with_context(|| format!("unknown variant {name}")))
                .collect::<anyhow::Result<_>>()?;
        }
        let secs = std::time::Duration::from_secs;
        if let Some(s) = self.warmup {
            settings.warmup = secs(s);
        }
        if let Some(s) = self.duration {
            settings.duration = secs(s);
        }
        if let Some(n) = self.repeats {
            settings.repeats = n;
        }
        if let Some(n) = self.connections {
            settings.connections = n;
        }
        if !self.ramp.is_empty() {
            settings.ramp = self.ramp;
        }
        if let Some(s) = self.ramp_step {
            settings.ramp_step = secs(s);
        }
        settings.install = !self.no_install;
        settings.build = !self.no_build;
        settings.write_markdown = !self.no_write;
        settings.gatehouse_bin = self.gatehouse_bin;
        match self.ours_dedup_flag.as_deref() {
            Some("none") => settings.ours.dedup_flag = None,
            Some(flag) => settings.ours.dedup_flag = Some(flag.to_owned()),
            None => {}
        }
        settings.ours.extra_args = self.ours_args;
        settings.profile_ours = self.profile_ours;
        settings.peers = !self.system_only;
        settings.system = !self.no_system;
        if let Some(n) = self.signups {
            settings.signups = n;
        }
        Ok(settings)
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Subgraphs { base_port, threads, tls_base_port, tls_cert, tls_key } => {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?;
            runtime.block_on(async {
                let state = Arc::new(State::default());
                let listeners = server::bind("127.0.0.1", base_port).await.context("binding the subgraphs")?;
                for (subgraph, listener) in &listeners {
                    println!("{} on http://{}/graphql", subgraph.name(), listener.local_addr()?);
                }
                let plain = server::serve(listeners, state.clone(), None);
                match (tls_base_port, tls_cert, tls_key) {
                    (Some(port), Some(cert), Some(key)) => {
                        let acceptor = server::tls_acceptor(&cert, &key).context("the TLS certificate")?;
                        let listeners = server::bind("127.0.0.1", port).await.context("binding the TLS subgraphs")?;
                        for (subgraph, listener) in &listeners {
                            println!("{} on https://{}/graphql", subgraph.name(), listener.local_addr()?);
                        }
                        tokio::join!(plain, server::serve(listeners, state, Some(acceptor)));
                    }
                    _ => plain.await,
                }
                Ok(())
            })
        }
        Command::Run(args) => {
            runner::run(&(*args).settings()?)?;
            Ok(())
        }
        Command::Subscriptions { subscribers, events, interval_ms, connect_concurrency, no_build, gatehouse_bin } => {
            let workspace = runner::workspace_root();
            if !no_build && gatehouse_bin.is_none() {
                runner::build_ours(&workspace).map_err(anyhow::Error::msg)?;
            }
            let settings = gatehouse_bench::subscriptions::Settings {
                subscribers,
                events,
                interval: std::time::Duration::from_millis(interval_ms),
                connect_concurrency,
                gatehouse_bin: gatehouse_bin.unwrap_or_else(|| runner::bench_release_bin(&workspace)),
                run_dir: workspace.join("bench/results"),
            };
            let results = gatehouse_bench::subscriptions::run(&settings)?;
            let m = runner::machine();
            println!(
                "{} CPUs ({}), {:.1} GiB memory, Linux {}, load average at start {}; the subscribers run on the same machine.",
                m.cpus, m.cpu_model, m.memory_gib, m.kernel, m.load_average
            );
            println!("subscribed in {:.1} s\n", results.connect_seconds);
            print!("{}", results.markdown());
            Ok(())
        }
        Command::Expected { write } => {
            // Compact, as a gateway sends it: about 88 KB.
            let text = serde_json::to_string(&gatehouse_bench::expected::test_query_response())? + "\n";
            if write {
                let path = concat!(env!("CARGO_MANIFEST_DIR"), "/expected/test-query.json");
                std::fs::write(path, &text).with_context(|| format!("writing {path}"))?;
                println!("wrote {path} ({} bytes)", text.len());
            } else {
                print!("{text}");
            }
            Ok(())
        }
    }
}
