//! Two replicas of the real `tollgate serve` on one data directory, electing a writer through a
//! Lease on the fake API server: only the leader ever has the ledger open for writing, the
//! follower serves the same chargeback and quota checks from what the leader wrote; when the
//! leader stalls past its Lease the other takes the Lease but leaves the ledger to it until it
//! wakes and lets go; when the leader is killed the follower takes over the Lease and the
//! ledger. With history in Prometheus, only the leader rolls it up into the store.

use crate::support;

use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::prometheus_history::{ClusterWithHistory, served_day};
use support::apiserver::FakeApiServer;
use support::{ServeProcess, fixture_report, http_get, http_post};

/// The Lease's duration: a leader writes for two thirds of it after each renewal (every
/// second), so that a renewal slow on a loaded machine does not take the lead away.
const LEASE_SECONDS: u64 = 6;

const FIXTURE_WINDOW: &str = "/api/v1/chargeback?from=2026-11-01&to=2026-11-02";

/// [`FIXTURE_WINDOW`] as JSON, with its warnings.
const FIXTURE_DAY_JSON: &str = "/api/v1/chargeback?from=2026-11-01&to=2026-11-02&format=json";

/// A replica and its name in the Lease.
struct Replica {
    name: &'static str,
    process: ServeProcess,
}

impl std::ops::Deref for Replica {
    type Target = ServeProcess;

    fn deref(&self) -> &ServeProcess {
        &self.process
    }
}

async fn replica(dir: &Path, kubeconfig: &Path, name: &'static str) -> Replica {
    replica_with(dir, kubeconfig, name, &[], &[]).await
}

/// [`replica`], also given `args` and environment `env`.
async fn replica_with(
    dir: &Path,
    kubeconfig: &Path,
    name: &'static str,
    args: &[&str],
    env: &[(&str, &OsStr)],
) -> Replica {
    let data = dir.join("data");
    let lease_seconds = LEASE_SECONDS.to_string();
    let mut environment = vec![
        ("KUBECONFIG", kubeconfig.as_os_str()),
        ("TOLLGATE__STORE__DIR", data.as_os_str()),
        ("TOLLGATE__SOURCES__RECONCILE_SECONDS", OsStr::new("1")),
        ("TOLLGATE__LEADER__ENABLED", OsStr::new("true")),
        (
            "TOLLGATE__LEADER__LEASE_SECONDS",
            OsStr::new(&lease_seconds),
        ),
        ("TOLLGATE__LEADER__RETRY_SECONDS", OsStr::new("1")),
        ("TOLLGATE__LEADER__FOLLOW_SECONDS", OsStr::new("1")),
        ("POD_NAMESPACE", OsStr::new("tollgate")),
        ("POD_NAME", OsStr::new(name)),
    ];
    environment.extend_from_slice(env);
    let mut arguments = vec!["--pricing", "tests/fixtures/rates.toml"];
    arguments.extend_from_slice(args);
    let process =
        ServeProcess::start(&arguments, &environment, &dir.join(format!("{name}.log"))).await;
    Replica { name, process }
}

/// Stops (`SIGSTOP`) or wakes (`SIGCONT`) a replica's process.
fn signal(replica: &Replica, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(replica.child.id() as i32).unwrap();
    rustix::process::kill_process(pid, signal).unwrap();
}

/// Whether `process` has a ledger log open for writing, even one another process has deleted
/// since. (A follower opens the leader's to read it, every `follow_seconds`: its access mode,
/// in `/proc/PID/fdinfo`, is read-only.)
fn writes_ledger(process: &ServeProcess) -> bool {
    let pid = process.child.id();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    let writable = |fd: &std::ffi::OsStr| {
        let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", fd.display()));
        let flags = info.ok().and_then(|info| {
            let flags = info.lines().find_map(|l| l.strip_prefix("flags:"))?;
            u32::from_str_radix(flags.trim(), 8).ok()
        });
        // O_WRONLY or O_RDWR: the access mode is the flags' two lowest bits.
        flags.is_some_and(|flags| flags & 0o3 != 0)
    };
    fds.filter_map(Result::ok).any(|fd| {
        let Ok(target) = std::fs::read_link(fd.path()) else {
            return false;
        };
        let name = target.file_name().unwrap_or_default().to_string_lossy();
        let name = name.trim_end_matches(" (deleted)");
        name.starts_with("ledger-") && name.ends_with(".log") && writable(&fd.file_name())
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
    let (leader, follower) = if holder(&api).unwrap() == "replica-a" {
        (a, b)
    } else {
        (b, a)
    };
    wait_for(20, &[&leader, &follower], || writes_ledger(&leader)).await;
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

    // Both answer the same chargeback, and the follower answers quota checks. (Should they
    // not, both logs and the data directory say what each did.)
    let said = |leader: &Replica, follower: &Replica| {
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
    quota_check(&follower).await;

    // The leader stalls (stopped, as a starved or frozen process is) past its Lease: the
    // follower takes the Lease, but not the ledger while the stalled one still has it open;
    // woken, the old leader sees its lead ran out, lets go, and the new one writes.
    let stopped_for = Instant::now();
    signal(&leader, rustix::process::Signal::STOP);
    wait_for(20, &[&leader, &follower], || {
        holder(&api).as_deref() == Some(follower.name)
    })
    .await;
    // Stopped a while longer than the Lease, whatever the machine's load: all along, the new
    // holder leaves the ledger to the process that has it open.
    let woken = stopped_for + Duration::from_secs(LEASE_SECONDS + 2);
    wait_for(20, &[&leader, &follower], || {
        assert!(!writes_ledger(&follower), "{}", follower.log());
        Instant::now() > woken
    })
    .await;
    signal(&leader, rustix::process::Signal::CONT);
    wait_for(60, &[&leader, &follower], || {
        writes_ledger(&follower) && !writes_ledger(&leader)
    })
    .await;
    let (leader, follower) = (follower, leader);
    for replica in [&leader, &follower] {
        assert_eq!(
            replica.get(FIXTURE_WINDOW).await,
            truth,
            "{}",
            said(&leader, &follower)
        );
    }

    // The leader dies without a word: after the Lease runs out the follower takes over.
    take_over_from(leader, &follower, &api, 20).await;
    assert!(
        follower
            .log()
            .contains("leading: this replica writes the ledger"),
        "{}",
        follower.log()
    );
    assert_eq!(follower.get(FIXTURE_WINDOW).await, truth, "nothing lost");
    let lease = api.lease("tollgate", "tollgate").unwrap();
    assert_eq!(lease["spec"]["leaseTransitions"], 2, "{lease}");
}

/// Kills `leader` without a word, and waits up to `seconds` for `follower` to hold the Lease
/// and write the ledger.
async fn take_over_from(
    mut leader: Replica,
    follower: &Replica,
    api: &FakeApiServer,
    seconds: u64,
) {
    leader.process.child.kill().unwrap();
    leader.process.child.wait().unwrap();
    wait_for(seconds, &[follower], || {
        holder(api).as_deref() == Some(follower.name) && writes_ledger(follower)
    })
    .await;
}

/// `replica`'s answer to a quota check of one GPU for team-a (which must be a 200).
pub(crate) async fn quota_check(replica: &ServeProcess) -> serde_json::Value {
    let (status, body) = http_post(
        &replica.address,
        "/api/v1/quota/check",
        r#"{"namespace": "team-a", "gpus": 1}"#,
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Whether `replica` says it is ready: synced, and not backfilling history.
async fn ready(replica: &ServeProcess) -> bool {
    matches!(http_get(&replica.address, "/readyz").await, Some((200, _)))
}

/// Two replicas of a watched cluster whose pods ran before Tollgate was installed, with
/// kube-state-metrics and DCGM history in a real Prometheus: the leader alone backfills the
/// past into the store (the follower waits for the lead), and both replicas — and the follower
/// once it has taken over from a killed leader, with its own backfill finding every day stored
/// — charge 2026-11-01 once, exactly as `report --history` does. A day stored twice, or
/// counted from the store and again from the ledger, would charge more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_with_prometheus_history_charge_the_past_once() {
    let cluster = ClusterWithHistory::start().await;
    let (api, dir, kubeconfig) = (&cluster.api, &cluster.dir, &cluster.kubeconfig);
    let (args, env, reported) = (cluster.args(), cluster.env(), &cluster.reported);
    // Started together: each would backfill the same days at once, were it not for the Lease.
    let (a, b) = tokio::join!(
        replica_with(dir.path(), kubeconfig, "replica-a", &args, &env),
        replica_with(dir.path(), kubeconfig, "replica-b", &args, &env)
    );
    wait_for(20, &[&a, &b], || {
        holder(api).is_some() && (writes_ledger(&a) || writes_ledger(&b))
    })
    .await;
    let (leader, follower) = if holder(api).unwrap() == "replica-a" {
        (a, b)
    } else {
        (b, a)
    };
    let said = |leader: &Replica, follower: &Replica| {
        format!(
            "--- leader\n{}\n--- follower\n{}",
            leader.log(),
            follower.log()
        )
    };
    // The leader's backfill done, both charge the day as the history does. (Thirty-six days
    // of history take a debug build a few seconds alone, far longer beside the whole suite; a
    // replica may be ready for a moment on winning the Lease, before its backfill begins.)
    let deadline = Instant::now() + Duration::from_secs(180);
    while !(leader.log().contains("history backfill done") && ready(&leader).await) {
        assert!(Instant::now() < deadline, "{}", said(&leader, &follower));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        !follower.log().contains("history backfill"),
        "{}",
        said(&leader, &follower)
    );
    for replica in [&leader, &follower] {
        assert_eq!(
            &served_day(replica).await,
            reported,
            "{}",
            said(&leader, &follower)
        );
    }

    // The leader dies: the follower takes over, backfills nothing again, charges the same.
    take_over_from(leader, &follower, api, 60).await;
    let deadline = Instant::now() + Duration::from_secs(180);
    while !ready(&follower).await {
        assert!(Instant::now() < deadline, "{}", follower.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(&served_day(&follower).await, reported, "{}", follower.log());
    assert!(
        !follower.log().contains("rolling up history"),
        "{}",
        follower.log()
    );
}

/// A replica following a leader that has not rolled up the history before the cut-over (here
/// one that never does: another holds the Lease and never renews it) answers those days with a
/// warning naming them — not with nothing said; once the Lease is released it leads, rolls the
/// history up and charges the day as `report --history` does, with nothing said missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_names_the_history_days_the_leader_has_not_rolled_up() {
    let cluster = ClusterWithHistory::start().await;
    let (api, dir, kubeconfig) = (&cluster.api, &cluster.dir, &cluster.kubeconfig);
    let (args, env, reported) = (cluster.args(), cluster.env(), &cluster.reported);
    api.set_lease("tollgate", "tollgate", Some("replica-gone"), 3600);
    let follower = replica_with(dir.path(), kubeconfig, "replica-a", &args, &env).await;
    let missing = "the day 2026-11-01 of history before the ledger began is not in the rollup \
        store yet";
    let answer = |body: String| -> serde_json::Value { serde_json::from_str(&body).unwrap() };
    let said = answer(follower.get(FIXTURE_DAY_JSON).await);
    assert_eq!(said["lines"], serde_json::json!([]), "{said}");
    let warned = |said: &serde_json::Value| {
        said["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().starts_with(missing))
    };
    assert!(warned(&said), "{said}\n{}", follower.log());
    // Nor does it judge pods on this month's spend as if the days of it before today were
    // counted (unless today is the 1st): the failure mode decides, and the answer says why.
    let today = jiff::Timestamp::now().as_second().div_euclid(86_400) * 86_400;
    let month_start = tollgate::budget::month_of(today).start;
    let incomplete = format!(
        "Tollgate's month-to-date spend is incomplete: {} of history before the ledger began",
        if today - month_start == 86_400 {
            format!(
                "the day {}",
                &tollgate::time::format_time(month_start)[..10]
            )
        } else {
            format!("{} days", (today - month_start) / 86_400)
        }
    );
    let check = || quota_check(&follower);
    let judged = check().await;
    let unsure = |judged: &serde_json::Value| {
        judged["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().starts_with(&incomplete))
    };
    assert_eq!(judged["stale"], today > month_start, "{judged}");
    assert_eq!(unsure(&judged), today > month_start, "{judged}");
    // The console says so beside its budgets.
    let page = follower.get("/").await;
    assert_eq!(
        page.contains("Budgets see an incomplete month: "),
        today > month_start
    );
    // And `/metrics`, beside a spend that reads low.
    let complete = |metrics: String| {
        let line = metrics
            .lines()
            .find(|l| l.starts_with("tollgate_spend_complete{"));
        line.unwrap_or_else(|| panic!("{metrics}"))
            .ends_with(" 1.0")
    };
    assert_eq!(
        complete(follower.get("/metrics").await),
        today == month_start
    );

    api.set_lease("tollgate", "tollgate", None, 3600);
    wait_for(30, &[&follower], || writes_ledger(&follower)).await;
    // Leading, it backfills (the warning stands until the day is stored), then is ready.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let said = answer(follower.get(FIXTURE_DAY_JSON).await);
        if !warned(&said) && ready(&follower).await {
            break;
        }
        assert!(Instant::now() < deadline, "{said}\n{}", follower.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(&served_day(&follower).await, reported, "{}", follower.log());
    // The month's history stored and counted, checks are sure again.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let judged = check().await;
        if judged["stale"] == false {
            assert!(!unsure(&judged), "{judged}");
            break;
        }
        assert!(Instant::now() < deadline, "{judged}\n{}", follower.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(complete(follower.get("/metrics").await));
}
