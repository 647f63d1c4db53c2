//! Device-plugin GPU resources (`nvidia.com/gpu`, `nvidia.com/gpu.shared`, `nvidia.com/mig-*`,
//! AMD's `amd.com/gpu` and partition resources such as `amd.com/cpx_nps4`), told apart by name
//! (SPEC §1.1); how much of a physical GPU one item is depends on its node
//! ([`super::node::units_per_item`]).

use super::AllocationKind;
use crate::units::GpuUnits;

/// Whole GPUs, or time-sliced without renaming.
pub(crate) const GPU: &str = "nvidia.com/gpu";
/// Time-sliced or MPS shares with `renameByDefault`.
pub(crate) const GPU_SHARED: &str = "nvidia.com/gpu.shared";
const MIG_PREFIX: &str = "nvidia.com/mig-";
/// What `renameByDefault` appends to a time-sliced or MPS-shared resource's name
/// (`nvidia.com/mig-1g.5gb.shared`).
const SHARED_SUFFIX: &str = ".shared";
const REPLICAS_SUFFIX: &str = ".replicas";
/// AMD GPUs, or compute partitions of them under the device plugin's `single` naming.
const AMD_GPU: &str = "amd.com/gpu";
const AMD_PREFIX: &str = "amd.com/";

/// A GPU resource name, understood.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) enum GpuResource {
    Whole,
    Shared,
    /// A MIG device of `profile` (mixed strategy); `renamed` when it is time-sliced or
    /// MPS-shared and advertised under `renameByDefault` (`nvidia.com/mig-1g.5gb.shared`): a
    /// share of the device, replicas from GFD's `nvidia.com/mig-<profile>.replicas`.
    Mig {
        profile: String,
        renamed: bool,
    },
    /// `amd.com/gpu`: a whole AMD GPU, or one compute partition of it when the node's GPUs are
    /// partitioned (`amd.com/compute-memory-partition`).
    AmdGpu,
    /// A compute partition under the AMD device plugin's `mixed` naming (`amd.com/cpx_nps4`).
    AmdPartition {
        mode: AmdPartitionMode,
    },
}

/// An AMD Instinct partition mode: compute (`spx`, `dpx`, `tpx`, `qpx`, `cpx`) and memory
/// (`nps1`, `nps2`, `nps4`, `nps8`), as the device plugin and node labeller write them
/// (`cpx_nps4`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct AmdPartitionMode {
    compute: String,
    memory: String,
}

impl AmdPartitionMode {
    /// Reads `cpx_nps4` (any case; `-` accepted for `_`).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let text = text.trim().to_ascii_lowercase().replace('-', "_");
        let (compute, memory) = text.split_once('_')?;
        let known_compute = ["spx", "dpx", "tpx", "qpx", "cpx"].contains(&compute);
        let known_memory = memory
            .strip_prefix("nps")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        (known_compute && known_memory).then(|| AmdPartitionMode {
            compute: compute.to_string(),
            memory: memory.to_string(),
        })
    }

    /// Compute partitions per GPU: SPX 1, DPX 2, TPX 3, QPX 4, CPX one per accelerator die
    /// (XCD): 6 on an MI300A, 8 on the MI300X, MI325X and MI350 series.
    pub(crate) fn partitions(&self, product: &str) -> i64 {
        match self.compute.as_str() {
            "spx" => 1,
            "dpx" => 2,
            "tpx" => 3,
            "qpx" => 4,
            _ if crate::pricing::normalize(product)
                .split(' ')
                .any(|w| w == "mi300a") =>
            {
                6
            }
            _ => 8,
        }
    }

    /// One partition's share of a GPU, and whether it is a partition at all (SPX is the whole
    /// GPU).
    pub(crate) fn share(&self, product: &str) -> Option<(AllocationKind, GpuUnits)> {
        match self.partitions(product) {
            1 => Some((AllocationKind::Gpu, GpuUnits::ONE)),
            n => Some((AllocationKind::Mig, GpuUnits::ratio(1, n)?)),
        }
    }
}

impl GpuResource {
    /// The Kubernetes resource name (`nvidia.com/gpu`, `nvidia.com/gpu.shared`,
    /// `nvidia.com/mig-1g.5gb`).
    pub(crate) fn name(&self) -> String {
        match self {
            GpuResource::Whole => GPU.to_string(),
            GpuResource::Shared => GPU_SHARED.to_string(),
            GpuResource::Mig { profile, renamed } => {
                let suffix = if *renamed { SHARED_SUFFIX } else { "" };
                format!("{MIG_PREFIX}{profile}{suffix}")
            }
            GpuResource::AmdGpu => AMD_GPU.to_string(),
            GpuResource::AmdPartition { mode } => {
                format!("{AMD_PREFIX}{}_{}", mode.compute, mode.memory)
            }
        }
    }
}

/// True for the resource names Tollgate counts as GPUs (`nvidia.com/gpu`, `.shared`, `mig-*`,
/// `amd.com/gpu` and AMD partitions).
pub fn is_gpu_resource(resource: &str) -> bool {
    classify(resource).is_some()
}

/// The GPU resource a resource name stands for; `None` for anything that is not a GPU.
pub(crate) fn classify(resource: &str) -> Option<GpuResource> {
    match resource {
        GPU => Some(GpuResource::Whole),
        GPU_SHARED => Some(GpuResource::Shared),
        AMD_GPU => Some(GpuResource::AmdGpu),
        _ if resource.starts_with(AMD_PREFIX) => {
            let mode = AmdPartitionMode::parse(&resource[AMD_PREFIX.len()..])?;
            Some(GpuResource::AmdPartition { mode })
        }
        _ => resource.strip_prefix(MIG_PREFIX).and_then(mig),
    }
}

/// GFD's label of the time-slicing replicas of MIG `profile` under the mixed strategy
/// (`nvidia.com/mig-1g.5gb.replicas`).
pub(crate) fn mig_replicas_label(profile: &str) -> String {
    format!("{MIG_PREFIX}{profile}{REPLICAS_SUFFIX}")
}

/// The MIG profile whose replicas a node label gives ([`mig_replicas_label`]'s inverse).
pub(crate) fn mig_replicas_profile(label: &str) -> Option<&str> {
    label
        .strip_prefix(MIG_PREFIX)?
        .strip_suffix(REPLICAS_SUFFIX)
        .filter(|profile| !profile.is_empty())
}

/// The MIG resource of `profile`, the name after `nvidia.com/mig-` (`1g.5gb`, or
/// `1g.5gb.shared` under `renameByDefault`); `None` when it names no profile.
pub(crate) fn mig(profile: &str) -> Option<GpuResource> {
    let (profile, renamed) = match profile.strip_suffix(SHARED_SUFFIX) {
        Some(profile) => (profile, true),
        None => (profile, false),
    };
    (!profile.is_empty()).then(|| GpuResource::Mig {
        profile: profile.to_string(),
        renamed,
    })
}

/// Extended-resource domains of accelerators Tollgate does not price, and words that mark a
/// resource name as an accelerator.
const ACCELERATOR_DOMAINS: [&str; 14] = [
    "nvidia.com",
    "amd.com",
    "intel.com",
    "habana.ai",
    "aws.amazon.com",
    "google.com",
    "huawei.com",
    "xilinx.com",
    "qualcomm.com",
    "cambricon.com",
    "furiosa.ai",
    "tenstorrent.com",
    "iluvatar.ai",
    "metax-tech.com",
];
const ACCELERATOR_WORDS: [&str; 8] = [
    "gpu",
    "tpu",
    "npu",
    "neuron",
    "accelerator",
    "gaudi",
    "ascend",
    "xpu",
];

/// True for an extended resource that looks like an accelerator but is not one Tollgate
/// understands (`gpu.intel.com/i915`, `aws.amazon.com/neuroncore`, `google.com/tpu`, a KubeVirt
/// passthrough `nvidia.com/GA102GL_A10`): its holders would go uncharged without a word.
pub(crate) fn unpriced_accelerator(resource: &str) -> bool {
    let Some((domain, name)) = resource.split_once('/') else {
        return false;
    };
    if classify(resource).is_some() || domain.ends_with("kubernetes.io") {
        return false;
    }
    let domain = domain.to_ascii_lowercase();
    let in_domain = ACCELERATOR_DOMAINS
        .iter()
        .any(|d| domain == *d || domain.ends_with(&format!(".{d}")));
    let name = name.to_ascii_lowercase();
    let named = ACCELERATOR_WORDS
        .iter()
        .any(|w| name.contains(w) || domain.split('.').any(|part| part == *w));
    in_domain || named
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
                profile: "3g.40gb".into(),
                renamed: false
            })
        );
        // Time-sliced under `renameByDefault`: the profile is still 1g.5gb.
        assert_eq!(
            classify("nvidia.com/mig-1g.5gb.shared"),
            Some(GpuResource::Mig {
                profile: "1g.5gb".into(),
                renamed: true
            })
        );
        assert_eq!(
            classify("nvidia.com/mig-1g.5gb.shared").map(|r| r.name()),
            Some("nvidia.com/mig-1g.5gb.shared".to_string())
        );
        assert_eq!(classify("nvidia.com/mig-"), None);
        assert_eq!(classify("nvidia.com/mig-.shared"), None);
        assert_eq!(classify("cpu"), None);
        assert_eq!(classify("amd.com/gpu"), Some(GpuResource::AmdGpu));
        assert_eq!(
            classify("amd.com/cpx_nps4").map(|r| r.name()),
            Some("amd.com/cpx_nps4".to_string())
        );
        assert_eq!(classify("amd.com/xyz_nps4"), None);
        assert_eq!(classify("amd.com/cpx_nps"), None);
    }

    #[test]
    fn amd_partitions_per_gpu_follow_the_compute_mode() {
        let mode = |m: &str| AmdPartitionMode::parse(m).unwrap();
        assert_eq!(mode("SPX_NPS1").partitions("AMD_Instinct_MI300X_OAM"), 1);
        assert_eq!(mode("dpx_nps2").partitions("AMD_Instinct_MI300X_OAM"), 2);
        assert_eq!(mode("qpx_nps4").partitions("AMD_Instinct_MI300X_OAM"), 4);
        assert_eq!(mode("cpx_nps4").partitions("AMD_Instinct_MI300X_OAM"), 8);
        assert_eq!(mode("cpx_nps1").partitions("AMD Instinct MI300A"), 6);
    }

    #[test]
    fn unknown_accelerators_are_recognised() {
        for resource in [
            "gpu.intel.com/i915",
            "gpu.intel.com/xe",
            "aws.amazon.com/neuroncore",
            "google.com/tpu",
            "habana.ai/gaudi",
            "huawei.com/Ascend910",
            "nvidia.com/GA102GL_A10",
            "nvidia.com/NVIDIA_A10-12Q",
            "amd.com/xgmi",
        ] {
            assert!(unpriced_accelerator(resource), "{resource}");
        }
        for resource in [
            "cpu",
            "memory",
            "nvidia.com/gpu",
            "amd.com/cpx_nps4",
            "hugepages-2Mi",
            "ephemeral-storage",
            "rdma/hca_shared_devices_a",
            "devices.kubevirt.io/kvm",
            "smarter-devices/fuse",
            "example.com/foo",
        ] {
            assert!(!unpriced_accelerator(resource), "{resource}");
        }
    }
}
