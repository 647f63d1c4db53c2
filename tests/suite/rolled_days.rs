//! A service's memory follows what is live: once a day is rolled up into the store (its
//! rollups and its segments archived), the ledger forgets it. Every report — grouped by the
//! rollup keys or by pod, a day at a time or for the whole window — and month-to-date spend
//! still come out exactly as the fleet's own timeline says.

use std::collections::BTreeMap;

use crate::support;
use rust_decimal::Decimal;
use tollgate::allocation::{AllocationSet, BuildOptions, UNALLOCATED};
use tollgate::budget::{SpendIndex, StoredSpend, month_of};
use tollgate::cost::{ReportRequest, cost_report};
use tollgate::ledger::Ledger;
use tollgate::live::ClusterStores;
use tollgate::pricing::RateCard;
use tollgate::reporting::Sources;
use tollgate::source::{DemoCluster, DemoFleet};
use tollgate::time::{Interval, Step, parse_time};

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

fn request(window: Interval, group_by: &str, step: Step) -> ReportRequest {
    ReportRequest {
        window,
        step,
        group_by: group_by.parse().unwrap(),
        share_unallocated: false,
        only: Default::default(),
    }
}

/// Each line as `period/group: gpu_hours cost`, to 12 decimals (stored days keep 18, far below
/// a cent; the engine keeps 28).
fn lines(report: tollgate::cost::CostReport) -> BTreeMap<String, (Decimal, Option<Decimal>)> {
    report
        .lines
        .into_iter()
        .map(|l| {
            let key = format!("{}/{}", l.period.start, l.group.join("/"));
            let figures = &l.figures;
            let cost = figures.cost.map(|c| c.round_dp(12));
            (key, (figures.gpu_hours.round_dp(12), cost))
        })
        .collect()
}

fn differences(
    left: &BTreeMap<String, (Decimal, Option<Decimal>)>,
    right: &BTreeMap<String, (Decimal, Option<Decimal>)>,
) -> Vec<String> {
    left.keys()
        .chain(right.keys())
        .filter(|k| left.get(*k) != right.get(*k))
        .take(6)
        .map(|k| format!("{k}: {:?} vs {:?}", left.get(k), right.get(k)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolled_up_days_leave_memory_and_every_report_stays_exact() {
    let card = RateCard::builtin();
    let start = parse_time("2026-11-28T09:00:00Z").unwrap();
    let end = parse_time("2026-12-01T15:00:00Z").unwrap();
    let fleet = DemoFleet::new(1, start);
    let dir = tempfile::tempdir().unwrap();
    let store = support::store_for(dir.path(), &card);
    let mut stores = ClusterStores::default();
    let mut cluster = DemoCluster::start(fleet, &mut stores);
    let mut ledger = Ledger::in_memory().cutting_over(true);
    ledger.begin(start).unwrap();
    let mut rolled_until = start.div_euclid(DAY) * DAY;
    let mut t = start;
    let mut most_closed = 0;
    while t < end {
        t = (t + 600).min(end);
        cluster.advance(t, &mut stores);
        let read = stores.allocations(&card, BuildOptions::new(t));
        stores.forget_deleted();
        ledger
            .reconcile(t, &read.set, read.touched.as_ref())
            .unwrap();
        // A day closes: roll it up from what the ledger holds, then let the ledger forget it.
        let today = t.div_euclid(DAY) * DAY;
        if today > rolled_until {
            let view = ledger.view(t);
            let sets = view.as_refs();
            let sources = Sources {
                from: view.from,
                store: Some(&store),
                ..Sources::of(&sets, &card, "test")
            };
            let days: Vec<i64> = (rolled_until..today).step_by(DAY as usize).collect();
            sources.roll_up(&store, &days, |_| {}).await.unwrap();
            ledger.mark_rolled(today).unwrap();
            rolled_until = today;
        }
        most_closed = most_closed.max(ledger.state().closed_count());
    }
    // Memory holds the open segments and today's closed ones, not the three days before.
    let view = ledger.view(end);
    assert_eq!(view.from, Some(parse_time("2026-12-01").unwrap()));
    assert!(
        view.sets
            .iter()
            .flat_map(|s| s.allocations.iter().map(|a| a.interval.start))
            .all(|s| s >= parse_time("2026-12-01").unwrap())
    );
    assert!(
        ledger.state().closed_count() < most_closed,
        "{} closed segments kept, {most_closed} at most",
        ledger.state().closed_count()
    );

    let sets = view.as_refs();
    let sources = Sources {
        from: view.from,
        store: Some(&store),
        ..Sources::of(&sets, &card, "test")
    };
    let truth_set = fleet.at(end).allocations(&card, &BuildOptions::new(end));
    let window = Interval::new(start, end);
    for (group_by, step) in [
        ("cost_center,namespace,gpu_model", Step::Day),
        ("cost_center", Step::Window),
        ("namespace,pod,gpu_model", Step::Window),
        ("pod,node", Step::Day),
    ] {
        let asked = request(window, group_by, step);
        let served = lines(sources.report(&asked).await.unwrap());
        let truth = lines(cost_report(&[&truth_set], &card, &asked).unwrap());
        let differ = differences(&served, &truth);
        assert!(differ.is_empty(), "{group_by} by {step}: {differ:#?}");
        assert!(served.len() > 5, "{group_by}: {}", served.len());
    }

    // Month-to-date spend: the month's stored days from the store, the rest from memory.
    let month = month_of(end);
    let stored_window = Interval::new(month.start, view.from.unwrap());
    let stored = StoredSpend {
        window: stored_window,
        cost: store.spend(stored_window).unwrap(),
        missing: None,
    };
    let spend =
        SpendIndex::build(&sets, &stored, &read_live(&fleet, &card, end), &card, end).unwrap();
    let truth = cost_report(
        &[&truth_set],
        &card,
        &request(Interval::new(month.start, end), "cost_center", Step::Window),
    )
    .unwrap();
    for line in truth.lines {
        let cost_center = &line.group[0];
        let expected = line.figures.cost.unwrap_or_default();
        if cost_center == UNALLOCATED {
            continue;
        }
        let spent = spend.cost_center(cost_center).spent;
        assert_eq!(spent.round_dp(12), expected.round_dp(12), "{cost_center}");
    }
}

/// What runs at `at`, as a fresh read would give it.
fn read_live(fleet: &DemoFleet, card: &RateCard, at: i64) -> AllocationSet {
    let mut stores = ClusterStores::default();
    DemoCluster::start(fleet.at(at), &mut stores);
    stores.allocations(card, BuildOptions::new(at)).set
}
