//! What a node tells about its GPUs: model, price tier, sharing, price override and capacity
//! (SPEC §1.3, §3).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Node;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::AllocationKind;
use super::claims::DeviceIndex;
use super::demand::device_count;
use super::device::{
    AmdPartitionMode, GPU, GPU_SHARED, GpuResource, classify, mig_replicas_label,
    mig_replicas_profile, unpriced_accelerator,
};
use super::instance::{INSTANCE_TYPE_LABELS, instance_gpus, instance_product};
use crate::pricing::{
    MigSizing, PriceTier, RateCard, named_gpu_memory_gb, refused_price, stated_memory_gb,
    with_memory,
};
use crate::time::UnixSeconds;
use crate::units::GpuUnits;

/// GPU Feature Discovery's product label.
pub(crate) const PRODUCT_LABEL: &str = "nvidia.com/gpu.product";
const COUNT_LABEL: &str = "nvidia.com/gpu.count";
/// What GFD appends to the product label of GPUs time-sliced without renaming.
pub(crate) const SHARED_PRODUCT_SUFFIX: &str = "-SHARED";
/// GPU memory in MiB (GFD).
const MEMORY_LABEL: &str = "nvidia.com/gpu.memory";
/// AMD's node labeller: product, memory (`192G`) and partition mode (`cpx_nps4`); older
/// labellers write them under `beta.amd.com/`.
pub(crate) const AMD_PRODUCT_LABELS: [&str; 2] =
    ["amd.com/gpu.product-name", "beta.amd.com/gpu.product-name"];
const AMD_VRAM_LABELS: [&str; 2] = ["amd.com/gpu.vram", "beta.amd.com/gpu.vram"];
pub(crate) const AMD_PARTITION_LABELS: [&str; 3] = [
    "amd.com/compute-memory-partition",
    "amd.com/gpu.compute-memory-partition",
    "beta.amd.com/gpu.compute-memory-partition",
];
/// The GPU a cloud's node provisioner names, for nodes GPU Feature Discovery does not label
/// (GKE's own device plugin; EC2 nodes Karpenter or EKS Auto Mode launched): GKE's accelerator
/// (`nvidia-h100-80gb`), Karpenter's and Auto Mode's GPU name (`h100`).
pub(crate) const CLOUD_GPU_LABELS: [&str; 3] = [
    "cloud.google.com/gke-accelerator",
    "karpenter.k8s.aws/instance-gpu-name",
    "eks.amazonaws.com/instance-gpu-name",
];
/// Karpenter's and Auto Mode's memory of one GPU, in MiB.
const CLOUD_GPU_MEMORY_LABELS: [&str; 2] = [
    "karpenter.k8s.aws/instance-gpu-memory",
    "eks.amazonaws.com/instance-gpu-memory",
];
/// How many GPUs the instance has, as the cloud's node provisioner labels it (Karpenter on EC2,
/// EKS Auto Mode, Karpenter on AKS): without GPU Feature Discovery, what tells a device plugin
/// sharing each GPU (advertising GPUs × replicas) from a node of that many GPUs.
const CLOUD_GPU_COUNT_LABELS: [&str; 3] = [
    "karpenter.k8s.aws/instance-gpu-count",
    "eks.amazonaws.com/instance-gpu-count",
    "karpenter.azure.com/sku-gpu-count",
];
/// Time-slicing replicas: GFD's, else GKE's most clients sharing a GPU (time-sharing or MPS),
/// under which `nvidia.com/gpu` counts GPUs × clients, as under GFD's.
pub(crate) const REPLICAS_LABELS: [&str; 2] = [
    "nvidia.com/gpu.replicas",
    "cloud.google.com/gke-max-shared-clients-per-gpu",
];
/// GKE's MIG partition size (`1g.5gb`): `nvidia.com/gpu` counts partitions of that profile.
pub(crate) const GKE_PARTITION_LABEL: &str = "cloud.google.com/gke-gpu-partition-size";
/// Per-node price per whole GPU-hour.
pub(crate) const PRICE_ANNOTATION: &str = "tollgate.dev/gpu-hourly-price";

/// The GPU-relevant facts of one node.
#[derive(Clone, Debug, Default)]
pub(crate) struct NodeFacts {
    /// GPU product (label, else the node's DRA devices); empty when unknown. The `-SHARED` and
    /// `-MIG-<profile>` suffixes GFD adds are removed.
    pub(crate) product: String,
    pub(crate) tier: PriceTier,
    /// Time-slicing replicas per GPU (1 when not shared).
    pub(crate) replicas: u32,
    /// The profile every `nvidia.com/gpu` item is under the MIG single strategy.
    pub(crate) mig_single_profile: Option<String>,
    /// How `product` is cut into MIG slices (found once, not for each pod).
    pub(crate) mig: MigSizing,
    /// Time-slicing replicas of each MIG profile under the mixed strategy
    /// (`nvidia.com/mig-<profile>.replicas`); a profile not named is not shared.
    pub(crate) mig_replicas: BTreeMap<String, u32>,
    /// How the node's AMD GPUs are partitioned, when its labeller says.
    pub(crate) amd_partition: Option<AmdPartitionMode>,
    pub(crate) price_override: Option<Decimal>,
    pub(crate) created: Option<UnixSeconds>,
    /// Physical GPUs per product.
    pub(crate) capacity: BTreeMap<String, GpuUnits>,
}

/// The price tier from the capacity-type labels of Karpenter, EKS, GKE and AKS.
pub(crate) fn capacity_tier(labels: &BTreeMap<String, String>) -> PriceTier {
    let label = |key: &str| labels.get(key).map(|v| v.trim().to_ascii_lowercase());
    match label("karpenter.sh/capacity-type").as_deref() {
        Some("spot") => return PriceTier::Spot,
        Some("reserved") => return PriceTier::Reserved,
        Some("on-demand") => return PriceTier::OnDemand,
        _ => {}
    }
    match label("eks.amazonaws.com/capacityType").as_deref() {
        Some("spot") => return PriceTier::Spot,
        Some("capacity_block") => return PriceTier::Reserved,
        Some("on_demand") => return PriceTier::OnDemand,
        _ => {}
    }
    if label("cloud.google.com/gke-spot").as_deref() == Some("true")
        || label("cloud.google.com/gke-preemptible").as_deref() == Some("true")
        || label("kubernetes.azure.com/scalesetpriority").as_deref() == Some("spot")
    {
        return PriceTier::Spot;
    }
    PriceTier::OnDemand
}

/// Reads a node. Problems (a bad price annotation, an unreadable capacity) are pushed to
/// `warnings` and the affected fact is left out.
pub(crate) fn node_facts(
    node: &Node,
    devices: &DeviceIndex,
    card: &RateCard,
    warnings: &mut Vec<String>,
) -> NodeFacts {
    let name = node.metadata.name.as_deref().unwrap_or_default();
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let annotations = node.metadata.annotations.as_ref().unwrap_or(&empty);

    let raw_product = labels
        .get(PRODUCT_LABEL)
        .map(|p| p.trim())
        .filter(|p| !p.is_empty());
    let (label_product, mig_single_profile) = match raw_product {
        Some(p) => split_product_label(p),
        None => (String::new(), None),
    };
    let first_label = |keys: &[&'static str]| first_label(labels, keys);
    let amd_product = first_label(&AMD_PRODUCT_LABELS);
    let product = if let (true, Some((_, amd))) = (label_product.is_empty(), amd_product) {
        let vram = first_label(&AMD_VRAM_LABELS).and_then(|(key, v)| {
            let gb = v.strip_suffix(['G', 'g']).unwrap_or(v).parse::<u64>();
            if gb.is_err() {
                warnings.push(format!(
                    "node {name}: label {key}={v:?} is not a size like \"192G\"; the GPU model is told from its product name alone"
                ));
            }
            gb.ok().map(|gb| gb * 1024)
        });
        with_memory(amd, vram)
    } else if label_product.is_empty() {
        devices
            .product_on_node(name)
            .or_else(|| cloud_product(labels))
            .unwrap_or_default()
    } else {
        let memory = labels.get(MEMORY_LABEL).map(|m| m.trim().parse::<u64>());
        if let Some(Err(_)) = memory {
            warnings.push(format!(
                "node {name}: label {MEMORY_LABEL}={:?} is not a number of MiB; the GPU model is told from its product name alone",
                labels[MEMORY_LABEL]
            ));
        }
        let memory = memory.and_then(Result::ok);
        // Under MIG single the label gives a slice's memory, not the GPU's: the GPU's is what
        // MIG cuts of it where NVIDIA's table names it, else the slice's stands in for a name
        // stating none.
        let memory = match mig_single_profile {
            Some(_) => named_gpu_memory_gb(&label_product)
                .map(|gb| u64::from(gb) * 1024)
                .or(memory.filter(|_| stated_memory_gb(&label_product).is_none())),
            None => memory,
        };
        with_memory(&label_product, memory)
    };

    let replicas_label = REPLICAS_LABELS
        .into_iter()
        .find(|k| labels.contains_key(*k));
    let replicas = match replicas_label.map(|k| (k, read_replicas(&labels[k]))) {
        None => cloud_replicas(node, warnings).unwrap_or(1),
        Some((_, Some(r))) => r,
        Some((key, None)) => {
            warnings.push(format!(
                "node {name}: label {key}={:?} is not a number of replicas; GPUs counted as not shared",
                labels[key]
            ));
            1
        }
    };
    // GKE's MIG partitions (`nvidia.com/gpu` counts partitions, as under GFD's single strategy).
    let mig_single_profile = mig_single_profile
        .or_else(|| first_label(&[GKE_PARTITION_LABEL]).map(|(_, profile)| profile.to_string()));

    let price_override = annotations.get(PRICE_ANNOTATION).and_then(|text| {
        let refused = match text.trim().parse::<Decimal>() {
            Ok(price) => match refused_price(price) {
                None => return Some(price),
                Some(why) => why,
            },
            Err(_) => "it is not a decimal price".into(),
        };
        warnings.push(format!(
            "node {name}: annotation {PRICE_ANNOTATION}={text:?}: {refused}; the rate card applies"
        ));
        None
    });

    let mig_replicas = labels
        .iter()
        .filter_map(|(key, value)| {
            let profile = mig_replicas_profile(key)?;
            match read_replicas(value) {
                Some(r) => Some((profile.to_string(), r)),
                None => {
                    warnings.push(format!(
                        "node {name}: label {key}={value:?} is not a number of replicas; {profile} MIG devices counted as not shared"
                    ));
                    None
                }
            }
        })
        .collect();

    let amd_partition = first_label(&AMD_PARTITION_LABELS).and_then(|(key, v)| {
        let mode = AmdPartitionMode::parse(v);
        if mode.is_none() {
            warnings.push(format!(
                "node {name}: label {key}={v:?} is not a partition mode like \"cpx_nps4\"; each amd.com/gpu counted as a whole GPU"
            ));
        }
        mode
    });

    let mut facts = NodeFacts {
        mig: card.mig_sizing(&product),
        product,
        tier: capacity_tier(labels),
        replicas,
        mig_single_profile,
        mig_replicas,
        amd_partition,
        price_override,
        created: node
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.as_second()),
        capacity: BTreeMap::new(),
    };
    facts.capacity = node_capacity(node, &facts, devices, card, warnings);
    facts
}

/// The GPUs `devices` MIG devices of one profile are cut from, each GPU into as many devices of
/// `fraction` as fit (the single strategy partitions every GPU alike): 7 × 1g.5gb is one A100,
/// 3 × 2g.10gb too (its seventh slice unused), 3 × 4g.20gb three.
fn mig_single_gpus(devices: i64, fraction: GpuUnits) -> Option<GpuUnits> {
    let per_gpu = fraction.denom().checked_div(fraction.numer())?;
    (per_gpu >= 1).then(|| GpuUnits::whole((devices + per_gpu - 1) / per_gpu))
}

impl NodeFacts {
    /// Time-slicing replicas of MIG `profile` under the mixed strategy.
    pub(crate) fn mig_replicas_of(&self, profile: &str) -> u32 {
        self.mig_replicas.get(profile).copied().unwrap_or(1)
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
                node.mig
                    .fraction(card, profile)?
                    .split(i64::from(node.replicas))?,
            )),
            None if node.replicas > 1 => Some((AllocationKind::Shared, share()?)),
            None => Some((AllocationKind::Gpu, GpuUnits::ONE)),
        },
        GpuResource::Shared => Some((AllocationKind::Shared, share()?)),
        GpuResource::Mig { profile, .. } => Some((
            AllocationKind::Mig,
            node.mig
                .fraction(card, profile)?
                .split(i64::from(node.mig_replicas_of(profile)))?,
        )),
        GpuResource::AmdGpu => match &node.amd_partition {
            Some(mode) => mode.share(&node.product),
            None => Some((AllocationKind::Gpu, GpuUnits::ONE)),
        },
        GpuResource::AmdPartition { mode } => mode.share(&node.product),
    }
}

/// Without GFD's labels, how many ways each GPU of a node is shared, from the GPUs its cloud
/// says the instance has and the `nvidia.com/gpu` (or `.shared`) items the node advertises: a
/// device plugin time-slicing or MPS-sharing each GPU advertises GPUs × replicas. `None` where
/// GFD labels the node, no cloud count is read, or the items are no more than the GPUs; a count
/// that does not divide the items is said.
fn cloud_replicas(node: &Node, warnings: &mut Vec<String>) -> Option<u32> {
    let labels = node.metadata.labels.as_ref()?;
    if labels.contains_key(COUNT_LABEL) || labels.contains_key(PRODUCT_LABEL) {
        return None;
    }
    let (key, gpus) = match first_label(labels, &CLOUD_GPU_COUNT_LABELS) {
        Some((key, count)) => (key, count.parse::<u32>().ok().filter(|n| *n > 0)?),
        // An instance type Tollgate knows the GPUs of, where no label counts them.
        None => {
            let (key, name) = first_label(labels, &INSTANCE_TYPE_LABELS)?;
            (key, instance_gpus(name)?.count?)
        }
    };
    let capacity = node.status.as_ref()?.capacity.as_ref()?;
    let (resource, quantity) = [GPU, GPU_SHARED]
        .into_iter()
        .find_map(|r| capacity.get(r).map(|q| (r, q)))?;
    let items = device_count(&quantity.0).ok()?.to_u32()?;
    if items <= gpus {
        return None;
    }
    if items % gpus != 0 {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        warnings.push(format!(
            "node {name}: {resource}={items} for the {gpus} GPUs its label {key} gives is no whole number of shares of each; each counted as a whole GPU"
        ));
        return None;
    }
    Some(items / gpus)
}

/// How many ways a label of time-slicing replicas says each device is shared: 1 for `0`, GFD's
/// value on a GPU with MIG enabled, whose devices are not time-sliced; `None` for what is no
/// whole number.
pub(crate) fn read_replicas(value: &str) -> Option<u32> {
    value.trim().parse::<u32>().ok().map(|r| r.max(1))
}

/// The label that would say how many shares one device of `resource` is advertised as, where
/// the resource is surely shared (`renameByDefault`'s `.shared` names) and the node lacks it.
fn unknown_replicas(
    resource: &GpuResource,
    labels: Option<&BTreeMap<String, String>>,
    facts: &NodeFacts,
) -> Option<String> {
    match resource {
        GpuResource::Shared => {
            let labelled =
                labels.is_some_and(|l| REPLICAS_LABELS.iter().any(|k| l.contains_key(*k)));
            (!labelled && facts.replicas == 1).then(|| REPLICAS_LABELS[0].to_string())
        }
        GpuResource::Mig {
            profile,
            renamed: true,
        } => (!facts.mig_replicas.contains_key(profile)).then(|| mig_replicas_label(profile)),
        _ => None,
    }
}

/// The first of `keys` the labels set, with its trimmed value; `None` when unset or blank.
pub(crate) fn first_label<'l>(
    labels: &'l BTreeMap<String, String>,
    keys: &[&'static str],
) -> Option<(&'static str, &'l str)> {
    keys.iter()
        .find_map(|k| labels.get(*k).map(|v| (*k, v.trim())))
        .filter(|(_, v)| !v.is_empty())
}

/// The GPU a cloud provisioner's labels name, with its memory where they give it (GKE's
/// `nvidia-tesla-a100` is the 40 GB A100, the 80 GB one `nvidia-a100-80gb`); else the GPU of the
/// node's instance type, where it is one Tollgate knows (`p5.48xlarge`: H100 80 GB).
pub(crate) fn cloud_product(labels: &BTreeMap<String, String>) -> Option<String> {
    let Some((_, gpu)) = first_label(labels, &CLOUD_GPU_LABELS) else {
        return instance_product(first_label(labels, &INSTANCE_TYPE_LABELS)?.1);
    };
    let memory =
        first_label(labels, &CLOUD_GPU_MEMORY_LABELS).and_then(|(_, mib)| mib.parse::<u64>().ok());
    Some(cloud_gpu(gpu, memory))
}

/// A cloud's name for a GPU as a product name, with its memory in MiB where known.
pub(crate) fn cloud_gpu(gpu: &str, memory: Option<u64>) -> String {
    let memory = memory.or((gpu == "nvidia-tesla-a100").then_some(40 * 1024));
    with_memory(gpu, memory)
}

/// Splits GFD's product label into the product and, under the MIG single strategy, the profile:
/// `A100-SXM4-40GB-MIG-1g.5gb` → (`A100-SXM4-40GB`, `1g.5gb`); `NVIDIA-L4-SHARED` → `NVIDIA-L4`.
pub(crate) fn split_product_label(label: &str) -> (String, Option<String>) {
    let label = label.strip_suffix(SHARED_PRODUCT_SUFFIX).unwrap_or(label);
    match label.rsplit_once("-MIG-") {
        Some((product, profile)) if profile.contains('g') => {
            (product.to_string(), Some(profile.to_string()))
        }
        _ => (label.to_string(), None),
    }
}

/// Physical GPUs per product: `nvidia.com/gpu.count` when present, else what the node
/// advertises (whole GPUs; shares ÷ replicas; MIG slices by fraction) plus its DRA devices
/// (type `gpu`, and the parents of type `mig`).
fn node_capacity(
    node: &Node,
    facts: &NodeFacts,
    devices: &DeviceIndex,
    card: &RateCard,
    warnings: &mut Vec<String>,
) -> BTreeMap<String, GpuUnits> {
    let name = node.metadata.name.as_deref().unwrap_or_default();
    let labels = node.metadata.labels.as_ref();
    let mut capacity: BTreeMap<String, GpuUnits> = BTreeMap::new();
    let mut add = |product: &str, units: GpuUnits| {
        let entry = capacity
            .entry(product.to_string())
            .or_insert(GpuUnits::ZERO);
        *entry = entry.checked_add(units).unwrap_or(*entry);
    };
    // Under the MIG single strategy GFD's count is of MIG devices, not GPUs.
    let mig_single = |devices: i64, warnings: &mut Vec<String>| {
        let profile = facts.mig_single_profile.as_deref()?;
        let gpus = facts
            .mig
            .fraction(card, profile)
            .and_then(|fraction| mig_single_gpus(devices, fraction));
        if gpus.is_none() {
            warnings.push(format!(
                "node {name}: {devices} MIG devices of profile {profile:?} on {:?}: how many GPUs they are cut from cannot be known; the node's capacity is not counted",
                facts.product
            ));
        }
        gpus
    };
    if let Some(count) = labels.and_then(|l| l.get(COUNT_LABEL)) {
        match count.trim().parse::<i64>() {
            Ok(n) if n >= 0 => {
                if facts.mig_single_profile.is_none() {
                    add(&facts.product, GpuUnits::whole(n));
                } else if let Some(gpus) = mig_single(n, warnings) {
                    add(&facts.product, gpus);
                }
                return capacity;
            }
            _ => warnings.push(format!(
                "node {name}: label {COUNT_LABEL}={count:?} is not a GPU count; capacity derived from what the node advertises"
            )),
        }
    }

    let advertised = node.status.as_ref().and_then(|s| s.capacity.as_ref());
    for (resource, quantity) in advertised.into_iter().flatten() {
        let Some(kind) = classify(resource) else {
            if unpriced_accelerator(resource) {
                warnings.push(format!(
                    "node {name}: {resource}={} looks like an accelerator Tollgate does not understand; pods holding it are not charged",
                    quantity.0
                ));
            }
            continue;
        };
        let count = match device_count(&quantity.0) {
            Ok(count) => count,
            Err(e) => {
                warnings.push(format!(
                    "node {name}: capacity {resource}: {e}; not counted"
                ));
                continue;
            }
        };
        if kind == GpuResource::Whole && facts.mig_single_profile.is_some() {
            // Items are MIG devices, each advertised `replicas` times when time-sliced.
            let devices = count / Decimal::from(facts.replicas);
            match devices.to_i64().filter(|_| devices.fract().is_zero()) {
                Some(devices) => {
                    if let Some(gpus) = mig_single(devices, warnings) {
                        add(&facts.product, gpus);
                    }
                }
                None => warnings.push(format!(
                    "node {name}: capacity {resource}={} is not a whole number of MIG devices",
                    quantity.0
                )),
            }
            continue;
        }
        if let Some(label) = unknown_replicas(&kind, labels, facts) {
            warnings.push(format!(
                "node {name}: {resource}={} are shares of a time-sliced or MPS-shared device, but the node has no {label} label: each is counted as a whole device, so the node's capacity and its pods' charges can be several times too high; label the node with its replicas (GPU Feature Discovery does)",
                quantity.0
            ));
        }
        let per_item = units_per_item(&kind, facts, card).map(|(_, units)| units);
        match (per_item, GpuUnits::from_decimal(count)) {
            (Some(per_item), Some(count)) => {
                if let Some(units) = count.checked_mul(per_item) {
                    add(&facts.product, units);
                }
            }
            _ => warnings.push(format!(
                "node {name}: capacity {resource}={} cannot be sized",
                quantity.0
            )),
        }
    }

    for product in devices.physical_gpus(name) {
        add(product.as_deref().unwrap_or(&facts.product), GpuUnits::ONE);
    }
    capacity.retain(|_, units| !units.is_zero());
    capacity
}

#[cfg(test)]
pub(super) mod test {
    use super::*;

    /// Labels of `pairs`.
    pub(in crate::allocation) fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tiers_from_every_cloud_label() {
        assert_eq!(
            capacity_tier(&labels(&[("karpenter.sh/capacity-type", "spot")])),
            PriceTier::Spot
        );
        assert_eq!(
            capacity_tier(&labels(&[("karpenter.sh/capacity-type", "reserved")])),
            PriceTier::Reserved
        );
        assert_eq!(
            capacity_tier(&labels(&[("eks.amazonaws.com/capacityType", "SPOT")])),
            PriceTier::Spot
        );
        assert_eq!(
            capacity_tier(&labels(&[("eks.amazonaws.com/capacityType", "ON_DEMAND")])),
            PriceTier::OnDemand
        );
        assert_eq!(
            capacity_tier(&labels(&[("cloud.google.com/gke-spot", "true")])),
            PriceTier::Spot
        );
        assert_eq!(
            capacity_tier(&labels(&[(
                "kubernetes.azure.com/scalesetpriority",
                "spot"
            )])),
            PriceTier::Spot
        );
        assert_eq!(
            capacity_tier(&labels(&[(
                "kubernetes.azure.com/scalesetpriority",
                "regular"
            )])),
            PriceTier::OnDemand
        );
        assert_eq!(capacity_tier(&labels(&[])), PriceTier::OnDemand);
    }

    #[test]
    fn a_cloud_s_gpu_count_tells_shares_from_gpus_where_gfd_does_not_label() {
        let node = |pairs: &[(&str, &str)], advertised: &str| {
            let mut node = Node::default();
            node.metadata.name = Some("n".into());
            node.metadata.labels = Some(labels(pairs));
            node.status = Some(k8s_openapi::api::core::v1::NodeStatus {
                capacity: Some(
                    [(
                        GPU.to_string(),
                        k8s_openapi::apimachinery::pkg::api::resource::Quantity(advertised.into()),
                    )]
                    .into(),
                ),
                ..Default::default()
            });
            node
        };
        let count = [("karpenter.azure.com/sku-gpu-count", "2")];
        let replicas = |node: &Node| {
            let mut warnings = Vec::new();
            (cloud_replicas(node, &mut warnings), warnings)
        };
        // 2 GPUs advertised 6 times: each shared three ways.
        assert_eq!(replicas(&node(&count, "6")), (Some(3), vec![]));
        // As many items as GPUs (or fewer: one unhealthy), or GFD's labels: nothing inferred.
        assert_eq!(replicas(&node(&count, "2")), (None, vec![]));
        assert_eq!(replicas(&node(&count, "1")), (None, vec![]));
        let gfd = [count[0], ("nvidia.com/gpu.product", "NVIDIA-L4")];
        assert_eq!(replicas(&node(&gfd, "6")), (None, vec![]));
        // 7 items of 2 GPUs are no equal shares: said, counted whole.
        let (none, said) = replicas(&node(&count, "7"));
        assert_eq!(none, None);
        assert_eq!(
            said,
            vec![
                "node n: nvidia.com/gpu=7 for the 2 GPUs its label karpenter.azure.com/sku-gpu-count gives is no whole number of shares of each; each counted as a whole GPU"
            ]
        );
    }

    #[test]
    fn mig_single_devices_are_cut_from_whole_gpus() {
        let sevenths = |g| GpuUnits::ratio(g, 7).unwrap();
        // 7 × 1g.5gb fill one A100; 14 fill two.
        assert_eq!(mig_single_gpus(7, sevenths(1)), Some(GpuUnits::ONE));
        assert_eq!(mig_single_gpus(14, sevenths(1)), Some(GpuUnits::whole(2)));
        // 3 × 2g.10gb and 2 × 3g.20gb fit one GPU each (a slice left over).
        assert_eq!(mig_single_gpus(3, sevenths(2)), Some(GpuUnits::ONE));
        assert_eq!(mig_single_gpus(6, sevenths(2)), Some(GpuUnits::whole(2)));
        assert_eq!(mig_single_gpus(2, sevenths(3)), Some(GpuUnits::ONE));
        // One 4g.20gb per GPU: three devices, three GPUs.
        assert_eq!(mig_single_gpus(3, sevenths(4)), Some(GpuUnits::whole(3)));
        // A30: 4 slices; 2g.12gb is half, two per GPU.
        assert_eq!(
            mig_single_gpus(4, GpuUnits::ratio(2, 4).unwrap()),
            Some(GpuUnits::whole(2))
        );
    }

    #[test]
    fn product_labels_lose_gfd_suffixes() {
        assert_eq!(
            split_product_label("NVIDIA-L4-SHARED"),
            ("NVIDIA-L4".into(), None)
        );
        assert_eq!(
            split_product_label("A100-SXM4-40GB-MIG-1g.5gb"),
            ("A100-SXM4-40GB".into(), Some("1g.5gb".into()))
        );
        assert_eq!(
            split_product_label("NVIDIA-H100-80GB-HBM3"),
            ("NVIDIA-H100-80GB-HBM3".into(), None)
        );
    }
}
