//! The Kyverno policies in `deploy/kyverno/`: every file parses; every CEL expression is
//! evaluated against sample pods (the Kubernetes CEL functions the policies use — `quantity()`,
//! `compareTo()`, `sum()`, `lowerAscii()` — are supplied here with Kubernetes' semantics); and
//! the budget gate's request, built exactly as Kyverno builds it, is posted to a running Tollgate.

use crate::support;

use cel::Value as CelValue;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use support::cel::Cel;
use tollgate::budget::validate_budgets;
use tollgate::config::Settings;
use tollgate::serve::QuotaGate;

const POLICIES: &str = "deploy/kyverno";

fn policies() -> BTreeMap<String, (String, Value)> {
    std::fs::read_dir(POLICIES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let value: Value =
                serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                (text, value),
            )
        })
        .collect()
}

fn policy(file: &str) -> Value {
    policies()
        .remove(file)
        .unwrap_or_else(|| panic!("{file} is missing"))
        .1
}

// ---------------------------------------------------------------------------------------------
// Kyverno's evaluation of a ClusterPolicy's `validate.cel`.

/// Evaluates a ClusterPolicy's `validate.cel` against a pod: every expression's result.
fn validate(cel: &Cel, policy: &Value, pod: &Value, namespace: &Value) -> Vec<bool> {
    let rule = &policy["spec"]["rules"][0]["validate"]["cel"];
    let mut variables = serde_json::Map::new();
    for variable in rule["variables"].as_array().into_iter().flatten() {
        let bound = Value::Object(variables.clone());
        let value = cel.eval(
            variable["expression"].as_str().unwrap(),
            &[
                ("object", pod),
                ("namespaceObject", namespace),
                ("variables", &bound),
            ],
        );
        variables.insert(
            variable["name"].as_str().unwrap().into(),
            value.json().unwrap(),
        );
    }
    let bound = Value::Object(variables);
    let args = [
        ("object", pod),
        ("namespaceObject", namespace),
        ("variables", &bound),
    ];
    rule["expressions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            if let Some(message) = e["messageExpression"].as_str() {
                assert!(
                    matches!(cel.eval(message, &args), CelValue::String(_)),
                    "{message}"
                );
            }
            cel.truth(e["expression"].as_str().unwrap(), &args)
        })
        .collect()
}

/// An inference pod every policy accepts.
fn good_pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "chat-0", "namespace": "team-a", "labels": {"workload-type": "inference"},
                     "annotations": {"cost-center": "cc-100"}},
        "spec": {"containers": [{"name": "server", "image": "vllm/vllm-openai:v0.11.0",
            "env": [{"name": "MODEL_NAME", "value": "mistralai/Mistral-7B-Instruct-v0.3"}],
            "securityContext": {"allowPrivilegeEscalation": false},
            "resources": {"requests": {"memory": "32Gi", "nvidia.com/gpu": "2"},
                          "limits": {"memory": "64Gi", "nvidia.com/gpu": "2"}}}]}})
}

fn namespace(annotations: Value, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a", "annotations": annotations, "labels": labels}})
}

fn with(mut pod: Value, path: &[&str], value: Value) -> Value {
    let mut at = &mut pod;
    for key in &path[..path.len() - 1] {
        at = match key.parse::<usize>() {
            Ok(i) => &mut at[i],
            Err(_) => &mut at[*key],
        };
    }
    at[*path.last().unwrap()] = value;
    pod
}

#[test]
fn every_file_is_one_policy_in_audit_for_inference_pods() {
    let all = policies();
    assert_eq!(all.len(), 10);
    for (file, (text, policy)) in &all {
        let kind = policy["kind"].as_str().unwrap();
        match kind {
            "ClusterPolicy" => {
                assert_eq!(policy["apiVersion"], "kyverno.io/v1", "{file}");
                let rules = policy["spec"]["rules"].as_array().unwrap();
                assert_eq!(rules.len(), 1, "{file}");
                let selects = serde_json::to_string(&rules[0]["match"]).unwrap();
                if rules[0].get("validate").is_some() {
                    assert_eq!(policy["spec"]["validationFailureAction"], "Audit", "{file}");
                    assert!(
                        selects.contains("\"workload-type\":\"inference\""),
                        "{file}"
                    );
                    assert!(selects.contains("\"purpose\":\"ai-inference\""), "{file}");
                    assert!(
                        text.contains("Enforce"),
                        "{file}: no note on moving to Enforce"
                    );
                } else {
                    assert!(selects.contains("\"purpose\":\"ai-inference\""), "{file}");
                }
            }
            "ValidatingPolicy" => {
                assert_eq!(policy["apiVersion"], "policies.kyverno.io/v1");
                assert_eq!(policy["spec"]["validationActions"], json!(["Audit"]));
            }
            "ResourceQuota" => {
                let hard = &policy["spec"]["hard"];
                assert_eq!(hard["requests.nvidia.com/gpu"], "8");
                assert_eq!(
                    hard["gpu.nvidia.com.deviceclass.resource.k8s.io/devices"],
                    "8"
                );
            }
            other => panic!("{file}: unexpected kind {other}"),
        }
    }
    let egress = &policy("inference-egress.yaml")["spec"]["rules"][0]["generate"];
    assert_eq!(egress["synchronize"], true);
    assert_eq!(egress["kind"], "NetworkPolicy");
    let budget = policy("gpu-budget.yaml");
    assert_eq!(budget["spec"]["failurePolicy"], "Fail");
    assert!(
        all["gpu-budget.yaml"]
            .0
            .contains("# default: '{\"allowed\": true")
    );
}

#[test]
fn cel_rules_accept_good_pods_and_catch_each_violation() {
    let cel = Cel::default();
    let ns = namespace(json!({}), json!({}));
    let good = good_pod();
    let check =
        |file: &str, pod: &Value, namespace: &Value| validate(&cel, &policy(file), pod, namespace);
    for file in [
        "gpu-count-limit.yaml",
        "gpu-limits-equal-requests.yaml",
        "approved-models.yaml",
        "memory-bounds.yaml",
        "no-privilege-escalation.yaml",
        "require-cost-center.yaml",
    ] {
        assert!(
            check(file, &good, &ns).iter().all(|ok| *ok),
            "{file} refuses the good pod"
        );
    }
    // 4 GPUs through the device plugin and 1 DRA claim: 5 > 4, which a limits-only check misses.
    let dra = with(
        good.clone(),
        &[
            "spec",
            "containers",
            "0",
            "resources",
            "limits",
            "nvidia.com/gpu",
        ],
        json!("4"),
    );
    let dra = with(
        dra,
        &["spec", "resourceClaims"],
        json!([{"name": "extra", "resourceClaimTemplateName": "one-h200"}]),
    );
    assert_eq!(check("gpu-count-limit.yaml", &dra, &ns), [false]);
    let overcommit = with(
        good.clone(),
        &[
            "spec",
            "containers",
            "0",
            "resources",
            "requests",
            "nvidia.com/gpu",
        ],
        json!("1"),
    );
    assert_eq!(
        check("gpu-limits-equal-requests.yaml", &overcommit, &ns),
        [false]
    );
    let unapproved = with(
        good.clone(),
        &["spec", "containers", "0", "env", "0", "value"],
        json!("deepseek-r1-671b"),
    );
    assert_eq!(check("approved-models.yaml", &unapproved, &ns), [false]);
    let hf = with(
        good.clone(),
        &["spec", "containers", "0", "env"],
        json!([{"name": "HF_MODEL_ID", "value": "meta-llama/Llama-3.1-8B-Instruct"}]),
    );
    assert_eq!(check("approved-models.yaml", &hf, &ns), [true]);
    let huge = with(
        good.clone(),
        &["spec", "containers", "0", "resources", "limits", "memory"],
        json!("0.5Ti"),
    );
    assert_eq!(check("memory-bounds.yaml", &huge, &ns), [false, true]);
    let exact = with(
        good.clone(),
        &["spec", "containers", "0", "resources", "limits", "memory"],
        json!("262144Mi"),
    );
    assert_eq!(check("memory-bounds.yaml", &exact, &ns), [true, true]);
    let tiny = with(
        good.clone(),
        &["spec", "containers", "0", "resources", "requests", "memory"],
        json!("1500Mi"),
    );
    assert_eq!(check("memory-bounds.yaml", &tiny, &ns), [true, false]);
    let escalating = with(
        good.clone(),
        &["spec", "containers", "0", "securityContext"],
        json!({}),
    );
    assert_eq!(
        check("no-privilege-escalation.yaml", &escalating, &ns),
        [false, true]
    );
    let nim = with(
        escalating,
        &["spec", "containers", "0", "image"],
        json!("nvcr.io/nim/meta/llama-3.1-8b-instruct:1.3"),
    );
    assert_eq!(
        check("no-privilege-escalation.yaml", &nim, &ns),
        [true, true]
    );
    let host = with(good.clone(), &["spec", "hostNetwork"], json!(true));
    assert_eq!(
        check("no-privilege-escalation.yaml", &host, &ns),
        [true, false]
    );
    let anonymous = with(good.clone(), &["metadata", "annotations"], json!({}));
    assert_eq!(check("require-cost-center.yaml", &anonymous, &ns), [false]);
    let inherited = namespace(json!({}), json!({"cost-center": "cc-200"}));
    assert_eq!(
        check("require-cost-center.yaml", &anonymous, &inherited),
        [true]
    );
}

// ---------------------------------------------------------------------------------------------
// The budget gate, end to end against a running Tollgate.

async fn running_tollgate() -> String {
    let settings = Settings::load(Some(Path::new("tests/fixtures/quota/budgets.toml"))).unwrap();
    let gate = QuotaGate::new(
        validate_budgets(&settings.budget).unwrap(),
        settings.quota.clone(),
        "cost-center".into(),
    );
    let (urls, stop, _) = support::spawn_service(gate, None).await;
    // Serves until the test process ends.
    std::mem::forget(stop);
    support::address(&urls[0])
}

/// An AdmissionRequest as Kyverno sees it, for a 2×H100 pod in team-a (cc-100: over budget).
fn admission_request() -> Value {
    let pod = with(
        good_pod(),
        &["spec", "nodeSelector"],
        json!({"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}),
    );
    json!({"uid": "0df28fbd-5f5f-11e8-bc74-36e6bb280816", "namespace": "team-a", "operation": "CREATE",
           "dryRun": false, "object": pod})
}

/// Resolves the `{{ request.X }}` templates of an apiCall's data as Kyverno does.
fn kyverno_value(template: &str, request: &Value) -> Value {
    let path = template
        .trim()
        .strip_prefix("{{")
        .and_then(|t| t.strip_suffix("}}"))
        .map(str::trim)
        .and_then(|t| t.strip_prefix("request."))
        .unwrap_or_else(|| panic!("unexpected template {template}"));
    request[path].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kyverno_s_exact_api_call_gets_a_decision_its_deny_condition_reads() {
    let address = running_tollgate().await;
    let policy = policy("gpu-budget.yaml");
    let rule = &policy["spec"]["rules"][0];
    let call = &rule["context"][0]["apiCall"];
    assert_eq!(call["method"], "POST");
    let url = call["service"]["url"].as_str().unwrap();
    let path = &url[url.find("/api/").unwrap()..];
    // Kyverno: json.Encode(map[string]interface{}) — keys sorted, a trailing newline, no Content-Type.
    let request = admission_request();
    let data: BTreeMap<String, Value> = call["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["key"].as_str().unwrap().to_string(),
                kyverno_value(d["value"].as_str().unwrap(), &request),
            )
        })
        .collect();
    let body = format!("{}\n", serde_json::to_string(&data).unwrap());
    let (status, response) = support::http_post(&address, path, &body, None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{response}");
    let quota: Value = serde_json::from_str(&response).unwrap();
    // The rule's deny condition: {{ quota.allowed }} Equals false; its message: {{ quota.message }}.
    let condition = &rule["validate"]["deny"]["conditions"]["any"][0];
    assert_eq!(condition["key"], "{{ quota.allowed }}");
    assert_eq!(quota["allowed"], condition["value"]);
    assert_eq!(rule["validate"]["message"], "{{ quota.message }}");
    assert_eq!(
        quota["message"],
        "cost center cc-100 would reach 8520.00 USD of its 5000.00 USD monthly budget"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_validating_policy_s_http_post_gets_a_decision_its_validation_reads() {
    let address = running_tollgate().await;
    let policy = policy("gpu-budget-validatingpolicy.yaml");
    let cel = Cel::default();
    let request = admission_request();
    let object = request["object"].clone();
    let namespace = namespace(json!({}), json!({"purpose": "ai-inference"}));
    let matches = policy["spec"]["matchConditions"][0]["expression"]
        .as_str()
        .unwrap();
    assert!(cel.truth(
        matches,
        &[("object", &object), ("namespaceObject", &namespace)]
    ));
    let variables = policy["spec"]["variables"].as_array().unwrap();
    assert_eq!(variables[0]["name"], "quotaRequest");
    let body = cel
        .eval(
            variables[0]["expression"].as_str().unwrap(),
            &[("request", &request), ("object", &object)],
        )
        .json()
        .unwrap();
    let post = variables[1]["expression"].as_str().unwrap();
    assert!(
        post.contains(
            "http.Post('http://tollgate.tollgate.svc.cluster.local:8080/api/v1/quota/check'"
        ),
        "{post}"
    );
    assert!(
        post.contains("{'Content-Type': 'application/json'}"),
        "{post}"
    );
    let (status, response) = support::http_post(
        &address,
        "/api/v1/quota/check",
        &body.to_string(),
        Some("application/json"),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{response}");
    let quota: Value = serde_json::from_str(&response).unwrap();
    let bound = json!({"quotaRequest": body, "quota": quota});
    let validation = &policy["spec"]["validations"][0];
    assert!(!cel.truth(
        validation["expression"].as_str().unwrap(),
        &[("variables", &bound)]
    ));
    let message = cel.eval(
        validation["messageExpression"].as_str().unwrap(),
        &[("variables", &bound)],
    );
    assert_eq!(
        message,
        CelValue::String(Arc::new(
            "cost center cc-100 would reach 8520.00 USD of its 5000.00 USD monthly budget".into()
        ))
    );
}
