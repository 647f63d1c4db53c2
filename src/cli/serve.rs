//! `tollgate serve`: the service over the live cluster, the demo fleet, a snapshot or
//! Prometheus history.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;

use super::quota::quota_gate;
use super::source::{
    DEMO, SourceArgs, SourceName, connect, demo_name, global_prometheus, history_name,
    live_cluster_name, load_settings, no_prometheus, prometheus_client, provenance,
    snapshot_source_name,
};
use super::{CliError, DAY, now, run_on};
use crate::export::Destination;
use crate::ledger::Ledger;
use crate::live::{ClusterStores, Leadership, SourceHealth, spawn_watchers};
use crate::prometheus::history_allocations;
use crate::serve::{
    Archive, Auth, AuthSettings, Backfill, CertReloader, DailyExport, Feed, Following,
    HistorySource, ServeOptions, TlsOptions, UnreadHistory, client_verifier,
};
use crate::source::{DemoFleet, DemoHistory, DemoUtilization, read_snapshot};
use crate::store::RollupStore;
use crate::time::{Interval, UnixSeconds};

/// How long a start waits for the history of the day before the cut-over (the startup probe
/// of the install gives the service a minute to listen).
const HISTORY_AT_START: Duration = Duration::from_secs(10);

#[derive(Args, Debug)]
pub(super) struct ServeArgs {
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

pub(super) fn serve(args: ServeArgs, out: &mut dyn Write) -> Result<(), CliError> {
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
        most_lines: Some(settings.server.max_report_lines.get()),
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
        reports_at_once: settings.server.reports_at_once.get(),
        backfill: None,
        unread_history: None,
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
                retry_every: settings.prometheus.history_retry(),
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
                    // Waited for a little only: a Prometheus that hangs must not keep the
                    // service from listening (its startup probe would restart it, again and
                    // again). What is not read by then is read in the background.
                    let key = &settings.cost_center.key;
                    let read = history_allocations(prometheus, today_so_far, &card, key);
                    let failed = match tokio::time::timeout(HISTORY_AT_START, read).await {
                        Ok(Ok(history)) => {
                            options.history = Some(Arc::new(history));
                            None
                        }
                        Ok(Err(e)) => Some(e.to_string()),
                        Err(_) => Some(format!(
                            "prometheus did not answer within {} s",
                            HISTORY_AT_START.as_secs()
                        )),
                    };
                    if let Some(error) = failed {
                        tracing::warn!(%error, "history before the ledger began could not be read; it is read again in the background");
                        options.unread_history = Some(UnreadHistory {
                            window: today_so_far,
                            cost_center_key: key.clone(),
                            retry_every: settings.prometheus.history_retry(),
                        });
                    }
                }
                // Every whole day of it the store lacks, not only those after the last day
                // rolled up: a day Prometheus could not answer for at an earlier start is read
                // again (those past the store's retention are not).
                let kept_from =
                    (now().div_euclid(DAY) - i64::from(settings.store.rollup_retention_days)) * DAY;
                let first_day = (began - days).max(kept_from).div_euclid(DAY) * DAY;
                let whole_days = Interval::new(first_day, today);
                if options.archive.store.is_some() && !whole_days.is_empty() {
                    options.backfill = Some(Backfill {
                        source: HistorySource::Prometheus,
                        days: whole_days,
                        cost_center_key: settings.cost_center.key.clone(),
                        retry_every: settings.prometheus.history_retry(),
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
