//! `gdx`: the one binary of the government data lake and exchange.
//!
//! Data flow: command line (every flag also from a `GDX_*` variable) → [`cli::Cli`] → one
//! command module under `commands/` → the library crates (catalog, ingest, lake, exchange),
//! whose implementations are chosen here and nowhere else.

mod cli;
mod commands;

use clap::Parser;

/// The allocator (chosen here, for the whole process): jemalloc; why is in the workspace
/// manifest.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    init_tracing(&cli.log);
    gdx_lake::register_object_stores();
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
