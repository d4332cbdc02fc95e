//! One tracing subscriber and one Prometheus recorder per process.
//!
//! `gatehouse dev` runs three services in one process, so both are global and
//! installed at most once; every service renders the same recorder on `/metrics`.

use std::ffi::OsStr;
use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::{fmt, prelude::*, EnvFilter};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Installs the global subscriber. `RUST_LOG` overrides `default_filter`.
/// Calling it twice is harmless (tests do).
///
/// Logs go to standard output. `pretty` colours them only when standard
/// output is a terminal and `NO_COLOR` is unset or empty (https://no-color.org),
/// so pipes, files and log collectors get plain text.
pub fn init_tracing(default_filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Pretty => {
            let ansi = colour_logs(std::io::stdout().is_terminal(), std::env::var_os("NO_COLOR").as_deref());
            registry.with(fmt::layer().with_writer(std::io::stdout).with_ansi(ansi).with_target(false)).try_init()
        }
        LogFormat::Json => registry
            .with(fmt::layer().json().flatten_event(true).with_writer(std::io::stdout).with_ansi(false))
            .try_init(),
    };
    // Already installed (a second service in the same process, or a test): keep the first.
    let _ = result;
}

/// Whether log lines written to an output get ANSI colours: only on a
/// terminal, and never when `NO_COLOR` is set to anything but the empty string.
fn colour_logs(output_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    output_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// Bucket bounds, in seconds, of every histogram (all of them are `*_seconds`):
/// from half a millisecond, a cached gateway answer, to ten seconds, past any
/// subgraph timeout. Buckets, unlike summaries, add up across instances.
const LATENCY_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// How often recorded histogram samples are folded into their buckets. The
/// recorder keeps every sample (8 bytes) until then, so without this a
/// process nobody scrapes grows by every request it serves.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The process-wide Prometheus recorder, installed on first use, with a
/// thread that folds histogram samples into buckets every second.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // Only an empty list of buckets is refused.
            let builder =
                PrometheusBuilder::new().set_buckets(&LATENCY_BUCKETS).unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed by an embedding program;
            // then this handle renders nothing, which is the honest answer.
            if metrics::set_global_recorder(recorder).is_ok() {
                spawn_upkeep(handle.clone());
            }
            handle
        })
        .clone()
}

fn spawn_upkeep(handle: PrometheusHandle) {
    let upkeep = move || loop {
        std::thread::sleep(UPKEEP_INTERVAL);
        handle.run_upkeep();
    };
    if let Err(e) = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(upkeep) {
        tracing::warn!(error = %e, "could not start the metrics upkeep thread; histograms are folded only when /metrics is read");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_are_coloured_only_on_a_terminal_without_no_color() {
        assert!(colour_logs(true, None));
        // no-color.org: an empty NO_COLOR does not count as set.
        assert!(colour_logs(true, Some(OsStr::new(""))));
        assert!(!colour_logs(true, Some(OsStr::new("1"))));
        assert!(!colour_logs(true, Some(OsStr::new("false"))));
        assert!(!colour_logs(false, None));
        assert!(!colour_logs(false, Some(OsStr::new("1"))));
    }
}
