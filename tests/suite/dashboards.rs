//! The Grafana dashboards in `dashboards/`: their shape (current schema, a `datasource`
//! variable every panel uses, only SPEC §4.4 metrics and DCGM's), and every PromQL expression
//! run as a range query against a real Prometheus holding Tollgate's own `/metrics` output.
//!
//! The data: a real `tollgate serve` watches the fixture cluster on the fake API server, with
//! budgets and a first Prometheus holding DCGM series; it answers allowed and denied quota
//! checks between scrapes of its `/metrics`. The scrapes (30 s apart) and the DCGM series are
//! backfilled into a second Prometheus, which the dashboards' queries are asked.

use crate::support;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::Path;

use prometheus_http_query::Client;
use serde_json::{Value, json};
use support::apiserver::FakeApiServer;
use support::prometheus::{OpenMetrics, TestPrometheus};
use support::{ServeProcess, http_post};

/// The metrics of SPEC §4.4.
const TOLLGATE_METRICS: [&str; 12] = [
    "tollgate_gpu_allocated_units",
    "tollgate_gpu_cost_per_hour",
    "tollgate_gpu_utilization_ratio",
    "tollgate_cost_center_spend",
    "tollgate_budget",
    "tollgate_budget_projected",
    "tollgate_budget_headroom",
    "tollgate_unallocated_gpu_units",
    "tollgate_quota_checks_total",
    "tollgate_quota_check_duration_seconds",
    "tollgate_source_up",
    "tollgate_cost_per_million_tokens",
];

/// Every dashboard: (file, JSON).
fn dashboards() -> Vec<(String, Value)> {
    let mut found: Vec<_> = std::fs::read_dir("dashboards")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let json =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path.display().to_string(), json)
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(found.len() >= 2, "dashboards/ holds {found:?}");
    found
}

fn panels(dashboard: &Value) -> impl Iterator<Item = &Value> {
    dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] != "row")
}

/// `label_values(selector, label)` of a variable query: (selector, label).
fn label_values(query: &str) -> (&str, &str) {
    let inner = query
        .strip_prefix("label_values(")
        .and_then(|q| q.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{query} is not label_values(…)"));
    let (selector, label) = inner.rsplit_once(',').unwrap();
    (selector.trim(), label.trim())
}

/// Every query of a dashboard: panel targets and variable selectors, (where, PromQL).
fn queries(file: &str, dashboard: &Value) -> Vec<(String, String)> {
    let mut all = Vec::new();
    for panel in panels(dashboard) {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            all.push((format!("{file}: {}", panel["title"]), expr.to_string()));
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if variable["type"] == "query" {
            let (selector, _) = label_values(variable["definition"].as_str().unwrap());
            all.push((format!("{file}: ${}", variable["name"]), selector.into()));
        }
    }
    all
}

/// Grafana's variables as the test fills them: every value, and a 6-minute range.
fn expand(expr: &str) -> String {
    expr.replace("$cost_center", ".*")
        .replace("$namespace", ".*")
        .replace("$__rate_interval", "2m")
        .replace("$__range_s", "360")
        .replace("$__range", "6m")
}

#[test]
fn dashboards_are_current_use_the_datasource_variable_and_only_tollgate_and_dcgm_metrics() {
    let mut uids = BTreeSet::new();
    for (file, dashboard) in dashboards() {
        assert!(dashboard["schemaVersion"].as_i64().unwrap() >= 39, "{file}");
        assert!(uids.insert(dashboard["uid"].as_str().unwrap().to_string()));
        assert!(dashboard["title"].as_str().unwrap().starts_with("Tollgate"));
        let variables = dashboard["templating"]["list"].as_array().unwrap();
        let datasource = variables
            .iter()
            .find(|v| v["name"] == "datasource")
            .unwrap_or_else(|| panic!("{file}: no datasource variable"));
        assert_eq!(
            (&datasource["type"], &datasource["query"]),
            (&json!("datasource"), &json!("prometheus"))
        );
        let uses_variable = json!({"type": "prometheus", "uid": "${datasource}"});
        for variable in variables.iter().filter(|v| v["type"] == "query") {
            assert_eq!(variable["datasource"], uses_variable, "{file}");
        }
        let mut ids = BTreeSet::new();
        for panel in dashboard["panels"].as_array().unwrap() {
            assert!(
                ids.insert(panel["id"].as_i64().unwrap()),
                "{file}: panel ids"
            );
            let grid = &panel["gridPos"];
            assert!(grid["x"].as_i64().unwrap() + grid["w"].as_i64().unwrap() <= 24);
        }
        for panel in panels(&dashboard) {
            let title = &panel["title"];
            assert_eq!(panel["datasource"], uses_variable, "{file}: {title}");
            assert!(!panel["description"].as_str().unwrap().is_empty());
            for target in panel["targets"].as_array().unwrap() {
                assert_eq!(target["datasource"], uses_variable, "{file}: {title}");
            }
        }
        for (place, expr) in queries(&file, &dashboard) {
            let words = expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
            for word in words {
                if word.starts_with("tollgate_") {
                    let family = ["_bucket", "_sum", "_count"]
                        .iter()
                        .find_map(|suffix| word.strip_suffix(suffix))
                        .unwrap_or(word);
                    assert!(TOLLGATE_METRICS.contains(&family), "{place}: {word}");
                } else {
                    assert!(
                        !word.contains("DCGM") || word.starts_with("DCGM_FI_"),
                        "{place}: {word}"
                    );
                }
            }
        }
    }
}

/// DCGM's model names for the fixture's nodes.
const GPUS: [(&str, &str, &str, &str); 5] = [
    ("team-a", "chat-0", "node-h100", "NVIDIA H100 80GB HBM3"),
    ("team-a", "serve-0", "node-h100", "NVIDIA H100 80GB HBM3"),
    ("team-c", "a30-0", "node-a30", "NVIDIA A30"),
    ("team-d", "l40s-0", "node-l40s", "NVIDIA L40S"),
    ("team-d", "colo-0", "node-colo", "NVIDIA L40S"),
];

/// An hour of DCGM engine activity up to `now`, one sample a minute, per GPU above.
fn dcgm(om: &mut OpenMetrics, now: i64) {
    for (i, (namespace, pod, node, model)) in GPUS.iter().enumerate() {
        let uuid = format!("GPU-{i:08x}-0000-0000-0000-000000000000");
        let labels = [
            ("gpu", "0"),
            ("UUID", uuid.as_str()),
            ("Hostname", node),
            ("modelName", model),
            ("namespace", namespace),
            ("pod", pod),
            ("container", "main"),
        ];
        let busy = 0.15 * (i + 1) as f64;
        om.series(
            "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
            &labels,
            (now - 3600..=now).step_by(60).map(|t| (t, busy)),
        );
    }
    // chat-0 serves a model through vLLM: its token counters over the same hour.
    let vllm = [
        ("namespace", "team-a"),
        ("pod", "chat-0"),
        ("model_name", "llama-8b"),
    ];
    for (metric, per_minute) in [
        ("vllm:prompt_tokens_total", 3000.0),
        ("vllm:generation_tokens_total", 1000.0),
    ] {
        om.series(
            metric,
            &vllm,
            (now - 3600..=now)
                .step_by(60)
                .map(|t| (t, (t - now + 3600) as f64 / 60.0 * per_minute)),
        );
    }
}

const CONFIG: &str = r#"
[sources]
reconcile_seconds = 1

[[budget]]
cost_center = "cc-100"
monthly = "10.00"

[[budget]]
cost_center = "cc-400"
monthly = "1000000.00"
warn_at = 0.8

[[budget]]
namespace = "team-e"
monthly = "50000.00"
"#;

/// Quota checks: team-a is over its budget, team-d within, team-c has none.
const CHECKS: [&str; 3] = [
    r#"{"namespace": "team-a", "gpus": 1, "gpuModel": "H100"}"#,
    r#"{"namespace": "team-d", "gpus": 1, "gpuModel": "L40S"}"#,
    r#"{"namespace": "team-c", "gpus": 1, "gpuModel": "A30"}"#,
];

/// Scrapes of a running Tollgate, 30 s apart ending at `now`, with DCGM's series.
async fn tollgate_metrics(dir: &Path, now: i64) -> OpenMetrics {
    let mut om = OpenMetrics::default();
    dcgm(&mut om, now);
    let dcgm_only = TestPrometheus::start(&om.text());

    let api = FakeApiServer::start().await;
    api.load_snapshot(Path::new("tests/fixtures/snapshot"));
    let config = dir.join("tollgate.toml");
    std::fs::write(
        &config,
        format!("{CONFIG}\n[prometheus]\nurl = \"{}\"\n", dcgm_only.url),
    )
    .unwrap();
    let data = dir.join("data");
    let tollgate = ServeProcess::start(
        &[
            "--pricing",
            "tests/fixtures/rates.toml",
            "--config",
            config.to_str().unwrap(),
        ],
        &[
            ("KUBECONFIG", api.kubeconfig(dir).as_os_str()),
            ("TOLLGATE__STORE__DIR", data.as_os_str()),
            ("POD_NAME", OsStr::new("tollgate-0")),
        ],
        &dir.join("tollgate.log"),
    )
    .await;
    // Wait for the first utilization read and the first token costs.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let metrics = tollgate.get("/metrics").await;
        if [
            "tollgate_gpu_utilization_ratio{",
            "tollgate_cost_per_million_tokens{",
        ]
        .iter()
        .all(|metric| metrics.contains(metric))
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", tollgate.log());
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    const SCRAPES: i64 = 13;
    for scrape in 0..SCRAPES {
        for (i, check) in CHECKS.iter().enumerate() {
            for _ in 0..=(scrape + i as i64) % 3 {
                let (status, body) =
                    http_post(&tollgate.address, "/api/v1/quota/check", check, None)
                        .await
                        .unwrap();
                assert_eq!(status, 200, "{body}");
            }
        }
        let exposition = tollgate.get("/metrics").await;
        om.scrape(&exposition, now - (SCRAPES - 1 - scrape) * 30);
    }
    om
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_returns_data_from_tollgate_s_own_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let now = jiff::Timestamp::now().as_second();
    let om = tollgate_metrics(dir.path(), now).await;
    let text = om.text();
    for (metric, value) in [
        ("tollgate_quota_checks_total{decision=\"deny\"}", None),
        ("tollgate_quota_checks_total{decision=\"allow\"}", None),
        ("tollgate_source_up{source=\"kubernetes\"}", Some(" 1 ")),
        ("tollgate_source_up{source=\"prometheus\"}", Some(" 1 ")),
    ] {
        // Every series also carries the cluster's name.
        let line = text
            .lines()
            .find(|l| without_cluster(l).starts_with(metric))
            .unwrap_or_else(|| panic!("no {metric}"));
        assert!(value.is_none_or(|v| line.contains(v)), "{line}");
    }
    let prometheus = TestPrometheus::start(&text);
    // The HTTP client needs the crypto provider installed, whichever test runs first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::try_from(prometheus.url.as_str()).unwrap();

    let mut asked = 0;
    for (file, dashboard) in dashboards() {
        for (place, expr) in queries(&file, &dashboard) {
            let query = expand(&expr);
            let result = client
                .query_range(query.as_str(), now - 360, now, 30.0)
                .get()
                .await
                .unwrap_or_else(|e| panic!("{place}: {query}: {e}"));
            let series = result.data().as_matrix().unwrap();
            assert!(
                series.iter().any(|s| !s.samples().is_empty()),
                "{place}: {query} returned no data"
            );
            asked += 1;
        }
        // Variables list the values of their label.
        for variable in dashboard["templating"]["list"].as_array().unwrap() {
            if variable["type"] != "query" {
                continue;
            }
            let (selector, label) = label_values(variable["definition"].as_str().unwrap());
            let result = client
                .query_range(expand(selector).as_str(), now - 360, now, 30.0)
                .get()
                .await
                .unwrap();
            let values: BTreeSet<_> = result
                .data()
                .as_matrix()
                .unwrap()
                .iter()
                .filter_map(|s| s.metric().get(label))
                .collect();
            assert!(!values.is_empty(), "{file}: ${}", variable["name"]);
        }
    }
    assert!(asked >= 20, "{asked} queries");
}

/// A series line less its `cluster="…"` label.
fn without_cluster(line: &str) -> String {
    match line.find("cluster=\"") {
        Some(at) => {
            let end = line[at + 9..].find('"').map_or(line.len(), |e| at + 10 + e);
            let rest = line[end..].strip_prefix(',').unwrap_or(&line[end..]);
            format!("{}{rest}", &line[..at])
        }
        None => line.to_string(),
    }
}
