//! The allocations of a watched cluster, kept between reconciles: each reconcile reads again
//! only the objects that changed since the one before (and the pods that depend on them), and
//! reuses every other pod's and node's allocations as they were.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::resource::v1::{ResourceClaim, ResourceSlice};
use rustc_hash::{FxHashMap, FxHashSet};

use super::stores::{Changes, KindStore};
use crate::allocation::{AllocationSet, BuildOptions, ClusterContext, claim_lookup, claim_names};
use crate::pricing::RateCard;
use crate::time::UnixSeconds;

/// Allocations are kept with running intervals open to this end, and cut at each read's as-of.
const OPEN: UnixSeconds = UnixSeconds::MAX;

/// One pod's allocations and what they were read from.
#[derive(Debug, Default)]
struct PodEntry {
    set: AllocationSet,
    node: String,
    namespace: String,
    claims: Vec<String>,
}

/// Which pods depend on an object of another kind.
#[derive(Debug, Default)]
struct Dependents {
    by_node: FxHashMap<String, FxHashSet<String>>,
    by_namespace: FxHashMap<String, FxHashSet<String>>,
    by_claim: FxHashMap<(String, String), FxHashSet<String>>,
}

impl Dependents {
    fn add(&mut self, uid: &str, entry: &PodEntry) {
        let link = |map: &mut FxHashMap<String, FxHashSet<String>>, key: &String| {
            map.entry(key.clone()).or_default().insert(uid.to_string());
        };
        link(&mut self.by_node, &entry.node);
        link(&mut self.by_namespace, &entry.namespace);
        for claim in &entry.claims {
            self.by_claim
                .entry((entry.namespace.clone(), claim.clone()))
                .or_default()
                .insert(uid.to_string());
        }
    }

    fn remove(&mut self, uid: &str, entry: &PodEntry) {
        fn unlink<K: std::hash::Hash + Eq>(
            map: &mut FxHashMap<K, FxHashSet<String>>,
            key: K,
            uid: &str,
        ) {
            if let Some(set) = map.get_mut(&key) {
                set.remove(uid);
                if set.is_empty() {
                    map.remove(&key);
                }
            }
        }
        unlink(&mut self.by_node, entry.node.clone(), uid);
        unlink(&mut self.by_namespace, entry.namespace.clone(), uid);
        for claim in &entry.claims {
            unlink(
                &mut self.by_claim,
                (entry.namespace.clone(), claim.clone()),
                uid,
            );
        }
    }
}

/// The watched objects, by kind.
pub struct Watched<'s> {
    /// Pods.
    pub pods: &'s KindStore<Pod>,
    /// Nodes.
    pub nodes: &'s KindStore<Node>,
    /// Namespaces.
    pub namespaces: &'s KindStore<Namespace>,
    /// DRA claims.
    pub claims: &'s KindStore<ResourceClaim>,
    /// DRA slices.
    pub slices: &'s KindStore<ResourceSlice>,
}

/// What changed in each kind since the last read.
pub struct Changed {
    /// Pods.
    pub pods: Changes,
    /// Nodes.
    pub nodes: Changes,
    /// Namespaces.
    pub namespaces: Changes,
    /// DRA claims.
    pub claims: Changes,
    /// DRA slices.
    pub slices: Changes,
}

/// Allocations and capacity of the watched objects, read object by object as they change.
#[derive(Debug, Default)]
pub struct LiveAllocations {
    context: ClusterContext,
    capacity: FxHashMap<String, AllocationSet>,
    pods: FxHashMap<String, PodEntry>,
    dependents: Dependents,
    /// The rate card and cost-center key the entries were read with.
    read_with: Option<(usize, String)>,
}

impl LiveAllocations {
    /// Brings the entries up to date with `changed`, then gives every allocation and all
    /// capacity as of `options.as_of` (running ones end there; those deleted since the last
    /// read end when they were seen deleted, and are forgotten after this read).
    pub fn read(
        &mut self,
        watched: &Watched<'_>,
        changed: Changed,
        card: &RateCard,
        options: &BuildOptions,
    ) -> AllocationSet {
        let open = BuildOptions {
            as_of: OPEN,
            cost_center_key: options.cost_center_key.clone(),
        };
        let read_with = Some((
            std::ptr::from_ref(card) as usize,
            options.cost_center_key.clone(),
        ));
        let everything = self.read_with != read_with
            || [
                &changed.pods,
                &changed.nodes,
                &changed.namespaces,
                &changed.claims,
                &changed.slices,
            ]
            .iter()
            .any(|c| c.relisted);
        let mut departed = AllocationSet::default();
        if everything {
            *self = LiveAllocations {
                read_with,
                ..LiveAllocations::default()
            };
            self.context.set_slices(watched.slices.objects());
            self.context.set_namespaces(watched.namespaces.objects());
            for node in watched.nodes.objects() {
                self.read_node(node, card);
            }
            let uids: Vec<String> = watched.pods.uids().map(str::to_string).collect();
            self.read_pods(watched, &uids, card, &open);
        } else {
            let mut pods: BTreeSet<String> = changed.pods.uids.iter().cloned().collect();
            if !changed.slices.uids.is_empty() {
                self.context.set_slices(watched.slices.objects());
                // Nodes without a product label take it from their slices; claims resolve
                // devices through them.
                let names: Vec<String> = self.capacity.keys().cloned().collect();
                for name in names {
                    pods.extend(self.node_pods(&name));
                }
                for node in watched.nodes.objects() {
                    self.read_node(node, card);
                }
                pods.extend(self.dependents.by_claim.values().flatten().cloned());
            }
            if !changed.namespaces.uids.is_empty() {
                self.context.set_namespaces(watched.namespaces.objects());
                for name in changed.namespaces.names() {
                    pods.extend(
                        self.dependents
                            .by_namespace
                            .get(name)
                            .into_iter()
                            .flatten()
                            .cloned(),
                    );
                }
            }
            for (node, at) in watched.nodes.deleted() {
                let name = node.metadata.name.as_deref().unwrap_or_default();
                if let Some(capacity) = self.capacity.remove(name) {
                    departed.extend_from(&capacity, *at);
                }
            }
            for name in changed.nodes.names() {
                pods.extend(self.node_pods(name));
                match watched
                    .nodes
                    .find(|n| n.metadata.name.as_deref() == Some(name))
                {
                    Some(node) => self.read_node(node, card),
                    None => {
                        self.context.remove_node(name);
                        self.capacity.remove(name);
                    }
                }
            }
            for key in &changed.claims.keys {
                pods.extend(
                    self.dependents
                        .by_claim
                        .get(key)
                        .into_iter()
                        .flatten()
                        .cloned(),
                );
            }
            let uids: Vec<String> = pods.into_iter().collect();
            self.read_pods(watched, &uids, card, &open);
        }
        // Pods deleted since the last read: their final allocations, once.
        let claims = claim_lookup(watched.claims.with_deleted().map(|(c, _)| c));
        for (pod, at) in watched.pods.deleted() {
            self.context
                .add_pod(pod, Some(*at), &claims, card, &open, &mut departed);
        }
        let mut set = AllocationSet::default();
        for capacity in self.capacity.values() {
            set.extend_from(capacity, options.as_of);
        }
        for entry in self.pods.values() {
            set.extend_from(&entry.set, options.as_of);
        }
        set.extend_from(&departed, options.as_of);
        set
    }

    fn node_pods(&self, name: &str) -> Vec<String> {
        self.dependents
            .by_node
            .get(name)
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    fn read_node(&mut self, node: &Node, card: &RateCard) {
        let Some(name) = node.metadata.name.clone() else {
            return;
        };
        let mut set = AllocationSet::default();
        self.context.add_node(node, None, card, OPEN, &mut set);
        self.capacity.insert(name, set);
    }

    /// Reads the pods of `uids` again (dropping those no longer watched).
    fn read_pods(
        &mut self,
        watched: &Watched<'_>,
        uids: &[String],
        card: &RateCard,
        open: &BuildOptions,
    ) {
        if uids.is_empty() {
            return;
        }
        let claims = claim_lookup(watched.claims.with_deleted().map(|(c, _)| c));
        for uid in uids {
            if let Some(old) = self.pods.remove(uid) {
                self.dependents.remove(uid, &old);
            }
            let Some(pod) = watched.pods.get(uid) else {
                continue;
            };
            let mut entry = PodEntry {
                node: pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.clone())
                    .unwrap_or_default(),
                namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                claims: claim_names(pod).into_iter().map(str::to_string).collect(),
                set: AllocationSet::default(),
            };
            self.context
                .add_pod(pod, None, &claims, card, open, &mut entry.set);
            self.dependents.add(uid, &entry);
            self.pods.insert(uid.clone(), entry);
        }
    }
}
