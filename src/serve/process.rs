//! Process metrics from `/proc/self` (Linux): memory, CPU time, open files, start time. Where
//! `/proc` cannot be read, they are left out rather than reported as zero.

use prometheus_client::registry::Registry;

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

/// Linux's clock tick and page size on every platform Tollgate ships for.
const TICKS_PER_SECOND: f64 = 100.0;
const PAGE_BYTES: f64 = 4096.0;

/// Fields of `/proc/self/stat` after the command name (field 3 onwards).
fn stat_fields() -> Option<Vec<String>> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = stat.rsplit_once(')')?.1;
    Some(after_name.split_whitespace().map(str::to_string).collect())
}

fn boot_time() -> Option<f64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// Adds `process_*` metrics to `registry`.
pub fn register(registry: &mut Registry) {
    let Some(fields) = stat_fields() else { return };
    // Field n of stat(5) is index n - 3 here.
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    if let (Some(user), Some(system)) = (field(14), field(15)) {
        counter_with(
            registry,
            "process_cpu_seconds",
            "User and system CPU time spent, in seconds",
            (user + system) / TICKS_PER_SECOND,
        );
    }
    if let Some(pages) = field(24) {
        gauge_with(
            registry,
            "process_resident_memory_bytes",
            "Resident memory size, in bytes",
            pages * PAGE_BYTES,
        );
    }
    if let Some(bytes) = field(23) {
        gauge_with(
            registry,
            "process_virtual_memory_bytes",
            "Virtual memory size, in bytes",
            bytes,
        );
    }
    if let (Some(start), Some(boot)) = (field(22), boot_time()) {
        gauge_with(
            registry,
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds",
            boot + start / TICKS_PER_SECOND,
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        gauge_with(
            registry,
            "process_open_fds",
            "Open file descriptors",
            fds.count() as f64,
        );
    }
}

/// Registers a counter already holding `value` (for per-scrape process counters).
fn counter_with(registry: &mut Registry, name: &str, help: &str, value: f64) {
    let counter = Counter::<f64, AtomicU64>::default();
    counter.inc_by(value);
    registry.register(name, help, counter);
}

/// Registers a gauge holding `value`.
pub(super) fn gauge_with(registry: &mut Registry, name: &str, help: &str, value: f64) {
    let gauge = Gauge::<f64, AtomicU64>::default();
    gauge.set(value);
    registry.register(name, help, gauge);
}
