//! What the other clusters spend: the figures a global budget adds to this cluster's own, read
//! in the background from a Prometheus that holds every cluster's `tollgate_*` series.

use std::collections::BTreeMap;

use super::spend::Usage;
use crate::time::UnixSeconds;

/// Month-to-date spend, burn and units of the other clusters, per cost center.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OtherClusters {
    /// The sums over every other cluster, per cost center.
    pub by_cost_center: BTreeMap<String, Usage>,
    /// The oldest of the samples they were read from (`None`: never read, or no other cluster
    /// reports).
    pub as_of: Option<UnixSeconds>,
    /// The clusters read.
    pub clusters: Vec<String>,
}

impl OtherClusters {
    /// The other clusters' usage of `cost_center` (none: zeros).
    pub fn cost_center(&self, cost_center: &str) -> Usage {
        self.by_cost_center
            .get(cost_center)
            .copied()
            .unwrap_or_default()
    }
}
