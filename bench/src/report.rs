//! The results as markdown: one table of medians, the ratio of ours to each
//! peer, the ramp, and the machine; and `BENCHMARKS.md`, whose generated
//! block is replaced between markers so the hand-written analysis stays.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::gateways::{Gateway, Variant};
use crate::stats::ratio;

/// Medians over the repeated runs at the steady connection count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Summed over the repeats, not a median: one failure is one too many.
    pub non2xx: u64,
    pub socket_errors: u64,
    /// Counted during the warm-up, at the same concurrency (see `load`).
    pub graphql_errors: Option<u64>,
    /// Gateway CPU time over wall time: 1.0 is one core busy.
    pub cpu_cores: f64,
    pub cpu_ms_per_request: f64,
    pub peak_rss_mb: f64,
    pub subgraph_requests_per_request: f64,
    pub repeats: usize,
}

/// One step of the connection ramp.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RampStep {
    pub connections: u32,
    pub rps: f64,
    pub p99_ms: f64,
    pub non2xx: u64,
    pub timeouts: u64,
}

/// What became of one gateway in one variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    Measured {
        steady: Measurement,
        ramp: Vec<RampStep>,
    },
    /// The TestQuery answer differed from the expected one: no numbers count.
    WrongResponse(String),
    Skipped(String),
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub gateway: Gateway,
    pub variant: Variant,
    pub outcome: Outcome,
}

/// The machine the numbers came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_gib: f64,
    pub kernel: String,
    /// `/proc/loadavg` when the run started: the machine may be shared.
    pub load_average: String,
}

/// A line of the system's own numbers (login, refresh, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemLine {
    pub name: String,
    pub result: String,
}

/// The system's own numbers: measured on `gatehouse dev`, apart from the
/// gateway comparison (and possibly in another run), so they carry their own
/// date and load.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SystemSection {
    pub date: String,
    pub load_average: String,
    pub lines: Vec<SystemLine>,
    /// How it was measured, one bullet each.
    pub notes: Vec<String>,
}

/// The heading of the system's section inside the generated block.
pub const SYSTEM_HEADING: &str = "### The system's own numbers";

impl SystemSection {
    /// The section as markdown, heading included.
    pub fn markdown(&self) -> String {
        let mut md = format!(
            "{SYSTEM_HEADING}\n\nMeasured on {}, load average at start {}.\n\n| Measure | Result |\n|---|---|\n",
            self.date, self.load_average
        );
        for line in &self.lines {
            let _ = writeln!(md, "| {} | {} |", line.name, cell(&line.result));
        }
        if !self.notes.is_empty() {
            md.push('\n');
            for note in &self.notes {
                let _ = writeln!(md, "- {}", note.replace('\n', " "));
            }
        }
        md
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub date: String,
    pub machine: Machine,
    /// A sentence on durations, connections and repeats.
    pub settings: String,
    pub rows: Vec<Row>,
    /// The subgraphs loaded directly, without a gateway.
    #[serde(default)]
    pub baseline: Vec<SystemLine>,
    /// `None` when this run did not measure them (`--no-system`).
    #[serde(default)]
    pub system: Option<SystemSection>,
}

/// A number with three significant digits or so (no decimals from 100 up).
pub fn num(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn times(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}×"))
}

impl Report {
    fn steady(&self, gateway: Gateway, variant: Variant) -> Option<&Measurement> {
        self.rows.iter().find(|r| r.gateway == gateway && r.variant == variant).and_then(|r| match &r.outcome {
            Outcome::Measured { steady, .. } => Some(steady),
            _ => None,
        })
    }

    /// The results as markdown (no top-level heading): the gateway comparison
    /// when this run had one, then the system's section when it had one.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        if !self.rows.is_empty() || !self.baseline.is_empty() {
            md.push_str(&self.comparison_markdown());
        }
        if let Some(system) = &self.system {
            if !md.is_empty() {
                md.push('\n');
            }
            md.push_str(&system.markdown());
        }
        md
    }

    fn comparison_markdown(&self) -> String {
        let mut md = String::new();
        let m = &self.machine;
        let _ = writeln!(
            md,
            "Run on {date}: {cpus} CPUs ({model}), {mem:.1} GiB memory, Linux {kernel}, load average at start {load}.\n\n{settings}\n",
            date = self.date,
            cpus = m.cpus,
            model = m.cpu_model,
            mem = m.memory_gib,
            kernel = m.kernel,
            load = m.load_average,
            settings = self.settings,
        );

        md.push_str("### TestQuery, steady load (medians)\n\n");
        md.push_str(
            "| Gateway | Variant | RPS | p50 ms | p99 ms | max ms | non-2xx | GraphQL errors | CPU cores | CPU ms/req | peak RSS MB | subgraph req/req |\n\
             |---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
        );
        for row in &self.rows {
            let name = row.gateway.label();
            match &row.outcome {
                Outcome::Measured { steady: s, .. } => {
                    let _ = writeln!(
                        md,
                        "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                        row.variant,
                        num(s.rps),
                        num(s.p50_ms),
                        num(s.p99_ms),
                        num(s.max_ms),
                        s.non2xx + s.socket_errors,
                        s.graphql_errors.map_or_else(|| "–".to_owned(), |e| e.to_string()),
                        num(s.cpu_cores),
                        num(s.cpu_ms_per_request),
                        num(s.peak_rss_mb),
                        num(s.subgraph_requests_per_request),
                    );
                }
                Outcome::WrongResponse(why) => {
                    note_row(&mut md, name, row.variant, "wrong response, not measured", why)
                }
                Outcome::Skipped(why) => note_row(&mut md, name, row.variant, "skipped", why),
                Outcome::Failed(why) => note_row(&mut md, name, row.variant, "failed", why),
            }
        }

        let mut ratios = String::new();
        for row in self.rows.iter().filter(|r| r.gateway != Gateway::Ours) {
            let (Some(ours), Some(peer)) =
                (self.steady(Gateway::Ours, row.variant), self.steady(row.gateway, row.variant))
            else {
                continue;
            };
            let _ = writeln!(
                ratios,
                "| {} | {} | {} | {} | {} | {} |",
                row.variant,
                row.gateway.label(),
                times(ratio(Some(ours.rps), Some(peer.rps))),
                times(ratio(Some(ours.p99_ms), Some(peer.p99_ms))),
                times(ratio(Some(ours.peak_rss_mb), Some(peer.peak_rss_mb))),
                times(ratio(Some(ours.cpu_ms_per_request), Some(peer.cpu_ms_per_request))),
            );
        }
        md.push_str("\n### Ours against each peer (ours ÷ peer)\n\n");
        if ratios.is_empty() {
            md.push_str("No variant had both ours and a peer measured.\n");
        } else {
            md.push_str(
                "RPS above 1× is better; p99, peak RSS and CPU per request below 1× are better.\n\n\
                 | Variant | Peer | RPS | p99 | peak RSS | CPU ms/req |\n|---|---|--:|--:|--:|--:|\n",
            );
            md.push_str(&ratios);
        }

        let ramps: Vec<(&Row, &Vec<RampStep>)> = self
            .rows
            .iter()
            .filter_map(|r| match &r.outcome {
                Outcome::Measured { ramp, .. } if !ramp.is_empty() => Some((r, ramp)),
                _ => None,
            })
            .collect();
        if let Some((_, first)) = ramps.first() {
            md.push_str("\n### Ramp (RPS / p99 ms at each connection count)\n\n| Gateway | Variant |");
            for step in first.iter() {
                let _ = write!(md, " {} conns |", step.connections);
            }
            md.push_str("\n|---|---|");
            md.push_str(&"--:|".repeat(first.len()));
            md.push('\n');
            for (row, ramp) in ramps {
                let _ = write!(md, "| {} | {} |", row.gateway.label(), row.variant);
                for step in ramp {
                    let failures = step.non2xx + step.timeouts;
                    let suffix = if failures > 0 { format!(" ({failures} failed)") } else { String::new() };
                    let _ = write!(md, " {} / {}{suffix} |", num(step.rps), num(step.p99_ms));
                }
                md.push('\n');
            }
        }

        if !self.baseline.is_empty() {
            md.push_str("\n### The subgraphs alone (no gateway)\n\n| Load | Result |\n|---|---|\n");
            for line in &self.baseline {
                let _ = writeln!(md, "| {} | {} |", line.name, cell(&line.result));
            }
        }

        md
    }
}

/// A row without numbers: the reason in the RPS column, dashes after it.
fn note_row(md: &mut String, name: &str, variant: Variant, what: &str, why: &str) {
    let _ = writeln!(md, "| {name} | {variant} | {what}: {} |{}", cell(why), " – |".repeat(9));
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

pub const START_MARKER: &str = "<!-- bench:results:start (generated by gatehouse-bench; edit outside the markers) -->";
pub const END_MARKER: &str = "<!-- bench:results:end -->";

/// `existing` with its generated block replaced by `results` (or, without
/// markers, `results` appended under a heading).
pub fn splice_benchmarks_md(existing: &str, results: &str) -> String {
    let block = format!("{START_MARKER}\n{results}{END_MARKER}");
    match (existing.find(START_MARKER), existing.find(END_MARKER)) {
        (Some(start), Some(end)) if end > start => {
            format!("{}{block}{}", &existing[..start], &existing[end + END_MARKER.len()..])
        }
        _ => format!("{}\n\n## Latest results\n\n{block}\n", existing.trim_end()),
    }
}

/// The generated block's system section (heading to the next `### ` or the
/// block's end), if `existing` has one.
pub fn system_section(existing: &str) -> Option<&str> {
    let (start, end) = (existing.find(START_MARKER)?, existing.find(END_MARKER)?);
    let block = existing.get(start..end)?;
    let at = block.find(SYSTEM_HEADING)?;
    let rest = &block[at..];
    let len = rest[SYSTEM_HEADING.len()..].find("\n### ").map_or(rest.len(), |i| SYSTEM_HEADING.len() + i + 1);
    Some(&rest[..len])
}

/// `existing` with only the system section of its generated block replaced
/// by `section` (added at the block's end when it has none; with no block,
/// `section` becomes the block).
pub fn splice_system_section(existing: &str, section: &str) -> String {
    let section = if section.ends_with('\n') { section.to_owned() } else { format!("{section}\n") };
    let Some(end) = existing.find(END_MARKER).filter(|_| existing.contains(START_MARKER)) else {
        return splice_benchmarks_md(existing, &section);
    };
    match system_section(existing) {
        Some(old) => {
            let at = old.as_ptr() as usize - existing.as_ptr() as usize;
            format!("{}{section}{}", &existing[..at], &existing[at + old.len()..])
        }
        None => {
            let before = existing[..end].trim_end_matches('\n');
            format!("{before}\n\n{section}{}", &existing[end..])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(rps: f64, p99_ms: f64, rss: f64) -> Outcome {
        Outcome::Measured {
            steady: Measurement {
                rps,
                p50_ms: 10.0,
                p99_ms,
                max_ms: 50.0,
                graphql_errors: Some(0),
                cpu_cores: 1.0,
                cpu_ms_per_request: 0.25,
                peak_rss_mb: rss,
                subgraph_requests_per_request: 5.0,
                repeats: 3,
                ..Measurement::default()
            },
            ramp: vec![RampStep { connections: 500, rps, p99_ms: 80.0, non2xx: 0, timeouts: 2 }],
        }
    }

    fn report() -> Report {
        Report {
            date: "2026-11-27 18:00 UTC".into(),
            machine: Machine { cpus: 2, cpu_model: "Test CPU".into(), memory_gib: 23.5, ..Machine::default() },
            settings: "Load: test.".into(),
            rows: vec![
                Row { gateway: Gateway::Ours, variant: Variant::DedupOff, outcome: measured(5000.0, 20.0, 30.0) },
                Row { gateway: Gateway::HiveRouter, variant: Variant::DedupOff, outcome: measured(4000.0, 25.0, 40.0) },
                Row {
                    gateway: Gateway::ApolloGateway,
                    variant: Variant::DedupOn,
                    outcome: Outcome::Skipped("no | dedup".into()),
                },
            ],
            baseline: vec![SystemLine { name: "reviews".into(), result: "9000 RPS".into() }],
            system: Some(system("70 logins/s")),
        }
    }

    fn system(login: &str) -> SystemSection {
        SystemSection {
            date: "2026-11-27 21:00 UTC".into(),
            load_average: "1.00 1.00 1.00".into(),
            lines: vec![SystemLine { name: "login".into(), result: login.into() }],
            notes: vec!["Rate limits raised.".into()],
        }
    }

    #[test]
    fn the_system_section_has_its_own_date_lines_and_notes() {
        let md = report().markdown();
        let at = md.find(SYSTEM_HEADING).expect("the section is there");
        assert!(at > md.find("### Ramp").unwrap(), "after the comparison: {md}");
        assert!(md.contains("Measured on 2026-11-27 21:00 UTC, load average at start 1.00 1.00 1.00."), "{md}");
        assert!(md.contains("| login | 70 logins/s |"), "{md}");
        assert!(md.ends_with("\n- Rate limits raised.\n"), "{md}");
        let alone = Report { rows: Vec::new(), baseline: Vec::new(), ..report() }.markdown();
        assert!(alone.starts_with(SYSTEM_HEADING), "a system-only run prints only its section: {alone}");
    }

    #[test]
    fn a_system_only_run_replaces_only_the_system_section() {
        let full = splice_benchmarks_md("# Benchmarks\n", &report().markdown());
        let full = format!("{full}\n## Where the time goes\n");
        let updated = splice_system_section(&full, &system("90 logins/s").markdown());
        assert!(updated.contains("| login | 90 logins/s |") && !updated.contains("70 logins/s"), "{updated}");
        assert_eq!(updated.replace("90 logins/s", "70 logins/s"), full, "nothing else changed");
        assert_eq!(system_section(&updated), Some(system("90 logins/s").markdown().as_str()));

        let without = splice_benchmarks_md("# Benchmarks\n", "### Ramp\n\ntable\n");
        let added = splice_system_section(&without, &system("1 login/s").markdown());
        assert!(added.contains("table\n\n### The system's own numbers"), "{added}");
        assert!(added.trim_end().ends_with(END_MARKER), "{added}");
        let fresh = splice_system_section("# Benchmarks\n", &system("2 logins/s").markdown());
        assert!(fresh.contains(START_MARKER) && fresh.contains("2 logins/s"), "{fresh}");
    }

    #[test]
    fn the_table_has_a_row_per_gateway_and_variant() {
        let md = report().markdown();
        assert!(
            md.contains("| Gatehouse | dedup-off | 5000 | 10.0 | 20.0 | 50.0 | 0 | 0 | 1.00 | 0.25 | 30.0 | 5.00 |"),
            "{md}"
        );
        assert!(md.contains("| Hive Router 0.0.43 | dedup-off | 4000 |"), "{md}");
        assert!(md.contains("| Apollo Gateway 2.14 | dedup-on | skipped: no \\| dedup |"), "{md}");
        assert!(md.contains("2 CPUs (Test CPU), 23.5 GiB memory"), "{md}");
    }

    #[test]
    fn every_table_row_has_as_many_cells_as_its_header() {
        let md = report().markdown();
        let cells = |line: &str| line.replace("\\|", "").matches(" |").count();
        let header = md.lines().find(|l| l.starts_with("| Gateway | Variant | RPS")).unwrap();
        for line in md.lines().filter(|l| l.starts_with("| Gatehouse") || l.starts_with("| Apollo")) {
            if line.contains("conns") || line.contains(" / ") {
                continue;
            }
            assert_eq!(cells(line), cells(header), "{line}");
        }
    }

    #[test]
    fn ratios_compare_ours_with_each_measured_peer() {
        let md = report().markdown();
        assert!(md.contains("| dedup-off | Hive Router 0.0.43 | 1.25× | 0.80× | 0.75× | 1.00× |"), "{md}");
        assert!(!md.contains("| dedup-on | Apollo"), "a skipped peer has no ratio: {md}");
    }

    #[test]
    fn the_ramp_shows_failures() {
        let md = report().markdown();
        assert!(md.contains("| 500 conns |"), "{md}");
        assert!(md.contains("| Gatehouse | dedup-off | 5000 / 80.0 (2 failed) |"), "{md}");
    }

    #[test]
    fn splicing_replaces_only_the_generated_block() {
        let first = splice_benchmarks_md("# Benchmarks\n\nHand-written.\n", "table one\n");
        assert!(first.starts_with("# Benchmarks\n\nHand-written.\n\n## Latest results\n\n"), "{first}");
        let with_after = format!("{first}\n## Where the time goes\n\nAnalysis.\n");
        let second = splice_benchmarks_md(&with_after, "table two\n");
        assert!(second.contains("table two") && !second.contains("table one"), "{second}");
        assert!(second.contains("Hand-written.") && second.ends_with("Analysis.\n"), "{second}");
    }
}
