//! Tests that measure the whole process (a process-wide metric, every byte
//! allocated), so nothing else may run beside them: a test binary of their
//! own, and one test at a time within it (`ALONE`).

#[path = "../common/mod.rs"]
mod common;

mod operation_cache;
mod operation_memory;

/// Held for the whole of each test here.
static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
