//! `tollgate store backfill` and `reprice`, and a report over closed days answered by the store:
//! after a backfill with DCGM usage from a real Prometheus, the same report runs with
//! Prometheus gone and still has its usage, because it sends no query for stored days.

use crate::support;

use std::process::Output;

use serde_json::Value;
use support::prometheus::{OpenMetrics, TestPrometheus};
use support::{json_stdout, stdout_of, tollgate_command};
use tollgate::time::parse_time;

fn tollgate(store: &std::path::Path, args: &[&str]) -> Output {
    tollgate_command()
        .args(args)
        .args([
            "--snapshot",
            "tests/fixtures/snapshot",
            "--pricing",
            "tests/fixtures/rates.toml",
        ])
        .args([
            "--as-of",
            "2026-11-03T00:00:00Z",
            "--config",
            "tests/fixtures/prometheus/fast-fail.toml",
        ])
        .env("TOLLGATE__STORE__DIR", store)
        .output()
        .unwrap()
}

/// `store backfill` of the fixture's 2026-11-01 and 02 into `store`, with `extra` flags.
fn backfill_two_days(store: &std::path::Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "store",
        "backfill",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-03",
    ];
    args.extend_from_slice(extra);
    tollgate(store, &args)
}

#[test]
fn stored_days_need_no_prometheus_and_repricing_rewrites_them() {
    // chat-0's two GPUs at a steady 25 % for two days.
    let mut om = OpenMetrics::default();
    let start = parse_time("2026-11-01").unwrap();
    for gpu in ["GPU-a0", "GPU-a1"] {
        let labels = [("pod", "chat-0"), ("namespace", "team-a"), ("UUID", gpu)];
        om.series(
            "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
            &labels,
            (start..start + 2 * 86_400).step_by(60).map(|t| (t, 0.25)),
        );
    }
    let prometheus = TestPrometheus::start(&om.text());
    let url = prometheus.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let report = [
        "report",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-03",
        "--format",
        "json",
        "--group-by",
        "cost_center,namespace",
    ];

    let output = backfill_two_days(dir.path(), &["--prometheus", &prometheus.url]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "2 days rolled up, 0 past retention removed\n"
    );
    let mut with_prometheus = report.to_vec();
    with_prometheus.extend(["--prometheus", url.as_str()]);
    let live = json_stdout(&tollgate(dir.path(), &with_prometheus));
    let chat = |report: &Value| -> Value {
        report["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["cost_center"] == "cc-100")
            .unwrap()
            .clone()
    };
    // 2 GPUs × 48 h × 25 % = 24 GPU-hours used.
    assert_eq!(chat(&live)["used_gpu_hours"], "24.0000");

    // Prometheus gone: the stored days still carry their usage, and nothing was asked.
    drop(prometheus);
    let output = tollgate(dir.path(), &with_prometheus);
    let stored = json_stdout(&output);
    assert_eq!(stored, live);
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains(&url),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // A new rate card: reprice the stored days, and the report follows.
    let cheaper = dir.path().join("cheaper.toml");
    let card = std::fs::read_to_string("tests/fixtures/rates.toml")
        .unwrap()
        .replace("on_demand = \"3.00\"", "on_demand = \"2.00\"");
    std::fs::write(&cheaper, card).unwrap();
    let output = tollgate_command()
        .args([
            "store",
            "reprice",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-03",
            "--snapshot",
            "tests/fixtures/snapshot",
        ])
        .args([
            "--pricing",
            cheaper.to_str().unwrap(),
            "--as-of",
            "2026-11-03T00:00:00Z",
        ])
        .env("TOLLGATE__STORE__DIR", dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let repriced = json_stdout(&tollgate(dir.path(), &report));
    // chat-0: 12 h at 4.00 then 36 h at the new 2.00, for 2 GPUs = 96 + 144 = 240.00 (was 312.00).
    assert_eq!(chat(&repriced)["cost"], "240.00");
    assert_eq!(chat(&live)["cost"], "312.00");
}

#[test]
fn stored_days_are_read_only_by_their_source_and_say_when_priced_with_another_card() {
    let dir = tempfile::tempdir().unwrap();
    let output = backfill_two_days(dir.path(), &[]);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "2 days rolled up, 0 past retention removed\n",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Another source (the demo fleet) reporting over the same days in the same store reads
    // none of the snapshot's: its report is what it is with no store at all.
    let demo = |store: &std::path::Path, extra: &[&str]| {
        tollgate_command()
            .args(["report", "--demo", "--as-of", "2026-11-03T00:00:00Z"])
            .args([
                "--from",
                "2026-11-01",
                "--to",
                "2026-11-03",
                "--format",
                "json",
            ])
            .args(extra)
            .env("TOLLGATE__STORE__DIR", store)
            .output()
            .unwrap()
    };
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(
        json_stdout(&demo(dir.path(), &[])),
        json_stdout(&demo(empty.path(), &[]))
    );
    // Nor does it write over them without being told.
    let refused = tollgate_command()
        .args([
            "store",
            "backfill",
            "--demo",
            "--as-of",
            "2026-11-03T00:00:00Z",
        ])
        .args(["--from", "2026-11-01", "--to", "2026-11-03"])
        .env("TOLLGATE__STORE__DIR", dir.path())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert_eq!(
        String::from_utf8_lossy(&refused.stderr).trim(),
        "error: 2 of these days are stored for another source (\"snapshot:snapshot\" on 2026-11-01, not \"demo\"): use another store.dir, set cluster.name to that source's name, or pass --force to replace them"
    );

    // The snapshot with a changed rate card: the stored days keep their prices (chat-0: 12 h
    // at 4.00 then 36 h at 3.00, 2 GPUs = 312.00) and the report says they are stale.
    let cheaper = dir.path().join("cheaper.toml");
    let card = std::fs::read_to_string("tests/fixtures/rates.toml")
        .unwrap()
        .replace("on_demand = \"3.00\"", "on_demand = \"2.00\"");
    std::fs::write(&cheaper, card).unwrap();
    let stale = tollgate_command()
        .args(["report", "--snapshot", "tests/fixtures/snapshot"])
        .args(["--pricing", cheaper.to_str().unwrap()])
        .args(["--as-of", "2026-11-03T00:00:00Z", "--from", "2026-11-01"])
        .args([
            "--to",
            "2026-11-03",
            "--format",
            "json",
            "--group-by",
            "cost_center",
        ])
        .env("TOLLGATE__STORE__DIR", dir.path())
        .output()
        .unwrap();
    let report = json_stdout(&stale);
    let chat = report["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["cost_center"] == "cc-100")
        .unwrap()
        .clone();
    assert_eq!(chat["cost"], "312.00");
    assert_eq!(
        report["warnings"],
        serde_json::json!([
            "2 stored days from 2026-11-01 to 2026-11-02 were priced with another rate card (or before Tollgate recorded which): their figures are the old prices until `tollgate store reprice --from 2026-11-01 --to <day after 2026-11-02>` prices them again",
            format!(
                "GPU model \"NVIDIA-GH200-480GB\" has no price in {} for 48 GPU-hours; they are reported as unpriced_gpu_hours, with no cost",
                cheaper.display()
            )
        ])
    );
}

#[test]
fn stored_days_count_in_the_warning_about_models_without_a_price() {
    // The fixture's node-gh200 has one GH200, which tests/fixtures/rates.toml does not price,
    // held by the `probe` pod (cost center `unassigned`) from 2026-11-01 on: 24 GPU-hours a
    // day. With 2026-11-01 and 02 stored, a report to 2026-11-03T12:00 reads 48 of its hours
    // from the store and prices 12: the warning counts all 60, as with no store at all.
    let dir = tempfile::tempdir().unwrap();
    let output = backfill_two_days(dir.path(), &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let empty = tempfile::tempdir().unwrap();
    let report = |store: &std::path::Path, to: &str, extra: &[&str]| {
        json_stdout(
            &tollgate_command()
                .args(["report", "--snapshot", "tests/fixtures/snapshot"])
                .args(["--pricing", "tests/fixtures/rates.toml"])
                .args(["--as-of", "2026-11-04T00:00:00Z"])
                .args(["--from", "2026-11-01", "--to", to, "--format", "json"])
                .args(extra)
                .env("TOLLGATE__STORE__DIR", store)
                .output()
                .unwrap(),
        )
    };
    let unpriced = |hours: &str| {
        serde_json::json!([format!(
            "GPU model \"NVIDIA-GH200-480GB\" has no price in tests/fixtures/rates.toml for {hours} GPU-hours; they are reported as unpriced_gpu_hours, with no cost"
        )])
    };
    for (to, extra, hours) in [
        (
            "2026-11-03T12:00:00Z",
            &["--group-by", "cost_center"][..],
            "60",
        ),
        ("2026-11-03T12:00:00Z", &["--step", "day"][..], "60"),
        (
            "2026-11-03T12:00:00Z",
            &["--group-by", "node", "--step", "hour"][..],
            "60",
        ),
        // Wholly stored.
        ("2026-11-03", &["--group-by", "namespace"][..], "48"),
        (
            "2026-11-03",
            &["--group-by", "cost_center", "--cost-center", "unassigned"][..],
            "48",
        ),
    ] {
        let stored = report(dir.path(), to, extra);
        assert_eq!(stored["warnings"], unpriced(hours), "{to} {extra:?}");
        assert_eq!(
            stored["total"]["unpriced_gpu_hours"],
            format!("{hours}.0000")
        );
        // Byte for byte what the engine alone says.
        assert_eq!(stored, report(empty.path(), to, extra), "{to} {extra:?}");
    }
    // A cost center that holds no GH200 has no such warning, stored or not.
    let other = ["--group-by", "cost_center", "--cost-center", "cc-100"];
    for to in ["2026-11-03", "2026-11-03T12:00:00Z"] {
        let stored = report(dir.path(), to, &other);
        assert_eq!(stored["warnings"], serde_json::json!([]), "{to}");
        assert_eq!(stored, report(empty.path(), to, &other), "{to}");
    }
}

#[test]
fn a_report_over_stored_days_prints_what_the_engine_alone_prints() {
    // The demo fleet's 2026-11-15 and 16 stored, a window from the morning before to the
    // evening after: stored figures (sums of rows exact to 18 places) and the engine's (exact
    // to 28) are rounded alike, line for line, though many lines' exact remainders are equal
    // (hours to the second, halves of a unit) and the stored ones differ in their last digits.
    let dir = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    // What a command printed: a JSON report, its warnings among its fields.
    let demo = |store: &std::path::Path, args: &[&str]| {
        stdout_of(
            tollgate_command()
                .args(args)
                .args(["--demo", "--as-of", "2026-11-30T00:00:00Z"])
                .env("TOLLGATE__STORE__DIR", store),
        )
    };
    let backfill = [
        "store",
        "backfill",
        "--from",
        "2026-11-15",
        "--to",
        "2026-11-17",
    ];
    demo(dir.path(), &backfill);
    for (group_by, step) in [
        ("cost_center", "hour"),
        ("cost_center_source,gpu_model", "hour"),
        ("namespace,node", "hour"),
        ("pod", "day"),
        ("cost_center,namespace", "window"),
    ] {
        let report = [
            "report",
            "--from",
            "2026-11-14T05:00:00Z",
            "--to",
            "2026-11-17T19:00:00Z",
            "--group-by",
            group_by,
            "--step",
            step,
            "--format",
            "json",
        ];
        let stored = demo(dir.path(), &report);
        let alone = demo(empty.path(), &report);
        assert!(
            stored == alone,
            "{group_by} by {step}: {:?}",
            std::iter::zip(stored.lines(), alone.lines())
                .filter(|(a, b)| a != b)
                .take(4)
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn only_days_closed_as_of_the_source_s_now_are_rolled_up_or_exported() {
    let dir = tempfile::tempdir().unwrap();
    // As of 2026-11-03T00:00:00Z (the helper's --as-of) the fixture's closed days are the 1st
    // and the 2nd: a --to past it ends there, as a --to past today ends today.
    let output = tollgate(
        dir.path(),
        &[
            "store",
            "backfill",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-05",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "2 days rolled up, 0 past retention removed\n",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let days: Vec<String> = std::fs::read_dir(dir.path().join("rollups/daily"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(days.len(), 2, "{days:?}");
    assert!(days[0].starts_with("2026-11-01") && days[1].starts_with("2026-11-02"));
    // No closed day named: an error saying so, not "0 days" done.
    let export = dir.path().join("export");
    let export = export.to_str().unwrap();
    for args in [
        &[
            "store",
            "backfill",
            "--from",
            "2026-11-03",
            "--to",
            "2026-11-05",
        ][..],
        &[
            "export",
            "--dest",
            export,
            "--from",
            "2026-11-02",
            "--to",
            "2026-11-02",
        ][..],
    ] {
        let output = tollgate(dir.path(), args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(
            said.starts_with("error: --from: no closed day from "),
            "{said}"
        );
    }
    assert!(!std::path::Path::new(export).exists());
}
