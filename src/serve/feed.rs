//! Where a running service reads the cluster from: a watched cluster, the moving demo fleet, or
//! a fixed snapshot. Each gives, when asked, the allocations as of "now".

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::time::Instant;

use crate::allocation::{
    Allocation, AllocationBuilder, AllocationSet, BuildOptions, ClaimAsks, ClusterObjects,
    CostCenterSource, PlacementNodes, Sym, placement_nodes,
};
use crate::ledger::Touched;
use crate::live::{ClusterStores, LiveRead, SourceHealth};
use crate::pricing::RateCard;
use crate::source::{DemoCluster, DemoFleet};
use crate::time::UnixSeconds;

/// What one read of a feed gives.
pub struct Reading {
    /// Allocations and capacity as of the read.
    pub live: AllocationSet,
    /// Namespaces' metadata (their cost centers), by name.
    pub namespaces: BTreeMap<String, ObjectMeta>,
    /// What the DRA claims and claim templates ask for.
    pub claim_asks: Arc<ClaimAsks>,
    /// The nodes' labels and taints (none for allocations read from history).
    pub nodes: Arc<PlacementNodes>,
    /// True once every watched kind has been listed.
    pub synced: bool,
    /// The pods and nodes read again since the last read (`None`: all).
    pub touched: Option<Touched>,
}

/// A source of cluster state for `serve`.
pub enum Feed {
    /// A live cluster, through watchers.
    Cluster {
        /// The watchers' stores.
        stores: Arc<Mutex<ClusterStores>>,
        /// Whether the last API read worked.
        health: Arc<SourceHealth>,
    },
    /// The demo fleet on a compressed clock, moving through the watch path.
    Demo {
        /// The fleet, moving on from the moment the service started.
        moving: Mutex<DemoCluster>,
        /// What its watch events built, as a watched cluster's would.
        stores: Box<Mutex<ClusterStores>>,
        /// Simulated time at start.
        start: UnixSeconds,
        /// Real time at start.
        started: Instant,
        /// Simulated seconds per real second.
        speed: u32,
    },
    /// Allocations read elsewhere (history from Prometheus), as of when they were read.
    Recorded(Recorded),
    /// A fixed snapshot.
    Snapshot {
        /// Its objects.
        objects: Box<ClusterObjects>,
        /// "Now" for running pods; `None`: the real clock.
        as_of: Option<UnixSeconds>,
    },
}

/// Allocations read elsewhere and when they were read; a new read replaces both.
#[derive(Clone)]
pub struct Recorded(Arc<Mutex<(Arc<AllocationSet>, UnixSeconds)>>);

impl Recorded {
    /// Allocations read as of `as_of`.
    pub fn new(set: AllocationSet, as_of: UnixSeconds) -> Self {
        Recorded(Arc::new(Mutex::new((Arc::new(set), as_of))))
    }

    /// Replaces the allocations with a newer read.
    pub fn replace(&self, set: AllocationSet, as_of: UnixSeconds) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = (Arc::new(set), as_of);
    }

    /// The latest read and its time.
    fn latest(&self) -> (Arc<AllocationSet>, UnixSeconds) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn wall_clock() -> UnixSeconds {
    jiff::Timestamp::now().as_second()
}

impl Feed {
    /// The moving demo fleet of `scale` units, starting now at `speed`× real time. Its past
    /// (before [`Feed::now`] at start) is history: [`DemoFleet::new`] at that time.
    pub fn demo(scale: u32, speed: u32) -> Self {
        Self::demo_from(DemoFleet::new(scale, wall_clock()), speed)
    }

    /// The moving demo `fleet`, from its as-of on, at `speed`× real time.
    pub fn demo_from(fleet: DemoFleet, speed: u32) -> Self {
        let mut stores = ClusterStores::default();
        let moving = DemoCluster::start(fleet, &mut stores);
        Feed::Demo {
            moving: Mutex::new(moving),
            stores: Box::new(Mutex::new(stores)),
            start: fleet.as_of(),
            started: Instant::now(),
            speed: speed.max(1),
        }
    }

    /// The feed's "now".
    pub fn now(&self) -> UnixSeconds {
        match self {
            Feed::Cluster { .. } => wall_clock(),
            Feed::Demo {
                start,
                started,
                speed,
                ..
            } => start + (started.elapsed().as_secs_f64() * f64::from(*speed)) as i64,
            Feed::Snapshot { as_of, .. } => as_of.unwrap_or_else(wall_clock),
            Feed::Recorded(recorded) => recorded.latest().1,
        }
    }

    /// Allocations and capacity as of `options.as_of`, the namespaces' metadata, and whether
    /// the source has been read completely (every watched kind listed).
    pub fn read(&self, card: &RateCard, options: BuildOptions) -> Reading {
        match self {
            Feed::Cluster { stores, .. } => read_stores(&mut lock(stores), card, options),
            Feed::Demo { moving, stores, .. } => {
                let mut stores = lock(stores);
                lock(moving).advance(options.as_of, &mut stores);
                read_stores(&mut stores, card, options)
            }
            Feed::Recorded(recorded) => {
                let (set, _) = recorded.latest();
                Reading {
                    namespaces: recorded_namespaces(&set, &options.cost_center_key),
                    claim_asks: Arc::default(),
                    nodes: Arc::default(),
                    live: (*set).clone(),
                    synced: true,
                    touched: None,
                }
            }
            Feed::Snapshot { objects, .. } => Reading {
                live: AllocationBuilder::for_cluster(card, options, objects).finish(),
                namespaces: namespace_map(objects.namespaces.iter().cloned()),
                claim_asks: Arc::new(objects.claim_asks()),
                nodes: Arc::new(placement_nodes(objects.nodes.iter().cloned())),
                synced: true,
                touched: None,
            },
        }
    }

    /// For a watched cluster, whether the last read from the API server worked.
    pub fn kubernetes_up(&self) -> Option<bool> {
        match self {
            Feed::Cluster { health, .. } => Some(health.is_up()),
            _ => None,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What watch events built: the allocations (only what changed read again), the namespaces.
fn read_stores(stores: &mut ClusterStores, card: &RateCard, options: BuildOptions) -> Reading {
    let claim_asks = stores.claim_asks();
    let nodes = stores.placement_nodes();
    let LiveRead { set, touched } = stores.allocations(card, options);
    let reading = Reading {
        live: set,
        namespaces: namespace_map(stores.namespaces.objects()),
        claim_asks,
        nodes,
        synced: stores.is_synced(),
        touched,
    };
    // The deletions are now part of `live`: the ledger records them on this reconcile.
    stores.forget_deleted();
    reading
}

fn namespace_map(list: impl Iterator<Item = Namespace>) -> BTreeMap<String, ObjectMeta> {
    list.filter_map(|ns| Some((ns.metadata.name.clone()?, ns.metadata)))
        .collect()
}

/// Namespace metadata as history recorded it: each namespace's latest namespace-level cost
/// center, put back under the label or annotation it came from.
fn recorded_namespaces(set: &AllocationSet, key: &str) -> BTreeMap<String, ObjectMeta> {
    let mut latest: BTreeMap<Sym, &Allocation> = BTreeMap::new();
    for allocation in set.allocations.iter().filter(|a| {
        matches!(
            a.cost_center_source,
            CostCenterSource::NamespaceLabel | CostCenterSource::NamespaceAnnotation
        )
    }) {
        let entry = latest.entry(allocation.namespace).or_insert(allocation);
        if allocation.interval.end > entry.interval.end {
            *entry = allocation;
        }
    }
    latest
        .into_iter()
        .map(|(namespace, allocation)| {
            let namespace = set.names.resolve(namespace);
            let cost_center = set.names.resolve(allocation.cost_center);
            let value = BTreeMap::from([(key.to_string(), cost_center.to_string())]);
            let mut meta = ObjectMeta {
                name: Some(namespace.to_string()),
                ..ObjectMeta::default()
            };
            if allocation.cost_center_source == CostCenterSource::NamespaceLabel {
                meta.labels = Some(value);
            } else {
                meta.annotations = Some(value);
            }
            (namespace.to_string(), meta)
        })
        .collect()
}
