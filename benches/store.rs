//! Long reports from the rollup store (issue #4): a 30-day and a 90-day report for a 10,032-GPU
//! demo fleet, grouped by cost center and namespace — target ≤ 0.5 s — with a Prometheus client
//! configured, counting its queries: closed days must cost none. And the console's drill-down
//! to pods (issue #13): the month by cost center, namespace and pod, from the pod rollups.
//!
//! Setup rolls up the fleet's 35 simulated days with the cost engine and, for 90 days, copies
//! them to earlier dates (the hour column shifted), so the store holds 90 real-sized days.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use polars::prelude::*;
use tollgate::allocation::BuildOptions;
use tollgate::cost::{ReportRequest, cost_report};
use tollgate::pricing::RateCard;
use tollgate::prometheus::Prometheus;
use tollgate::reporting::Sources;
use tollgate::source::DemoFleet;
use tollgate::store::{RollupStore, rollup_requests};
use tollgate::time::{Interval, Step, format_time, parse_time};

const DAY: i64 = 86_400;

/// Copies the stored day `from` (hourly, daily and pod files) to `to`, its hours shifted.
fn shift(dir: &std::path::Path, from: i64, to: i64) {
    for folder in ["rollups", "rollups/daily", "rollups/pods"] {
        let name = |day: i64| {
            dir.join(folder)
                .join(format!("{}.parquet", &format_time(day)[..10]))
        };
        let file = std::fs::File::open(name(from)).expect("a stored day");
        let frame = ParquetReader::new(file).finish().expect("parquet");
        let mut frame = frame
            .lazy()
            .with_column((col("hour") + lit(to - from)).alias("hour"))
            .collect()
            .expect("shifted");
        let mut out = std::fs::File::create(name(to)).expect("writable");
        ParquetWriter::new(&mut out)
            .finish(&mut frame)
            .expect("written");
    }
}

fn store_reports(c: &mut Criterion) {
    let card = RateCard::builtin();
    let today = parse_time("2026-11-30T00:00:00Z").expect("a time");
    let set = DemoFleet::new(48, today).allocations(&card, &BuildOptions::new(today));
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = RollupStore::open(
        dir.path(),
        tollgate::store::Provenance {
            source: "demo".into(),
            rate_card: card.digest(),
        },
    )
    .expect("a store");
    let first = today - 34 * DAY;
    for day in (first..today).step_by(DAY as usize) {
        let [hourly, pods] =
            rollup_requests(day).map(|r| cost_report(&[&set], &card, &r).expect("priced"));
        store.write_day(day, &hourly, &pods).expect("stored");
    }
    for back in 1..=(90 - 34) {
        let day = first - back * DAY;
        shift(dir.path(), day + 34 * DAY, day);
    }
    let prometheus = Prometheus::new("http://127.0.0.1:9", &Default::default()).expect("a client");
    let sets = [&set];
    let sources = Sources {
        store: Some(&store),
        prometheus: Some(&prometheus),
        ..Sources::of(&sets, &card, "test")
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let grouped = |days: i64, keys: &str| ReportRequest {
        window: Interval::new(today - days * DAY, today),
        step: Step::Window,
        group_by: keys.parse().expect("keys"),
        share_unallocated: false,
        only: Default::default(),
    };
    let request = |days: i64| grouped(days, "cost_center,namespace");
    let report = runtime
        .block_on(sources.report(&request(90)))
        .expect("a report");
    eprintln!(
        "store: {} days; 90-day report: {} lines, total {:?}; Prometheus queries: {}",
        store.days().expect("days").len(),
        report.lines.len(),
        report.chargeback().total.cost,
        prometheus.query_count()
    );
    assert_eq!(
        prometheus.query_count(),
        0,
        "closed days must not query Prometheus"
    );
    let mut group = c.benchmark_group("store_10k_gpus");
    group.sample_size(10);
    for days in [30, 90] {
        group.bench_function(format!("report_{days}_days"), |b| {
            b.iter(|| {
                runtime
                    .block_on(sources.report(black_box(&request(days))))
                    .expect("a report")
            })
        });
    }
    // The console's drill-down to pods: every pod of the month, from the pod rollups.
    let pods = grouped(30, "cost_center,namespace,pod");
    let lines = runtime
        .block_on(sources.report(&pods))
        .expect("a report")
        .lines
        .len();
    eprintln!("30 days by pod: {lines} lines");
    group.bench_function("report_30_days_by_pod", |b| {
        b.iter(|| {
            runtime
                .block_on(sources.report(black_box(&pods)))
                .expect("a report")
        })
    });
    group.finish();
    assert_eq!(prometheus.query_count(), 0);
}

criterion_group!(benches, store_reports);
criterion_main!(benches);
