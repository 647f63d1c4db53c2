//! The install in `deploy/` and the image of the `Dockerfile`.
//!
//! Every install (the top `kustomization.yaml` and each overlay) is rendered with
//! `kubectl kustomize` and validated strictly offline with `kubernetes-validate --strict`
//! against Kubernetes 1.34 (the first with DRA v1) and the newest schemas it has; the custom
//! resources it has no schema for (prometheus-operator's ServiceMonitor, cert-manager's Issuer
//! and Certificate) are checked here against their fields. The RBAC is checked to read the
//! cluster and write nothing but the replicas' own Lease, the Deployment for its availability
//! and lock-down, and the references between objects for consistency.
//!
//! Then each install is run the way a kubelet would run it, as far as this machine can: the
//! rendered Deployment's container — its args, environment and mounts (ConfigMaps, Secrets, the
//! data volume, the `/tmp` emptyDir) — is started from the Dockerfile's entrypoint in a root of
//! its own holding only the binary and the shared libraries of the distroless/cc base image,
//! remounted read-only, as uid 65532 with no capabilities and `no_new_privs`. No Kubernetes API
//! server can run here, so it watches the in-process fake API server through a kubeconfig in
//! place of its service-account credentials; its ports are mapped to free loopback ports.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};
use support::apiserver::{API_AUDIENCE, FakeApiServer};
use support::cel::Cel;
use support::tools::Tool;
use support::{ServeProcess, free_port, http_get, http_get_as, http_post_as};

/// The base install and its overlays.
const INSTALLS: [&str; 5] = [
    "deploy",
    "deploy/overlays/webhook",
    "deploy/overlays/finance-tokens",
    "deploy/overlays/token-review",
    "deploy/overlays/single-replica",
];

/// The Kubernetes versions the objects are validated against.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.34.0", "1.37.0"];

/// The user of the image (distroless `nonroot`).
const IMAGE_USER: u32 = 65532;

// ---------------------------------------------------------------------------------------------
// Rendering

/// `kubectl kustomize dir`: the YAML and its objects.
fn render(dir: &str) -> (String, Vec<Value>) {
    support::tools::require(&[Tool::Kubectl]);
    let output = Command::new("kubectl")
        .args(["kustomize", dir])
        .output()
        .unwrap_or_else(|e| panic!("kubectl: {e}"));
    assert!(
        output.status.success(),
        "kubectl kustomize {dir}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let objects = serde_yaml::Deserializer::from_str(&text)
        .map(|document| Value::deserialize(document).unwrap())
        .collect();
    (text, objects)
}

fn objects_of<'a>(objects: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    objects.iter().filter(move |o| o["kind"] == kind)
}

fn object<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v.as_str().unwrap())
        .collect()
}

/// Whether `selector` (matchLabels, or a plain map) selects `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    let wanted = selector.get("matchLabels").unwrap_or(selector);
    let wanted = wanted.as_object().unwrap();
    !wanted.is_empty() && wanted.iter().all(|(k, v)| &labels[k] == v)
}

/// The Deployment's one container.
fn container(objects: &[Value]) -> &Value {
    let pod = &object(objects, "Deployment", "tollgate")["spec"]["template"]["spec"];
    assert_eq!(pod["containers"].as_array().unwrap().len(), 1);
    &pod["containers"][0]
}

/// The pod's container's mounts: (mount path, mount, its volume).
fn mounts(pod: &Value) -> Vec<(&str, &Value, &Value)> {
    let volumes: BTreeMap<_, _> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v))
        .collect();
    pod["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|mount| {
            let volume = volumes[mount["name"].as_str().unwrap()];
            (mount["mountPath"].as_str().unwrap(), mount, volume)
        })
        .collect()
}

/// The value of the container's environment variable `name`, if set by value.
fn env<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)?["value"]
        .as_str()
}

/// The generated ConfigMap's file `key`.
fn config_file<'a>(objects: &'a [Value], prefix: &str, key: &str) -> &'a str {
    objects_of(objects, "ConfigMap")
        .find(|c| {
            c["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{prefix}-"))
        })
        .unwrap_or_else(|| panic!("no ConfigMap {prefix}"))["data"][key]
        .as_str()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Validation

/// The kinds `kubernetes-validate` has no schema for, checked by [`check_custom_resource`].
const CUSTOM_KINDS: [&str; 3] = ["ServiceMonitor", "Issuer", "Certificate"];

#[test]
fn every_install_renders_and_validates_strictly() {
    support::tools::require(&[Tool::Kubectl, Tool::KubernetesValidate]);
    let dir = tempfile::tempdir().unwrap();
    for install in INSTALLS {
        let (text, objects) = render(install);
        let file = dir.path().join("rendered.yaml");
        std::fs::write(&file, &text).unwrap();
        for version in KUBERNETES_VERSIONS {
            let output = Command::new("python3")
                .args([
                    "-m",
                    "kubernetes_validate",
                    "--strict",
                    "--quiet",
                    "--kubernetes-version",
                    version,
                ])
                .arg(&file)
                .output()
                .unwrap_or_else(|e| panic!("python3 -m kubernetes_validate: {e}"));
            let report = String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "{install} on {version}:\n{report}");
            for line in report.lines().filter(|l| !l.trim().is_empty()) {
                let unknown = CUSTOM_KINDS
                    .iter()
                    .any(|kind| line.contains(&format!("Couldn't find schema for kind {kind} ")));
                assert!(unknown, "{install} on {version}: {line}");
            }
        }
        for resource in &objects {
            let kind = resource["kind"].as_str().unwrap();
            if CUSTOM_KINDS.contains(&kind) {
                check_custom_resource(resource);
            }
            assert_eq!(
                resource["metadata"]["labels"]["app.kubernetes.io/part-of"], "tollgate",
                "{install}: {kind} {} is not labelled",
                resource["metadata"]["name"]
            );
        }
    }
}

/// The fields of the custom resources Tollgate installs, as their CRDs define them
/// (prometheus-operator `monitoring.coreos.com/v1`, cert-manager `cert-manager.io/v1`):
/// `"string"`, `"integer"`, `"object"` (any map), a nested map of fields, or a one-element
/// list of the item's fields. A `!` before a field's name marks it required.
fn custom_resource_fields(kind: &str) -> Value {
    let metadata = json!({"!name": "string", "namespace": "string", "labels": "object",
                          "annotations": "object"});
    let spec = match kind {
        "ServiceMonitor" => json!({
            "!selector": {"matchLabels": "object", "matchExpressions": ["object"]},
            "namespaceSelector": {"any": "boolean", "matchNames": ["string"]},
            "jobLabel": "string",
            "!endpoints": [{"port": "string", "path": "string", "scheme": "string",
                            "interval": "string", "scrapeTimeout": "string",
                            "honorLabels": "boolean", "relabelings": ["object"],
                            "metricRelabelings": ["object"]}],
        }),
        "Issuer" => json!({"selfSigned": "object", "ca": {"!secretName": "string"}}),
        "Certificate" => json!({
            "!secretName": "string", "commonName": "string", "duration": "string",
            "renewBefore": "string", "dnsNames": ["string"], "usages": ["string"],
            "privateKey": {"algorithm": "string", "size": "integer", "encoding": "string",
                           "rotationPolicy": "string"},
            "!issuerRef": {"!name": "string", "kind": "string", "group": "string"},
        }),
        other => panic!("no fields known for {other}"),
    };
    json!({"!apiVersion": "string", "!kind": "string", "!metadata": metadata, "!spec": spec})
}

fn check_custom_resource(resource: &Value) {
    let kind = resource["kind"].as_str().unwrap();
    let api_version = match kind {
        "ServiceMonitor" => "monitoring.coreos.com/v1",
        _ => "cert-manager.io/v1",
    };
    assert_eq!(resource["apiVersion"], api_version);
    conform(resource, &custom_resource_fields(kind), kind);
}

/// Asserts `value` has only the fields of `fields` (and all required ones), of their types.
fn conform(value: &Value, fields: &Value, at: &str) {
    match fields {
        Value::String(kind) => {
            let ok = match kind.as_str() {
                "string" => value.is_string(),
                "integer" => value.is_i64() || value.is_u64(),
                "boolean" => value.is_boolean(),
                "object" => value.is_object(),
                other => panic!("unknown type {other}"),
            };
            assert!(ok, "{at}: {value} is not a {kind}");
        }
        Value::Array(item) => {
            let list = value
                .as_array()
                .unwrap_or_else(|| panic!("{at} is not a list"));
            for (i, element) in list.iter().enumerate() {
                conform(element, &item[0], &format!("{at}[{i}]"));
            }
        }
        Value::Object(known) => {
            let map = value
                .as_object()
                .unwrap_or_else(|| panic!("{at} is not a map"));
            for (name, field) in known {
                let bare = name.trim_start_matches('!');
                match map.get(bare) {
                    Some(v) => conform(v, field, &format!("{at}.{bare}")),
                    None => assert!(!name.starts_with('!'), "{at}.{bare} is required"),
                }
            }
            for name in map.keys() {
                assert!(
                    known.contains_key(name) || known.contains_key(&format!("!{name}")),
                    "{at}.{name} is not a field"
                );
            }
        }
        other => panic!("bad field description {other}"),
    }
}

#[test]
fn the_custom_resource_check_refuses_unknown_and_missing_fields() {
    let (_, objects) = render("deploy/overlays/webhook");
    let certificate = object(&objects, "Certificate", "tollgate-webhook");
    let mut typo = certificate.clone();
    typo["spec"]["dnsName"] = json!(["x"]);
    let mut missing = certificate.clone();
    missing["spec"]
        .as_object_mut()
        .unwrap()
        .remove("secretName");
    for broken in [typo, missing] {
        assert!(std::panic::catch_unwind(|| check_custom_resource(&broken)).is_err());
    }
}

// ---------------------------------------------------------------------------------------------
// RBAC

/// What Tollgate reads: (API group, resource).
const READS: [(&str, &str); 6] = [
    ("", "pods"),
    ("", "nodes"),
    ("", "namespaces"),
    ("resource.k8s.io", "resourceclaims"),
    ("resource.k8s.io", "resourceslices"),
    ("resource.k8s.io", "resourceclaimtemplates"),
];

#[test]
fn rbac_reads_the_cluster_and_writes_only_its_own_lease() {
    for install in INSTALLS {
        let (_, objects) = render(install);
        let config: toml::Value =
            toml::from_str(config_file(&objects, "tollgate-config", "tollgate.toml")).unwrap();
        let lease = config["leader"]["lease"].as_str().unwrap();

        let cluster_roles: Vec<_> = objects_of(&objects, "ClusterRole").collect();
        assert_eq!(cluster_roles.len(), 1, "{install}: one ClusterRole");
        let mut read = BTreeSet::new();
        for rule in cluster_roles[0]["rules"].as_array().unwrap() {
            assert!(rule.get("nonResourceURLs").is_none());
            assert!(rule.get("resourceNames").is_none());
            assert_eq!(
                strings(&rule["verbs"]),
                ["get", "list", "watch"],
                "{install}"
            );
            for group in strings(&rule["apiGroups"]) {
                for resource in strings(&rule["resources"]) {
                    read.insert((group, resource));
                }
            }
        }
        assert_eq!(read, READS.into_iter().collect(), "{install}");

        // The one namespaced Role: the replicas' Lease, created once and then only its own.
        let roles: Vec<_> = objects_of(&objects, "Role").collect();
        assert_eq!(roles.len(), 1, "{install}");
        for rule in roles[0]["rules"].as_array().unwrap() {
            assert_eq!(strings(&rule["apiGroups"]), ["coordination.k8s.io"]);
            assert_eq!(strings(&rule["resources"]), ["leases"]);
            match strings(&rule["verbs"]).as_slice() {
                ["create"] => assert!(rule.get("resourceNames").is_none()),
                ["get", "update"] => assert_eq!(strings(&rule["resourceNames"]), [lease]),
                other => panic!("{install}: Lease verbs {other:?}"),
            }
        }
        assert_eq!(roles[0]["metadata"]["namespace"], "tollgate");

        // Nothing anywhere uses a wildcard.
        for role in objects
            .iter()
            .filter(|o| o["kind"].as_str().unwrap().ends_with("Role"))
        {
            let text = role["rules"].to_string();
            assert!(!text.contains('*'), "{install}: wildcard in {text}");
        }

        // Bindings give these roles (and, with auth on, the built-in TokenReview delegate) to
        // Tollgate's service account only.
        let auth = env(container(&objects), "TOLLGATE__AUTH__MODE").is_some();
        for binding in objects
            .iter()
            .filter(|o| o["kind"].as_str().unwrap().ends_with("RoleBinding"))
        {
            let role = binding["roleRef"]["name"].as_str().unwrap();
            let ours = objects
                .iter()
                .any(|o| o["kind"] == binding["roleRef"]["kind"] && o["metadata"]["name"] == role);
            assert!(
                ours || (auth && role == "system:auth-delegator"),
                "{install}: binds {role}"
            );
            assert_eq!(
                binding["subjects"],
                json!([{"kind": "ServiceAccount", "name": "tollgate", "namespace": "tollgate"}])
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The Deployment and the objects around it

#[test]
fn two_locked_down_replicas_survive_the_loss_of_one() {
    let (_, objects) = render("deploy");
    let deployment = object(&objects, "Deployment", "tollgate");
    let spec = &deployment["spec"];
    let pod = &spec["template"]["spec"];
    let labels = &spec["template"]["metadata"]["labels"];
    assert_eq!(spec["replicas"], 2);
    assert_eq!(spec["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
    assert!(selects(&spec["selector"], labels));

    let pdb = object(&objects, "PodDisruptionBudget", "tollgate");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert!(selects(&pdb["spec"]["selector"], labels));
    let spread = pod["topologySpreadConstraints"].as_array().unwrap();
    let hosts = spread
        .iter()
        .find(|c| c["topologyKey"] == "kubernetes.io/hostname")
        .unwrap();
    assert_eq!(hosts["whenUnsatisfiable"], "DoNotSchedule");
    assert!(spread.iter().all(|c| selects(&c["labelSelector"], labels)));

    // Locked down.
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], IMAGE_USER);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let container = container(&objects);
    let security = &container["securityContext"];
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert!(security["capabilities"].get("add").is_none());
    assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");
    for resource in ["cpu", "memory"] {
        assert!(container["resources"]["requests"][resource].is_string());
        assert!(container["resources"]["limits"][resource].is_string());
    }
    // A month by pod at 10,000 GPUs peaks at ~1.0-1.1 GiB, the token report by pod at ~1.35
    // GiB (docs/install.md, Sizing): under 1Gi the kernel would kill the pod mid-report.
    assert_eq!(container["resources"]["limits"]["memory"], "2Gi");

    // Probes reach the port the configuration listens on.
    let config: toml::Value =
        toml::from_str(config_file(&objects, "tollgate-config", "tollgate.toml")).unwrap();
    let listen = config["server"]["listen"].as_str().unwrap();
    let http = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "http")
        .unwrap();
    assert_eq!(listen, format!("0.0.0.0:{}", http["containerPort"]));
    for (probe, path) in [
        ("startupProbe", "/healthz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ] {
        assert_eq!(container[probe]["httpGet"]["path"], path);
        assert_eq!(container[probe]["httpGet"]["port"], "http");
    }
    assert_eq!(config["leader"]["enabled"].as_bool(), Some(true));

    // Writable: only the data volume and /tmp.
    for (path, mount, volume) in mounts(pod) {
        if let Some(map) = volume.get("configMap") {
            assert_eq!(mount["readOnly"], true, "{path}");
            object(&objects, "ConfigMap", map["name"].as_str().unwrap());
        } else if let Some(claim) = volume.get("persistentVolumeClaim") {
            assert_eq!(path, config["store"]["dir"].as_str().unwrap());
            let pvc = object(
                &objects,
                "PersistentVolumeClaim",
                claim["claimName"].as_str().unwrap(),
            );
            assert_eq!(pvc["spec"]["accessModes"], json!(["ReadWriteMany"]));
        } else {
            assert!(volume.get("emptyDir").is_some() && path == "/tmp", "{path}");
        }
    }

    // The Service, ServiceMonitor and NetworkPolicy find the pods and their port.
    let service = object(&objects, "Service", "tollgate");
    assert!(selects(&service["spec"]["selector"], labels));
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");
    let monitor = object(&objects, "ServiceMonitor", "tollgate");
    assert!(selects(
        &monitor["spec"]["selector"],
        &service["metadata"]["labels"]
    ));
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "http");
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    let policy = object(&objects, "NetworkPolicy", "tollgate");
    assert!(selects(&policy["spec"]["podSelector"], labels));
    let open_ports: Vec<_> = policy["spec"]["ingress"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|rule| rule["ports"].as_array().unwrap())
        .map(|p| p["port"].as_i64().unwrap())
        .collect();
    assert!(open_ports.contains(&8080) && open_ports.contains(&8443));

    // One replica on a ReadWriteOnce volume, without a PodDisruptionBudget that would block
    // every drain.
    let (_, single) = render("deploy/overlays/single-replica");
    assert_eq!(
        object(&single, "Deployment", "tollgate")["spec"]["replicas"],
        1
    );
    assert_eq!(
        object(&single, "Deployment", "tollgate")["spec"]["strategy"]["type"],
        "Recreate"
    );
    assert_eq!(
        object(&single, "PersistentVolumeClaim", "tollgate-data")["spec"]["accessModes"],
        json!(["ReadWriteOnce"])
    );
    assert_eq!(objects_of(&single, "PodDisruptionBudget").count(), 0);
}

#[test]
fn the_rate_card_and_budgets_config_maps_are_valid() {
    let (_, objects) = render("deploy");
    let dir = tempfile::tempdir().unwrap();
    let rates = dir.path().join("rates.toml");
    std::fs::write(
        &rates,
        config_file(&objects, "tollgate-pricing", "rates.toml"),
    )
    .unwrap();
    let card = tollgate::pricing::RateCard::load(&rates).unwrap();
    // The example card, as built in (pricing/default.toml).
    assert_eq!(
        card.models().len(),
        tollgate::pricing::RateCard::builtin().models().len()
    );
    let budgets = dir.path().join("budgets.toml");
    std::fs::write(
        &budgets,
        config_file(&objects, "tollgate-budgets", "budgets.toml"),
    )
    .unwrap();
    let config = dir.path().join("tollgate.toml");
    std::fs::write(
        &config,
        format!(
            "[quota]\nbudgets_file = {:?}\n",
            budgets.display().to_string()
        ),
    )
    .unwrap();
    let settings = tollgate::config::Settings::load(Some(&config)).unwrap();
    assert_eq!(
        tollgate::budget::validate_budgets(&settings.budget)
            .unwrap()
            .len(),
        2
    );
}

// ---------------------------------------------------------------------------------------------
// The webhook overlay

fn pod_with(container: Value, extra: Value) -> Value {
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "team-a"},
        "spec": {"containers": [container]}});
    if let (Some(spec), Some(extra)) = (pod["spec"].as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    pod
}

#[test]
fn the_webhook_asks_tollgate_about_new_gpu_pods_only() {
    let (_, objects) = render("deploy/overlays/webhook");
    let configuration = object(
        &objects,
        "ValidatingWebhookConfiguration",
        "tollgate-gpu-budget",
    );
    let webhooks = configuration["webhooks"].as_array().unwrap();
    assert_eq!(webhooks.len(), 1);
    let webhook = &webhooks[0];
    assert_eq!(webhook["failurePolicy"], "Ignore");
    assert_eq!(webhook["sideEffects"], "NoneOnDryRun");
    assert_eq!(webhook["admissionReviewVersions"], json!(["v1"]));
    let timeout = webhook["timeoutSeconds"].as_i64().unwrap();
    assert!((1..=30).contains(&timeout));
    assert_eq!(webhook["rules"][0]["operations"], json!(["CREATE"]));
    assert_eq!(webhook["rules"][0]["resources"], json!(["pods"]));
    let excluded = &webhook["namespaceSelector"]["matchExpressions"][0];
    assert_eq!(excluded["operator"], "NotIn");
    assert!(strings(&excluded["values"]).contains(&"tollgate"));

    // The API server reaches the HTTPS port of the Service, and so the container's TLS
    // listener, with the certificate cert-manager issues for the Service's name.
    let client = &webhook["clientConfig"]["service"];
    assert_eq!(client["path"], "/admission/v1/validate");
    let service = object(&objects, "Service", client["name"].as_str().unwrap());
    assert_eq!(service["metadata"]["namespace"], client["namespace"]);
    let port = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"] == client["port"])
        .unwrap();
    let container = container(&objects);
    let https = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == port["targetPort"])
        .unwrap();
    assert_eq!(
        env(container, "TOLLGATE__TLS__LISTEN").unwrap(),
        format!("0.0.0.0:{}", https["containerPort"])
    );
    let injected = configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
        .as_str()
        .unwrap();
    let (namespace, name) = injected.split_once('/').unwrap();
    let certificate = object(&objects, "Certificate", name);
    assert_eq!(certificate["metadata"]["namespace"], namespace);
    assert!(
        strings(&certificate["spec"]["dnsNames"])
            .contains(&format!("{}.{}.svc", client["name"].as_str().unwrap(), namespace).as_str())
    );
    object(
        &objects,
        "Issuer",
        certificate["spec"]["issuerRef"]["name"].as_str().unwrap(),
    );
    let pod = &object(&objects, "Deployment", "tollgate")["spec"]["template"]["spec"];
    let (tls_dir, _, _) = mounts(pod)
        .into_iter()
        .find(|(_, _, volume)| volume["secret"]["secretName"] == certificate["spec"]["secretName"])
        .unwrap();
    for (variable, file) in [
        ("TOLLGATE__TLS__CERT_FILE", "tls.crt"),
        ("TOLLGATE__TLS__KEY_FILE", "tls.key"),
    ] {
        assert_eq!(
            env(container, variable).unwrap(),
            format!("{tls_dir}/{file}")
        );
    }

    // matchConditions, evaluated as the API server does: only pods that hold GPUs.
    let cel = Cel::default();
    let asks = |pod: &Value| cel.all_hold(&webhook["matchConditions"], &[("object", pod)]);
    let gpu = |resources: Value| json!({"name": "c", "image": "i", "resources": resources});
    let cpu = gpu(json!({"requests": {"cpu": "1", "memory": "1Gi"}}));
    let asked = [
        pod_with(gpu(json!({"limits": {"nvidia.com/gpu": "1"}})), json!({})),
        pod_with(
            gpu(json!({"requests": {"nvidia.com/mig-1g.10gb": "2"}})),
            json!({}),
        ),
        pod_with(
            gpu(json!({"limits": {"nvidia.com/gpu.shared": "1"}})),
            json!({}),
        ),
        pod_with(
            cpu.clone(),
            json!({"initContainers": [gpu(json!({"limits": {"nvidia.com/gpu": "1"}}))]}),
        ),
        pod_with(
            cpu.clone(),
            json!({"resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "one-gpu"}]}),
        ),
    ];
    for pod in &asked {
        assert!(asks(pod), "not asked about {pod}");
    }
    let not_asked = [
        pod_with(cpu.clone(), json!({})),
        pod_with(json!({"name": "c", "image": "i"}), json!({})),
        pod_with(
            gpu(json!({"limits": {"example.com/fpga": "1"}})),
            json!({"initContainers": [cpu.clone()], "resourceClaims": []}),
        ),
    ];
    for pod in &not_asked {
        assert!(!asks(pod), "asked about {pod}");
    }
}

// ---------------------------------------------------------------------------------------------
// Running the install

/// The Dockerfile's final stage: its base image, user and entrypoint.
struct Image {
    base: String,
    user: String,
    entrypoint: Vec<String>,
    env: Vec<(String, String)>,
}

fn image() -> Image {
    let text = std::fs::read_to_string("Dockerfile").unwrap();
    let last = text.rsplit_once("\nFROM ").unwrap().1;
    let instruction = |name: &'static str| {
        last.lines()
            .filter_map(move |l| l.strip_prefix(name)?.strip_prefix(' '))
            .map(str::trim)
    };
    Image {
        base: last.lines().next().unwrap().trim().to_string(),
        user: instruction("USER").next_back().unwrap().to_string(),
        entrypoint: serde_json::from_str(instruction("ENTRYPOINT").next_back().unwrap()).unwrap(),
        env: instruction("ENV")
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect(),
    }
}

/// The files of the distroless base image the binary reads: the CA certificates (the
/// Kubernetes client loads them even to reach an API server over plain HTTP).
const BASE_IMAGE_FILES: [&str; 1] = ["/etc/ssl/certs/ca-certificates.crt"];

/// The shared libraries of Debian 12's distroless/cc base image (glibc and libgcc).
const DISTROLESS_CC: [&str; 9] = [
    "ld-linux-x86-64.so.2",
    "libc.so.6",
    "libm.so.6",
    "libgcc_s.so.1",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libutil.so.1",
    "libgomp.so.1",
];

/// The shared libraries the binary loads: their paths.
fn shared_libraries(binary: &Path) -> Vec<PathBuf> {
    let output = Command::new("ldd").arg(binary).output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| {
            let path = line.split_whitespace().find(|w| w.starts_with('/'))?;
            Some(PathBuf::from(path))
        })
        .collect()
}

#[test]
fn the_image_is_distroless_cc_as_non_root_and_needs_nothing_more() {
    let image = image();
    assert!(
        image
            .base
            .starts_with("gcr.io/distroless/cc-debian12:nonroot"),
        "{}",
        image.base
    );
    assert_eq!(image.user, format!("{IMAGE_USER}:{IMAGE_USER}"));
    assert_eq!(image.entrypoint, ["/usr/local/bin/tollgate"]);
    for library in shared_libraries(Path::new(env!("CARGO_BIN_EXE_tollgate"))) {
        let name = library.file_name().unwrap().to_str().unwrap();
        assert!(DISTROLESS_CC.contains(&name), "needs {name}");
    }
    let (_, objects) = render("deploy");
    let config: toml::Value =
        toml::from_str(config_file(&objects, "tollgate-config", "tollgate.toml")).unwrap();
    assert!(image.env.contains(&(
        "TOLLGATE__STORE__DIR".to_string(),
        config["store"]["dir"].as_str().unwrap().to_string()
    )));
}

/// A rendered install's container, running in a root of its own.
struct Container {
    service: ServeProcess,
    data: PathBuf,
    /// The mapped HTTPS port, if the container listens on one.
    https: Option<String>,
    _root: tempfile::TempDir,
}

/// The pod's name, as the Downward API gives it.
const POD_NAME: &str = "tollgate-5d9c7b8f4-x2k8q";

/// Writes `contents` at `root` + `path`, making the directories.
fn place(root: &Path, path: &str, contents: &[u8]) {
    let file = root.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, contents).unwrap();
}

/// Starts the Deployment's container of `objects` as a kubelet would on the Dockerfile's image:
/// ConfigMaps and `secrets` ({name → {key → contents}}) mounted where the pod says, the data
/// volume writable by the image's user, everything else read-only.
async fn run(
    objects: &[Value],
    api: &FakeApiServer,
    secrets: &BTreeMap<&str, BTreeMap<&str, Vec<u8>>>,
) -> Container {
    let image = image();
    let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let top = root.path().join("root");
    let log = root.path().join("tollgate.log");
    let binary = Path::new(env!("CARGO_BIN_EXE_tollgate"));

    // The image: the binary, the base image's libraries and files (bind-mounted below).
    place(&top, &image.entrypoint[0], b"");
    let mut libraries = shared_libraries(binary);
    libraries.extend(BASE_IMAGE_FILES.map(PathBuf::from));
    for library in &libraries {
        place(&top, library.to_str().unwrap(), b"");
    }
    for dir in ["tmp", "proc", "dev"] {
        std::fs::create_dir_all(top.join(dir)).unwrap();
    }

    // The pod's volumes.
    let pod = &object(objects, "Deployment", "tollgate")["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let mut data = None;
    for (path, mount, volume) in mounts(pod) {
        let files: BTreeMap<String, Vec<u8>> = if let Some(map) = volume.get("configMap") {
            let map = object(objects, "ConfigMap", map["name"].as_str().unwrap());
            map["data"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().as_bytes().to_vec()))
                .collect()
        } else if let Some(secret) = volume.get("secret") {
            let name = secret["secretName"].as_str().unwrap();
            secrets
                .get(name)
                .unwrap_or_else(|| panic!("the test has no Secret {name}"))
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect()
        } else if volume.get("persistentVolumeClaim").is_some() {
            let dir = top.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(&dir).unwrap();
            let group = pod["securityContext"]["fsGroup"].as_u64().unwrap() as u32;
            chown(&dir, Some(IMAGE_USER), Some(group)).unwrap();
            data = Some(dir);
            continue;
        } else {
            assert_eq!(path, "/tmp");
            continue;
        };
        match mount["subPath"].as_str() {
            Some(key) => place(&top, path, &files[key]),
            None => {
                for (key, contents) in &files {
                    place(&top, &format!("{path}/{key}"), contents);
                }
            }
        }
    }
    let data = data.expect("a data volume");

    // The environment: the image's, then the container's (Downward API resolved), the API
    // server through a kubeconfig, and the ports mapped to free loopback ports.
    let kubeconfig = std::fs::read(api.kubeconfig(root.path())).unwrap();
    place(&top, "/var/run/kubeconfig", &kubeconfig);
    let mut variables: Vec<(String, String)> = image.env.clone();
    for variable in container["env"].as_array().into_iter().flatten() {
        let name = variable["name"].as_str().unwrap().to_string();
        let value = match variable["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            Some("metadata.name") => POD_NAME.to_string(),
            Some("metadata.namespace") => "tollgate".to_string(),
            Some(other) => panic!("field {other}"),
            None => variable["value"].as_str().unwrap().to_string(),
        };
        variables.push((name, value));
    }
    variables.push(("KUBECONFIG".into(), "/var/run/kubeconfig".into()));
    let address = format!("127.0.0.1:{}", free_port());
    variables.push(("TOLLGATE__SERVER__LISTEN".into(), address.clone()));
    let https = env(container, "TOLLGATE__TLS__LISTEN").map(|_| {
        let mapped = format!("127.0.0.1:{}", free_port());
        variables.push(("TOLLGATE__TLS__LISTEN".into(), mapped.clone()));
        mapped
    });

    // A mount namespace: the root read-only but for the data volume, a fresh /tmp and /proc;
    // then the entrypoint as the image's user, without capabilities or new privileges.
    let top_text = top.to_str().unwrap();
    let mut script = format!("set -e\nmount --bind '{top_text}' '{top_text}'\n");
    script += &format!("mount --bind '{0}' '{0}'\n", data.display());
    for library in libraries.iter().chain([&binary.to_path_buf()]) {
        let inside = if library == binary {
            image.entrypoint[0].clone()
        } else {
            library.display().to_string()
        };
        script += &format!(
            "mount --bind -o ro '{}' '{top_text}{inside}'\n",
            library.display()
        );
    }
    script += &format!(
        "mount -o remount,bind,ro '{top_text}'\nmount -t tmpfs -o size=64m tmpfs '{top_text}/tmp'\n\
         mount -t proc proc '{top_text}/proc'\nmount --rbind /dev '{top_text}/dev'\n\
         exec setpriv --no-new-privs chroot --userspec={IMAGE_USER}:{IMAGE_USER} '{top_text}' \"$@\"\n"
    );
    let mut command = Command::new("unshare");
    command
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
            "sh",
        ])
        .args(&image.entrypoint)
        .args(strings(&container["args"]))
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .envs(variables);
    let service = ServeProcess::run(command, address, &log).await;
    Container {
        service,
        data,
        https,
        _root: root,
    }
}

impl Container {
    /// Checks the process runs as the image's user with nothing more, its root read-only, and
    /// that it logged no error.
    fn check_locked_down(&self) {
        let pid = self.service.child.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}:")))
                .unwrap()
                .split_whitespace()
                .collect::<Vec<_>>()
        };
        let user = IMAGE_USER.to_string();
        assert_eq!(field("Uid"), [user.as_str(); 4]);
        assert_eq!(field("Gid"), [user.as_str(); 4]);
        assert_eq!(field("CapEff"), ["0000000000000000"]);
        assert_eq!(field("NoNewPrivs"), ["1"]);
        let mounts = std::fs::read_to_string(format!("/proc/{pid}/mounts")).unwrap();
        let root = mounts
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|fields| fields[1] == "/")
            .unwrap();
        assert!(root[3].split(',').any(|o| o == "ro"), "root is {}", root[3]);
        let log = self.service.log();
        assert!(!log.contains("\"level\":\"ERROR\""), "{log}");
    }

    /// Waits until the ledger is on the data volume.
    async fn wait_for_ledger(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let written = std::fs::read_dir(&self.data).unwrap().any(|e| {
                e.unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("ledger-")
            });
            if written {
                return;
            }
            assert!(Instant::now() < deadline, "{}", self.service.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

const CHARGEBACK: &str = "/api/v1/chargeback?from=2026-11-01&to=2026-11-02";
const QUOTA_CHECK: &str = "/api/v1/quota/check";

/// The fake API server holding the fixture cluster.
async fn cluster() -> FakeApiServer {
    let api = FakeApiServer::start().await;
    api.load_snapshot(Path::new("tests/fixtures/snapshot"));
    api
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_install_runs_as_non_root_on_a_read_only_root_and_writes_its_volume() {
    let (_, objects) = render("deploy");
    let api = cluster().await;
    let container = run(&objects, &api, &BTreeMap::new()).await;
    container.check_locked_down();
    container.wait_for_ledger().await;

    // It leads (POD_NAME and POD_NAMESPACE name it in the Lease) and answers.
    let lease = api.lease("tollgate", "tollgate").expect("the Lease");
    assert_eq!(lease["spec"]["holderIdentity"], POD_NAME);
    let csv = container.service.get(CHARGEBACK).await;
    assert!(csv.starts_with("period_start,"), "{csv}");
    let metrics = container.service.get("/metrics").await;
    assert!(
        metrics.contains("tollgate_gpu_allocated_units{"),
        "{metrics}"
    );
    assert!(metrics.contains("tollgate_budget{"), "{metrics}");
    container.check_locked_down();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_finance_tokens_install_refuses_chargebacks_without_a_listed_token() {
    let (_, objects) = render("deploy/overlays/finance-tokens");
    let api = cluster().await;
    let tokens = BTreeMap::from([(
        "tollgate-finance-tokens",
        BTreeMap::from([("tokens", b"# finance\nf1nance-reader-token\n".to_vec())]),
    )]);
    let container = run(&objects, &api, &tokens).await;
    container.check_locked_down();
    let address = &container.service.address;
    assert_eq!(http_get(address, CHARGEBACK).await.unwrap().0, 401);
    assert_eq!(
        http_get_as(address, CHARGEBACK, Some("guess"))
            .await
            .unwrap()
            .0,
        401
    );
    let (status, csv) = http_get_as(address, CHARGEBACK, Some("f1nance-reader-token"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{csv}");
    assert_eq!(http_get(address, "/metrics").await.unwrap().0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_review_install_lets_the_finance_namespace_and_kyverno_in() {
    let (_, objects) = render("deploy/overlays/token-review");
    let api = cluster().await;
    let service_account = |token: &str, namespace: &str, name: &str, audience: &str| {
        api.accept_token(
            token,
            &format!("system:serviceaccount:{namespace}:{name}"),
            &[
                "system:serviceaccounts",
                &format!("system:serviceaccounts:{namespace}"),
            ],
            &[audience],
        );
    };
    service_account("finance-sa", "finance", "reporter", API_AUDIENCE);
    service_account("other-sa", "team-a", "app", API_AUDIENCE);
    let kyverno = "kyverno-svc.kyverno.io";
    service_account(
        "kyverno",
        "kyverno",
        "kyverno-admission-controller",
        kyverno,
    );
    service_account("impostor", "team-a", "app", kyverno);
    let container = run(&objects, &api, &BTreeMap::new()).await;
    container.check_locked_down();
    let address = &container.service.address;
    for (token, status) in [
        (None, 401),
        (Some("other-sa"), 403),
        (Some("kyverno"), 401),
        (Some("finance-sa"), 200),
    ] {
        let (got, body) = http_get_as(address, CHARGEBACK, token).await.unwrap();
        assert_eq!(got, status, "{token:?}: {body}");
    }
    let check = json!({"namespace": "team-a", "gpus": 1}).to_string();
    for (token, status) in [
        (Some("kyverno"), 200),
        (Some("impostor"), 403),
        (Some("finance-sa"), 401),
    ] {
        let (got, body) = http_post_as(address, QUOTA_CHECK, &check, token)
            .await
            .unwrap();
        assert_eq!(got, status, "{token:?}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_install_answers_admission_reviews_over_https() {
    let (_, objects) = render("deploy/overlays/webhook");
    let api = cluster().await;
    let issued = rcgen::generate_simple_self_signed(vec![
        "tollgate.tollgate.svc".to_string(),
        "localhost".to_string(),
    ])
    .unwrap();
    let secrets = BTreeMap::from([(
        "tollgate-webhook-tls",
        BTreeMap::from([
            ("tls.crt", issued.cert.pem().into_bytes()),
            ("tls.key", issued.signing_key.serialize_pem().into_bytes()),
        ]),
    )]);
    let container = run(&objects, &api, &secrets).await;
    container.check_locked_down();
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "0df28fbd-5f5f-4a2a-9b52-2c3a4e6c8d11",
                    "kind": {"group": "", "version": "v1", "kind": "Pod"},
                    "namespace": "team-a", "operation": "CREATE", "dryRun": true,
                    "object": pod_with(json!({"name": "c", "image": "i",
                        "resources": {"limits": {"nvidia.com/gpu": "1"}}}), json!({}))}})
    .to_string();
    let request = format!(
        "POST /admission/v1/validate HTTP/1.1\r\nHost: tollgate.tollgate.svc\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{review}",
        review.len()
    );
    let address = container.https.as_deref().unwrap();
    let (_, response) = support::https(address, &[issued.cert.der()], &request).await;
    let body: Value = serde_json::from_str(response.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(body["kind"], "AdmissionReview");
    assert_eq!(
        body["response"]["uid"],
        "0df28fbd-5f5f-4a2a-9b52-2c3a4e6c8d11"
    );
    assert!(body["response"]["allowed"].is_boolean(), "{body}");
}
