//! The real `tollgate serve` binary against the fake API server (through KUBECONFIG), with its
//! ledger in a data directory: killed with SIGKILL, changed while down, restarted, stopped with
//! SIGTERM, restarted again. GPU-seconds already recorded never change; what vanished while it
//! was down is closed at the last heartbeat, and the log says so.

use crate::support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use support::apiserver::FakeApiServer;
use support::{ServeProcess, fixture_report};

async fn start(dir: &Path, kubeconfig: &Path, run: usize) -> ServeProcess {
    let data = dir.join("data");
    ServeProcess::start(
        &[
            "--pricing",
            "tests/fixtures/rates.toml",
            "--log-format",
            "json",
        ],
        &[
            ("KUBECONFIG", kubeconfig.as_os_str()),
            ("TOLLGATE__STORE__DIR", data.as_os_str()),
            ("TOLLGATE__SOURCES__RECONCILE_SECONDS", "1".as_ref()),
        ],
        &dir.join(format!("serve-{run}.log")),
    )
    .await
}

const FIXTURE_WINDOW: &str = "/api/v1/chargeback?from=2026-11-01&to=2026-11-02";

fn pod_hours(json: &str, pod: &str) -> f64 {
    let json: serde_json::Value = serde_json::from_str(json).unwrap();
    json["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["pod"] == pod)
        .map(|l| l["gpu_hours"].as_str().unwrap().parse().unwrap())
        .unwrap_or(0.0)
}

/// Whether a JSON log says every closed day was rolled up (`rollup backfill` with `done` =
/// `total`).
fn rolled_up(log: &str) -> bool {
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .any(|entry| {
            let fields = &entry["fields"];
            fields["message"] == "rollup backfill" && fields["done"] == fields["total"]
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_restarts_neither_lose_nor_double_a_gpu_second() {
    let api = FakeApiServer::start().await;
    api.load_snapshot(Path::new("tests/fixtures/snapshot"));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path());
    let truth = fixture_report(&[]);

    let mut first = start(dir.path(), &kubeconfig, 1).await;
    assert_eq!(
        first.get(FIXTURE_WINDOW).await,
        truth,
        "the live path prices like a snapshot"
    );
    // Once its closed days are rolled up (the ledger records that on its next reconcile), let a
    // few heartbeats land, then kill without warning.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !rolled_up(&first.log()) {
        assert!(std::time::Instant::now() < deadline, "{}", first.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let killed_at = jiff::Timestamp::now().as_second();
    first.child.kill().unwrap();
    first.child.wait().unwrap();

    // While down: chat-0 is deleted (unseen), ts-0 finishes at a known time (still visible).
    api.delete("pods", "team-a", "chat-0");
    let mut ts = api.get("pods", "team-d", "ts-0");
    ts["status"]["phase"] = json!("Succeeded");
    ts["status"]["containerStatuses"][0]["state"] = json!({"terminated": {"exitCode": 0, "finishedAt": "2026-11-20T00:00:00Z", "startedAt": "2026-11-01T00:00:00Z"}});
    api.apply("pods", ts);

    let second = start(dir.path(), &kubeconfig, 2).await;
    assert_eq!(
        second.get(FIXTURE_WINDOW).await,
        truth,
        "nothing lost or doubled by kill -9"
    );
    let to = "2026-11-27T00:00:00Z";
    let by_pod = second
        .get(&format!(
            "/api/v1/chargeback?from=2026-11-01&to={to}&group_by=pod&format=json"
        ))
        .await;
    // ts-0 (¼ GPU) ended exactly at its finishedAt: 19 days × 24 h × ¼.
    assert_eq!(pod_hours(&by_pod, "ts-0"), 114.0);
    // chat-0 (2 GPUs) was closed at the last heartbeat before the kill.
    let everything = second
        .get("/api/v1/chargeback?from=2026-11-01&group_by=pod&format=json")
        .await;
    let chat = pod_hours(&everything, "chat-0");
    let start_of_window = tollgate::time::parse_time("2026-11-01").unwrap();
    let ended = start_of_window as f64 + chat / 2.0 * 3600.0;
    assert!(
        (killed_at as f64 - 3.0..=killed_at as f64 + 0.5).contains(&ended),
        "chat-0 ended at {ended}, killed at {killed_at}"
    );
    assert!(
        second
            .log()
            .contains("vanished without a deletion being seen; closed at the last heartbeat"),
        "{}",
        second.log()
    );

    // SIGTERM: a graceful stop, then the same figures again.
    let status = Command::new("kill")
        .args(["-TERM", &second.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut second = second;
    let exit = second.child.wait().unwrap();
    assert!(exit.success(), "{exit:?}: {}", second.log());
    assert!(second.log().contains("\"stopped\""), "{}", second.log());
    let mut third = start(dir.path(), &kubeconfig, 3).await;
    assert_eq!(third.get(FIXTURE_WINDOW).await, truth);
    assert_eq!(
        third
            .get(&format!(
                "/api/v1/chargeback?from=2026-11-01&to={to}&group_by=pod&format=json"
            ))
            .await,
        by_pod
    );
    third.child.kill().unwrap();
    third.child.wait().unwrap();
}
