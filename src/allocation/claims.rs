//! DRA: the GPUs behind a pod's `ResourceClaim`s (SPEC §1.2).
//!
//! A claim's `status.allocation.devices.results[]` names `(driver, pool, device)`; the matching
//! `ResourceSlice` device says what it is through its attributes (`type`, `productName`,
//! `profile`, `uuid`, `parentUUID`), bare or qualified with the driver's domain.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::resource::v1::{Device, DeviceAttribute, ResourceClaim, ResourceSlice};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;

use crate::pricing::{RateCard, with_memory};
use crate::quantity::parse_quantity;
use crate::units::GpuUnits;
use rust_decimal::prelude::ToPrimitive;

/// NVIDIA's DRA driver.
pub(crate) const NVIDIA_DRIVER: &str = "gpu.nvidia.com";

/// What a DRA device is, as far as cost goes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) enum DeviceType {
    Gpu,
    Mig { profile: String },
}

/// One GPU device published in a `ResourceSlice`.
#[derive(Clone, Debug)]
pub(crate) struct DeviceFacts {
    pub(crate) kind: DeviceType,
    pub(crate) product: Option<String>,
    /// What the device offers by capacity name (`memory`, …), for claims that consume a share
    /// of it (KEP-5075 consumable capacity).
    capacity: BTreeMap<String, Decimal>,
    uuid: Option<String>,
    parent_uuid: Option<String>,
    node: Option<String>,
}

/// GPU devices of all slices, by `(driver, pool, device)`.
#[derive(Clone, Debug, Default)]
pub(crate) struct DeviceIndex {
    devices: FxHashMap<(String, String, String), DeviceFacts>,
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
    pub(crate) fn from_slices<'o>(slices: impl IntoIterator<Item = &'o ResourceSlice>) -> Self {
        let mut index = DeviceIndex::default();
        for slice in slices {
            let spec = &slice.spec;
            for device in spec.devices.iter().flatten() {
                let kind = match text_attribute(device, &spec.driver, "type").as_deref() {
                    Some("gpu") => DeviceType::Gpu,
                    Some("mig") => DeviceType::Mig {
                        profile: text_attribute(device, &spec.driver, "profile")
                            .unwrap_or_default(),
                    },
                    _ => continue,
                };
                let mut facts = DeviceFacts {
                    kind,
                    product: text_attribute(device, &spec.driver, "productName"),
                    uuid: text_attribute(device, &spec.driver, "uuid"),
                    parent_uuid: text_attribute(device, &spec.driver, "parentUUID"),
                    node: device.node_name.clone().or_else(|| spec.node_name.clone()),
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
                        .and_then(|bytes| (bytes / Decimal::from(1 << 20)).to_u64());
                    facts.product = Some(with_memory(product, mib));
                }
                if let (Some(uuid), Some(product)) = (&facts.uuid, &facts.product) {
                    index.products_by_uuid.insert(uuid.clone(), product.clone());
                }
                let key = (
                    spec.driver.clone(),
                    spec.pool.name.clone(),
                    device.name.clone(),
                );
                if let Some(node) = &facts.node {
                    index
                        .by_node
                        .entry(node.clone())
                        .or_default()
                        .push(key.clone());
                }
                index.devices.insert(key, facts);
            }
        }
        index
    }

    fn lookup(&self, driver: &str, pool: &str, device: &str) -> Option<&DeviceFacts> {
        self.devices
            .get(&(driver.to_string(), pool.to_string(), device.to_string()))
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

    /// The product name of the first GPU device on a node that has one.
    pub(crate) fn product_on_node(&self, node: &str) -> Option<String> {
        self.devices_on_node(node).find_map(|d| self.product_of(d))
    }

    /// Products of the physical GPUs on a node that are published only as MIG devices (their
    /// parent has no `type=gpu` device of its own), one entry per parent.
    pub(crate) fn mig_parents_without_gpu_device(&self, node: &str) -> Vec<Option<String>> {
        let whole: BTreeSet<&String> = self
            .devices_on_node(node)
            .filter(|d| d.kind == DeviceType::Gpu)
            .filter_map(|d| d.uuid.as_ref())
            .collect();
        let mut parents: BTreeMap<&String, Option<String>> = BTreeMap::new();
        for device in self.devices_on_node(node) {
            if let (DeviceType::Mig { .. }, Some(parent)) = (&device.kind, &device.parent_uuid)
                && !whole.contains(parent)
            {
                parents
                    .entry(parent)
                    .or_insert_with(|| self.product_of(device));
            }
        }
        parents.into_values().collect()
    }
}

/// What a claim's consumed capacity makes of its share of a device (KEP-5075).
enum ConsumedShare {
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
fn consumed_share(
    consumed: &BTreeMap<String, Quantity>,
    offered: &BTreeMap<String, Decimal>,
) -> ConsumedShare {
    let mut largest: Option<GpuUnits> = None;
    for (name, quantity) in consumed {
        let Some(&of) = offered.get(name).filter(|of| **of > Decimal::ZERO) else {
            continue;
        };
        let used = match parse_quantity(&quantity.0) {
            Ok(used) if used >= Decimal::ZERO => used,
            _ => return ConsumedShare::Unsized,
        };
        if used > of {
            return ConsumedShare::Beyond(name.clone(), quantity.0.clone());
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
                };
                let units = units.unwrap_or_else(|| {
                    warnings.push(format!(
                        "ResourceClaim {claim_name}: MIG device {} has no readable profile; counted as a whole GPU",
                        result.device
                    ));
                    GpuUnits::ONE
                });
                let device = &result.device;
                let units = match &result.consumed_capacity {
                    Some(consumed) if !consumed.is_empty() => {
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
            None if result.driver == NVIDIA_DRIVER => {
                warnings.push(format!(
                    "ResourceClaim {claim_name}: device {}/{}/{} is in no ResourceSlice; counted as one whole GPU of its node's model",
                    result.driver, result.pool, result.device
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
