//! The admission gate never panics: thousands of arbitrary quota bodies, AdmissionReviews,
//! Kubernetes quantities and rate cards, each decided (or refused with an error) by the real
//! parsers and the real gate over the fixture snapshot, with budgets on the namespaces and cost
//! centers the bodies name.

use crate::support;

use std::sync::{Arc, OnceLock};

use proptest::prelude::*;
use serde_json::{Value, json};
use tollgate::budget::validate_budgets;
use tollgate::config::Settings;
use tollgate::pricing::RateCard;
use tollgate::serve::{QuotaGate, View, admission_review, quota_request, read_once};

const CASES: u32 = 3000;

/// The fixture's view, the fixture card and one at the highest price a card takes, and a
/// gate with the fixture's budgets plus one that nearly anything overflows against.
fn world() -> &'static (Arc<View>, [RateCard; 2], QuotaGate) {
    static WORLD: OnceLock<(Arc<View>, [RateCard; 2], QuotaGate)> = OnceLock::new();
    WORLD.get_or_init(|| {
        let card = Arc::new(support::fixture_card());
        let view = read_once(support::fixture_feed(), card, "cost-center");
        let huge = RateCard::parse(
            "currency = \"USD\"\n[[gpu]]\nmodel = \"H100\"\nmatch = [\"h100\"]\non_demand = \"1000000000000\"\n",
            "huge.toml",
        )
        .unwrap();
        let mut settings =
            Settings::load(Some(std::path::Path::new("tests/fixtures/quota/budgets.toml"))).unwrap();
        settings.budget.push(tollgate::budget::RawBudget {
            namespace: Some("team-c".into()),
            monthly: Some("79228162514264337593543950335".into()),
            max_gpus: Some("79228162514264337593543950335".into()),
            warn_at: Some("0.99".into()),
            ..Default::default()
        });
        let gate = QuotaGate::new(
            validate_budgets(&settings.budget).unwrap(),
            settings.quota.clone(),
            "cost-center".into(),
        );
        (view, [support::fixture_card(), huge], gate)
    })
}

/// Quantities as people and attackers write them: plain, fractional, suffixed, exponents at
/// and past `Decimal`'s range, negative, and arbitrary text.
fn quantity() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,3}",
        "[0-9]{1,40}",
        "-?[0-9]{1,20}\\.[0-9]{1,30}",
        "-?[0-9]{1,6}(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)",
        "[0-9]{1,4}[eE][+-]?[0-9]{1,3}",
        Just("1e27".to_string()),
        Just("79228162514264337593543950335".to_string()),
        Just("0.0000000000000000000000000001".to_string()),
        "\\PC{0,16}",
    ]
}

fn resource() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("nvidia.com/gpu".to_string()),
        Just("nvidia.com/gpu.shared".to_string()),
        Just("nvidia.com/mig-1g.10gb".to_string()),
        Just("nvidia.com/mig-7g.80gb".to_string()),
        Just("nvidia.com/mig-xg.1gb".to_string()),
        Just("amd.com/gpu".to_string()),
        Just("amd.com/cpx_nps4".to_string()),
        Just("cpu".to_string()),
        Just("memory".to_string()),
        "[a-z.]{1,10}/[a-z0-9-]{1,10}",
    ]
}

fn namespace() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("team-a".to_string()),
        Just("team-c".to_string()),
        Just("team-e".to_string()),
        "[a-z0-9-]{0,12}",
    ]
}

/// A pod as Kyverno's `request.object` or an AdmissionReview carries it.
fn pod() -> impl Strategy<Value = Value> {
    let resources = || proptest::collection::btree_map(resource(), quantity(), 0..4);
    (
        proptest::collection::vec((resources(), resources()), 1..3),
        proptest::option::of(
            "(NVIDIA-H100-80GB-HBM3|NVIDIA-H200|nvidia-a100-sxm-80gb|\\PC{0,10})",
        ),
        0usize..3,
        proptest::option::of("[a-z0-9-]{0,10}"),
        proptest::option::of("[a-z0-9-]{0,10}"),
    )
        .prop_map(|(containers, product, claims, name, cost_center)| {
            let containers: Vec<Value> = containers
                .into_iter()
                .enumerate()
                .map(|(i, (limits, requests))| {
                    json!({"name": format!("c{i}"), "resources": {"limits": limits, "requests": requests}})
                })
                .collect();
            let claims: Vec<Value> = (0..claims)
                .map(|i| json!({"name": format!("g{i}"), "resourceClaimTemplateName": "gpu"}))
                .collect();
            let mut pod = json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "annotations": {"cost-center": cost_center}},
                "spec": {"containers": containers, "resourceClaims": claims}});
            if let Some(product) = product {
                pod["spec"]["nodeSelector"] = json!({"nvidia.com/gpu.product": product});
            }
            pod
        })
}

/// `gpus` as a number, a decimal string or something else.
fn gpus() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        quantity().prop_map(|q| json!(q)),
        Just(json!(null)),
        Just(json!([1])),
    ]
}

fn decide_any(body: &[u8], card: usize, admission: bool) {
    let (view, cards, gate) = world();
    let request = if admission {
        match admission_review(body) {
            Ok(tollgate::serve::Review::Check { request, .. }) => request,
            _ => return,
        }
    } else {
        match quota_request(body) {
            Ok(request) => request,
            Err(_) => return,
        }
    };
    // Allowed, denied or refused with an error: anything but a panic.
    let _ = gate.check(view, &cards[card], &request);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn quantities_parse_or_say_why(text in quantity()) {
        let _ = tollgate::quantity::parse_quantity(&text);
    }

    #[test]
    fn quota_counts_are_decided_or_refused(
        namespace in namespace(),
        gpus in gpus(),
        model in proptest::option::of("(H100|NVIDIA H200|\\PC{0,8})"),
        cost_center in proptest::option::of("(cc-100|cc-400|burst|\\PC{0,8})"),
        dry_run in any::<bool>(),
        card in 0usize..2,
    ) {
        let body = json!({"namespace": namespace, "gpus": gpus, "gpuModel": model,
            "costCenter": cost_center, "dryRun": dry_run});
        decide_any(body.to_string().as_bytes(), card, false);
    }

    #[test]
    fn quota_pods_are_decided_or_refused(
        namespace in namespace(), pod in pod(), dry_run in any::<bool>(), card in 0usize..2,
    ) {
        let body = json!({"namespace": namespace, "pod": pod, "dryRun": dry_run});
        decide_any(body.to_string().as_bytes(), card, false);
    }

    #[test]
    fn admission_reviews_are_decided_or_refused(
        namespace in namespace(),
        pod in pod(),
        operation in "(CREATE|UPDATE|DELETE|CONNECT|\\PC{0,6})",
        uid in "\\PC{0,36}",
        dry_run in any::<bool>(),
        card in 0usize..2,
    ) {
        let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "namespace": namespace, "operation": operation, "object": pod, "dryRun": dry_run}});
        decide_any(review.to_string().as_bytes(), card, true);
    }

    #[test]
    fn arbitrary_bytes_are_refused(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        decide_any(&body, 0, false);
        decide_any(&body, 0, true);
    }

    #[test]
    fn rate_cards_load_or_name_file_and_line(
        price in quantity(),
        model in "\\PC{0,12}",
        matches in proptest::collection::vec("\\PC{0,10}", 0..3),
        memory in any::<i64>(),
        slices in any::<i64>(),
        fraction in quantity(),
        from in "\\PC{0,24}",
    ) {
        let text = format!(
            "currency = \"USD\"\n[[gpu]]\nmodel = {model:?}\nmatch = {matches:?}\nmemory_gb = {memory}\nmig_slices = {slices}\non_demand = {price:?}\nfrom = {from:?}\n[gpu.mig]\n\"1g.10gb\" = {fraction:?}\n"
        );
        if let Ok(card) = RateCard::parse(&text, "prop.toml") {
            let _ = card.digest();
            for product in ["NVIDIA H100", "A100-SXM4-40GB-MIG-1g.5gb", &model] {
                let _ = card.explain(product);
                let _ = card.mig_fraction(product, "1g.10gb");
            }
        }
    }
}
