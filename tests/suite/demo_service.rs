//! `tollgate serve --demo` as a newcomer meets it: the demo's workloads keep their GPUs busy or
//! idle through the same utilization path DCGM data takes (so idle cost and
//! `tollgate_gpu_utilization_ratio` have data), and its cost centers have budgets with a story:
//! cc-100 near its limit, cc-200 over it.

use crate::support;

use serde_json::{Value, json};
use support::ServeProcess;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_has_utilization_idle_cost_and_budgets_with_a_story() {
    let dir = tempfile::tempdir().unwrap();
    let service = ServeProcess::start(&["--demo"], &[], &dir.path().join("serve.log")).await;

    // From the first ready view on, a budget's month-to-date spend is the chargeback's: the
    // days stored before the cut-over count before the first roll-up has run (they used not to,
    // and budgets saw a fraction of the month until it had).
    let (status, first) = support::http_post(
        &service.address,
        "/api/v1/quota/check",
        &json!({"namespace": "inference-chat", "gpus": 1, "dryRun": true}).to_string(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{first}");
    let first: Value = serde_json::from_str(&first).unwrap();
    let as_of = first["asOf"].as_str().unwrap();
    let month = format!("{}-01T00:00:00Z", &as_of[..7]);
    let chargeback: Value = serde_json::from_str(
        &service
            .get(&format!(
                "/api/v1/chargeback?format=json&group_by=cost_center&from={month}&to={as_of}"
            ))
            .await,
    )
    .unwrap();
    let cc100 = chargeback["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["cost_center"] == "cc-100")
        .unwrap();
    let spent: f64 = first["spent"].as_str().unwrap().parse().unwrap();
    let charged: f64 = cc100["cost"].as_str().unwrap().parse().unwrap();
    assert!(
        (spent - charged).abs() <= 0.011,
        "spent {spent}, charged {charged}"
    );

    // Part of a day stored before the cut-over comes from its archived segments: the morning's
    // cost is there, and below the whole day's (it used to be an empty report).
    let yesterday = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24))
        .strftime("%Y-%m-%d")
        .to_string();
    let cost_of = |body: String| -> f64 {
        let report: Value = serde_json::from_str(&body).unwrap();
        report["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["cost_center"] == "cc-100")
            .and_then(|l| l["cost"].as_str())
            .map_or(0.0, |c| c.parse().unwrap())
    };
    let path = |to: &str| {
        format!(
            "/api/v1/chargeback?format=json&group_by=cost_center&from={yesterday}T00:00:00Z&to={to}"
        )
    };
    let morning = cost_of(service.get(&path(&format!("{yesterday}T12:00:00Z"))).await);
    let whole = cost_of(service.get(&path(&format!("{yesterday}T23:59:59Z"))).await);
    assert!(
        morning > 0.0 && morning < whole,
        "morning {morning}, whole day {whole}"
    );

    // Utilization of the pods running now: busy training, idle services, abandoned notebooks.
    let metrics = service.get("/metrics").await;
    let ratios = support::metric(&metrics, "tollgate_gpu_utilization_ratio");
    assert!(ratios.len() > 20, "{} pods with a ratio", ratios.len());
    let of = |namespace: &str| -> Vec<f64> {
        ratios
            .iter()
            .filter(|(labels, _)| support::label(labels, "namespace") == namespace)
            .map(|(_, v)| *v)
            .collect()
    };
    assert!(
        of("ml-training").iter().all(|r| (0.82..=0.97).contains(r)),
        "{:?}",
        of("ml-training")
    );
    assert!(
        of("platform-tools").iter().all(|r| *r <= 0.10),
        "{:?}",
        of("platform-tools")
    );
    // Notebooks idle or abandoned (which of them are is the hash's: see the unit test).
    assert!(
        !of("research").is_empty() && of("research").iter().all(|r| *r <= 0.10),
        "{:?}",
        of("research")
    );

    // Its inference servers count tokens: yesterday's cost per million tokens per served model,
    // the Mistral servers' cost split between the base model and its LoRA adapter, and the
    // embedder (which generates nothing) with no cost per output token rather than a zero.
    let tokens: Value = serde_json::from_str(
        &service
            .get(&format!(
                "/api/v1/tokens?format=json&from={yesterday}T00:00:00Z&to={yesterday}T23:59:59Z&group_by=served_model"
            ))
            .await,
    )
    .unwrap();
    let model = |name: &str| {
        tokens["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["served_model"] == name)
            .unwrap_or_else(|| panic!("no {name}: {tokens}"))
            .clone()
    };
    for name in ["meta-llama/Llama-3.1-70B-Instruct", "support-agent-lora"] {
        let line = model(name);
        assert!(line["output_tokens"].as_u64().unwrap() > 0, "{line}");
        let per_million: f64 = line["cost_per_1m_tokens"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(per_million > 0.0, "{line}");
    }
    let embedder = model("BAAI/bge-m3");
    assert_eq!(embedder["output_tokens"], 0, "{embedder}");
    assert_eq!(
        embedder["cost_per_1m_output_tokens"],
        Value::Null,
        "{embedder}"
    );
    let training = model("");
    assert_eq!(training["input_tokens"], 0, "{training}");
    // The last hour's cost per million tokens, priced in the background after the first view.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let metrics = service.get("/metrics").await;
        let costs = support::metric(&metrics, "tollgate_cost_per_million_tokens");
        if costs
            .keys()
            .any(|labels| support::label(labels, "namespace") == "inference-chat")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", service.log());
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }

    // The chargeback of the fleet's first full day has used hours and idle cost on every
    // cost center's line, idle never above cost.
    let report: Value = serde_json::from_str(
        &service
            .get("/api/v1/chargeback?format=json&group_by=cost_center&step=day")
            .await,
    )
    .unwrap();
    let lines = report["lines"].as_array().unwrap();
    let held: Vec<&Value> = lines
        .iter()
        .filter(|l| l["cost_center"] != "__unallocated__" && l["cost"].is_string())
        .collect();
    assert!(!held.is_empty());
    for line in held {
        let cost: f64 = line["cost"].as_str().unwrap().parse().unwrap();
        let idle: f64 = line["idle_cost"].as_str().unwrap().parse().unwrap();
        let used: f64 = line["used_gpu_hours"].as_str().unwrap().parse().unwrap();
        assert!(idle <= cost && (used > 0.0 || cost == 0.0), "{line}");
    }

    // Budgets: cc-200 (inference-search) is over, cc-100 (inference-chat) near, ml-training fine.
    let check = |namespace: &str| {
        json!({"namespace": namespace, "gpus": 1, "gpuModel": "H100", "dryRun": true}).to_string()
    };
    let decide = |body: String| {
        let address = service.address.clone();
        async move {
            let (status, answer) = support::http_post(&address, "/api/v1/quota/check", &body, None)
                .await
                .unwrap();
            assert_eq!(status, 200, "{answer}");
            serde_json::from_str::<Value>(&answer).unwrap()
        }
    };
    let over = decide(check("inference-search")).await;
    assert_eq!(over["allowed"], false, "{over}");
    assert!(
        over["message"]
            .as_str()
            .unwrap()
            .starts_with("cost center cc-200 would reach"),
        "{over}"
    );
    let fine = decide(check("ml-training")).await;
    assert_eq!(fine["allowed"], true, "{fine}");
    assert_eq!(fine["budget"], "250000.00");
}
