//! DRA: the GPUs behind a pod's `ResourceClaim`s (SPEC §1.2).
//!
//! A claim's `status.allocation.devices.results[]` names `(driver, pool, device)`; the matching
//! `ResourceSlice` device says what it is through its attributes, bare or qualified with the
//! driver's domain: NVIDIA's `type` (`gpu`, `mig`), `productName`, `profile`, `uuid`,
//! `parentUUID`; AMD's `type` (`amdgpu`, `amdgpu-partition`), `productName`,
//! `partitionProfile` (`cpx_nps4`), and the physical GPU's `resource.kubernetes.io/pciBusID`.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::resource::v1::{Device, DeviceAttribute, ResourceClaim, ResourceSlice};
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;

use super::device::AmdPartitionMode;
use crate::pricing::{RateCard, with_memory};
use crate::quantity::parse_quantity;
use crate::units::GpuUnits;
use rust_decimal::prelude::ToPrimitive;

/// NVIDIA's DRA driver.
pub(crate) const NVIDIA_DRIVER: &str = "gpu.nvidia.com";

/// AMD's DRA driver.
pub(crate) const AMD_DRIVER: &str = "gpu.amd.com";
/// The drivers whose devices are GPUs or parts of them.
const GPU_DRIVERS: [&str; 2] = [NVIDIA_DRIVER, AMD_DRIVER];

/// What a DRA device is, as far as cost goes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) enum DeviceType {
    /// A whole GPU (NVIDIA `gpu`, AMD `amdgpu`), or a device standing for one that claims
    /// consume parts of (AMD's auto-partition devices).
    Gpu,
    Mig {
        profile: String,
    },
    /// A partition of an AMD Instinct GPU, in its partition mode (`None`: not readable).
    AmdPartition {
        mode: Option<AmdPartitionMode>,
    },
}

/// What a device of `driver` is, from its attributes; `None`: no GPU.
fn device_type(device: &Device, driver: &str) -> Option<DeviceType> {
    let text = |name| text_attribute(device, driver, name);
    match text("type")?.as_str() {
        "gpu" | "amdgpu" => Some(DeviceType::Gpu),
        "mig" => Some(DeviceType::Mig {
            profile: text("profile").unwrap_or_default(),
        }),
        // An auto-partition device (`computePartition`) stands for its whole GPU in one mode:
        // a claim's consumed `partitions` say its part.
        "amdgpu-partition" if text("computePartition").is_some() => Some(DeviceType::Gpu),
        "amdgpu-partition" => Some(DeviceType::AmdPartition {
            mode: text("partitionProfile").and_then(|p| AmdPartitionMode::parse(&p)),
        }),
        _ => None,
    }
}

/// One GPU device published in a `ResourceSlice`.
#[derive(Clone, Debug)]
pub(crate) struct DeviceFacts {
    pub(crate) kind: DeviceType,
    pub(crate) product: Option<String>,
    /// What the device offers by capacity name (`memory`, …), for claims that consume a share
    /// of it (KEP-5075 consumable capacity).
    capacity: BTreeMap<String, Decimal>,
    /// Whether claims may share it (`allowMultipleAllocations`), each consuming part of what
    /// it offers.
    shareable: bool,
    uuid: Option<String>,
    parent_uuid: Option<String>,
    /// The PCI address of the physical GPU (AMD: a partition's is its parent's).
    pci_bus: Option<String>,
    node: Option<String>,
}

impl DeviceFacts {
    /// What names the physical GPU the device is, or is part of.
    fn physical_gpu(&self) -> Option<&String> {
        match self.kind {
            DeviceType::Gpu => self.uuid.as_ref().or(self.pci_bus.as_ref()),
            DeviceType::Mig { .. } => self.parent_uuid.as_ref(),
            DeviceType::AmdPartition { .. } => self.pci_bus.as_ref(),
        }
    }
}

/// A whole GPU claims may share, each consuming part of what it offers (KEP-5075).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareableGpu {
    /// The driver publishing it.
    pub driver: String,
    /// Its product, where its slice names one.
    pub product: Option<String>,
    /// What it offers by capacity name.
    pub capacity: BTreeMap<String, Decimal>,
}

/// GPU devices of all slices, by `(driver, pool, device)`.
#[derive(Clone, Debug, Default)]
pub(crate) struct DeviceIndex {
    devices: FxHashMap<(String, String, String), DeviceFacts>,
    /// The `type` of each device of a GPU driver that is no GPU Tollgate reads (NVIDIA's
    /// `vfio` and `vgpu`, AMD's `vfio`), for a claim holding one to say so.
    unread: FxHashMap<(String, String, String), String>,
    products_by_uuid: FxHashMap<String, String>,
    by_node: BTreeMap<String, Vec<(String, String, String)>>,
}

fn attribute<'a>(device: &'a Device, driver: &str, name: &str) -> Option<&'a DeviceAttribute> {
    let attributes = device.attributes.as_ref()?;
    attributes
        .get(name)
        .or_else(|| attributes.get(&format!("{driver}/{name}")))
        .or_else(|| {
            attributes
                .iter()
                .find(|(key, _)| key.rsplit_once('/').is_some_and(|(_, bare)| bare == name))
                .map(|(_, value)| value)
        })
}

fn text_attribute(device: &Device, driver: &str, name: &str) -> Option<String> {
    let attribute = attribute(device, driver, name)?;
    attribute
        .string
        .clone()
        .or_else(|| attribute.version.clone())
        .filter(|s| !s.trim().is_empty())
}

impl DeviceIndex {
    /// Indexes the GPU devices (`type` `gpu` or `mig`) of `slices`.
    ///
    /// A pool is what its slices of the highest `generation` say: a driver republishing a pool
    /// (a GPU gone, MIG devices remade) bumps it, and slices of an older one, until the driver
    /// deletes them, are stale (the API's `ResourcePool.generation`: consumers consider only the
    /// highest). A stale slice's devices make no node's GPUs; a claim allocated from one before
    /// the change still finds its device there.
    pub(crate) fn from_slices<'o>(slices: impl IntoIterator<Item = &'o ResourceSlice>) -> Self {
        let slices: Vec<&ResourceSlice> = slices.into_iter().collect();
        let mut newest: FxHashMap<(&str, &str), i64> = FxHashMap::default();
        for slice in &slices {
            let pool = (slice.spec.driver.as_str(), slice.spec.pool.name.as_str());
            let generation = newest.entry(pool).or_insert(slice.spec.pool.generation);
            *generation = (*generation).max(slice.spec.pool.generation);
        }
        let is_current = |slice: &ResourceSlice| {
            let pool = (slice.spec.driver.as_str(), slice.spec.pool.name.as_str());
            newest.get(&pool) == Some(&slice.spec.pool.generation)
        };
        // Current slices first: what a stale slice says of a device a current one lists too is
        // passed over.
        let (current, stale): (Vec<&ResourceSlice>, Vec<&ResourceSlice>) =
            slices.into_iter().partition(|s| is_current(s));
        let mut index = DeviceIndex::default();
        for (slice, current) in current
            .into_iter()
            .map(|s| (s, true))
            .chain(stale.into_iter().map(|s| (s, false)))
        {
            let spec = &slice.spec;
            for device in spec.devices.iter().flatten() {
                let Some(kind) = device_type(device, &spec.driver) else {
                    if GPU_DRIVERS.contains(&spec.driver.as_str()) {
                        let kind = text_attribute(device, &spec.driver, "type");
                        let key = (
                            spec.driver.clone(),
                            spec.pool.name.clone(),
                            device.name.clone(),
                        );
                        index
                            .unread
                            .entry(key)
                            .or_insert_with(|| kind.unwrap_or_else(|| "none".into()));
                    }
                    continue;
                };
                let mut facts = DeviceFacts {
                    kind,
                    product: text_attribute(device, &spec.driver, "productName"),
                    uuid: text_attribute(device, &spec.driver, "uuid"),
                    parent_uuid: text_attribute(device, &spec.driver, "parentUUID"),
                    pci_bus: text_attribute(device, &spec.driver, "pciBusID")
                        .or_else(|| text_attribute(device, &spec.driver, "pciAddr")),
                    node: device.node_name.clone().or_else(|| spec.node_name.clone()),
                    shareable: device.allow_multiple_allocations == Some(true),
                    capacity: device
                        .capacity
                        .iter()
                        .flatten()
                        .filter_map(|(name, c)| {
                            Some((name.clone(), parse_quantity(&c.value.0).ok()?))
                        })
                        .collect(),
                };
                // A whole GPU's memory capacity is the GPU's (a MIG device's is its slice's).
                if facts.kind == DeviceType::Gpu
                    && let Some(product) = &facts.product
                {
                    let mib = facts
                        .capacity
                        .get("memory")
                        .or_else(|| facts.capacity.get(&format!("{}/memory", spec.driver)))
                        .and_then(|bytes| (bytes / Decimal::from(1 << 20)).to_u64())
                        .filter(|mib| *mib > 0);
                    facts.product = Some(with_memory(product, mib));
                }
                if let (Some(uuid), Some(product)) = (&facts.uuid, &facts.product) {
                    index
                        .products_by_uuid
                        .entry(uuid.clone())
                        .or_insert_with(|| product.clone());
                }
                let key = (
                    spec.driver.clone(),
                    spec.pool.name.clone(),
                    device.name.clone(),
                );
                if let Some(node) = facts.node.as_ref().filter(|_| current) {
                    index
                        .by_node
                        .entry(node.clone())
                        .or_default()
                        .push(key.clone());
                }
                index.devices.entry(key).or_insert(facts);
            }
        }
        index
    }

    fn lookup(&self, driver: &str, pool: &str, device: &str) -> Option<&DeviceFacts> {
        self.devices
            .get(&(driver.to_string(), pool.to_string(), device.to_string()))
    }

    /// The `type` of a GPU driver's device that is no GPU Tollgate reads.
    fn unread_type(&self, driver: &str, pool: &str, device: &str) -> Option<&str> {
        self.unread
            .get(&(driver.to_string(), pool.to_string(), device.to_string()))
            .map(String::as_str)
    }

    /// The product of a device, or of its parent GPU for a MIG device without one.
    fn product_of(&self, facts: &DeviceFacts) -> Option<String> {
        facts.product.clone().or_else(|| {
            facts
                .parent_uuid
                .as_ref()
                .and_then(|parent| self.products_by_uuid.get(parent).cloned())
        })
    }

    /// GPU devices published for a node.
    pub(crate) fn devices_on_node<'a>(
        &'a self,
        node: &str,
    ) -> impl Iterator<Item = &'a DeviceFacts> + 'a {
        self.by_node
            .get(node)
            .into_iter()
            .flatten()
            .filter_map(|key| self.devices.get(key))
    }

    /// The whole GPUs of current pools that claims may share (`allowMultipleAllocations`), with
    /// the driver publishing each, its product and what it offers.
    pub(crate) fn shareable_gpus(&self) -> Vec<ShareableGpu> {
        self.by_node
            .values()
            .flatten()
            .filter_map(|key| Some((key, self.devices.get(key)?)))
            .filter(|(_, facts)| facts.shareable && facts.kind == DeviceType::Gpu)
            .map(|((driver, ..), facts)| ShareableGpu {
                driver: driver.clone(),
                product: self.product_of(facts),
                capacity: facts.capacity.clone(),
            })
            .collect()
    }

    /// The drivers publishing devices Tollgate reads on each node.
    pub(crate) fn drivers_by_node(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.by_node
            .iter()
            .map(|(node, keys)| {
                let drivers = keys
                    .iter()
                    .filter(|key| self.devices.contains_key(*key))
                    .map(|(driver, ..)| driver.clone())
                    .collect();
                (node.clone(), drivers)
            })
            .collect()
    }

    /// The product name of the first GPU device on a node that has one.
    pub(crate) fn product_on_node(&self, node: &str) -> Option<String> {
        self.devices_on_node(node).find_map(|d| self.product_of(d))
    }

    /// The products of the physical GPUs a node's devices are or are part of, one entry per
    /// GPU: a GPU and its MIG devices or partitions count once (by UUID, parent UUID or PCI
    /// address); a whole GPU naming none counts on its own; a MIG device naming no parent,
    /// not at all.
    pub(crate) fn physical_gpus(&self, node: &str) -> Vec<Option<String>> {
        let mut seen: BTreeSet<&String> = BTreeSet::new();
        let mut gpus = Vec::new();
        for device in self.devices_on_node(node) {
            match device.physical_gpu() {
                Some(id) if !seen.insert(id) => {}
                Some(_) => gpus.push(self.product_of(device)),
                None if device.kind == DeviceType::Gpu => gpus.push(device.product.clone()),
                None => {}
            }
        }
        gpus
    }
}

/// What a claim's consumed capacity makes of its share of a device (KEP-5075).
#[derive(Debug)]
pub(crate) enum ConsumedShare {
    /// Of each capacity it consumes that the device offers, its part of what the device
    /// offers; the largest of those (the scarcest capacity decides how many such claims fit).
    Share(GpuUnits),
    /// More of capacity `.0` than the device offers (`.1`, as written): the whole device.
    Beyond(String, String),
    /// Not to be sized: the device offers none of what it consumes, or an amount of what it
    /// offers is not a quantity of zero or more.
    Unsized,
}

/// The share of a device a claim consumes, from what it consumes of each capacity the device
/// offers (`offered`).
pub(crate) fn consumed_share<'a>(
    consumed: impl IntoIterator<Item = (&'a String, &'a str)>,
    offered: &BTreeMap<String, Decimal>,
) -> ConsumedShare {
    let mut largest: Option<GpuUnits> = None;
    for (name, quantity) in consumed {
        let Some(&of) = offered.get(name).filter(|of| **of > Decimal::ZERO) else {
            continue;
        };
        let used = match parse_quantity(quantity) {
            Ok(used) if used >= Decimal::ZERO => used,
            _ => return ConsumedShare::Unsized,
        };
        if used > of {
            return ConsumedShare::Beyond(name.clone(), quantity.to_string());
        }
        let Some(share) = exact_ratio(used, of) else {
            return ConsumedShare::Unsized;
        };
        largest = Some(match largest {
            Some(larger) if larger.to_decimal() >= share.to_decimal() => larger,
            _ => share,
        });
    }
    largest.map_or(ConsumedShare::Unsized, ConsumedShare::Share)
}

/// `part / whole` as an exact fraction (both scaled to integers first).
fn exact_ratio(part: Decimal, whole: Decimal) -> Option<GpuUnits> {
    let scale = part.scale().max(whole.scale());
    let integer = |d: Decimal| -> Option<i64> {
        let mut d = d;
        d.rescale(scale);
        i64::try_from(d.mantissa()).ok()
    };
    GpuUnits::ratio(integer(part)?, integer(whole)?)
}

/// GPU units a claim's allocation holds, per product (empty product: take the node's).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub(crate) struct ClaimDevices {
    pub(crate) units: BTreeMap<String, GpuUnits>,
    /// How many pods the claim is reserved for (at least 1).
    pub(crate) consumers: i64,
    /// The claim is reserved for other pods and not for this one: it holds nothing of it.
    pub(crate) reserved_for_others: bool,
}

/// Sums the GPU devices allocated to `claim`, shared equally by the pods its `reservedFor`
/// lists. A pod it does not list is not one of them (`reserved_for_others`): counting it too
/// would share out more than the devices. An empty list is the last pod's alone. Returns `None`
/// when the claim is not allocated yet.
pub(crate) fn claim_devices(
    claim: &ResourceClaim,
    pod_uid: &str,
    devices: &DeviceIndex,
    card: &RateCard,
    node_product: &str,
    warnings: &mut Vec<String>,
) -> Option<ClaimDevices> {
    let status = claim.status.as_ref()?;
    let results = status
        .allocation
        .as_ref()?
        .devices
        .as_ref()?
        .results
        .as_ref()?;
    let claim_name = format!(
        "{}/{}",
        claim.metadata.namespace.as_deref().unwrap_or_default(),
        claim.metadata.name.as_deref().unwrap_or_default()
    );
    let mut held = ClaimDevices::default();
    // A device given with admin access (a monitoring agent's) is in use by another claim, or
    // by none: its holder is that claim's pods, or nobody.
    for result in results.iter().filter(|r| r.admin_access != Some(true)) {
        let (product, units) = match devices.lookup(&result.driver, &result.pool, &result.device) {
            Some(facts) => {
                let product = devices.product_of(facts).unwrap_or_default();
                let sizing_product = if product.is_empty() {
                    node_product
                } else {
                    &product
                };
                let units = match &facts.kind {
                    DeviceType::Gpu => Some(GpuUnits::ONE),
                    DeviceType::Mig { profile } => card.mig_fraction(sizing_product, profile),
                    DeviceType::AmdPartition { mode } => mode
                        .as_ref()
                        .and_then(|m| m.share(sizing_product))
                        .map(|(_, units)| units),
                };
                let units = units.unwrap_or_else(|| {
                    warnings.push(format!(
                        "ResourceClaim {claim_name}: device {} is part of a GPU whose size cannot be read (no MIG profile or partition mode); counted as a whole GPU",
                        result.device
                    ));
                    GpuUnits::ONE
                });
                let device = &result.device;
                let units = match &result.consumed_capacity {
                    Some(consumed) if !consumed.is_empty() => {
                        let consumed = consumed.iter().map(|(name, q)| (name, q.0.as_str()));
                        match consumed_share(consumed, &facts.capacity) {
                            ConsumedShare::Share(share) => {
                                if share == GpuUnits::ZERO {
                                    warnings.push(format!(
                                        "ResourceClaim {claim_name}: it consumes none of what device {device} offers; it holds nothing of it"
                                    ));
                                }
                                units.checked_mul(share).unwrap_or(units)
                            }
                            ConsumedShare::Beyond(capacity, amount) => {
                                warnings.push(format!(
                                    "ResourceClaim {claim_name}: it consumes {amount} of {capacity}, more than device {device} offers; counted as the whole device"
                                ));
                                units
                            }
                            ConsumedShare::Unsized => {
                                warnings.push(format!(
                                    "ResourceClaim {claim_name}: the capacity it consumes of device {device} cannot be sized against what the device offers; counted as the whole device"
                                ));
                                units
                            }
                        }
                    }
                    _ => units,
                };
                (product, units)
            }
            None if GPU_DRIVERS.contains(&result.driver.as_str()) => {
                let device = format!("{}/{}/{}", result.driver, result.pool, result.device);
                let why = match devices.unread_type(&result.driver, &result.pool, &result.device) {
                    Some(kind) => format!("is of type {kind}, which Tollgate does not read"),
                    None => "is in no ResourceSlice".to_string(),
                };
                warnings.push(format!(
                    "ResourceClaim {claim_name}: device {device} {why}; counted as one whole GPU of its node's model"
                ));
                (String::new(), GpuUnits::ONE)
            }
            None => continue,
        };
        let entry = held.units.entry(product).or_insert(GpuUnits::ZERO);
        *entry = entry.checked_add(units).unwrap_or(*entry);
    }
    let consumers: BTreeSet<&str> = status
        .reserved_for
        .iter()
        .flatten()
        .filter(|r| r.resource == "pods")
        .map(|r| r.uid.as_str())
        .collect();
    held.reserved_for_others = !consumers.is_empty() && !consumers.contains(pod_uid);
    held.consumers = consumers.len().max(1) as i64;
    Some(held)
}
