//! Report group-by keys (`cost_center,namespace,…`).

use std::fmt;
use std::str::FromStr;

/// A column a report can be grouped by.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum GroupKey {
    /// `cost_center`
    CostCenter,
    /// `namespace`
    Namespace,
    /// `gpu_model`: the rate card's model name, or the product name when unpriced.
    GpuModel,
    /// `node`
    Node,
    /// `pod`
    Pod,
    /// `cost_center_source`: where the cost center came from.
    CostCenterSource,
    /// `resource_id`: what is billed — the pod UID, the DRA claim UID, or for unallocated
    /// capacity the node. Used by the FOCUS export; not a `--group-by` key.
    ResourceId,
    /// `claim`: the DRA claim's name (empty for device-plugin GPUs). FOCUS export only.
    Claim,
    /// `pricing_tier`: the node's price tier (`on-demand`, `spot`, `reserved`). FOCUS export
    /// only.
    PricingTier,
    /// `cluster`: the cluster's name (`[cluster] name`). One Tollgate reads one cluster, so
    /// every line of its reports has the same; the engine leaves it to
    /// [`CostReport::with_cluster`](super::CostReport::with_cluster).
    Cluster,
}

impl GroupKey {
    /// Every `--group-by` key, in the order of SPEC §4.1 (`cluster` after them).
    pub const ALL: [GroupKey; 7] = [
        GroupKey::CostCenter,
        GroupKey::Namespace,
        GroupKey::GpuModel,
        GroupKey::Node,
        GroupKey::Pod,
        GroupKey::CostCenterSource,
        GroupKey::Cluster,
    ];

    /// The `--group-by` key of this name.
    pub fn named(name: &str) -> Option<GroupKey> {
        GroupKey::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The column name.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupKey::CostCenter => "cost_center",
            GroupKey::Namespace => "namespace",
            GroupKey::GpuModel => "gpu_model",
            GroupKey::Node => "node",
            GroupKey::Pod => "pod",
            GroupKey::CostCenterSource => "cost_center_source",
            GroupKey::ResourceId => "resource_id",
            GroupKey::Claim => "claim",
            GroupKey::PricingTier => "pricing_tier",
            GroupKey::Cluster => "cluster",
        }
    }
}

impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A group-by list that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupByError {
    /// A name that is not a key.
    #[error(
        "unknown group-by key {0:?}: use any of cost_center, namespace, gpu_model, node, pod, cost_center_source, cluster"
    )]
    Unknown(String),
    /// The same key twice.
    #[error("group-by key {0} is listed twice")]
    Repeated(GroupKey),
}

/// An ordered list of distinct group-by keys.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct GroupBy(Vec<GroupKey>);

impl GroupBy {
    /// The keys, in the order asked.
    pub fn keys(&self) -> &[GroupKey] {
        &self.0
    }

    /// Builds a group-by from keys, refusing repeats.
    pub fn new(keys: Vec<GroupKey>) -> Result<Self, GroupByError> {
        for (i, key) in keys.iter().enumerate() {
            if keys[..i].contains(key) {
                return Err(GroupByError::Repeated(*key));
            }
        }
        Ok(GroupBy(keys))
    }
}

impl GroupBy {
    /// Every key that tells billed resources apart: the grouping of the FOCUS export.
    pub fn resources() -> Self {
        GroupBy(vec![
            GroupKey::CostCenter,
            GroupKey::Namespace,
            GroupKey::GpuModel,
            GroupKey::Node,
            GroupKey::Pod,
            GroupKey::ResourceId,
            GroupKey::Claim,
            GroupKey::PricingTier,
            GroupKey::CostCenterSource,
        ])
    }
}

impl Default for GroupBy {
    /// `cost_center,namespace`.
    fn default() -> Self {
        GroupBy(vec![GroupKey::CostCenter, GroupKey::Namespace])
    }
}

impl FromStr for GroupBy {
    type Err = GroupByError;

    /// Parses a comma-separated list; an empty list means the default.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let names: Vec<&str> = text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if names.is_empty() {
            return Ok(GroupBy::default());
        }
        let keys = names
            .into_iter()
            .map(|name| {
                GroupKey::named(name).ok_or_else(|| GroupByError::Unknown(name.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        GroupBy::new(keys)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn parses_ordered_lists_and_refuses_mistakes() {
        let g: GroupBy = "gpu_model, cost_center".parse().unwrap();
        assert_eq!(g.keys(), &[GroupKey::GpuModel, GroupKey::CostCenter]);
        assert_eq!("".parse::<GroupBy>().unwrap(), GroupBy::default());
        assert_eq!(
            "team".parse::<GroupBy>().unwrap_err().to_string(),
            "unknown group-by key \"team\": use any of cost_center, namespace, gpu_model, node, pod, cost_center_source, cluster"
        );
        assert_eq!(
            "pod,pod".parse::<GroupBy>().unwrap_err(),
            GroupByError::Repeated(GroupKey::Pod)
        );
    }
}
