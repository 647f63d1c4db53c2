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

/// A chargeback of more lines than `server.max_report_lines` is answered 400 naming the bound
/// — whether its lines come from the store's days by pod, from the engine's hours by pod, or
/// from both together — and so is a token report of more, instead of growing the service's
/// memory with them (a month by pod and hour at 10,000 GPUs took 4.3 GiB); a smaller report,
/// one cost center's by pod and hour (bound by its own lines, not the fleet's), and the FOCUS
/// export, made a day at a time, are answered as without the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chargeback_of_more_lines_than_the_service_makes_at_once_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let serve = |most: Option<usize>| {
        let (data, log) = (data.clone(), dir.path().join(format!("serve-{most:?}.log")));
        async move {
            let bound = most.map(|most| most.to_string()).unwrap_or_default();
            let env: &[(&str, &std::ffi::OsStr)] = match most {
                Some(_) => &[("TOLLGATE__SERVER__MAX_REPORT_LINES", bound.as_ref())],
                None => &[],
            };
            ServeProcess::start(
                &["--demo", "--demo-data", data.to_str().unwrap()],
                env,
                &log,
            )
            .await
        }
    };
    let refusal = |most: usize| {
        json!({
            "error": format!(
                "the report has more than {most} lines, the most this service makes at once \
                 (server.max_report_lines): ask for a longer step, a shorter window or fewer \
                 group-by keys; the FOCUS export (format=focus) is made a day at a time"
            )
        })
    };
    let refused = |service: &ServeProcess, path: &str, most: usize| {
        let (address, path) = (service.address.clone(), path.to_string());
        async move {
            let (status, body) = support::http_get(&address, &path).await.unwrap();
            assert_eq!(status, 400, "{path}: {body}");
            assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), refusal(most));
        }
    };
    // Two days the first start rolls up into the store.
    let date = |hours_ago: i64| {
        (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(hours_ago))
            .strftime("%Y-%m-%d")
            .to_string()
    };
    let (day, next, after) = (date(72), date(48), date(24));
    let path = |from: &str, to: &str, query: &str| {
        format!("/api/v1/chargeback?from={from}&to={to}&{query}")
    };
    let tokens =
        |group_by: &str| format!("/api/v1/tokens?from={day}&to={next}&group_by={group_by}");
    let asked = [
        path(&day, &next, "group_by=pod&step=day"),
        path(&day, &next, "group_by=pod&step=hour"),
        tokens("pod"),
        path(&day, &next, "group_by=cost_center&step=day"),
        path(&day, &next, "format=focus"),
        tokens("served_model"),
        // One cost center's pods by the hour: bound by its own lines, not the fleet's.
        path(
            &day,
            &next,
            "group_by=cost_center,pod&step=hour&cost_center=cc-110",
        ),
    ];
    // The afternoon of the first day from the engine (its archived segments), the next day
    // from the store, and both: two days' lines, apart by day.
    let noon = format!("{day}T12:00:00Z");
    let split = [
        path(&noon, &next, "group_by=pod&step=day"),
        path(&next, &after, "group_by=pod&step=day"),
        path(&noon, &after, "group_by=pod&step=day"),
    ];
    let rows = |csv: &str| csv.lines().count() - 1;

    let service = serve(None).await;
    let mut whole = Vec::new();
    for path in asked.iter().chain(&split) {
        whole.push(service.get(path).await);
    }
    drop(service);
    let [
        by_pod,
        by_pod_hourly,
        tokens_by_pod,
        by_cost_center,
        focus,
        tokens_by_model,
        one_cost_center_hourly,
    ] = [0, 1, 2, 3, 4, 5, 6].map(|at| rows(&whole[at]));
    let (afternoon, next_day, both) = (rows(&whole[7]), rows(&whole[8]), rows(&whole[9]));
    assert_eq!(both, afternoon + next_day);
    // Half the day's pods: fewer than the reports by pod and than the FOCUS rows, more than
    // the cost centers and the served models.
    let most = by_pod / 2;
    assert!(by_pod_hourly > by_pod && tokens_by_pod > most && focus >= by_pod);
    assert!(by_cost_center < most && tokens_by_model < most);
    assert!(
        one_cost_center_hourly > 0 && one_cost_center_hourly < most,
        "{one_cost_center_hourly} of {most}"
    );

    let service = serve(Some(most)).await;
    for path in &asked[..3] {
        refused(&service, path, most).await;
    }
    for (path, before) in asked.iter().zip(&whole).skip(3).take(4) {
        assert_eq!(&service.get(path).await, before, "{path}");
    }
    // The console grouped by pod over the day: refused on a page for people.
    let console = format!("/?from={day}&to={next}&group_by=pod");
    let (status, page) = support::http_get(&service.address, &console).await.unwrap();
    assert_eq!(status, 400, "{page}");
    let why = refusal(most)["error"].as_str().unwrap().to_string();
    assert!(page.starts_with("<!doctype html>"), "{page}");
    assert!(
        page.contains(&format!("<p class=\"over\" role=\"alert\">{why}</p>")),
        "{page}"
    );
    drop(service);

    // One line fewer than the two days': each part is within the bound, the whole is not.
    let most = both - 1;
    let service = serve(Some(most)).await;
    refused(&service, &split[2], most).await;
    for (path, before) in split.iter().zip(&whole[7..]).take(2) {
        assert_eq!(&service.get(path).await, before, "{path}");
    }
}

/// The service's own work on closed days — rolling them up into the store — is not bound by
/// `server.max_report_lines`, which guards what askers ask for: with a bound of 10 lines, far
/// fewer than a day's pods, a first start still stores every day of its history, its hours
/// and its pods, as a start without the bound does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bound_on_what_askers_ask_for_does_not_bind_the_stored_days() {
    let dir = tempfile::tempdir().unwrap();
    let stored = |name: &'static str, env: &'static [(&'static str, &'static str)]| {
        let (data, log) = (
            dir.path().join(name),
            dir.path().join(format!("{name}.log")),
        );
        async move {
            let env: Vec<(&str, &std::ffi::OsStr)> = env
                .iter()
                .map(|(k, v)| (*k, std::ffi::OsStr::new(v)))
                .collect();
            let service = ServeProcess::start(
                &["--demo", "--demo-data", data.to_str().unwrap()],
                &env,
                &log,
            )
            .await;
            let log = service.log();
            drop(service);
            assert!(!log.contains("rollup failed"), "{log}");
            // The days of the hourly and the pods' rollups.
            ["rollups", "rollups/pods"].map(|kind| {
                std::fs::read_dir(data.join(kind))
                    .unwrap()
                    .filter_map(|entry| {
                        let name = entry.unwrap().file_name().into_string().unwrap();
                        name.strip_suffix(".parquet").map(str::to_string)
                    })
                    .collect::<std::collections::BTreeSet<String>>()
            })
        }
    };
    let [hours, pods] = stored("unbounded", &[]).await;
    // The demo's history: 40 days before the ledger began.
    assert!(hours.len() >= 40 && pods == hours, "{hours:?} {pods:?}");
    let bounded = stored("bounded", &[("TOLLGATE__SERVER__MAX_REPORT_LINES", "10")]).await;
    assert_eq!(bounded, [hours.clone(), hours]);
}
