//! Where a command's allocations, usage and names come from: the source flags (`--demo`,
//! `--snapshot`, `--history`, else the live cluster), the configuration and the rate card.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use super::{CliError, block_on, time_arg};
use crate::allocation::{AllocationSet, BuildOptions, ClusterObjects, allocations};
use crate::config::Settings;
use crate::live::list_cluster;
use crate::pricing::RateCard;
use crate::prometheus::{Prometheus, history_allocations};
use crate::reporting::Sources;
use crate::source::{DemoFleet, DemoUtilization, read_snapshot};
use crate::store::{Provenance, RollupStore};
use crate::time::{Interval, UnixSeconds};

/// Where allocations come from.
#[derive(Args, Debug)]
pub(super) struct SourceArgs {
    /// Use the built-in simulated fleet (no cluster needed).
    #[arg(long, conflicts_with_all = ["snapshot", "history"])]
    pub(super) demo: bool,
    /// Rebuild allocations from kube-state-metrics and DCGM history in Prometheus (no cluster
    /// needed; needs --prometheus or config `prometheus.url`).
    #[arg(long, conflicts_with = "snapshot")]
    pub(super) history: bool,
    /// Prometheus-compatible URL for DCGM usage (and --history); overrides `prometheus.url`.
    #[arg(long, value_name = "URL")]
    pub(super) prometheus: Option<String>,
    /// Size of the demo fleet, in units of 209 GPUs (1 or more).
    #[arg(
        long,
        default_value_t = 1,
        value_name = "N",
        requires = "demo",
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub(super) demo_scale: u32,
    /// Read `kubectl get <kind> -A -o json` output from DIR (pods.json, nodes.json, …).
    #[arg(long, value_name = "DIR")]
    pub(super) snapshot: Option<PathBuf>,
    /// "Now" for pods still running (default: `report` --to; `serve` and `quota` the clock).
    #[arg(long, value_name = "TIME")]
    pub(super) as_of: Option<String>,
    /// Rate card (default: config `pricing.file`, else the built-in example card).
    #[arg(long, value_name = "FILE")]
    pub(super) pricing: Option<PathBuf>,
    /// Configuration file (TOML); `TOLLGATE__SECTION__KEY` variables override it.
    #[arg(long, value_name = "FILE")]
    pub(super) config: Option<PathBuf>,
}

impl SourceArgs {
    /// `--as-of`, read.
    pub(super) fn as_of(&self) -> Result<Option<UnixSeconds>, CliError> {
        self.as_of
            .as_deref()
            .map(|t| time_arg("as-of", t))
            .transpose()
    }
}

/// Loads the configuration and the rate card the flags and config name.
pub(super) fn load_settings(source: &SourceArgs) -> Result<(Settings, RateCard), CliError> {
    let settings = Settings::load(source.config.as_deref()).map_err(CliError::input)?;
    let card = match source.pricing.as_ref().or(settings.pricing.file.as_ref()) {
        Some(path) => RateCard::load(path).map_err(CliError::input)?,
        None => RateCard::builtin(),
    };
    Ok((settings, card))
}

/// The name of a `--history` source: the Prometheus it reads.
pub(super) fn history_name(source: &SourceArgs, settings: &Settings) -> String {
    let url = source
        .prometheus
        .as_ref()
        .or(settings.prometheus.url.as_ref());
    format!("prometheus:{}", url.map(String::as_str).unwrap_or_default())
}

/// Allocations rebuilt from Prometheus history over `window` (`--history`).
pub(super) fn read_history(
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

pub(super) fn no_prometheus() -> CliError {
    CliError::input("--history reads Prometheus: pass --prometheus URL or set prometheus.url")
}

/// The Prometheus client `--prometheus` or config `prometheus.url` names, if any.
pub(super) fn prometheus_client(
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
pub(super) struct SourceName {
    pub(super) stored: String,
    pub(super) cluster: String,
}

impl SourceName {
    /// `cluster.name` when configured, else these defaults.
    pub(super) fn new(settings: &Settings, stored: String, cluster: String) -> Self {
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
pub(super) fn configured_cluster(settings: &Settings) -> Option<String> {
    settings
        .cluster
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
}

/// Allocations for the source the flags name (Prometheus history, the demo, a snapshot, or the
/// live cluster), at least those that overlap `window`, in one or more sets read as one; and
/// the source's names.
pub(super) fn read_source(
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
pub(super) fn snapshot_source_name(
    settings: &Settings,
    objects: &ClusterObjects,
    dir: &Path,
) -> SourceName {
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
pub(super) fn command_sources<'a>(
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
        history: None,
        unread: None,
        most_lines: None,
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
pub(super) const DEMO: &str = "demo";

/// The demo fleet's source name: `demo`, or `demo-scale-N` for a larger fleet.
pub(super) fn demo_name(scale: u32) -> String {
    if scale == 1 {
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
pub(super) fn live_cluster_name(settings: &Settings) -> Result<String, CliError> {
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
pub(super) fn provenance(name: &SourceName, card: &RateCard) -> Provenance {
    Provenance {
        source: name.stored.clone(),
        rate_card: card.digest(),
    }
}

/// Connects to the cluster: in-cluster config, else the kubeconfig (`KUBECONFIG` honoured).
pub(super) async fn connect() -> Result<kube::Client, CliError> {
    kube::Client::try_default().await.map_err(|e| {
        CliError::runtime(format!(
            "cannot reach a Kubernetes cluster ({e}): run in a cluster, set KUBECONFIG, or use --demo or --snapshot DIR"
        ))
    })
}

/// The objects of a snapshot, or of the live cluster listed once now (no ledger history: the
/// running service's API has that).
pub(super) fn cluster_objects(source: &SourceArgs) -> Result<ClusterObjects, CliError> {
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

/// The Prometheus holding every cluster's series, when `[quota] global_prometheus` is set,
/// with how often to read it.
pub(super) fn global_prometheus(
    settings: &Settings,
) -> Result<Option<(Prometheus, Duration)>, CliError> {
    let Some(url) = &settings.quota.global_prometheus else {
        return Ok(None);
    };
    let prometheus = Prometheus::new(url, &settings.prometheus)
        .map_err(|e| CliError::input(format!("quota.global_prometheus: {e}")))?;
    let every = Duration::from_secs(settings.quota.global_refresh_seconds.max(1));
    Ok(Some((prometheus, every)))
}
