//! `gatehouse`: one binary for the gateway, the auth and users subgraphs, and
//! their chores (migrations, seeding, the whole development stack).

mod cli;
mod config_doc;
mod config_file;
mod dev;
mod dev_app;
mod probe;

use std::process::ExitCode;

/// Request handling allocates many small, short-lived values (JSON trees,
/// strings); mimalloc serves those faster than the system allocator, across
/// threads, with less fragmentation.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc asks the kernel for transparent huge pages for its arenas. Our
/// heap is many small, short-lived objects scattered over them, so each 2 MiB
/// page faults in mostly for nothing: with them the gateway sat at 25 MB idle
/// and peaked at 60-85 MB under the benchmark's 50 connections, without them
/// at 14.5 and about 55 MB, for the same throughput (BENCHMARKS.md). mimalloc
/// is built without its huge-page advice (`no_thp`), and the process opts out
/// here as well, for kernels set to use huge pages everywhere.
fn keep_off_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// mimalloc's `purge_delay` option (its index in `mi_option_t`, version 3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed memory stays with mimalloc before it goes back to the
/// kernel. Version 3 waits a second, so the resident size saws up and down
/// by a second's worth of responses (at 50 connections of the benchmark,
/// peaks of 39-41 MB over a steady 31-35); after 100 ms the peaks are
/// 33-37 MB, and CPU per request moved by no more than run-to-run noise
/// (1-2 %). `MIMALLOC_PURGE_DELAY` in the environment still wins.
const PURGE_DELAY_MS: std::ffi::c_long = 100;

fn return_freed_memory_sooner() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one integer option; called before any other thread exists.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) }
    }
}

fn main() -> ExitCode {
    keep_off_transparent_huge_pages();
    return_freed_memory_sooner();
    // A `.env` file is optional; real environment variables win over it.
    // Both it and the config file set environment variables, so they are read
    // before the runtime starts its threads.
    let _ = dotenvy::dotenv();
    match cli::parse() {
        Ok(cli) => run(cli),
        Err(status) => status,
    }
}

#[tokio::main]
async fn run(cli: cli::Cli) -> ExitCode {
    // Kept to the end: dropping it sends the last spans when traces are exported.
    let _telemetry =
        gatehouse_common::telemetry::init("info,sqlx=warn,async_nats=warn", cli.shared.log_format, cli.shared.otlp());
    match cli.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            for line in dev::error_lines(&error) {
                eprintln!("error: {line}");
            }
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_is_set_at_mimallocs_own_index() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            // The environment's value wins; nothing of ours to check.
            return;
        }
        // SAFETY: reads and sets plain integer options.
        let read = || unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        // Of all of mimalloc 3's options only `purge_delay` defaults to 1000,
        // so this is the index it has in the linked library.
        assert_eq!(read(), 1000, "option {MI_OPTION_PURGE_DELAY} is not purge_delay in this mimalloc");
        return_freed_memory_sooner();
        assert_eq!(read(), PURGE_DELAY_MS);
    }
}
