//! `gatehouse`: one binary for the gateway, the auth and users subgraphs, and
//! their chores (migrations, seeding, the whole development stack).

mod cli;
mod config_doc;
mod dev;
mod dev_app;
mod probe;

use std::process::ExitCode;

/// Request handling allocates many small, short-lived values (JSON trees,
/// strings); mimalloc serves those faster than the system allocator, across
/// threads, with less fragmentation.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

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

fn main() -> ExitCode {
    keep_off_transparent_huge_pages();
    run()
}

#[tokio::main]
async fn run() -> ExitCode {
    // A `.env` file is optional; real environment variables win over it.
    let _ = dotenvy::dotenv();
    let cli = cli::Cli::parse();
    gatehouse_common::telemetry::init_tracing("info,sqlx=warn,async_nats=warn", cli.shared.log_format);
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
