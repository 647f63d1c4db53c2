//! The demo fleet's past a window at a time, oldest first: what a running service rolls up
//! day by day, so that a large fleet's 35 days never have to be held in memory at once.

use super::DemoFleet;
use super::fleet::{DemoNode, Slot, slots};
use super::objects::run_objects;
use super::timeline::{Run, SlotRuns};
use crate::allocation::{AllocationBuilder, AllocationSet, BuildOptions, ClusterObjects};
use crate::pricing::RateCard;
use crate::time::{Interval, UnixSeconds};

/// One share of one node: its runs, and those begun but not yet over.
struct Share {
    node: usize,
    slot: Slot,
    runs: SlotRuns,
    ongoing: Vec<Run>,
}

/// The fleet's history, read forward one window after another.
pub struct DemoHistory {
    fleet: DemoFleet,
    cluster: ClusterObjects,
    nodes: Vec<DemoNode>,
    shares: Vec<Share>,
    read_to: UnixSeconds,
}

impl DemoHistory {
    /// The history of `fleet`, up to its as-of.
    pub fn new(fleet: DemoFleet) -> Self {
        let nodes = fleet.nodes();
        let shares = nodes
            .iter()
            .enumerate()
            .flat_map(|(index, node)| {
                slots(node)
                    .into_iter()
                    .enumerate()
                    .map(move |(slot_index, slot)| Share {
                        node: index,
                        runs: SlotRuns::new(node, slot_index, fleet.history_start(node)),
                        slot,
                        ongoing: Vec::new(),
                    })
            })
            .collect();
        DemoHistory {
            fleet,
            cluster: fleet.cluster(),
            nodes,
            shares,
            read_to: UnixSeconds::MIN,
        }
    }

    /// Allocations and capacity in `window` (clipped to it, and to the fleet's as-of).
    /// Windows must come in order, each starting where the last one ended or later.
    pub fn window(
        &mut self,
        window: Interval,
        card: &RateCard,
        cost_center_key: &str,
    ) -> AllocationSet {
        debug_assert!(window.start >= self.read_to, "history windows go forward");
        let end = window.end.min(self.fleet.as_of);
        self.read_to = end;
        let options = BuildOptions {
            as_of: end,
            cost_center_key: cost_center_key.to_string(),
        };
        let mut builder = AllocationBuilder::for_cluster(card, options, &self.cluster);
        for share in &mut self.shares {
            let node = &self.nodes[share.node];
            while share.runs.next_start() < end {
                let run = share.runs.next_run(node, &share.slot);
                if run.end > window.start {
                    share.ongoing.push(run);
                }
            }
            let (mut pods, mut claims) = (Vec::new(), Vec::new());
            for run in share.ongoing.iter().filter(|r| r.end > window.start) {
                let (run_pods, claim) = run_objects(run, node, &share.slot, end);
                pods.extend(run_pods);
                claims.extend(claim);
            }
            builder.add_pods(pods.iter().map(|p| (p, None)), &claims);
            share.ongoing.retain(|r| r.end > end);
        }
        let mut set = builder.finish();
        set.drop_before(window.start);
        set
    }
}
