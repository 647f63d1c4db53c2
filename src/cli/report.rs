//! `tollgate report`: one chargeback, FOCUS or token report, to stdout or a file.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::source::{
    SourceArgs, command_sources, load_settings, prometheus_client, provenance, read_source,
};
use super::{CliError, block_on, now, warn};
use crate::allocation::AllocationSet;
use crate::config::Settings;
use crate::cost::{ReportRequest, RequestError, RequestText};
use crate::output::{
    Container, FocusEncoding, FocusVersion, Format, OutputFile, write_chargeback_parquet,
    write_report, write_tokens_csv, write_tokens_json,
};
use crate::pricing::RateCard;
use crate::reporting::Sources;
use crate::store::RollupStore;
use crate::time::Interval;
use crate::tokens::report::TokenRequest;

#[derive(Args, Debug)]
pub(super) struct ReportArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Window start, RFC 3339 or a date (default: start of the month of --to).
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// Window end, exclusive, RFC 3339 or a date (default: now).
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// Group-by keys, comma-separated, in column order [default: cost_center,namespace].
    #[arg(long, value_name = "KEYS")]
    group_by: Option<String>,
    /// Rows per hour, day or month (default: one row per group for the whole window).
    #[arg(long, value_name = "STEP", default_value = "window")]
    step: String,
    /// csv, json, or focus (FinOps FOCUS 1.3 rows, or 1.2 with --focus-version).
    #[arg(long, value_name = "FORMAT", default_value = "csv")]
    format: String,
    /// Spread unallocated capacity over the groups that used it instead of `__unallocated__`.
    #[arg(long)]
    share_unallocated: bool,
    /// Only this cost center's lines (grouped by cost_center)
    #[arg(long, value_name = "NAME")]
    cost_center: Option<String>,
    /// Only this namespace's lines (grouped by namespace)
    #[arg(long, value_name = "NAME")]
    namespace: Option<String>,
    /// Write to FILE instead of stdout, in the format its extension names: .csv, .csv.gz or
    /// .parquet (the chargeback, or FOCUS rows with --format focus), .json (--format json)
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// FOCUS version of --format focus: 1.3 or 1.2 (default: config `focus.version`, else 1.3)
    #[arg(long, value_name = "VERSION")]
    focus_version: Option<FocusVersion>,
    /// Cost per million tokens per served model (csv or json; group-by keys: served_model and
    /// any chargeback key, default served_model,cost_center,namespace), from the serving
    /// engines' token counters in Prometheus (the demo simulates them).
    #[arg(long, conflicts_with = "focus_version")]
    tokens: bool,
}

impl ReportArgs {
    /// The request's parameters as given.
    fn text(&self) -> RequestText<'_> {
        RequestText {
            from: self.from.as_deref(),
            to: self.to.as_deref(),
            group_by: self.group_by.as_deref(),
            step: Some(&self.step),
            share_unallocated: self.share_unallocated,
            cost_center: self.cost_center.as_deref(),
            namespace: self.namespace.as_deref(),
        }
    }

    /// `--output`'s container, if given.
    fn container(&self) -> Result<Option<Container>, CliError> {
        self.output
            .as_deref()
            .map(Container::of)
            .transpose()
            .map_err(|e| CliError::input(format!("--output: {e}")))
    }
}

/// A request parameter that could not be read, as the flag that gave it.
fn flag_error(e: RequestError) -> CliError {
    let flag = e.field.replace('_', "-");
    CliError::input(format!("--{flag}: {}", e.message))
}

pub(super) fn report(
    args: ReportArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    if args.tokens {
        return report_tokens(&args, out, err);
    }
    let format: Format = args
        .format
        .parse()
        .map_err(|e| CliError::input(format!("--format: {e}")))?;
    let asked = ReportRequest::parse(args.text(), now()).map_err(flag_error)?;
    let request = format
        .request(&asked, args.group_by.is_some())
        .map_err(flag_error)?;
    let container = args.container()?;
    if let Some(container) = container
        && (container == Container::Json) != (format == Format::Json)
    {
        return Err(CliError::input(
            "--output: a .json file takes --format json; .csv, .csv.gz and .parquet take --format csv or focus",
        ));
    }
    let parquet = container == Some(Container::Parquet);
    with_sources(&args.source, request.window, |sources, settings, card| {
        let mut focus = settings.focus.clone().for_cluster(sources.cluster);
        if let Some(version) = args.focus_version {
            focus.version = version;
        }
        to_output(&args, container, out, |target| {
            if format == Format::Focus {
                // Streamed a charge period at a time: a month of a large fleet is never held
                // at once.
                let encoding = FocusEncoding::new(parquet, card.currency().minor_units());
                let runtime = tokio::runtime::Runtime::new().map_err(CliError::runtime)?;
                let warnings = sources
                    .export_focus(
                        runtime.handle(),
                        &request,
                        (&focus, encoding, &asked.only),
                        target,
                    )
                    .map_err(CliError::runtime)?;
                return warn(err, &warnings.texts());
            }
            let report = block_on(sources.report(&request))?.map_err(CliError::runtime)?;
            warn(err, &report.warnings.texts())?;
            if parquet {
                write_chargeback_parquet(&report.into_chargeback(), target)
            } else {
                write_report(report, format, &focus, target)
            }
            .map_err(CliError::runtime)
        })
    })
}

/// `report --tokens`: cost per million tokens, as CSV or JSON.
fn report_tokens(
    args: &ReportArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let json = match args.format.as_str() {
        "csv" => false,
        "json" => true,
        other => {
            return Err(CliError::input(format!(
                "--format: a token report is csv or json, not {other:?}"
            )));
        }
    };
    let request = TokenRequest::parse(args.text(), now()).map_err(flag_error)?;
    let container = args.container()?;
    if let Some(container) = container
        && (container == Container::Json) != json
    {
        return Err(CliError::input(
            "--output: a token report is written to .csv or .csv.gz (--format csv) or .json (--format json)",
        ));
    }
    if container == Some(Container::Parquet) {
        return Err(CliError::input(
            "--output: a token report is written to .csv, .csv.gz or .json",
        ));
    }
    with_sources(
        &args.source,
        request.report.window,
        |sources, settings, _| {
            let weight = settings.tokens.input_weight().map_err(CliError::input)?;
            let runtime = tokio::runtime::Runtime::new().map_err(CliError::runtime)?;
            let report = sources
                .token_report(runtime.handle(), &request, weight)
                .map_err(CliError::runtime)?;
            warn(err, &report.warnings)?;
            to_output(args, container, out, |target| {
                match json {
                    true => write_tokens_json(&report, target),
                    false => write_tokens_csv(&report, target),
                }
                .map_err(CliError::runtime)
            })
        },
    )
}

/// Runs `work` with what the source flags name for a report of `window`: the allocations,
/// stored days and usage, the settings and the rate card.
fn with_sources<T>(
    source: &SourceArgs,
    window: Interval,
    work: impl FnOnce(&Sources<'_>, &Settings, &RateCard) -> Result<T, CliError>,
) -> Result<T, CliError> {
    let as_of = source.as_of()?.unwrap_or(window.end);
    let (settings, card) = load_settings(source)?;
    let prometheus = prometheus_client(source, &settings)?;
    let (sets, name) = read_source(source, &settings, &card, as_of, window)?;
    let store = RollupStore::existing(&settings.store.dir, provenance(&name, &card));
    let sets: Vec<&AllocationSet> = sets.iter().collect();
    let sources = command_sources(
        source,
        &sets,
        &card,
        store.as_ref(),
        prometheus.as_ref(),
        &name,
    );
    work(&sources, &settings, &card)
}

/// Runs `write` on `--output`'s file (in `container`, renamed into place once written) or on
/// `out`.
fn to_output(
    args: &ReportArgs,
    container: Option<Container>,
    out: &mut dyn Write,
    write: impl FnOnce(&mut dyn Write) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let (Some(path), Some(container)) = (&args.output, container) else {
        return write(out);
    };
    let mut file = OutputFile::create(path, container)
        .map_err(|e| CliError::runtime(format!("--output {}: {e}", path.display())))?;
    write(&mut file)?;
    file.close().map_err(CliError::runtime)
}
