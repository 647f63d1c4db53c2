//! The demo fleet: a deterministic simulated cluster, as Kubernetes objects.
//!
//! 209 GPUs per unit of scale across H100 (on-demand and spot), H200 through DRA only (template
//! claims, a shared claim, scheduler-made extended-resource claims), A100 split by MIG, time-sliced
//! L4, L40S (one node with a price override) and one GH200 that the built-in rate card does not
//! price; seven namespaces whose cost centers come from every link of the chain; 35 days of pod
//! churn ending at "as of". The objects are what `kubectl get -o json` would show if finished pods
//! and their claims were never garbage-collected, so the demo enters the same path as a snapshot.
//!
//! `fleet` holds the fleet's shape, `timeline` the runs of pods on each share of each node,
//! `objects` those runs as Kubernetes objects, and `live` the fleet moving on: watch events for
//! a running service, as a watched cluster sends them.

mod budgets;
mod fleet;
mod history;
mod live;
mod objects;
mod timeline;
mod usage;

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::resource::v1::ResourceClaim;

use fleet::{Ask, DemoNode, NAMESPACES, Offer, POOLS, Slot, Tenant, Workload, slots};
use objects::{
    PodPlan, each_run_pod, namespace_object, node_object, pod_object, run_claim, run_objects,
    slice_object, template_object,
};
use timeline::{DAY, HOUR, Rng, Run, SlotRuns, pod_name, seed};

pub use budgets::demo_budgets;
pub use history::DemoHistory;
pub use live::DemoCluster;
pub use timeline::DEMO_DAYS;
pub use usage::DemoUtilization;

use crate::allocation::{
    AllocationBuilder, AllocationSet, BuildOptions, ClusterObjects, claim_lookup,
};
use crate::pricing::RateCard;
use crate::time::{Interval, UnixSeconds};

/// The simulated fleet, `scale` times the base pools, seen at `as_of`.
///
/// The layout of pods is fixed by `anchor` (history runs from 35 days before it) and by the
/// seeds alone, so the same fleet seen at a later `as_of` ([`DemoFleet::at`]) has the same past
/// and more present: that is how `serve --demo` moves.
#[derive(Clone, Copy, Debug)]
pub struct DemoFleet {
    scale: u32,
    anchor: UnixSeconds,
    as_of: UnixSeconds,
}

impl DemoFleet {
    /// A fleet of `scale` times the base pools (209 GPUs each), whose 35-day history ends at
    /// `as_of` (laid out from the hour `as_of` falls in).
    pub fn new(scale: u32, as_of: UnixSeconds) -> Self {
        DemoFleet {
            scale: scale.max(1),
            anchor: as_of.div_euclid(HOUR) * HOUR,
            as_of,
        }
    }

    /// The same fleet seen at another time: pods that started by then, running if they had
    /// not finished.
    pub fn at(self, as_of: UnixSeconds) -> Self {
        DemoFleet { as_of, ..self }
    }

    /// The moment the fleet is seen at.
    pub fn as_of(&self) -> UnixSeconds {
        self.as_of
    }

    /// When the fleet's oldest nodes were created: the start of its history.
    pub fn earliest(&self) -> UnixSeconds {
        let oldest = POOLS.iter().map(|p| p.age_days).max().unwrap_or(DEMO_DAYS);
        self.anchor - oldest * DAY
    }

    /// Physical GPUs in the fleet.
    pub fn gpu_count(&self) -> u32 {
        POOLS.iter().map(|p| p.nodes * p.gpus).sum::<u32>() * self.scale
    }

    fn nodes(&self) -> Vec<DemoNode> {
        POOLS
            .iter()
            .flat_map(|pool| {
                (0..pool.nodes * self.scale).map(move |index| DemoNode {
                    name: format!("{}-{index:03}", pool.prefix),
                    pool,
                    index,
                })
            })
            .collect()
    }

    /// Nodes, namespaces, DRA slices and claim templates; no pods or claims.
    pub fn cluster(&self) -> ClusterObjects {
        let nodes = self.nodes();
        ClusterObjects {
            nodes: nodes.iter().map(|n| node_object(n, self.anchor)).collect(),
            namespaces: NAMESPACES
                .iter()
                .map(|(name, cc)| namespace_object(name, *cc))
                .collect(),
            slices: nodes
                .iter()
                .filter(|n| n.pool.offer == Offer::Dra)
                .map(slice_object)
                .collect(),
            templates: NAMESPACES
                .iter()
                .map(|(name, _)| template_object(name))
                .collect(),
            ..ClusterObjects::default()
        }
    }

    /// Every object, pods and claims included.
    pub fn objects(&self) -> ClusterObjects {
        let mut objects = self.cluster();
        for node in self.nodes() {
            let (pods, claims) = self.node_pods(&node);
            objects.pods.extend(pods);
            objects.claims.extend(claims);
        }
        objects.pods.extend(self.pending_pods());
        objects
    }

    /// Allocations of the whole fleet, built node by node and run by run so that a large
    /// fleet's pods are never all held as objects at once. Same result as `allocations(&self.objects(), …)`.
    pub fn allocations(&self, card: &RateCard, options: &BuildOptions) -> AllocationSet {
        let mut builder = AllocationBuilder::for_cluster(card, options.clone(), &self.cluster());
        let always = Interval::new(UnixSeconds::MIN, UnixSeconds::MAX);
        for node in self.nodes() {
            self.each_run_in(&node, always, |run, slot| {
                self.add_run(&mut builder, &node, run, slot)
            });
        }
        builder.add_pods(self.pending_pods().iter().map(|p| (p, None)), &[]);
        builder.finish()
    }

    /// Allocations of the fleet that overlap `window`, built on every core, node by node: one
    /// set per thread (the engine reads several sets as one). Within `window`, the same records
    /// as [`DemoFleet::allocations`]; runs outside it are skipped before any object is built.
    pub fn allocations_in(
        &self,
        window: Interval,
        card: &RateCard,
        options: &BuildOptions,
    ) -> Vec<AllocationSet> {
        let nodes = self.nodes();
        let cluster = self.cluster();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        // Each thread takes the next node not yet taken: nodes differ in how many pods they
        // run, so a fixed share each would leave one thread working after the others are done.
        let next = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            let parts: Vec<_> = (0..threads)
                .map(|part| {
                    let (nodes, cluster, next) = (&nodes, &cluster, &next);
                    scope.spawn(move || {
                        let mut builder =
                            AllocationBuilder::for_cluster(card, options.clone(), cluster);
                        let taken = std::iter::from_fn(|| nodes.get(next.fetch_add(1, Relaxed)));
                        for node in taken {
                            // Run by run: a node's month of pods is never held at once.
                            self.each_run_in(node, window, |run, slot| {
                                self.add_run(&mut builder, node, run, slot);
                            });
                        }
                        let mut set = builder.finish();
                        // Every part read the nodes; one keeps their capacity.
                        if part > 0 {
                            set.capacity.clear();
                        }
                        set
                    })
                })
                .collect();
            parts
                .into_iter()
                .map(|part| part.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    }

    /// Adds the pods of `run` (and the claim they share) to `builder`, each read where it is
    /// made.
    fn add_run(
        &self,
        builder: &mut AllocationBuilder<'_>,
        node: &DemoNode,
        run: &Run,
        slot: &Slot,
    ) {
        let claim = run_claim(run, node, slot);
        let claims = claim_lookup(claim.as_slice());
        each_run_pod(run, node, slot, self.as_of, |pod| {
            builder.add_pod(pod, None, &claims)
        });
    }

    /// When the simulated history of `node` starts.
    fn history_start(&self, node: &DemoNode) -> UnixSeconds {
        let created = self.anchor - node.pool.age_days * DAY;
        (self.anchor - DEMO_DAYS * DAY).max(created)
    }

    /// The pods (and the claims they use) that ran on one node over the simulated history.
    fn node_pods(&self, node: &DemoNode) -> (Vec<Pod>, Vec<ResourceClaim>) {
        let (mut pods, mut claims) = (Vec::new(), Vec::new());
        let always = Interval::new(UnixSeconds::MIN, UnixSeconds::MAX);
        self.each_run_in(node, always, |run, slot| {
            let (run_pods, claim) = run_objects(run, node, slot, self.as_of);
            pods.extend(run_pods);
            claims.extend(claim);
        });
        (pods, claims)
    }

    /// Calls `each` with every run on `node` (and its slot) at some time in `window`.
    fn each_run_in(&self, node: &DemoNode, window: Interval, mut each: impl FnMut(&Run, &Slot)) {
        for (index, slot) in slots(node).iter().enumerate() {
            let mut runs = SlotRuns::new(node, index, self.history_start(node));
            while runs.next_start() < self.as_of.min(window.end) {
                let run = runs.next_run(node, slot);
                if run.end > window.start {
                    each(&run, slot);
                }
            }
        }
    }

    /// Training pods waiting for eight GPUs: they hold nothing.
    fn pending_pods(&self) -> Vec<Pod> {
        let tenant = Tenant {
            namespace: "ml-training",
            app: "pretrain-8x",
            workload: Workload::Training,
        };
        let mut rng = Rng::new(seed("pending", 0, 2));
        (0..3 * self.scale)
            .map(|_| {
                let name = pod_name(&tenant, &mut rng);
                let uid = rng.uid();
                pod_object(PodPlan {
                    tenant: &tenant,
                    name: &name,
                    uid: &uid,
                    node: None,
                    ask: &Ask::Resource {
                        resource: "nvidia.com/gpu",
                        count: 8,
                    },
                    claim: None,
                    start: self.as_of - HOUR,
                    end: None,
                    cost_center: None,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod test {
    use std::collections::BTreeSet;

    use rust_decimal::Decimal;

    use super::*;
    use crate::allocation::{AllocationKind, CostCenterSource, allocations};
    use crate::cost::{ReportRequest, cost_report};
    use crate::pricing::PriceTier;
    use crate::time::{Interval, Step, parse_time};

    fn as_of() -> UnixSeconds {
        parse_time("2026-11-27T09:30:00Z").unwrap()
    }

    fn resolved(set: &AllocationSet) -> Vec<String> {
        let n = |s| set.names.resolve(s);
        let mut rows: Vec<String> = set
            .allocations
            .iter()
            .map(|a| {
                format!(
                    "{} {} {} {} {} {} {:?}",
                    n(a.namespace),
                    n(a.pod),
                    n(a.node),
                    a.units,
                    a.interval,
                    n(a.cost_center),
                    a.tier
                )
            })
            .collect();
        rows.sort();
        rows
    }

    #[test]
    fn the_fleet_covers_every_way_of_holding_a_gpu() {
        let fleet = DemoFleet::new(1, as_of());
        assert!(fleet.gpu_count() >= 200, "{}", fleet.gpu_count());
        let card = RateCard::builtin();
        let set = fleet.allocations(&card, &BuildOptions::new(as_of()));
        let kinds: BTreeSet<AllocationKind> = set.allocations.iter().map(|a| a.kind).collect();
        assert_eq!(kinds.len(), 4, "{kinds:?}");
        let tiers: BTreeSet<PriceTier> = set.allocations.iter().map(|a| a.tier).collect();
        assert!(tiers.contains(&PriceTier::Spot) && tiers.contains(&PriceTier::OnDemand));
        let sources: BTreeSet<CostCenterSource> = set
            .allocations
            .iter()
            .map(|a| a.cost_center_source)
            .collect();
        assert_eq!(sources.len(), 5, "{sources:?}");
        let namespaces: BTreeSet<_> = set.allocations.iter().map(|a| a.namespace).collect();
        assert!(namespaces.len() >= 6);
        let first = set
            .allocations
            .iter()
            .map(|a| a.interval.start)
            .min()
            .unwrap();
        assert!(first <= as_of() - (DEMO_DAYS - 1) * DAY);
        assert!(set.allocations.len() > 10_000, "{}", set.allocations.len());
        assert!(
            set.allocations.iter().any(|a| a.interval.end == as_of()),
            "some pods still run"
        );
        assert!(set.warnings.is_empty(), "{:?}", set.warnings);
    }

    #[test]
    fn streaming_by_node_equals_reading_all_objects_and_is_deterministic() {
        let fleet = DemoFleet::new(1, as_of());
        let card = RateCard::builtin();
        let options = BuildOptions::new(as_of());
        let streamed = resolved(&fleet.allocations(&card, &options));
        let whole = resolved(&allocations(&fleet.objects(), &card, &options));
        assert_eq!(streamed, whole);
        assert_eq!(
            streamed,
            resolved(&DemoFleet::new(1, as_of()).allocations(&card, &options))
        );
    }

    #[test]
    fn a_window_built_on_every_core_holds_the_fleet_s_records_that_overlap_it() {
        let fleet = DemoFleet::new(1, as_of());
        let card = RateCard::builtin();
        let options = BuildOptions::new(as_of());
        let window = Interval::new(as_of() - 3 * DAY - 5 * HOUR, as_of() - DAY);
        let mut whole = fleet.allocations(&card, &options);
        whole
            .allocations
            .retain(|a| a.interval.clip(window).is_some());
        let sets = fleet.allocations_in(window, &card, &options);
        let mut parts: Vec<String> = sets.iter().flat_map(resolved).collect();
        parts.sort();
        assert!(!parts.is_empty());
        assert_eq!(parts, resolved(&whole));
        let capacity: Vec<_> = sets.iter().flat_map(|s| &s.capacity).collect();
        assert_eq!(
            capacity.len(),
            whole.capacity.len(),
            "each node's capacity once"
        );
    }

    #[test]
    fn pods_never_exceed_their_nodes_so_models_recover_full_cost() {
        let fleet = DemoFleet::new(1, as_of());
        let card = RateCard::builtin();
        let set = fleet.allocations(&card, &BuildOptions::new(as_of()));
        let window = Interval::new(as_of() - 30 * DAY, as_of());
        let request = ReportRequest {
            window,
            step: Step::Day,
            group_by: "gpu_model".parse().unwrap(),
            share_unallocated: false,
            only: Default::default(),
        };
        let report = cost_report(&[&set], &card, &request).unwrap();
        let hours: Decimal = report.lines.iter().map(|l| l.figures.gpu_hours).sum();
        let capacity_hours: i64 = set
            .capacity
            .iter()
            .filter_map(|c| {
                c.interval
                    .clip(window)
                    .map(|i| c.units.numer() * i.seconds() / c.units.denom())
            })
            .sum();
        assert_eq!(hours, Decimal::from(capacity_hours) / Decimal::from(3600));
        // Unallocated capacity is never negative: no node is over-committed.
        let free = ReportRequest {
            group_by: "cost_center,node".parse().unwrap(),
            ..request
        };
        let report = cost_report(&[&set], &card, &free).unwrap();
        assert!(
            report
                .lines
                .iter()
                .all(|l| l.figures.gpu_hours >= Decimal::ZERO)
        );
    }
}
