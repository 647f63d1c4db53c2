//! `--history`: allocations rebuilt from kube-state-metrics (and DCGM series carrying DRA
//! labels) in a real Prometheus, for the fixture scenario whose true costs are known (the
//! snapshot report of 2026-11-01, hand-checked in `report_cli.rs`). The series are generated
//! from the fixture's own objects, scraped every minute, as kube-state-metrics and dcgm-exporter
//! would expose them.

use crate::support;

use std::collections::BTreeMap;

use serde_json::Value;
use support::apiserver::FakeApiServer;
use support::prometheus::{OpenMetrics, TestPrometheus};
use support::{ServeProcess, json_stdout, tollgate_command};
use tollgate::time::parse_time;

const STEP: i64 = 300;

/// The objects of `kind` in the snapshot directory `snapshot` (none where it has no such file).
fn items(snapshot: &str, kind: &str) -> Vec<Value> {
    let Ok(text) = std::fs::read_to_string(format!("{snapshot}/{kind}.json")) else {
        return Vec::new();
    };
    serde_json::from_str::<Value>(&text).unwrap()["items"]
        .as_array()
        .unwrap()
        .clone()
}

/// A resource or label name as kube-state-metrics writes it into a label name.
fn sanitized(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn time(value: &Value) -> Option<i64> {
    value.as_str().map(|t| parse_time(t).unwrap())
}

/// When a fixture pod held its GPUs: start, and finish or the end of the data.
fn lifetime(pod: &Value, end_of_data: i64) -> Option<(i64, i64)> {
    let start = time(&pod["status"]["startTime"])?;
    let finished = pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| time(&s["state"]["terminated"]["finishedAt"]))
        .max();
    Some((start, finished.unwrap_or(end_of_data)))
}

/// One-minute samples of value 1.0 (or `value`) over `[from, to)`.
fn minutes(from: i64, to: i64, value: f64) -> impl Iterator<Item = (i64, f64)> {
    (from..to).step_by(60).map(move |t| (t, value))
}

/// Which series kube-state-metrics exports besides presences.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Times {
    /// Only what is sampled: interval ends are off by up to a step.
    Sampled,
    /// Also `kube_pod_start_time`, `kube_pod_completion_time` and `kube_node_status_capacity`.
    Exact,
}

pub(crate) fn kube_state_and_dcgm(from: i64, to: i64, times: Times) -> String {
    kube_state_of("tests/fixtures/snapshot", from, to, times)
}

/// [`kube_state_and_dcgm`] of the snapshot in the directory `snapshot`.
fn kube_state_of(snapshot: &str, from: i64, to: i64, times: Times) -> String {
    let items = |kind| items(snapshot, kind);
    let mut om = OpenMetrics::default();
    let namespaces: BTreeMap<String, Value> = items("namespaces")
        .into_iter()
        .map(|ns| (ns["metadata"]["name"].as_str().unwrap().to_string(), ns))
        .collect();
    for (name, ns) in &namespaces {
        if let Some(cc) = ns["metadata"]["annotations"]["cost-center"].as_str() {
            om.series(
                "kube_namespace_annotations",
                &[("namespace", name), ("annotation_cost_center", cc)],
                minutes(from, to, 1.0),
            );
        }
        if let Some(cc) = ns["metadata"]["labels"]["cost-center"].as_str() {
            om.series(
                "kube_namespace_labels",
                &[("namespace", name), ("label_cost_center", cc)],
                minutes(from, to, 1.0),
            );
        }
    }
    for node in items("nodes") {
        let name = node["metadata"]["name"].as_str().unwrap();
        let labels = &node["metadata"]["labels"];
        let mut series: Vec<(String, String)> = vec![("node".into(), name.to_string())];
        for (metric_label, label) in tollgate::prometheus::HISTORY_LABELS {
            if let Some(value) = labels[label].as_str() {
                series.push((metric_label.to_string(), value.to_string()));
            }
        }
        // GFD's time-slicing replicas of each MIG profile (allow-listed as
        // `nvidia.com/mig-*.replicas`).
        for (label, value) in labels.as_object().into_iter().flatten() {
            if label.starts_with("nvidia.com/mig-") && label.ends_with(".replicas") {
                let metric_label = format!("label_{}", sanitized(label));
                series.push((metric_label, value.as_str().unwrap().to_string()));
            }
        }
        let created = time(&node["metadata"]["creationTimestamp"])
            .unwrap()
            .max(from);
        let borrowed: Vec<(&str, &str)> = series
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        om.series("kube_node_labels", &borrowed, minutes(created, to, 1.0));
        let capacity = node["status"]["capacity"].as_object().into_iter().flatten();
        for (resource, count) in capacity.filter(|_| times == Times::Exact) {
            if resource.starts_with("nvidia.com/") {
                om.series(
                    "kube_node_status_capacity",
                    &[
                        ("node", name),
                        ("resource", &sanitized(resource)),
                        ("unit", "integer"),
                    ],
                    minutes(created, to, count.as_str().unwrap().parse().unwrap()),
                );
            }
        }
        if let Some(price) =
            node["metadata"]["annotations"]["tollgate.dev/gpu-hourly-price"].as_str()
        {
            om.series(
                "kube_node_annotations",
                &[
                    ("node", name),
                    ("annotation_tollgate_dev_gpu_hourly_price", price),
                ],
                minutes(created, to, 1.0),
            );
        }
    }
    let claims: BTreeMap<String, Value> = items("resourceclaims")
        .into_iter()
        .map(|c| (c["metadata"]["name"].as_str().unwrap().to_string(), c))
        .collect();
    // DCGM's series of each claim's device, one per pod using it (as dcgm-exporter copies a
    // shared device's series to every pod it maps to it): (claim, pod) → when.
    let mut dra_devices: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    for pod in items("pods") {
        let meta = &pod["metadata"];
        let (namespace, name, uid) = (
            meta["namespace"].as_str().unwrap(),
            meta["name"].as_str().unwrap(),
            meta["uid"].as_str().unwrap(),
        );
        let Some(node) = pod["spec"]["nodeName"].as_str() else {
            continue;
        };
        let Some((start, end)) = lifetime(&pod, to) else {
            continue;
        };
        let (start, end) = (start.max(from), end.min(to));
        if start >= end {
            continue;
        }
        let id = [("namespace", namespace), ("pod", name), ("uid", uid)];
        om.series(
            "kube_pod_info",
            &[id[0], id[1], id[2], ("node", node)],
            minutes(start, end, 1.0),
        );
        om.series(
            "kube_pod_status_phase",
            &[id[0], id[1], id[2], ("phase", "Running")],
            minutes(start, end, 1.0),
        );
        if times == Times::Exact {
            // kube-state-metrics exports the times themselves as values, while the pod exists.
            let (started, finished) = lifetime(&pod, to).unwrap();
            om.series(
                "kube_pod_start_time",
                &id,
                minutes(start, end, started as f64),
            );
            if finished < to {
                // From completion until the object is deleted, ten minutes later here.
                om.series(
                    "kube_pod_completion_time",
                    &id,
                    minutes(end, (end + 600).min(to), finished as f64),
                );
            }
        }
        if let Some(cc) = meta["annotations"]["cost-center"].as_str() {
            om.series(
                "kube_pod_annotations",
                &[id[0], id[1], id[2], ("annotation_cost_center", cc)],
                minutes(start, end, 1.0),
            );
        }
        if let Some(cc) = meta["labels"]["cost-center"].as_str() {
            om.series(
                "kube_pod_labels",
                &[id[0], id[1], id[2], ("label_cost_center", cc)],
                minutes(start, end, 1.0),
            );
        }
        // kube-state-metrics does not apply the extended-resource claim: a pod served by one
        // (ext-0) shows its nvidia.com/gpu limit as any other pod does, while the claim's DCGM
        // series carries the same GPU. Tollgate must count it once.
        let containers = [
            ("kube_pod_container_resource_requests", "containers"),
            (
                "kube_pod_init_container_resource_requests",
                "initContainers",
            ),
        ];
        for (metric, field) in containers {
            for container in pod["spec"][field].as_array().into_iter().flatten() {
                let container_name = container["name"].as_str().unwrap();
                if container["restartPolicy"] == "Always" {
                    let labels = [
                        id[0],
                        id[1],
                        id[2],
                        ("container", container_name),
                        ("restart_policy", "Always"),
                    ];
                    om.series(
                        "kube_pod_init_container_info",
                        &labels,
                        minutes(start, end, 1.0),
                    );
                }
                // Extended resources: requests default to limits.
                let limits = container["resources"]["limits"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                for (resource, quantity) in limits {
                    if !resource.starts_with("nvidia.com/") {
                        continue;
                    }
                    let sanitized = sanitized(&resource);
                    let count: f64 = quantity.as_str().unwrap().parse().unwrap();
                    let labels = [
                        id[0],
                        id[1],
                        id[2],
                        ("container", container_name),
                        ("node", node),
                        ("resource", &sanitized),
                        ("unit", "integer"),
                    ];
                    om.series(metric, &labels, minutes(start, end, count));
                }
            }
        }
        // The pod's DRA claims: their devices' DCGM series carry the claim.
        let statuses = pod["status"]["resourceClaimStatuses"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut claim_names: Vec<String> = pod["spec"]["resourceClaims"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| {
                c["resourceClaimName"]
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| {
                        statuses
                            .iter()
                            .find(|s| s["name"] == c["name"])
                            .and_then(|s| s["resourceClaimName"].as_str().map(str::to_string))
                    })
            })
            .collect();
        claim_names.extend(
            pod["status"]["extendedResourceClaimStatus"]["resourceClaimName"]
                .as_str()
                .map(str::to_string),
        );
        for claim in claim_names {
            dra_devices.insert((claim, name.to_string()), (start, end));
        }
    }
    for ((claim, pod), (start, end)) in dra_devices {
        let result = &claims[&claim]["status"]["allocation"]["devices"]["results"][0];
        let device = result["device"].as_str().unwrap();
        let profile = if device.contains("-mig-") {
            "1g.18gb"
        } else {
            ""
        };
        let mut labels = vec![
            ("dra_claim_name", claim.as_str()),
            ("dra_claim_namespace", "team-e"),
            ("dra_pool_name", "node-h200-dra"),
            ("dra_device_name", device),
            ("modelName", "NVIDIA H200"),
            ("Hostname", "node-h200-dra"),
            ("exported_pod", pod.as_str()),
        ];
        if !profile.is_empty() {
            labels.push(("dra_mig_profile", profile));
        }
        om.series(
            "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
            &labels,
            minutes(start, end, 0.5),
        );
    }
    om.text()
}

pub(crate) fn report(args: &[&str]) -> Value {
    report_by("cost_center,namespace", args)
}

/// The JSON report of the fixture day grouped by `group_by`.
fn report_by(group_by: &str, args: &[&str]) -> Value {
    let output = tollgate_command()
        .args([
            "report",
            "--pricing",
            "tests/fixtures/rates.toml",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-02",
        ])
        .args(["--format", "json", "--group-by", group_by])
        .args(args)
        .output()
        .unwrap();
    json_stdout(&output)
}

pub(crate) fn costs(report: &Value) -> BTreeMap<String, f64> {
    report["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["cost_center"] != "__unallocated__")
        .map(|l| {
            let key = format!(
                "{}/{}",
                l["cost_center"].as_str().unwrap(),
                l["namespace"].as_str().unwrap()
            );
            (key, l["cost"].as_str().map_or(0.0, |c| c.parse().unwrap()))
        })
        .collect()
}

#[test]
fn history_alone_reproduces_allocation_cost_within_the_resolution() {
    let from = parse_time("2026-10-31T12:00:00Z").unwrap();
    let to = parse_time("2026-11-02T00:00:00Z").unwrap();
    let prometheus = TestPrometheus::start(&kube_state_and_dcgm(from, to, Times::Sampled));
    let truth = costs(&report(&["--snapshot", "tests/fixtures/snapshot"]));
    let history = report(&["--history", "--prometheus", &prometheus.url]);
    let rebuilt = costs(&history);
    assert_eq!(
        rebuilt.keys().collect::<Vec<_>>(),
        truth.keys().collect::<Vec<_>>()
    );
    // Each interval end inside the window may be off by less than one 300 s step. The most
    // any cost center can move: its pods' ends inside the day × 300 s × units × price.
    let bound = |line: &str| -> f64 {
        let step_hours = STEP as f64 / 3600.0;
        match line {
            "cc-100/team-a" => 0.0, // chat-0 runs through the window
            "cc-150/team-a" => 1.0 * step_hours * 2.0 * 3.0, // serve-0 starts at 18:00
            "cc-200/team-b" => 2.0 * step_hours * 4.0 * 4.0 + 2.0 * step_hours * 1.5,
            "cc-201/team-b" => 2.0 * step_hours * 2.0,
            "cc-400/team-d" => step_hours * 0.25 * 0.8 + step_hours * 2.0,
            "cc-500/team-e" => step_hours * 8.0,
            "unassigned/team-c" => step_hours * 0.5 * 1.2,
            other => panic!("unexpected line {other}"),
        }
    };
    for (line, cost) in &truth {
        let diff = (rebuilt[line] - cost).abs();
        eprintln!(
            "{line}: history {:.2} truth {cost:.2} bound {:.2}",
            rebuilt[line],
            bound(line)
        );
        assert!(
            diff <= bound(line) + 0.011,
            "{line}: history {} vs truth {cost} (bound {})",
            rebuilt[line],
            bound(line)
        );
    }
    let warnings = history["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .unwrap()
            .contains("each interval end is off by less than 300 s")),
        "{warnings:?}"
    );
    // GPU-hours too, priced or not: ext-0's one GPU from 12:00 (its extended-resource claim,
    // which kube-state-metrics shows as a plain nvidia.com/gpu limit) counts once — twice would
    // be 12 GPU-hours more. History may move each end of team-e's five pods by under a step.
    let hours = |report: &Value| -> f64 {
        report["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["namespace"] == "team-e")
            .map(|l| l["gpu_hours"].as_str().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    let truth_hours = hours(&report(&["--snapshot", "tests/fixtures/snapshot"]));
    assert!(
        (hours(&history) - truth_hours).abs() <= 5.0 * STEP as f64 / 3600.0,
        "team-e: history {} GPU-hours vs snapshot {truth_hours}",
        hours(&history)
    );
    // shared-0 and shared-1 use one claim's GPU (shared-kv, an H200 at 8.00) all day: DCGM
    // shows the device under each pod, and each holds half of it, 12 GPU-hours = 96.00, as the
    // snapshot says. (Before, each series was a whole GPU: 24 h and 192.00 each, the device
    // charged twice.)
    let by_pod = report_by("pod", &["--history", "--prometheus", &prometheus.url]);
    let shared: Vec<String> = by_pod["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["pod"].as_str().unwrap().starts_with("shared-"))
        .map(|l| {
            ["pod", "gpu_hours", "cost"]
                .map(|key| l[key].as_str().unwrap())
                .join(",")
        })
        .collect();
    assert_eq!(shared, ["shared-0,12.0000,96.00", "shared-1,12.0000,96.00"]);
}

#[test]
fn exact_pod_times_make_history_exact_to_the_cent() {
    // With kube_pod_start_time and kube_pod_completion_time, every pod's interval is its own
    // to the second: each cost center's cost equals the snapshot's hand-checked figure exactly.
    // team-e's DRA claims come from DCGM, which has no such series: they stay sampled.
    let from = parse_time("2026-10-31T12:00:00Z").unwrap();
    let to = parse_time("2026-11-02T00:00:00Z").unwrap();
    let prometheus = TestPrometheus::start(&kube_state_and_dcgm(from, to, Times::Exact));
    let truth = costs(&report(&["--snapshot", "tests/fixtures/snapshot"]));
    let history = report(&["--history", "--prometheus", &prometheus.url]);
    let rebuilt = costs(&history);
    for (line, cost) in &truth {
        if line != "cc-500/team-e" {
            assert_eq!(rebuilt[line], *cost, "{line}");
        }
    }
    let warnings = history["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .unwrap()
            .contains("pods' start and end exact to the second")),
        "{warnings:?}"
    );
}

#[test]
fn history_charges_shared_and_partitioned_gpus_as_a_watched_cluster_does() {
    // Shapes rebuilt from kube-state-metrics (exact pod times, node labels allow-listed,
    // `kube_node_status_capacity` of every nvidia.com resource) give their snapshots' hours and
    // costs, worked by hand in `report_cli` (history alone measures utilization, so capacity
    // nobody held is idle there: those columns are left out):
    // - shapes/mig (`mig_single_and_time_sliced_mig_…`): MIG devices time-sliced under
    //   `renameByDefault`, 17.1429 GPU-hours held (48.00), 6.8571 unallocated (19.20), and MIG
    //   mixed time-sliced with GFD's mig-1g.5gb.replicas, 24 h held (67.20), whose replicas
    //   label history read as no label before;
    // - shapes/clouds (`gpus_gpu_feature_discovery_does_not_label_…`): 4 L4 its
    //   instance-gpu-count gives, advertising 16 (time-sliced, no GFD): three pods a quarter
    //   each, 18 h = 14.40 at 0.80; 78 h = 62.40 unallocated;
    // - shapes/instances (`gpus_of_nodes_only_their_instance_type_names_…`): eks-g6-ts, a
    //   g6.12xlarge (4 L4) advertising 16: two pods a quarter each, 12 h = 9.60 at 0.80; 84 h
    //   = 67.20 unallocated.
    let from = parse_time("2026-11-01T00:00:00Z").unwrap();
    let to = parse_time("2026-11-02T00:00:00Z").unwrap();
    // node, cost center, GPU-hours, cost, unpriced GPU-hours.
    let lines = |args: &[&str]| -> Vec<String> {
        let output = tollgate_command()
            .args(["report", "--pricing", "tests/fixtures/rates.toml"])
            .args(["--from", "2026-11-01", "--to", "2026-11-02"])
            .args(["--group-by", "node,cost_center", "--format", "csv"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .skip(1)
            .map(|row| {
                let cells: Vec<&str> = row.split(',').collect();
                [2, 3, 4, 6, 8].map(|at| cells[at]).join(",")
            })
            .collect()
    };
    let shapes = [
        (
            "tests/fixtures/shapes/mig",
            &[
                "a100-mig-mixed-renamed,__unallocated__,6.8571,19.20,0.0000",
                "a100-mig-mixed-renamed,cc-900,17.1429,48.00,0.0000",
                "a100-mig-mixed-shared,cc-900,24.0000,67.20,0.0000",
            ][..],
        ),
        (
            "tests/fixtures/shapes/clouds",
            &[
                "karpenter-l4-ts,__unallocated__,78.0000,62.40,0.0000",
                "karpenter-l4-ts,cc-900,18.0000,14.40,0.0000",
            ][..],
        ),
        (
            "tests/fixtures/shapes/instances",
            &[
                "eks-g6-ts,__unallocated__,84.0000,67.20,0.0000",
                "eks-g6-ts,cc-900,12.0000,9.60,0.0000",
            ][..],
        ),
    ];
    for (shape, rows) in shapes {
        let prometheus = TestPrometheus::start(&kube_state_of(shape, from, to, Times::Exact));
        let history = lines(&["--history", "--prometheus", &prometheus.url]);
        for row in rows {
            assert!(
                history.iter().any(|line| line == row),
                "{shape}: {row} not in {history:#?}"
            );
        }
        assert_eq!(history, lines(&["--snapshot", shape]), "{shape}");
    }
}

#[test]
fn quota_decides_from_history_alone() {
    let from = parse_time("2026-10-31T12:00:00Z").unwrap();
    let to = parse_time("2026-11-02T00:00:00Z").unwrap();
    let prometheus = TestPrometheus::start(&kube_state_and_dcgm(from, to, Times::Sampled));
    let decide = |source: &[&str]| -> Value {
        let output = tollgate_command()
            .args(["quota", "--pricing", "tests/fixtures/rates.toml"])
            .args(["--config", "tests/fixtures/quota/budgets.toml"])
            .args([
                "--as-of",
                "2026-11-02",
                "--namespace",
                "team-a",
                "--gpus",
                "1",
            ])
            .args(source)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(3),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let truth = decide(&["--snapshot", "tests/fixtures/snapshot"]);
    let history = decide(&["--history", "--prometheus", &prometheus.url]);
    // team-a's cost center comes from its namespace annotation, which history recorded; chat-0
    // runs through the whole window, so spend, burn and the projection match exactly.
    for field in [
        "costCenter",
        "spent",
        "burnPerHour",
        "projected",
        "unitsHeld",
    ] {
        assert_eq!(history[field], truth[field], "{field}: {history}");
    }
    assert_eq!(history["costCenter"], "cc-100");
    assert_eq!(history["allowed"], false);
}

/// The lines of `report` whose period starts at `start`, as a report of their own.
fn period(report: &Value, start: &str) -> Value {
    let lines: Vec<Value> = report["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["period_start"] == start)
        .cloned()
        .collect();
    serde_json::json!({ "lines": lines })
}

#[test]
fn a_window_past_prometheus_point_limit_is_read_in_pieces_and_joined() {
    let from = parse_time("2026-10-31T12:00:00Z").unwrap();
    let to = parse_time("2026-11-02T00:00:00Z").unwrap();
    let prometheus = TestPrometheus::start(&kube_state_and_dcgm(from, to, Times::Sampled));
    let one_day = costs(&report(&["--history", "--prometheus", &prometheus.url]));
    // 11,009 steps of 300 s: more than the 11,000 points Prometheus answers per series. The
    // second query starts 10,001 steps in, at 2026-11-01T12:00, while pods run.
    let output = tollgate_command()
        .args(["report", "--pricing", "tests/fixtures/rates.toml"])
        .args(["--from", "2026-09-27T18:35:00Z", "--to", "2026-11-05"])
        .args(["--step", "day", "--format", "json"])
        .args(["--history", "--prometheus", &prometheus.url])
        .output()
        .unwrap();
    let long = json_stdout(&output);
    // The same exact figures: each line printed within a cent of the one-day report's (both
    // are the exact cost rounded down or up; which lines take the cents is ranked over all 39
    // days of the long report, over one in the other). A gap or overlap where the pieces
    // join would be minutes of GPUs at 3.00 an hour and more: tens of cents.
    let joined = costs(&period(&long, "2026-11-01T00:00:00Z"));
    assert_eq!(
        joined.keys().collect::<Vec<_>>(),
        one_day.keys().collect::<Vec<_>>()
    );
    for (key, cost) in &joined {
        assert!(
            (cost - one_day[key]).abs() < 0.0101,
            "{key}: {joined:?} {one_day:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_history_charges_what_report_history_reports() {
    let from = parse_time("2026-10-31T12:00:00Z").unwrap();
    let to = parse_time("2026-11-02T00:00:00Z").unwrap();
    let prometheus = TestPrometheus::start(&kube_state_and_dcgm(from, to, Times::Sampled));
    let reported = costs(&report(&["--history", "--prometheus", &prometheus.url]));
    // Enough days back from today's clock to reach the data.
    let days = days_back_to(from);
    let dir = tempfile::tempdir().unwrap();
    let service = ServeProcess::start(
        &[
            "--history",
            "--prometheus",
            &prometheus.url,
            "--pricing",
            "tests/fixtures/rates.toml",
        ],
        &[("TOLLGATE__PROMETHEUS__HISTORY_DAYS", days.as_ref())],
        &dir.path().join("serve.log"),
    )
    .await;
    assert_eq!(served_day(&service).await, reported, "{}", service.log());
}

/// Days of history reaching back from today's clock to `from`.
pub(crate) fn days_back_to(from: i64) -> String {
    ((jiff::Timestamp::now().as_second() - from) / 86_400 + 1).to_string()
}

/// What a running service charges each cost center for 2026-11-01.
pub(crate) async fn served_day(service: &ServeProcess) -> BTreeMap<String, f64> {
    costs(&fixture_day(service).await)
}

/// A running service's chargeback of 2026-11-01, as JSON.
async fn fixture_day(service: &ServeProcess) -> Value {
    chargeback(service, "from=2026-11-01&to=2026-11-02").await
}

/// A running service's chargeback of `window` (`from=…&to=…`), as JSON.
async fn chargeback(service: &ServeProcess, window: &str) -> Value {
    let said = service
        .get(&format!("/api/v1/chargeback?{window}&format=json"))
        .await;
    serde_json::from_str(&said).unwrap()
}

/// Whether a report says the history of 2026-11-01 is not stored yet.
fn names_the_fixture_day_missing(said: &Value) -> bool {
    let missing = "the day 2026-11-01 of history before the ledger began is not in the rollup \
        store yet";
    said["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().starts_with(missing))
}

/// A service installed today on the fixture's cluster, reading the Prometheus at `url` for a
/// day of history, with `env` besides; the fake API server and the directory live as long as
/// it does.
struct InstalledToday {
    service: ServeProcess,
    /// Today's UTC midnight (the service's clock).
    today: i64,
    _api: FakeApiServer,
    _dir: tempfile::TempDir,
}

impl InstalledToday {
    async fn start(url: &str, env: &[(&str, &str)]) -> Self {
        let api = FakeApiServer::start().await;
        api.load_snapshot(std::path::Path::new("tests/fixtures/snapshot"));
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = api.kubeconfig(dir.path());
        let a_day = [
            ("TOLLGATE__PROMETHEUS__HISTORY_DAYS", "1"),
            ("TOLLGATE__PROMETHEUS__RETRIES", "0"),
        ];
        let env = [&a_day[..], env].concat();
        let service = serve_the_fixture(url, &kubeconfig, dir.path(), &env, "serve.log").await;
        let today = jiff::Timestamp::now().as_second().div_euclid(86_400) * 86_400;
        InstalledToday {
            service,
            today,
            _api: api,
            _dir: dir,
        }
    }

    /// Its chargeback from today's midnight to `to`.
    async fn today_to(&self, to: i64) -> Value {
        let window = format!(
            "from={}&to={}",
            tollgate::time::format_time(self.today),
            tollgate::time::format_time(to)
        );
        chargeback(&self.service, &window).await
    }

    /// How a warning about today's history before the cut-over, unread, begins.
    fn unread(&self) -> String {
        format!(
            "the history of {} from 00:00:00 to ",
            &tollgate::time::format_time(self.today)[..10]
        )
    }

    /// Whether `said` (a report) warns that today's history before the cut-over is unread.
    fn says_unread(&self, said: &Value) -> bool {
        let unread = self.unread();
        said["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().starts_with(&unread))
    }
}

/// A `serve` of the fixture's cluster (the fake API server `kubeconfig` names) reading the
/// Prometheus at `url`, its store in `dir`'s `data`, with `env`; its log in `dir`'s `log`.
async fn serve_the_fixture(
    url: &str,
    kubeconfig: &std::path::Path,
    dir: &std::path::Path,
    env: &[(&str, &str)],
    log: &str,
) -> ServeProcess {
    let data = dir.join("data");
    let mut all = vec![
        ("KUBECONFIG", kubeconfig.as_os_str()),
        ("TOLLGATE__STORE__DIR", data.as_os_str()),
    ];
    all.extend(env.iter().map(|(k, v)| (*k, std::ffi::OsStr::new(v))));
    let args = [
        "--prometheus",
        url,
        "--pricing",
        "tests/fixtures/rates.toml",
    ];
    ServeProcess::start(&args, &all, &dir.join(log)).await
}

/// The fixture day's chargeback of a service that has not stored its history: no lines, and a
/// warning naming the day (not a silent zero).
async fn charges_nothing_for_the_fixture_day_and_says_why(service: &ServeProcess) {
    let said = fixture_day(service).await;
    assert_eq!(said["lines"], serde_json::json!([]), "{said}");
    assert!(
        names_the_fixture_day_missing(&said),
        "{said}\n{}",
        service.log()
    );
}

/// A watched cluster whose pods ran before Tollgate was installed: the fixture's objects in the
/// fake API server, their kube-state-metrics and DCGM series since 2026-10-31T12:00 in a real
/// Prometheus, and what `report --history` charges each cost center for 2026-11-01.
pub(crate) struct ClusterWithHistory {
    pub(crate) prometheus: TestPrometheus,
    pub(crate) reported: BTreeMap<String, f64>,
    /// `prometheus.history_days` reaching back to the data from today.
    pub(crate) days: String,
    pub(crate) api: FakeApiServer,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) kubeconfig: std::path::PathBuf,
}

impl ClusterWithHistory {
    pub(crate) async fn start() -> Self {
        let from = parse_time("2026-10-31T12:00:00Z").unwrap();
        let to = parse_time("2026-11-02T00:00:00Z").unwrap();
        let prometheus = TestPrometheus::start(&kube_state_and_dcgm(from, to, Times::Sampled));
        let reported = costs(&report(&["--history", "--prometheus", &prometheus.url]));
        let api = FakeApiServer::start().await;
        api.load_snapshot(std::path::Path::new("tests/fixtures/snapshot"));
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = api.kubeconfig(dir.path());
        ClusterWithHistory {
            prometheus,
            reported,
            days: days_back_to(from),
            api,
            dir,
            kubeconfig,
        }
    }

    /// The arguments of a `serve` reading this Prometheus.
    pub(crate) fn args(&self) -> [&str; 2] {
        ["--prometheus", &self.prometheus.url]
    }

    /// A `serve` of this cluster reading the Prometheus at `url`, its store in the cluster's
    /// `data` directory, backfilling the history, with `env` besides; its log in `log`.
    async fn serve(&self, url: &str, env: &[(&str, &str)], log: &str) -> ServeProcess {
        let env = [
            &[("TOLLGATE__PROMETHEUS__HISTORY_DAYS", self.days.as_str())],
            env,
        ]
        .concat();
        serve_the_fixture(url, &self.kubeconfig, self.dir.path(), &env, log).await
    }

    /// The environment of a `serve` backfilling the history.
    pub(crate) fn env(&self) -> [(&str, &std::ffi::OsStr); 1] {
        [(
            "TOLLGATE__PROMETHEUS__HISTORY_DAYS",
            std::ffi::OsStr::new(&self.days),
        )]
    }
}

/// A watched cluster whose pods ran before Tollgate was installed: Prometheus (kube-state-metrics
/// and DCGM) answers for before the install's cut-over (its ledger's first heartbeat, today),
/// the ledger for after, for every pod and node. The fixture's pods have run since 2026-10-31
/// and are still running in the API server; 2026-11-01 must be charged once, exactly as
/// `report --history` charges it, before and after a restart — not again by a ledger opening
/// their segments at their start times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_cluster_counts_history_before_its_cut_over_and_the_ledger_after() {
    let cluster = ClusterWithHistory::start().await;
    for run in ["first start", "restart"] {
        let log = format!("{run}.log");
        let service = cluster.serve(&cluster.prometheus.url, &[], &log).await;
        assert_eq!(
            served_day(&service).await,
            cluster.reported,
            "{run}: {}",
            service.log()
        );
    }
}

/// A first start while Prometheus does not answer: the history before the cut-over cannot be
/// read, and the fixture day's chargeback says the day is missing (not a silent zero). Started
/// again with Prometheus answering, the service reads the day it lacks — though it has rolled
/// days up since — and charges it exactly as `report --history` does, with nothing said missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_day_prometheus_could_not_answer_for_is_named_then_read_at_the_next_start() {
    let cluster = ClusterWithHistory::start().await;
    let data = cluster.dir.path().join("data");
    let retries = |n| [("TOLLGATE__PROMETHEUS__RETRIES", n)];
    // Nothing listens on the discard port.
    let down = cluster
        .serve("http://127.0.0.1:9", &retries("0"), "down.log")
        .await;
    charges_nothing_for_the_fixture_day_and_says_why(&down).await;
    // Its ledger records the days before today as rolled up, as a service running on does
    // (roll-ups run at idle priority: slow beside the rest of the suite).
    let rolled = || {
        std::fs::read_dir(&data).unwrap().flatten().any(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.starts_with("ledger-")
                && std::fs::read_to_string(entry.path())
                    .unwrap_or_default()
                    .contains(r#""record":"rolled""#)
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    while !rolled() {
        assert!(std::time::Instant::now() < deadline, "{}", down.log());
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // The first start stopped reading history after two days in a row went unanswered (a
    // Prometheus that hung instead would have held the leader up for a timeout a day).
    let log = down.log();
    assert_eq!(
        log.matches("the day is left out for now").count(),
        2,
        "{log}"
    );
    assert!(log.contains("the rest is read again later"), "{log}");
    drop(down);

    let up = cluster
        .serve(&cluster.prometheus.url, &retries("3"), "up.log")
        .await;
    let said = fixture_day(&up).await;
    assert!(
        !names_the_fixture_day_missing(&said),
        "{said}\n{}",
        up.log()
    );
    assert_eq!(served_day(&up).await, cluster.reported, "{}", up.log());
}

/// Prometheus down while the service starts, back a little later: the history day it could not
/// answer for is named missing meanwhile, then read again while the service runs (every
/// `prometheus.history_retry_seconds`) and charged exactly as `report --history` charges it,
/// with nothing said missing — no restart needed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_day_prometheus_could_not_answer_for_is_read_again_while_the_service_runs() {
    let mut cluster = ClusterWithHistory::start().await;
    cluster.prometheus.stop();
    let env = [
        ("TOLLGATE__PROMETHEUS__RETRIES", "0"),
        ("TOLLGATE__PROMETHEUS__HISTORY_RETRY_SECONDS", "2"),
    ];
    let service = cluster
        .serve(&cluster.prometheus.url, &env, "serve.log")
        .await;
    charges_nothing_for_the_fixture_day_and_says_why(&service).await;

    cluster.prometheus.start_again();
    // Roll-ups run at idle priority: slow beside the rest of the suite.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    while names_the_fixture_day_missing(&fixture_day(&service).await) {
        assert!(std::time::Instant::now() < deadline, "{}", service.log());
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert_eq!(
        served_day(&service).await,
        cluster.reported,
        "{}",
        service.log()
    );
}

/// The part of today before the cut-over, when Prometheus is down while the service starts:
/// reports over it and quota checks say it has not been read (not a silent zero, not a sure
/// answer); once Prometheus is back it is read while the service runs, and today's hours before
/// the cut-over are charged exactly as `report --history` charges them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn today_before_the_cut_over_is_read_again_while_the_service_runs() {
    let now = jiff::Timestamp::now().as_second();
    let today = now.div_euclid(86_400) * 86_400;
    let mut prometheus = TestPrometheus::start(&kube_state_and_dcgm(today, now, Times::Sampled));
    // Compared up to ten minutes before the data ends (history intervals end within a step of
    // their last sample), on the step's grid; in the first quarter hour of a UTC day there is
    // nothing to compare, and only what is said is checked.
    let compared_to = ((now - 600).div_euclid(STEP) * STEP).max(today);
    let reported = (compared_to > today).then(|| {
        let (from, to) = (
            tollgate::time::format_time(today),
            tollgate::time::format_time(compared_to),
        );
        let args = ["--history", "--prometheus", &prometheus.url];
        costs(&report(
            &[&args[..], &["--from", &from, "--to", &to]].concat(),
        ))
    });
    prometheus.stop();
    let env = [("TOLLGATE__PROMETHEUS__HISTORY_RETRY_SECONDS", "2")];
    let installed = InstalledToday::start(&prometheus.url, &env).await;
    let service = &installed.service;
    let said = installed.today_to(now).await;
    assert_eq!(said["lines"], serde_json::json!([]), "{said}");
    assert!(installed.says_unread(&said), "{said}\n{}", service.log());
    let judged = crate::leader::quota_check(service).await;
    assert_eq!(judged["stale"], true, "{judged}");
    let (incomplete, unread) = (
        "Tollgate's month-to-date spend is incomplete: ",
        installed.unread(),
    );
    assert!(
        judged["warnings"].as_array().unwrap().iter().any(|w| {
            let w = w.as_str().unwrap();
            w.starts_with(incomplete) && w.contains(&unread)
        }),
        "{judged}"
    );

    prometheus.start_again();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while installed.says_unread(&installed.today_to(now).await) {
        assert!(std::time::Instant::now() < deadline, "{}", service.log());
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    while crate::leader::quota_check(service)
        .await
        .to_string()
        .contains(&unread)
    {
        assert!(std::time::Instant::now() < deadline, "{}", service.log());
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    if let Some(reported) = reported {
        let served = costs(&installed.today_to(compared_to).await);
        assert_eq!(served, reported, "{}", service.log());
        assert!(!reported.is_empty());
    }
}

/// A Prometheus that takes connections and never answers (hung, or behind a black hole): the
/// start waits for the history of today before the cut-over only briefly — not for the query's
/// timeout, which would outlast the install's startup probe and have the service restarted
/// again and again — then serves, naming that history unread; the whole days are given up
/// for now after their timeout, and the service is ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_that_never_answers_does_not_hold_the_start_up() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hung = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let started = std::time::Instant::now();
    let env = [("TOLLGATE__PROMETHEUS__TIMEOUT_SECONDS", "15")];
    let installed = InstalledToday::start(&url, &env).await;
    let log = installed.service.log();
    assert!(
        log.contains("prometheus did not answer within 10 s"),
        "{log}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    let said = installed.today_to(jiff::Timestamp::now().as_second()).await;
    assert!(installed.says_unread(&said), "{said}");
    hung.abort();
}
