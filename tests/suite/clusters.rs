//! Many clusters, one ledger (issue 15): the `cluster` key, `tollgate export` to a directory and
//! to an S3-compatible bucket (moto's server on loopback) read back by DuckDB across clusters,
//! and a global budget that only the sum of two clusters' spend exceeds, read from a real
//! Prometheus scraping both services; a cluster fallen silent counts with its last figures and
//! makes them that old.

use crate::support;

use std::path::Path;
use std::process::{Command, Stdio};

use rust_decimal::Decimal;
use serde_json::Value;
use support::prometheus::{OpenMetrics, TestPrometheus};
use support::tools::{Tool, require};
use support::{FIXTURE, ServeProcess, chargeback_total, free_port, tollgate_command};

/// The demo over 2026-11-01..04, as of the 4th: three closed days from a month's start.
const DEMO_DAYS: [&str; 7] = [
    "--demo",
    "--from",
    "2026-11-01",
    "--to",
    "2026-11-04",
    "--as-of",
    "2026-11-04",
];

/// `tollgate` with `args` as cluster `name`: its stdout; a failure shows its stderr.
fn run_as(name: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    support::stdout_of(
        tollgate_command()
            .args(args)
            .env("TOLLGATE__CLUSTER__NAME", name)
            .envs(env.iter().copied()),
    )
}

/// DuckDB's `SUM(BilledCost)` of the FOCUS files and `SUM(cost)` of the chargeback files under
/// `dest`, per Hive partition `cluster`, as decimal text; and the FOCUS `x_ClusterName`s.
fn totals_by_cluster(dest: &Path) -> Value {
    let script = r#"
import duckdb, json, sys
d = sys.argv[1]
con = duckdb.connect()
def sums(kind, column):
    rows = con.execute(
        f"SELECT cluster, CAST(SUM({column}) AS VARCHAR) FROM read_parquet('{d}/{kind}/**/*.parquet', hive_partitioning = true) GROUP BY cluster ORDER BY cluster"
    ).fetchall()
    return {c: s for (c, s) in rows}
names = con.execute(
    f"SELECT DISTINCT cluster, x_ClusterName FROM read_parquet('{d}/focus/**/*.parquet', hive_partitioning = true) ORDER BY 1"
).fetchall()
print(json.dumps({"focus": sums("focus", "BilledCost"), "chargeback": sums("chargeback", "cost"),
                  "names": {c: n for (c, n) in names}}))
"#;
    support::duckdb(script, dest)
}

/// DuckDB's `SUM(BilledCost)` of cluster `cluster`'s FOCUS files and `SUM(cost)` of its
/// chargeback files under `dest`, by cost center and namespace (`cc/ns`), as decimal text.
fn sums_by_group(dest: &Path, cluster: &str) -> Value {
    let script = format!(
        r#"
import duckdb, json, sys
d = sys.argv[1]
con = duckdb.connect()
def sums(kind, column, cost_center, namespace):
    rows = con.execute(
        f"SELECT {{cost_center}} || '/' || coalesce({{namespace}}, ''), CAST(SUM({{column}}) AS VARCHAR) "
        f"FROM read_parquet('{{d}}/{{kind}}/**/*.parquet', hive_partitioning = true) "
        f"WHERE cluster = '{cluster}' GROUP BY 1"
    ).fetchall()
    return {{g: s for (g, s) in rows}}
print(json.dumps({{"focus": sums("focus", "BilledCost", "x_CostCenter", "SubAccountId"),
                  "chargeback": sums("chargeback", "cost", "cost_center", "namespace")}}))
"#
    );
    support::duckdb(&script, dest)
}

/// The chargeback total of a report, as DuckDB prints a DECIMAL(38,2) sum.
fn total_text(csv: &str) -> String {
    chargeback_total(csv).round_dp(2).to_string()
}

#[test]
fn the_cluster_key_names_every_line_and_the_total_is_unchanged() {
    let plain = run_as("east", &[&["report"], &DEMO_DAYS[..]].concat(), &[]);
    let by_cluster = run_as(
        "east",
        &[
            &["report", "--group-by", "cluster,cost_center"],
            &DEMO_DAYS[..],
        ]
        .concat(),
        &[],
    );
    let mut reader = csv::Reader::from_reader(by_cluster.as_bytes());
    assert_eq!(&reader.headers().unwrap()[2], "cluster");
    let clusters: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[2].to_string())
        .collect();
    assert!(clusters.len() > 3, "{by_cluster}");
    assert!(clusters.iter().all(|c| c == "east"), "{by_cluster}");
    assert_eq!(chargeback_total(&plain), chargeback_total(&by_cluster));
    // Without cluster.name, the demo is "demo".
    let output = tollgate_command()
        .args([&["report", "--group-by", "cluster"], &DEMO_DAYS[..]].concat())
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.lines().nth(1).unwrap().contains(",demo,"), "{text}");
}

#[test]
fn two_clusters_exported_to_a_directory_add_up_per_cluster_in_duckdb() {
    let dest = tempfile::tempdir().unwrap();
    let to = dest.path().to_str().unwrap();
    let east = [&["export", "--dest", to], &DEMO_DAYS[..]].concat();
    let said = run_as("east", &east, &[]);
    assert!(
        said.starts_with("3 days exported") && said.contains("0 already there"),
        "{said}"
    );
    let west = [&["export", "--dest", to], &FIXTURE[..]].concat();
    run_as("west", &west, &[]);
    for file in [
        "focus/cluster=east/billing_month=2026-11/day=2026-11-01.parquet",
        "focus/cluster=east/billing_month=2026-11/day=2026-11-03.parquet",
        "chargeback/cluster=east/billing_month=2026-11/day=2026-11-02.parquet",
        "focus/cluster=west/billing_month=2026-11/day=2026-11-01.parquet",
        "chargeback/cluster=west/billing_month=2026-11/day=2026-11-01.parquet",
    ] {
        assert!(dest.path().join(file).is_file(), "{file}");
    }
    // Run again: every day is there, nothing is rewritten.
    let written = std::fs::metadata(
        dest.path()
            .join("focus/cluster=east/billing_month=2026-11/day=2026-11-02.parquet"),
    )
    .unwrap()
    .modified()
    .unwrap();
    let again = run_as("east", &east, &[]);
    assert!(
        again.starts_with("0 days exported") && again.contains("3 already there"),
        "{again}"
    );
    let unchanged = std::fs::metadata(
        dest.path()
            .join("focus/cluster=east/billing_month=2026-11/day=2026-11-02.parquet"),
    )
    .unwrap()
    .modified()
    .unwrap();
    assert_eq!(written, unchanged);

    let east_total = total_text(&run_as(
        "east",
        &[&["report"], &DEMO_DAYS[..]].concat(),
        &[],
    ));
    let west_total = total_text(&run_as("west", &[&["report"], &FIXTURE[..]].concat(), &[]));
    let found = totals_by_cluster(dest.path());
    assert_eq!(found["focus"]["east"], east_total.as_str(), "{found}");
    assert_eq!(found["chargeback"]["east"], east_total.as_str(), "{found}");
    assert_eq!(found["focus"]["west"], west_total.as_str(), "{found}");
    assert_eq!(found["chargeback"]["west"], west_total.as_str(), "{found}");
    assert_eq!(found["names"]["east"], "east");
    assert_eq!(found["names"]["west"], "west");
    // Each day written as the last of its span, carrying on by cost center and namespace: a
    // team's rows over the days add up to its line of the days' chargeback.
    let report = run_as("east", &[&["report"], &DEMO_DAYS[..]].concat(), &[]);
    let mut lines = csv::Reader::from_reader(report.as_bytes());
    let by_group = sums_by_group(dest.path(), "east");
    let mut teams = 0;
    for line in lines.records() {
        let line = line.unwrap();
        let group = format!("{}/{}", &line[2], &line[3]);
        for kind in ["focus", "chargeback"] {
            assert_eq!(
                by_group[kind][&group], &line[6],
                "{kind} {group}: {by_group}"
            );
        }
        teams += 1;
    }
    assert!(teams > 5, "{report}");
}

/// moto's S3 server on a free loopback port, killed when dropped.
struct S3Server {
    child: std::process::Child,
    endpoint: String,
}

impl S3Server {
    fn start() -> Self {
        require(&[Tool::Moto]);
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "moto did not start");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        server
    }

    /// Runs `action` (`create BUCKET` or `download BUCKET DIR`) with boto3.
    fn boto(&self, action: &[&str]) -> String {
        let script = r#"
import boto3, os, sys
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
if sys.argv[2] == "create":
    s3.create_bucket(Bucket=sys.argv[3])
else:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=sys.argv[3]).get("Contents", [])]
    for key in keys:
        path = os.path.join(sys.argv[4], key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        s3.download_file(sys.argv[3], key, path)
    print("\n".join(sorted(keys)))
"#;
        let output = Command::new("python3")
            .args(["-c", script, &self.endpoint])
            .args(action)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_export_to_an_s3_bucket_reads_back_to_the_cent() {
    let s3 = S3Server::start();
    s3.boto(&["create", "finance"]);
    let env = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", s3.endpoint.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
    ];
    let args = [&["export", "--dest", "s3://finance/gpu"], &FIXTURE[..]].concat();
    let said = run_as("west", &args, &env);
    assert!(said.starts_with("1 days exported"), "{said}");
    let again = run_as("west", &args, &env);
    assert!(again.contains("1 already there"), "{again}");
    let local = tempfile::tempdir().unwrap();
    let keys = s3.boto(&["download", "finance", local.path().to_str().unwrap()]);
    assert_eq!(
        keys.lines().collect::<Vec<_>>(),
        [
            "gpu/chargeback/cluster=west/billing_month=2026-11/day=2026-11-01.parquet",
            "gpu/focus/cluster=west/billing_month=2026-11/day=2026-11-01.parquet",
        ]
    );
    let west_total = total_text(&run_as("west", &[&["report"], &FIXTURE[..]].concat(), &[]));
    let found = totals_by_cluster(&local.path().join("gpu"));
    assert_eq!(found["focus"]["west"], west_total.as_str(), "{found}");
    assert_eq!(found["chargeback"]["west"], west_total.as_str(), "{found}");
}

/// A dry-run check of one more H100 for team-a (cost center cc-100) at `address`.
async fn check(address: &str) -> Value {
    let body = r#"{"namespace": "team-a", "gpus": 1, "gpuModel": "H100-80GB", "dryRun": true}"#;
    let (status, text) = support::http_post(
        address,
        "/api/v1/quota/check",
        body,
        Some("application/json"),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

fn money(decision: &Value, field: &str) -> Decimal {
    decision[field].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_global_budget_only_the_sum_of_two_clusters_exceeds_denies_in_both() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = [
        "--snapshot",
        "tests/fixtures/snapshot",
        "--pricing",
        "tests/fixtures/rates.toml",
    ];
    // One cluster's projection for cc-100 with the pod, under a budget it cannot reach.
    let alone = dir.path().join("alone.toml");
    std::fs::write(
        &alone,
        "[[budget]]\ncost_center = \"cc-100\"\nmonthly = \"100000000\"\n",
    )
    .unwrap();
    let quota = [
        &[
            "quota",
            "--namespace",
            "team-a",
            "--gpus",
            "1",
            "--gpu-model",
            "H100-80GB",
        ][..],
        &snapshot[..],
        &["--config", alone.to_str().unwrap()][..],
    ]
    .concat();
    let one: Value = serde_json::from_str(&run_as("east", &quota, &[])).unwrap();
    let one_projected = money(&one, "projected");
    // Between one cluster's projection and two clusters' (the other adds its spend and burn).
    let monthly = (one_projected * Decimal::new(15, 1)).round_dp(2);

    let (east_at, west_at) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let prometheus = TestPrometheus::scraping(&[&east_at, &west_at]);
    let config = dir.path().join("global.toml");
    std::fs::write(
        &config,
        format!(
            "[quota]\nglobal_prometheus = \"{}\"\nglobal_refresh_seconds = 1\n\n[[budget]]\ncost_center = \"cc-100\"\nmonthly = \"{monthly}\"\nscope = \"global\"\n",
            prometheus.url
        ),
    )
    .unwrap();
    let mut services = Vec::new();
    for (name, address) in [("east", &east_at), ("west", &west_at)] {
        let mut command = tollgate_command();
        command
            .args(["serve", "--listen", address])
            .args(snapshot)
            .args(["--config", config.to_str().unwrap()])
            .env("TOLLGATE__CLUSTER__NAME", name);
        let log = dir.path().join(format!("{name}.log"));
        services.push(ServeProcess::run(command, address.clone(), &log).await);
    }
    let metrics = services[0].get("/metrics").await;
    assert!(
        metrics.contains("tollgate_cost_center_spend{cluster=\"east\",cost_center=\"cc-100\""),
        "{metrics}"
    );
    for service in &services {
        // Until Prometheus has both clusters' figures, they are missing: stale, not zero.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let decision = loop {
            let decision = check(&service.address).await;
            if decision["otherClustersAsOf"].is_string() && decision["stale"] == false {
                break decision;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the other cluster's figures never arrived: {decision} {}",
                service.log()
            );
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        };
        assert_eq!(decision["allowed"], false, "{decision}");
        assert!(
            decision["message"]
                .as_str()
                .unwrap()
                .starts_with("cost center cc-100 would reach"),
            "{decision}"
        );
        // Both clusters run the same pods: twice one cluster's spend and burn, give or take the
        // spend of the seconds between reads.
        let (spent, burn) = (money(&decision, "spent"), money(&decision, "burnPerHour"));
        assert_eq!(
            burn,
            money(&one, "burnPerHour") * Decimal::TWO,
            "{decision}"
        );
        let cent = Decimal::new(1, 2);
        assert!(
            spent >= money(&one, "spent") * Decimal::TWO - cent,
            "{decision} {one}"
        );
        assert!(money(&decision, "projected") > monthly, "{decision}");
        assert!(one_projected <= monthly);
    }
    drop(prometheus);
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_exports_each_closed_day_it_rolls_up() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("exports");
    let config = dir.path().join("export.toml");
    std::fs::write(
        &config,
        format!("[export]\ndest = \"{}\"\n", dest.display()),
    )
    .unwrap();
    let service = ServeProcess::start(
        &["--demo", "--config", config.to_str().unwrap()],
        &[],
        &dir.path().join("serve.log"),
    )
    .await;
    // The first day of yesterday's month: closed, rolled up, and first in its billing month
    // (its file carries nothing over from earlier days).
    let now = jiff::Timestamp::now().as_second();
    let yesterday = jiff::Timestamp::from_second(now - 86_400).unwrap();
    let day = yesterday.strftime("%Y-%m-01").to_string();
    let month = &day[..7];
    let file = dest.join(format!(
        "focus/cluster=demo/billing_month={month}/day={day}.parquet"
    ));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    while !file.is_file() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} was never exported: {}",
            file.display(),
            service.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let next = jiff::civil::Date::strptime("%Y-%m-%d", &day)
        .unwrap()
        .tomorrow()
        .unwrap();
    let csv = service
        .get(&format!(
            "/api/v1/chargeback?format=csv&from={day}&to={next}"
        ))
        .await;
    let found = totals_by_cluster(&dest);
    let exported = support::duckdb(
        "import duckdb, json, sys; print(json.dumps(duckdb.connect().execute(f\"SELECT CAST(SUM(BilledCost) AS VARCHAR) FROM read_parquet('{sys.argv[1]}')\").fetchone()[0]))",
        &file,
    );
    assert_eq!(exported, total_text(&csv).as_str(), "{found}");
    assert!(found["chargeback"]["demo"].is_string(), "{found}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_cluster_counts_with_what_it_last_said_and_makes_the_figures_that_old() {
    // Every 30 s over the last hour: north reports until now, west fell silent 20 minutes ago,
    // south two hours ago; east is the reading cluster itself.
    let now = jiff::Timestamp::now().as_second() / 30 * 30;
    let mut metrics = OpenMetrics::default();
    let mut report = |cluster: &str, until: i64, spent: f64, pods: &[(&str, f64, f64)]| {
        let samples = |value: f64| (until - 7200..=until).step_by(30).map(move |t| (t, value));
        metrics.series(
            "tollgate_cost_center_spend",
            &[
                ("cluster", cluster),
                ("cost_center", "cc-100"),
                ("period", "month"),
            ],
            samples(spent),
        );
        for (pod, burn, units) in pods {
            let labels = [
                ("cluster", cluster),
                ("cost_center", "cc-100"),
                ("pod", pod),
            ];
            metrics.series("tollgate_gpu_cost_per_hour", &labels, samples(*burn));
            metrics.series("tollgate_gpu_allocated_units", &labels, samples(*units));
        }
    };
    report("east", now, 99_999.0, &[("e", 99.0, 9.0)]);
    report("north", now, 500.10, &[("n", 2.0, 1.0)]);
    report(
        "west",
        now - 1200,
        1000.25,
        &[("w-0", 4.25, 1.0), ("w-1", 6.25, 2.0)],
    );
    report("south", now - 7200, 7.0, &[("s", 1.0, 1.0)]);
    let prometheus = TestPrometheus::start(&metrics.text());
    let client =
        tollgate::prometheus::Prometheus::new(&prometheus.url, &Default::default()).unwrap();
    let others = client.other_clusters("east").await.unwrap();
    assert_eq!(others.clusters, ["north", "west"]);
    let cc100 = others.cost_center("cc-100");
    assert_eq!(cc100.spent, Decimal::new(150_035, 2), "500.10 + 1000.25");
    assert_eq!(cc100.burn_per_hour, Decimal::new(125, 1), "2 + 4.25 + 6.25");
    assert_eq!(cc100.units, Decimal::from(4));
    assert_eq!(others.as_of, Some(now - 1200), "west's last word");
}
