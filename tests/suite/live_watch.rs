//! The watch path against an in-process fake API server speaking real list/watch JSON (no real
//! API server can be installed here): what `/metrics` shows while pods are added, finish, are
//! deleted, get their claims allocated late, and while a node is relabelled and watches expire.

use crate::support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::json;
use tokio::sync::watch;
use tollgate::ledger::Ledger;
use tollgate::live::{ClusterStores, SourceHealth, spawn_watchers};
use tollgate::pricing::RateCard;
use tollgate::serve::{AppState, Feed, Reconciler, View, router};
use tower::ServiceExt;

use support::apiserver::FakeApiServer;
use support::units_by_pod;

struct Harness {
    api: FakeApiServer,
    stores: Arc<Mutex<ClusterStores>>,
    reconciler: Arc<Mutex<Reconciler>>,
    state: AppState,
}

async fn harness(without_dra: bool) -> Harness {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let api = FakeApiServer::start().await;
    if without_dra {
        api.without_dra();
    }
    api.load_snapshot(std::path::Path::new("tests/fixtures/snapshot"));
    let config = kube::Config::new(api.url().parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let stores = Arc::new(Mutex::new(ClusterStores::default()));
    let health = Arc::new(SourceHealth::default());
    spawn_watchers(client, stores.clone(), health.clone());
    let card = Arc::new(RateCard::load(std::path::Path::new("tests/fixtures/rates.toml")).unwrap());
    let (views, receiver) = watch::channel(Arc::new(View::default()));
    let reconciler = Reconciler::new(
        Feed::Cluster {
            stores: stores.clone(),
            health,
        },
        Ledger::in_memory(),
        card.clone(),
        "cost-center".into(),
        views,
    );
    Harness {
        api,
        stores,
        reconciler: Arc::new(Mutex::new(reconciler)),
        state: support::app_state(card, receiver, Arc::new(support::no_budgets())),
    }
}

impl Harness {
    async fn get(&self, uri: &str) -> (u16, String) {
        let response = router(self.state.clone())
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    /// Reconciles until `done` holds for `/metrics` (10 s at most).
    async fn until(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        for _ in 0..100 {
            self.reconciler.lock().unwrap().step();
            let (_, metrics) = self.get("/metrics").await;
            if self.state.views.borrow().readiness.is_ready() && done(&metrics) {
                return metrics;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out waiting for {what}");
    }

    /// Waits until the watchers have stored a pod (10 s at most).
    async fn until_pod_seen(&self, name: &str) {
        for _ in 0..100 {
            let seen = self
                .stores
                .lock()
                .unwrap()
                .pods
                .objects()
                .any(|p| p.metadata.name.as_deref() == Some(name));
            if seen {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out waiting for pod {name}");
    }

    /// A dry-run quota check of a pod in team-e on H200 with one claim from `template`.
    async fn check_claim_template(&self, template: &str) -> serde_json::Value {
        self.check_pod(
            json!({"nodeSelector": {"nvidia.com/gpu.product": "NVIDIA H200"},
            "containers": [{"name": "server"}],
            "resourceClaims": [{"name": "gpus", "resourceClaimTemplateName": template}]}),
        )
        .await
    }

    /// A dry-run quota check of a pod in team-e of `spec`.
    async fn check_pod(&self, spec: serde_json::Value) -> serde_json::Value {
        let body = json!({"namespace": "team-e", "dryRun": true, "pod": {
            "metadata": {"name": "new-0", "namespace": "team-e"}, "spec": spec}});
        let request = Request::post("/api/v1/quota/check")
            .body(Body::from(body.to_string()))
            .unwrap();
        let response = router(self.state.clone()).oneshot(request).await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&body).unwrap()
    }

    fn view(&self) -> Arc<View> {
        self.state.views.borrow().clone()
    }
}

fn expected_now() -> Vec<(&'static str, f64)> {
    vec![
        ("a30-0/mig", 0.5),
        ("chat-0/gpu", 2.0),
        ("colo-0/gpu", 1.0),
        ("dra-0/dra", 1.0),
        ("ext-0/dra", 1.0),
        ("gh-0/gpu", 1.0),
        ("l40s-0/gpu", 1.0),
        ("mig-0/mig", 3.0 / 7.0),
        ("mig-dra-0/dra", 1.0 / 7.0),
        ("serve-0/gpu", 2.0),
        ("shared-0/dra", 0.5),
        ("shared-1/dra", 0.5),
        ("ts-0/shared", 0.25),
    ]
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_exactly_what_each_pod_holds_now() {
    let h = harness(false).await;
    let (status, _) = h.get("/readyz").await;
    assert_eq!(status, 503, "not ready before the first list");
    let metrics = h
        .until("the first list", |m| !units_by_pod(m).is_empty())
        .await;
    let held = units_by_pod(&metrics);
    let expected = expected_now();
    assert_eq!(held.len(), expected.len(), "{held:?}");
    for (pod, units) in expected {
        assert!(close(held[pod], units), "{pod}: {} != {units}", held[pod]);
    }
    assert_eq!(h.get("/readyz").await.0, 200);
    assert!(
        metrics.contains("tollgate_source_up{source=\"kubernetes\"} 1"),
        "{metrics}"
    );
    // node-h100: 8 GPUs, 4 held now (chat-0 and serve-0).
    assert!(
        metrics.contains(
            "tollgate_unallocated_gpu_units{node=\"node-h100\",gpu_model=\"H100-80GB\"} 4.0"
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletions_finishes_late_claims_relabels_and_expired_watches() {
    let h = harness(false).await;
    h.until("the first list", |m| {
        units_by_pod(m).contains_key("chat-0/gpu")
    })
    .await;

    // DELETED: gone from /metrics within a reconcile, its interval kept in the ledger.
    let deleted_at = jiff::Timestamp::now().as_second();
    h.api.delete("pods", "team-a", "chat-0");
    h.until("chat-0 to leave", |m| {
        !units_by_pod(m).contains_key("chat-0/gpu")
    })
    .await;
    let view = h.view();
    let chat: Vec<_> = view
        .ledger
        .sets
        .iter()
        .flat_map(|s| s.allocations.iter().map(move |a| (s, a)))
        .filter(|(s, a)| s.names.resolve(a.pod) == "chat-0")
        .map(|(_, a)| a.interval)
        .collect();
    assert_eq!(chat.len(), 1, "{chat:?}");
    assert_eq!(
        tollgate::time::format_time(chat[0].start),
        "2026-10-31T20:00:00Z"
    );
    assert!(
        (deleted_at..deleted_at + 5).contains(&chat[0].end),
        "{chat:?} vs {deleted_at}"
    );

    // MODIFIED: ts-0 finished at a known time; its interval ends exactly there.
    let mut ts = h.api.get("pods", "team-d", "ts-0");
    ts["status"]["phase"] = json!("Succeeded");
    ts["status"]["containerStatuses"][0]["state"] = json!({"terminated": {"exitCode": 0, "finishedAt": "2026-11-10T00:00:00Z", "startedAt": "2026-11-01T00:00:00Z"}});
    h.api.apply("pods", ts);
    h.until("ts-0 to finish", |m| {
        !units_by_pod(m).contains_key("ts-0/shared")
    })
    .await;
    let ended = h
        .view()
        .ledger
        .sets
        .iter()
        .flat_map(|s| s.allocations.iter().map(move |a| (s, a)))
        .find(|(s, a)| s.names.resolve(a.pod) == "ts-0")
        .map(|(_, a)| tollgate::time::format_time(a.interval.end));
    assert_eq!(ended.as_deref(), Some("2026-11-10T00:00:00Z"));

    // A claim allocated after its pod: no DRA units until the allocation shows.
    let mut pod = h.api.get("pods", "team-e", "dra-0");
    pod["metadata"]["name"] = json!("late-0");
    pod["metadata"]["uid"] = json!("11111111-2222-4333-8444-555555555555");
    pod["status"]["resourceClaimStatuses"] =
        json!([{"name": "gpu", "resourceClaimName": "late-0-gpu-abcde"}]);
    let mut claim = h.api.get("resourceclaims", "team-e", "dra-0-gpu-x7k2p");
    claim["metadata"]["name"] = json!("late-0-gpu-abcde");
    claim["metadata"]["uid"] = json!("99999999-2222-4333-8444-555555555555");
    let allocation = claim["status"].take();
    h.api.apply("resourceclaims", claim.clone());
    h.api.apply("pods", pod);
    h.until_pod_seen("late-0").await;
    let metrics = h.until("a reconcile", |_| true).await;
    assert!(!units_by_pod(&metrics).contains_key("late-0/dra"));
    let mut allocated = claim;
    allocated["status"] = allocation;
    allocated["status"]["allocation"]["devices"]["results"][0]["device"] = json!("gpu-3");
    allocated["status"]["reservedFor"] = json!([{"resource": "pods", "name": "late-0", "uid": "11111111-2222-4333-8444-555555555555"}]);
    h.api.apply("resourceclaims", allocated);
    let metrics = h
        .until("late-0's claim", |m| {
            units_by_pod(m).contains_key("late-0/dra")
        })
        .await;
    assert!(close(units_by_pod(&metrics)["late-0/dra"], 1.0));

    // A node relabelled spot: serve-0's burn drops from 2 × 3.00 to 2 × 1.50 per hour.
    let burn = |m: &str| {
        support::metric(m, "tollgate_gpu_cost_per_hour")
            .into_iter()
            .find(|(labels, _)| support::label(labels, "pod") == "serve-0")
            .map(|(_, v)| v)
    };
    assert_eq!(burn(&metrics), Some(6.0));
    let mut node = h.api.get("nodes", "", "node-h100");
    node["metadata"]["labels"]["karpenter.sh/capacity-type"] = json!("spot");
    h.api.apply("nodes", node);
    h.until("the spot price", |m| burn(m) == Some(3.0)).await;

    // 410 Gone: watchers relist and keep going.
    h.api.expire_watches();
    let mut pod = h.api.get("pods", "team-d", "l40s-0");
    pod["metadata"]["name"] = json!("after-gone");
    pod["metadata"]["uid"] = json!("12121212-2222-4333-8444-555555555555");
    h.api.apply("pods", pod);
    h.until("a pod added after the relist", |m| {
        units_by_pod(m).contains_key("after-gone/gpu")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_without_dra_still_works() {
    let h = harness(true).await;
    let metrics = h
        .until("the first list", |m| !units_by_pod(m).is_empty())
        .await;
    let held = units_by_pod(&metrics);
    assert!(close(held["chat-0/gpu"], 2.0));
    assert!(!held.keys().any(|k| k.ends_with("/dra")), "{held:?}");
    assert_eq!(h.get("/readyz").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quota_check_prices_a_claim_template_as_the_watch_last_saw_it() {
    let h = harness(false).await;
    h.until("the first list", |m| !units_by_pod(m).is_empty())
        .await;
    // The check of a pod claiming from eight-h100, once it is priced at `want` an hour (the
    // reconciles that read the changes stepped meanwhile), or as it is after 10 s.
    let priced = |want: &'static str| {
        let h = &h;
        async move {
            let mut d = json!(null);
            for _ in 0..100 {
                h.reconciler.lock().unwrap().step();
                d = h.check_claim_template("eight-h100").await;
                if d["podPerHour"] == want {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            d
        }
    };
    // Eight H100 (its selector names them) at 3.00 an hour, whatever the pod's H200.
    let d = h.check_claim_template("eight-h100").await;
    assert_eq!(d["podPerHour"], "24.00");
    // The template is changed to ask for two: the next reconcile reads it again.
    let mut template = h.api.get("resourceclaimtemplates", "team-e", "eight-h100");
    template["spec"]["spec"]["devices"]["requests"][0]["exactly"]["count"] = json!(2);
    h.api.apply("resourceclaimtemplates", template);
    assert_eq!(priced("6.00").await["podPerHour"], "6.00");
    // Asking for 20Gi of each H100's memory, with an H100 offering 80Gi that claims may share
    // published: a quarter of each, 2 × 0.75 = 1.50 (before the slice: whole, 6.00).
    let mut template = h.api.get("resourceclaimtemplates", "team-e", "eight-h100");
    template["spec"]["spec"]["devices"]["requests"][0]["exactly"]["capacity"] =
        json!({"requests": {"memory": "20Gi"}});
    h.api.apply("resourceclaimtemplates", template);
    h.api.apply(
        "resourceslices",
        json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
            "metadata": {"name": "node-share-gpu.nvidia.com"},
            "spec": {"driver": "gpu.nvidia.com", "nodeName": "node-share",
                "pool": {"generation": 1, "name": "node-share", "resourceSliceCount": 1},
                "devices": [{"name": "gpu-0", "allowMultipleAllocations": true,
                    "attributes": {"type": {"string": "gpu"},
                                   "productName": {"string": "NVIDIA H100 80GB HBM3"}},
                    "capacity": {"memory": {"value": "80Gi"}}}]}}),
    );
    assert_eq!(priced("1.50").await["podPerHour"], "1.50");
    // Deleted: the claim is one GPU of the pod's H200 (8.00), and the answer says why.
    h.api
        .delete("resourceclaimtemplates", "team-e", "eight-h100");
    let d = priced("8.00").await;
    assert_eq!(d["podPerHour"], "8.00");
    assert_eq!(
        d["warnings"],
        json!([
            "ResourceClaimTemplate team-e/eight-h100 is not known to Tollgate: the claim is counted as one GPU"
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quota_check_prices_a_node_pool_as_the_watch_last_saw_its_nodes() {
    // A pod of one `nvidia.com/gpu` selecting the node pool `pool=inference`: no node is in it
    // at first (the card's costliest, H200 at 8.00); node-l40s is labelled into it (its L40S,
    // 2.00); tainted, then not; then it is deleted (8.00 again).
    let h = harness(false).await;
    h.until("the first list", |m| !units_by_pod(m).is_empty())
        .await;
    let pod = json!({"nodeSelector": {"pool": "inference"},
        "containers": [{"name": "server", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]});
    let priced = |want: &'static str| {
        let pod = pod.clone();
        let h = &h;
        async move {
            let mut d = json!(null);
            for _ in 0..100 {
                h.reconciler.lock().unwrap().step();
                d = h.check_pod(pod.clone()).await;
                if d["podPerHour"] == want {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            d
        }
    };
    let d = priced("8.00").await;
    assert_eq!(d["podPerHour"], "8.00", "{d}");
    let mut node = h.api.get("nodes", "", "node-l40s");
    node["metadata"]["labels"]["pool"] = json!("inference");
    h.api.apply("nodes", node);
    let d = priced("2.00").await;
    assert_eq!(d["podPerHour"], "2.00", "{d}");
    assert_eq!(
        d["warnings"],
        json!([
            "priced as L40S-48GB (on-demand), the GPU of the GPU node its node name, selector, affinity and tolerations allow now: a node made later may hold another"
        ])
    );
    // Tainted for training, a taint the pod does not tolerate: no node of the pool takes it
    // (8.00); the taint removed, node-l40s does again (2.00). The watch keeps a node's taints.
    let mut node = h.api.get("nodes", "", "node-l40s");
    node["spec"]["taints"] =
        json!([{"key": "dedicated", "value": "training", "effect": "NoSchedule"}]);
    h.api.apply("nodes", node.clone());
    let d = priced("8.00").await;
    assert_eq!(d["podPerHour"], "8.00", "{d}");
    node["spec"]["taints"] = json!([]);
    h.api.apply("nodes", node);
    let d = priced("2.00").await;
    assert_eq!(d["podPerHour"], "2.00", "{d}");
    h.api.delete("nodes", "", "node-l40s");
    let d = priced("8.00").await;
    assert_eq!(d["podPerHour"], "8.00", "{d}");
}
