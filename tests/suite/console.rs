//! The console (`GET /` of `serve --demo`) in a real browser and against the API: headless
//! Chromium renders it with no console message and screenshots it at desktop and laptop widths
//! (under `target/console/` for people to look at); the figures it shows are the chargeback
//! API's for the same window, at every drill-down level; its download links answer.

use crate::support;

use std::process::Command;

use rust_decimal::Decimal;
use serde_json::Value;
use support::ServeProcess;
use support::tools::{Tool, require};

/// The text of an HTML fragment: tags dropped.
fn text(fragment: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in fragment.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.trim().to_string()
}

/// The rows of the page's spend table: the name, GPU-hours, cost, idle cost (a cost the page
/// calls unpriced is the API's empty cost; hours it adds as unpriced are the API's own column).
fn spend_rows(html: &str) -> Vec<(String, String, String, String)> {
    let section = &html[html.find("<section id=\"spend\">").unwrap()..];
    let section = &section[..section.find("</section>").unwrap()];
    let body = &section[section.find("<tbody>").unwrap()..];
    body.split("<tr>")
        .skip(1)
        .map(|row| {
            let cells: Vec<String> = row
                .split("</t")
                .filter_map(|c| c.split_once('>').map(|(_, inner)| text(inner)))
                .collect();
            let first_word = |cell: &String| match cell.split_whitespace().next() {
                Some("unpriced") | None => "—".to_string(),
                Some(word) => word.to_string(),
            };
            (
                cells[0].clone(),
                first_word(&cells[1]),
                first_word(&cells[2]),
                first_word(&cells[3]),
            )
        })
        .collect()
}

/// Each budget's month-to-date spend as its table shows it, and the last day of its burn-down's
/// figures (the spend by the end of today so far).
fn budget_spent_and_last_day(html: &str) -> Vec<(String, String, String)> {
    let section = &html[html.find("<section id=\"budgets\">").unwrap()..];
    let section = &section[..section.find("</section>").unwrap()];
    let cells = |row: &str| -> Vec<String> {
        row.split("</t")
            .filter_map(|c| c.split_once('>').map(|(_, inner)| text(inner)))
            .collect()
    };
    let table = &section[section.find("<tbody>").unwrap()..section.find("</tbody>").unwrap()];
    table
        .split("<tr>")
        .skip(1)
        .map(|row| {
            let shown = cells(row);
            let (scope, spent) = (shown[0].clone(), shown[1].clone());
            let figure = &section[section
                .find(&format!("<figcaption>{scope}</figcaption>"))
                .unwrap()..];
            let figure = &figure[..figure.find("</tbody>").unwrap()];
            let last = cells(figure.rsplit("<tr>").next().unwrap())[1].clone();
            (scope, spent, last)
        })
        .collect()
}

/// A FOCUS CSV row, by column.
type FocusRow = std::collections::BTreeMap<String, String>;

/// The rows of a FOCUS CSV.
fn focus_rows(csv: &str) -> Vec<FocusRow> {
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|row| {
            let row = row.unwrap();
            header
                .iter()
                .map(String::from)
                .zip(row.iter().map(String::from))
                .collect()
        })
        .collect()
}

/// The API's lines for `group_by` over the window, as (last group value, hours, cost, idle).
async fn api_rows(
    service: &ServeProcess,
    query: &str,
    group_by: &str,
    keep: impl Fn(&Value) -> bool,
) -> Vec<(String, String, String, String)> {
    let report: Value = serde_json::from_str(
        &service
            .get(&format!(
                "/api/v1/chargeback?format=json&group_by={group_by}&{query}"
            ))
            .await,
    )
    .unwrap();
    let last = group_by.rsplit(',').next().unwrap();
    let text = |v: &Value| v.as_str().unwrap_or("—").to_string();
    let mut rows: Vec<(String, String, String, String)> = report["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| keep(l))
        .map(|l| {
            (
                text(&l[last]),
                text(&l["gpu_hours"]),
                text(&l["cost"]),
                text(&l["idle_cost"]),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn unescape(href: &str) -> String {
    href.replace("&amp;", "&")
}

fn href_of(html: &str, text: &str) -> String {
    let end = html
        .find(&format!("\">{text}</a>"))
        .unwrap_or_else(|| panic!("no link {text}"));
    let start = html[..end].rfind("href=\"").unwrap() + 6;
    unescape(&html[start..end])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_the_api_s_figures_in_a_real_browser() {
    require(&[Tool::Chromium]);
    let dir = tempfile::tempdir().unwrap();
    let service = ServeProcess::start(&["--demo"], &[], &dir.path().join("serve.log")).await;
    // A window in the demo's past: the same figures whenever they are asked for.
    let metrics = service.get("/readyz").await;
    assert!(!metrics.is_empty());
    let yesterday = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24))
        .strftime("%Y-%m-%d")
        .to_string();
    let query = format!("from={yesterday}T00:00:00Z&to={yesterday}T12:00:00Z");

    // Cost centers, as the chargeback API has them.
    let page = service.get(&format!("/?{query}")).await;
    let mut shown = spend_rows(&page);
    shown.sort();
    assert_eq!(
        shown,
        api_rows(&service, &query, "cost_center", |_| true).await
    );
    assert!(shown.len() >= 5, "{shown:?}");
    // Each budget's burn-down ends where its spend does, to the cent.
    let budgets = budget_spent_and_last_day(&page);
    assert!(budgets.len() >= 5, "{budgets:?}");
    for (scope, spent, last_day) in &budgets {
        assert!(
            spent.ends_with(" USD") && spent != "0.00 USD",
            "{scope}: {spent}"
        );
        assert_eq!(spent, last_day, "{scope}");
    }

    // Drill into cc-100: its namespaces; then one namespace: its pods.
    let cc = service.get(&href_of(&page, "cc-100")).await;
    let mut shown = spend_rows(&cc);
    shown.sort();
    // Each level is the API's lines of what was opened (rounded among themselves).
    let cc_query = format!("{query}&cost_center=cc-100");
    let api = api_rows(&service, &cc_query, "cost_center,namespace", |_| true).await;
    assert_eq!(shown, api);
    let namespace = api[0].0.clone();
    let pods = service.get(&href_of(&cc, &namespace)).await;
    let mut shown = spend_rows(&pods);
    shown.sort();
    let ns_query = format!("{cc_query}&namespace={namespace}");
    let api = api_rows(&service, &ns_query, "cost_center,namespace,pod", |l| {
        l["cost_center"] == "cc-100" && l["namespace"] == namespace.as_str()
    })
    .await;
    assert_eq!(shown, api);
    assert!(!shown.is_empty());

    // The downloads are of what is on screen.
    let csv = service.get(&href_of(&pods, "Download CSV")).await;
    assert!(
        csv.starts_with("period_start,period_end,cost_center,namespace,pod,"),
        "{csv}"
    );
    let body: Vec<&str> = csv.lines().skip(1).filter(|l| !l.is_empty()).collect();
    assert_eq!(body.len(), shown.len(), "{csv}");
    assert!(
        body.iter()
            .all(|l| l.contains(&format!(",cc-100,{namespace},"))),
        "{csv}"
    );
    let focus = service.get(&href_of(&pods, "Download FOCUS")).await;
    assert!(
        focus.starts_with("AllocatedMethodDetails,") && focus.contains(",BilledCost,"),
        "{focus}"
    );
    // Its rows are the namespace's rows of the whole export (each row's share of its node
    // included), rounded among themselves: they add up to the figures on screen.
    let whole = service
        .get(&format!("/api/v1/chargeback?format=focus&{query}"))
        .await;
    let rows = focus_rows(&focus);
    assert!(!rows.is_empty());
    let namespace_of_whole: Vec<FocusRow> = focus_rows(&whole)
        .into_iter()
        .filter(|r| r["x_CostCenter"] == "cc-100" && r["SubAccountId"] == namespace)
        .collect();
    let resource = |r: &FocusRow| {
        let at = |column: &str| r[column].clone();
        (at("ResourceId"), at("ChargePeriodStart"), at("SkuId"))
    };
    let resources = |rows: &[FocusRow]| rows.iter().map(resource).collect::<Vec<_>>();
    assert_eq!(resources(&rows), resources(&namespace_of_whole));
    for row in &rows {
        assert!(row["ChargeDescription"].contains(&format!("pod {namespace}/")));
    }
    let sum = |rows: &[FocusRow], column: &str| -> Decimal {
        rows.iter()
            .map(|r| r[column].parse::<Decimal>().unwrap())
            .sum()
    };
    let on_screen = |figure: fn(&(String, String, String, String)) -> &String| -> Decimal {
        let figures = shown.iter().map(figure);
        figures
            .map(|f| f.parse::<Decimal>().unwrap_or_default())
            .sum()
    };
    assert_eq!(sum(&rows, "BilledCost"), on_screen(|r| &r.2));
    assert_eq!(sum(&rows, "ConsumedQuantity"), on_screen(|r| &r.1));

    // Any grouping the API takes: the same lines; one it does not is a 400 saying why.
    let grouped = service
        .get(&format!("/?{query}&group_by=gpu_model,node"))
        .await;
    let section = &grouped[grouped.find("<section id=\"grouped\">").unwrap()..];
    let api = api_rows(&service, &query, "gpu_model,node", |_| true).await;
    for (node, hours, cost, _) in &api {
        let cost = match cost.as_str() {
            "—" => "<span class=\"warn\">unpriced",
            priced => priced,
        };
        assert!(
            section.contains(&format!(
                "<td>{node}</td><td class=\"n\">{hours}</td><td class=\"n\">{cost}"
            )),
            "{node} {hours} {cost}"
        );
    }
    let (status, body) = support::http_get(&service.address, &format!("/?{query}&group_by=colour"))
        .await
        .unwrap();
    assert_eq!(status, 400, "{body}");
    // Said on a page, as the console's others are, not as the API's JSON.
    assert!(body.starts_with("<!doctype html>"), "{body}");
    assert!(
        body.contains("role=\"alert\">group_by: unknown group-by key &quot;colour&quot;"),
        "{body}"
    );
    // With the form as it was sent, to mend the key and ask again.
    assert!(
        body.contains("name=\"group_by\" value=\"colour\"")
            && body.contains(&format!("name=\"from\" value=\"{yesterday}T00:00:00Z\"")),
        "{body}"
    );

    // Spend by model and tier (a stored day: tiers from its rollups), unpriced said as such.
    let models = &page[page.find("<section id=\"models\">").unwrap()..];
    for tier in ["on-demand", "spot"] {
        assert!(
            models.contains(&format!(
                "<th scope=\"row\">H100-80GB</th><td>{tier}</td><td class=\"n\">"
            )),
            "{models}"
        );
    }
    assert!(
        models.contains("<th scope=\"row\">NVIDIA-GH200-480GB</th>")
            && models.contains("unpriced ("),
        "{models}"
    );

    // The last hour's cost per million tokens of the demo's served models, as the archive
    // priced them in the background (the metric's figures), linked to the window's token CSV.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let with_tokens = loop {
        let page = service.get(&format!("/?{query}")).await;
        if page.contains("<section id=\"tokens\">") {
            break page;
        }
        assert!(std::time::Instant::now() < deadline, "{}", service.log());
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    let tokens = &with_tokens[with_tokens.find("<section id=\"tokens\">").unwrap()..];
    for model in [
        "meta-llama/Llama-3.1-70B-Instruct",
        "mistralai/Mistral-7B-Instruct-v0.3",
        "support-agent-lora",
    ] {
        assert!(
            tokens.contains(&format!("<th scope=\"row\">{model}</th><td>")),
            "{model} in {tokens}"
        );
    }
    let csv = service.get(&href_of(tokens, "This window's, as CSV")).await;
    assert!(
        csv.starts_with("period_start,period_end,served_model,cost_center,namespace,gpu_hours,"),
        "{csv}"
    );

    // Every chart has words and figures for those who cannot see it.
    assert_eq!(
        page.matches("<svg class=\"bar\"").count() + page.matches("<svg class=\"burn\"").count(),
        page.matches("role=\"img\" aria-label=\"").count()
    );
    assert!(page.contains("<details><summary>Figures</summary><table>"));

    // A real browser: the page renders with no console message and nothing fetched elsewhere.
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console");
    std::fs::create_dir_all(&shots).unwrap();
    let url = format!("http://{}/?{query}", service.address);
    for (name, size) in [("desktop", "1440,2600"), ("laptop", "1280,3000")] {
        let file = shots.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&file);
        let output = Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
            ])
            .args(["--enable-logging=stderr", "--v=0"])
            .arg("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
            .arg(format!("--window-size={size}"))
            .arg(format!("--screenshot={}", file.display()))
            .arg(&url)
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{log}");
        assert!(!log.contains("CONSOLE"), "console messages: {log}");
        assert!(
            !log.contains("ERR_NAME_NOT_RESOLVED"),
            "a request left the host: {log}"
        );
        let png = std::fs::read(&file).unwrap();
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 50_000,
            "{name}: {} bytes",
            png.len()
        );
    }
    let dom = Command::new("chromium")
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--dump-dom",
        ])
        .arg(&url)
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("Budgets this month") && dom.contains("Admission gate"),
        "{dom}"
    );
}
