//! `tollgate quota`: whether a pod may start within its budgets, as the admission gate decides.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use k8s_openapi::api::core::v1::Pod;

use super::source::{
    DEMO, SourceArgs, cluster_objects, configured_cluster, global_prometheus, history_name,
    load_settings, read_history, snapshot_source_name,
};
use super::{CliError, block_on, now};
use crate::budget::validate_budgets;
use crate::config::Settings;
use crate::serve::{CheckRequest, Feed, QuotaGate, Recorded, Subject, read_once};
use crate::source::{DemoFleet, demo_budgets};
use crate::time::{Interval, month_start};

#[derive(Args, Debug)]
pub(super) struct QuotaArgs {
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

fn read_pod(file: &Path) -> Result<Pod, CliError> {
    let fail = |message: String| CliError::input(format!("{}: {message}", file.display()));
    let text = std::fs::read_to_string(file).map_err(|e| fail(format!("cannot read: {e}")))?;
    let value: serde_json::Value =
        serde_yaml::from_str(&text).map_err(|e| fail(format!("not YAML or JSON: {e}")))?;
    serde_json::from_value(value).map_err(|e| fail(format!("not a Pod: {e}")))
}

pub(super) fn quota(args: QuotaArgs, out: &mut dyn Write) -> Result<(), CliError> {
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

/// The gate over the configured budgets; the demo, configured with none, brings its own
/// ([`demo_budgets`]).
pub(super) fn quota_gate(settings: &Settings, source: &SourceArgs) -> Result<QuotaGate, CliError> {
    let raw = if source.demo && settings.budget.is_empty() {
        demo_budgets(source.demo_scale)
    } else {
        settings.budget.clone()
    };
    // Named by the file they were read from, where one was given (or else from TOLLGATE__
    // variables).
    let file = source
        .config
        .as_ref()
        .map(|path| format!(" {}", path.display()));
    let budgets = validate_budgets(&raw)
        .map_err(|e| CliError::input(format!("configuration{}: {e}", file.unwrap_or_default())))?;
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
