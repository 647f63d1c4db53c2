//! A month's chargeback for a 10,000-GPU fleet (the demo generator at scale 48: 10,032 GPUs,
//! ~1.2M pod allocations overlapping the window), grouped by cost center and namespace; the
//! month's FOCUS export; the month's cost per million tokens per served model.
//!
//! The bar (issue #2): DuckDB SQL doing the same work (clip, split at price changes, units ×
//! hours × price in DECIMAL, group by cost center and namespace) takes 0.25 s for 1.2M intervals
//! on this 2-core machine; the target is under 0.12 s for price + aggregate, exact.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tollgate::allocation::{AllocationSet, BuildOptions};
use tollgate::cost::{LineFilter, ReportRequest, cost_report};
use tollgate::output::{FocusEncoding, FocusSettings, Format, focus_request, render};
use tollgate::pricing::RateCard;
use tollgate::reporting::Sources;
use tollgate::source::{DemoFleet, DemoUtilization};
use tollgate::time::{Interval, Step, parse_time};
use tollgate::tokens::Telemetry;
use tollgate::tokens::report::TokenRequest;

/// The allocator `tollgate` itself runs with (`src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

/// What a command's report over `sets` reads: no store, no Prometheus, the demo's cluster name
/// and, if given, its simulated utilization and tokens.
fn demo_sources<'a>(
    sets: &'a [&'a AllocationSet],
    card: &'a RateCard,
    simulated: Option<&'a dyn Telemetry>,
) -> Sources<'a> {
    Sources {
        simulated,
        ..Sources::of(sets, card, "demo")
    }
}

/// The runtime streamed reports block on, as a command's.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
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
    group.finish();
}

/// The month's FOCUS export as `tollgate report --format focus --output FILE` streams it: one
/// charge period (a day) priced, rounded and written at a time, to CSV and to Parquet (issue
/// 14's target: ≤ 1.5 s and ≤ 1 s).
fn focus_export(c: &mut Criterion) {
    let card = RateCard::builtin();
    let (set, request) = fleet(&card);
    let sets = [&set];
    let sources = demo_sources(&sets, &card, None);
    let focus = focus_request(&request);
    let settings = FocusSettings::default().for_cluster("demo");
    let runtime = runtime();
    let money = card.currency().minor_units();
    let export = |parquet: bool, out: &mut dyn std::io::Write| {
        let encoding = FocusEncoding::new(parquet, money);
        let only = LineFilter::default();
        sources
            .export_focus(runtime.handle(), &focus, (&settings, encoding, &only), out)
            .expect("written");
    };
    let started = std::time::Instant::now();
    sources
        .report_by_period(runtime.handle(), &focus, || Ok(|_, _| Ok(())), |()| Ok(()))
        .expect("computed");
    eprintln!("focus: engine alone {:?}", started.elapsed());
    let mut counted = Counted::default();
    let started = std::time::Instant::now();
    export(false, &mut counted);
    eprintln!(
        "focus: {} bytes of CSV in {:?}",
        counted.0,
        started.elapsed()
    );
    let mut group = c.benchmark_group("month_10k_gpus");
    group.sample_size(10);
    group.bench_function("focus_export_csv", |b| {
        b.iter(|| export(false, &mut std::io::sink()))
    });
    group.bench_function("focus_export_parquet", |b| {
        b.iter(|| export(true, &mut std::io::sink()))
    });
    group.finish();
}

/// The month's cost per million tokens per served model, cost center and namespace (issue 16)
/// from the demo's simulated token counters: the engine per pod and hour, a day at a time, each
/// pod-hour split over the models it served.
fn token_report(c: &mut Criterion) {
    let card = RateCard::builtin();
    let (set, request) = fleet(&card);
    let sets = [&set];
    let sources = demo_sources(&sets, &card, Some(&DemoUtilization));
    let tokens = TokenRequest::served_models(request.window);
    let runtime = runtime();
    let report = sources
        .token_report(runtime.handle(), &tokens, None)
        .expect("priced");
    eprintln!("tokens: {} lines", report.lines.len());
    let mut group = c.benchmark_group("month_10k_gpus");
    group.sample_size(10);
    group.bench_function("token_report", |b| {
        b.iter(|| {
            sources
                .token_report(runtime.handle(), black_box(&tokens), None)
                .expect("priced")
        })
    });
    group.finish();
}

criterion_group!(benches, month_report, focus_export, token_report);
criterion_main!(benches);

/// A writer that only counts the bytes it is given.
#[derive(Default)]
struct Counted(usize);

impl std::io::Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
