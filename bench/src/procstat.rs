//! A gateway's CPU time and memory, read from `/proc` for the gateway's
//! process and every process below it (Node gateways may fork workers).

use std::fs;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Clock ticks per second for `/proc/<pid>/stat` times; Linux reports them
/// in USER_HZ, which is 100 on every architecture it runs the gateways on.
pub const TICKS_PER_SECOND: f64 = 100.0;

/// The pids of `root` and all its descendants.
pub fn process_tree(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            if let Some(stat) = read_stat(pid) {
                parents.push((pid, stat.ppid));
            }
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(parents.iter().filter(|(_, ppid)| *ppid == parent).map(|(pid, _)| *pid));
        i += 1;
    }
    tree
}

/// The fields of `/proc/<pid>/stat` the benchmark uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub ppid: u32,
    /// User plus system CPU time, in clock ticks.
    pub cpu_ticks: u64,
}

/// Parses the text of `/proc/<pid>/stat`. The command name (field 2) may
/// hold spaces and parentheses, so fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) ppid(4) … utime(14) stime(15); index = field - 3.
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Stat { ppid, cpu_ticks: utime + stime })
}

fn read_stat(pid: u32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Reads a `kB` line (`VmRSS:`, `VmHWM:`) of `/proc/<pid>/status` text.
pub fn parse_status_kb(text: &str, key: &str) -> Option<u64> {
    text.lines().find(|line| line.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()
}

fn status_kb(pid: u32, key: &str) -> Option<u64> {
    parse_status_kb(&fs::read_to_string(format!("/proc/{pid}/status")).ok()?, key)
}

/// The 1, 5 and 15 minute load averages from `/proc/loadavg`.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// CPU ticks used so far by the tree under `root`.
pub fn tree_cpu_ticks(root: u32) -> u64 {
    process_tree(root).into_iter().filter_map(read_stat).map(|s| s.cpu_ticks).sum()
}

/// Resident memory of the tree under `root` right now, in kB.
pub fn tree_rss_kb(root: u32) -> u64 {
    process_tree(root).into_iter().filter_map(|pid| status_kb(pid, "VmRSS:")).sum()
}

/// The kernel's own peak RSS (`VmHWM`) of the root process, in kB.
pub fn peak_rss_kb(root: u32) -> Option<u64> {
    status_kb(root, "VmHWM:")
}

/// Samples the tree's RSS every 100 ms on a thread and keeps the peak, so
/// forked workers' memory counts too.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    peak_kb: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl RssSampler {
    pub fn start(root: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak_kb = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, peak_kb) = (stop.clone(), peak_kb.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak_kb.fetch_max(tree_rss_kb(root), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        RssSampler { stop, peak_kb, thread: Some(thread) }
    }

    /// Stops sampling; returns the peak seen, at least the root's `VmHWM`.
    pub fn finish(mut self, root: u32) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.peak_kb.load(Ordering::Relaxed).max(peak_rss_kb(root).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        // A name with spaces and parentheses must not shift the fields.
        let text = "4242 (node (worker) 1) S 4200 4242 4242 0 -1 4194560 1 0 0 0 150 25 0 0 20 0 11 0 1 2 3";
        assert_eq!(parse_stat(text), Some(Stat { ppid: 4200, cpu_ticks: 175 }));
    }

    #[test]
    fn status_kilobyte_lines_are_read_by_key() {
        let text = "Name:\tnode\nVmHWM:\t   41234 kB\nVmRSS:\t   40000 kB\n";
        assert_eq!(parse_status_kb(text, "VmHWM:"), Some(41234));
        assert_eq!(parse_status_kb(text, "VmRSS:"), Some(40000));
        assert_eq!(parse_status_kb(text, "VmSwap:"), None);
    }

    #[test]
    fn this_process_has_a_tree_cpu_time_and_memory() {
        let me = std::process::id();
        assert!(process_tree(me).contains(&me));
        assert!(tree_rss_kb(me) > 0);
        assert!(peak_rss_kb(me).is_some());
    }
}
