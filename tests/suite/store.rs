//! The rollup store: a day written from the engine reads back as the same chargeback, for any
//! step and any group-by it keeps; a window mixing stored days and engine-computed hours gives
//! the figures the engine gives alone; rewriting a day is idempotent.

use crate::support;

use rust_decimal::Decimal;
use tollgate::allocation::{BuildOptions, allocations};
use tollgate::cost::{ReportRequest, cost_report};
use tollgate::output::{Format, render};
use tollgate::source::DemoFleet;
use tollgate::store::{Grain, Plan, RollupStore, compose, rollup_requests, unbounded};
use tollgate::time::{Interval, Step, parse_time};

const DAY: i64 = 86_400;

/// Rolls up `day` of `set` into `store`, as `serve` and `store backfill` do.
fn roll_up(
    store: &RollupStore,
    set: &tollgate::allocation::AllocationSet,
    card: &tollgate::pricing::RateCard,
    day: i64,
) {
    let [hourly, pods] = rollup_requests(day).map(|r| cost_report(&[set], card, &r).unwrap());
    store.write_day(day, &hourly, &pods).unwrap();
}

/// The demo fleet at scale 1 and a store holding `days` of it from 2026-11-10, rolled up.
struct Stored {
    card: tollgate::pricing::RateCard,
    set: tollgate::allocation::AllocationSet,
    dir: tempfile::TempDir,
    store: RollupStore,
    first: i64,
}

fn stored(days: i64) -> Stored {
    let card = tollgate::pricing::RateCard::builtin();
    let as_of = parse_time("2026-11-20T00:00:00Z").unwrap();
    let set = DemoFleet::new(1, as_of).allocations(&card, &BuildOptions::new(as_of));
    let dir = tempfile::tempdir().unwrap();
    let store = support::store_for(dir.path(), &card);
    let first = parse_time("2026-11-10").unwrap();
    for day in (first..first + days * DAY).step_by(DAY as usize) {
        roll_up(&store, &set, &card, day);
    }
    Stored {
        card,
        set,
        dir,
        store,
        first,
    }
}

impl Stored {
    /// `request` put together as `Sources::report` does: stored days from the store, the
    /// rest from the engine.
    fn report(&self, request: &ReportRequest) -> tollgate::cost::CostReport {
        let plan = Plan::new(request, &self.store.days().unwrap());
        let grain = plan.grain.unwrap();
        let mut lines = Vec::new();
        for run in &plan.stored {
            lines.extend(
                self.store
                    .read(
                        grain,
                        *run,
                        request.window,
                        request.step,
                        request.group_by.keys(),
                        &request.only,
                        unbounded,
                    )
                    .unwrap(),
            );
        }
        let engine = |window| {
            let part = ReportRequest {
                window,
                ..request.clone()
            };
            cost_report(&[&self.set], &self.card, &part).unwrap()
        };
        let rest = plan.rest.iter().map(|part| engine(*part)).collect();
        compose(request, lines, rest, engine(request.window))
    }
}

fn request(from: &str, to: &str, step: Step, group_by: &str) -> ReportRequest {
    ReportRequest {
        window: Interval::new(parse_time(from).unwrap(), parse_time(to).unwrap()),
        step,
        group_by: group_by.parse().unwrap(),
        share_unallocated: false,
        only: Default::default(),
    }
}

#[test]
fn stored_days_read_back_as_the_engine_computed_them() {
    let stored = stored(5);
    let Stored {
        card,
        set,
        store,
        first,
        ..
    } = &stored;
    // Idempotent: writing a day again changes nothing.
    roll_up(store, set, card, *first);
    assert_eq!(store.days().unwrap().len(), 5);

    for (from, to, step, group_by) in [
        (
            "2026-11-10",
            "2026-11-15",
            Step::Window,
            "cost_center,namespace",
        ),
        ("2026-11-10", "2026-11-15", Step::Day, "gpu_model"),
        (
            "2026-11-11",
            "2026-11-12",
            Step::Hour,
            "node,cost_center_source",
        ),
        (
            "2026-11-01",
            "2026-12-01",
            Step::Month,
            "namespace,gpu_model",
        ),
        // Partly stored: hours before, between and after stored days come from the engine.
        (
            "2026-11-09T17:30:00Z",
            "2026-11-16T03:00:00Z",
            Step::Day,
            "cost_center",
        ),
        (
            "2026-11-09T17:30:00Z",
            "2026-11-16T03:00:00Z",
            Step::Window,
            "cost_center,gpu_model,node",
        ),
        // By pod, from the pod rollups, around hours of the engine.
        (
            "2026-11-09T17:30:00Z",
            "2026-11-16T03:00:00Z",
            Step::Window,
            "namespace,pod",
        ),
        ("2026-11-10", "2026-11-13", Step::Day, "pod,gpu_model,node"),
    ] {
        let request = request(from, to, step, group_by);
        let engine = cost_report(&[set], card, &request).unwrap();
        let plan = Plan::new(&request, &store.days().unwrap());
        assert_eq!(plan.grain == Some(Grain::Pods), group_by.contains("pod"));
        let combined = stored.report(&request);
        // The same lines, each figure within 10⁻¹² (the store keeps 18 decimals)…
        assert_eq!(
            combined.lines.len(),
            engine.lines.len(),
            "{from} → {to} by {group_by}"
        );
        let close = |a: Option<Decimal>, b: Option<Decimal>| match (a, b) {
            (Some(a), Some(b)) => (a - b).abs() < Decimal::new(1, 12),
            (a, b) => a == b,
        };
        for (c, e) in combined.lines.iter().zip(&engine.lines) {
            assert_eq!((c.period, &c.group), (e.period, &e.group));
            assert!(
                close(Some(c.figures.gpu_hours), Some(e.figures.gpu_hours)),
                "{c:?} vs {e:?}"
            );
            assert!(close(c.figures.cost, e.figures.cost), "{c:?} vs {e:?}");
            assert!(close(
                Some(c.figures.unpriced_gpu_hours),
                Some(e.figures.unpriced_gpu_hours)
            ));
        }
        // …and the same printed totals.
        assert_eq!(
            combined.chargeback().total,
            engine.chargeback().total,
            "{from} → {to} by {group_by}"
        );
    }
    assert_eq!(store.remove_before(*first + 2 * DAY).unwrap(), 2);
    assert_eq!(store.days().unwrap().len(), 3);
}

#[test]
fn the_fixture_day_reads_back_to_the_cent() {
    let card = support::fixture_card();
    let objects =
        tollgate::source::read_snapshot(std::path::Path::new("tests/fixtures/snapshot")).unwrap();
    let set = allocations(
        &objects,
        &card,
        &BuildOptions::new(parse_time("2026-11-02").unwrap()),
    );
    let dir = tempfile::tempdir().unwrap();
    let store = support::store_for(dir.path(), &card);
    let day = parse_time("2026-11-01").unwrap();
    roll_up(&store, &set, &card, day);
    let request = request(
        "2026-11-01",
        "2026-11-02",
        Step::Window,
        "cost_center,namespace",
    );
    let lines = store
        .read(
            Grain::Daily,
            request.window,
            request.window,
            request.step,
            request.group_by.keys(),
            &Default::default(),
            unbounded,
        )
        .unwrap();
    let template = cost_report(&[&set], &card, &request).unwrap();
    let from_store = compose(&request, lines, Vec::new(), template);
    let csv = render(&from_store, Format::Csv, &Default::default()).replace("\r\n", "\n");
    assert_eq!(csv, support::fixture_report(&[]).replace("\r\n", "\n"));
}

#[test]
fn days_rolled_up_before_tiers_and_pods_still_read() {
    use polars::prelude::*;
    let Stored {
        card,
        set,
        dir,
        store,
        ..
    } = stored(1);
    // As an older Tollgate left the day: no pricing_tier column, no pod rollup.
    let rollups = dir.path().join("rollups");
    for file in ["2026-11-10.parquet", "daily/2026-11-10.parquet"] {
        let path = rollups.join(file);
        let mut frame = ParquetReader::new(std::fs::File::open(&path).unwrap())
            .finish()
            .unwrap()
            .drop("pricing_tier")
            .unwrap();
        ParquetWriter::new(std::fs::File::create(&path).unwrap())
            .finish(&mut frame)
            .unwrap();
    }
    std::fs::remove_file(rollups.join("pods/2026-11-10.parquet")).unwrap();

    let days = store.days().unwrap();
    assert_eq!(days.len(), 1);
    assert!(store.days_with(Grain::Pods, &days).is_empty());
    let by_tier = request("2026-11-10", "2026-11-11", Step::Window, "gpu_model");
    let keys = [
        tollgate::cost::GroupKey::GpuModel,
        tollgate::cost::GroupKey::PricingTier,
    ];
    let lines = store
        .read(
            Grain::Daily,
            by_tier.window,
            by_tier.window,
            Step::Window,
            &keys,
            &Default::default(),
            unbounded,
        )
        .unwrap();
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|l| l.group[1].is_empty()), "{lines:?}");
    let engine = cost_report(&[&set], &card, &by_tier).unwrap();
    let stored_cost: Decimal = lines.iter().filter_map(|l| l.figures.cost).sum();
    let engine_cost: Decimal = engine.lines.iter().filter_map(|l| l.figures.cost).sum();
    assert!((stored_cost - engine_cost).abs() < Decimal::new(1, 9));
}

#[test]
fn a_filtered_report_is_the_whole_report_s_lines_of_one_namespace() {
    let stored = stored(2);
    let whole = request(
        "2026-11-09T12:00:00Z",
        "2026-11-12T06:00:00Z",
        Step::Window,
        "cost_center,namespace,pod",
    );
    let only = ReportRequest {
        only: tollgate::cost::LineFilter {
            cost_center: None,
            namespace: Some("inference-chat".into()),
        },
        ..whole.clone()
    };
    // The whole report's lines of the namespace, from the engine alone…
    let engine = cost_report(&[&stored.set], &stored.card, &whole).unwrap();
    let expected: Vec<_> = engine
        .lines
        .iter()
        .filter(|l| &l.group[1] == "inference-chat")
        .collect();
    assert!(expected.len() > 10, "{}", expected.len());
    let filtered = cost_report(&[&stored.set], &stored.card, &only).unwrap();
    assert_eq!(filtered.lines.iter().collect::<Vec<_>>(), expected);
    // …and from the pod rollups of the stored days around hours of the engine.
    let plan = Plan::new(&only, &stored.store.days().unwrap());
    assert_eq!(plan.stored.len(), 1);
    let combined = stored.report(&only);
    assert_eq!(combined.lines.len(), expected.len());
    for (c, e) in combined.lines.iter().zip(&expected) {
        assert_eq!(c.group, e.group);
        assert!((c.figures.cost.unwrap() - e.figures.cost.unwrap()).abs() < Decimal::new(1, 12));
    }
}
