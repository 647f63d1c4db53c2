//! A month's chargeback for a 10,000-GPU fleet (the demo generator at scale 48: 10,032 GPUs,
//! ~1.2M pod allocations overlapping the window), grouped by cost center and namespace.
//!
//! The bar (issue #2): DuckDB SQL doing the same work (clip, split at price changes, units ×
//! hours × price in DECIMAL, group by cost center and namespace) takes 0.25 s for 1.2M intervals
//! on this 2-core machine; the target is under 0.12 s for price + aggregate, exact.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tollgate::allocation::{AllocationSet, BuildOptions};
use tollgate::cost::{ReportRequest, cost_report};
use tollgate::output::{FocusSettings, Format, focus_request, render};
use tollgate::pricing::RateCard;
use tollgate::source::DemoFleet;
use tollgate::time::{Interval, Step, parse_time};

/// Demo scale for a 10,000-GPU fleet (209 GPUs per unit).
const SCALE: u32 = 48;

fn fleet(card: &RateCard) -> (AllocationSet, ReportRequest) {
    let as_of = parse_time("2026-11-30T00:00:00Z").expect("a valid time");
    let set = DemoFleet::new(SCALE, as_of).allocations(card, &BuildOptions::new(as_of));
    let request = ReportRequest {
        window: Interval::new(
            parse_time("2026-10-31T00:00:00Z").expect("a valid time"),
            as_of,
        ),
        step: Step::Window,
        group_by: "cost_center,namespace".parse().expect("valid keys"),
        share_unallocated: false,
        only: Default::default(),
    };
    let in_window = set
        .allocations
        .iter()
        .filter(|a| a.interval.clip(request.window).is_some())
        .count();
    eprintln!(
        "fleet: {} GPUs, {} allocations ({} in the 30-day window), {} node capacity records",
        DemoFleet::new(SCALE, as_of).gpu_count(),
        set.allocations.len(),
        in_window,
        set.capacity.len()
    );
    (set, request)
}

fn month_report(c: &mut Criterion) {
    let card = RateCard::builtin();
    let (set, request) = fleet(&card);
    let mut group = c.benchmark_group("month_10k_gpus");
    group.sample_size(20);
    group.bench_function("price_and_aggregate", |b| {
        b.iter(|| cost_report(&[black_box(&set)], &card, &request).expect("no overflow"))
    });
    let report = cost_report(&[&set], &card, &request).expect("no overflow");
    group.bench_function("round_and_render_csv", |b| {
        b.iter(|| render(black_box(&report), Format::Csv, &FocusSettings::default()))
    });
    let daily = ReportRequest {
        step: Step::Day,
        ..request.clone()
    };
    group.bench_function("price_and_aggregate_daily", |b| {
        b.iter(|| cost_report(&[black_box(&set)], &card, &daily).expect("no overflow"))
    });
    // The FOCUS export of the month: one row per billed resource, rendered as CSV.
    let focus = focus_request(&request);
    let started = std::time::Instant::now();
    let report = cost_report(&[&set], &card, &focus).expect("no overflow");
    let aggregated = started.elapsed();
    let chargeback = report.chargeback();
    let rounded = started.elapsed();
    let text = render(&report, Format::Focus, &FocusSettings::default());
    eprintln!(
        "focus: {} rows, {} bytes: aggregate {aggregated:?}, round {:?}, render {:?}",
        chargeback.lines.len(),
        text.len(),
        rounded - aggregated,
        started.elapsed() - rounded
    );
    group.sample_size(10);
    group.bench_function("focus_export", |b| {
        b.iter(|| {
            let report = cost_report(&[black_box(&set)], &card, &focus).expect("no overflow");
            render(&report, Format::Focus, &FocusSettings::default())
        })
    });
    group.finish();
}

criterion_group!(benches, month_report);
criterion_main!(benches);
