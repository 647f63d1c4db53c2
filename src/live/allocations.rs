//! The allocations of a watched cluster, kept between reconciles: each reconcile reads again
//! only the objects that changed since the one before (and the pods that depend on them), and
//! reuses every other pod's and node's records as they were.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::resource::v1::{ResourceClaim, ResourceSlice};
use rustc_hash::{FxHashMap, FxHashSet};

use super::stores::{Changes, KindStore};
use crate::allocation::{
    Allocation, AllocationSet, BuildOptions, ClusterContext, Names, NodeCapacity, Sym,
    claim_lookup, claim_names,
};
use crate::ledger::Touched;
use crate::pricing::RateCard;
use crate::time::{Interval, UnixSeconds};

/// Records are kept with running intervals open to this end, and cut at each read's as-of.
const OPEN: UnixSeconds = UnixSeconds::MAX;

/// Records read from one object, in the shared names.
#[derive(Debug, Default)]
struct Records {
    allocations: Vec<Allocation>,
    capacity: Vec<NodeCapacity>,
    warnings: Vec<String>,
}

/// One pod's records and what they were read from.
#[derive(Debug, Default)]
struct PodEntry {
    records: Records,
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

fn unlink<K: std::hash::Hash + Eq>(map: &mut FxHashMap<K, FxHashSet<String>>, key: K, uid: &str) {
    if let Some(set) = map.get_mut(&key) {
        set.remove(uid);
        if set.is_empty() {
            map.remove(&key);
        }
    }
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

/// What one read gives: every record as of the read, and which pods and nodes were read again
/// (`None`: all of them).
pub struct LiveRead {
    /// Allocations and capacity.
    pub set: AllocationSet,
    /// The pods and nodes whose records may differ from the last read's.
    pub touched: Option<Touched>,
}

/// Allocations and capacity of the watched objects, read object by object as they change.
/// All records share one table of names, so that handing them out is a copy of small records.
#[derive(Debug, Default)]
pub struct LiveAllocations {
    context: ClusterContext,
    names: Names,
    capacity: FxHashMap<String, Records>,
    pods: FxHashMap<String, PodEntry>,
    dependents: Dependents,
    /// The rate card and cost-center key the entries were read with.
    read_with: Option<(usize, String)>,
    /// Pods and nodes to report as read again next time: they finished exactly at (or after)
    /// this read's as-of, where they look no different from what still runs.
    recheck: Touched,
    /// Final records of deleted pods and nodes that end at (or after) the last read's as-of:
    /// given once more with the next read, when their end is in the past and tells.
    lingering: Records,
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
    ) -> LiveRead {
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
        let mut touched = Touched::default();
        // Before any new record is read, so that every record uses the same table.
        self.compact_names();
        let mut departed = std::mem::take(&mut self.lingering);
        if everything {
            *self = LiveAllocations {
                read_with,
                ..LiveAllocations::default()
            };
            self.context
                .set_slices(&watched.slices.objects().collect::<Vec<_>>());
            self.context
                .set_namespaces(&watched.namespaces.objects().collect::<Vec<_>>());
            for node in watched.nodes.objects() {
                self.read_node(&node, card);
            }
            let uids: Vec<String> = watched.pods.uids().map(str::to_string).collect();
            self.read_pods(watched, &uids, card, &open);
        } else {
            let mut pods: BTreeSet<String> = changed.pods.uids.iter().cloned().collect();
            if !changed.slices.uids.is_empty() {
                self.context
                    .set_slices(&watched.slices.objects().collect::<Vec<_>>());
                // Nodes without a product label take it from their slices; claims resolve
                // devices through them.
                let names: Vec<String> = self.capacity.keys().cloned().collect();
                for name in names {
                    pods.extend(self.node_pods(&name));
                    touched.nodes.insert(name);
                }
                for node in watched.nodes.objects() {
                    self.read_node(&node, card);
                }
                pods.extend(self.dependents.by_claim.values().flatten().cloned());
            }
            if !changed.namespaces.uids.is_empty() {
                self.context
                    .set_namespaces(&watched.namespaces.objects().collect::<Vec<_>>());
                for name in changed.namespaces.names() {
                    let dependents = self.dependents.by_namespace.get(name);
                    pods.extend(dependents.into_iter().flatten().cloned());
                }
            }
            for (node, at) in watched.nodes.deleted() {
                let name = node.metadata.name.as_deref().unwrap_or_default();
                if let Some(mut gone) = self.capacity.remove(name) {
                    for capacity in &mut gone.capacity {
                        capacity.interval.end = capacity.interval.end.min(*at);
                    }
                    departed.capacity.append(&mut gone.capacity);
                }
            }
            for name in changed.nodes.names() {
                pods.extend(self.node_pods(name));
                touched.nodes.insert(name.to_string());
                match watched.nodes.named("", name) {
                    Some(node) => self.read_node(&node, card),
                    None => {
                        self.context.remove_node(name);
                        self.capacity.remove(name);
                    }
                }
            }
            for key in &changed.claims.keys {
                let dependents = self.dependents.by_claim.get(key);
                pods.extend(dependents.into_iter().flatten().cloned());
            }
            let uids: Vec<String> = pods.into_iter().collect();
            self.read_pods(watched, &uids, card, &open);
            touched.pods.extend(uids);
        }
        // Pods deleted since the last read: their final records, once.
        for (pod, at) in watched.pods.deleted() {
            let claims = claims_of(watched, pod);
            let records = self.records(|context, set| {
                context.add_pod(pod, Some(*at), &claim_lookup(&claims), card, &open, set);
            });
            departed.allocations.extend(records.allocations);
            departed.warnings.extend(records.warnings);
            touched
                .pods
                .insert(pod.metadata.uid.clone().unwrap_or_default());
        }
        touched.pods.extend(self.recheck.pods.drain());
        touched.nodes.extend(self.recheck.nodes.drain());
        self.note_finishing(options.as_of, &departed);
        let set = self.set_as_of(options.as_of, &departed);
        let lingers = |i: &Interval| i.end >= options.as_of;
        departed.allocations.retain(|a| lingers(&a.interval));
        departed.capacity.retain(|c| lingers(&c.interval));
        departed.warnings.clear();
        self.lingering = departed;
        LiveRead {
            set,
            touched: (!everything).then_some(touched),
        }
    }

    /// Remembers the pods and nodes whose records ended at `as_of` or later, to recheck.
    fn note_finishing(&mut self, as_of: UnixSeconds, departed: &Records) {
        let finishing = |i: Interval| i.end != OPEN && i.end >= as_of;
        let names = &self.names;
        for records in self
            .capacity
            .values()
            .chain(self.pods.values().map(|e| &e.records))
            .chain(std::iter::once(departed))
        {
            for a in records.allocations.iter().filter(|a| finishing(a.interval)) {
                self.recheck
                    .pods
                    .insert(names.resolve(a.pod_uid).to_string());
            }
            for c in records.capacity.iter().filter(|c| finishing(c.interval)) {
                self.recheck.nodes.insert(names.resolve(c.node).to_string());
            }
        }
    }

    /// Every record, running ones ended at `as_of`, with `departed` after them.
    fn set_as_of(&self, as_of: UnixSeconds, departed: &Records) -> AllocationSet {
        let entries = || {
            self.capacity
                .values()
                .chain(self.pods.values().map(|e| &e.records))
                .chain(std::iter::once(departed))
        };
        let ended = |interval: Interval| {
            let cut = Interval::new(interval.start, interval.end.min(as_of));
            (!cut.is_empty()).then_some(cut)
        };
        let mut set = AllocationSet {
            names: self.names.clone(),
            ..AllocationSet::default()
        };
        for records in entries() {
            set.allocations
                .extend(records.allocations.iter().filter_map(|a| {
                    Some(Allocation {
                        interval: ended(a.interval)?,
                        ..a.clone()
                    })
                }));
            set.capacity.extend(records.capacity.iter().filter_map(|c| {
                Some(NodeCapacity {
                    interval: ended(c.interval)?,
                    ..c.clone()
                })
            }));
            set.warnings.extend(records.warnings.iter().cloned());
        }
        set
    }

    /// Reads records with `read`, into the shared names.
    fn records(&mut self, read: impl FnOnce(&mut ClusterContext, &mut AllocationSet)) -> Records {
        let mut set = AllocationSet {
            names: std::mem::take(&mut self.names),
            ..AllocationSet::default()
        };
        read(&mut self.context, &mut set);
        self.names = set.names;
        Records {
            allocations: set.allocations,
            capacity: set.capacity,
            warnings: set.warnings.into_iter().collect(),
        }
    }

    /// Starts the names afresh from the records kept, once those of objects long gone
    /// outnumber them: the table follows what is live, not the cluster's history.
    fn compact_names(&mut self) {
        let kept: usize = self
            .capacity
            .values()
            .chain(self.pods.values().map(|e| &e.records))
            .map(|r| r.allocations.len() * 4 + r.capacity.len() * 2)
            .sum();
        if self.names.len() <= 2 * kept + 4096 {
            return;
        }
        let old = std::mem::take(&mut self.names);
        let names = &mut self.names;
        let mut moved = |sym: &mut Sym| *sym = names.intern(old.resolve(*sym));
        for records in self
            .capacity
            .values_mut()
            .chain(self.pods.values_mut().map(|e| &mut e.records))
            .chain(std::iter::once(&mut self.lingering))
        {
            for a in &mut records.allocations {
                for sym in [
                    &mut a.namespace,
                    &mut a.pod,
                    &mut a.pod_uid,
                    &mut a.resource_id,
                    &mut a.claim,
                    &mut a.node,
                    &mut a.product,
                    &mut a.cost_center,
                ] {
                    moved(sym);
                }
            }
            for c in &mut records.capacity {
                moved(&mut c.node);
                moved(&mut c.product);
            }
        }
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
        let records = self.records(|context, set| context.add_node(node, None, card, OPEN, set));
        self.capacity.insert(name, records);
    }

    /// Reads the pods of `uids` again (dropping those no longer watched).
    fn read_pods(
        &mut self,
        watched: &Watched<'_>,
        uids: &[String],
        card: &RateCard,
        open: &BuildOptions,
    ) {
        for uid in uids {
            if let Some(old) = self.pods.remove(uid) {
                self.dependents.remove(uid, &old);
            }
            let Some(pod) = watched.pods.get(uid) else {
                continue;
            };
            let claims = claims_of(watched, &pod);
            let records = self.records(|context, set| {
                context.add_pod(&pod, None, &claim_lookup(&claims), card, open, set);
            });
            let entry = PodEntry {
                records,
                node: pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.clone())
                    .unwrap_or_default(),
                namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                claims: claim_names(&pod).into_iter().map(str::to_string).collect(),
            };
            self.dependents.add(uid, &entry);
            self.pods.insert(uid.clone(), entry);
        }
    }
}

/// The claims `pod` holds devices through, live or deleted since the last read.
fn claims_of(watched: &Watched<'_>, pod: &Pod) -> Vec<ResourceClaim> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    claim_names(pod)
        .into_iter()
        .filter_map(|name| {
            watched.claims.named(namespace, name).or_else(|| {
                watched
                    .claims
                    .deleted()
                    .iter()
                    .map(|(claim, _)| claim)
                    .find(|c| {
                        c.metadata.namespace.as_deref() == Some(namespace)
                            && c.metadata.name.as_deref() == Some(name)
                    })
                    .cloned()
            })
        })
        .collect()
}
