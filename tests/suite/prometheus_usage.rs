//! DCGM usage from a real Prometheus (backfilled with 1-minute samples) for the fixture's pods
//! on 2026-11-01, in every label spelling the exporter has: `exported_*`, `pod`/`namespace`,
//! `pod_name`/`pod_namespace`, MIG instances, time-sliced shares, DRA claims, the
//! `DCGM_FI_DEV_GPU_UTIL` percent fallback, a pod with no data, and Prometheus down.

use crate::support;

use std::collections::BTreeMap;

use serde_json::Value;
use support::prometheus::{OpenMetrics, TestPrometheus};
use support::{json_stdout, tollgate_command};
use tollgate::time::parse_time;

/// One pod's DCGM series: which labels, which metric, over which hours, its GPU units, and its
/// price per GPU-hour before and after noon (the fixture's H100 price change).
struct Pod {
    name: &'static str,
    units: f64,
    price: Option<(f64, f64)>,
    hours: (i64, i64),
    series: Vec<Vec<(&'static str, &'static str)>>,
    percent: bool,
}

fn t(hour: i64, minute: i64) -> i64 {
    parse_time("2026-11-01T00:00:00Z").unwrap() + hour * 3600 + minute * 60
}

/// A different utilization every minute for every series: 0.00 … 0.99.
fn utilization(series: usize, minute: i64) -> f64 {
    ((minute * 7 + series as i64 * 13).rem_euclid(100)) as f64 / 100.0
}

/// tests/fixtures/rates.toml, per pod.
fn price_of(pod: &str) -> Option<(f64, f64)> {
    Some(match pod {
        "chat-0" | "train-0" | "serve-0" => (4.0, 3.0),
        "batch-0" => (2.0, 1.5),
        "mig-0" => (2.8, 2.8),
        "a30-0" => (1.2, 1.2),
        "ts-0" | "ts-1" => (0.8, 0.8),
        "l40s-0" => (2.0, 2.0),
        "gh-0" => return None,
        _ => (8.0, 8.0),
    })
}

fn pods() -> Vec<Pod> {
    let pod = |name, units, hours, series, percent| Pod {
        name,
        units,
        price: price_of(name),
        hours,
        series,
        percent,
    };
    vec![
        pod(
            "chat-0",
            2.0,
            (0, 24),
            vec![
                vec![
                    ("pod", "dcgm-exporter-7x2"),
                    ("namespace", "gpu-operator"),
                    ("exported_pod", "chat-0"),
                    ("exported_namespace", "team-a"),
                    ("UUID", "GPU-a0"),
                    ("Hostname", "node-h100"),
                ],
                vec![
                    ("pod", "dcgm-exporter-7x2"),
                    ("namespace", "gpu-operator"),
                    ("exported_pod", "chat-0"),
                    ("exported_namespace", "team-a"),
                    ("UUID", "GPU-a1"),
                    ("Hostname", "node-h100"),
                ],
            ],
            false,
        ),
        pod(
            "train-0",
            4.0,
            (6, 10),
            (0..4)
                .map(|_| {
                    vec![
                        ("pod", "train-0"),
                        ("namespace", "team-b"),
                        ("uuid", "GPU-t"),
                        ("hostname", "node-h100"),
                    ]
                })
                .collect(),
            true,
        ),
        pod(
            "serve-0",
            2.0,
            (18, 24),
            vec![
                vec![
                    ("pod_name", "serve-0"),
                    ("pod_namespace", "team-a"),
                    ("UUID", "GPU-s0"),
                ],
                vec![
                    ("pod_name", "serve-0"),
                    ("pod_namespace", "team-a"),
                    ("UUID", "GPU-s1"),
                ],
            ],
            false,
        ),
        pod(
            "batch-0",
            1.0,
            (10, 14),
            vec![vec![
                ("pod", "batch-0"),
                ("namespace", "team-b"),
                ("UUID", "GPU-b"),
            ]],
            false,
        ),
        pod(
            "mig-0",
            3.0 / 7.0,
            (0, 24),
            vec![vec![
                ("pod", "mig-0"),
                ("namespace", "team-c"),
                ("UUID", "GPU-m"),
                ("GPU_I_PROFILE", "3g.20gb"),
                ("GPU_I_ID", "1"),
            ]],
            false,
        ),
        pod(
            "a30-0",
            0.5,
            (12, 24),
            vec![
                vec![
                    ("pod", "a30-0"),
                    ("namespace", "team-c"),
                    ("UUID", "GPU-30"),
                    ("GPU_I_PROFILE", "1g.6gb"),
                    ("GPU_I_ID", "3"),
                ],
                vec![
                    ("pod", "a30-0"),
                    ("namespace", "team-c"),
                    ("UUID", "GPU-30"),
                    ("GPU_I_PROFILE", "1g.6gb"),
                    ("GPU_I_ID", "4"),
                ],
            ],
            false,
        ),
        pod(
            "ts-0",
            0.25,
            (0, 24),
            vec![vec![
                ("pod", "ts-0"),
                ("namespace", "team-d"),
                ("UUID", "GPU-l4"),
                ("vgpu", "0"),
            ]],
            false,
        ),
        pod(
            "ts-1",
            0.25,
            (0, 8),
            vec![vec![
                ("pod", "ts-1"),
                ("namespace", "team-d"),
                ("UUID", "GPU-l4"),
                ("vgpu", "1"),
            ]],
            false,
        ),
        pod(
            "l40s-0",
            1.0,
            (6, 24),
            vec![vec![
                ("pod", "l40s-0"),
                ("namespace", "team-d"),
                ("UUID", "GPU-l40s"),
            ]],
            false,
        ),
        pod(
            "gh-0",
            1.0,
            (0, 24),
            vec![vec![
                ("pod", "gh-0"),
                ("namespace", "team-c"),
                ("UUID", "GPU-gh"),
            ]],
            false,
        ),
        pod(
            "dra-0",
            1.0,
            (0, 24),
            vec![vec![
                ("dra_claim_name", "dra-0-gpu-x7k2p"),
                ("dra_claim_namespace", "team-e"),
                ("dra_pool_name", "node-h200-dra"),
                ("dra_device_name", "gpu-0"),
                ("UUID", "GPU-h0"),
            ]],
            false,
        ),
        pod(
            "ext-0",
            1.0,
            (12, 24),
            vec![vec![
                ("dra_claim_name", "ext-0-extended-resources-q9v4t"),
                ("dra_claim_namespace", "team-e"),
                ("dra_device_name", "gpu-2"),
                ("UUID", "GPU-h2"),
            ]],
            false,
        ),
        pod(
            "mig-dra-0",
            1.0 / 7.0,
            (0, 24),
            vec![vec![
                ("dra_claim_name", "mig-claim"),
                ("dra_claim_namespace", "team-e"),
                ("dra_device_name", "gpu-3-mig-1g18gb-0"),
                ("dra_mig_profile", "1g.18gb"),
            ]],
            false,
        ),
    ]
}

/// The shared claim's device: half of it for each of shared-0 and shared-1.
const SHARED: [(&str, &str); 4] = [
    ("dra_claim_name", "shared-kv"),
    ("dra_claim_namespace", "team-e"),
    ("dra_device_name", "gpu-1"),
    ("UUID", "GPU-h1"),
];

/// DCGM series for the fixture's pods, with each pod's true used GPU-hours and idle cost.
fn dcgm() -> (String, BTreeMap<String, (f64, Option<f64>)>) {
    let mut metrics = OpenMetrics::default();
    let mut truth: BTreeMap<String, (f64, Option<f64>)> = BTreeMap::new();
    let mut series_index = 0;
    let mut emit = |metrics: &mut OpenMetrics,
                    labels: &[(&str, &str)],
                    hours: (i64, i64),
                    percent: bool|
     -> Vec<f64> {
        series_index += 1;
        let minutes: Vec<i64> = (hours.0 * 60..hours.1 * 60).collect();
        let values: Vec<f64> = minutes
            .iter()
            .map(|m| utilization(series_index, *m))
            .collect();
        let (metric, scale) = if percent {
            ("DCGM_FI_DEV_GPU_UTIL", 100.0)
        } else {
            ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", 1.0)
        };
        metrics.series(
            metric,
            labels,
            minutes
                .iter()
                .zip(&values)
                .map(|(m, v)| (t(0, *m), (v * scale).round())),
        );
        values.iter().map(|v| (v * scale).round() / scale).collect()
    };
    for pod in pods() {
        let per_series: Vec<Vec<f64>> = pod
            .series
            .iter()
            .map(|labels| emit(&mut metrics, labels, pod.hours, pod.percent))
            .collect();
        // Truth, minute by minute: the mean of the pod's series, times its units, for one minute;
        // idle cost is the rest of that minute's cost.
        let mut used = 0.0;
        let mut idle = 0.0;
        for (m, minute) in (pod.hours.0 * 60..pod.hours.1 * 60).enumerate() {
            let mean = per_series.iter().map(|s| s[m]).sum::<f64>() / per_series.len() as f64;
            used += mean * pod.units / 60.0;
            if let Some((morning, afternoon)) = pod.price {
                let price = if minute < 12 * 60 { morning } else { afternoon };
                idle += (1.0 - mean) * pod.units / 60.0 * price;
            }
        }
        truth.insert(pod.name.to_string(), (used, pod.price.map(|_| idle)));
    }
    let shared = emit(&mut metrics, &SHARED, (0, 24), false);
    let half: f64 = shared.iter().map(|u| u * 0.5 / 60.0).sum();
    let half_idle: f64 = shared.iter().map(|u| (1.0 - u) * 0.5 / 60.0 * 8.0).sum();
    truth.insert("shared-0".into(), (half, Some(half_idle)));
    truth.insert("shared-1".into(), (half, Some(half_idle)));
    // A GPU nobody holds: no pod labels, ignored.
    emit(
        &mut metrics,
        &[("UUID", "GPU-idle"), ("Hostname", "node-h100")],
        (0, 24),
        false,
    );
    (metrics.text(), truth)
}

fn report(prometheus: &str, extra: &[&str]) -> (Value, String) {
    let output = tollgate_command()
        .args([
            "report",
            "--snapshot",
            "tests/fixtures/snapshot",
            "--pricing",
            "tests/fixtures/rates.toml",
        ])
        .args([
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-02",
            "--format",
            "json",
            "--prometheus",
            prometheus,
        ])
        .args(extra)
        .output()
        .unwrap();
    (
        json_stdout(&output),
        String::from_utf8(output.stderr).unwrap(),
    )
}

fn figure(line: &Value, key: &str) -> Option<f64> {
    line[key].as_str().map(|v| v.parse().unwrap())
}

#[test]
fn usage_fills_used_hours_and_idle_cost_within_one_percent() {
    let (text, truth) = dcgm();
    let prometheus = TestPrometheus::start(&text);
    let (json, stderr) = report(&prometheus.url, &["--group-by", "cost_center,pod"]);
    assert!(!stderr.contains("prometheus"), "{stderr}");
    let lines: BTreeMap<String, &Value> = json["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["pod"].as_str().unwrap().to_string(), l))
        .collect();
    for (pod, (used, idle)) in &truth {
        let line = lines[pod.as_str()];
        let reported =
            figure(line, "used_gpu_hours").unwrap_or_else(|| panic!("{pod} has no used_gpu_hours"));
        assert!(
            (reported - used).abs() <= used * 0.01 + 0.0001,
            "{pod}: {reported} vs truth {used}"
        );
        // idle_cost = cost × (1 − utilization), hour by hour at the price in force.
        match (figure(line, "idle_cost"), idle) {
            (Some(reported), Some(idle)) => {
                assert!(
                    (reported - idle).abs() <= idle * 0.01 + 0.01,
                    "{pod}: idle {reported} vs truth {idle}"
                )
            }
            (reported, idle) => assert_eq!(reported.is_some(), idle.is_some(), "{pod}"),
        }
    }
    // No DCGM series: empty, not zero.
    assert!(lines["colo-0"]["used_gpu_hours"].is_null() && lines["colo-0"]["idle_cost"].is_null());
    // Unpriced GH200: usage known, idle cost unknown.
    assert!(
        figure(lines["gh-0"], "used_gpu_hours").is_some() && lines["gh-0"]["idle_cost"].is_null()
    );
    // Capacity nobody held is wholly idle.
    let free = json["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["cost_center"] == "__unallocated__")
        .unwrap();
    assert_eq!(free["used_gpu_hours"], "0.0000");
    assert_eq!(free["idle_cost"], free["cost"]);
    // Rounded columns still add up.
    let idle_cents: i64 = json["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["idle_cost"].as_str())
        .map(|c| c.replace('.', "").parse::<i64>().unwrap())
        .sum();
    let total_idle_cents = json["total"]["idle_cost"]
        .as_str()
        .unwrap()
        .replace('.', "")
        .parse::<i64>()
        .unwrap();
    assert_eq!(idle_cents, total_idle_cents);

    // The FOCUS export carries the same usage: utilization per resource, idle cost to the cent.
    let output = tollgate_command()
        .args(["report", "--snapshot", "tests/fixtures/snapshot"])
        .args([
            "--pricing",
            "tests/fixtures/rates.toml",
            "--format",
            "focus",
        ])
        .args(["--from", "2026-11-01", "--to", "2026-11-02"])
        .args(["--prometheus", &prometheus.url])
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<BTreeMap<String, String>> =
        reader.deserialize().collect::<Result<_, _>>().unwrap();
    let focus_idle_cents: i64 = rows
        .iter()
        .filter(|r| !r["x_IdleCost"].is_empty())
        .map(|r| r["x_IdleCost"].replace('.', "").parse::<i64>().unwrap())
        .sum();
    assert_eq!(focus_idle_cents, total_idle_cents);
    let mut checked = 0;
    for (pod, (used, _)) in &truth {
        // Device-plugin pods are their own FOCUS resource (DRA claims are billed by claim).
        let Some(row) = rows.iter().find(|r| r["ResourceName"] == *pod) else {
            continue;
        };
        let hours: f64 = row["ConsumedQuantity"].parse().unwrap();
        let ratio: f64 = row["x_GpuUtilization"].parse().unwrap();
        assert!(
            (ratio * hours - used).abs() <= used * 0.01 + 0.001,
            "{pod}: {row:?}"
        );
        checked += 1;
    }
    assert!(checked >= 5, "{checked} pods checked");
}

#[test]
fn prometheus_down_still_reports_with_usage_empty_and_a_warning() {
    let dead = format!(
        "http://127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    );
    let (json, stderr) = report(
        &dead,
        &["--config", "tests/fixtures/prometheus/fast-fail.toml"],
    );
    assert!(
        stderr.contains(&format!("warning: prometheus at {dead}:")),
        "{stderr}"
    );
    assert!(
        stderr.contains("used_gpu_hours and idle_cost are left empty"),
        "{stderr}"
    );
    assert_eq!(json["total"]["cost"], "2006.40");
    assert!(
        json["lines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["used_gpu_hours"].is_null())
    );
}

#[tokio::test]
async fn a_client_knows_whether_its_last_query_worked() {
    let dead = format!("http://127.0.0.1:{}", support::free_port());
    let settings = tollgate::prometheus::PrometheusSettings {
        retries: 0,
        ..Default::default()
    };
    let client = tollgate::prometheus::Prometheus::new(&dead, &settings).unwrap();
    assert_eq!(client.up(), None, "not asked yet");
    let hour = tollgate::time::Interval::new(0, 3600);
    assert!(client.dcgm_usage(hour).await.is_err());
    assert_eq!(client.up(), Some(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_shows_the_latest_utilization_and_charges_usage() {
    // chat-0's two GPUs at 40 % over the last hour, up to now.
    let now = jiff::Timestamp::now().as_second();
    let mut om = OpenMetrics::default();
    for gpu in ["GPU-a0", "GPU-a1"] {
        let labels = [("pod", "chat-0"), ("namespace", "team-a"), ("UUID", gpu)];
        om.series(
            "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
            &labels,
            (now - 3600..now).step_by(60).map(|t| (t, 0.4)),
        );
    }
    let prometheus = TestPrometheus::start(&om.text());
    let client =
        tollgate::prometheus::Prometheus::new(&prometheus.url, &Default::default()).unwrap();
    let archive = tollgate::serve::Archive {
        prometheus: Some(client),
        ..Default::default()
    };
    let feed = tollgate::serve::Feed::Snapshot {
        objects: Box::new(
            tollgate::source::read_snapshot(std::path::Path::new("tests/fixtures/snapshot"))
                .unwrap(),
        ),
        as_of: None,
    };
    let (urls, stop, server) = support::spawn_service_with(
        feed,
        support::no_budgets(),
        None,
        std::sync::Arc::new(archive),
    )
    .await;
    let address = support::address(&urls[0]);
    let expected = "tollgate_gpu_utilization_ratio{namespace=\"team-a\",pod=\"chat-0\",gpu_model=\"H100-80GB\"} 0.4";
    let mut metrics = String::new();
    // Read from Prometheus in the background: alone within a second, but behind the rest of
    // the suite on two cores it took over five (a fresh clone's CI, 2026-12-06).
    for _ in 0..300 {
        metrics = support::http_get(&address, "/metrics").await.unwrap().1;
        if metrics.contains(expected) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(metrics.contains(expected), "{metrics}");
    assert!(
        metrics.contains("tollgate_source_up{source=\"prometheus\"} 1"),
        "{metrics}"
    );
    let hour = now.div_euclid(3600) * 3600;
    let (from, to) = (
        tollgate::time::format_time(hour - 3600),
        tollgate::time::format_time(hour),
    );
    let window = format!("/api/v1/chargeback?format=json&group_by=pod&from={from}&to={to}")
        .replace(':', "%3A");
    let (_, body) = support::http_get(&address, &window).await.unwrap();
    let json: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let chat = json["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["pod"] == "chat-0")
        .unwrap();
    // The last full hour: 2 GPUs × 1 h × 40 %.
    assert_eq!(chat["used_gpu_hours"], "0.8000");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
