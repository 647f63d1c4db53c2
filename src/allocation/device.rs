//! Device-plugin GPU resources (`nvidia.com/gpu`, `nvidia.com/gpu.shared`, `nvidia.com/mig-*`)
//! and how much of a physical GPU one item of each is (SPEC §1.1).

use super::AllocationKind;
use super::node::NodeFacts;
use crate::pricing::RateCard;
use crate::units::GpuUnits;

/// Whole GPUs, or time-sliced without renaming.
pub(crate) const GPU: &str = "nvidia.com/gpu";
/// Time-sliced or MPS shares with `renameByDefault`.
pub(crate) const GPU_SHARED: &str = "nvidia.com/gpu.shared";
const MIG_PREFIX: &str = "nvidia.com/mig-";

/// A GPU resource name, understood.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) enum GpuResource {
    Whole,
    Shared,
    Mig { profile: String },
}

impl GpuResource {
    /// The Kubernetes resource name (`nvidia.com/gpu`, `nvidia.com/gpu.shared`,
    /// `nvidia.com/mig-1g.5gb`).
    pub(crate) fn name(&self) -> String {
        match self {
            GpuResource::Whole => GPU.to_string(),
            GpuResource::Shared => GPU_SHARED.to_string(),
            GpuResource::Mig { profile } => format!("{MIG_PREFIX}{profile}"),
        }
    }
}

/// True for the resource names Tollgate counts as GPUs (`nvidia.com/gpu`, `.shared`, `mig-*`).
pub fn is_gpu_resource(resource: &str) -> bool {
    classify(resource).is_some()
}

/// The GPU resource a resource name stands for; `None` for anything that is not a GPU.
pub(crate) fn classify(resource: &str) -> Option<GpuResource> {
    match resource {
        GPU => Some(GpuResource::Whole),
        GPU_SHARED => Some(GpuResource::Shared),
        _ => resource
            .strip_prefix(MIG_PREFIX)
            .filter(|profile| !profile.is_empty())
            .map(|profile| GpuResource::Mig {
                profile: profile.to_string(),
            }),
    }
}

/// Units of one item of `resource` on a node, and the kind of holding it is. `None` when a MIG
/// profile cannot be sized.
pub(crate) fn units_per_item(
    resource: &GpuResource,
    node: &NodeFacts,
    card: &RateCard,
) -> Option<(AllocationKind, GpuUnits)> {
    let share = || GpuUnits::ratio(1, i64::from(node.replicas));
    match resource {
        // A time-sliced MIG device (single: `…-MIG-1g.5gb-SHARED` with gpu.replicas; mixed:
        // `mig-<profile>.replicas`) is shared like a time-sliced GPU.
        GpuResource::Whole => match &node.mig_single_profile {
            Some(profile) => Some((
                AllocationKind::Mig,
                card.mig_fraction(&node.product, profile)?
                    .split(i64::from(node.replicas))?,
            )),
            None if node.replicas > 1 => Some((AllocationKind::Shared, share()?)),
            None => Some((AllocationKind::Gpu, GpuUnits::ONE)),
        },
        GpuResource::Shared => Some((AllocationKind::Shared, share()?)),
        GpuResource::Mig { profile } => Some((
            AllocationKind::Mig,
            card.mig_fraction(&node.product, profile)?
                .split(i64::from(node.mig_replicas_of(profile)))?,
        )),
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn classifies_gpu_resources_only() {
        assert_eq!(classify("nvidia.com/gpu"), Some(GpuResource::Whole));
        assert_eq!(classify("nvidia.com/gpu.shared"), Some(GpuResource::Shared));
        assert_eq!(
            classify("nvidia.com/mig-3g.40gb"),
            Some(GpuResource::Mig {
                profile: "3g.40gb".into()
            })
        );
        assert_eq!(classify("nvidia.com/mig-"), None);
        assert_eq!(classify("cpu"), None);
        assert_eq!(classify("amd.com/gpu"), None);
    }
}
