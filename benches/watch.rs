//! Memory and CPU of watching 10,000 pods (issue #3; target ≤ 150 MiB RSS).
//!
//! Pods are the fixture's `chat-0` as the API server would send it — with `managedFields` and a
//! `last-applied-configuration` annotation, both stripped on arrival — cloned 10,000 times onto
//! 1,250 eight-GPU nodes. The bench prints the process's resident memory once the stores and
//! the ledger hold them, then times what every reconcile does: read the stores into
//! allocations, reconcile the ledger, and render `/metrics`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::watcher::Event;
use serde_json::{Value, json};
use tollgate::allocation::BuildOptions;
use tollgate::ledger::Ledger;
use tollgate::live::ClusterStores;
use tollgate::pricing::RateCard;

/// Counts the bytes the program holds on the heap, next to what the OS reports.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn heap_mib() -> f64 {
    HELD.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0)
}

const PODS: usize = 10_000;
const PODS_PER_NODE: usize = 8;

fn resident_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

fn fixture_item(kind: &str, name: &str) -> Value {
    let text =
        std::fs::read_to_string(format!("tests/fixtures/snapshot/{kind}.json")).expect("fixture");
    let list: Value = serde_json::from_str(&text).expect("JSON");
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["metadata"]["name"] == name)
        .expect("fixture object")
        .clone()
}

/// Bulk the API server sends and Tollgate drops.
fn with_bulk(mut object: Value) -> Value {
    let spec = object["spec"].clone();
    object["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
        json!(spec.to_string());
    object["metadata"]["managedFields"] = json!([
        {"apiVersion": "v1", "fieldsType": "FieldsV1", "manager": "kube-controller-manager", "operation": "Update",
         "time": "2026-11-01T00:00:00Z", "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": spec}},
        {"apiVersion": "v1", "fieldsType": "FieldsV1", "manager": "kubelet", "operation": "Update", "subresource": "status",
         "time": "2026-11-01T00:00:00Z", "fieldsV1": {"f:status": object["status"].clone()}}
    ]);
    object
}

fn watched(stores: &mut ClusterStores) {
    let pod = with_bulk(fixture_item("pods", "chat-0"));
    let node = with_bulk(fixture_item("nodes", "node-h100"));
    let now = jiff::Timestamp::now().as_second();
    stores.nodes.handle(Event::Init, now);
    stores.pods.handle(Event::Init, now);
    for n in 0..PODS / PODS_PER_NODE {
        let mut node = node.clone();
        node["metadata"]["name"] = json!(format!("gpu-node-{n:05}"));
        node["metadata"]["uid"] = json!(format!("node-uid-{n:05}"));
        let node: Node = serde_json::from_value(node).expect("a node");
        stores.nodes.handle(Event::InitApply(node), now);
    }
    for p in 0..PODS {
        let mut pod = pod.clone();
        pod["metadata"]["name"] = json!(format!("inference-{p:05}"));
        pod["metadata"]["uid"] = json!(format!("pod-uid-{p:05}"));
        pod["metadata"]["namespace"] = json!(format!("team-{}", p % 40));
        pod["spec"]["nodeName"] = json!(format!("gpu-node-{:05}", p / PODS_PER_NODE));
        pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = json!("1");
        let pod: Pod = serde_json::from_value(pod).expect("a pod");
        stores.pods.handle(Event::InitApply(pod), now);
    }
    stores.nodes.handle(Event::InitDone, now);
    stores.pods.handle(Event::InitDone, now);
    // No namespaces with cost centers and no DRA on this cluster: those kinds list empty.
    stores.namespaces.handle(Event::InitDone, now);
    stores.claims.handle(Event::InitDone, now);
    stores.slices.handle(Event::InitDone, now);
}

fn watch_10k(c: &mut Criterion) {
    let card = RateCard::builtin();
    let before = resident_mib();
    let mut stores = ClusterStores::default();
    watched(&mut stores);
    let with_stores = resident_mib();
    let heap_with_stores = heap_mib();
    let now = jiff::Timestamp::now().as_second();
    let mut ledger = Ledger::in_memory();
    let live = stores.allocations(&card, BuildOptions::new(now));
    ledger.reconcile(now, &live.set, None).expect("in memory");
    let view = ledger.view(now);
    eprintln!(
        "watch: {} pods on {} nodes; resident memory {:.1} MiB ({:.1} MiB at start, {:.1} MiB with the stores filled); heap in use {:.1} MiB ({:.1} MiB for the stores); {} open segments, {} allocations in view",
        stores.pods.len(),
        stores.nodes.len(),
        resident_mib(),
        before,
        with_stores,
        heap_mib(),
        heap_with_stores,
        ledger.state().open_count(),
        view.sets.iter().map(|s| s.allocations.len()).sum::<usize>()
    );
    drop(view);
    let mut group = c.benchmark_group("watch_10k_pods");
    group.sample_size(20);
    let mut tick = now;
    group.bench_function("reconcile", |b| {
        b.iter(|| {
            tick += 2;
            let live = stores.allocations(&card, BuildOptions::new(tick));
            ledger
                .reconcile(tick, black_box(&live.set), live.touched.as_ref())
                .expect("in memory");
            ledger.view(tick)
        })
    });
    group.finish();
}

criterion_group!(benches, watch_10k);
criterion_main!(benches);
