//! The Kyverno policies in `deploy/kyverno/`: every file parses and follows the rules a policy in
//! front of a production cluster must (operations, failure actions, autogen, one budget gate);
//! every CEL expression — match conditions, preconditions, variables, validations — is evaluated
//! against sample pods, controllers and DRA claim templates (the Kubernetes and Kyverno CEL
//! functions the policies use are supplied in `support::cel` with their semantics); and the budget
//! gate's AdmissionReview, built exactly as Kyverno builds it, is sent to a running Tollgate over
//! HTTPS.

use crate::support;

use cel::Value as CelValue;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use support::cel::{Cel, resource_key};
use tollgate::budget::validate_budgets;
use tollgate::config::Settings;
use tollgate::serve::{CertReloader, QuotaGate, TlsOptions};

const POLICIES: &str = "deploy/kyverno";

/// Every YAML document under `deploy/kyverno`, by path relative to it (`alternatives/…`), with
/// its file's text.
fn documents() -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    let mut dirs = vec![Path::new(POLICIES).to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let file = path
                .strip_prefix(POLICIES)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            for document in serde_yaml::Deserializer::from_str(&text) {
                let value = Value::deserialize(document)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                found.push((file.clone(), text.clone(), value));
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// The first document of `file`.
fn policy(file: &str) -> Value {
    documents()
        .into_iter()
        .find(|(f, ..)| f == file)
        .unwrap_or_else(|| panic!("{file} is missing"))
        .2
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

#[test]
fn applying_the_directory_installs_one_gate_and_policies_safe_in_enforce() {
    let all = documents();
    let top: Vec<&(String, String, Value)> =
        all.iter().filter(|(f, ..)| !f.contains('/')).collect();
    // One budget gate at the top; the CEL variant and the quota example live apart.
    let gates: Vec<&str> = top
        .iter()
        .filter(|(.., v)| v["metadata"]["name"] == "inference-gpu-budget")
        .map(|(f, ..)| f.as_str())
        .collect();
    assert_eq!(gates, ["gpu-budget.yaml"]);
    assert!(top.iter().all(|(.., v)| v["kind"] != "ResourceQuota"));
    assert_eq!(
        policy("alternatives/gpu-budget-validatingpolicy.yaml")["metadata"]["name"],
        "inference-gpu-budget"
    );
    assert_eq!(
        policy("examples/resourcequota-gpus.yaml")["kind"],
        "ResourceQuota"
    );

    for (file, text, policy) in &all {
        let spec = &policy["spec"];
        match policy["kind"].as_str().unwrap() {
            "ClusterPolicy" => {
                assert_eq!(policy["apiVersion"], "kyverno.io/v1", "{file}");
                assert!(
                    spec.get("validationFailureAction").is_none(),
                    "{file}: the deprecated spec.validationFailureAction"
                );
                for rule in spec["rules"].as_array().unwrap() {
                    let name = rule["name"].as_str().unwrap();
                    for subject in rule["match"]["any"].as_array().unwrap() {
                        let resources = &subject["resources"];
                        // DELETE is never matched: a deletion's object is null, and refusing
                        // evictions and garbage collection would break the cluster.
                        let operations = strings(&resources["operations"]);
                        assert!(
                            !operations.is_empty() && !operations.contains(&"DELETE"),
                            "{file} {name}: operations {operations:?}"
                        );
                        // A label selector under match turns Kyverno's autogen off.
                        assert!(
                            resources.get("selector").is_none() || rule.get("generate").is_some(),
                            "{file} {name}: a selector under match disables autogen"
                        );
                    }
                    if let Some(validate) = rule.get("validate") {
                        assert_eq!(validate["failureAction"], "Audit", "{file} {name}");
                        assert!(
                            text.contains("Enforce"),
                            "{file}: no note on moving to Enforce"
                        );
                    }
                }
            }
            "ValidatingPolicy" => {
                assert_eq!(policy["apiVersion"], "policies.kyverno.io/v1", "{file}");
                assert_eq!(spec["validationActions"], json!(["Audit"]), "{file}");
                for rule in spec["matchConstraints"]["resourceRules"]
                    .as_array()
                    .unwrap()
                {
                    assert!(!strings(&rule["operations"]).contains(&"DELETE"), "{file}");
                }
            }
            "ClusterRole" | "ResourceQuota" => {}
            other => panic!("{file}: unexpected kind {other}"),
        }
    }

    // The CEL guardrails: two rules sharing one check, for labelled pods and for the other pods
    // of inference namespaces.
    for file in [
        "gpu-limits-equal-requests.yaml",
        "approved-models.yaml",
        "memory-bounds.yaml",
        "no-privilege-escalation.yaml",
        "require-cost-center.yaml",
    ] {
        let rules = policy(file)["spec"]["rules"].clone();
        assert_eq!(rules.as_array().unwrap().len(), 2, "{file}");
        assert_eq!(rules[0]["validate"], rules[1]["validate"], "{file}");
        assert_eq!(
            rules[1]["match"]["any"][0]["resources"]["namespaceSelector"]["matchLabels"]["purpose"],
            "ai-inference",
            "{file}"
        );
    }

    // Egress for every pod of the namespace, DNS through kube-dns or NodeLocal DNSCache.
    let egress = &policy("inference-egress.yaml")["spec"]["rules"][0]["generate"];
    assert_eq!(egress["synchronize"], true);
    assert_eq!(egress["data"]["spec"]["podSelector"], json!({}));
    let rules = serde_json::to_string(&egress["data"]["spec"]["egress"]).unwrap();
    assert!(
        rules.contains("169.254.20.10/32") && rules.contains("kube-dns"),
        "{rules}"
    );
}

#[test]
fn the_budget_gate_fails_open_by_a_mapping_and_asks_only_about_gpu_pods() {
    let (_, text, budget) = documents()
        .into_iter()
        .find(|(f, ..)| f == "gpu-budget.yaml")
        .unwrap();
    let webhook = &budget["spec"]["webhookConfiguration"];
    assert_eq!(webhook["failurePolicy"], "Fail");
    // The commented `default`, uncommented, is a mapping Kyverno can read `allowed` from (a
    // string is stored raw and never resolves).
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim_start().starts_with("# default:"))
        .expect("a commented default");
    let indent = lines[start].find('#').unwrap();
    let block: Vec<String> = lines[start..]
        .iter()
        .take_while(|l| l.len() > indent + 1 && l[indent..].starts_with('#'))
        .take_while(|l| l[indent + 1..].starts_with(' '))
        .map(|l| l[indent + 2..].to_string())
        .collect();
    let default: Value = serde_yaml::from_str(&block.join("\n")).unwrap();
    assert_eq!(default["default"]["allowed"], true, "{default}");

    // Only GPU pods reach Tollgate: the native webhook's matchConditions, word for word.
    let native: Value = serde_yaml::from_str(
        &std::fs::read_to_string("deploy/overlays/webhook/validatingwebhook.yaml").unwrap(),
    )
    .unwrap();
    assert_eq!(
        webhook["matchConditions"],
        native["webhooks"][0]["matchConditions"]
    );
    let cel = Cel::default();
    let asks = |pod: &Value| cel.all_hold(&webhook["matchConditions"], &[("object", pod)]);
    let container = |resources: Value| json!({"name": "c", "resources": resources});
    let pod = |containers: Value, extra: Value| {
        let mut spec = json!({"containers": containers});
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"metadata": {"name": "p"}, "spec": spec})
    };
    assert!(asks(&pod(
        json!([container(json!({"limits": {"nvidia.com/gpu": "1"}}))]),
        json!({})
    )));
    assert!(asks(&pod(
        json!([container(json!({"limits": {"amd.com/gpu": "1"}}))]),
        json!({})
    )));
    assert!(asks(&pod(
        json!([container(json!({}))]),
        json!({"resourceClaims": [{"name": "g", "resourceClaimTemplateName": "t"}]})
    )));
    assert!(!asks(&pod(
        json!([container(
            json!({"requests": {"cpu": "2", "memory": "1Gi"}})
        )]),
        json!({})
    )));
}

// ---------------------------------------------------------------------------------------------
// Kyverno's evaluation of the guardrails.

/// Namespaces are matched by `namespaceSelector.matchLabels`.
fn selects(selector: &Value, namespace: &Value) -> bool {
    selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| namespace["metadata"]["labels"][k] == *v)
}

/// What a ClusterPolicy says of a pod: `None` when no rule applies (skipped), else each of the
/// applying rule's expressions. At most one rule may apply (no pod is judged twice).
fn judge(cel: &Cel, policy: &Value, pod: &Value, namespace: &Value) -> Option<Vec<bool>> {
    let mut verdicts = Vec::new();
    for rule in policy["spec"]["rules"].as_array().unwrap() {
        let subject = &rule["match"]["any"][0]["resources"];
        let namespace_ok = subject
            .get("namespaceSelector")
            .is_none_or(|s| selects(s, namespace));
        let preconditions_ok = cel.all_hold(&rule["celPreconditions"], &[("object", pod)]);
        if namespace_ok && preconditions_ok {
            verdicts.push(validate(
                cel,
                &rule["validate"]["cel"],
                pod,
                namespace,
                &json!({}),
            ));
        }
    }
    assert!(verdicts.len() <= 1, "two rules judged one pod");
    verdicts.pop()
}

/// Evaluates CEL `variables` then `expressions` (or `validations`), as Kyverno binds them.
fn validate(
    cel: &Cel,
    rule: &Value,
    object: &Value,
    namespace: &Value,
    resources: &Value,
) -> Vec<bool> {
    let mut variables = serde_json::Map::new();
    for variable in rule["variables"].as_array().into_iter().flatten() {
        let bound = Value::Object(variables.clone());
        let value = cel.eval(
            variable["expression"].as_str().unwrap(),
            &[
                ("object", object),
                ("namespaceObject", namespace),
                ("variables", &bound),
                ("resource", resources),
            ],
        );
        variables.insert(
            variable["name"].as_str().unwrap().into(),
            value.json().unwrap(),
        );
    }
    let bound = Value::Object(variables);
    let args = [
        ("object", object),
        ("namespaceObject", namespace),
        ("variables", &bound),
    ];
    let checks = rule
        .get("expressions")
        .or_else(|| rule.get("validations"))
        .and_then(Value::as_array)
        .unwrap();
    checks
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
            "args": ["--model", "mistralai/Mistral-7B-Instruct-v0.3", "--port=8000"],
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

/// `container` of the good pod as an init container too (`kind`: initContainers or
/// ephemeralContainers).
fn plus(kind: &str, container: Value) -> Value {
    with(good_pod(), &["spec", kind], json!([container]))
}

const GUARDRAILS: [&str; 5] = [
    "gpu-limits-equal-requests.yaml",
    "approved-models.yaml",
    "memory-bounds.yaml",
    "no-privilege-escalation.yaml",
    "require-cost-center.yaml",
];

#[test]
fn guardrails_judge_inference_pods_once_and_every_container_of_them() {
    let cel = Cel::default();
    let ns = namespace(json!({}), json!({}));
    let inference_ns = namespace(json!({}), json!({"purpose": "ai-inference"}));
    let check = |file: &str, pod: &Value, namespace: &Value| {
        judge(&cel, &policy(file), pod, namespace).unwrap_or_else(|| panic!("{file} skipped {pod}"))
    };
    let good = good_pod();
    for file in GUARDRAILS {
        assert!(
            check(file, &good, &ns).iter().all(|ok| *ok),
            "{file} refuses the good pod"
        );
        // Unlabelled pods: judged in an inference namespace (once), skipped elsewhere.
        let unlabelled = with(good.clone(), &["metadata", "labels"], json!({}));
        assert!(
            check(file, &unlabelled, &inference_ns).iter().all(|ok| *ok),
            "{file}"
        );
        assert_eq!(judge(&cel, &policy(file), &unlabelled, &ns), None, "{file}");
        assert!(
            check(file, &good, &inference_ns).iter().all(|ok| *ok),
            "{file}"
        );
    }

    let overcommit = |kind: &str| {
        plus(
            kind,
            json!({"name": "warm", "image": "i",
            "resources": {"requests": {"nvidia.com/gpu": "1", "memory": "4Gi"},
                          "limits": {"nvidia.com/gpu": "2", "memory": "4Gi"}},
            "securityContext": {"allowPrivilegeEscalation": false}}),
        )
    };
    assert_eq!(
        check(
            "gpu-limits-equal-requests.yaml",
            &overcommit("initContainers"),
            &ns
        ),
        [false]
    );
    let amd = with(
        good.clone(),
        &[
            "spec",
            "containers",
            "0",
            "resources",
            "limits",
            "amd.com/gpu",
        ],
        json!("2"),
    );
    let amd = with(
        amd,
        &[
            "spec",
            "containers",
            "0",
            "resources",
            "requests",
            "amd.com/gpu",
        ],
        json!("1"),
    );
    assert_eq!(check("gpu-limits-equal-requests.yaml", &amd, &ns), [false]);

    let debug = plus(
        "ephemeralContainers",
        json!({"name": "debugger", "image": "busybox"}),
    );
    assert_eq!(
        check("no-privilege-escalation.yaml", &debug, &ns),
        [false, true]
    );
    let nim = with(
        good.clone(),
        &["spec", "containers", "0", "image"],
        json!("nvcr.io/nim/meta/llama-3.1-8b-instruct:1.3"),
    );
    let nim = with(
        nim,
        &["spec", "containers", "0", "securityContext"],
        json!({}),
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
    let init_without_limit = plus(
        "initContainers",
        json!({"name": "fetch", "image": "i",
        "resources": {"requests": {"memory": "4Gi"}}}),
    );
    assert_eq!(
        check("memory-bounds.yaml", &init_without_limit, &ns),
        [false, true]
    );

    // Cost center where Tollgate looks: pod annotation or label, namespace annotation or label;
    // never blank.
    let cc = "require-cost-center.yaml";
    let anonymous = with(good.clone(), &["metadata", "annotations"], json!({}));
    assert_eq!(check(cc, &anonymous, &ns), [false, true]);
    let labelled = with(
        anonymous.clone(),
        &["metadata", "labels", "cost-center"],
        json!("cc-7"),
    );
    assert_eq!(check(cc, &labelled, &ns), [true, true]);
    let inherited = namespace(json!({}), json!({"cost-center": "cc-200"}));
    assert_eq!(check(cc, &anonymous, &inherited), [true, true]);
    let blank = with(
        good.clone(),
        &["metadata", "annotations", "cost-center"],
        json!("  "),
    );
    assert_eq!(check(cc, &blank, &ns), [false, false]);
    assert_eq!(check(cc, &blank, &inherited), [true, false]);
}

#[test]
fn the_model_allowlist_is_anchored_and_reads_arguments_too() {
    let cel = Cel::default();
    let ns = namespace(json!({}), json!({}));
    let policy = policy("approved-models.yaml");
    let env = |value: &str| {
        with(
            good_pod(),
            &["spec", "containers", "0", "env"],
            json!([{"name": "HF_MODEL_ID", "value": value}]),
        )
    };
    for approved in [
        "mistralai/Mistral-7B-Instruct-v0.3",
        "mistral-7b-instruct",
        "meta-llama/Llama-3.1-8B-Instruct",
        "meta-llama/Meta-Llama-3.1-70B-Instruct",
        "mistralai/Mistral-Small-24B-Instruct-2501",
        "codellama/CodeLlama-34b-Instruct-hf",
        "microsoft/Phi-3-medium-4k-instruct",
    ] {
        assert_eq!(
            judge(&cel, &policy, &env(approved), &ns),
            Some(vec![true; 3]),
            "{approved}"
        );
    }
    for refused in [
        "evil/llama-3.1-8b-uncensored",
        "llama-3.1-8b-uncensored",
        "meta-llama/llama-3.1-8b-instruct-abliterated",
        "x-mistral-7b-instruct",
        "deepseek-r1-671b",
    ] {
        assert_eq!(
            judge(&cel, &policy, &env(refused), &ns),
            Some(vec![false, true, true]),
            "{refused}"
        );
    }
    let args = |args: Value| with(good_pod(), &["spec", "containers", "0", "args"], args);
    assert_eq!(
        judge(
            &cel,
            &policy,
            &args(json!(["--model=evil/llama-3.1-8b-uncensored"])),
            &ns
        ),
        Some(vec![true, false, true])
    );
    assert_eq!(
        judge(
            &cel,
            &policy,
            &args(json!(["serve", "--model", "evil/llama-3.1-8b-uncensored"])),
            &ns
        ),
        Some(vec![true, true, false])
    );
    assert_eq!(
        judge(
            &cel,
            &policy,
            &args(json!(["--model-id", "meta-llama/Llama-3.1-8B-Instruct"])),
            &ns
        ),
        Some(vec![true; 3])
    );
    assert_eq!(
        judge(&cel, &policy, &args(json!(["--model"])), &ns),
        Some(vec![true, true, false]),
        "a flag with nothing after it names no approved model"
    );
    // In command, and in an init container, as well.
    let command = with(
        good_pod(),
        &["spec", "containers", "0", "command"],
        json!(["vllm", "serve", "--model", "evil/x"]),
    );
    assert_eq!(
        judge(&cel, &policy, &command, &ns),
        Some(vec![true, true, false])
    );
    let init = plus(
        "initContainers",
        json!({"name": "fetch", "image": "i",
        "env": [{"name": "MODEL_NAME", "value": "evil/llama-3.1-8b-uncensored"}]}),
    );
    assert_eq!(
        judge(&cel, &policy, &init, &ns),
        Some(vec![false, true, true])
    );
}

/// What Kyverno's autogen makes of a pod rule for a Deployment: `object.spec` and
/// `object.metadata` become the pod template's.
fn for_deployments(rule: &Value) -> Value {
    let text = serde_json::to_string(rule)
        .unwrap()
        .replace("object.spec", "object.spec.template.spec")
        .replace("object.metadata", "object.spec.template.metadata");
    serde_json::from_str(&text).unwrap()
}

#[test]
fn autogen_carries_each_check_to_deployments() {
    let cel = Cel::default();
    let ns = namespace(json!({}), json!({}));
    let deployment = |pod: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "chat", "namespace": "team-a"},
            "spec": {"replicas": 2, "template": {"metadata": pod["metadata"].clone(), "spec": pod["spec"].clone()}}})
    };
    let bad = with(good_pod(), &["spec", "hostNetwork"], json!(true));
    let bad = with(
        bad,
        &["spec", "containers", "0", "env", "0", "value"],
        json!("evil/x"),
    );
    for file in GUARDRAILS {
        let policy = policy(file);
        let rule = for_deployments(&policy["spec"]["rules"][0]);
        let applies = cel.all_hold(
            &rule["celPreconditions"],
            &[("object", &deployment(good_pod()))],
        );
        assert!(applies, "{file}: the labelled template is not selected");
        let good = validate(
            &cel,
            &rule["validate"]["cel"],
            &deployment(good_pod()),
            &ns,
            &json!({}),
        );
        assert!(good.iter().all(|ok| *ok), "{file}: {good:?}");
    }
    let rule = for_deployments(&policy("no-privilege-escalation.yaml")["spec"]["rules"][0]);
    assert_eq!(
        validate(
            &cel,
            &rule["validate"]["cel"],
            &deployment(bad.clone()),
            &ns,
            &json!({})
        ),
        [true, false]
    );
    let rule = for_deployments(&policy("approved-models.yaml")["spec"]["rules"][0]);
    assert_eq!(
        validate(
            &cel,
            &rule["validate"]["cel"],
            &deployment(bad),
            &ns,
            &json!({})
        ),
        [false, true, true]
    );
}

#[test]
fn the_gpu_count_counts_the_devices_dra_claims_ask_of_gpu_classes() {
    let cel = Cel::default();
    let policy = policy("gpu-count-limit.yaml");
    let spec = &policy["spec"];
    let ns = namespace(json!({}), json!({"purpose": "ai-inference"}));
    let template = |name: &str, requests: Value| {
        (
            resource_key("resourceclaimtemplates", "team-a", name),
            json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate",
            "metadata": {"name": name, "namespace": "team-a"},
            "spec": {"spec": {"devices": {"requests": requests}}}}),
        )
    };
    let objects: serde_json::Map<String, Value> = [
        template("eight-h200", json!([{"name": "gpus", "exactly": {"deviceClassName": "gpu.nvidia.com", "count": 8}}])),
        template("one-gpu", json!([{"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com"}}])),
        template("two-nics", json!([{"name": "nic", "exactly": {"deviceClassName": "nic.example.com", "count": 2}}])),
        template("mig-or-gpu", json!([{"name": "gpu", "firstAvailable": [
            {"name": "mig", "deviceClassName": "mig.nvidia.com", "count": 2},
            {"name": "whole", "deviceClassName": "gpu.nvidia.com", "count": 1}]}])),
        template("every-gpu", json!([{"name": "gpus", "exactly": {"deviceClassName": "gpu.nvidia.com", "allocationMode": "All"}}])),
        (resource_key("resourceclaims", "team-a", "shared"),
         json!({"metadata": {"name": "shared"}, "spec": {"devices": {"requests": [
            {"name": "gpu", "exactly": {"deviceClassName": "gpu.amd.com", "count": 3}}]}}})),
    ]
    .into_iter()
    .collect();
    let objects = Value::Object(objects);
    let pod = |gpus: &str, claims: Value| {
        let pod = with(
            good_pod(),
            &[
                "spec",
                "containers",
                "0",
                "resources",
                "limits",
                "nvidia.com/gpu",
            ],
            json!(gpus),
        );
        let pod = with(
            pod,
            &[
                "spec",
                "containers",
                "0",
                "resources",
                "requests",
                "nvidia.com/gpu",
            ],
            json!(gpus),
        );
        with(pod, &["spec", "resourceClaims"], claims)
    };
    let verdict = |pod: &Value| -> Option<bool> {
        let applies = cel.all_hold(
            &spec["matchConditions"],
            &[("object", pod), ("namespaceObject", &ns)],
        );
        applies.then(|| validate(&cel, spec, pod, &ns, &objects)[0])
    };
    let claim = |name: &str| json!({"name": name, "resourceClaimTemplateName": name});
    // One claim template asking for 8 GPUs: 8 > 4, which counting claims (1) missed.
    assert_eq!(
        verdict(&pod("0", json!([claim("eight-h200")]))),
        Some(false)
    );
    // 4 plugin GPUs and a claim for two NICs: 4 GPUs, which counting claims (6) refused.
    assert_eq!(verdict(&pod("4", json!([claim("two-nics")]))), Some(true));
    // 3 + 1 = 4 allowed; 3 + 1 + 1 not.
    assert_eq!(verdict(&pod("3", json!([claim("one-gpu")]))), Some(true));
    assert_eq!(
        verdict(&pod(
            "3",
            json!([claim("one-gpu"), {"name": "b", "resourceClaimTemplateName": "one-gpu"}])
        )),
        Some(false)
    );
    // A prioritized list counts its first choice (2 MIG devices); All counts past any limit.
    assert_eq!(verdict(&pod("2", json!([claim("mig-or-gpu")]))), Some(true));
    assert_eq!(
        verdict(&pod("3", json!([claim("mig-or-gpu")]))),
        Some(false)
    );
    assert_eq!(verdict(&pod("0", json!([claim("every-gpu")]))), Some(false));
    // A named claim is read too (AMD's class counts).
    assert_eq!(
        verdict(&pod(
            "2",
            json!([{"name": "s", "resourceClaimName": "shared"}])
        )),
        Some(false)
    );
    // Outside inference pods and namespaces the policy does not apply.
    let other_ns = namespace(json!({}), json!({}));
    let unlabelled = with(
        pod("0", json!([claim("eight-h200")])),
        &["metadata", "labels"],
        json!({}),
    );
    assert!(!cel.all_hold(
        &spec["matchConditions"],
        &[("object", &unlabelled), ("namespaceObject", &other_ns)],
    ));
}

// ---------------------------------------------------------------------------------------------
// The budget gate, end to end against a running Tollgate.

/// A Tollgate with the fixture budgets, its HTTP address, and its HTTPS address with the
/// certificate it serves.
async fn running_tollgate() -> (String, String, rustls::pki_types::CertificateDer<'static>) {
    let settings = Settings::load(Some(Path::new("tests/fixtures/quota/budgets.toml"))).unwrap();
    let gate = QuotaGate::new(
        validate_budgets(&settings.budget).unwrap(),
        settings.quota.clone(),
        "cost-center".into(),
    );
    let dir = tempfile::tempdir().unwrap();
    let issued = rcgen::generate_simple_self_signed(vec![
        "localhost".to_string(),
        "tollgate.tollgate.svc".to_string(),
    ])
    .unwrap();
    std::fs::write(
        dir.path().join("tls.key"),
        issued.signing_key.serialize_pem(),
    )
    .unwrap();
    std::fs::write(dir.path().join("tls.crt"), issued.cert.pem()).unwrap();
    let tls = TlsOptions {
        listen: "127.0.0.1:0".into(),
        certificates: CertReloader::new(&dir.path().join("tls.crt"), &dir.path().join("tls.key"))
            .unwrap(),
        check_every: std::time::Duration::from_secs(60),
        clients: None,
    };
    let (urls, stop, _) = support::spawn_service(gate, Some(tls)).await;
    // Serves until the test process ends.
    std::mem::forget(stop);
    std::mem::forget(dir);
    let https = urls.iter().find(|u| u.starts_with("https://")).unwrap();
    let port = support::address(https)
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    (
        support::address(&urls[0]),
        format!("127.0.0.1:{port}"),
        issued.cert.der().clone(),
    )
}

/// The AdmissionRequest Kyverno is given (its `request` variable), for a 2×H100 pod in team-a
/// (cc-100: over budget).
fn admission_request() -> Value {
    let pod = with(
        good_pod(),
        &["spec", "nodeSelector"],
        json!({"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}),
    );
    json!({"uid": "0df28fbd-5f5f-11e8-bc74-36e6bb280816",
           "kind": {"group": "", "version": "v1", "kind": "Pod"},
           "resource": {"group": "", "version": "v1", "resource": "pods"},
           "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
           "name": "chat-0", "namespace": "team-a", "operation": "CREATE",
           "userInfo": {"username": "dev"}, "dryRun": false, "object": pod, "oldObject": null})
}

/// Resolves an apiCall data value as Kyverno does: `{{ request }}` / `{{ request.X }}` to the
/// request's JSON, anything else as written.
fn kyverno_value(template: &str, request: &Value) -> Value {
    let Some(path) = template
        .trim()
        .strip_prefix("{{")
        .and_then(|t| t.strip_suffix("}}"))
        .map(str::trim)
    else {
        return json!(template);
    };
    match path.strip_prefix("request") {
        Some("") => request.clone(),
        Some(rest) => request[rest.trim_start_matches('.')].clone(),
        None => panic!("unexpected template {template}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kyverno_s_admission_review_over_https_gets_the_decision_its_deny_condition_reads() {
    let (_, https, certificate) = running_tollgate().await;
    let policy = policy("gpu-budget.yaml");
    let rule = &policy["spec"]["rules"][0];
    let call = &rule["context"][0]["apiCall"];
    assert_eq!(call["method"], "POST");
    let url = call["service"]["url"].as_str().unwrap();
    assert_eq!(
        url,
        "https://tollgate.tollgate.svc:8443/admission/v1/validate"
    );
    let path = &url[url.find("/admission/").unwrap()..];
    // Kyverno: json.Encode(map[string]interface{}) — keys sorted, a trailing newline, no
    // Content-Type.
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
    let http = format!(
        "POST {path} HTTP/1.1\r\nHost: tollgate.tollgate.svc\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (_, response) = support::https(&https, &[&certificate], &http).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let answer: Value =
        serde_json::from_str(&response[response.find("\r\n\r\n").unwrap() + 4..]).unwrap();
    // jmesPath: response — then the rule's deny condition and message read it.
    assert_eq!(call["jmesPath"], "response");
    let review = &answer["response"];
    assert_eq!(review["uid"], request["uid"]);
    let condition = &rule["validate"]["deny"]["conditions"]["any"][0];
    assert_eq!(condition["key"], "{{ review.allowed }}");
    assert_eq!(review["allowed"], condition["value"]);
    assert_eq!(rule["validate"]["message"], "{{ review.status.message }}");
    assert_eq!(
        review["status"]["message"],
        "cost center cc-100 would reach 8520.00 USD of its 5000.00 USD monthly budget"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_validating_policy_s_http_post_gets_a_decision_its_validation_reads() {
    let (http, ..) = running_tollgate().await;
    let policy = policy("alternatives/gpu-budget-validatingpolicy.yaml");
    let cel = Cel::default();
    let request = admission_request();
    let object = request["object"].clone();
    let matches = policy["spec"]["matchConditions"][0]["expression"]
        .as_str()
        .unwrap();
    assert!(cel.truth(matches, &[("object", &object)]));
    let variables = policy["spec"]["variables"].as_array().unwrap();
    // The token, from the Secret Kyverno reads with resource.Get.
    let secrets = json!({resource_key("secrets", "kyverno", "tollgate-quota-token"):
        {"data": {"token": "czNjcjN0LXF1b3RhLXRva2Vu"}}});
    assert_eq!(variables[0]["name"], "token");
    let token = cel.eval(
        variables[0]["expression"].as_str().unwrap(),
        &[("resource", &secrets)],
    );
    assert_eq!(
        token,
        CelValue::String(Arc::new("s3cr3t-quota-token".into()))
    );
    assert_eq!(variables[1]["name"], "quotaRequest");
    let body = cel
        .eval(
            variables[1]["expression"].as_str().unwrap(),
            &[("request", &request), ("object", &object)],
        )
        .json()
        .unwrap();
    let post = variables[2]["expression"].as_str().unwrap();
    assert!(
        post.contains(
            "http.Post('http://tollgate.tollgate.svc.cluster.local:8080/api/v1/quota/check'"
        ),
        "{post}"
    );
    assert!(
        post.contains("'Authorization': 'Bearer ' + variables.token"),
        "{post}"
    );
    let (status, response) = support::http_post(
        &http,
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

// ---------------------------------------------------------------------------------------------
// Fields, as Kyverno's CRDs (1.17 and later) define them.

/// The fields a kind allows: `"*"` any value, `"s"` a string, `"b"` a boolean, `"i"` an
/// integer, a map of fields, or a one-element list of the item's fields. (Fields of Kyverno's
/// `kyverno.io_clusterpolicies` and `policies.kyverno.io_validatingpolicies` CRDs, narrowed to
/// the parts these policies use; other kinds are Kubernetes' own.)
fn kyverno_fields(kind: &str) -> Value {
    let condition = json!([{"name": "s", "expression": "s"}]);
    let metadata = json!({"name": "s", "annotations": "*", "labels": "*"});
    let spec = match kind {
        "ClusterPolicy" => {
            let resources = json!({"kinds": ["s"], "name": "s", "names": ["s"], "namespaces": ["s"],
                "annotations": "*", "selector": "*", "namespaceSelector": "*", "operations": ["s"]});
            let filter =
                json!({"resources": resources, "subjects": "*", "roles": "*", "clusterRoles": "*"});
            let matching = json!({"any": [filter], "all": [filter], "resources": resources});
            json!({
                "admission": "b", "applyRules": "s", "background": "b", "emitWarning": "b",
                "generateExisting": "b", "schemaValidation": "b", "useServerSideApply": "b",
                "webhookConfiguration": {"failurePolicy": "s", "timeoutSeconds": "i",
                                         "matchConditions": condition},
                "rules": [{
                    "name": "s", "match": matching, "exclude": matching,
                    "celPreconditions": condition, "preconditions": "*",
                    "skipBackgroundRequests": "b", "reportProperties": "*",
                    "context": [{"name": "s", "variable": "*", "configMap": "*",
                        "apiCall": {"urlPath": "s", "method": "s", "jmesPath": "s", "default": "*",
                                    "data": [{"key": "s", "value": "*"}],
                                    "service": {"url": "s", "caBundle": "s",
                                                "headers": [{"key": "s", "value": "s"}]}}}],
                    "validate": {"failureAction": "s", "failureActionOverrides": "*",
                        "allowExistingViolations": "b", "message": "s", "pattern": "*",
                        "anyPattern": "*", "deny": {"conditions": "*"}, "foreach": "*",
                        "cel": {"expressions": [{"expression": "s", "message": "s",
                                                 "messageExpression": "s", "reason": "s"}],
                                "variables": condition, "auditAnnotations": "*",
                                "paramKind": "*", "paramRef": "*"}},
                    "generate": {"apiVersion": "s", "kind": "s", "name": "s", "namespace": "s",
                        "synchronize": "b", "generateExisting": "b",
                        "orphanDownstreamOnPolicyDelete": "b", "data": "*", "clone": "*"},
                }],
            })
        }
        "ValidatingPolicy" => json!({
            "validationActions": ["s"], "failurePolicy": "s",
            "evaluation": {"admission": {"enabled": "b"}, "background": {"enabled": "b"}, "mode": "s"},
            "autogen": {"podControllers": {"controllers": ["s"]},
                        "validatingAdmissionPolicy": {"enabled": "b"}},
            "matchConstraints": {"resourceRules": [{"apiGroups": ["s"], "apiVersions": ["s"],
                "operations": ["s"], "resources": ["s"], "resourceNames": ["s"], "scope": "s"}],
                "namespaceSelector": "*", "objectSelector": "*", "matchPolicy": "s"},
            "matchConditions": condition, "variables": condition,
            "validations": [{"expression": "s", "message": "s", "messageExpression": "s",
                             "reason": "s"}],
            "auditAnnotations": "*", "webhookConfiguration": {"timeoutSeconds": "i"},
        }),
        other => panic!("no fields known for {other}"),
    };
    json!({"apiVersion": "s", "kind": "s", "metadata": metadata, "spec": spec})
}

fn check_fields(at: &str, value: &Value, fields: &Value) {
    match fields {
        Value::String(t) if t == "*" => {}
        Value::String(t) => {
            let ok = match t.as_str() {
                "s" => value.is_string(),
                "b" => value.is_boolean(),
                "i" => value.is_i64(),
                _ => unreachable!(),
            };
            assert!(ok, "{at}: {value} is not of type {t}");
        }
        Value::Array(item) => {
            let items = value
                .as_array()
                .unwrap_or_else(|| panic!("{at}: not a list"));
            for (i, v) in items.iter().enumerate() {
                check_fields(&format!("{at}[{i}]"), v, &item[0]);
            }
        }
        Value::Object(known) => {
            let given = value
                .as_object()
                .unwrap_or_else(|| panic!("{at}: not a map"));
            for (key, v) in given {
                let field = known
                    .get(key)
                    .unwrap_or_else(|| panic!("{at}.{key}: not a field of the CRD"));
                check_fields(&format!("{at}.{key}"), v, field);
            }
        }
        _ => unreachable!(),
    }
}

#[test]
fn every_policy_has_only_fields_kyverno_knows() {
    for (file, _, document) in documents() {
        let kind = document["kind"].as_str().unwrap();
        if matches!(kind, "ClusterPolicy" | "ValidatingPolicy") {
            check_fields(&file, &document, &kyverno_fields(kind));
        }
    }
    // The checker catches what the issue found: a field Kyverno does not have.
    let mut wrong = policy("memory-bounds.yaml");
    wrong["spec"]["rules"][0]["validate"]["cel"]["expresions"] = json!([]);
    let caught = std::panic::catch_unwind(|| {
        check_fields(
            "memory-bounds.yaml",
            &wrong,
            &kyverno_fields("ClusterPolicy"),
        )
    });
    assert!(caught.is_err());
}

#[test]
fn the_kubernetes_objects_beside_the_policies_validate_strictly() {
    support::tools::require(&[support::tools::Tool::KubernetesValidate]);
    let dir = tempfile::tempdir().unwrap();
    let native: Vec<Value> = documents()
        .into_iter()
        .map(|(.., document)| document)
        .filter(|d| matches!(d["kind"].as_str(), Some("ClusterRole" | "ResourceQuota")))
        .collect();
    assert_eq!(native.len(), 3, "two ClusterRoles and the example quota");
    for (i, document) in native.iter().enumerate() {
        let file = dir.path().join(format!("{i}.yaml"));
        std::fs::write(&file, serde_yaml::to_string(document).unwrap()).unwrap();
        let output = std::process::Command::new("python3")
            .args(["-m", "kubernetes_validate", "--strict", "--quiet"])
            .args(["--kubernetes-version", "1.34.0"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{document}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
