//! Two replicas of the real `tollgate serve` on one data directory, electing a writer through a
//! Lease on the fake API server: only the leader ever has the ledger open for writing, the
//! follower serves the same chargeback and quota checks from what the leader wrote, and when
//! the leader is killed the follower takes over the Lease and the ledger.

use crate::support;

use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

use support::apiserver::FakeApiServer;
use support::{ServeProcess, fixture_report, http_post};

const FIXTURE_WINDOW: &str = "/api/v1/chargeback?from=2026-11-01&to=2026-11-02";

async fn replica(dir: &Path, kubeconfig: &Path, name: &str) -> ServeProcess {
    let data = dir.join("data");
    ServeProcess::start(
        &["--pricing", "tests/fixtures/rates.toml"],
        &[
            ("KUBECONFIG", kubeconfig.as_os_str()),
            ("TOLLGATE__STORE__DIR", data.as_os_str()),
            ("TOLLGATE__SOURCES__RECONCILE_SECONDS", OsStr::new("1")),
            ("TOLLGATE__LEADER__ENABLED", OsStr::new("true")),
            ("TOLLGATE__LEADER__LEASE_SECONDS", OsStr::new("3")),
            ("TOLLGATE__LEADER__RETRY_SECONDS", OsStr::new("1")),
            ("TOLLGATE__LEADER__FOLLOW_SECONDS", OsStr::new("1")),
            ("POD_NAMESPACE", OsStr::new("tollgate")),
            ("POD_NAME", OsStr::new(name)),
        ],
        &dir.join(format!("{name}.log")),
    )
    .await
}

/// Whether `process` has a ledger log of `dir` open (only a writer opens one).
fn writes_ledger(process: &ServeProcess) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{}/fd", process.child.id())) else {
        return false;
    };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .any(|target| {
            let name = target.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with("ledger-") && name.ends_with(".log")
        })
}

/// Every file under `dir`, with its size, in name order.
fn files_in(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_in(&path));
        } else {
            let size = entry.metadata().map_or(0, |m| m.len());
            files.push(format!("{} {size}", path.display()));
        }
    }
    files.sort();
    files
}

fn holder(api: &FakeApiServer) -> Option<String> {
    api.lease("tollgate", "tollgate")?["spec"]["holderIdentity"]
        .as_str()
        .map(String::from)
}

/// Waits up to `seconds` for `done`, checking that never both replicas write meanwhile.
async fn wait_for(seconds: u64, replicas: &[&ServeProcess], mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let writers = replicas.iter().filter(|r| writes_ledger(r)).count();
        assert!(writers <= 1, "two replicas write the ledger");
        if done() {
            return;
        }
        assert!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_writes_the_other_serves_and_takes_over() {
    let api = FakeApiServer::start().await;
    api.load_snapshot(Path::new("tests/fixtures/snapshot"));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path());
    let truth = fixture_report(&[]);

    let a = replica(dir.path(), &kubeconfig, "replica-a").await;
    let b = replica(dir.path(), &kubeconfig, "replica-b").await;
    wait_for(20, &[&a, &b], || {
        holder(&api).is_some() && (writes_ledger(&a) || writes_ledger(&b))
    })
    .await;
    let leader_name = holder(&api).unwrap();
    let (leader, follower) = if leader_name == "replica-a" {
        (a, b)
    } else {
        (b, a)
    };
    assert!(writes_ledger(&leader), "the Lease holder writes");
    // A few reconciles and follower reads later, still only the leader writes.
    let settle = Instant::now() + Duration::from_secs(3);
    wait_for(10, &[&leader, &follower], || Instant::now() > settle).await;
    assert!(!writes_ledger(&follower), "{}", follower.log());
    assert!(
        follower
            .log()
            .contains("following: another replica writes the ledger")
    );
    assert!(
        leader
            .log()
            .contains("leading: this replica writes the ledger")
    );

    // Both answer the same chargeback, and the follower answers quota checks.
    // (Once, behind the whole suite on two cores, the leader answered every pod's line twice
    // over: should it again, its log, the follower's and the data directory say what each did.)
    let said = |leader: &ServeProcess, follower: &ServeProcess| {
        format!(
            "--- leader\n{}\n--- follower\n{}\n--- data\n{}",
            leader.log(),
            follower.log(),
            files_in(&dir.path().join("data")).join("\n")
        )
    };
    assert_eq!(
        leader.get(FIXTURE_WINDOW).await,
        truth,
        "{}",
        said(&leader, &follower)
    );
    assert_eq!(
        follower.get(FIXTURE_WINDOW).await,
        truth,
        "{}",
        said(&leader, &follower)
    );
    let (status, body) = http_post(
        &follower.address,
        "/api/v1/quota/check",
        r#"{"namespace": "team-a", "gpus": 1}"#,
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");

    // The leader dies without a word: after the Lease runs out the follower takes over.
    let mut leader = leader;
    leader.child.kill().unwrap();
    leader.child.wait().unwrap();
    let follower_name = if leader_name == "replica-a" {
        "replica-b"
    } else {
        "replica-a"
    };
    wait_for(20, &[&follower], || {
        holder(&api).as_deref() == Some(follower_name) && writes_ledger(&follower)
    })
    .await;
    assert!(
        follower
            .log()
            .contains("leading: this replica writes the ledger"),
        "{}",
        follower.log()
    );
    assert_eq!(follower.get(FIXTURE_WINDOW).await, truth, "nothing lost");
    let lease = api.lease("tollgate", "tollgate").unwrap();
    assert_eq!(lease["spec"]["leaseTransitions"], 1, "{lease}");
}
