//! The demo fleet moving on: from the moment a service starts, each share of each node runs its
//! pods one after another, and the changes reach the service as watch events, the path a
//! watched cluster's changes take. A finished pod is deleted as soon as it finishes (its
//! finish time recorded), as a Job with `ttlSecondsAfterFinished: 0` would be.

use kube::runtime::watcher::Event;

use super::DemoFleet;
use super::fleet::{DemoNode, NAMESPACES, Offer, Slot, slots};
use super::objects::{namespace_object, node_object, run_objects, slice_object, template_object};
use super::timeline::{Run, SlotRuns};
use crate::live::{ClusterStores, KindStore, Strip};
use crate::time::UnixSeconds;

/// One share of one node: its runs, the current one, and whether the cluster shows it yet.
struct Share {
    node: usize,
    slot: Slot,
    runs: SlotRuns,
    current: Run,
    shown: bool,
}

/// The demo fleet as a cluster that changes over time.
pub struct DemoCluster {
    nodes: Vec<DemoNode>,
    shares: Vec<Share>,
}

/// Sends a watcher's first list of `objects` to `store`.
fn list<K: kube::Resource + Strip + serde::Serialize + serde::de::DeserializeOwned>(
    store: &mut KindStore<K>,
    objects: impl IntoIterator<Item = K>,
    at: UnixSeconds,
) {
    store.handle(Event::Init, at);
    for object in objects {
        store.handle(Event::InitApply(object), at);
    }
    store.handle(Event::InitDone, at);
}

impl DemoCluster {
    /// The fleet as it stands at its as-of (what ran before is its history), listed into
    /// `stores` as watchers list a cluster when they start.
    pub fn start(fleet: DemoFleet, stores: &mut ClusterStores) -> Self {
        let at = fleet.as_of;
        let nodes = fleet.nodes();
        let mut shares = Vec::new();
        for (index, node) in nodes.iter().enumerate() {
            for (slot_index, slot) in slots(node).into_iter().enumerate() {
                let mut runs = SlotRuns::new(node, slot_index, fleet.history_start(node));
                let mut current = runs.next_run(node, &slot);
                while current.end <= at {
                    current = runs.next_run(node, &slot);
                }
                shares.push(Share {
                    node: index,
                    shown: current.start < at,
                    slot,
                    runs,
                    current,
                });
            }
        }
        list(
            &mut stores.nodes,
            nodes.iter().map(|n| node_object(n, fleet.anchor)),
            at,
        );
        list(
            &mut stores.namespaces,
            NAMESPACES
                .iter()
                .map(|(name, cc)| namespace_object(name, *cc)),
            at,
        );
        list(
            &mut stores.slices,
            nodes
                .iter()
                .filter(|n| n.pool.offer == Offer::Dra)
                .map(slice_object),
            at,
        );
        list(
            &mut stores.templates,
            NAMESPACES.iter().map(|(name, _)| template_object(name)),
            at,
        );
        // Object by object, so that a large fleet's pods are never all built at once.
        let running = |share: &&Share| share.shown;
        let objects_of =
            |share: &Share| run_objects(&share.current, &nodes[share.node], &share.slot, at);
        list(
            &mut stores.claims,
            shares
                .iter()
                .filter(running)
                .filter_map(|s| objects_of(s).1),
            at,
        );
        list(
            &mut stores.pods,
            fleet
                .pending_pods()
                .into_iter()
                .chain(shares.iter().filter(running).flat_map(|s| objects_of(s).0)),
            at,
        );
        DemoCluster { nodes, shares }
    }

    /// Moves the fleet on to `to`: pods that finished are deleted, pods that started appear,
    /// each with its claim, as watch events seen at `to`.
    pub fn advance(&mut self, to: UnixSeconds, stores: &mut ClusterStores) {
        for share in &mut self.shares {
            let node = &self.nodes[share.node];
            loop {
                if share.shown && share.current.end <= to {
                    let (pods, claim) = run_objects(&share.current, node, &share.slot, to);
                    for pod in pods {
                        stores.pods.handle(Event::Delete(pod), to);
                    }
                    if let Some(claim) = claim {
                        stores.claims.handle(Event::Delete(claim), to);
                    }
                    share.current = share.runs.next_run(node, &share.slot);
                    share.shown = false;
                } else if !share.shown && share.current.start < to {
                    let (pods, claim) = run_objects(&share.current, node, &share.slot, to);
                    if let Some(claim) = claim {
                        stores.claims.handle(Event::Apply(claim), to);
                    }
                    for pod in pods {
                        stores.pods.handle(Event::Apply(pod), to);
                    }
                    share.shown = true;
                } else {
                    break;
                }
            }
        }
    }
}
