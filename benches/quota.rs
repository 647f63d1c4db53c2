//! The quota decision in-process (issue #5; target ≥ 100,000 decisions per second).
//!
//! On the demo fleet (209 GPUs, 35 days of history, budgets on every cost center): the pure
//! decision on a priced pod; a whole check of a GPU count (pricing, reservation lock, decision);
//! and a whole check of a Kyverno body carrying a Pod (JSON parsing included): one pinned to its
//! GPU by a node selector, and one saying nothing of where it runs, asking for MIG devices (priced
//! as the costliest GPU of the card cut into their profile).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tollgate::budget::{OtherClusters, QuotaInput, RawBudget, Usage, decide, validate_budgets};
use tollgate::config::QuotaSettings;
use tollgate::pricing::RateCard;
use tollgate::serve::{CheckRequest, Feed, QuotaGate, Subject, View, read_once};
use tollgate::source::DemoFleet;
use tollgate::time::parse_time;

const KYVERNO_BODY: &str = r#"{"dryRun":true,"namespace":"inference-chat","pod":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"chat-llama-70b-7d9f","namespace":"inference-chat","labels":{"app":"chat-llama-70b","workload-type":"inference"}},"spec":{"nodeSelector":{"nvidia.com/gpu.product":"NVIDIA-H100-80GB-HBM3"},"initContainers":[{"name":"metrics-proxy","image":"registry.internal/metrics-proxy:1.4","restartPolicy":"Always"}],"containers":[{"name":"server","image":"vllm/vllm-openai:v0.11.0","env":[{"name":"MODEL_NAME","value":"llama-3.1-70b"}],"resources":{"requests":{"cpu":"8","memory":"64Gi","nvidia.com/gpu":"2"},"limits":{"memory":"128Gi","nvidia.com/gpu":"2"}}}]}}}
"#;

/// A pod naming no GPU, asking for two 1g.10gb MIG devices.
const MIG_BODY: &str = r#"{"dryRun":true,"namespace":"inference-chat","pod":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"embed-7d9f","namespace":"inference-chat"},"spec":{"containers":[{"name":"server","image":"vllm/vllm-openai:v0.11.0","resources":{"limits":{"nvidia.com/mig-1g.10gb":"2"}}}]}}}
"#;

fn setup() -> (Arc<View>, Arc<RateCard>, QuotaGate) {
    let as_of = parse_time("2026-11-20T12:00:00Z").expect("a time");
    let card = Arc::new(RateCard::builtin());
    let feed = Feed::Snapshot {
        objects: Box::new(DemoFleet::new(1, as_of).objects()),
        as_of: Some(as_of),
    };
    let view = read_once(feed, card.clone(), "cost-center");
    let budgets: Vec<RawBudget> = ["cc-100", "cc-110", "cc-200", "cc-300", "cc-400", "cc-500"]
        .iter()
        .map(|cc| RawBudget {
            cost_center: Some(cc.to_string()),
            monthly: Some("1000000.00".into()),
            max_gpus: Some("500".into()),
            warn_at: Some("0.8".into()),
            ..RawBudget::default()
        })
        .chain(std::iter::once(RawBudget {
            namespace: Some("inference-chat".into()),
            monthly: Some("900000.00".into()),
            ..RawBudget::default()
        }))
        .collect();
    let gate = QuotaGate::new(
        validate_budgets(&budgets).expect("valid"),
        QuotaSettings::default(),
        "cost-center".into(),
    );
    (view, card, gate)
}

fn quota(c: &mut Criterion) {
    let (view, card, gate) = setup();
    let mut group = c.benchmark_group("quota");
    group.throughput(Throughput::Elements(1));

    let count = CheckRequest {
        namespace: "inference-chat".into(),
        subject: Subject::Gpus {
            gpus: 2.into(),
            gpu_model: Some("NVIDIA-H100-80GB-HBM3".into()),
        },
        cost_center: None,
        dry_run: true,
    };
    let prospect_budgets = validate_budgets(&[RawBudget {
        cost_center: Some("cc-100".into()),
        monthly: Some("25000.00".into()),
        max_gpus: Some("16".into()),
        ..RawBudget::default()
    }])
    .expect("valid");
    let prospect = tollgate::budget::prospect_from_count(
        2.into(),
        Some("NVIDIA-H100-80GB-HBM3"),
        &tollgate::budget::ProspectContext {
            namespace: "inference-chat",
            namespace_meta: view.namespaces.get("inference-chat"),
            cost_center: None,
            cost_center_key: "cost-center",
            card: &card,
            at: view.as_of,
            claims: &view.claim_asks,
            live: &view.live,
            nodes: &view.nodes,
            placements: &view.placements,
        },
    )
    .expect("priced");
    let others = OtherClusters::default();
    group.bench_function("decide", |b| {
        b.iter(|| {
            decide(QuotaInput {
                prospect: black_box(&prospect),
                spend: &view.spend,
                reserved: (Usage::default(), Usage::default()),
                budgets: &prospect_budgets,
                currency: card.currency(),
                rounding: card.rounding(),
                stale: false,
                others: &others,
            })
        })
    });
    group.bench_function("check_gpus", |b| {
        b.iter(|| {
            gate.check(&view, &card, black_box(&count))
                .expect("decided")
        })
    });
    group.bench_function("check_kyverno_pod_body", |b| {
        b.iter(|| {
            let request =
                tollgate::serve::quota_request(black_box(KYVERNO_BODY.as_bytes())).expect("a body");
            gate.check(&view, &card, &request).expect("decided")
        })
    });
    group.bench_function("check_mig_pod_body", |b| {
        b.iter(|| {
            let request =
                tollgate::serve::quota_request(black_box(MIG_BODY.as_bytes())).expect("a body");
            gate.check(&view, &card, &request).expect("decided")
        })
    });
    group.finish();
}

criterion_group!(benches, quota);
criterion_main!(benches);
