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

#[tokio::main]
async fn main() -> ExitCode {
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
