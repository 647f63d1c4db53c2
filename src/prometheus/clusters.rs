//! The other clusters' figures for global budgets, from a Prometheus that holds every
//! cluster's `tollgate_*` series (each labelled `cluster` by the Tollgate that exposed it).

use std::collections::BTreeSet;

use rust_decimal::Decimal;

use super::{Prometheus, PrometheusError};
use crate::budget::{OtherClusters, Usage};

/// How far back a cluster's last figures are looked for, in seconds.
const LOOKBACK: i64 = 3600;

impl Prometheus {
    /// Month-to-date spend, burn per hour and units held per cost center, summed over every
    /// cluster but `own`, each cluster's latest samples of the last hour, and the time of the
    /// oldest cluster's latest sample: a cluster that fell silent still counts with what it
    /// last said, and makes the figures as old as that (stale, once older than
    /// `quota.max_staleness_seconds`). A cluster silent for more than an hour drops out.
    pub async fn other_clusters(&self, own: &str) -> Result<OtherClusters, PrometheusError> {
        let own = own.replace('\\', "\\\\").replace('"', "\\\"");
        let others = format!("cluster!=\"{own}\",cluster!=\"\"");
        let now = jiff::Timestamp::now().as_second();
        let mut read = OtherClusters::default();
        let mut clusters = BTreeSet::new();
        let series = [
            ("tollgate_cost_center_spend", ",period=\"month\""),
            ("tollgate_gpu_cost_per_hour", ""),
            ("tollgate_gpu_allocated_units", ""),
        ];
        for (figure, (metric, extra)) in series.into_iter().enumerate() {
            let query = format!(
                "sum by (cluster, cost_center) (last_over_time({metric}{{{others}{extra}}}[{LOOKBACK}s]))"
            );
            for found in self.range(&query, now, now, 60).await? {
                let labels = found.metric();
                let (Some(cluster), Some(cost_center), Some(sample)) = (
                    labels.get("cluster"),
                    labels.get("cost_center"),
                    found.samples().last(),
                ) else {
                    continue;
                };
                let value = decimal(sample.value()).ok_or_else(|| {
                    self.fail(format!(
                        "{metric} of cluster {cluster}: {} is not a figure",
                        sample.value()
                    ))
                })?;
                clusters.insert(cluster.clone());
                let usage = read.by_cost_center.entry(cost_center.clone()).or_default();
                let add = match figure {
                    0 => Usage {
                        spent: value,
                        ..Usage::default()
                    },
                    1 => Usage {
                        burn_per_hour: value,
                        ..Usage::default()
                    },
                    _ => Usage {
                        units: value,
                        ..Usage::default()
                    },
                };
                usage.add(add);
            }
        }
        // Each cluster's latest sample time over the hour (every minute, the sample each step
        // sees is a real one, with its own time); the oldest cluster's.
        let latest =
            format!("max by (cluster) (timestamp(tollgate_cost_center_spend{{{others}}}))");
        read.as_of = self
            .range(&latest, now - LOOKBACK, now, 60)
            .await?
            .iter()
            .filter_map(|cluster| {
                let times = cluster.samples().iter().map(|s| s.value() as i64);
                times.max()
            })
            .min();
        read.clusters = clusters.into_iter().collect();
        Ok(read)
    }
}

/// A sample's value as a decimal (its shortest round-trip text); `None` for NaN or ±∞.
fn decimal(value: f64) -> Option<Decimal> {
    value
        .is_finite()
        .then(|| value.to_string().parse().ok())
        .flatten()
}
