//! Commands over closed days: `store backfill` and `store reprice` roll them up into the store,
//! `export` writes them as Parquet files.

use std::io::Write;

use clap::Args;

use super::source::{
    SourceArgs, command_sources, load_settings, prometheus_client, provenance, read_source,
};
use super::{CliError, DAY, block_on, now, time_arg, warn};
use crate::allocation::AllocationSet;
use crate::export::{Destination, export_days};
use crate::store::RollupStore;
use crate::time::{Interval, UnixSeconds, format_time, month_start};

#[derive(Args, Debug)]
pub(super) struct BackfillArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// First day (default: 35 days before --to).
    #[arg(long, value_name = "DATE")]
    from: Option<String>,
    /// Day after the last (default and at most: today, UTC, or the day of --as-of: only closed
    /// days).
    #[arg(long, value_name = "DATE")]
    to: Option<String>,
    /// Also roll up days already stored.
    #[arg(long)]
    force: bool,
}

#[derive(Args, Debug)]
pub(super) struct ExportArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// A directory, or s3://bucket/prefix (credentials, region and endpoint from the AWS_*
    /// environment).
    #[arg(long, value_name = "DIR|URL")]
    dest: String,
    /// First day (default: 35 days before --to).
    #[arg(long, value_name = "DATE")]
    from: Option<String>,
    /// Day after the last (default and at most: today, UTC, or the day of --as-of: only closed
    /// days).
    #[arg(long, value_name = "DATE")]
    to: Option<String>,
    /// Write days already there again.
    #[arg(long)]
    again: bool,
}

pub(super) fn backfill(
    args: BackfillArgs,
    reprice: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let today = now().div_euclid(DAY) * DAY;
    let (from, to) = closed_days((&args.from, &args.to), today, args.source.as_of()?)?;
    if reprice && args.from.is_none() {
        return Err(CliError::input(
            "store reprice needs --from: the first day to price again",
        ));
    }
    let (settings, card) = load_settings(&args.source)?;
    let prometheus = prometheus_client(&args.source, &settings)?;
    let as_of = args.source.as_of()?.unwrap_or(to);
    let (sets, name) = read_source(
        &args.source,
        &settings,
        &card,
        as_of,
        Interval::new(from, to),
    )?;
    let store = RollupStore::open(&settings.store.dir, provenance(&name, &card))
        .map_err(CliError::runtime)?;
    let catalog = store.catalog().map_err(CliError::runtime)?;
    let foreign: Vec<(&i64, &String)> = catalog.foreign.range(from..to).collect();
    if let (Some((day, owner)), false) = (foreign.first(), args.force) {
        return Err(CliError::input(format!(
            "{} of these days are stored for another source ({owner:?} on {}, not {:?}): use another store.dir, set cluster.name to that source's name, or pass --force to replace them",
            foreign.len(),
            &format_time(**day)[..10],
            store.provenance().source
        )));
    }
    let days: Vec<i64> = (from..to)
        .step_by(DAY as usize)
        .filter(|day| reprice || args.force || !catalog.mine.contains(day))
        .collect();
    let sets: Vec<&AllocationSet> = sets.iter().collect();
    let sources = command_sources(&args.source, &sets, &card, None, prometheus.as_ref(), &name);
    let progress = days_progress(days.len());
    let warnings = block_on(sources.roll_up(&store, &days, |day| {
        progress.set_message(format_time(day)[..10].to_string());
        progress.inc(1);
    }))?
    .map_err(CliError::runtime)?;
    progress.finish_and_clear();
    let retention = i64::from(settings.store.rollup_retention_days) * DAY;
    let removed = store
        .remove_before(today - retention)
        .map_err(CliError::runtime)?;
    warn(err, &warnings.texts())?;
    let verb = if reprice { "priced again" } else { "rolled up" };
    writeln!(
        out,
        "{} days {verb}, {removed} past retention removed",
        days.len()
    )
    .map_err(CliError::runtime)
}

/// The closed days `--from` and `--to` name (UTC midnights). A day is closed once it has ended
/// both today and as of the source's now (`as_of`, `--as-of`): `--to` is at most the start of
/// the day either is in, and that by default; `--from` is by default 35 days before `--to`.
/// Naming no closed day is an error, not "0 days" done: the flags are mistyped, or the days
/// are not over yet.
fn closed_days(
    (from, to): (&Option<String>, &Option<String>),
    today: UnixSeconds,
    as_of: Option<UnixSeconds>,
) -> Result<(UnixSeconds, UnixSeconds), CliError> {
    let day = |at: UnixSeconds| at.div_euclid(DAY) * DAY;
    let day_arg = |flag: &str, value: &Option<String>, default: i64| -> Result<i64, CliError> {
        let at = value.as_deref().map(|t| time_arg(flag, t)).transpose()?;
        Ok(day(at.unwrap_or(default)))
    };
    let closed_until = as_of.map_or(today, |as_of| day(as_of).min(today));
    let to = day_arg("to", to, closed_until)?.min(closed_until);
    let from = day_arg("from", from, to - 35 * DAY)?;
    if from >= to {
        let date = |at: UnixSeconds| format_time(at)[..10].to_string();
        return Err(CliError::input(format!(
            "--from: no closed day from {} to {}: the days end at --to, at the start of the \
             day of --as-of, or today, whichever is first",
            date(from),
            date(to),
        )));
    }
    Ok((from, to))
}

pub(super) fn export(
    args: ExportArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let today = now().div_euclid(DAY) * DAY;
    let (from, to) = closed_days((&args.from, &args.to), today, args.source.as_of()?)?;
    let (settings, card) = load_settings(&args.source)?;
    let dest = Destination::parse(&args.dest).map_err(CliError::input)?;
    let prometheus = prometheus_client(&args.source, &settings)?;
    let as_of = args.source.as_of()?.unwrap_or(to);
    // The month of --from from its start: each file carries on from its month's earlier days.
    let month = month_start(from).unwrap_or(from);
    let (sets, name) = read_source(
        &args.source,
        &settings,
        &card,
        as_of,
        Interval::new(month, to),
    )?;
    let store = RollupStore::existing(&settings.store.dir, provenance(&name, &card));
    let sets: Vec<&AllocationSet> = sets.iter().collect();
    let sources = command_sources(
        &args.source,
        &sets,
        &card,
        store.as_ref(),
        prometheus.as_ref(),
        &name,
    );
    let focus = settings.focus.clone().for_cluster(&name.cluster);
    let days: Vec<UnixSeconds> = (from..to).step_by(DAY as usize).collect();
    let progress = days_progress(days.len());
    let exported = block_on(export_days(
        &sources,
        &dest,
        &focus,
        &days,
        args.again,
        |day| {
            progress.set_message(format_time(day)[..10].to_string());
            progress.inc(1);
        },
    ))?
    .map_err(CliError::runtime)?;
    progress.finish_and_clear();
    warn(err, &exported.warnings.texts())?;
    writeln!(
        out,
        "{} days exported to {} as cluster {:?}, {} already there",
        exported.written, args.dest, name.cluster, exported.skipped
    )
    .map_err(CliError::runtime)
}

/// A progress bar over `days` days, on stderr.
fn days_progress(days: usize) -> indicatif::ProgressBar {
    indicatif::ProgressBar::new(days as u64).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} days {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    )
}
