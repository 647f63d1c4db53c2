//! The `tollgate` command line (SPEC §6): parsing, running, and exit codes. Each command is a
//! module of its own (`report`, `serve`, `quota`, `days`: `store` and `export`, `pricing`);
//! `source` reads what the source flags name.
//!
//! Exit codes: 0 ok, 1 runtime failure, 2 bad input or usage — each failure with a one-line
//! message saying what to fix.

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::time::{UnixSeconds, parse_time};

mod days;
mod pricing;
mod quota;
mod report;
mod serve;
mod source;

const DAY: i64 = 86_400;

/// GPU cost accountability for Kubernetes.
#[derive(Parser, Debug)]
#[command(name = "tollgate", version, about, args_override_self = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print one chargeback report to stdout.
    Report(Box<report::ReportArgs>),
    /// Run the service: watch the cluster (or the demo fleet, or a snapshot), keep the ledger,
    /// serve chargeback, metrics and health over HTTP.
    Serve(Box<serve::ServeArgs>),
    /// Decide whether a pod may start within its budgets; prints the decision as JSON.
    /// Exit 0: allowed, 3: denied.
    Quota(Box<quota::QuotaArgs>),
    /// Write closed days as Hive-partitioned Parquet (FOCUS rows and hourly chargeback rows)
    /// to a directory or an S3-compatible bucket; days already there are skipped.
    Export(Box<days::ExportArgs>),
    /// Rollup store tools.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Rate-card tools.
    #[command(subcommand)]
    Pricing(PricingCommand),
}

#[derive(Subcommand, Debug)]
enum StoreCommand {
    /// Roll up closed days missing from the store (`store.dir/rollups`), from the source flags
    /// and Prometheus usage.
    Backfill(Box<days::BackfillArgs>),
    /// Re-price stored days with the current rate card (rolls them up again from the source).
    Reprice(Box<days::BackfillArgs>),
}

#[derive(Subcommand, Debug)]
enum PricingCommand {
    /// Validate rate cards (default: the configured card, else the built-in one).
    Check {
        /// Rate-card TOML files.
        files: Vec<PathBuf>,
        /// A GPU product name as a node label, DRA device or DCGM spells it; prints the model
        /// each card prices it as, and says when the card's rules are ambiguous for it.
        /// Repeatable.
        #[arg(long = "product", value_name = "NAME")]
        products: Vec<String>,
    },
}

/// A failed command: what to tell the user and the exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    /// 1 for a runtime failure, 2 for bad input or usage.
    pub code: i32,
    /// One line saying what to fix.
    pub message: String,
}

impl CliError {
    fn input(message: impl ToString) -> Self {
        CliError {
            code: 2,
            message: message.to_string(),
        }
    }

    fn runtime(message: impl ToString) -> Self {
        CliError {
            code: 1,
            message: message.to_string(),
        }
    }
}

/// Runs a parsed command, writing its output to `out` and warnings to `err`.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), CliError> {
    match cli.command {
        Command::Report(args) => report::report(*args, out, err),
        Command::Serve(args) => serve::serve(*args, out),
        Command::Quota(args) => quota::quota(*args, out),
        Command::Export(args) => days::export(*args, out, err),
        Command::Store(StoreCommand::Backfill(args)) => days::backfill(*args, false, out, err),
        Command::Store(StoreCommand::Reprice(args)) => days::backfill(*args, true, out, err),
        Command::Pricing(PricingCommand::Check { files, products }) => {
            pricing::pricing_check(&files, &products, out)
        }
    }
}

fn time_arg(flag: &str, value: &str) -> Result<UnixSeconds, CliError> {
    parse_time(value).map_err(|e| CliError::input(format!("--{flag}: {e}")))
}

fn now() -> UnixSeconds {
    jiff::Timestamp::now().as_second()
}

/// Prints each warning on its own line.
fn warn(err: &mut dyn Write, warnings: &[String]) -> Result<(), CliError> {
    for warning in warnings {
        writeln!(err, "warning: {warning}").map_err(CliError::runtime)?;
    }
    Ok(())
}

/// Runs `future` to completion on a new multi-threaded runtime.
fn block_on<F: Future>(future: F) -> Result<F::Output, CliError> {
    run_on(tokio::runtime::Builder::new_multi_thread(), future)
}

/// Runs `future` to completion on a runtime made by `builder`.
fn run_on<F: Future>(
    mut builder: tokio::runtime::Builder,
    future: F,
) -> Result<F::Output, CliError> {
    let runtime = builder.enable_all().build().map_err(CliError::runtime)?;
    Ok(runtime.block_on(future))
}
