//! One module per command; each returns the process exit code.

mod catalog;
mod id;
mod simulate;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

pub(crate) fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Catalog(c) => catalog::run(c),
        Command::Id(c) => id::run(c),
        Command::Simulate(args) => simulate::run(args),
    }
}
