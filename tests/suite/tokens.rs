//! Cost per million tokens from a real Prometheus backfilled with the serving engines' counters
//! for the fixture's pods on 2026-11-01, one sample a minute from each pod's start: vLLM serving
//! two models in one pod (one of them restarting at 12:30), SGLang, TGI's histogram sums (no
//! model label), NVIDIA NIM (restarting at 15:00), a vLLM that served nothing all day, and a
//! training pod with no counters. Every figure below is derived by hand from the fixture's
//! prices (tests/fixtures/rates.toml) and the token rates written here.

use crate::support;

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::Value;
use support::prometheus::{OpenMetrics, TestPrometheus};
use support::{FIXTURE, json_stdout, tollgate_command};
use tollgate::time::parse_time;

fn t(hour: i64, minute: i64) -> i64 {
    parse_time("2026-11-01T00:00:00Z").unwrap() + hour * 3600 + minute * 60
}

/// A counter scraped every minute from `from` (its value 0 then) to the end of the day, rising
/// `per_minute`; at `restart` (hour, minute), if any, the server restarts and the counter shows
/// only what it counted since (one minute's worth).
fn counter(from: i64, per_minute: f64, restart: Option<(i64, i64)>) -> Vec<(i64, f64)> {
    let restart = restart.map(|(h, m)| t(h, m));
    let mut value = 0.0;
    let mut samples = Vec::new();
    let mut at = t(from, 0);
    while at < t(24, 0) {
        samples.push((at, value));
        at += 60;
        value = if Some(at) == restart {
            per_minute
        } else {
            value + per_minute
        };
    }
    samples
}

/// The serving series: (metric, labels, samples).
fn serving() -> String {
    let mut metrics = OpenMetrics::default();
    // chat-0 (team-a): vLLM scraped without honorLabels, two models.
    let chat = |model| {
        vec![
            ("pod", "vllm-metrics-proxy"),
            ("namespace", "monitoring"),
            ("exported_pod", "chat-0"),
            ("exported_namespace", "team-a"),
            ("model_name", model),
        ]
    };
    metrics.series(
        "vllm:prompt_tokens_total",
        &chat("llama-8b"),
        counter(0, 300.0, Some((12, 30))),
    );
    metrics.series(
        "vllm:generation_tokens_total",
        &chat("llama-8b"),
        counter(0, 100.0, Some((12, 30))),
    );
    metrics.series(
        "vllm:prompt_tokens_total",
        &chat("support-lora"),
        counter(0, 200.0, None),
    );
    metrics.series(
        "vllm:generation_tokens_total",
        &chat("support-lora"),
        counter(0, 40.0, None),
    );
    // serve-0 (team-a, 18:00–24:00): SGLang.
    let serve = [
        ("pod", "serve-0"),
        ("namespace", "team-a"),
        ("model_name", "qwen-32b"),
    ];
    metrics.series(
        "sglang:prompt_tokens_total",
        &serve,
        counter(18, 1000.0, None),
    );
    metrics.series(
        "sglang:generation_tokens_total",
        &serve,
        counter(18, 500.0, None),
    );
    // batch-0 (team-b, 10:00–14:00): TGI, which labels no model.
    let batch = [("pod", "batch-0"), ("namespace", "team-b")];
    metrics.series(
        "tgi_request_input_length_sum",
        &batch,
        counter(10, 2000.0, None),
    );
    metrics.series(
        "tgi_request_generated_tokens_sum",
        &batch,
        counter(10, 800.0, None),
    );
    // l40s-0 (team-d, 06:00–24:00): NIM, restarting at 15:00.
    let nim = [
        ("pod", "l40s-0"),
        ("namespace", "team-d"),
        ("model_name", "meta/llama-3.1-8b-instruct"),
    ];
    metrics.series(
        "prompt_tokens_total",
        &nim,
        counter(6, 600.0, Some((15, 0))),
    );
    metrics.series(
        "generation_tokens_total",
        &nim,
        counter(6, 300.0, Some((15, 0))),
    );
    // ts-0 (team-d): a vLLM nobody called: its counters stay at 5,000 all day.
    let idle = [
        ("pod", "ts-0"),
        ("namespace", "team-d"),
        ("model_name", "tiny-idle"),
    ];
    let flat: Vec<(i64, f64)> = (0..1440).map(|m| (t(0, m), 5000.0)).collect();
    metrics.series("vllm:prompt_tokens_total", &idle, flat.clone());
    metrics.series("vllm:generation_tokens_total", &idle, flat);
    // chat-0's two GPUs are a quarter busy all day.
    for uuid in ["GPU-a0", "GPU-a1"] {
        metrics.series(
            "DCGM_FI_DEV_GPU_UTIL",
            &[("pod", "chat-0"), ("namespace", "team-a"), ("UUID", uuid)],
            (0..1440).map(|m| (t(0, m), 25.0)),
        );
    }
    metrics.text()
}

/// `tollgate report --tokens` on the fixture day with `extra` flags, read as JSON.
fn token_report(prometheus: &str, extra: &[&str]) -> Value {
    let output = tollgate_command()
        .args([
            "report",
            "--tokens",
            "--format",
            "json",
            "--prometheus",
            prometheus,
        ])
        .args(FIXTURE)
        .args(extra)
        .output()
        .unwrap();
    json_stdout(&output)
}

fn d(text: &str) -> Decimal {
    text.parse().unwrap()
}

/// The report's lines by (served_model, namespace, pod).
fn lines_by_pod(report: &Value) -> BTreeMap<(String, String, String), Value> {
    report["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| {
            let key = |k: &str| line[k].as_str().unwrap().to_string();
            (
                (key("served_model"), key("namespace"), key("pod")),
                line.clone(),
            )
        })
        .collect()
}

#[test]
fn each_served_model_costs_its_share_of_its_pods_gpu_hours_per_million_tokens() {
    let prometheus = TestPrometheus::start(&serving());
    let config = tempfile::NamedTempFile::with_suffix(".toml").unwrap();
    std::fs::write(config.path(), "[tokens]\ninput_weight = 0.25\n").unwrap();
    let report = token_report(
        &prometheus.url,
        &[
            "--group-by",
            "served_model,namespace,pod",
            "--config",
            config.path().to_str().unwrap(),
        ],
    );
    let lines = lines_by_pod(&report);
    let line = |model: &str, ns: &str, pod: &str| {
        lines
            .get(&(model.into(), ns.into(), pod.into()))
            .unwrap_or_else(|| panic!("no line for {model} {ns}/{pod}: {lines:#?}"))
    };
    let text = |v: &Value| v.as_str().map(str::to_string);

    // chat-0: 2 H100 all day at $4 before noon and $3 after = $168, 48 GPU-hours, 75 % idle.
    // A sample counts what its counter rose since the minute before, in the hour it was taken:
    // 59 samples count in hour 0 (the first is the baseline) and 60 in each later hour, 1,439
    // in all. Each hour llama-8b counts 400 tokens a minute and support-lora 240, so llama-8b
    // takes 400/640 of every hour; the restart at 12:30 shows one minute's tokens, which count.
    let llama = line("llama-8b", "team-a", "chat-0");
    assert_eq!(text(&llama["gpu_hours"]).unwrap(), "30.0000");
    assert_eq!(text(&llama["cost"]).unwrap(), "105.00");
    assert_eq!(text(&llama["idle_cost"]).unwrap(), "78.75");
    assert_eq!(llama["input_tokens"], 300 * 1439);
    assert_eq!(llama["output_tokens"], 100 * 1439);
    // $105 over 575,600 tokens; over 143,900 output tokens; weighted 0.25 × 431,700 + 143,900.
    assert_eq!(text(&llama["cost_per_1m_tokens"]).unwrap(), "182.4183");
    assert_eq!(
        text(&llama["cost_per_1m_output_tokens"]).unwrap(),
        "729.6734"
    );
    assert_eq!(text(&llama["cost_per_1m_output"]).unwrap(), "416.9562");
    assert_eq!(text(&llama["cost_per_1m_input"]).unwrap(), "104.2391");
    let lora = line("support-lora", "team-a", "chat-0");
    assert_eq!(text(&lora["gpu_hours"]).unwrap(), "18.0000");
    assert_eq!(text(&lora["cost"]).unwrap(), "63.00");
    assert_eq!(text(&lora["idle_cost"]).unwrap(), "47.25");
    assert_eq!(lora["input_tokens"], 200 * 1439);
    assert_eq!(lora["output_tokens"], 40 * 1439);
    assert_eq!(
        text(&lora["cost_per_1m_output_tokens"]).unwrap(),
        "1094.5101"
    );
    assert_eq!(text(&lora["cost_per_1m_output"]).unwrap(), "486.4489");

    // serve-0, SGLang: 2 H100 18:00–24:00 at $3 = $36; 359 counted samples.
    let qwen = line("qwen-32b", "team-a", "serve-0");
    assert_eq!(text(&qwen["cost"]).unwrap(), "36.00");
    assert_eq!(qwen["input_tokens"], 1000 * 359);
    assert_eq!(qwen["output_tokens"], 500 * 359);
    assert_eq!(text(&qwen["cost_per_1m_tokens"]).unwrap(), "66.8524");
    assert_eq!(
        text(&qwen["cost_per_1m_output_tokens"]).unwrap(),
        "200.5571"
    );

    // batch-0, TGI (no model label: the engine's name): 1 GPU 10:00–14:00 at $2 then $1.50.
    let tgi = line("tgi", "team-b", "batch-0");
    assert_eq!(text(&tgi["cost"]).unwrap(), "7.00");
    assert_eq!(tgi["input_tokens"], 2000 * 239);
    assert_eq!(tgi["output_tokens"], 800 * 239);
    assert_eq!(text(&tgi["cost_per_1m_tokens"]).unwrap(), "10.4603");

    // l40s-0, NIM, restarted at 15:00: 1 L40S 06:00–24:00 at $2 = $36; 1,079 samples.
    let nim = line("meta/llama-3.1-8b-instruct", "team-d", "l40s-0");
    assert_eq!(text(&nim["cost"]).unwrap(), "36.00");
    assert_eq!(nim["input_tokens"], 600 * 1079);
    assert_eq!(nim["output_tokens"], 300 * 1079);
    assert_eq!(text(&nim["cost_per_1m_tokens"]).unwrap(), "37.0714");
    assert_eq!(text(&nim["cost_per_1m_output_tokens"]).unwrap(), "111.2141");

    // ts-0 served nothing: its quarter of an L4 ($0.80/h × ¼ × 24 h) has no per-token cost,
    // empty rather than zero, and a warning names the model.
    let idle = line("tiny-idle", "team-d", "ts-0");
    assert_eq!(text(&idle["cost"]).unwrap(), "4.80");
    assert_eq!(idle["input_tokens"], 0);
    for column in [
        "cost_per_1m_tokens",
        "cost_per_1m_output_tokens",
        "cost_per_1m_input",
        "cost_per_1m_output",
    ] {
        assert_eq!(idle[column], Value::Null, "{column}");
    }
    let warnings = report["warnings"].to_string();
    assert!(warnings.contains("tiny-idle"), "{warnings}");

    // train-0 has no serving counters: its cost stays, under no model, with no tokens.
    let train = line("", "team-b", "train-0");
    assert_eq!(text(&train["cost"]).unwrap(), "64.00");
    assert_eq!(train["cost_per_1m_tokens"], Value::Null);

    // Nothing is lost: the lines add up to the day's chargeback.
    let chargeback = support::fixture_report(&["--prometheus", &prometheus.url]);
    assert_eq!(
        d(report["total"]["cost"].as_str().unwrap()),
        support::chargeback_total(&chargeback)
    );
}

#[test]
fn token_reports_group_by_team_by_default_and_print_csv() {
    let prometheus = TestPrometheus::start(&serving());
    let flags = [
        "--tokens",
        "--prometheus",
        &prometheus.url,
        "--namespace",
        "team-a",
    ];
    let csv = support::fixture_report(&flags);
    let mut rows = csv.lines();
    assert_eq!(
        rows.next().unwrap(),
        "period_start,period_end,served_model,cost_center,namespace,gpu_hours,cost,idle_cost,input_tokens,output_tokens,cost_per_1m_tokens,cost_per_1m_output_tokens,currency"
    );
    let rows: Vec<Vec<&str>> = rows.map(|r| r.split(',').collect()).collect();
    let models: Vec<&str> = rows.iter().map(|r| r[2]).collect();
    assert_eq!(models, ["llama-8b", "qwen-32b", "support-lora"], "{csv}");
    assert!(rows.iter().all(|r| r[4] == "team-a"));
    // qwen-32b: $36 over 538,500 tokens.
    assert_eq!(rows[1][6], "36.00");
    assert_eq!(rows[1][10], "66.8524");
}

#[test]
fn a_bad_token_request_says_what_to_fix() {
    for (args, says) in [
        (&["--group-by", "served_model,team"][..], "--group-by"),
        (&["--format", "focus"][..], "--format"),
        (&["--output", "x.parquet"][..], "--output"),
    ] {
        let output = tollgate_command()
            .args(["report", "--tokens"])
            .args(FIXTURE)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_the_same_token_report_and_the_last_hours_cost_per_million_tokens() {
    let prometheus = TestPrometheus::start(&serving());
    let archive = tollgate::serve::Archive {
        prometheus: Some(
            tollgate::prometheus::Prometheus::new(&prometheus.url, &Default::default()).unwrap(),
        ),
        cluster: "snapshot".into(),
        input_weight: Some(d("0.25")),
        ..Default::default()
    };
    let (urls, stop, server) = support::spawn_service_with(
        support::fixture_feed(),
        support::no_budgets(),
        None,
        std::sync::Arc::new(archive),
    )
    .await;
    let address = support::address(&urls[0]);
    let query = "from=2026-11-01&to=2026-11-02&group_by=served_model,namespace,pod";
    let (status, body) =
        support::http_get(&address, &format!("/api/v1/tokens?{query}&format=json"))
            .await
            .unwrap();
    assert_eq!(status, 200, "{body}");
    let served: Value = serde_json::from_str(&body).unwrap();
    let config = tempfile::NamedTempFile::with_suffix(".toml").unwrap();
    std::fs::write(config.path(), "[tokens]\ninput_weight = \"0.25\"\n").unwrap();
    let printed = token_report(
        &prometheus.url,
        &[
            "--group-by",
            "served_model,namespace,pod",
            "--config",
            config.path().to_str().unwrap(),
            "--as-of",
            "2026-11-02",
        ],
    );
    assert_eq!(served["lines"], printed["lines"]);
    assert_eq!(served["total"], printed["total"]);

    for (path, says) in [
        (
            "/api/v1/tokens?group_by=served_model,team",
            "unknown group-by key",
        ),
        ("/api/v1/tokens?format=focus", "csv or json"),
        ("/api/v1/tokens?step=fortnight", "step"),
    ] {
        let (status, body) = support::http_get(&address, path).await.unwrap();
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains(says), "{path}: {body}");
    }

    // The fixture's as-of is 2026-11-02T00:00Z: the last hour is 23:00–24:00, in which chat-0's
    // two H100 cost $6, 62.5 % of it llama-8b's (24,000 of 38,400 tokens): $3.75 per 24,000
    // tokens; serve-0's $6 bought 90,000 SGLang tokens.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let metrics = loop {
        let (_, metrics) = support::http_get(&address, "/metrics").await.unwrap();
        if metrics.contains("tollgate_cost_per_million_tokens{") {
            break metrics;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let costs = support::metric(&metrics, "tollgate_cost_per_million_tokens");
    let cost_of = |model: &str| {
        costs
            .iter()
            .find(|(labels, _)| labels.contains(&format!("served_model=\"{model}\"")))
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("no {model} in {costs:?}"))
    };
    assert_eq!(cost_of("llama-8b"), 156.25);
    assert_eq!(cost_of("support-lora"), 156.25);
    assert!((cost_of("qwen-32b") - 66.6667).abs() < 1e-9);
    assert!(
        !costs.keys().any(|labels| labels.contains("tiny-idle")),
        "no tokens, no cost per token: {costs:?}"
    );
    let _ = stop.send(());
    let _ = server.await;
}
