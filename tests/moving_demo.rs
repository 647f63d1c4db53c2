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

#[test]
fn the_moving_fleet_is_priced_exactly_through_incremental_reads() {
    let card = RateCard::builtin();
    let start = parse_time("2026-11-20T07:30:00Z").unwrap();
    let end = start + 30 * HOUR;
    let fleet = DemoFleet::new(1, start);
    let mut stores = ClusterStores::default();
    let mut cluster = DemoCluster::start(fleet, &mut stores);
    let (mut incremental, mut full) = (
        Ledger::in_memory().cutting_over(true),
        Ledger::in_memory().cutting_over(true),
    );
    incremental.begin(start).unwrap();
    full.begin(start).unwrap();
    let mut touched_reads = 0;
    // Uneven steps, so that pods start and finish between reads.
    let mut t = start;
    let mut step = 0;
    while t < end {
        step += 1;
        t = (t + 317 + (step % 7) * 173).min(end);
        cluster.advance(t, &mut stores);
        let read = stores.allocations(&card, BuildOptions::new(t));
        stores.forget_deleted();
        if let Some(touched) = &read.touched {
            touched_reads += 1;
            assert!(
                touched.pods.len() < 100,
                "only what changed is read again: {}",
                touched.pods.len()
            );
        }
        for a in &read.set.allocations {
            if read.set.names.resolve(a.pod).contains("rbrkgh") {
                eprintln!(
                    "tick {t}: {:?} touched {:?}",
                    a.interval,
                    read.touched
                        .as_ref()
                        .map(|x| x.pods.contains(read.set.names.resolve(a.pod_uid)))
                );
            }
        }
        incremental
            .reconcile(t, &read.set, read.touched.as_ref())
            .unwrap();
        full.reconcile(t, &read.set, None).unwrap();
    }
    assert!(touched_reads > 100, "{touched_reads}");
    let window = Interval::new(start, end);
    let seen = by_pod(&incremental.view(end).as_refs(), &card, window);
    let compared = by_pod(&full.view(end).as_refs(), &card, window);
    // The fleet's own timeline, read as objects at the end: every pod to the second.
    let truth = fleet.at(end).allocations(&card, &BuildOptions::new(end));
    assert_same(&seen, &compared, "incremental vs full reconcile");
    assert_same(
        &seen,
        &by_pod(&[&truth], &card, window),
        "ledger vs timeline",
    );
    assert!(seen.len() > 300, "{}", seen.len());
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
