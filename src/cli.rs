//! The `tollgate` command line (SPEC §6): parsing, running, and exit codes.
//!
//! Exit codes: 0 ok, 1 runtime failure, 2 bad input or usage — each failure with a one-line
//! message saying what to fix.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DAY: i64 = 86_400;

use crate::allocation::{AllocationSet, BuildOptions, ClusterObjects, allocations};
use crate::budget::validate_budgets;
use crate::config::Settings;
use crate::cost::{ReportRequest, RequestError, RequestText};
use crate::export::{Destination, export_days};
use crate::ledger::Ledger;
use crate::live::{ClusterStores, Leadership, SourceHealth, list_cluster, spawn_watchers};
use crate::output::{
    Container, FocusEncoding, FocusVersion, Format, OutputFile, render, render_tokens,
    write_chargeback_parquet,
};
use crate::pricing::RateCard;
use crate::prometheus::{Prometheus, history_allocations};
use crate::reporting::Sources;
use crate::serve::{
    Archive, Auth, AuthSettings, Backfill, CertReloader, CheckRequest, DailyExport, Feed,
    Following, HistorySource, QuotaGate, Recorded, ServeOptions, Subject, TlsOptions,
    client_verifier, read_once,
};
use crate::source::{DemoFleet, DemoHistory, DemoUtilization, demo_budgets, read_snapshot};
use crate::store::Provenance;
use crate::store::RollupStore;
use crate::time::{Interval, UnixSeconds, format_time, month_start, parse_time};
use crate::tokens::report::TokenRequest;
use k8s_openapi::api::core::v1::Pod;

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
    Report(Box<ReportArgs>),
    /// Run the service: watch the cluster (or the demo fleet, or a snapshot), keep the ledger,
    /// serve chargeback, metrics and health over HTTP.
    Serve(Box<ServeArgs>),
    /// Decide whether a pod may start within its budgets; prints the decision as JSON.
    /// Exit 0: allowed, 3: denied.
    Quota(Box<QuotaArgs>),
    /// Write closed days as Hive-partitioned Parquet (FOCUS rows and hourly chargeback rows)
    /// to a directory or an S3-compatible bucket; days already there are skipped.
    Export(Box<ExportArgs>),
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
    Backfill(Box<BackfillArgs>),
    /// Re-price stored days with the current rate card (rolls them up again from the source).
    Reprice(Box<BackfillArgs>),
}

#[derive(Args, Debug)]
struct BackfillArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// First day (default: 35 days before --to).
    #[arg(long, value_name = "DATE")]
    from: Option<String>,
    /// Day after the last (default: today, UTC: only closed days).
    #[arg(long, value_name = "DATE")]
    to: Option<String>,
    /// Also roll up days already stored.
    #[arg(long)]
    force: bool,
}

#[derive(Args, Debug)]
struct ExportArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// A directory, or s3://bucket/prefix (credentials, region and endpoint from the AWS_*
    /// environment).
    #[arg(long, value_name = "DIR|URL")]
    dest: String,
    /// First day (default: 35 days before --to).
    #[arg(long, value_name = "DATE")]
    from: Option<String>,
    /// Day after the last (default: today, UTC: only closed days).
    #[arg(long, value_name = "DATE")]
    to: Option<String>,
    /// Write days already there again.
    #[arg(long)]
    again: bool,
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

/// Where allocations come from.
#[derive(Args, Debug)]
struct SourceArgs {
    /// Use the built-in simulated fleet (no cluster needed).
    #[arg(long, conflicts_with_all = ["snapshot", "history"])]
    demo: bool,
    /// Rebuild allocations from kube-state-metrics and DCGM history in Prometheus (no cluster
    /// needed; needs --prometheus or config `prometheus.url`).
    #[arg(long, conflicts_with = "snapshot")]
    history: bool,
    /// Prometheus-compatible URL for DCGM usage (and --history); overrides `prometheus.url`.
    #[arg(long, value_name = "URL")]
    prometheus: Option<String>,
    /// Size of the demo fleet, in units of 209 GPUs.
    #[arg(long, default_value_t = 1, value_name = "N", requires = "demo")]
    demo_scale: u32,
    /// Read `kubectl get <kind> -A -o json` output from DIR (pods.json, nodes.json, …).
    #[arg(long, value_name = "DIR")]
    snapshot: Option<PathBuf>,
    /// "Now" for pods still running (default: `report` --to; `serve` and `quota` the clock).
    #[arg(long, value_name = "TIME")]
    as_of: Option<String>,
    /// Rate card (default: config `pricing.file`, else the built-in example card).
    #[arg(long, value_name = "FILE")]
    pricing: Option<PathBuf>,
    /// Configuration file (TOML); `TOLLGATE__SECTION__KEY` variables override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl SourceArgs {
    /// `--as-of`, read.
    fn as_of(&self) -> Result<Option<UnixSeconds>, CliError> {
        self.as_of
            .as_deref()
            .map(|t| time_arg("as-of", t))
            .transpose()
    }
}

#[derive(Args, Debug)]
struct ReportArgs {
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

#[derive(Args, Debug)]
struct QuotaArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// The namespace the pod would run in.
    #[arg(long)]
    namespace: String,
    /// A cost center overriding the pod's and the namespace's.
    #[arg(long)]
    cost_center: Option<String>,
    /// GPUs the pod would hold (instead of --pod).
    #[arg(
        long,
        value_name = "N",
        required_unless_present = "pod",
        conflicts_with = "pod"
    )]
    gpus: Option<String>,
    /// GPU model or product of --gpus (default: the costliest in the rate card).
    #[arg(long, value_name = "MODEL", requires = "gpus")]
    gpu_model: Option<String>,
    /// The pod manifest (YAML or JSON).
    #[arg(long, value_name = "FILE")]
    pod: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct ServeArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Address to listen on (default: config `server.listen`, else 0.0.0.0:8080).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// With --demo: simulated seconds per real second.
    #[arg(long, default_value_t = 60, value_name = "N", requires = "demo")]
    demo_speed: u32,
    /// With --demo: keep the demo's ledger and rollups in DIR and carry on from them when
    /// started again (default: a temporary directory, removed on exit).
    #[arg(long, value_name = "DIR", requires = "demo")]
    demo_data: Option<PathBuf>,
    /// Log format on stderr: text or json.
    #[arg(long, default_value = "text", value_name = "FORMAT")]
    log_format: String,
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
        Command::Report(args) => report(*args, out, err),
        Command::Serve(args) => serve(*args, out),
        Command::Quota(args) => quota(*args, out),
        Command::Export(args) => export(*args, out, err),
        Command::Store(StoreCommand::Backfill(args)) => backfill(*args, false, out, err),
        Command::Store(StoreCommand::Reprice(args)) => backfill(*args, true, out, err),
        Command::Pricing(PricingCommand::Check { files, products }) => {
            pricing_check(&files, &products, out)
        }
    }
}

fn time_arg(flag: &str, value: &str) -> Result<UnixSeconds, CliError> {
    parse_time(value).map_err(|e| CliError::input(format!("--{flag}: {e}")))
}

fn now() -> UnixSeconds {
    jiff::Timestamp::now().as_second()
}

fn report(args: ReportArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), CliError> {
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
                return warn(err, &warnings);
            }
            let report = block_on(sources.report(&request))?.map_err(CliError::runtime)?;
            warn(err, &report.warnings)?;
            if parquet {
                write_chargeback_parquet(&report.chargeback(), target)
            } else {
                target.write_all(render(&report, format, &focus).as_bytes())
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
                target
                    .write_all(render_tokens(&report, json).as_bytes())
                    .map_err(CliError::runtime)
            })
        },
    )
}

/// Prints each warning on its own line.
fn warn(err: &mut dyn Write, warnings: &[String]) -> Result<(), CliError> {
    for warning in warnings {
        writeln!(err, "warning: {warning}").map_err(CliError::runtime)?;
    }
    Ok(())
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

/// Loads the configuration and the rate card the flags and config name.
fn load_settings(source: &SourceArgs) -> Result<(Settings, RateCard), CliError> {
    let settings = Settings::load(source.config.as_deref()).map_err(CliError::input)?;
    let card = match source.pricing.as_ref().or(settings.pricing.file.as_ref()) {
        Some(path) => RateCard::load(path).map_err(CliError::input)?,
        None => RateCard::builtin(),
    };
    Ok((settings, card))
}

/// The name of a `--history` source: the Prometheus it reads.
fn history_name(source: &SourceArgs, settings: &Settings) -> String {
    let url = source
        .prometheus
        .as_ref()
        .or(settings.prometheus.url.as_ref());
    format!("prometheus:{}", url.map(String::as_str).unwrap_or_default())
}

/// Allocations rebuilt from Prometheus history over `window` (`--history`).
fn read_history(
    source: &SourceArgs,
    settings: &Settings,
    card: &RateCard,
    window: Interval,
) -> Result<AllocationSet, CliError> {
    let prometheus = prometheus_client(source, settings)?.ok_or_else(no_prometheus)?;
    block_on(history_allocations(
        &prometheus,
        window,
        card,
        &settings.cost_center.key,
    ))?
    .map_err(CliError::runtime)
}

/// The service's authentication, with a Kubernetes client for TokenReviews when auth is on
/// and a cluster is reachable.
async fn authentication(settings: &AuthSettings) -> Result<Auth, CliError> {
    let auth = Auth::new(settings.clone()).map_err(CliError::input)?;
    let client = if auth.wants_reviews() {
        kube::Client::try_default()
            .await
            .inspect_err(|e| {
                tracing::warn!(error = %e, "no Kubernetes API: bearer tokens cannot be reviewed")
            })
            .ok()
    } else {
        None
    };
    auth.with_reviews(client).map_err(CliError::input)
}

fn no_prometheus() -> CliError {
    CliError::input("--history reads Prometheus: pass --prometheus URL or set prometheus.url")
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

/// The Prometheus client `--prometheus` or config `prometheus.url` names, if any.
fn prometheus_client(
    source: &SourceArgs,
    settings: &Settings,
) -> Result<Option<Prometheus>, CliError> {
    source
        .prometheus
        .as_ref()
        .or(settings.prometheus.url.as_ref())
        .map(|url| Prometheus::new(url, &settings.prometheus).map_err(CliError::input))
        .transpose()
}

/// What a source is called: the name its stored rollups carry ([`Provenance`]) and the
/// cluster's name (the `cluster` group key, metric label, export partition and FOCUS
/// `x_ClusterName`); both are `cluster.name` when it is configured.
struct SourceName {
    stored: String,
    cluster: String,
}

impl SourceName {
    /// `cluster.name` when configured, else these defaults.
    fn new(settings: &Settings, stored: String, cluster: String) -> Self {
        match configured_cluster(settings) {
            Some(name) => SourceName {
                stored: name.clone(),
                cluster: name,
            },
            None => SourceName { stored, cluster },
        }
    }
}

/// `cluster.name`, when set.
fn configured_cluster(settings: &Settings) -> Option<String> {
    settings
        .cluster
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
}

/// Allocations for the source the flags name (Prometheus history, the demo, a snapshot, or the
/// live cluster), at least those that overlap `window`, in one or more sets read as one; and
/// the source's names.
fn read_source(
    source: &SourceArgs,
    settings: &Settings,
    card: &RateCard,
    as_of: UnixSeconds,
    window: Interval,
) -> Result<(Vec<AllocationSet>, SourceName), CliError> {
    if source.history {
        let window = Interval::new(window.start, window.end.min(as_of));
        let set = read_history(source, settings, card, window)?;
        let name = history_name(source, settings);
        return Ok((vec![set], SourceName::new(settings, name.clone(), name)));
    }
    let options = BuildOptions {
        as_of,
        cost_center_key: settings.cost_center.key.clone(),
    };
    if source.demo {
        let sets = DemoFleet::new(source.demo_scale, as_of).allocations_in(window, card, &options);
        let name = SourceName::new(settings, demo_name(source.demo_scale), DEMO.into());
        return Ok((sets, name));
    }
    let objects = cluster_objects(source)?;
    let name = match &source.snapshot {
        Some(dir) => snapshot_source_name(settings, &objects, dir),
        None => {
            let uid = objects.kube_system_uid().unwrap_or("cluster");
            SourceName::new(settings, uid.to_string(), uid.to_string())
        }
    };
    Ok((vec![allocations(&objects, card, &options)], name))
}

/// A snapshot's names: its `kube-system` namespace UID, else `snapshot:<dir>` for its stored
/// rollups and the directory's name for its cluster.
fn snapshot_source_name(settings: &Settings, objects: &ClusterObjects, dir: &Path) -> SourceName {
    match objects.kube_system_uid() {
        Some(uid) => SourceName::new(settings, uid.to_string(), uid.to_string()),
        None => {
            let dir = snapshot_name(dir);
            SourceName::new(settings, format!("snapshot:{dir}"), dir)
        }
    }
}

/// What a command's report is made from: `sets` (everything the source holds), `store`'s days
/// where it has them, usage from Prometheus or the demo's simulation.
fn command_sources<'a>(
    source: &SourceArgs,
    sets: &'a [&'a AllocationSet],
    card: &'a RateCard,
    store: Option<&'a RollupStore>,
    prometheus: Option<&'a Prometheus>,
    name: &'a SourceName,
) -> Sources<'a> {
    Sources {
        sets,
        from: None,
        card,
        store,
        prometheus,
        simulated: simulated_usage(source),
        cluster: &name.cluster,
    }
}

/// The demo fleet's simulated utilization and tokens, for a demo source (Prometheus, when
/// given, wins).
fn simulated_usage(source: &SourceArgs) -> Option<&'static dyn crate::tokens::Telemetry> {
    source
        .demo
        .then_some(&DemoUtilization as &dyn crate::tokens::Telemetry)
}

/// The demo's cluster name, whatever its scale.
const DEMO: &str = "demo";

/// The demo fleet's source name: `demo`, or `demo-scale-N` for a larger fleet.
fn demo_name(scale: u32) -> String {
    if scale <= 1 {
        DEMO.to_string()
    } else {
        format!("demo-scale-{scale}")
    }
}

/// A snapshot directory's own name (`.` and trailing slashes resolved).
fn snapshot_name(dir: &Path) -> String {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string())
}

/// The watched cluster's name: `cluster.name`, else its `kube-system` namespace UID (read
/// once at start).
fn live_cluster_name(settings: &Settings) -> Result<String, CliError> {
    if let Some(name) = configured_cluster(settings) {
        return Ok(name);
    }
    block_on(async {
        let client = connect().await?;
        let namespaces = kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(client)
            .list(&kube::api::ListParams::default().fields("metadata.name=kube-system"))
            .await
            .map_err(|e| {
                CliError::runtime(format!(
                    "cannot read the kube-system namespace to name the cluster ({e}): grant list on namespaces, or set cluster.name"
                ))
            })?;
        let uid = namespaces
            .items
            .into_iter()
            .find(|n| n.metadata.name.as_deref() == Some("kube-system"))
            .and_then(|n| n.metadata.uid);
        Ok(uid.unwrap_or_else(|| {
            tracing::warn!("the cluster has no kube-system namespace: its rollups are stored as cluster \"cluster\"; set cluster.name");
            "cluster".to_string()
        }))
    })?
}

/// The provenance stored rollups of the source `name`s carry, with the rate card's digest.
fn provenance(name: &SourceName, card: &RateCard) -> Provenance {
    Provenance {
        source: name.stored.clone(),
        rate_card: card.digest(),
    }
}

/// Connects to the cluster: in-cluster config, else the kubeconfig (`KUBECONFIG` honoured).
async fn connect() -> Result<kube::Client, CliError> {
    kube::Client::try_default().await.map_err(|e| {
        CliError::runtime(format!(
            "cannot reach a Kubernetes cluster ({e}): run in a cluster, set KUBECONFIG, or use --demo or --snapshot DIR"
        ))
    })
}

/// The objects of a snapshot, or of the live cluster listed once now (no ledger history: the
/// running service's API has that).
fn cluster_objects(source: &SourceArgs) -> Result<ClusterObjects, CliError> {
    if let Some(dir) = &source.snapshot {
        return read_snapshot(dir).map_err(CliError::input);
    }
    block_on(async {
        let client = connect().await?;
        list_cluster(&client)
            .await
            .map_err(|e| CliError::runtime(format!("listing the cluster failed: {e}")))
    })?
}

fn backfill(
    args: BackfillArgs,
    reprice: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let today = now().div_euclid(DAY) * DAY;
    let (from, to) = closed_days(&args.from, &args.to, today)?;
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
    for warning in warnings {
        writeln!(err, "warning: {warning}").map_err(CliError::runtime)?;
    }
    let verb = if reprice { "priced again" } else { "rolled up" };
    writeln!(
        out,
        "{} days {verb}, {removed} past retention removed",
        days.len()
    )
    .map_err(CliError::runtime)
}

/// The closed days `--from` and `--to` name (UTC midnights; `--to` at most `today`, by default
/// today; `--from` by default 35 days before `--to`).
fn closed_days(
    from: &Option<String>,
    to: &Option<String>,
    today: UnixSeconds,
) -> Result<(UnixSeconds, UnixSeconds), CliError> {
    let day_arg = |flag: &str, value: &Option<String>, default: i64| -> Result<i64, CliError> {
        let at = value
            .as_deref()
            .map(|t| time_arg(flag, t))
            .transpose()?
            .unwrap_or(default);
        Ok(at.div_euclid(DAY) * DAY)
    };
    let to = day_arg("to", to, today)?.min(today);
    let from = day_arg("from", from, to - 35 * DAY)?;
    Ok((from, to))
}

fn export(args: ExportArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), CliError> {
    let today = now().div_euclid(DAY) * DAY;
    let (from, to) = closed_days(&args.from, &args.to, today)?;
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
    for warning in &exported.warnings {
        writeln!(err, "warning: {warning}").map_err(CliError::runtime)?;
    }
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

fn read_pod(file: &Path) -> Result<Pod, CliError> {
    let fail = |message: String| CliError::input(format!("{}: {message}", file.display()));
    let text = std::fs::read_to_string(file).map_err(|e| fail(format!("cannot read: {e}")))?;
    let value: serde_json::Value =
        serde_yaml::from_str(&text).map_err(|e| fail(format!("not YAML or JSON: {e}")))?;
    serde_json::from_value(value).map_err(|e| fail(format!("not a Pod: {e}")))
}

fn quota(args: QuotaArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let (settings, card) = load_settings(&args.source)?;
    let gate = quota_gate(&settings, &args.source)?;
    let as_of = args.source.as_of()?.unwrap_or_else(now);
    let subject = match (&args.pod, &args.gpus) {
        (Some(file), _) => Subject::Pod(Box::new(read_pod(file)?)),
        (None, Some(gpus)) => Subject::Gpus {
            gpus: gpus.trim().parse().map_err(|_| {
                CliError::input(format!("--gpus: {gpus:?} is not a number of GPUs"))
            })?,
            gpu_model: args.gpu_model.clone(),
        },
        (None, None) => return Err(CliError::input("pass --gpus N or --pod FILE")),
    };
    let card = Arc::new(card);
    let mut own = history_name(&args.source, &settings);
    let feed = if args.source.history {
        let set = read_history(
            &args.source,
            &settings,
            &card,
            Interval::new(month_start(as_of).unwrap_or(as_of), as_of),
        )?;
        Feed::Recorded(Recorded::new(set, as_of))
    } else {
        let objects = if args.source.demo {
            DemoFleet::new(args.source.demo_scale, as_of).objects()
        } else {
            cluster_objects(&args.source)?
        };
        own = match (&args.source.snapshot, args.source.demo) {
            (_, true) => DEMO.to_string(),
            (Some(dir), _) => snapshot_source_name(&settings, &objects, dir).cluster,
            (None, _) => objects.kube_system_uid().unwrap_or("cluster").to_string(),
        };
        Feed::Snapshot {
            objects: Box::new(objects),
            as_of: Some(as_of),
        }
    };
    // A global budget adds the other clusters' figures, read once.
    if let Some((global, _)) = global_prometheus(&settings)?
        && gate.has_global_budgets()
    {
        let own = configured_cluster(&settings).unwrap_or(own);
        match block_on(global.other_clusters(&own))? {
            Ok(others) => gate.set_other_clusters(others),
            Err(e) => tracing::warn!(error = %e, "the other clusters' figures could not be read"),
        }
    }
    let view = read_once(feed, card.clone(), &settings.cost_center.key);
    let request = CheckRequest {
        namespace: args.namespace.clone(),
        subject,
        cost_center: args.cost_center.clone(),
        dry_run: true,
    };
    let decision = gate
        .check(&view, &card, &request)
        .map_err(CliError::input)?;
    let text = serde_json::to_string_pretty(&decision).map_err(CliError::runtime)?;
    writeln!(out, "{text}").map_err(CliError::runtime)?;
    if decision.allowed {
        Ok(())
    } else {
        Err(CliError {
            code: 3,
            message: format!("denied: {}", decision.message),
        })
    }
}

/// The Prometheus holding every cluster's series, when `[quota] global_prometheus` is set,
/// with how often to read it.
fn global_prometheus(settings: &Settings) -> Result<Option<(Prometheus, Duration)>, CliError> {
    let Some(url) = &settings.quota.global_prometheus else {
        return Ok(None);
    };
    let prometheus = Prometheus::new(url, &settings.prometheus)
        .map_err(|e| CliError::input(format!("quota.global_prometheus: {e}")))?;
    let every = Duration::from_secs(settings.quota.global_refresh_seconds.max(1));
    Ok(Some((prometheus, every)))
}

/// The gate over the configured budgets; the demo, configured with none, brings its own
/// ([`demo_budgets`]).
fn quota_gate(settings: &Settings, source: &SourceArgs) -> Result<QuotaGate, CliError> {
    let raw = if source.demo && settings.budget.is_empty() {
        demo_budgets(source.demo_scale)
    } else {
        settings.budget.clone()
    };
    let budgets =
        validate_budgets(&raw).map_err(|e| CliError::input(format!("configuration: {e}")))?;
    if budgets.iter().any(|b| b.global) && settings.quota.global_prometheus.is_none() {
        return Err(CliError::input(
            "configuration: a budget with scope = \"global\" needs [quota] global_prometheus, the Prometheus holding every cluster's tollgate_* series",
        ));
    }
    Ok(QuotaGate::new(
        budgets,
        settings.quota.clone(),
        settings.cost_center.key.clone(),
    ))
}

fn init_logs(format: &str) -> Result<(), CliError> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let installed = match format {
        "json" => logs.json().try_init(),
        "text" => logs.try_init(),
        other => {
            return Err(CliError::input(format!(
                "--log-format: unknown format {other:?}: use text or json"
            )));
        }
    };
    // Already installed (several commands in one test process): keep the first.
    drop(installed);
    Ok(())
}

fn serve(args: ServeArgs, out: &mut dyn Write) -> Result<(), CliError> {
    init_logs(&args.log_format)?;
    let (settings, card) = load_settings(&args.source)?;
    let listen = args
        .listen
        .clone()
        .unwrap_or_else(|| settings.server.listen.clone());
    let tls = match (
        &settings.tls.listen,
        &settings.tls.cert_file,
        &settings.tls.key_file,
    ) {
        (None, None, None) => None,
        (Some(listen), Some(cert), Some(key)) => Some(TlsOptions {
            listen: listen.clone(),
            certificates: CertReloader::new(cert, key).map_err(CliError::input)?,
            check_every: Duration::from_secs(10),
            clients: settings
                .tls
                .client_ca_file
                .as_deref()
                .map(client_verifier)
                .transpose()
                .map_err(CliError::input)?,
        }),
        _ => {
            return Err(CliError::input(
                "configuration: [tls] needs listen, cert_file and key_file together",
            ));
        }
    };
    let live_cluster = !args.source.demo && args.source.snapshot.is_none() && !args.source.history;
    // Among replicas of a live cluster's service, only the elected one writes.
    let (leadership, candidate) = if live_cluster && settings.leader.enabled {
        let (leadership, candidate) = Leadership::contested();
        (leadership, Some(candidate))
    } else {
        (Leadership::default(), None)
    };
    // The demo keeps its ledger and rollups like a cluster does, in a directory of its own.
    let demo_store = match (&args.demo_data, args.source.demo) {
        (Some(dir), _) => Some(DemoStore::kept(dir)?),
        (None, true) => Some(DemoStore::temporary()?),
        (None, false) => None,
    };
    let store_dir = match &demo_store {
        Some(demo) => Some(demo.dir.as_path()),
        None => live_cluster.then_some(settings.store.dir.as_path()),
    };
    let snapshot = args
        .source
        .snapshot
        .as_deref()
        .map(read_snapshot)
        .transpose()
        .map_err(CliError::input)?;
    let name = if args.source.demo {
        SourceName::new(&settings, demo_name(args.source.demo_scale), DEMO.into())
    } else if let (Some(objects), Some(dir)) = (&snapshot, &args.source.snapshot) {
        snapshot_source_name(&settings, objects, dir)
    } else if args.source.history {
        let name = history_name(&args.source, &settings);
        SourceName::new(&settings, name.clone(), name)
    } else {
        let name = live_cluster_name(&settings)?;
        SourceName::new(&settings, name.clone(), name)
    };
    let store = match store_dir {
        Some(dir) => {
            Some(RollupStore::open(dir, provenance(&name, &card)).map_err(CliError::runtime)?)
        }
        None => None,
    };
    let archive = Archive {
        prometheus: prometheus_client(&args.source, &settings)?,
        simulated: args
            .source
            .demo
            .then(|| Arc::new(DemoUtilization) as Arc<dyn crate::tokens::Telemetry + Send>),
        store,
        cluster: name.cluster.clone(),
        input_weight: settings.tokens.input_weight().map_err(CliError::input)?,
        export: settings
            .export
            .dest
            .as_deref()
            .map(|dest| {
                Ok::<_, CliError>(DailyExport {
                    dest: Destination::parse(dest)
                        .map_err(|e| CliError::input(format!("configuration: {e}")))?,
                    focus: settings.focus.clone().for_cluster(&name.cluster),
                })
            })
            .transpose()?,
        global: global_prometheus(&settings)?,
        retention_days: settings.store.rollup_retention_days,
        utilization: Default::default(),
        leadership: leadership.clone(),
        ..Archive::default()
    };
    let mut options = ServeOptions {
        listen,
        reconcile_every: Duration::from_secs(settings.sources.reconcile_seconds.max(1)),
        cost_center_key: settings.cost_center.key.clone(),
        tls,
        archive: Arc::new(archive),
        history: None,
        focus: settings.focus.clone().for_cluster(&name.cluster),
        auth: Arc::default(),
        following: None,
        reports_at_once: settings.server.reports_at_once,
        backfill: None,
    };
    let as_of = args.source.as_of()?;
    let quota = quota_gate(&settings, &args.source)?;
    // The async workers answer requests only; background work has its own threads.
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.worker_threads(settings.server.worker_threads());
    run_on(runtime, async {
        options.auth = Arc::new(authentication(&settings.auth).await?);
        let (feed, ledger, what) = if args.source.demo {
            // The fleet's past is its history: rolled up day by day in the background, today's
            // part kept in memory. From its cut-over on it moves through the watch path, into a
            // ledger kept like a cluster's; started again, it carries on where it stopped.
            let dir = demo_store
                .as_ref()
                .map(|d| d.dir.clone())
                .unwrap_or_default();
            let (ledger, notes) = Ledger::open(&dir).map_err(CliError::runtime)?;
            notes.iter().for_each(|note| tracing::warn!("{note}"));
            let mut ledger = ledger.cutting_over(true);
            let began = ledger.begin(now()).map_err(CliError::runtime)?;
            let resume = ledger.state().heartbeat().map_or(began, |at| at.max(now()));
            let fleet = DemoFleet::new(args.source.demo_scale, began);
            let today = began.div_euclid(DAY) * DAY;
            let key = &settings.cost_center.key;
            let rolled = ledger.state().rolled_until().unwrap_or(UnixSeconds::MIN);
            let today_so_far = Interval::new(today.max(rolled), began);
            if !today_so_far.is_empty() {
                let partial = DemoHistory::new(fleet).window(today_so_far, &card, key);
                options.history = Some(Arc::new(partial));
            }
            options.backfill = Some(Backfill {
                source: HistorySource::Demo(Box::new(DemoHistory::new(fleet))),
                days: Interval::new(fleet.earliest().div_euclid(DAY) * DAY, today),
                cost_center_key: key.clone(),
            });
            options.archive.backfilling.store(true, Ordering::Release);
            (
                Feed::demo_from(fleet.at(resume), args.demo_speed),
                ledger,
                "the demo fleet",
            )
        } else if let Some(objects) = snapshot {
            let feed = Feed::Snapshot {
                objects: Box::new(objects),
                as_of,
            };
            (feed, Ledger::in_memory(), "the snapshot")
        } else if args.source.history {
            let recorded = options
                .archive
                .follow_history(
                    card.clone(),
                    settings.cost_center.key.clone(),
                    settings.prometheus.history_days,
                    Duration::from_secs(settings.prometheus.history_step_seconds.max(1).into()),
                )
                .await
                .ok_or_else(no_prometheus)?
                .map_err(CliError::runtime)?;
            (
                Feed::Recorded(recorded),
                Ledger::in_memory(),
                "Prometheus history",
            )
        } else {
            let client = connect().await?;
            let ledger = match candidate {
                Some(candidate) => {
                    candidate
                        .campaign(client.clone(), &settings.leader)
                        .map_err(CliError::input)?;
                    let follow = u64::from(settings.leader.follow_seconds.max(1));
                    options.following = Some(Following::new(
                        settings.store.dir.clone(),
                        leadership,
                        Duration::from_secs(follow),
                    ));
                    // Read-only until the election is won.
                    Ledger::read(&settings.store.dir)
                        .map_err(CliError::runtime)?
                        .0
                }
                None => {
                    let (ledger, notes) =
                        Ledger::open(&settings.store.dir).map_err(CliError::runtime)?;
                    notes.iter().for_each(|note| tracing::warn!("{note}"));
                    ledger
                }
            };
            // With Prometheus, what came before the install's first heartbeat is history: the
            // ledger counts from that instant on, history up to it, never both.
            let mut ledger = ledger.cutting_over(options.archive.prometheus.is_some());
            if let Some(prometheus) = &options.archive.prometheus {
                let began = ledger.begin(now()).map_err(CliError::runtime)?;
                let today = began.div_euclid(DAY) * DAY;
                // History not yet rolled up: whole days into the store in the background,
                // today's part up to the cut-over in memory.
                let days = i64::from(settings.prometheus.history_days) * DAY;
                let from = ledger
                    .state()
                    .rolled_until()
                    .map_or(began - days, |rolled| rolled.max(began - days));
                let today_so_far = Interval::new(from.max(today), began);
                if !today_so_far.is_empty() {
                    let key = &settings.cost_center.key;
                    match history_allocations(prometheus, today_so_far, &card, key).await {
                        Ok(history) => options.history = Some(Arc::new(history)),
                        Err(e) => {
                            tracing::warn!(error = %e, "history before the ledger began could not be read")
                        }
                    }
                }
                let whole_days = Interval::new(from.div_euclid(DAY) * DAY, today);
                if options.archive.store.is_some() && !whole_days.is_empty() {
                    options.backfill = Some(Backfill {
                        source: HistorySource::Prometheus,
                        days: whole_days,
                        cost_center_key: settings.cost_center.key.clone(),
                    });
                    options.archive.backfilling.store(true, Ordering::Release);
                }
            }
            let stores = Arc::new(Mutex::new(ClusterStores::default()));
            let health = Arc::new(SourceHealth::default());
            spawn_watchers(client, stores.clone(), health.clone());
            (Feed::Cluster { stores, health }, ledger, "the cluster")
        };
        let mut announced = Ok(());
        crate::serve::serve(
            feed,
            ledger,
            card,
            quota,
            options,
            |urls| {
                announced = writeln!(out, "Tollgate is serving {what}:")
                    .and_then(|_| urls.iter().try_for_each(|url| writeln!(out, "  {url}")))
                    .and_then(|_| out.flush());
            },
            crate::serve::shutdown_signal(),
        )
        .await
        .map_err(CliError::runtime)?;
        drop(demo_store);
        announced.map_err(CliError::runtime)
    })?
}

/// Where the demo keeps its ledger and rollups: a directory it was given, or one of its own
/// under the system's temporary directory, removed when the service stops.
struct DemoStore {
    dir: PathBuf,
    temporary: bool,
}

impl DemoStore {
    fn kept(dir: &Path) -> Result<Self, CliError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            CliError::input(format!(
                "--demo-data {}: cannot make it: {e}",
                dir.display()
            ))
        })?;
        Ok(DemoStore {
            dir: dir.to_path_buf(),
            temporary: false,
        })
    }

    fn temporary() -> Result<Self, CliError> {
        let dir = std::env::temp_dir().join(format!("tollgate-demo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| {
            CliError::runtime(format!(
                "cannot make the demo's store {}: {e}",
                dir.display()
            ))
        })?;
        Ok(DemoStore {
            dir,
            temporary: true,
        })
    }
}

impl Drop for DemoStore {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// One line on how `card` prices `product`.
fn describe_match(card: &RateCard, product: &str) -> String {
    let Some(found) = card.explain(product) else {
        return format!("{product:?}: unpriced (no match string matches it)");
    };
    let name = |id| card.model(id).name.as_str();
    let others: Vec<&str> = found.tied_with.iter().map(|&id| name(id)).collect();
    let chosen = name(found.model);
    let rule = &found.rule;
    if found.ambiguous() {
        format!(
            "{product:?}: AMBIGUOUS: match {rule:?} selects {chosen} and {}; priced as {chosen}, the model written first. Name the memory in the product (nodes: the nvidia.com/gpu.memory label) or add a longer match string",
            others.join(", ")
        )
    } else if found.by_memory {
        format!(
            "{product:?}: {chosen} (match {rule:?}, memory {} GB chose it over {})",
            crate::pricing::stated_memory_gb(product).unwrap_or_default(),
            others.join(", ")
        )
    } else {
        format!("{product:?}: {chosen} (match {rule:?})")
    }
}

fn pricing_check(
    files: &[PathBuf],
    products: &[String],
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let cards: Vec<Result<RateCard, String>> = if files.is_empty() {
        let settings = Settings::load(None).map_err(CliError::input)?;
        vec![match &settings.pricing.file {
            Some(path) => RateCard::load(path).map_err(|e| e.to_string()),
            None => Ok(RateCard::builtin()),
        }]
    } else {
        files
            .iter()
            .map(|f| RateCard::load(Path::new(f)).map_err(|e| e.to_string()))
            .collect()
    };
    let mut failures = Vec::new();
    for card in cards {
        match card {
            Ok(card) => {
                let periods: usize = card.models().iter().map(|m| m.periods.len()).sum();
                writeln!(
                    out,
                    "{}: ok, {} models, {periods} price periods, {}",
                    card.origin(),
                    card.models().len(),
                    card.currency()
                )
                .map_err(CliError::runtime)?;
                for (rule, models) in card.shared_matches() {
                    let names: Vec<String> = models
                        .iter()
                        .map(|&id| {
                            let model = card.model(id);
                            format!(
                                "{} ({} GB)",
                                model.name,
                                model.memory_gb.unwrap_or_default()
                            )
                        })
                        .collect();
                    writeln!(
                        out,
                        "  match {rule:?} is shared by {}: a product is priced as the one nearest its memory; a name without one as {}",
                        names.join(", "),
                        card.model(models[0]).name
                    )
                    .map_err(CliError::runtime)?;
                }
                for product in products {
                    writeln!(out, "  {}", describe_match(&card, product))
                        .map_err(CliError::runtime)?;
                }
            }
            Err(e) => failures.push(e),
        }
    }
    match failures.len() {
        0 => Ok(()),
        1 => Err(CliError::input(failures.remove(0))),
        n => Err(CliError::input(format!(
            "{n} rate cards are invalid: {}",
            failures.join("; ")
        ))),
    }
}
