//! DCGM ingest from a real Prometheus (issue #4; target ≤ 10 s): one day of 1-minute samples
//! for 1,000 GPUs (1.44 million samples, each GPU held by its own pod), read as hourly
//! utilization per allocation — 24 samples per GPU come back, aggregated by Prometheus.
//!
//! Needs Debian's prometheus package (installed if missing, as in the tests).

use std::fmt::Write as _;

use criterion::{Criterion, criterion_group, criterion_main};
use tollgate::prometheus::Prometheus;
use tollgate::time::{Interval, parse_time};

#[path = "../tests/suite/support/prometheus.rs"]
#[allow(dead_code)] // the bench uses the server, not the OpenMetrics builder
mod support;
#[path = "../tests/suite/support/tools.rs"]
mod tools;

const GPUS: usize = 1000;

fn one_day(day: i64) -> String {
    let mut text = String::with_capacity(GPUS * 1440 * 90);
    text.push_str("# TYPE DCGM_FI_PROF_GR_ENGINE_ACTIVE gauge\n");
    for gpu in 0..GPUS {
        for minute in 0..1440 {
            let value = ((minute * 7 + gpu * 13) % 100) as f64 / 100.0;
            let _ = writeln!(
                text,
                "DCGM_FI_PROF_GR_ENGINE_ACTIVE{{pod=\"inference-{gpu:04}\",namespace=\"team-{}\",UUID=\"GPU-{gpu:04}\",Hostname=\"node-{}\"}} {value} {}",
                gpu % 20,
                gpu / 8,
                day + minute as i64 * 60
            );
        }
    }
    text.push_str("# EOF\n");
    text
}

fn ingest(c: &mut Criterion) {
    let day = parse_time("2026-11-01").expect("a date");
    let prometheus = support::TestPrometheus::start(&one_day(day));
    let client = Prometheus::new(&prometheus.url, &Default::default()).expect("a client");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let window = Interval::new(day, day + 86_400);
    let usage = runtime.block_on(client.dcgm_usage(window)).expect("usage");
    eprintln!(
        "dcgm: {} allocation-hours from {} queries",
        usage.len(),
        client.query_count()
    );
    let mut group = c.benchmark_group("dcgm_1000_gpus");
    group.sample_size(10);
    group.bench_function("one_day", |b| {
        b.iter(|| runtime.block_on(client.dcgm_usage(window)).expect("usage"))
    });
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
