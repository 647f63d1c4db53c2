//! Budgets and the quota gate on the fixture snapshot as of 2026-11-02T00:00:00Z, with the
//! budgets of `tests/fixtures/quota/budgets.toml`. November 2 to December 1 is 29 days: 696 hours
//! left. Month-to-date spend and current burn come from the fixture (see `report_cli.rs`):
//! cc-100 spent 168.00 and burns 6.00/h (chat-0: 2 H100 at 3.00); cc-150 spent 36.00, burns
//! 6.00/h; team-d (cc-400) holds 2.25 GPUs (ts-0 ¼, l40s-0 1, colo-0 1); team-e spent
//! 507.428571… and burns 25.142857…/h (8 + 4 + 4 + 8 + 8/7); H200 costs 8.00, H100 3.00.

use crate::support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::sync::watch;
use tollgate::budget::validate_budgets;
use tollgate::config::{FailMode, Settings};
use tollgate::pricing::RateCard;
use tollgate::serve::{CheckRequest, QuotaGate, Subject, View, read_once, router};
use tower::ServiceExt;

fn quota(args: &[&str]) -> (i32, Value, String) {
    quota_priced("tests/fixtures/rates.toml", args)
}

/// `tollgate quota` on the fixture snapshot and budgets as of 2026-11-02, priced by `card`.
fn quota_priced(card: &str, args: &[&str]) -> (i32, Value, String) {
    quota_on(Path::new(FIXTURE), card, args)
}

const FIXTURE: &str = "tests/fixtures/snapshot";

/// [`quota_priced`] on `snapshot` (a copy of the fixture's, changed).
fn quota_on(snapshot: &Path, card: &str, args: &[&str]) -> (i32, Value, String) {
    let snapshot = snapshot.to_str().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["quota", "--snapshot", snapshot, "--pricing", card])
        .args([
            "--config",
            "tests/fixtures/quota/budgets.toml",
            "--as-of",
            "2026-11-02",
        ])
        .args(args)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (
        output.status.code().unwrap(),
        json,
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// [`quota`] of a pod named `p` in team-e with `spec`, written to a file for `--pod`.
fn team_e_pod_quota(spec: Value) -> (i32, Value, String) {
    team_e_pod_quota_on(Path::new(FIXTURE), spec)
}

/// [`team_e_pod_quota`] on `snapshot`.
fn team_e_pod_quota_on(snapshot: &Path, spec: Value) -> (i32, Value, String) {
    team_e_pod_quota_priced(snapshot, Path::new("tests/fixtures/rates.toml"), spec)
}

/// [`team_e_pod_quota_on`], priced by `card`.
fn team_e_pod_quota_priced(snapshot: &Path, card: &Path, spec: Value) -> (i32, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let pod = dir.path().join("pod.json");
    let pod_json = json!({"metadata": {"name": "p"}, "spec": spec});
    std::fs::write(&pod, pod_json.to_string()).unwrap();
    let args = ["--namespace", "team-e", "--pod", pod.to_str().unwrap()];
    quota_on(snapshot, card.to_str().unwrap(), &args)
}

#[test]
fn over_budget_is_denied_with_the_figures() {
    // 168 + (6.00 + 2 × 3.00) × 696 = 8520.00 > 5000.00.
    let (code, d, stderr) = quota(&[
        "--namespace",
        "team-a",
        "--gpus",
        "2",
        "--gpu-model",
        "NVIDIA-H100-80GB-HBM3",
    ]);
    assert_eq!(code, 3);
    assert_eq!(
        stderr,
        "denied: cost center cc-100 would reach 8520.00 USD of its 5000.00 USD monthly budget\n"
    );
    assert_eq!(
        d,
        json!({"allowed": false, "message": "cost center cc-100 would reach 8520.00 USD of its 5000.00 USD monthly budget",
            "warnings": [], "costCenter": "cc-100", "currency": "USD", "budget": "5000.00", "spent": "168.00",
            "burnPerHour": "6.00", "podPerHour": "6.00", "projected": "8520.00", "headroom": "-3520.00",
            "unitsHeld": "2", "maxUnits": null, "asOf": "2026-11-02T00:00:00Z", "stale": false})
    );
}

#[test]
fn a_pod_cannot_name_the_unallocated_capacity_as_its_cost_center() {
    // team-a's namespace annotation says cc-100. A pod annotated `__unallocated__` was
    // checked against no budget (allowed) and charged as capacity nobody held; it is cc-100's:
    // 168 + (6.00 + 2 × 3.00) × 696 = 8520.00 > 5000.00, denied, and the answer says why.
    let dir = tempfile::tempdir().unwrap();
    let pod = dir.path().join("pod.json");
    std::fs::write(
        &pod,
        json!({"metadata": {"name": "sly", "annotations": {"cost-center": "__unallocated__"}},
            "spec": {"nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
                     "containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": "2"}}}]}})
        .to_string(),
    )
    .unwrap();
    let (code, d, _) = quota(&["--namespace", "team-a", "--pod", pod.to_str().unwrap()]);
    assert_eq!(code, 3, "{d}");
    assert_eq!(d["costCenter"], "cc-100");
    assert_eq!(d["projected"], "8520.00");
    assert_eq!(
        d["warnings"],
        json!([
            "pod team-a/sly: cost-center=__unallocated__ (pod-annotation) names the capacity \
                no pod holds, not a cost center; it is charged to cc-100 (namespace-annotation)"
        ])
    );
}

#[test]
fn a_decision_at_midnight_spends_the_month_that_begins() {
    // SPEC §5: the month that contains as-of. At 2026-12-01T00:00Z that is December: nothing
    // spent yet (November's 168.00 and more stay November's), and all of its 31 × 24 = 744 hours
    // ahead: (6.00 burning + 2 × 3.00 for the pod) × 744 = 8928.00.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["quota", "--snapshot", "tests/fixtures/snapshot"])
        .args(["--pricing", "tests/fixtures/rates.toml"])
        .args(["--config", "tests/fixtures/quota/budgets.toml"])
        .args([
            "--as-of",
            "2026-12-01",
            "--namespace",
            "team-a",
            "--gpus",
            "2",
        ])
        .args(["--gpu-model", "NVIDIA-H100-80GB-HBM3"])
        .output()
        .unwrap();
    let d: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(d["spent"], "0.00", "{d}");
    assert_eq!(d["projected"], "8928.00", "{d}");
    assert_eq!(d["asOf"], "2026-12-01T00:00:00Z");
}

#[test]
fn near_the_budget_warns_at_warn_at() {
    // 168 + (6.00 + ¼ × 3.00) × 696 = 4866.00: allowed, past 80 % of 5000.00.
    let (code, d, _) = quota(&[
        "--namespace",
        "team-a",
        "--gpus",
        "0.25",
        "--gpu-model",
        "H100",
    ]);
    assert_eq!(code, 0);
    assert_eq!(d["projected"], "4866.00");
    assert_eq!(d["headroom"], "134.00");
    assert_eq!(
        d["warnings"],
        json!([
            "cost center cc-100 is projected to spend 4866.00 USD, 97% of its 5000.00 USD monthly budget"
        ])
    );
    assert_eq!(
        d["message"],
        "cost center cc-100 is projected at 4866.00 USD of its 5000.00 USD monthly budget"
    );
}

#[test]
fn the_gpu_cap_counts_fractions() {
    // team-d holds 2.25 GPUs; 1.75 more reaches the cap of 4 exactly, 2 more passes it.
    let (code, d, _) = quota(&[
        "--namespace",
        "team-d",
        "--gpus",
        "1.75",
        "--gpu-model",
        "NVIDIA-L40S",
    ]);
    assert_eq!(
        (code, d["unitsHeld"].as_str(), d["maxUnits"].as_str()),
        (0, Some("2.25"), Some("4"))
    );
    let (code, d, _) = quota(&[
        "--namespace",
        "team-d",
        "--gpus",
        "2",
        "--gpu-model",
        "NVIDIA-L40S",
    ]);
    assert_eq!(code, 3);
    assert_eq!(
        d["message"],
        "cost center cc-400 would hold 4.25 GPUs, over its limit of 4"
    );
}

#[test]
fn both_budgets_must_pass_and_unknown_models_are_priced_as_the_costliest() {
    // cc-500's 100000.00 passes; namespace team-e's does not: 507.428571… + (25.142857… + 8.00) × 696.
    let (code, d, _) = quota(&["--namespace", "team-e", "--gpus", "1"]);
    assert_eq!(code, 3);
    assert_eq!(
        d["message"],
        "namespace team-e would reach 23574.86 USD of its 20000.00 USD monthly budget"
    );
    assert_eq!(d["podPerHour"], "8.00");
    assert_eq!(
        d["warnings"],
        json!([
            "its GPU model is not known before scheduling: priced as H200-141GB, the most expensive in the rate card"
        ])
    );
}

#[test]
fn a_dra_claim_pod_counts_its_claims() {
    // Two claims from template single-h200 (one H200 each): 2 GPUs at 8.00 = 16.00/h;
    // 507.428571… + (25.142857… + 16) × 696 = 29142.86.
    let (code, d, _) = quota(&[
        "--namespace",
        "team-e",
        "--pod",
        "tests/fixtures/quota/dra-pod.yaml",
    ]);
    assert_eq!(code, 3);
    assert_eq!(d["podPerHour"], "16.00");
    assert_eq!(d["projected"], "29142.86");
    assert_eq!(d["warnings"], json!([]));
}

/// A quota check's pod and what it should get.
type Case<'a> = (&'a str, Option<&'a str>, i32, &'a str, &'a str, Value);

/// A pod in team-e whose claims are `claims` (YAML flow entries), pinned to `product` if given.
fn claim_pod(dir: &std::path::Path, claims: &str, product: Option<&str>) -> String {
    let selector = product
        .map(|p| format!("  nodeSelector: {{nvidia.com/gpu.product: {p}}}\n"))
        .unwrap_or_default();
    let file = dir.join(format!(
        "pod-{}.yaml",
        std::fs::read_dir(dir).unwrap().count()
    ));
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: asks, namespace: team-e}}\nspec:\n{selector}  \
         resourceClaims: [{claims}]\n  containers: [{{name: c, image: x}}]\n"
    );
    std::fs::write(&file, pod).unwrap();
    file.to_str().unwrap().to_string()
}

#[test]
fn a_pod_s_claims_are_priced_for_the_devices_their_requests_ask_for() {
    // team-e's namespace budget is 20000.00: spent 3552/7, burn 176/7 an hour, 696 hours left,
    // so projected = 3552/7 + (176/7 + pod) × 696 = 126048/7 + 696 × pod (18006.857142…).
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let check = |claims: &str, product: Option<&str>| {
        let pod = claim_pod(dir, claims, product);
        quota(&["--namespace", "team-e", "--pod", &pod])
    };
    // (claims, the pod's product, exit code, podPerHour, projected, warnings)
    let cases: [Case<'_>; 8] = [
        // Eight H100 (its selector names the model) at 3.00: 24.00/h; 18006.857142 + 16704.
        (
            "{name: gpus, resourceClaimTemplateName: eight-h100}",
            None,
            3,
            "24.00",
            "34710.86",
            json!([
                "ResourceClaimTemplate team-e/eight-h100, request gpus: priced as H100-80GB, which its selectors name"
            ]),
        ),
        // Two GPUs of the pod's A100-40GB at 2.80; the channel is no GPU; admin access takes
        // none: 5.60/h; 18006.857142 + 3897.60.
        (
            "{name: gpus, resourceClaimTemplateName: two-gpus-and-a-channel}",
            Some("NVIDIA-A100-SXM4-40GB"),
            3,
            "5.60",
            "21904.46",
            json!([
                "ResourceClaimTemplate team-e/two-gpus-and-a-channel, request watch: admin access to devices in use by others; it takes none"
            ]),
        ),
        // A 3g.20gb slice of an A100-40GB: 3/7 × 2.80 = 1.20/h; 18006.857142 + 835.20.
        (
            "{name: slice, resourceClaimTemplateName: one-slice}",
            Some("NVIDIA-A100-SXM4-40GB"),
            0,
            "1.20",
            "18842.06",
            json!([]),
        ),
        // A 1g.5gb slice (0.40/h) or two whole A100-40GB (5.60/h): the costlier.
        (
            "{name: any, resourceClaimTemplateName: slice-or-two-gpus}",
            Some("NVIDIA-A100-SXM4-40GB"),
            3,
            "5.60",
            "21904.46",
            json!([
                "ResourceClaimTemplate team-e/slice-or-two-gpus, request accelerator: priced as the costliest of its 2 alternatives"
            ]),
        ),
        // Shared-kv is allocated one H200 and held by two running pods of team-e (cc-500): a
        // third's share is 8/3 an hour, at the H200 it was given whatever the pod's L4
        // selector, and each holder's share falls from 4.00 to 8/3, so team-e pays 8.00 an hour
        // for it before and after: the pod adds nothing, 18006.857142 + 0. (Before: 2.67 added,
        // 19862.86.)
        (
            "{name: kv, resourceClaimName: shared-kv}",
            Some("NVIDIA-L4"),
            0,
            "0.00",
            "18006.86",
            json!([
                "ResourceClaim team-e/shared-kv is allocated and held by 2 running pod(s): this pod's share is 1/3 of the 1 GPU(s) it holds",
                "namespace team-e's running pods sharing its claims pay 2.67 USD an hour less once this pod shares them: it adds 0.00 USD an hour to namespace team-e's burn",
                "cost center cc-500's running pods sharing its claims pay 2.67 USD an hour less once this pod shares them: it adds 0.00 USD an hour to cost center cc-500's burn"
            ]),
        ),
        // Mig-claim was allocated a 1g slice of an H200 (1/7 × 8.00), held by one pod of
        // team-e: half of it is 4/7 an hour, which that pod stops paying; 18006.857142 + 0.
        // (Before: 4/7 added, 126048/7 + 2784/7 = 18404.57.)
        (
            "{name: kv, resourceClaimName: mig-claim}",
            Some("NVIDIA-L4"),
            0,
            "0.00",
            "18006.86",
            json!([
                "ResourceClaim team-e/mig-claim is allocated and held by 1 running pod(s): this pod's share is 1/2 of the 0.1429 GPU(s) it holds",
                "namespace team-e's running pods sharing its claims pay 0.57 USD an hour less once this pod shares them: it adds 0.00 USD an hour to namespace team-e's burn",
                "cost center cc-500's running pods sharing its claims pay 0.57 USD an hour less once this pod shares them: it adds 0.00 USD an hour to cost center cc-500's burn"
            ]),
        ),
        // Every GPU of a node: the largest offers 8, at H200's 8.00; and a NIC of a class
        // Tollgate does not know, counted as a GPU: 9 × 8.00 = 72.00/h; 18006.857142 + 50112.
        (
            "{name: all, resourceClaimTemplateName: every-gpu}",
            Some("NVIDIA H200"),
            3,
            "72.00",
            "68118.86",
            json!([
                "ResourceClaimTemplate team-e/every-gpu, request all: allocationMode All takes every matching device of its node; counted as 8, the most GPUs a node offers",
                "ResourceClaimTemplate team-e/every-gpu, request nic: device class rdma.example.com is not one Tollgate knows as a GPU's (gpu.nvidia.com, mig.nvidia.com, gpu.amd.com); each device counted as one GPU"
            ]),
        ),
        // A template Tollgate has not seen: one GPU of the pod's model (L4-24GB, 0.80/h);
        // 18006.857142 + 556.80.
        (
            "{name: x, resourceClaimTemplateName: not-there}",
            Some("NVIDIA-L4"),
            0,
            "0.80",
            "18563.66",
            json!([
                "ResourceClaimTemplate team-e/not-there is not known to Tollgate: the claim is counted as one GPU"
            ]),
        ),
    ];
    for (claims, product, code, per_hour, projected, warnings) in cases {
        let (got, d, stderr) = check(claims, product);
        assert_eq!(got, code, "{claims}: {d} {stderr}");
        assert_eq!(d["podPerHour"], per_hour, "{claims}");
        assert_eq!(d["projected"], projected, "{claims}");
        assert_eq!(d["warnings"], warnings, "{claims}");
    }
    // The same pod paid for by cc-100, which holds none of shared-kv: cc-100 takes on the
    // whole third, 8/3 an hour: 168 + (6.00 + 8/3) × 696 = 6200.00 > 5000.00, refused; team-e,
    // whose pods hold the rest, adds nothing.
    let pod = claim_pod(
        dir,
        "{name: kv, resourceClaimName: shared-kv}",
        Some("NVIDIA-L4"),
    );
    let (got, d, _) = quota(&[
        "--namespace",
        "team-e",
        "--cost-center",
        "cc-100",
        "--pod",
        &pod,
    ]);
    assert_eq!(
        (got, &d["podPerHour"], &d["projected"], &d["message"]),
        (
            3,
            &json!("2.67"),
            &json!("6200.00"),
            &json!("cost center cc-100 would reach 6200.00 USD of its 5000.00 USD monthly budget")
        )
    );
    assert_eq!(
        d["warnings"][1],
        "namespace team-e's running pods sharing its claims pay 2.67 USD an hour less once this pod shares them: it adds 0.00 USD an hour to namespace team-e's burn"
    );
}

#[test]
fn a_claim_for_part_of_a_gpu_s_capacity_is_priced_as_its_share_of_a_gpu_that_offers_it() {
    // The fixture with two GPUs claims may share (KEP-5075 `allowMultipleAllocations`): an
    // H100 offering 80Gi of memory (3.00 an hour) and an L40S offering 48Gi (2.00). Templates
    // asking for part of a GPU's memory; team-e: 126048/7 + 696 × podPerHour.
    let dir = fixture_copy();
    let gpu = |name: &str, product: &str, memory: &str| {
        json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
            "metadata": {"name": format!("{name}-gpu.nvidia.com")},
            "spec": {"driver": "gpu.nvidia.com", "nodeName": name,
                "pool": {"generation": 1, "name": name, "resourceSliceCount": 1},
                "devices": [{"name": "gpu-0", "allowMultipleAllocations": true,
                    "attributes": {"type": {"string": "gpu"}, "productName": {"string": product}},
                    "capacity": {"memory": {"value": memory}}}]}})
    };
    add_items(
        dir.path(),
        "resourceslices.json",
        &[
            gpu("node-share-h100", "NVIDIA H100 80GB HBM3", "80Gi"),
            gpu("node-share-l40s", "NVIDIA L40S", "48Gi"),
        ],
    );
    let template = |name: &str, memory: &str, selector: Option<&str>| {
        let selectors: Vec<Value> = selector
            .map(|product| {
                json!({"cel": {"expression":
                format!("device.attributes[\"gpu.nvidia.com\"].productName == '{product}'")}})
            })
            .into_iter()
            .collect();
        json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate",
            "metadata": {"name": name, "namespace": "team-e"},
            "spec": {"spec": {"devices": {"requests": [{"name": "part", "exactly": {
                "deviceClassName": "gpu.nvidia.com", "selectors": selectors,
                "capacity": {"requests": {"memory": memory}}}}]}}}})
    };
    add_items(
        dir.path(),
        "resourceclaimtemplates.json",
        &[
            template("memory-20gi", "20Gi", None),
            template("h100-20gi", "20Gi", Some("NVIDIA H100 80GB HBM3")),
            template("memory-60gi", "60Gi", None),
            template("memory-96gi", "96Gi", None),
        ],
    );
    let check = |template: &str| {
        let spec = json!({"resourceClaims": [{"name": "part", "resourceClaimTemplateName": template}],
            "containers": [{"name": "c", "resources": {"claims": [{"name": "part"}]}}]});
        team_e_pod_quota_on(dir.path(), spec)
    };
    let priced = |share: &str, model: &str, template: &str| {
        format!(
            "ResourceClaimTemplate team-e/{template}, request part: it asks for part of a device's capacity: priced as {share} of a {model}, its share of the costliest GPU claims may share that offers it now"
        )
    };
    // (template, exit code, podPerHour, projected, warnings)
    let cases = [
        // 20Gi: a quarter of the H100 (0.75) or 5/12 of the L40S (0.8333…), the costlier:
        // 18006.857142 + 696 × 5/6 = 18586.86, allowed.
        (
            "memory-20gi",
            0,
            "0.83",
            "18586.86",
            json!([priced("0.4167", "L40S-48GB", "memory-20gi")]),
        ),
        // Its selector names the H100: a quarter of it, 0.75; 18006.857142 + 522.
        (
            "h100-20gi",
            0,
            "0.75",
            "18528.86",
            json!([
                "ResourceClaimTemplate team-e/h100-20gi, request part: priced as H100-80GB, which its selectors name",
                priced("0.25", "H100-80GB", "h100-20gi")
            ]),
        ),
        // 60Gi: more than the L40S offers; three quarters of the H100, 2.25; + 1566.
        (
            "memory-60gi",
            0,
            "2.25",
            "19572.86",
            json!([priced("0.75", "H100-80GB", "memory-60gi")]),
        ),
        // 96Gi: no GPU offers it: a whole GPU of the pod's model, the card's costliest (the
        // H200, 8.00), as before; + 5568 = 23574.86, refused.
        (
            "memory-96gi",
            3,
            "8.00",
            "23574.86",
            json!([
                "its GPU model is not known before scheduling: priced as H200-141GB, the most expensive in the rate card",
                "ResourceClaimTemplate team-e/memory-96gi, request part: it asks for part of a device's capacity, and no GPU that claims may share offers it now; counted as whole devices"
            ]),
        ),
    ];
    // Before, each was a whole GPU: the H200 at 8.00 (23574.86), or the H100 at 3.00 (20094.86)
    // for the template naming it; every one refused.
    assert_quota_cases(cases, |template| check(template));
}

/// Asserts each case's answer — exit code, podPerHour, projected and warnings — as `check` gets
/// it for the case's pod (named when one differs).
fn assert_quota_cases<P: std::fmt::Display>(
    cases: impl IntoIterator<Item = (P, i32, &'static str, &'static str, Value)>,
    check: impl Fn(&P) -> (i32, Value, String),
) {
    for (pod, code, per_hour, projected, warnings) in cases {
        let (exit, d, _) = check(&pod);
        assert_eq!(
            (exit, &d["podPerHour"], &d["projected"], &d["warnings"]),
            (code, &json!(per_hour), &json!(projected), &warnings),
            "{pod}"
        );
    }
}

#[test]
fn enforce_off_allows_with_a_warning_and_no_budget_allows() {
    // cc-150: 36.00 + (6.00 + 3.00) × 696 = 6300.00 > 1000.00, but not enforced.
    let (code, d, _) = quota(&[
        "--namespace",
        "team-a",
        "--cost-center",
        "cc-150",
        "--gpus",
        "1",
        "--gpu-model",
        "H100",
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        d["warnings"],
        json!([
            "cost center cc-150 would reach 6300.00 USD of its 1000.00 USD monthly budget (not enforced)"
        ])
    );
    let (code, d, _) = quota(&[
        "--namespace",
        "team-c",
        "--gpus",
        "1",
        "--gpu-model",
        "H100",
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        d["message"],
        "no budget applies to cost center unassigned or namespace team-c"
    );
    assert_eq!(
        (d["budget"].is_null(), d["spent"].as_str()),
        (true, Some("36.00"))
    );
}

#[test]
fn bad_quota_input_exits_2() {
    let (code, _, stderr) = quota(&["--namespace", "team-a", "--gpus", "many"]);
    assert_eq!(
        (code, stderr.as_str()),
        (2, "error: --gpus: \"many\" is not a number of GPUs\n")
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["quota", "--demo", "--namespace", "x", "--gpus", "1"])
        .env("TOLLGATE__BUDGET", "oops")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    // A budget on the capacity no pod holds could never be spent: refused, naming the file.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tollgate.toml");
    std::fs::write(
        &config,
        "[[budget]]\ncost_center = \"cc-100\"\nmonthly = \"100\"\n\n\
         [[budget]]\ncost_center = \"__unallocated__\"\nmonthly = \"100\"\n",
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["quota", "--demo", "--namespace", "x", "--gpus", "1"])
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).to_string()
        ),
        (
            Some(2),
            format!(
                "error: configuration {}: budget[1] (cost center __unallocated__): __unallocated__ names the capacity no pod holds, not a cost center: no pod is charged to it and it counts toward no budget, so this one could never be spent\n",
                config.display()
            )
        )
    );
}

// ---------------------------------------------------------------------------------------------
// The gate in-process and over HTTP.

fn settings() -> Settings {
    Settings::load(Some(std::path::Path::new(
        "tests/fixtures/quota/budgets.toml",
    )))
    .unwrap()
}

fn view_and_card() -> (Arc<View>, Arc<RateCard>) {
    let card = Arc::new(support::fixture_card());
    (
        read_once(support::fixture_feed(), card.clone(), "cost-center"),
        card,
    )
}

/// A gate with one more budget: cost center `burst`, room for exactly ten 1-GPU H100 pods
/// (each 3.00 × 696 = 2088.00).
fn burst_gate(fail: FailMode) -> QuotaGate {
    let mut settings = settings();
    settings.budget.push(tollgate::budget::RawBudget {
        cost_center: Some("burst".into()),
        monthly: Some("20880.00".into()),
        ..Default::default()
    });
    settings.quota.fail_mode = fail;
    QuotaGate::new(
        validate_budgets(&settings.budget).unwrap(),
        settings.quota.clone(),
        "cost-center".into(),
    )
}

fn one_h100(dry_run: bool) -> CheckRequest {
    CheckRequest {
        namespace: "team-c".into(),
        subject: Subject::Gpus {
            gpus: 1.into(),
            gpu_model: Some("H100".into()),
        },
        cost_center: Some("burst".into()),
        dry_run,
    }
}

async fn post(
    app: &axum::Router,
    path: &str,
    body: String,
    content_type: Option<&str>,
) -> (u16, Value) {
    let mut request = Request::post(path);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn app(gate: QuotaGate) -> (axum::Router, Arc<QuotaGate>) {
    let (view, card) = view_and_card();
    // A receiver keeps the last view after its sender is gone.
    let (_, receiver) = watch::channel(view);
    let quota = Arc::new(gate);
    let state = support::app_state(card, receiver, quota.clone());
    (router(state), quota)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_100_concurrent_checks_admits_exactly_the_10_that_fit() {
    let (app, gate) = app(burst_gate(FailMode::FailClosed));
    let body = json!({"namespace": "team-c", "costCenter": "burst", "gpus": 1, "gpuModel": "H100"})
        .to_string();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (app, body) = (app.clone(), body.clone());
            tokio::spawn(async move { post(&app, "/api/v1/quota/check", body, None).await })
        })
        .collect();
    let mut allowed = 0;
    for task in tasks {
        let (status, decision) = task.await.unwrap();
        assert_eq!(status, 200);
        allowed += usize::from(decision["allowed"] == true);
    }
    assert_eq!(allowed, 10);
    assert_eq!(gate.reservations(), 10);
}

#[test]
fn dry_runs_reserve_nothing_and_reservations_expire() {
    let (view, card) = view_and_card();
    let gate = burst_gate(FailMode::FailClosed);
    for _ in 0..50 {
        assert!(gate.check(&view, &card, &one_h100(true)).unwrap().allowed);
    }
    assert_eq!(gate.reservations(), 0);
    for _ in 0..10 {
        assert!(gate.check(&view, &card, &one_h100(false)).unwrap().allowed);
    }
    let denied = gate.check(&view, &card, &one_h100(false)).unwrap();
    assert!(!denied.allowed);
    assert_eq!(
        denied.message,
        "cost center burst would reach 22968.00 USD of its 20880.00 USD monthly budget"
    );
    assert_eq!(denied.burn_per_hour, "30.00", "ten holds of 3.00/h");
    // A view read 301 s (past the TTL) later: the holds have lapsed.
    let mut later = (*view).clone();
    later.as_of += 301;
    assert!(gate.check(&later, &card, &one_h100(true)).unwrap().allowed);
}

/// Checks on `view` are unsure `why`: failing closed denies, saying so; failing open allows,
/// with a warning saying so.
fn unsure(view: &View, card: &RateCard, why: &str) {
    let closed = burst_gate(FailMode::FailClosed)
        .check(view, card, &one_h100(true))
        .unwrap();
    assert!(!closed.allowed && closed.stale);
    assert!(
        closed.message.starts_with(&format!(
            "{why}; failing closed until it is current again ("
        )),
        "{}",
        closed.message
    );
    let open = burst_gate(FailMode::FailOpen)
        .check(view, card, &one_h100(true))
        .unwrap();
    assert!(open.allowed && open.stale);
    let warning = format!("{why}; allowed because the failure mode is fail_open");
    assert!(open.warnings.contains(&warning), "{:?}", open.warnings);
}

#[test]
fn a_pod_pinned_by_its_cloud_s_gpu_label_is_priced_as_that_gpu() {
    // GKE and Karpenter users pin pods with their cloud's label, not GFD's. team-e's budget:
    // 126048/7 + 696 × (the pod's hourly cost).
    let check = |mut spec: Value| {
        spec["containers"] =
            json!([{"name": "c", "resources": {"limits": {"nvidia.com/gpu": "2"}}}]);
        team_e_pod_quota(spec)
    };
    // GKE's nvidia-tesla-a100 is the 40 GB A100 (2.80): 2 × 2.80 = 5.60; 18006.857142 + 3897.60.
    let (code, d, _) =
        check(json!({"nodeSelector": {"cloud.google.com/gke-accelerator": "nvidia-tesla-a100"}}));
    assert_eq!((code, &d["podPerHour"]), (3, &json!("5.60")), "{d}");
    assert_eq!(d["projected"], "21904.46");
    assert_eq!(d["warnings"], json!([]));
    // Karpenter's GPU name, l4 or l40s: the costlier, L40S (2.00): 4.00; 18006.857142 + 2784.
    let (code, d, _) = check(json!({"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "karpenter.k8s.aws/instance-gpu-name", "operator": "In", "values": ["l4", "l40s"]}]}]}}}}));
    assert_eq!((code, &d["podPerHour"]), (3, &json!("4.00")), "{d}");
    assert_eq!(d["projected"], "20790.86");
    assert_eq!(
        d["warnings"],
        json!([
            "priced as L40S-48GB, the most expensive of the GPU models its node affinity allows"
        ])
    );
    // An EC2 instance type (an EKS managed node group's pods select it; no GFD, no Karpenter):
    // p4d.24xlarge holds A100 40 GB: 2 × 2.80 = 5.60, 21904.46. Two by affinity, g6.xlarge (L4)
    // or g6e.xlarge (L40S): the costlier, 4.00, 20790.86. One Tollgate does not know among
    // them: no narrowing (the card's costliest, H200: 2 × 8.00 = 16.00; 18006.857142 + 11136).
    // (Before: 16.00 for all three.)
    let instance_types = |types: Value| {
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": types}]}]}}}})
    };
    let by_instance = [
        (
            json!({"nodeSelector": {"node.kubernetes.io/instance-type": "p4d.24xlarge"}}),
            (3, "5.60", "21904.46"),
            json!([]),
        ),
        (
            instance_types(json!(["g6.xlarge", "g6e.xlarge"])),
            (3, "4.00", "20790.86"),
            json!([
                "priced as L40S-48GB, the most expensive of the GPU models its node affinity allows"
            ]),
        ),
        (
            instance_types(json!(["g6.xlarge", "x9.metal"])),
            (3, "16.00", "29142.86"),
            json!([
                "its GPU model is not known before scheduling: priced as H200-141GB, the most expensive in the rate card"
            ]),
        ),
    ];
    let by_instance = by_instance.map(|(placement, (exit, per_hour, projected), warnings)| {
        (placement, exit, per_hour, projected, warnings)
    });
    assert_quota_cases(by_instance, |placement| check(placement.clone()));
    // GKE time-sharing, 4 clients per L4 (0.80): each nvidia.com/gpu is a quarter, 2 × 0.20 =
    // 0.40; 18006.857142 + 278.40.
    let (code, d, _) = check(json!({"nodeSelector": {
        "cloud.google.com/gke-accelerator": "nvidia-l4",
        "cloud.google.com/gke-gpu-sharing-strategy": "time-sharing",
        "cloud.google.com/gke-max-shared-clients-per-gpu": "4"}}));
    assert_eq!((code, &d["podPerHour"]), (0, &json!("0.40")), "{d}");
    assert_eq!(d["projected"], "18285.26");
    // GKE MIG, 3g.20gb partitions of an A100-40GB: each is 3/7 × 2.80 = 1.20; 2.40/h;
    // 18006.857142 + 1670.40.
    let (code, d, _) = check(json!({"nodeSelector": {
        "cloud.google.com/gke-accelerator": "nvidia-tesla-a100",
        "cloud.google.com/gke-gpu-partition-size": "3g.20gb"}}));
    assert_eq!((code, &d["podPerHour"]), (0, &json!("2.40")), "{d}");
    assert_eq!(d["projected"], "19677.26");
    // `--gpu-model nvidia-tesla-a100` with the built-in card (A100-80GB 4.10 and A100-40GB 3.20
    // both match `a100`): GKE's name is the 40 GB one.
    let (_, d, _) = quota_priced(
        "pricing/default.toml",
        &[
            "--namespace",
            "team-e",
            "--gpus",
            "1",
            "--gpu-model",
            "nvidia-tesla-a100",
        ],
    );
    assert_eq!(d["podPerHour"], "3.20", "{d}");
}

/// A copy of the fixture snapshot, to change.
fn fixture_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(FIXTURE).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    dir
}

/// Adds `items` to the list in `file` of the snapshot in `dir`.
fn add_items(dir: &Path, file: &str, items: &[Value]) {
    let path = dir.join(file);
    let mut list: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    list["items"]
        .as_array_mut()
        .unwrap()
        .extend(items.iter().cloned());
    std::fs::write(&path, list.to_string()).unwrap();
}

/// [`team_e_pod_quota_on`] of a pod of one `nvidia.com/gpu` saying where it runs by
/// `placement` (fields of its spec).
fn one_gpu_pod_quota(snapshot: &Path, placement: Value) -> (i32, Value, String) {
    let mut spec = json!({"containers": [
        {"name": "c", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]});
    spec.as_object_mut()
        .unwrap()
        .extend(placement.as_object().unwrap().clone());
    team_e_pod_quota_on(snapshot, spec)
}

/// What the answer says of a pod priced as `model` from `of` the nodes it may run on (`later`:
/// it does not name its node).
fn placed_note(model: &str, of: &str, later: bool) -> String {
    let later = if later {
        ": a node made later may hold another"
    } else {
        ""
    };
    format!(
        "priced as {model}, {of} its node name, selector, affinity and tolerations allow now{later}"
    )
}

#[test]
fn a_pod_pinned_to_nodes_by_other_labels_is_priced_as_the_gpus_those_nodes_hold() {
    // Pods pick a node pool, a capacity type or a node by name far more often than a GPU
    // product; they were priced as the costliest GPU of the card (H200-141GB, 8.00), however
    // cheap the nodes they can run on. One `nvidia.com/gpu`, team-e: 126048/7 + 696 × pod.
    let check = |placement: Value| one_gpu_pod_quota(Path::new(FIXTURE), placement);
    let said = placed_note;
    let region = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "topology.kubernetes.io/region", "operator": "In", "values": ["us-east-1"]}]}]}}}});
    let both = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "nvidia.com/gpu.product", "operator": "In",
             "values": ["NVIDIA-L40S", "NVIDIA-H100-80GB-HBM3"]},
            {"key": "kubernetes.io/hostname", "operator": "In",
             "values": ["node-l40s", "node-colo"]}]}]}}}});
    let replicas = "nvidia.com/gpu.replicas=4 on every GPU node its node name, selector, affinity and tolerations allow now";
    let spot = "spot capacity on every GPU node its node name, selector, affinity and tolerations allow now";
    let not_known = "its GPU model is not known before scheduling: priced as H200-141GB, the most expensive in the rate card";
    let unpriced = "GPU model NVIDIA-GH200-480GB has no price: priced as H200-141GB, the most expensive in the rate card";
    // (placement, exit code, podPerHour, projected, warnings)
    let cases: [(Value, i32, &str, &str, Vec<String>); 9] = [
        // `nodeName: node-l40s`: an L40S at 2.00; 18006.857142 + 1392 = 19398.86, allowed.
        // (Before: 8.00, 23574.86, refused.)
        (
            json!({"nodeName": "node-l40s"}),
            0,
            "2.00",
            "19398.86",
            vec![said(
                "L40S-48GB (on-demand)",
                "the GPU of the GPU node",
                false,
            )],
        ),
        // Spot capacity: node-h100-spot alone, an H100 at its spot price after noon on
        // November 1, 1.50; 18006.857142 + 1044 = 19050.86.
        (
            json!({"nodeSelector": {"karpenter.sh/capacity-type": "spot"}}),
            0,
            "1.50",
            "19050.86",
            vec![said("H100-80GB (spot)", "the GPU of the GPU node", true)],
        ),
        // Its GPU named, and a node by hostname: node-h100-spot's tier, spot, prices it (1.50,
        // not 3.00 on demand: 20094.86, refused, before).
        (
            json!({"nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
                "kubernetes.io/hostname": "node-h100-spot"}}),
            0,
            "1.50",
            "19050.86",
            vec![spot.to_string()],
        ),
        // A node by its hostname label: node-l4-ts, an L4 time-sliced 4 ways, 0.20, as if the
        // pod selected its product and replicas; 18006.857142 + 139.20 = 18146.06.
        (
            json!({"nodeSelector": {"kubernetes.io/hostname": "node-l4-ts"}}),
            0,
            "0.20",
            "18146.06",
            vec![
                said("L4-24GB (on-demand)", "the GPU of the GPU node", true),
                replicas.to_string(),
            ],
        ),
        // Affinity every node meets (the region): of its 9 GPU nodes, the 6 offering
        // `nvidia.com/gpu` (node-a100-mig and node-a30 offer MIG devices, node-h200-dra DRA's
        // only), whose costliest GPU is node-h100's H100 at 3.00 (node-gh200's is not
        // priced); 18006.857142 + 2088 = 20094.86, refused. (Before: the 9 nodes' H200, 8.00,
        // 23574.86.)
        (
            region.clone(),
            3,
            "3.00",
            "20094.86",
            vec![said(
                "H100-80GB (on-demand)",
                &offering(6, "nvidia.com/gpu"),
                true,
            )],
        ),
        // Affinity naming two products (L40S 2.00, H100 3.00) and two hostnames, both L40S
        // nodes: the L40S, 2.00, 19398.86 (before: the costlier product named, 3.00, 20094.86,
        // refused). node-colo's L40S has its own price, 1.00: the dearer is node-l40s'.
        (
            both,
            0,
            "2.00",
            "19398.86",
            vec![said(
                "L40S-48GB (on-demand)",
                "the most expensive GPU of the 2 GPU nodes",
                true,
            )],
        ),
        // Pinned to node-colo, whose own price (`tollgate.dev/gpu-hourly-price`) is 1.00 for
        // its L40S: 1.00, as the chargeback charges it there; 18006.857142 + 696 = 18702.86.
        (
            json!({"nodeName": "node-colo"}),
            0,
            "1.00",
            "18702.86",
            vec![said(
                "L40S-48GB (on-demand) at its node's own price",
                "the GPU of the GPU node",
                false,
            )],
        ),
        // Pinned to the GH200 node, whose GPU the card does not price: the card's costliest,
        // and the answer names the model.
        (
            json!({"nodeName": "node-gh200"}),
            3,
            "8.00",
            "23574.86",
            vec![unpriced.to_string()],
        ),
        // A node pool no live node is in (one an autoscaler will make): the costliest of the
        // card, as before.
        (
            json!({"nodeSelector": {"cloud.google.com/gke-nodepool": "new"}}),
            3,
            "8.00",
            "23574.86",
            vec![not_known.to_string()],
        ),
    ];
    let cases = cases.map(|(placement, code, per_hour, projected, warnings)| {
        (placement, code, per_hour, projected, json!(warnings))
    });
    assert_quota_cases(cases, |placement| check(placement.clone()));
    // In the region, two 3g.20gb MIG devices: node-a100-mig alone offers them, so the pod is
    // priced as its A100-40GB, cut in sevenths: 2 × 3/7 × 2.80 = 2.40; 18006.857142 + 1670.40
    // = 19677.26, allowed. (Before: 3/7 of the 9 nodes' H200, 2 × 24/7 = 6.86, 22779.43,
    // refused.) A count of none (`nvidia.com/gpu: 0`) asks for nothing a node must offer.
    let mut spec = region;
    spec["containers"] = json!([{"name": "c", "resources": {"limits":
        {"nvidia.com/mig-3g.20gb": "2", "nvidia.com/gpu": "0"}}}]);
    let (code, d, _) = team_e_pod_quota(spec);
    assert_eq!(
        (code, &d["podPerHour"], &d["projected"], &d["warnings"]),
        (
            0,
            &json!("2.40"),
            &json!("19677.26"),
            &json!([said(
                "A100-40GB (on-demand)",
                "the GPU of the GPU node offering nvidia.com/mig-3g.20gb that",
                true
            )])
        )
    );
}

#[test]
fn a_pod_whose_claims_need_a_gpu_driver_is_priced_from_the_nodes_it_publishes_devices_on() {
    // The fixture with node-l40s publishing its two L40S through NVIDIA's DRA driver too
    // (`gpu.nvidia.com`), and a claim template of one `gpu.nvidia.com` device naming no model.
    // A pod whose affinity admits node-h100 (H100, 3.00, the device plugin's only) and
    // node-l40s (L40S, 2.00) holds its claim where the driver publishes devices: node-l40s.
    // team-e: 126048/7 + 696 × podPerHour.
    let dir = fixture_copy();
    let device = |n: usize| {
        json!({"name": format!("gpu-{n}"), "attributes": {"type": {"string": "gpu"},
            "productName": {"string": "NVIDIA L40S"},
            "uuid": {"string": format!("GPU-l40s-{n}")}}})
    };
    add_items(
        dir.path(),
        "resourceslices.json",
        &[
            json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
            "metadata": {"name": "node-l40s-gpu.nvidia.com"},
            "spec": {"driver": "gpu.nvidia.com", "nodeName": "node-l40s",
                "pool": {"generation": 1, "name": "node-l40s", "resourceSliceCount": 1},
                "devices": [device(0), device(1)]}}),
        ],
    );
    add_items(
        dir.path(),
        "resourceclaimtemplates.json",
        &[
            json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate",
            "metadata": {"name": "one-gpu", "namespace": "team-e"},
            "spec": {"spec": {"devices": {"requests": [{"name": "gpu",
                "exactly": {"deviceClassName": "gpu.nvidia.com"}}]}}}}),
        ],
    );
    let spec = json!({
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "kubernetes.io/hostname",
                "operator": "In", "values": ["node-h100", "node-l40s"]}]}]}}},
        "resourceClaims": [{"name": "g", "resourceClaimTemplateName": "one-gpu"}],
        "containers": [{"name": "c"}]});
    // One L40S at 2.00: 18006.857142 + 1392 = 19398.86, allowed. (Before: the costlier of the
    // two nodes, node-h100's H100, 3.00, 20094.86, refused.)
    let (code, d, _) = team_e_pod_quota_on(dir.path(), spec);
    assert_eq!(
        (code, &d["podPerHour"], &d["projected"], &d["warnings"]),
        (
            0,
            &json!("2.00"),
            &json!("19398.86"),
            &json!([placed_note(
                "L40S-48GB (on-demand)",
                "the GPU of the GPU node offering gpu.nvidia.com devices that",
                true
            )])
        )
    );
}

/// The nodes a pod asking for `devices` is priced from where some admitted lack them.
fn offering(nodes: usize, devices: &str) -> String {
    format!("the most expensive GPU of the {nodes} GPU nodes offering {devices} that")
}

#[test]
fn a_pod_is_not_priced_from_nodes_whose_taints_it_does_not_tolerate() {
    // The fixture's nodes with taints: node-h200-dra kept for training (`dedicated=training:
    // NoSchedule`), node-h100 for GPU pods (`nvidia.com/gpu=present:NoSchedule`); node-l40s
    // cordoned (`node.kubernetes.io/unschedulable`, a passing condition) and node-a100-mig
    // with a preference only (`PreferNoSchedule`): neither of those two keeps a pod off.
    // One `nvidia.com/gpu`, team-e (budget 20000.00): 126048/7 + 696 × podPerHour.
    let dir = fixture_copy();
    let nodes_file = dir.path().join("nodes.json");
    let mut nodes: Value = serde_json::from_slice(&std::fs::read(&nodes_file).unwrap()).unwrap();
    let taints = [
        (
            "node-h200-dra",
            json!({"key": "dedicated", "value": "training", "effect": "NoSchedule"}),
        ),
        (
            "node-h100",
            json!({"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}),
        ),
        (
            "node-l40s",
            json!({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}),
        ),
        (
            "node-a100-mig",
            json!({"key": "spread", "effect": "PreferNoSchedule"}),
        ),
    ];
    for node in nodes["items"].as_array_mut().unwrap() {
        let name = node["metadata"]["name"].clone();
        if let Some((_, taint)) = taints.iter().find(|(n, _)| name == *n) {
            node["spec"]["taints"] = json!([taint]);
        }
        // As the kubelet labels every node.
        node["metadata"]["labels"]["kubernetes.io/os"] = json!("linux");
    }
    std::fs::write(&nodes_file, nodes.to_string()).unwrap();
    let region = json!({"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "topology.kubernetes.io/region", "operator": "In", "values": ["us-east-1"]}]}]});
    let in_region = |tolerations: Value| {
        json!({"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": region.clone()}},
            "tolerations": tolerations})
    };
    let gpu = json!({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"});
    let not_known = "its GPU model is not known before scheduling: priced as H200-141GB, the most expensive in the rate card";
    // (placement, exit code, podPerHour, projected, warnings)
    let cases: [(Value, i32, &str, &str, Vec<String>); 8] = [
        // The region, tolerating nothing: the 7 nodes left (node-h200-dra and node-h100 out),
        // of which the 5 offering `nvidia.com/gpu` (node-a100-mig and node-a30 offer MIG
        // devices); the costliest GPU among them node-l40s' L40S, 2.00 (node-h100-spot's H100
        // is 1.50 on spot, node-colo's L40S 1.00 its own); 18006.857142 + 1392 = 19398.86,
        // allowed. (Before taints were read: all 9 nodes, node-h200-dra's H200, 8.00,
        // 23574.86, refused; before devices were: node-a100-mig's A100-40GB, 2.80, 19955.66.)
        (
            in_region(json!([])),
            0,
            "2.00",
            "19398.86",
            vec![placed_note(
                "L40S-48GB (on-demand)",
                &offering(5, "nvidia.com/gpu"),
                true,
            )],
        ),
        // Tolerating GPU nodes' taint: node-h100 too, an H100 on demand at 3.00; 18006.857142
        // + 2088 = 20094.86, refused.
        (
            in_region(json!([gpu])),
            3,
            "3.00",
            "20094.86",
            vec![placed_note(
                "H100-80GB (on-demand)",
                &offering(6, "nvidia.com/gpu"),
                true,
            )],
        ),
        // Tolerating every taint (`Exists`, no key): all 9 nodes, of which the same 6 offer
        // `nvidia.com/gpu` (node-h200-dra's H200 is DRA's only): 3.00, 20094.86. (Before
        // devices were read: the H200 at 8.00, 23574.86.)
        (
            in_region(json!([{"operator": "Exists"}])),
            3,
            "3.00",
            "20094.86",
            vec![placed_note(
                "H100-80GB (on-demand)",
                &offering(6, "nvidia.com/gpu"),
                true,
            )],
        ),
        // node-h100 by hostname without the toleration: no node takes it, the card's
        // costliest. Named by `nodeName`, the kubelet starts it whatever the `NoSchedule`
        // taint: its H100, 3.00.
        (
            json!({"nodeSelector": {"kubernetes.io/hostname": "node-h100"}}),
            3,
            "8.00",
            "23574.86",
            vec![not_known.to_string()],
        ),
        (
            json!({"nodeName": "node-h100"}),
            3,
            "3.00",
            "20094.86",
            vec![placed_note(
                "H100-80GB (on-demand)",
                "the GPU of the GPU node",
                false,
            )],
        ),
        // Cordoned node-l40s by hostname: a cordon passes, its L40S at 2.00; 18006.857142 +
        // 1392 = 19398.86.
        (
            json!({"nodeSelector": {"kubernetes.io/hostname": "node-l40s"}}),
            0,
            "2.00",
            "19398.86",
            vec![placed_note(
                "L40S-48GB (on-demand)",
                "the GPU of the GPU node",
                true,
            )],
        ),
        // `kubernetes.io/os: linux`, which every node has: it says nothing of which GPU, so
        // the card's costliest, 8.00, as for a pod saying nothing. (Before: the 7 nodes it
        // admits, A100-40GB at 2.80, 19955.66, allowed.) With a hostname too, that node's.
        (
            json!({"nodeSelector": {"kubernetes.io/os": "linux"}}),
            3,
            "8.00",
            "23574.86",
            vec![not_known.to_string()],
        ),
        (
            json!({"nodeSelector": {"kubernetes.io/os": "linux",
                "kubernetes.io/hostname": "node-l40s"}}),
            0,
            "2.00",
            "19398.86",
            vec![placed_note(
                "L40S-48GB (on-demand)",
                "the GPU of the GPU node",
                true,
            )],
        ),
    ];
    let cases = cases.map(|(placement, code, per_hour, projected, warnings)| {
        (placement, code, per_hour, projected, json!(warnings))
    });
    assert_quota_cases(cases, |placement| {
        one_gpu_pod_quota(dir.path(), placement.clone())
    });
}

#[test]
fn a_pod_selecting_a_gh200_by_gfd_s_name_is_priced_as_the_gpu_that_name_is() {
    // The fixture's card and two GH200s under one match string `gh200`, told apart by
    // memory_gb: GH200-144GB at 6.00 (written first) and GH200-96GB at 4.00. GFD names the
    // 96 GB GH200 `NVIDIA-GH200-480GB` (its superchip's memory); NVIDIA's MIG table says 96 GB.
    // team-e: 126048/7 + 696 × (the pod's hourly cost), budget 20000.
    let dir = fixture_copy();
    let card = dir.path().join("rates.toml");
    let gh200 = "\n[[gpu]]\nmodel = \"GH200-144GB\"\nmatch = [\"gh200\"]\nmemory_gb = 144\non_demand = \"6.00\"\n\
                 \n[[gpu]]\nmodel = \"GH200-96GB\"\nmatch = [\"gh200\"]\nmemory_gb = 96\non_demand = \"4.00\"\n";
    let fixture_card = std::fs::read_to_string("tests/fixtures/rates.toml").unwrap();
    std::fs::write(&card, fixture_card + gh200).unwrap();
    let check = |product: &str, gpus: &str| {
        let spec = json!({"nodeSelector": {"nvidia.com/gpu.product": product},
            "containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": gpus}}}]});
        team_e_pod_quota_priced(dir.path(), &card, spec)
    };
    // One GPU: 4.00; 126048/7 + 2784 = 145536/7 = 20790.86, refused. (Before: the 144 GB
    // model's 6.00, 155280/7 = 22182.86.)
    let (code, d, _) = check("NVIDIA-GH200-480GB", "1");
    assert_eq!(
        (code, &d["podPerHour"], &d["projected"]),
        (3, &json!("4.00"), &json!("20790.86")),
        "{d}"
    );
    // MIG single: two 1g.12gb devices, each a seventh of its compute: 2/7 × 4.00 = 8/7, 1.14;
    // (126048 + 5568)/7 = 18802.29, allowed. (Before: 2/7 × 6.00 = 1.71, 19200.00.)
    let (code, d, _) = check("NVIDIA-GH200-480GB-MIG-1g.12gb", "2");
    assert_eq!(
        (code, &d["podPerHour"], &d["projected"]),
        (0, &json!("1.14"), &json!("18802.29")),
        "{d}"
    );
}

#[test]
fn a_pod_pinned_by_gfd_s_product_label_is_sized_as_that_node_shares_its_gpus() {
    // GFD names MIG single strategy nodes `…-MIG-<profile>` and time-sliced ones `…-SHARED`;
    // a pod selecting such a product asks for that node's devices. team-e's budget:
    // 126048/7 + 696 × (the pod's hourly cost).
    let check = |selector: Value, gpus: &str| {
        team_e_pod_quota(json!({"nodeSelector": selector,
            "containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": gpus}}}]}))
    };
    // Two 1g.5gb devices of an A100-40GB (2.80): 2 × 1/7 × 2.80 = 0.80; 18006.857142 + 556.80.
    // (Before: two whole A100s, 5.60, and refused at 21904.46.)
    let mig = json!({"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb"});
    let (code, d, _) = check(mig, "2");
    assert_eq!((code, &d["podPerHour"]), (0, &json!("0.80")), "{d}");
    assert_eq!(d["projected"], "18563.66");
    assert_eq!(d["warnings"], json!([]));
    // The same devices time-sliced twice: 2 × 1/14 × 2.80 = 0.40; 18006.857142 + 278.40.
    let (code, d, _) = check(
        json!({"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb-SHARED",
               "nvidia.com/gpu.replicas": "2"}),
        "2",
    );
    assert_eq!((code, &d["podPerHour"]), (0, &json!("0.40")), "{d}");
    assert_eq!(d["projected"], "18285.26");
    // An L4 (0.80) time-sliced 4 ways: 0.20; 18006.857142 + 139.20. Without the replicas
    // selector, the one live node of that product (node-l4-ts) says them: the same, said.
    // Selecting a node pool no live node is in as well, a whole L4, said: 0.80, 18563.66.
    let shared =
        json!({"nvidia.com/gpu.product": "NVIDIA-L4-SHARED", "nvidia.com/gpu.replicas": "4"});
    let (_, d, _) = check(shared, "1");
    assert_eq!(
        (&d["podPerHour"], &d["projected"], &d["warnings"]),
        (&json!("0.20"), &json!("18146.06"), &json!([]))
    );
    let (_, d, _) = check(json!({"nvidia.com/gpu.product": "NVIDIA-L4-SHARED"}), "1");
    assert_eq!(
        (&d["podPerHour"], &d["projected"]),
        (&json!("0.20"), &json!("18146.06"))
    );
    assert_eq!(
        d["warnings"],
        json!([
            "nvidia.com/gpu.replicas=4 on every GPU node its node name, selector, affinity and tolerations allow now"
        ])
    );
    let (_, d, _) = check(
        json!({"nvidia.com/gpu.product": "NVIDIA-L4-SHARED",
               "cloud.google.com/gke-nodepool": "l4-new"}),
        "1",
    );
    assert_eq!(
        (&d["podPerHour"], &d["projected"]),
        (&json!("0.80"), &json!("18563.66"))
    );
    assert_eq!(
        d["warnings"],
        json!([
            "nvidia.com/gpu counted as a whole device of NVIDIA-L4-SHARED: its time-slicing replicas are not known before scheduling"
        ])
    );
}

#[test]
fn a_time_sliced_mig_device_is_priced_as_its_share_where_the_node_selector_says_it() {
    // MIG mixed, time-sliced: a pod pinned to A100-40GB nodes (2.80) asks for two 3g.20gb
    // devices (3/7 × 2.80 = 1.20 each). team-e's budget: 126048/7 + 696 × (the pod's hourly
    // cost).
    let check = |resource: &str, replicas: Option<&str>| {
        let mut selector = json!({"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"});
        if let Some(replicas) = replicas {
            selector["nvidia.com/mig-3g.20gb.replicas"] = json!(replicas);
        }
        team_e_pod_quota(json!({"nodeSelector": selector,
            "containers": [{"name": "c", "resources": {"limits": {resource: "2"}}}]}))
    };
    // Shared twice (GFD's mig-3g.20gb.replicas=2), renamed or not: 2 × 1.20 ÷ 2 = 1.20;
    // 18006.857142 + 835.20.
    for resource in ["nvidia.com/mig-3g.20gb.shared", "nvidia.com/mig-3g.20gb"] {
        let (code, d, _) = check(resource, Some("2"));
        assert_eq!(
            (code, &d["podPerHour"]),
            (0, &json!("1.20")),
            "{resource}: {d}"
        );
        assert_eq!(d["projected"], "18842.06", "{resource}");
        assert_eq!(d["warnings"], json!([]), "{resource}");
    }
    // Renamed, so surely shared, but with no selector on its replicas: the whole device, said;
    // 2 × 1.20 = 2.40, 18006.857142 + 1670.40.
    let (code, d, _) = check("nvidia.com/mig-3g.20gb.shared", None);
    assert_eq!((code, &d["podPerHour"]), (0, &json!("2.40")), "{d}");
    assert_eq!(d["projected"], "19677.26");
    assert_eq!(
        d["warnings"],
        json!([
            "nvidia.com/mig-3g.20gb.shared counted as a whole 3g.20gb MIG device: its time-slicing replicas are not known before scheduling"
        ])
    );
    // A selector whose value is no number of replicas: the whole device, said (before, a bad
    // value was passed over without a word).
    let (_, d, _) = check("nvidia.com/mig-3g.20gb", Some("two"));
    assert_eq!(
        (&d["podPerHour"], &d["projected"]),
        (&json!("2.40"), &json!("19677.26"))
    );
    assert_eq!(
        d["warnings"],
        json!([
            "node selector nvidia.com/mig-3g.20gb.replicas=\"two\" is not a number of replicas: its devices counted whole"
        ])
    );
}

#[test]
fn a_pod_naming_no_gpu_is_priced_as_the_costliest_gpu_its_devices_can_be() {
    // The fixture's card (H200 8.00, H100-80GB 3.00 since Nov 1 noon, A100-40GB 2.80, A30-24GB
    // 1.20 cut into 4 slices, L40S 2.00, L4 0.80) and two AMD Instincts: MI300X 1.50, MI325X
    // 2.00. A pod selecting no node is priced as the card's costliest GPU, the H200, unless
    // what it asks for is a device only some GPUs are: an AMD resource or driver (an AMD GPU),
    // a MIG profile (the GPUs NVIDIA cuts into it: 1g.10gb is an eighth of 80 GB or a quarter
    // of 40; 1g.6gb a quarter of the A30's 24; 3g.20gb half of 40 or a quarter of 80).
    // team-e's budget: projected = 126048/7 + 696 × podPerHour (18006.857142…), 20000.00.
    let dir = fixture_copy();
    let template = |name: &str, class: &str, count: u32, cel: Option<&str>| {
        let mut exactly = json!({"deviceClassName": class, "count": count});
        if let Some(cel) = cel {
            exactly["selectors"] = json!([{"cel": {"expression": cel}}]);
        }
        json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate",
            "metadata": {"name": name, "namespace": "team-e"},
            "spec": {"spec": {"devices": {"requests": [{"name": "r", "exactly": exactly}]}}}})
    };
    add_items(
        dir.path(),
        "resourceclaimtemplates.json",
        &[
            template("amd-gpu", "gpu.amd.com", 1, None),
            template(
                "two-1g10gb",
                "mig.nvidia.com",
                2,
                Some("device.attributes['gpu.nvidia.com'].profile == '1g.10gb'"),
            ),
        ],
    );
    let card = dir.path().join("rates.toml");
    let amd = "\n[[gpu]]\nmodel = \"MI300X-192GB\"\nmatch = [\"mi300x\"]\non_demand = \"1.50\"\n\
               \n[[gpu]]\nmodel = \"MI325X-256GB\"\nmatch = [\"mi325x\"]\non_demand = \"2.00\"\n";
    let fixture_card = std::fs::read_to_string("tests/fixtures/rates.toml").unwrap();
    std::fs::write(&card, fixture_card + amd).unwrap();
    /// A pod's device resources and claims, shown as they are asked.
    struct Asks(Value, Value);
    impl std::fmt::Display for Asks {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "limits {}, claims {}", self.0, self.1)
        }
    }
    let check_placed = |card: &Path, Asks(limits, claims): &Asks, placement: Value| {
        let mut spec = json!({"resourceClaims": claims,
            "containers": [{"name": "c", "resources": {"limits": limits}}]});
        spec.as_object_mut()
            .unwrap()
            .extend(placement.as_object().unwrap().clone());
        team_e_pod_quota_priced(dir.path(), card, spec)
    };
    let check_priced = |card: &Path, asks: &Asks| check_placed(card, asks, json!({}));
    let devices = |limits: Value| Asks(limits, json!([]));
    let claim = |template: &str| {
        Asks(
            json!({}),
            json!([{"name": "c", "resourceClaimTemplateName": template}]),
        )
    };
    let guessed = |model: &str, offers: &str| {
        format!(
            "its GPU model is not known before scheduling: priced as {model}, the most expensive GPU in the rate card that offers {offers}"
        )
    };
    let claimed = |template: &str, request: &str, model: &str, offers: &str| {
        format!(
            "ResourceClaimTemplate team-e/{template}, request {request}: priced as {model}, the most expensive GPU in the rate card that offers {offers}"
        )
    };
    let cases = [
        // Three 1g.10gb devices: an H100-80GB's (3/7 × 3.00) or an A100-40GB's (3/7 × 2.80):
        // 9/7 = 1.2857…; 126048/7 + 6264/7 = 18901.714…, allowed. (Before: 3/7 of an H200,
        // 24/7 = 3.43, 20393.14, refused.)
        (
            devices(json!({"nvidia.com/mig-1g.10gb": "3"})),
            0,
            "1.29",
            "18901.71",
            json!([guessed("H100-80GB", "nvidia.com/mig-1g.10gb")]),
        ),
        // Two 1g.6gb: only the A30 is cut so: 2 × 1/4 × 1.20 = 0.60; + 417.60. (Before: 2/7 of
        // an H200, 2.29, 19597.71.)
        (
            devices(json!({"nvidia.com/mig-1g.6gb": "2"})),
            0,
            "0.60",
            "18424.46",
            json!([guessed("A30-24GB", "nvidia.com/mig-1g.6gb")]),
        ),
        // A 2g.35gb is a quarter of the H200's 141 GB: the card's costliest anyway, as before:
        // 2/7 × 8.00 = 2.2857…; + 1590.857… = 19597.71.
        (
            devices(json!({"nvidia.com/mig-2g.35gb": "1"})),
            0,
            "2.29",
            "19597.71",
            json!([
                "its GPU model is not known before scheduling: priced as H200-141GB, the most expensive in the rate card"
            ]),
        ),
        // An AMD GPU: the MI325X at 2.00; + 1392 = 19398.857…, allowed. (Before: the H200,
        // 8.00, 23574.86, refused.)
        (
            devices(json!({"amd.com/gpu": "1"})),
            0,
            "2.00",
            "19398.86",
            json!([guessed("MI325X-256GB", "amd.com/gpu")]),
        ),
        // A count of none asks for nothing: the same pod with `nvidia.com/gpu: 0` beside.
        (
            devices(json!({"amd.com/gpu": "1", "nvidia.com/gpu": "0"})),
            0,
            "2.00",
            "19398.86",
            json!([guessed("MI325X-256GB", "amd.com/gpu")]),
        ),
        // Four CPX partitions, an eighth of an MI300X or MI325X each: 4/8 × 2.00 = 1.00;
        // + 696 = 18702.86. (Before: half an H200, 4.00, 20790.86, refused.)
        (
            devices(json!({"amd.com/cpx_nps4": "4"})),
            0,
            "1.00",
            "18702.86",
            json!([guessed("MI325X-256GB", "amd.com/cpx_nps4")]),
        ),
        // A whole NVIDIA GPU: the H200, as before; + 5568 = 23574.86, refused.
        (
            devices(json!({"nvidia.com/gpu": "1"})),
            3,
            "8.00",
            "23574.86",
            json!([
                "its GPU model is not known before scheduling: priced as H200-141GB, the most expensive in the rate card"
            ]),
        ),
        // A claim on AMD's driver: the MI325X, 2.00, 19398.86. (Before: the H200, 23574.86.)
        (
            claim("amd-gpu"),
            0,
            "2.00",
            "19398.86",
            json!([claimed(
                "amd-gpu",
                "r",
                "MI325X-256GB",
                "gpu.amd.com devices"
            )]),
        ),
        // Two MIG devices of profile 1g.10gb: 2 × 1/7 × 3.00 = 6/7; 126048/7 + 4176/7 =
        // 18603.43. (Before: 2/7 of an H200, 2.29, 19597.71.)
        (
            claim("two-1g10gb"),
            0,
            "0.86",
            "18603.43",
            json!([claimed(
                "two-1g10gb",
                "r",
                "H100-80GB",
                "mig.nvidia.com devices of profile 1g.10gb"
            )]),
        ),
        // The fixture's one-slice (3g.20gb): 3/7 of an H100-80GB (3.00) rather than of an
        // A100-40GB (2.80): 9/7, 18901.71. (Before: 3/7 of an H200, 3.43, 20393.14, refused.)
        (
            claim("one-slice"),
            0,
            "1.29",
            "18901.71",
            json!([claimed(
                "one-slice",
                "slice",
                "H100-80GB",
                "mig.nvidia.com devices of profile 3g.20gb"
            )]),
        ),
    ];
    assert_quota_cases(cases, |pod| check_priced(&card, pod));
    // With no AMD GPU in the card, an AMD resource is priced as the card's costliest, as
    // before: the H200, 8.00, 23574.86.
    let fixture_card = Path::new("tests/fixtures/rates.toml");
    let (code, d, _) = check_priced(fixture_card, &devices(json!({"amd.com/gpu": "1"})));
    assert_eq!(
        (code, &d["podPerHour"], &d["projected"]),
        (3, &json!("8.00"), &json!("23574.86"))
    );
    // A pod naming its AMD GPU by the AMD node labeller's label is priced as that GPU: an
    // MI300X at 1.50; 18006.857142 + 1044 = 19050.86. (Before, the label was not read: the
    // card's costliest, the H200, 23574.86, refused.) By affinity on two, the costlier.
    // Where an AMD GPU is the card's costliest (an MI355X at 9.00), an NVIDIA device is
    // priced as the costliest NVIDIA GPU, the H200 (8.00; before: 9.00, 24270.86).
    let dearest_amd = dir.path().join("dearest-amd.toml");
    let mi355x =
        "\n[[gpu]]\nmodel = \"MI355X-288GB\"\nmatch = [\"mi355x\"]\non_demand = \"9.00\"\n";
    std::fs::write(
        &dearest_amd,
        std::fs::read_to_string(&card).unwrap() + mi355x,
    )
    .unwrap();
    let (_, d, _) = check_priced(&dearest_amd, &devices(json!({"nvidia.com/gpu": "1"})));
    assert_eq!(
        (&d["podPerHour"], &d["projected"], &d["warnings"]),
        (
            &json!("8.00"),
            &json!("23574.86"),
            &json!([guessed("H200-141GB", "nvidia.com/gpu")])
        )
    );
    // With a B300 (12.00) and a GB200 (10.00) in the card, two 1g.23gb devices are an
    // eighth of a GB200's 186 GB (or a quarter of an H100 NVL's 94), never a B300's (its
    // eighth is 34 GB): 2 × 1/7 × 10.00 = 20/7 = 2.857…; 126048/7 + 13920/7 = 19995.428…,
    // allowed. (Before the B300 and GB200 were known: 2/7 of the B300, 24/7 = 3.43, 20393.14,
    // refused.)
    let newer = dir.path().join("newer.toml");
    let blackwell = "\n[[gpu]]\nmodel = \"B300\"\nmatch = [\"b300\"]\non_demand = \"12.00\"\n\
                     \n[[gpu]]\nmodel = \"GB200\"\nmatch = [\"gb200\"]\non_demand = \"10.00\"\n";
    std::fs::write(&newer, std::fs::read_to_string(&card).unwrap() + blackwell).unwrap();
    let (code, d, _) = check_priced(&newer, &devices(json!({"nvidia.com/mig-1g.23gb": "2"})));
    assert_eq!(
        (code, &d["podPerHour"], &d["projected"], &d["warnings"]),
        (
            0,
            &json!("2.86"),
            &json!("19995.43"),
            &json!([guessed("GB200", "nvidia.com/mig-1g.23gb")])
        )
    );
    let one_amd = devices(json!({"amd.com/gpu": "1"}));
    let named = json!({"nodeSelector": {"amd.com/gpu.product-name": "AMD_Instinct_MI300X_OAM"}});
    let (code, d, _) = check_placed(&card, &one_amd, named);
    assert_eq!(
        (code, &d["podPerHour"], &d["projected"], &d["warnings"]),
        (0, &json!("1.50"), &json!("19050.86"), &json!([]))
    );
    let either = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "amd.com/gpu.product-name",
            "operator": "In", "values": ["AMD_Instinct_MI300X_OAM", "AMD_Instinct_MI325X_OAM"]}]}]}}}});
    let (_, d, _) = check_placed(&card, &one_amd, either);
    assert_eq!(
        (&d["podPerHour"], &d["warnings"]),
        (
            &json!("2.00"),
            &json!([
                "priced as MI325X-256GB, the most expensive of the GPU models its node affinity allows"
            ])
        )
    );
}

#[test]
fn a_pod_whose_claims_hold_no_gpu_is_not_judged_even_failing_closed() {
    // Stale data, failing closed: a pod whose claims would hold 8 H100 is refused; one whose
    // claims are a ComputeDomain channel and admin access for monitoring would hold nothing,
    // and is allowed as a pod asking for no GPU is, saying why.
    let (view, card) = view_and_card();
    let mut stale = (*view).clone();
    stale.current_at = Some(std::time::Instant::now() - Duration::from_secs(600));
    let check = |template: &str| {
        let pod = json!({"metadata": {"name": "p", "namespace": "team-e"},
            "spec": {"containers": [{"name": "c"}],
                     "resourceClaims": [{"name": "c", "resourceClaimTemplateName": template}]}});
        let request = CheckRequest {
            namespace: "team-e".into(),
            subject: Subject::Pod(Box::new(serde_json::from_value(pod).unwrap())),
            cost_center: None,
            dry_run: true,
        };
        burst_gate(FailMode::FailClosed)
            .check(&stale, &card, &request)
            .unwrap()
    };
    let refused = check("eight-h100");
    assert!(!refused.allowed && refused.stale, "{refused:?}");
    let allowed = check("channel-and-monitor");
    assert!(allowed.allowed && !allowed.stale, "{allowed:?}");
    assert_eq!(
        allowed.message,
        "the pod would hold no GPU: allowed without a budget check"
    );
    assert_eq!(
        allowed.warnings,
        [
            "ResourceClaimTemplate team-e/channel-and-monitor, request monitor: admin access to devices in use by others; it takes none"
        ]
    );
}

#[test]
fn stale_data_honours_the_failure_mode() {
    let (view, card) = view_and_card();
    let mut stale = (*view).clone();
    stale.current_at = Some(std::time::Instant::now() - Duration::from_secs(600));
    unsure(&stale, &card, "Tollgate's budget data is 600 s old");
    let fresh = burst_gate(FailMode::FailClosed)
        .check(&view, &card, &one_h100(true))
        .unwrap();
    assert!(!fresh.stale);
}

/// A month whose history before the ledger began is not all in the store yet (the leader still
/// rolling it up) spends less than was spent: a check on it is as unsure as on stale data; on
/// data old as well, it is the age the answer gives.
#[test]
fn a_month_missing_its_history_honours_the_failure_mode() {
    let (view, card) = view_and_card();
    let mut incomplete = (*view).clone();
    let mut spend = (*view.spend).clone();
    let missing = "the day 2026-11-03 of history before the ledger began is not in the rollup \
        store yet";
    spend.incomplete = Some(missing.into());
    incomplete.spend = Arc::new(spend);
    unsure(
        &incomplete,
        &card,
        &format!("Tollgate's month-to-date spend is incomplete: {missing}"),
    );
    let mut old = incomplete.clone();
    old.current_at = Some(std::time::Instant::now() - Duration::from_secs(600));
    unsure(&old, &card, "Tollgate's budget data is 600 s old");
}

fn kyverno_pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "chat-1", "namespace": "team-a", "labels": {"workload-type": "inference"}},
        "spec": {"nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
                 "containers": [{"name": "server", "image": "vllm/vllm-openai:v0.11.0",
                                 "resources": {"limits": {"nvidia.com/gpu": "2"}}}]}})
}

#[tokio::test]
async fn kyverno_s_exact_body_without_content_type_gets_the_decision() {
    let (app, gate) = app(burst_gate(FailMode::FailClosed));
    // Kyverno POSTs json.Encode(data): the object and a newline, with no Content-Type.
    let body = format!("{}\n", json!({"namespace": "team-a", "pod": kyverno_pod()}));
    let (status, decision) = post(&app, "/api/v1/quota/check", body, None).await;
    assert_eq!(status, 200);
    assert_eq!(decision["allowed"], false);
    assert_eq!(
        decision["message"],
        "cost center cc-100 would reach 8520.00 USD of its 5000.00 USD monthly budget"
    );
    assert_eq!(gate.reservations(), 0);
}

#[tokio::test]
async fn an_admission_review_gets_a_response_with_its_uid() {
    let (app, gate) = app(burst_gate(FailMode::FailClosed));
    let review = |uid: &str, namespace: &str, dry_run: bool| {
        let mut pod = kyverno_pod();
        pod["metadata"]["namespace"] = json!(namespace);
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
                        "resource": {"group": "", "version": "v1", "resource": "pods"},
                        "namespace": namespace, "operation": "CREATE", "userInfo": {"username": "dev"},
                        "object": pod, "oldObject": null, "dryRun": dry_run}})
        .to_string()
    };
    let (status, denied) = post(
        &app,
        "/admission/v1/validate",
        review("705ab4f5-6393-11e8-b7cc-42010a800002", "team-a", false),
        Some("application/json"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        denied,
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "allowed": false,
                         "status": {"code": 403, "message": "cost center cc-100 would reach 8520.00 USD of its 5000.00 USD monthly budget"}}})
    );
    // team-c has no budget: allowed; dryRun reserves nothing, a real admission does.
    let (_, allowed) = post(
        &app,
        "/admission/v1/validate",
        review("u-2", "team-c", true),
        None,
    )
    .await;
    assert_eq!(allowed["response"]["allowed"], true);
    assert_eq!(gate.reservations(), 0);
    post(
        &app,
        "/admission/v1/validate",
        review("u-3", "team-c", false),
        None,
    )
    .await;
    assert_eq!(gate.reservations(), 1);
    // Something other than a pod creation passes without a decision.
    let mut other: Value = serde_json::from_str(&review("u-4", "team-c", false)).unwrap();
    other["request"]["operation"] = json!("DELETE");
    let (_, passed) = post(&app, "/admission/v1/validate", other.to_string(), None).await;
    assert_eq!(passed["response"], json!({"uid": "u-4", "allowed": true}));
}

#[tokio::test]
async fn garbage_gets_a_400_saying_what_is_wrong() {
    let (app, _) = app(burst_gate(FailMode::FailClosed));
    let cases = [
        (
            "/api/v1/quota/check",
            "not json".to_string(),
            "body: expected ident",
        ),
        (
            "/api/v1/quota/check",
            json!({"namespace": "a"}).to_string(),
            "send pod (the Pod object) or gpus",
        ),
        (
            "/api/v1/quota/check",
            json!({"namespace": "a", "gpus": "lots"}).to_string(),
            "gpus: \"lots\" is not a number",
        ),
        (
            "/api/v1/quota/check",
            json!({"gpus": 1}).to_string(),
            "namespace: missing",
        ),
        (
            "/api/v1/quota/check",
            json!({"namespace": "a", "pod": {"spec": 5}}).to_string(),
            "pod: not a valid Pod",
        ),
        (
            "/api/v1/quota/check",
            json!({"namespace": "a", "gpus": 1, "colour": "red"}).to_string(),
            "unknown field `colour`",
        ),
        (
            "/api/v1/quota/check",
            "x".repeat(2 * 1024 * 1024),
            "larger than 1 MiB",
        ),
        (
            "/admission/v1/validate",
            json!({"kind": "Pod"}).to_string(),
            "expected an AdmissionReview",
        ),
        (
            "/admission/v1/validate",
            "[]".to_string(),
            "expected struct AdmissionReview",
        ),
    ];
    for (path, body, expected) in cases {
        let (status, error) = post(&app, path, body, None).await;
        assert_eq!(status, 400, "{path} {expected}");
        assert!(
            error["error"].as_str().unwrap().contains(expected),
            "{path}: {error}"
        );
    }
    let (status, metrics) = {
        let response = app
            .clone()
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        (
            status,
            String::from_utf8(
                response
                    .into_body()
                    .collect()
                    .await
                    .unwrap()
                    .to_bytes()
                    .to_vec(),
            )
            .unwrap(),
        )
    };
    assert_eq!(status, 200);
    assert!(
        metrics.contains("tollgate_quota_checks_total{decision=\"error\"} 9"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tollgate_quota_check_duration_seconds_count 9"),
        "{metrics}"
    );
    // Budgets at the current burn, without any new pod: cc-100 168 + 6 × 696 = 4344.
    assert!(
        metrics.contains("tollgate_budget{cost_center=\"cc-100\",namespace=\"\"} 5000"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tollgate_budget_projected{cost_center=\"cc-100\",namespace=\"\"} 4344"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tollgate_budget_headroom{cost_center=\"cc-100\",namespace=\"\"} 656"),
        "{metrics}"
    );
}

fn pod_check(namespace: &str, pod: Value) -> CheckRequest {
    CheckRequest {
        namespace: namespace.into(),
        subject: Subject::Pod(Box::new(serde_json::from_value(pod).unwrap())),
        cost_center: None,
        dry_run: false,
    }
}

#[test]
fn a_pod_without_gpus_is_allowed_at_once_whatever_its_team_spent() {
    // cc-100 has spent 168.00 of a budget cut to 1.00, and the data is stale with fail_closed:
    // a GPU pod is denied; a CPU pod (and one asking only for ordinary extended resources) is
    // allowed without a budget check and holds nothing.
    let (view, card) = view_and_card();
    let mut stale = (*view).clone();
    stale.current_at = Some(std::time::Instant::now() - Duration::from_secs(600));
    let mut settings = settings();
    settings.budget[0].monthly = Some("1.00".into());
    let gate = QuotaGate::new(
        validate_budgets(&settings.budget).unwrap(),
        settings.quota.clone(),
        "cost-center".into(),
    );
    let cpu = json!({"metadata": {"name": "web-0", "namespace": "team-a"},
        "spec": {"containers": [{"name": "web", "image": "nginx",
            "resources": {"limits": {"cpu": "2", "memory": "1Gi", "hugepages-2Mi": "64Mi"}}}],
            "initContainers": [{"name": "init", "image": "busybox",
                "resources": {"limits": {"rdma/hca_shared_devices_a": "1"}}}]}});
    for view in [&view, &Arc::new(stale)] {
        let decision = gate
            .check(view, &card, &pod_check("team-a", cpu.clone()))
            .unwrap();
        assert!(decision.allowed, "{decision:?}");
        assert_eq!(
            decision.message,
            "the pod asks for no GPU or DRA device: allowed without a budget check"
        );
        assert_eq!(
            (decision.budget, decision.pod_per_hour.as_str()),
            (None, "0.00")
        );
    }
    assert_eq!(gate.reservations(), 0);
    let gpu = gate
        .check(&view, &card, &pod_check("team-a", kyverno_pod()))
        .unwrap();
    assert!(!gpu.allowed);
    // A GPU asked by an init container, or a DRA claim, is judged.
    for pod in [
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}],
            "initContainers": [{"name": "i", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}),
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c",
            "resources": {"claims": [{"name": "gpu"}]}}],
            "resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "one-gpu"}]}}),
    ] {
        let decision = gate.check(&view, &card, &pod_check("team-a", pod)).unwrap();
        assert!(!decision.allowed, "{decision:?}");
    }
}

#[test]
fn one_pod_checked_twice_holds_its_cost_once() {
    // Room for ten 1-GPU H100 pods in cost center `burst`: the same named pod checked 20 times
    // (a retried webhook, Kyverno and the native webhook both) holds one; ten different pods
    // then still fit, the eleventh-and-first does not.
    let (view, card) = view_and_card();
    let gate = burst_gate(FailMode::FailClosed);
    let pod = |name: &str| {
        json!({"metadata": {"name": name, "namespace": "team-c",
            "annotations": {"cost-center": "burst"}},
            "spec": {"nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
                "containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}})
    };
    for _ in 0..20 {
        assert!(
            gate.check(&view, &card, &pod_check("team-c", pod("same")))
                .unwrap()
                .allowed
        );
    }
    assert_eq!(gate.reservations(), 1);
    for i in 0..9 {
        let name = format!("other-{i}");
        assert!(
            gate.check(&view, &card, &pod_check("team-c", pod(&name)))
                .unwrap()
                .allowed
        );
    }
    assert_eq!(gate.reservations(), 10);
    let denied = gate
        .check(&view, &card, &pod_check("team-c", pod("eleventh")))
        .unwrap();
    assert!(!denied.allowed, "{denied:?}");
    assert!(
        gate.check(&view, &card, &pod_check("team-c", pod("same")))
            .unwrap()
            .allowed
    );
}

#[tokio::test]
async fn numbers_no_pod_can_ask_for_get_a_400_naming_the_field() {
    // team-e has a budget, so each check reaches the arithmetic that used to overflow Decimal
    // and reset the connection. Parts of a GPU and negative counts, which Kubernetes admits
    // for no extended resource, were priced as that part, or as no GPU.
    let (app, gate) = app(burst_gate(FailMode::FailClosed));
    let huge_pod = |quantity: &str| {
        json!({"metadata": {"name": "p", "namespace": "team-e"}, "spec": {"containers": [{"name": "c",
            "resources": {"limits": {"nvidia.com/gpu": quantity}}}]}})
    };
    let review = |pod: Value| {
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                        "namespace": "team-e", "operation": "CREATE", "object": pod}})
        .to_string()
    };
    let cases = [
        (
            "/api/v1/quota/check",
            json!({"namespace": "team-e", "gpus": "1000000000000000000000000000"}).to_string(),
            "gpus: 1000000000000000000000000000 is more GPUs than a pod can hold (at most 1000000)",
        ),
        (
            "/api/v1/quota/check",
            json!({"namespace": "team-e", "gpus": 1e300}).to_string(),
            "gpus: \"1e+300\" is not a number of GPUs",
        ),
        (
            "/api/v1/quota/check",
            json!({"namespace": "team-e", "pod": huge_pod("1e27")}).to_string(),
            "pod: nvidia.com/gpu=1000000000000000000000000000 is not a number of GPUs a pod can hold (0 to 1000000)",
        ),
        (
            "/admission/v1/validate",
            review(huge_pod("1e27")),
            "pod: nvidia.com/gpu=1000000000000000000000000000 is not a number of GPUs a pod can hold (0 to 1000000)",
        ),
        (
            "/admission/v1/validate",
            review(huge_pod("1e40")),
            "pod: invalid Kubernetes quantity \"1e40\": the exponent is out of range",
        ),
        (
            "/api/v1/quota/check",
            json!({"namespace": "team-e", "pod": huge_pod("500m")}).to_string(),
            "pod: invalid Kubernetes quantity \"500m\": a count of devices is a whole number",
        ),
        (
            "/admission/v1/validate",
            review(huge_pod("-1")),
            "pod: invalid Kubernetes quantity \"-1\": a count of devices is a whole number",
        ),
        // No GPU has 9 compute slices: it was priced as 9/7 of one.
        (
            "/api/v1/quota/check",
            json!({"namespace": "team-e", "pod": {"metadata": {"name": "p"}, "spec": {
                "containers": [{"name": "c", "resources": {"limits": {"nvidia.com/mig-9g.90gb": "1"}}}]}}})
            .to_string(),
            "pod: MIG resource nvidia.com/mig-9g.90gb cannot be sized as part of a ",
        ),
    ];
    for (path, body, error) in cases {
        let (status, answer) = post(&app, path, body, None).await;
        assert_eq!(status, 400, "{answer}");
        let said = answer["error"].as_str().unwrap();
        assert!(said.starts_with(error), "{said}");
    }
    assert_eq!(gate.reservations(), 0);
}

#[test]
fn a_price_too_large_for_exact_sums_is_refused_by_the_card_and_the_highest_is_decided() {
    // Prices the gate once took and then could not multiply (an error for 2 GPUs at the first,
    // for a month of one at the second): the card refuses them where they are written.
    for price in [
        "79228162514264337593543950335",
        "1000000000000000000000000000",
    ] {
        let err = RateCard::parse(
            &format!("currency = \"USD\"\n[[gpu]]\nmodel = \"H100\"\non_demand = \"{price}\"\n"),
            "huge.toml",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "huge.toml:4: on_demand: {price} an hour is above the highest price Tollgate takes (1000000000000 an hour)"
            )
        );
    }
    // The highest price a card takes, for as many GPUs as a pod can hold: 10⁶ GPUs at 10¹² an
    // hour cost 10¹⁸ an hour, decided (far over the 20,880.00 budget) with no sum overflowing.
    let card = RateCard::parse(
        "currency = \"USD\"\n[[gpu]]\nmodel = \"H100\"\non_demand = \"1000000000000\"\n",
        "highest.toml",
    )
    .unwrap();
    let (view, _) = view_and_card();
    let most = CheckRequest {
        subject: Subject::Gpus {
            gpus: 1_000_000.into(),
            gpu_model: Some("H100".into()),
        },
        ..one_h100(true)
    };
    let decision = burst_gate(FailMode::FailClosed)
        .check(&view, &card, &most)
        .unwrap();
    assert!(!decision.allowed);
    assert_eq!(decision.pod_per_hour, "1000000000000000000.00");
}
