//! Where a pod not scheduled yet may run, among the live GPU nodes: the nodes its node name,
//! node selector and required node affinity admit and whose taints it tolerates, what they all
//! say of their GPUs, and their costliest GPU. Worked out once a view for each way pods say
//! where they run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use k8s_openapi::api::core::v1::PodSpec;
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;

use crate::allocation::{
    AllocationSet, ClaimAsks, PlacementNode, PlacementNodes, admits, placement_key,
};
use crate::pricing::{PriceTier, RateCard};
use crate::time::UnixSeconds;

/// The live GPU nodes a pod that says where it runs may run on.
#[derive(Debug)]
pub(super) struct Placed {
    /// How many.
    nodes: usize,
    /// The labels every one of them has, with the same value: what the pod's node will have
    /// (its GPU product, time-slicing replicas, capacity type), as if its node selector said it.
    pub(super) common: BTreeMap<String, String>,
    /// Their costliest GPU at the check's time (a node's own price, `tollgate.dev/gpu-hourly-
    /// price`, where it has one); where none is priced, one of them, for the answer to name;
    /// `None` when their GPU is not known.
    pub(super) costliest: Option<Costliest>,
    /// Whether they hold GPUs of more than one model or tier.
    several: bool,
    /// Whether the pod names its node: no node made later can be it.
    pinned: bool,
    /// What the pod needs of its node ([`Needs::said`]), where some node it may run on otherwise
    /// does not offer it (`nvidia.com/gpu` on a node cut into MIG devices, or with DRA's devices
    /// only; DRA's devices on a node of the device plugin's).
    offering: Option<String>,
}

/// What a pod asks of the node it runs on beyond its labels and taints: the GPU device
/// resources it must offer (the scheduler's resource fit), and for each DRA request only GPUs
/// meet, the drivers of which one must publish devices there.
#[derive(Debug, Default)]
pub(super) struct Needs<'a> {
    pub(super) devices: Vec<&'a str>,
    pub(super) drivers: Vec<BTreeSet<&'a str>>,
}

impl Needs<'_> {
    /// Whether node `name` (as placement reads it) meets them.
    fn met_on(&self, name: &str, node: &PlacementNode, claims: &ClaimAsks) -> bool {
        self.devices
            .iter()
            .all(|device| node.devices.contains(*device))
            && self
                .drivers
                .iter()
                .all(|drivers| drivers.iter().any(|driver| claims.publishes(name, driver)))
    }

    /// What they are, for the memo's key and the answer: `nvidia.com/gpu and gpu.nvidia.com
    /// devices`.
    fn said(&self) -> String {
        let drivers = self.drivers.iter().map(|drivers| {
            let drivers: Vec<&str> = drivers.iter().copied().collect();
            format!("{} devices", drivers.join(" or "))
        });
        let needs: Vec<String> = self
            .devices
            .iter()
            .map(|d| d.to_string())
            .chain(drivers)
            .collect();
        needs.join(" and ")
    }
}

/// The GPU a pod is priced as among the nodes it may run on.
#[derive(Clone, Debug)]
pub(super) struct Costliest {
    pub(super) product: String,
    pub(super) tier: PriceTier,
    /// Its price per GPU-hour there; `None`: not priced.
    pub(super) price: Option<Decimal>,
    /// Whether that is a node's own price.
    pub(super) own: bool,
}

impl Placed {
    /// What to say of a pod priced as `model` in `tier` (at a node's own price where `own`)
    /// from these nodes.
    pub(super) fn note(&self, model: &str, tier: PriceTier, own: bool) -> String {
        let nodes = match self.nodes {
            1 => "the GPU node".to_string(),
            n => format!("the {n} GPU nodes"),
        };
        let nodes = match &self.offering {
            Some(devices) => format!("{nodes} offering {devices} that"),
            None => nodes,
        };
        let of = if self.several {
            "the most expensive GPU of"
        } else {
            "the GPU of"
        };
        let later = if self.pinned {
            ""
        } else {
            ": a node made later may hold another"
        };
        let price = if own { " at its node's own price" } else { "" };
        format!(
            "priced as {model} ({tier}){price}, {of} {nodes} its node name, selector, affinity and tolerations allow now{later}"
        )
    }
}

/// Placements worked out for one view (a view is the cluster as of one read, so they hold as
/// long as it does), by what pods say of where they run: pods of one workload say the same, and
/// are placed once.
#[derive(Debug, Default)]
pub struct Placements(Mutex<FxHashMap<String, Option<Arc<Placed>>>>);

/// Ways of saying where to run remembered at most per view; past them each is worked out again
/// (a flood of pods each saying something new cannot grow the memory).
const MOST_REMEMBERED: usize = 1024;

impl Placements {
    /// Where a pod of `spec` needing `needs` of its node may run among the GPU nodes of `live`
    /// (labelled `nodes`, their DRA drivers in `claims`) at `at`. `None` when it says nothing
    /// of where it runs, or admits no live GPU node.
    pub(super) fn of(
        &self,
        (spec, needs): (&PodSpec, &Needs<'_>),
        (live, nodes, claims): (&AllocationSet, &PlacementNodes, &ClaimAsks),
        card: &RateCard,
        at: UnixSeconds,
    ) -> Option<Arc<Placed>> {
        let mut key = placement_key(spec)?;
        key.push('\u{0}');
        key.push_str(&needs.said());
        let remembered = self.lock().get(&key).cloned();
        if let Some(placed) = remembered {
            return placed;
        }
        let placed = placed_on((spec, needs), (live, nodes, claims), card, at).map(Arc::new);
        let mut remembered = self.lock();
        if remembered.len() < MOST_REMEMBERED {
            remembered.insert(key, placed.clone());
        }
        placed
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FxHashMap<String, Option<Arc<Placed>>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The live GPU nodes (capacity lasting to `at`) a pod of `spec` admits that meet its
/// `needs`, what they all say, and their costliest GPU at `at`.
fn placed_on(
    (spec, needs): (&PodSpec, &Needs<'_>),
    (live, nodes, claims): (&AllocationSet, &PlacementNodes, &ClaimAsks),
    card: &RateCard,
    at: UnixSeconds,
) -> Option<Placed> {
    let mut admitted = BTreeSet::new();
    let mut lacking = false;
    let mut choices: BTreeSet<(&str, PriceTier, Option<Decimal>)> = BTreeSet::new();
    let mut common: Option<BTreeMap<String, String>> = None;
    for capacity in live.capacity.iter().filter(|c| c.interval.end >= at) {
        let name = live.names.resolve(capacity.node);
        let Some(node) = nodes.get(name).filter(|n| admits(spec, name, n)) else {
            continue;
        };
        if !needs.met_on(name, node, claims) {
            lacking = true;
            continue;
        }
        let labels = &node.labels;
        let product = live.names.resolve(capacity.product);
        choices.insert((product, capacity.tier, capacity.price_override));
        if admitted.insert(name) {
            match &mut common {
                Some(common) => common.retain(|key, value| labels.get(key) == Some(value)),
                None => common = Some(labels.clone()),
            }
        }
    }
    let known = choices.iter().filter(|(product, ..)| !product.is_empty());
    let costliest = known
        .clone()
        .filter_map(|&(product, tier, own)| {
            let price = card.price_at(product, tier, own, at)?;
            Some((price, product, tier, own.is_some()))
        })
        .max()
        .map(|(price, product, tier, own)| (product, tier, Some(price), own))
        .or_else(|| known.map(|&(p, t, _)| (p, t, None, false)).next())
        .map(|(product, tier, price, own)| Costliest {
            product: product.to_string(),
            tier,
            price,
            own,
        });
    Some(Placed {
        nodes: admitted.len(),
        common: common?,
        costliest,
        several: choices.len() > 1,
        pinned: spec.node_name.as_deref().is_some_and(|n| !n.is_empty()),
        offering: lacking.then(|| needs.said()),
    })
}
