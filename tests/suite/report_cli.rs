//! `tollgate report` and `tollgate pricing check` end to end, through the real binary, on the
//! fixture snapshot (`tests/fixtures/snapshot`) whose every figure is computed by hand below.

use std::path::PathBuf;
use std::process::{Command, Output};

/// Fixture paths, relative to the package root where every command runs, so that outputs naming
/// a file do not depend on where the checkout is.
fn fixtures() -> PathBuf {
    PathBuf::from("tests/fixtures")
}

fn tollgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .env_remove("TOLLGATE__COST_CENTER__KEY")
        .env_remove("TOLLGATE__PRICING__FILE")
        .output()
        .expect("the tollgate binary runs")
}

fn fixture_report(extra: &[&str]) -> Output {
    snapshot_report(&fixtures().join("snapshot"), extra)
}

/// `tollgate report` on the snapshot in `snapshot`, with the fixture's rates, over 2026-11-01.
fn snapshot_report(snapshot: &std::path::Path, extra: &[&str]) -> Output {
    let rates = fixtures().join("rates.toml");
    let mut args = vec![
        "report",
        "--snapshot",
        snapshot.to_str().unwrap(),
        "--pricing",
        rates.to_str().unwrap(),
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-02",
    ];
    args.extend_from_slice(extra);
    tollgate(&args)
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "tollgate failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .replace("\r\n", "\n")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// Window 2026-11-01 00:00 → 2026-11-02 00:00 (24 h). Rates (tests/fixtures/rates.toml): H100
/// 4.00 on demand / 2.00 spot until noon, 3.00 / 1.50 after; H200 8.00; A100-40GB 2.80; A30 1.20
/// (4 MIG slices); L4 0.80; L40S 2.00; node-colo is annotated 1.00; GH200 has no price.
///
/// cc-100/team-a: chat-0, 2 H100 (limits only) all day: 2×12×4 + 2×12×3 = 168.00, 48 h.
/// cc-150/team-a: serve-0, app 1 + sidecar 1 = 2 H100 from 18:00: 2×6×3 = 36.00, 12 h.
/// cc-200/team-b: train-0, init 4 > app 1: 4 H100 06:00–10:00: 4×4×4 = 64.00, 16 h;
///                crash-0, 1 spot H100 20:00–21:30: 1.5×1.50 = 2.25, 1.5 h → 66.25, 17.5 h.
/// cc-201/team-b: batch-0, 1 spot H100 10:00–14:00: 2×2.00 + 2×1.50 = 7.00, 4 h.
/// cc-400/team-d: ts-0 ¼ L4 24 h = 6 h, 4.80; ts-1 ¼ L4 8 h = 2 h, 1.60; l40s-0 1 L40S from
///                06:00 = 18 h, 36.00; colo-0 1 L40S at 1.00 = 24 h, 24.00 → 50 h, 66.40.
/// cc-500/team-e: dra-0 1 H200 24 h (192.00); shared-0 and shared-1 ½ each (96.00 each);
///                ext-0 1 H200 from 12:00 (96.00); mig-dra-0 1g.18gb = 1/7 H200 24 h
///                (192/7 = 27.428571…) → 63.428571… h, 507.428571…
/// unassigned/team-c: mig-0 3g.20gb = 3/7 A100 24 h = 10.285714… h, 28.80; a30-0 2×1g.6gb = ½
///                A30 12 h = 6 h, 7.20; gh-0 1 GH200 24 h unpriced → 40.285714… h, 36.00, 24 h
///                unpriced.
/// __unallocated__: capacity minus what pods held, per node:
///   node-h100 8 GPUs: first half 96−40 = 56 h × 4 = 224, second half 96−36 = 60 h × 3 = 180;
///   node-h100-spot 8: 192 − 5.5 = 186.5 h, 8×(12×2 + 12×1.5) − 9.25 = 326.75;
///   node-a100-mig 1: 24 − 72/7 h, 67.20 − 28.80 = 38.40; node-a30 1: 18 h, 21.60;
///   node-l4-ts 8 replicas ÷ 4 = 2 GPUs: 48 − 8 = 40 h, 32.00; node-l40s 2 GPUs from 06:00:
///   36 − 18 = 18 h, 36.00; node-h200-dra 4 DRA GPUs: 96 − (60 + 24/7) h, 768 − 480 − 192/7;
///   node-gh200 and node-colo fully held.
///   → 424.785714… h, 1119.321428…
/// Totals: 660 GPU-hours = the fleet's capacity; 2006.40 = its full cost. Rounded with largest
/// remainder: hours 63.42857 → 63.4286 takes the missing 0.0001; cost 507.4286 → 507.43 takes
/// the missing cent, so the lines add up to 660.0000 and 2006.40.
const FIXTURE_CSV: &str = "\
period_start,period_end,cost_center,namespace,gpu_hours,used_gpu_hours,cost,idle_cost,unpriced_gpu_hours,currency
2026-11-01T00:00:00Z,2026-11-02T00:00:00Z,__unallocated__,,424.7857,,1119.32,,0.0000,USD
2026-11-01T00:00:00Z,2026-11-02T00:00:00Z,cc-100,team-a,48.0000,,168.00,,0.0000,USD
2026-11-01T00:00:00Z,2026-11-02T00:00:00Z,cc-150,team-a,12.0000,,36.00,,0.0000,USD
2026-11-01T00:00:00Z,2026-11-02T00:00:00Z,cc-200,team-b,17.5000,,66.25,,0.0000,USD
2026-11-01T00:00:00Z,2026-11-02T00:00:00Z,cc-201,team-b,4.0000,,7.00,,0.0000,USD
2026-11-01T00:00:00Z,2026-11-02T00:00:00Z,cc-400,team-d,50.0000,,66.40,,0.0000,USD
2026-11-01T00:00:00Z,2026-11-02T00:00:00Z,cc-500,team-e,63.4286,,507.43,,0.0000,USD
2026-11-01T00:00:00Z,2026-11-02T00:00:00Z,unassigned,team-c,40.2857,,36.00,,24.0000,USD
";

#[test]
fn the_fixture_chargeback_is_right_to_the_cent() {
    let output = fixture_report(&["--group-by", "cost_center,namespace"]);
    assert_eq!(stdout(&output), FIXTURE_CSV);
    // RFC 4180 line ends.
    assert!(output.stdout.ends_with(b"USD\r\n"));
    assert_eq!(
        stderr(&output),
        "warning: GPU model \"NVIDIA-GH200-480GB\" has no price in ".to_string()
            + fixtures().join("rates.toml").to_str().unwrap()
            + " for 24 GPU-hours; they are reported as unpriced_gpu_hours, with no cost\n"
    );
    // The default group-by is cost_center,namespace.
    assert_eq!(stdout(&fixture_report(&[])), FIXTURE_CSV);
}

#[test]
fn grouped_by_model_the_lines_are_each_models_full_fleet_cost() {
    // capacity × hours × price: A100 1×24×2.80; A30 1×24×1.20; H100 on demand 8×(12×4+12×3)
    // + spot 8×(12×2+12×1.5); H200 4×24×8; L4 2×24×0.80; L40S 2×18×2 + 1×24×1.00 (colo).
    let csv = stdout(&fixture_report(&["--group-by", "gpu_model"]));
    assert_eq!(
        csv,
        "\
period_start,period_end,gpu_model,gpu_hours,used_gpu_hours,cost,idle_cost,unpriced_gpu_hours,currency
2026-11-01T00:00:00Z,2026-11-02T00:00:00Z,A100-40GB,24.0000,,67.20,,0.0000,USD
2026-11-01T00:00:00Z,2026-11-02T00:00:00Z,A30-24GB,24.0000,,28.80,,0.0000,USD
2026-11-01T00:00:00Z,2026-11-02T00:00:00Z,H100-80GB,384.0000,,1008.00,,0.0000,USD
2026-11-01T00:00:00Z,2026-11-02T00:00:00Z,H200-141GB,96.0000,,768.00,,0.0000,USD
2026-11-01T00:00:00Z,2026-11-02T00:00:00Z,L4-24GB,48.0000,,38.40,,0.0000,USD
2026-11-01T00:00:00Z,2026-11-02T00:00:00Z,L40S-48GB,60.0000,,96.00,,0.0000,USD
2026-11-01T00:00:00Z,2026-11-02T00:00:00Z,NVIDIA-GH200-480GB,24.0000,,,,24.0000,USD
"
    );
}

#[test]
fn sharing_unallocated_spreads_it_and_keeps_the_total() {
    let csv = stdout(&fixture_report(&[
        "--share-unallocated",
        "--format",
        "json",
    ]));
    let json: serde_json::Value = serde_json::from_str(&csv).unwrap();
    assert_eq!(json["total"]["cost"], "2006.40");
    assert_eq!(json["total"]["gpu_hours"], "660.0000");
    let centers: Vec<&str> = json["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["cost_center"].as_str().unwrap())
        .collect();
    // Every model was used by someone, so nothing stays unallocated.
    assert!(!centers.contains(&"__unallocated__"), "{centers:?}");
    // team-e used only H200: it absorbs all of node-h200-dra's idle cost (1824/7 = 260.57…).
    let team_e = json["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["cost_center"] == "cc-500")
        .unwrap();
    assert_eq!(team_e["cost"], "768.00");
}

#[test]
fn hourly_rows_add_up_to_the_same_total() {
    let csv = stdout(&fixture_report(&["--step", "hour", "--format", "json"]));
    let json: serde_json::Value = serde_json::from_str(&csv).unwrap();
    let lines = json["lines"].as_array().unwrap();
    let periods: std::collections::BTreeSet<&str> = lines
        .iter()
        .map(|l| l["period_start"].as_str().unwrap())
        .collect();
    assert_eq!(periods.len(), 24);
    assert_eq!(json["total"]["cost"], "2006.40");
    let cents: i64 = lines
        .iter()
        .filter_map(|l| l["cost"].as_str())
        .map(|c| c.replace('.', "").parse::<i64>().unwrap())
        .sum();
    assert_eq!(cents, 200_640);
}

#[test]
fn every_group_key_in_csv_and_json() {
    let all = "cost_center,namespace,gpu_model,node,pod,cost_center_source";
    insta::assert_snapshot!(
        "fixture_all_keys_csv",
        stdout(&fixture_report(&["--group-by", all]))
    );
    insta::assert_snapshot!(
        "fixture_json",
        stdout(&fixture_report(&["--format", "json"]))
    );
    insta::assert_snapshot!(
        "fixture_daily_by_source_csv",
        stdout(&fixture_report(&[
            "--from",
            "2026-10-31T12:00:00Z",
            "--step",
            "day",
            "--group-by",
            "cost_center_source"
        ]))
    );
}

#[test]
fn the_cost_center_key_comes_from_config_or_environment() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tollgate.toml");
    std::fs::write(&config, "[cost_center]\nkey = \"team\"\n").unwrap();
    let csv = stdout(&fixture_report(&[
        "--config",
        config.to_str().unwrap(),
        "--group-by",
        "cost_center",
    ]));
    assert!(
        csv.lines()
            .skip(1)
            .all(|l| l.contains(",unassigned,") || l.contains(",__unallocated__,")),
        "{csv}"
    );

    let snapshot = fixtures().join("snapshot");
    let output = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "report",
            "--snapshot",
            snapshot.to_str().unwrap(),
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-02",
        ])
        .args(["--group-by", "cost_center"])
        .env("TOLLGATE__COST_CENTER__KEY", "team")
        .output()
        .unwrap();
    let csv = stdout(&output);
    assert!(!csv.contains("cc-100"), "{csv}");
}

fn failure(output: &Output) -> (i32, String) {
    (output.status.code().unwrap(), stderr(output))
}

#[test]
fn bad_input_exits_2_with_one_line_that_says_what_to_fix() {
    let (code, err) = failure(&fixture_report(&["--from", "last tuesday"]));
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "error: --from: \"last tuesday\" is not a time: use RFC 3339 (2026-11-01T00:00:00Z) or a date (2026-11-01, midnight UTC)\n"
    );
    let (code, err) = failure(&fixture_report(&["--group-by", "team"]));
    assert_eq!(code, 2);
    assert!(
        err.starts_with("error: --group-by: unknown group-by key \"team\""),
        "{err}"
    );
    let (code, err) = failure(&fixture_report(&["--step", "week"]));
    assert_eq!(
        (code, err.as_str()),
        (
            2,
            "error: --step: unknown step \"week\": use hour, day, month, or window for the whole window\n"
        )
    );
    let (code, err) = failure(&fixture_report(&["--format", "xlsx"]));
    assert_eq!(
        (code, err.as_str()),
        (
            2,
            "error: --format: unknown format \"xlsx\": use csv, json or focus\n"
        )
    );
    let (code, err) = failure(&fixture_report(&["--format", "focus", "--group-by", "pod"]));
    assert_eq!(
        (code, err.as_str()),
        (
            2,
            "error: --group-by: FOCUS rows are one per resource and charge period: leave it out\n"
        )
    );
    let (code, err) = failure(&fixture_report(&["--from", "2026-11-03"]));
    assert_eq!(
        (code, err.as_str()),
        (
            2,
            "error: --from: must be before the end of the window (to)\n"
        )
    );

    let (code, err) = failure(&tollgate(&["report", "--snapshot", "/nonexistent/dir"]));
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "error: /nonexistent/dir: is not a directory (pass --snapshot DIR holding pods.json, nodes.json, …)\n"
    );
    let (code, err) = failure(&tollgate(&[
        "report",
        "--demo",
        "--pricing",
        "/nonexistent/rates.toml",
    ]));
    assert_eq!(code, 2);
    assert!(
        err.starts_with("error: /nonexistent/rates.toml: cannot read the rate card"),
        "{err}"
    );
    // A demo fleet of no GPUs is asked for by mistake: said, not made the smallest one.
    let (code, err) = failure(&tollgate(&["report", "--demo", "--demo-scale", "0"]));
    assert_eq!(code, 2);
    assert!(
        err.starts_with("error: invalid value '0' for '--demo-scale <N>': 0 is not in 1.."),
        "{err}"
    );
    let (code, err) = failure(&tollgate(&["report", "--history"]));
    assert_eq!(
        (code, err.as_str()),
        (
            2,
            "error: --history reads Prometheus: pass --prometheus URL or set prometheus.url\n"
        )
    );
    let (code, err) = failure(&tollgate(&[
        "serve",
        "--history",
        "--listen",
        "127.0.0.1:0",
    ]));
    assert_eq!(
        (code, err.as_str()),
        (
            2,
            "error: --history reads Prometheus: pass --prometheus URL or set prometheus.url\n"
        )
    );
    // No source flag: the live cluster, and there is none here.
    let output = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("report")
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    let (code, err) = failure(&output);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: cannot reach a Kubernetes cluster ("),
        "{err}"
    );
    assert!(
        err.ends_with("run in a cluster, set KUBECONFIG, or use --demo or --snapshot DIR\n"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
}

#[test]
fn a_broken_snapshot_file_is_named_with_the_item() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            r#"{"kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x","namespace":"y"},"spec":{"containers":"nope"}}]}"#,
            "pods.json: item 0 (y/x): invalid type",
        ),
        (
            "{not json",
            "pods.json: not JSON: key must be a string at line 1 column 2",
        ),
        (
            r#"{"kind":"Pod"}"#,
            "pods.json: expected a List with `items`",
        ),
    ];
    for (content, expected) in cases {
        std::fs::write(dir.path().join("pods.json"), content).unwrap();
        let (code, err) = failure(&tollgate(&[
            "report",
            "--snapshot",
            dir.path().to_str().unwrap(),
        ]));
        assert_eq!(code, 2);
        assert!(err.contains(expected), "{err}");
    }
}

#[test]
fn pricing_check_says_how_each_spelling_is_priced() {
    let out = stdout(&tollgate(&[
        "pricing",
        "check",
        "--product",
        "NVIDIA-A100-SXM-80GB",
        "--product",
        "NVIDIA A100-SXM-80GB",
        "--product",
        "NVIDIA-A100-SXM4-40GB",
        "--product",
        "NVIDIA A100",
        "--product",
        "AMD_Instinct_MI300X_OAM",
        "--product",
        "Intel Gaudi 3",
    ]));
    let lines: Vec<&str> = out.lines().skip(2).collect();
    assert_eq!(
        lines,
        [
            "  \"NVIDIA-A100-SXM-80GB\": A100-80GB (match \"a100\", memory 80 GB chose it over A100-40GB)",
            "  \"NVIDIA A100-SXM-80GB\": A100-80GB (match \"a100\", memory 80 GB chose it over A100-40GB)",
            "  \"NVIDIA-A100-SXM4-40GB\": A100-40GB (match \"a100 sxm4 40gb\")",
            "  \"NVIDIA A100\": AMBIGUOUS: match \"a100\" selects A100-80GB and A100-40GB; priced as A100-80GB, the model written first. Name the memory in the product (nodes: the nvidia.com/gpu.memory label) or add a longer match string",
            "  \"AMD_Instinct_MI300X_OAM\": MI300X-192GB (match \"mi300x\")",
            "  \"Intel Gaudi 3\": unpriced (no match string matches it)",
        ],
        "{out}"
    );
}

#[test]
fn pricing_check_validates_cards_and_names_file_and_line() {
    let ok = tollgate(&[
        "pricing",
        "check",
        concat!(env!("CARGO_MANIFEST_DIR"), "/pricing/default.toml"),
    ]);
    let out = stdout(&ok);
    let shared = "  match \"a100\" is shared by A100-80GB (80 GB), A100-40GB (40 GB): a product is priced as the one nearest its memory; a name without one as A100-80GB\n";
    assert!(
        out.ends_with(&format!(
            "pricing/default.toml: ok, 14 models, 15 price periods, USD\n{shared}"
        )),
        "{out}"
    );
    assert_eq!(
        stdout(&tollgate(&["pricing", "check"])),
        format!("<built-in pricing/default.toml>: ok, 14 models, 15 price periods, USD\n{shared}")
    );

    let dir = tempfile::tempdir().unwrap();
    // Valid, but not priced throughout: six hours between two periods, and nothing after the
    // last one's `until`. Said, not refused.
    let gaps = dir.path().join("gaps.toml");
    std::fs::write(
        &gaps,
        "currency = \"USD\"\n\n[[gpu]]\nmodel = \"H100\"\non_demand = \"7.00\"\n\
         until = \"2026-11-01T12:00:00Z\"\n\n[[gpu]]\nmodel = \"H100\"\non_demand = \"6.00\"\n\
         from = \"2026-11-01T18:00:00Z\"\nuntil = \"2027-01-01T00:00:00Z\"\n",
    )
    .unwrap();
    let said = tollgate(&["pricing", "check", gaps.to_str().unwrap()]);
    assert_eq!(said.status.code(), Some(0));
    assert_eq!(
        stdout(&said),
        format!(
            "{}: ok, 1 models, 2 price periods, USD\n\
             \x20 H100 has no price from 2026-11-01T12:00:00Z to 2026-11-01T18:00:00Z (after the \
             period on line 3): its hours then are reported as unpriced_gpu_hours, with no cost\n\
             \x20 H100 has no price from 2027-01-01T00:00:00Z (after the period on line 8): its \
             hours then are reported as unpriced_gpu_hours, with no cost\n",
            gaps.display()
        )
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "currency = \"USD\"\n\n[[gpu]]\nmodel = \"H100\"\non_demand = \"6,88\"\n",
    )
    .unwrap();
    let (code, err) = failure(&tollgate(&["pricing", "check", bad.to_str().unwrap()]));
    assert_eq!(code, 2);
    assert_eq!(
        err,
        format!(
            "error: {}:5: on_demand: \"6,88\" is not a decimal price (write e.g. \"6.88\")\n",
            bad.display()
        )
    );
}

#[test]
fn the_demo_fleet_reports_deterministically() {
    let args = [
        "report",
        "--demo",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-27",
        "--group-by",
        "gpu_model",
    ];
    let first = stdout(&tollgate(&args));
    assert_eq!(first, stdout(&tollgate(&args)));
    insta::assert_snapshot!("demo_by_model_csv", first);
}

#[test]
fn a_line_that_is_all_or_none_idle_or_unpriced_prints_so() {
    // Windows of the demo fleet (with its simulated utilization) in which, rounded column by
    // column, capacity nobody held showed a cent less idle cost than its cost, or priced
    // models' and pods' lines a unit of unpriced hours, or a pod without a price a unit less
    // unpriced than its hours: found by sweeps of random windows (each window failed before
    // 2026-12-05). Whatever the rounding of the other lines, capacity nobody held is all idle
    // and none of it used; a line with no price has all its hours unpriced; a priced model or
    // pod has none unpriced.
    let windows = [
        (
            "2026-11-19T16:23:39Z",
            "2026-11-19T18:37:30Z",
            "cost_center,node",
            "window",
        ),
        (
            "2026-11-07T18:48:45Z",
            "2026-11-10T01:08:09Z",
            "cost_center,node",
            "day",
        ),
        (
            "2026-11-14T04:33:38Z",
            "2026-11-14T11:01:24Z",
            "cost_center,node",
            "hour",
        ),
        (
            "2026-10-28T10:27:26Z",
            "2026-10-29T20:47:55Z",
            "cost_center",
            "day",
        ),
        (
            "2026-11-14T01:10:14Z",
            "2026-11-15T12:19:37Z",
            "gpu_model,node",
            "day",
        ),
        (
            "2026-11-06T12:30:30Z",
            "2026-11-07T19:13:44Z",
            "pod",
            "window",
        ),
        (
            "2026-11-20T16:21:35Z",
            "2026-11-21T00:23:08Z",
            "cost_center,gpu_model",
            "hour",
        ),
    ];
    let (mut idle_lines, mut unpriced_lines) = (0, 0);
    for (from, to, group_by, step) in windows {
        let args = [
            "report",
            "--demo",
            "--from",
            from,
            "--to",
            to,
            "--as-of",
            "2026-11-30T00:00:00Z",
            "--group-by",
            group_by,
            "--step",
            step,
            "--format",
            "json",
        ];
        let report: serde_json::Value = serde_json::from_str(&stdout(&tollgate(&args))).unwrap();
        // By model, or a pod's line by pod, a line is wholly priced or wholly unpriced (the demo
        // overrides no node's price): one with a cost has no unpriced hours. (By pod alone the
        // capacity nobody held is one line of every model.)
        for line in report["lines"].as_array().unwrap() {
            let pure = group_by.contains("gpu_model") || (group_by == "pod" && line["pod"] != "");
            if line["cost_center"] == "__unallocated__" {
                assert_eq!(line["idle_cost"], line["cost"], "{from}..{to} {line}");
                assert_eq!(line["used_gpu_hours"], "0.0000", "{from}..{to} {line}");
                idle_lines += 1;
            }
            if line["cost"].is_null() {
                assert_eq!(
                    line["unpriced_gpu_hours"], line["gpu_hours"],
                    "{from}..{to} {line}"
                );
                unpriced_lines += 1;
            } else if pure {
                assert_eq!(line["unpriced_gpu_hours"], "0.0000", "{from}..{to} {line}");
            }
        }
    }
    assert!(
        idle_lines > 100 && unpriced_lines > 10,
        "{idle_lines} {unpriced_lines}"
    );
}

#[test]
fn cells_a_spreadsheet_would_run_are_written_as_text() {
    // The fixture with team-a's cost-center annotation turned into a formula (anyone who can
    // annotate a namespace can write one).
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixtures().join("snapshot")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let formula = r#"=HYPERLINK("http://evil.example","cc")"#;
    let namespaces = dir.path().join("namespaces.json");
    let text = std::fs::read_to_string(&namespaces).unwrap();
    assert!(text.contains(r#""cost-center": "cc-100""#));
    let text = text.replace(
        r#""cost-center": "cc-100""#,
        &format!(
            "\"cost-center\": {}",
            serde_json::to_string(formula).unwrap()
        ),
    );
    std::fs::write(&namespaces, text).unwrap();
    let report = |extra: &[&str]| {
        let output = snapshot_report(dir.path(), extra);
        let mut reader = ::csv::Reader::from_reader(std::io::Cursor::new(stdout(&output)));
        let header = reader.headers().unwrap().clone();
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        (header, rows)
    };
    let shown = format!("'{formula}");
    for (extra, column) in [
        (&["--group-by", "cost_center"][..], "cost_center"),
        (&["--format", "focus"][..], "x_CostCenter"),
    ] {
        let (header, rows) = report(extra);
        let at = header.iter().position(|h| h == column).unwrap();
        assert!(
            rows.iter().any(|row| row[at] == shown),
            "{column}: {rows:?}"
        );
        for row in &rows {
            for cell in row {
                assert!(!cell.starts_with('='), "{column}: a formula cell {cell:?}");
            }
        }
    }
}

/// The JSON report of the shape in `tests/fixtures/shapes/<shape>` over 2026-11-01, grouped by
/// `group_by`, and the process's output (for its stderr).
fn shape_report(shape: &str, group_by: &str) -> (serde_json::Value, Output) {
    let snapshot = fixtures().join("shapes").join(shape);
    let output = snapshot_report(&snapshot, &["--group-by", group_by, "--format", "json"]);
    (serde_json::from_str(&stdout(&output)).unwrap(), output)
}

#[test]
fn mig_single_and_time_sliced_mig_count_each_gpu_once() {
    // tests/fixtures/shapes/mig: four A100-SXM4-40GB nodes (2.80 an hour) over 2026-11-01,
    // each filled as NVIDIA's own configs advertise it:
    // - MIG single, all-1g.5gb: GFD's gpu.count is 7 MIG devices of one GPU; 7 pods × 1/7;
    // - the same time-sliced twice (`-SHARED`, gpu.replicas=2, 14 advertised): 14 pods × 1/14;
    // - MIG mixed with mig-1g.5gb.replicas=2 (14 advertised): 14 pods × 1/14;
    // - MIG mixed, 2 × 3g.20gb + 1 × 1g.5gb, time-sliced under `renameByDefault`
    //   (`mig-3g.20gb.shared` 4 = 2 devices × 2 replicas, `mig-1g.5gb.shared` 4 = 1 × 4), no
    //   gpu.count label: the node is 4 × 3/7 ÷ 2 + 4 × 1/7 ÷ 4 = 6/7 + 1/7 = 1 GPU. Three pods
    //   hold a 3g.20gb share (3/14 each) and two a 1g.5gb share (1/28 each): 9/14 + 1/14 = 5/7
    //   of the GPU, 24 × 5/7 = 17.1429 GPU-hours = 48.00; unallocated 2/7, 6.8571 h = 19.20.
    // The first three nodes: 1 GPU × 24 h = 24 GPU-hours = 67.20 each, all of it held. The
    // fleet: 96 GPU-hours, 268.80. Nothing held beyond a node, no warning.
    let (report, output) = shape_report("mig", "node,cost_center");
    let mut lines = std::collections::BTreeMap::new();
    for line in report["lines"].as_array().unwrap() {
        let figures = (
            line["gpu_hours"].as_str().unwrap().to_string(),
            line["cost"].as_str().unwrap().to_string(),
        );
        let key = (
            line["node"].as_str().unwrap().to_string(),
            line["cost_center"].as_str().unwrap().to_string(),
        );
        lines.insert(key, figures);
    }
    let line = |node: &str, cost_center: &str, hours: &str, cost: &str| {
        (
            (node.to_string(), cost_center.to_string()),
            (hours.to_string(), cost.to_string()),
        )
    };
    assert_eq!(
        lines,
        [
            line(
                "a100-mig-mixed-renamed",
                "__unallocated__",
                "6.8571",
                "19.20"
            ),
            line("a100-mig-mixed-renamed", "cc-900", "17.1429", "48.00"),
            line("a100-mig-mixed-shared", "cc-900", "24.0000", "67.20"),
            line("a100-mig-single", "cc-900", "24.0000", "67.20"),
            line("a100-mig-single-shared", "cc-900", "24.0000", "67.20"),
        ]
        .into()
    );
    assert_eq!(report["total"]["gpu_hours"], "96.0000");
    assert_eq!(report["total"]["cost"], "268.80");
    assert_eq!(
        report["warnings"],
        serde_json::json!([]),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_rtx_pro_6000_s_mig_devices_are_quarters_of_it_where_the_card_does_not_say() {
    // An RTX PRO 6000 Blackwell (NVIDIA's MIG guide: 4 instances at most; a card pricing it at
    // 2.00 an hour without `mig_slices`), MIG mixed: 2 × 1g.24gb and 1 × 2g.48gb, GFD's count 1.
    // Over 2026-11-01: one pod holds a 1g.24gb, 1/4 × 24 = 6 h = 12.00; another the 2g.48gb,
    // 1/2 × 24 = 12 h = 24.00; the other 1g.24gb, 6 h = 12.00, is unallocated: 48.00 in all. (Sized by sevenths,
    // as every GPU but an A30 was: 3.4286 h, 6.8571 h and 13.7143 h unallocated.)
    let dir = tempfile::tempdir().unwrap();
    let list = |items: serde_json::Value| serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    let node = serde_json::json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "rtx-6000", "uid": "n-1", "creationTimestamp": "2026-10-01T00:00:00Z",
            "labels": {"nvidia.com/gpu.product": "NVIDIA-RTX-PRO-6000-Blackwell-Server-Edition",
                "nvidia.com/gpu.count": "1", "nvidia.com/mig.strategy": "mixed"}},
        "status": {"capacity": {"nvidia.com/mig-1g.24gb": "2", "nvidia.com/mig-2g.48gb": "1"}}});
    let pod = |name: &str, resource: &str| {
        serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "ml", "uid": name},
            "spec": {"nodeName": "rtx-6000",
                "containers": [{"name": "c", "resources": {"limits": {resource: "1"}}}]},
            "status": {"phase": "Running", "startTime": "2026-11-01T00:00:00Z"}})
    };
    let files = [
        ("nodes.json", list(serde_json::json!([node]))),
        (
            "pods.json",
            list(serde_json::json!([
                pod("small", "nvidia.com/mig-1g.24gb"),
                pod("large", "nvidia.com/mig-2g.48gb")
            ])),
        ),
        ("namespaces.json", list(serde_json::json!([]))),
    ];
    for (file, objects) in files {
        std::fs::write(dir.path().join(file), objects.to_string()).unwrap();
    }
    let card = dir.path().join("rates.toml");
    std::fs::write(
        &card,
        "currency = \"USD\"\n[[gpu]]\nmodel = \"RTX-PRO-6000\"\nmatch = [\"rtx pro 6000\"]\non_demand = \"2.00\"\n",
    )
    .unwrap();
    let output = tollgate(&[
        "report",
        "--snapshot",
        dir.path().to_str().unwrap(),
        "--pricing",
        card.to_str().unwrap(),
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-02",
        "--group-by",
        "cost_center,pod",
    ]);
    let day = "2026-11-01T00:00:00Z,2026-11-02T00:00:00Z";
    assert_eq!(
        stdout(&output).lines().skip(1).collect::<Vec<_>>(),
        [
            format!("{day},__unallocated__,,6.0000,,12.00,,0.0000,USD"),
            format!("{day},unassigned,large,12.0000,,24.00,,0.0000,USD"),
            format!("{day},unassigned,small,6.0000,,12.00,,0.0000,USD"),
        ]
    );
    assert_eq!(stderr(&output), "");
}

#[test]
fn dra_consumable_shares_charge_what_each_claim_consumes() {
    // tests/fixtures/shapes/dra-shares: one H100 published by the DRA driver as shareable
    // (KEP-5075; memory 80Gi), two claims each consuming 20Gi of gpu-0 (a quarter). Over
    // 2026-11-01 at 4.00 an hour until noon and 3.00 after (84.00 a GPU-day), each pod holds
    // 1/4 × 24 = 6 GPU-hours = 21.00; the other half of the GPU, 12 GPU-hours = 42.00, is
    // unallocated. Nothing held beyond the device, no warning.
    let (report, output) = shape_report("dra-shares", "cost_center,pod");
    let lines: Vec<(String, String, String)> = report["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                format!(
                    "{}/{}",
                    l["cost_center"].as_str().unwrap(),
                    l["pod"].as_str().unwrap()
                ),
                l["gpu_hours"].as_str().unwrap().to_string(),
                l["cost"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let line = |group: &str, hours: &str, cost: &str| (group.into(), hours.into(), cost.into());
    assert_eq!(
        lines,
        [
            line("__unallocated__/", "12.0000", "42.00"),
            line("cc-900/infer-0", "6.0000", "21.00"),
            line("cc-900/infer-1", "6.0000", "21.00"),
        ]
    );
    assert_eq!(
        report["warnings"],
        serde_json::json!([]),
        "{}",
        stderr(&output)
    );
}

/// The CSV report of `tests/fixtures/shapes/<shape>` over 2026-11-01, grouped by `group_by`,
/// priced with the built-in example card.
fn builtin_card_report(shape: &str, group_by: &str) -> Output {
    let snapshot = fixtures().join("shapes").join(shape);
    tollgate(&[
        "report",
        "--snapshot",
        snapshot.to_str().unwrap(),
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-02",
        "--group-by",
        group_by,
    ])
}

#[test]
fn memory_tells_a100_spellings_apart() {
    // tests/fixtures/shapes/spellings, priced with the built-in example card (A100-80GB 4.10,
    // A100-40GB 3.20 an hour; both match `a100`) over 2026-11-01:
    // - a100-sxm-80: GFD `NVIDIA-A100-SXM-80GB`, 2 GPUs, one held: 48 h at 4.10 = 196.80;
    // - a100-dra: DRA `NVIDIA A100-SXM-80GB`, one claimed GPU: 24 h at 4.10 = 98.40;
    // - a100-pcie-40: GFD `NVIDIA-A100-PCIe` naming no memory, gpu.memory 40960 MiB: 24 h at
    //   3.20 = 76.80;
    // - a100-dra-pcie: DRA `NVIDIA A100-PCIE` with a 40Gi memory capacity: 24 h at 3.20 = 76.80.
    // By model: A100-80GB 72 h, 295.20; A100-40GB 48 h, 153.60 (all through the bare `a100`
    // rule, which used to price every one of them as an A100-40GB: 120 h, 384.00).
    let output = builtin_card_report("spellings", "gpu_model");
    assert_eq!(
        stdout(&output),
        "period_start,period_end,gpu_model,gpu_hours,used_gpu_hours,cost,idle_cost,unpriced_gpu_hours,currency
2026-11-01T00:00:00Z,2026-11-02T00:00:00Z,A100-40GB,48.0000,,153.60,,0.0000,USD
2026-11-01T00:00:00Z,2026-11-02T00:00:00Z,A100-80GB,72.0000,,295.20,,0.0000,USD
"
    );
    assert_eq!(stderr(&output), "");
}

#[test]
fn a_gh200_named_by_its_superchip_s_memory_is_priced_by_the_memory_its_gpu_reports() {
    // tests/fixtures/shapes/superchips over 2026-11-01 (24 h), priced with its own card: two
    // GH200 models under one match string `gh200`, GH200-96GB at 4.00 and GH200-144GB at 6.00,
    // told apart by memory_gb. GFD names the 96 GB GH200 `NVIDIA-GH200-480GB`, its superchip's
    // memory.
    // - gh200-96: `NVIDIA-GH200-480GB`, gpu.memory 97,871 MiB (96 GB); its GPU held all day:
    //   24 h at 4.00 = 96.00;
    // - gh200-144: `NVIDIA-GH200-144G-HBM3e` (no `gb` word), gpu.memory 146,831 MiB (143 GB):
    //   24 h at 6.00 = 144.00;
    // - gh200-dra: DRA `NVIDIA GH200 480GB` with a 97871Mi memory capacity: 24 h at 4.00 = 96.00;
    // - gh200-mig: MIG single, `NVIDIA-GH200-480GB-MIG-1g.12gb`, 7 devices (one GPU: 1g.12gb is
    //   a seventh of its compute), gpu.memory 11,008 MiB (a slice's); gh200-mig-0 holds 2:
    //   2/7 × 24 h = 6.8571 h, × 4.00 = 192/7 = 27.43; 5/7 × 24 h = 17.1429 h, 480/7 = 68.57
    //   unallocated.
    // The 480 GB the names state used to pick the 144 GB model for all four: 144.00 each (the
    // MIG node's 41.14 and 102.86).
    let snapshot = fixtures().join("shapes").join("superchips");
    let output = tollgate(&[
        "report",
        "--snapshot",
        snapshot.to_str().unwrap(),
        "--pricing",
        snapshot.join("rates.toml").to_str().unwrap(),
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-02",
        "--group-by",
        "node,cost_center,gpu_model",
    ]);
    let row = |node: &str, cc: &str, model: &str, hours: &str, cost: &str| {
        format!(
            "2026-11-01T00:00:00Z,2026-11-02T00:00:00Z,{node},{cc},{model},{hours},,{cost},,0.0000,USD"
        )
    };
    assert_eq!(
        stdout(&output).lines().collect::<Vec<_>>(),
        [
            "period_start,period_end,node,cost_center,gpu_model,gpu_hours,used_gpu_hours,cost,idle_cost,unpriced_gpu_hours,currency".to_string(),
            row("gh200-144", "cc-900", "GH200-144GB", "24.0000", "144.00"),
            row("gh200-96", "cc-900", "GH200-96GB", "24.0000", "96.00"),
            row("gh200-dra", "cc-900", "GH200-96GB", "24.0000", "96.00"),
            row("gh200-mig", "__unallocated__", "GH200-96GB", "17.1429", "68.57"),
            row("gh200-mig", "cc-900", "GH200-96GB", "6.8571", "27.43"),
        ]
    );
    assert_eq!(stderr(&output), "");
}

#[test]
fn gpus_gpu_feature_discovery_does_not_label_take_the_model_their_cloud_names() {
    // tests/fixtures/shapes/clouds, priced with the built-in example card over 2026-11-01
    // (24 h); no node has GFD's nvidia.com/gpu.product:
    // - gke-h100 (GKE accelerator nvidia-h100-80gb, 8 GPUs, H100-80GB 6.88): train-0 holds 2:
    //   48 h = 330.24; 144 h = 990.72 unallocated;
    // - gke-a100 (nvidia-tesla-a100, GKE's 40 GB A100; 2 GPUs at 3.20): 48 h = 153.60;
    // - karpenter-l40s (Karpenter's instance-gpu-name l40s, spot: 0.85; 4 GPUs): 96 h = 81.60;
    // - auto-a100 (EKS Auto Mode's a100 with 81,920 MiB: A100-80GB at 4.10; 8 GPUs): 192 h =
    //   787.20;
    // - gke-l4-shared (GKE time-sharing, 3 clients per GPU: 6 advertised = 2 L4 at 0.80):
    //   infer-a and infer-b hold 1/3 each, 16 h = 12.80; 32 h = 25.60 unallocated;
    // - gke-a100-mig (GKE MIG, partition size 1g.5gb: 7 advertised = one A100-40GB): mig-a
    //   holds 2/7, 48/7 h = 6.8571 h, 153.60/7 = 21.94; 120/7 h = 17.1429 h, 54.86 unallocated;
    // - karpenter-l4-ts (Karpenter's l4, instance-gpu-count 4, a device plugin time-slicing each
    //   GPU 4 ways without GFD: 16 advertised): chat-0…2 hold 1/4 each, 18 h = 14.40 at 0.80;
    //   96 − 18 = 78 h = 62.40 unallocated. (karpenter-l40s's count, 4, is what it advertises:
    //   whole GPUs.)
    // Every one of them was unpriced, its model unknown; the shared and MIG nodes' capacity
    // was three and seven times what they have. The Karpenter time-sliced node was 16 L4s:
    // its pods charged 72 h = 57.60, 312 h = 249.60 unallocated.
    let idle = "__unallocated__";
    assert_rows_by_node_and_model(
        "clouds",
        &[
            ("auto-a100", idle, "A100-80GB", "192.0000", "787.20"),
            ("gke-a100", idle, "A100-40GB", "48.0000", "153.60"),
            ("gke-a100-mig", idle, "A100-40GB", "17.1429", "54.86"),
            ("gke-a100-mig", "cc-900", "A100-40GB", "6.8571", "21.94"),
            ("gke-h100", idle, "H100-80GB", "144.0000", "990.72"),
            ("gke-h100", "cc-900", "H100-80GB", "48.0000", "330.24"),
            ("gke-l4-shared", idle, "L4-24GB", "32.0000", "25.60"),
            ("gke-l4-shared", "cc-900", "L4-24GB", "16.0000", "12.80"),
            ("karpenter-l4-ts", idle, "L4-24GB", "78.0000", "62.40"),
            ("karpenter-l4-ts", "cc-900", "L4-24GB", "18.0000", "14.40"),
            ("karpenter-l40s", idle, "L40S-48GB", "96.0000", "81.60"),
        ],
    );
}

/// The report of `tests/fixtures/shapes/{shape}` with the built-in card over 2026-11-01 by node,
/// cost center and GPU model is `rows` (node, cost center, model, GPU-hours, cost), each priced
/// and no utilization known, with nothing said.
fn assert_rows_by_node_and_model(shape: &str, rows: &[(&str, &str, &str, &str, &str)]) {
    let output = builtin_card_report(shape, "node,cost_center,gpu_model");
    let header = "period_start,period_end,node,cost_center,gpu_model,gpu_hours,used_gpu_hours,cost,idle_cost,unpriced_gpu_hours,currency";
    let expected = std::iter::once(header.to_string()).chain(rows.iter().map(
        |(node, cc, model, hours, cost)| {
            format!(
                "2026-11-01T00:00:00Z,2026-11-02T00:00:00Z,{node},{cc},{model},{hours},,{cost},,0.0000,USD"
            )
        },
    ));
    assert_eq!(
        stdout(&output).lines().collect::<Vec<_>>(),
        expected.collect::<Vec<_>>()
    );
    assert_eq!(stderr(&output), "");
}

#[test]
fn gpus_of_nodes_only_their_instance_type_names_take_the_model_it_has() {
    // tests/fixtures/shapes/instances, priced with the built-in example card over 2026-11-01
    // (24 h); an EKS managed node group or an AKS node pool running only NVIDIA's device
    // plugin labels no GPU: Kubernetes' node.kubernetes.io/instance-type is all there is.
    // - eks-p5 (p5.48xlarge: 8 H100 80 GB at 6.88): train-0 holds 2: 48 h = 330.24; 144 h =
    //   990.72 unallocated;
    // - eks-p4d-spot (p4d.24xlarge: A100 40 GB, spot at 1.25): 192 h = 240.00;
    // - eks-g6-ts (g6.12xlarge: 4 L4 at 0.80, a device plugin time-slicing each 4 ways: 16
    //   advertised): chat-0 and chat-1 hold 1/4 each, 12 h = 9.60; 96 − 12 = 84 h = 67.20;
    // - aks-h100 (Standard_ND96isr_H100_v5: H100 80 GB): 192 h = 1320.96.
    // Before, every one was model `unknown`, all 960 GPU-hours unpriced, and eks-g6-ts was 16
    // GPUs (384 h, its pods 48 h).
    let idle = "__unallocated__";
    assert_rows_by_node_and_model(
        "instances",
        &[
            ("aks-h100", idle, "H100-80GB", "192.0000", "1320.96"),
            ("eks-g6-ts", idle, "L4-24GB", "84.0000", "67.20"),
            ("eks-g6-ts", "cc-900", "L4-24GB", "12.0000", "9.60"),
            ("eks-p4d-spot", idle, "A100-40GB", "192.0000", "240.00"),
            ("eks-p5", idle, "H100-80GB", "144.0000", "990.72"),
            ("eks-p5", "cc-900", "H100-80GB", "48.0000", "330.24"),
        ],
    );
}

#[test]
fn amd_gpus_and_partitions_given_through_dra_are_charged() {
    // tests/fixtures/shapes/amd-dra, priced with the built-in example card (MI300X 4.89 an
    // hour) over 2026-11-01, as AMD's DRA driver (gpu.amd.com) publishes its devices:
    // - mi300x-dra: 8 whole GPUs (`type=amdgpu`) = 192 GPU-hours; serve-0's claim holds two:
    //   48 h = 234.72; 144 h = 704.16 unallocated;
    // - mi300x-dra-cpx: 2 GPUs published as 16 CPX partitions (`type=amdgpu-partition`,
    //   `partitionProfile=cpx_nps4`, each sharing its GPU's pciBusID) = 48 GPU-hours;
    //   small-0's claim holds three partitions, 3/8 of a GPU: 9 h = 44.01; 39 h = 190.71
    //   unallocated.
    // These devices were read as no GPU at all: neither node had capacity, neither pod a row.
    let output = builtin_card_report("amd-dra", "node,cost_center,pod");
    let row = |node: &str, cc: &str, pod: &str, hours: &str, cost: &str| {
        format!(
            "2026-11-01T00:00:00Z,2026-11-02T00:00:00Z,{node},{cc},{pod},{hours},,{cost},,0.0000,USD"
        )
    };
    let expected = [
        "period_start,period_end,node,cost_center,pod,gpu_hours,used_gpu_hours,cost,idle_cost,unpriced_gpu_hours,currency".to_string(),
        row("mi300x-dra", "__unallocated__", "", "144.0000", "704.16"),
        row("mi300x-dra", "cc-900", "serve-0", "48.0000", "234.72"),
        row("mi300x-dra-cpx", "__unallocated__", "", "39.0000", "190.71"),
        row("mi300x-dra-cpx", "cc-900", "small-0", "9.0000", "44.01"),
    ];
    assert_eq!(stdout(&output).lines().collect::<Vec<_>>(), expected);
    assert_eq!(stderr(&output), "");
}

#[test]
fn amd_gpus_and_partitions_are_charged_and_unknown_accelerators_named() {
    // tests/fixtures/shapes/amd, priced with the built-in example card (MI300X 4.89 an hour)
    // over 2026-11-01; each MI300X node has 8 GPUs = 192 GPU-hours = 938.88:
    // - mi300x-0 (amd.com/gpu: 8, whole GPUs): pods of 2 and 1 GPUs hold 72 h = 352.08;
    // - mi300x-cpx (cpx_nps4 label, amd.com/gpu: 64 = 8 GPUs × 8 CPX partitions): a pod of 4
    //   partitions holds ½ GPU = 12 h = 58.68;
    // - mi300x-mixed (beta labels; amd.com/spx_nps1: 5 + amd.com/cpx_nps1: 24 = 5 + 3 GPUs): a
    //   pod of 2 CPX partitions holds ¼ GPU = 6 h, one of 1 SPX a GPU = 24 h: 30 h = 146.70;
    // the rest of each node is unallocated. gaudi-0's habana.ai/gaudi is named in a warning.
    let output = builtin_card_report("amd", "node,cost_center,gpu_model");
    let row = |node: &str, cc: &str, hours: &str, cost: &str| {
        format!(
            "2026-11-01T00:00:00Z,2026-11-02T00:00:00Z,{node},{cc},MI300X-192GB,{hours},,{cost},,0.0000,USD"
        )
    };
    let expected = [
        "period_start,period_end,node,cost_center,gpu_model,gpu_hours,used_gpu_hours,cost,idle_cost,unpriced_gpu_hours,currency".to_string(),
        row("mi300x-0", "__unallocated__", "120.0000", "586.80"),
        row("mi300x-0", "cc-900", "72.0000", "352.08"),
        row("mi300x-cpx", "__unallocated__", "180.0000", "880.20"),
        row("mi300x-cpx", "cc-900", "12.0000", "58.68"),
        row("mi300x-mixed", "__unallocated__", "162.0000", "792.18"),
        row("mi300x-mixed", "cc-900", "30.0000", "146.70"),
    ];
    assert_eq!(stdout(&output).lines().collect::<Vec<_>>(), expected);
    assert_eq!(
        stderr(&output).trim(),
        "warning: node gaudi-0: habana.ai/gaudi=8 looks like an accelerator Tollgate does not understand; pods holding it are not charged"
    );
}
