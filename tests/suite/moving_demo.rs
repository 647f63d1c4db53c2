//! The demo fleet moving through the watch path (watch events into the stores, incremental
//! reads, the ledger reconciled with only what changed) prices every pod exactly as the fleet's
//! own timeline says, and its history read a day at a time adds up to the same.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use tollgate::allocation::{AllocationSet, BuildOptions};
use tollgate::cost::{ReportRequest, cost_report};
use tollgate::ledger::Ledger;
use tollgate::live::ClusterStores;
use tollgate::pricing::RateCard;
use tollgate::source::{DemoCluster, DemoFleet, DemoHistory};
use tollgate::time::{Interval, Step, parse_time};

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

/// GPU-hours and cost per (namespace, pod, GPU model) over `window`.
fn by_pod(
    sets: &[&AllocationSet],
    card: &RateCard,
    window: Interval,
) -> BTreeMap<String, (Decimal, Option<Decimal>)> {
    let request = ReportRequest {
        window,
        step: Step::Window,
        group_by: "namespace,pod,gpu_model,node".parse().unwrap(),
        share_unallocated: false,
        only: Default::default(),
    };
    cost_report(sets, card, &request)
        .unwrap()
        .lines
        .into_iter()
        .map(|l| (l.group.join("/"), (l.figures.gpu_hours, l.figures.cost)))
        .collect()
}

/// Asserts two reports are equal, naming only the lines that differ.
fn assert_same(
    left: &BTreeMap<String, (Decimal, Option<Decimal>)>,
    right: &BTreeMap<String, (Decimal, Option<Decimal>)>,
    what: &str,
) {
    let differ: Vec<String> = left
        .keys()
        .chain(right.keys())
        .filter(|k| left.get(*k) != right.get(*k))
        .take(8)
        .map(|k| format!("{k}: {:?} vs {:?}", left.get(k), right.get(k)))
        .collect();
    assert!(differ.is_empty(), "{what}: {differ:#?}");
}

/// Moves the demo fleet from `start` through `ticks`, reading it incrementally into one ledger
/// and wholly into another; checks both against the fleet's own timeline, pod by pod.
fn priced_through_the_watch_path(scale: u32, start: i64, ticks: &[i64]) {
    let card = RateCard::builtin();
    let end = *ticks.last().unwrap();
    let fleet = DemoFleet::new(scale, start);
    let mut stores = ClusterStores::default();
    let mut cluster = DemoCluster::start(fleet, &mut stores);
    let (mut incremental, mut full) = (
        Ledger::in_memory().cutting_over(true),
        Ledger::in_memory().cutting_over(true),
    );
    incremental.begin(start).unwrap();
    full.begin(start).unwrap();
    let mut touched_reads = 0;
    for &t in ticks {
        cluster.advance(t, &mut stores);
        let read = stores.allocations(&card, BuildOptions::new(t));
        stores.forget_deleted();
        if let Some(touched) = &read.touched {
            touched_reads += 1;
            assert!(
                touched.pods.len() < 100 * scale as usize,
                "only what changed is read again: {}",
                touched.pods.len()
            );
        }
        let (notes, _) = incremental
            .reconcile(t, &read.set, read.touched.as_ref())
            .unwrap();
        assert!(
            notes.is_empty(),
            "nothing vanishes unseen at {t}: {notes:?}"
        );
        full.reconcile(t, &read.set, None).unwrap();
    }
    assert!(touched_reads + 1 >= ticks.len(), "{touched_reads}");
    let window = Interval::new(start, end);
    let seen = by_pod(&incremental.view(end).as_refs(), &card, window);
    let compared = by_pod(&full.view(end).as_refs(), &card, window);
    assert_same(&seen, &compared, "incremental vs full reconcile");
    // The fleet's own timeline, read as objects at the end: every pod to the second.
    let truth = fleet.at(end).allocations(&card, &BuildOptions::new(end));
    assert_same(
        &seen,
        &by_pod(&[&truth], &card, window),
        "ledger vs timeline",
    );
    assert!(seen.len() > 100, "{}", seen.len());
}

#[test]
fn the_moving_fleet_is_priced_exactly_through_incremental_reads() {
    let start = parse_time("2026-11-20T07:30:00Z").unwrap();
    // Uneven steps, so that pods start and finish between reads.
    let mut ticks = Vec::new();
    let mut t = start;
    for step in 0.. {
        t += 317 + (step % 7) * 173;
        if t >= start + 30 * HOUR {
            break;
        }
        ticks.push(t);
    }
    priced_through_the_watch_path(1, start, &ticks);
}

#[test]
fn a_pod_that_finishes_as_the_cluster_is_read_ends_then_without_a_warning() {
    let start = parse_time("2026-11-20T07:30:00Z").unwrap();
    let card = RateCard::builtin();
    // Read exactly when pods finish (and an hour apart in between).
    let truth = DemoFleet::new(2, start)
        .at(start + 12 * HOUR)
        .allocations(&card, &BuildOptions::new(start + 12 * HOUR));
    let mut ticks: Vec<i64> = truth
        .allocations
        .iter()
        .map(|a| a.interval.end)
        .filter(|&end| end > start && end < start + 12 * HOUR)
        .take(40)
        .chain((1..=12).map(|h| start + h * HOUR))
        .collect();
    ticks.sort_unstable();
    ticks.dedup();
    priced_through_the_watch_path(2, start, &ticks);
}

#[test]
fn history_read_a_day_at_a_time_adds_up_to_the_fleet_s_past() {
    let card = RateCard::builtin();
    let as_of = parse_time("2026-11-20T07:30:00Z").unwrap();
    let fleet = DemoFleet::new(1, as_of);
    let mut history = DemoHistory::new(fleet);
    let first = fleet.earliest().div_euclid(DAY) * DAY;
    let today = as_of.div_euclid(DAY) * DAY;
    let mut days: Vec<AllocationSet> = (first..today)
        .step_by(DAY as usize)
        .map(|day| history.window(Interval::new(day, day + DAY), &card, "cost-center"))
        .collect();
    days.push(history.window(Interval::new(today, as_of), &card, "cost-center"));
    let sets: Vec<&AllocationSet> = days.iter().collect();
    let window = Interval::new(first, as_of);
    let truth = fleet.allocations(&card, &BuildOptions::new(as_of));
    let by_model = |sets: &[&AllocationSet]| {
        let request = ReportRequest {
            window,
            step: Step::Day,
            group_by: "cost_center,namespace,gpu_model,node".parse().unwrap(),
            share_unallocated: false,
            only: Default::default(),
        };
        cost_report(sets, &card, &request).unwrap().lines
    };
    assert_eq!(by_model(&sets), by_model(&[&truth]));
    assert_same(
        &by_pod(&sets, &card, window),
        &by_pod(&[&truth], &card, window),
        "history by day vs timeline",
    );
}
