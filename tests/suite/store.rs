//! The rollup store: a day written from the engine reads back as the same chargeback, for any
//! step and any group-by it keeps; a window mixing stored days and engine-computed hours gives
//! the figures the engine gives alone; rewriting a day is idempotent.

use crate::support;

use rust_decimal::Decimal;
use tollgate::allocation::{BuildOptions, allocations};
use tollgate::cost::{ReportRequest, cost_report};
use tollgate::output::{Format, render};
use tollgate::source::DemoFleet;
use tollgate::store::{Plan, compose, rollup_request};
use tollgate::time::{Interval, Step, parse_time};

const DAY: i64 = 86_400;

fn request(from: &str, to: &str, step: Step, group_by: &str) -> ReportRequest {
    ReportRequest {
        window: Interval::new(parse_time(from).unwrap(), parse_time(to).unwrap()),
        step,
        group_by: group_by.parse().unwrap(),
        share_unallocated: false,
    }
}

#[test]
fn stored_days_read_back_as_the_engine_computed_them() {
    let card = tollgate::pricing::RateCard::builtin();
    let as_of = parse_time("2026-11-20T00:00:00Z").unwrap();
    let set = DemoFleet::new(1, as_of).allocations(&card, &BuildOptions::new(as_of));
    let dir = tempfile::tempdir().unwrap();
    let store = support::store_for(dir.path(), &card);
    let first = parse_time("2026-11-10").unwrap();
    for day in (first..first + 5 * DAY).step_by(DAY as usize) {
        let rollup = cost_report(&[&set], &card, &rollup_request(day)).unwrap();
        store.write_day(day, &rollup).unwrap();
        // Idempotent: writing the same day again changes nothing.
        store.write_day(day, &rollup).unwrap();
    }
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
    ] {
        let request = request(from, to, step, group_by);
        let engine = cost_report(&[&set], &card, &request).unwrap();
        let plan = Plan::new(&request, &store.days().unwrap());
        let mut stored = Vec::new();
        for run in &plan.stored {
            stored.extend(
                store
                    .read(*run, request.window, request.step, request.group_by.keys())
                    .unwrap(),
            );
        }
        let rest = plan
            .rest
            .iter()
            .map(|part| {
                cost_report(
                    &[&set],
                    &card,
                    &ReportRequest {
                        window: *part,
                        ..request.clone()
                    },
                )
                .unwrap()
            })
            .collect();
        let combined = compose(&request, stored, rest, engine.clone());
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
    assert_eq!(store.remove_before(first + 2 * DAY).unwrap(), 2);
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
    store
        .write_day(
            day,
            &cost_report(&[&set], &card, &rollup_request(day)).unwrap(),
        )
        .unwrap();
    let request = request(
        "2026-11-01",
        "2026-11-02",
        Step::Window,
        "cost_center,namespace",
    );
    let lines = store
        .read(
            request.window,
            request.window,
            request.step,
            request.group_by.keys(),
        )
        .unwrap();
    let template = cost_report(&[&set], &card, &request).unwrap();
    let from_store = compose(&request, lines, Vec::new(), template);
    let csv = render(&from_store, Format::Csv, &Default::default()).replace("\r\n", "\n");
    assert_eq!(csv, support::fixture_report(&[]).replace("\r\n", "\n"));
}
