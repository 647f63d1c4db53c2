//! The HTTP API on the fixture snapshot: the same chargeback as `tollgate report` (one engine),
//! metrics, health, OpenAPI, and JSON 400s for bad parameters — through `tower::ServiceExt::oneshot`
//! and once over a real socket.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use tokio::sync::watch;
use tollgate::ledger::Ledger;
use tollgate::pricing::RateCard;
use tollgate::serve::{Feed, Readiness, Reconciler, View, read_once, router};
use tower::ServiceExt;

use crate::support;

use support::fixture_report;

fn fixture_view() -> Arc<View> {
    let card = Arc::new(support::fixture_card());
    read_once(support::fixture_feed(), card, "cost-center")
}

fn app_of(view: Arc<View>) -> axum::Router {
    let (_, receiver) = watch::channel(view);
    router(support::app_state(
        Arc::new(support::fixture_card()),
        receiver,
        Arc::new(support::no_budgets()),
    ))
}

async fn get(uri: &str) -> (u16, String, String) {
    get_of(app_of(fixture_view()), uri).await
}

async fn get_of(app: axum::Router, uri: &str) -> (u16, String, String) {
    let response = app
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn chargeback_is_the_same_as_the_report() {
    let (status, content_type, csv) = get("/api/v1/chargeback?from=2026-11-01&to=2026-11-02").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/csv; charset=utf-8");
    assert_eq!(csv, fixture_report(&[]));
    // Filters left empty (a cleared form field) keep every line, not none.
    let (status, _, unfiltered) =
        get("/api/v1/chargeback?from=2026-11-01&to=2026-11-02&cost_center=&namespace=").await;
    assert_eq!((status, unfiltered.as_str()), (200, csv.as_str()));
    assert!(csv.lines().count() > 2, "{csv}");
    let (_, content_type, json) =
        get("/api/v1/chargeback?from=2026-11-01&to=2026-11-02&format=json&group_by=gpu_model,node&step=day").await;
    assert_eq!(content_type, "application/json");
    assert_eq!(
        json,
        fixture_report(&[
            "--format",
            "json",
            "--group-by",
            "gpu_model,node",
            "--step",
            "day"
        ])
    );
    let (status, content_type, focus) =
        get("/api/v1/chargeback?from=2026-11-01&to=2026-11-02&format=focus").await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "text/csv; charset=utf-8")
    );
    assert_eq!(focus, fixture_report(&["--format", "focus"]));
    assert!(focus.starts_with("AllocatedMethodDetails,AllocatedMethodId,"));
    // Defaults: month to date of the server's as-of (2026-11-02).
    let (_, _, json) = get("/api/v1/chargeback?format=json&share_unallocated=true").await;
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["from"], "2026-11-01T00:00:00Z");
    assert_eq!(json["to"], "2026-11-02T00:00:00Z");
    assert_eq!(json["total"]["cost"], "2006.40");
}

#[tokio::test]
async fn bad_parameters_get_a_json_400_saying_what_is_wrong() {
    let cases = [
        (
            "/api/v1/chargeback?from=soon",
            "from: \"soon\" is not a time",
        ),
        (
            "/api/v1/chargeback?group_by=team",
            "group_by: unknown group-by key \"team\"",
        ),
        (
            "/api/v1/chargeback?step=week",
            "step: unknown step \"week\"",
        ),
        (
            "/api/v1/chargeback?format=xlsx",
            "format: unknown format \"xlsx\"",
        ),
        (
            "/api/v1/chargeback?from=2026-11-02&to=2026-11-01",
            "from: must be before the end of the window",
        ),
        (
            "/api/v1/chargeback?format=focus&group_by=pod",
            "group_by: FOCUS rows are one per resource",
        ),
        ("/api/v1/chargeback?colour=red", "unknown field `colour`"),
        (
            "/api/v1/chargeback?group_by=cost_center&namespace=chat",
            "namespace: keeps the lines of one namespace: add namespace to group_by",
        ),
        (
            "/api/v1/chargeback?share_unallocated=maybe",
            "share_unallocated",
        ),
        // 2026-01-01 + 416 days = 2027-02-21: 416 × 24 + 17 = 10,001 hours, one over the limit.
        (
            "/api/v1/chargeback?from=2026-01-01&to=2027-02-21T17:00:00Z&step=hour",
            "step: hour over this window is more than 10000 periods",
        ),
    ];
    for (uri, expected) in cases {
        let (status, content_type, body) = get(uri).await;
        assert_eq!(status, 400, "{uri}");
        assert_eq!(content_type, "application/json");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(
            body["error"].as_str().unwrap().contains(expected),
            "{uri}: {body}"
        );
    }
    // 10,000 hours exactly is within the limit.
    let (status, _, body) =
        get("/api/v1/chargeback?from=2026-01-01&to=2027-02-21T16:00:00Z&step=hour&format=json")
            .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = get("/nowhere").await;
    assert_eq!(status, 404);
    assert!(body.contains("openapi.json"));
}

#[tokio::test]
async fn readyz_says_what_a_replica_that_is_not_ready_waits_for() {
    let read = fixture_view();
    assert_eq!(read.readiness, Readiness::Ready);
    let cases = [
        (Readiness::Ready, 200, "{\"ready\":true}"),
        (
            Readiness::Listing,
            503,
            "{\"error\":\"not ready: waiting for the first complete list of every watched kind\"}",
        ),
        (
            Readiness::Backfilling,
            503,
            "{\"error\":\"not ready: rolling the history before the ledger began up into the \
             store (the log says how many days are done)\"}",
        ),
    ];
    for (readiness, status, body) in cases {
        let view = View {
            readiness,
            ..(*read).clone()
        };
        let answer = get_of(app_of(Arc::new(view)), "/readyz").await;
        assert_eq!(
            answer,
            (status, "application/json".to_string(), body.to_string()),
            "{readiness:?}"
        );
    }
}

#[tokio::test]
async fn health_metrics_and_openapi() {
    assert_eq!(get("/healthz").await.0, 200);
    assert_eq!(get("/readyz").await.0, 200);
    let (status, content_type, metrics) = get("/metrics").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("application/openmetrics-text"));
    // As of 2026-11-02: month-to-date spend per cost center, exactly the chargeback's.
    assert!(
        metrics.contains(
            "tollgate_cost_center_spend{cost_center=\"cc-500\",period=\"month\"} 507.42857142857"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("tollgate_cost_center_spend{cost_center=\"__unallocated__\",period=\"month\"} 1119.32142857"), "{metrics}");
    assert!(metrics.contains("process_resident_memory_bytes"));
    assert!(
        !metrics.contains("tollgate_source_up"),
        "a snapshot is not a watched source"
    );
    // No price for the GH200: no burn series for it, never a zero.
    assert!(metrics.contains("tollgate_gpu_allocated_units{namespace=\"team-c\",pod=\"gh-0\""));
    assert!(!metrics.contains("tollgate_gpu_cost_per_hour{namespace=\"team-c\",pod=\"gh-0\""));
    let (_, _, doc) = get("/api/v1/openapi.json").await;
    let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
    for route in [
        "/healthz",
        "/readyz",
        "/api/v1/chargeback",
        "/api/v1/tokens",
        "/metrics",
        "/api/v1/openapi.json",
    ] {
        assert!(
            doc["paths"][route]["get"].is_object(),
            "{route} missing from the OpenAPI document"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(
        doc["paths"]["/api/v1/chargeback"]["get"]["responses"]["401"]["description"],
        "Auth is on and no accepted bearer token came"
    );
    let params: Vec<&str> = doc["paths"]["/api/v1/chargeback"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        params,
        [
            "from",
            "to",
            "group_by",
            "step",
            "format",
            "share_unallocated",
            "cost_center",
            "namespace"
        ]
    );
}

#[tokio::test]
async fn serves_over_a_real_socket_and_stops_on_request() {
    let (urls, stop, server) = support::spawn_service(support::no_budgets(), None).await;
    let window = "/api/v1/chargeback?from=2026-11-01&to=2026-11-02";
    let (status, body) = support::http_get(&support::address(&urls[0]), window)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, fixture_report(&[]));
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_demo_fleet_moves_on_a_compressed_clock() {
    let card = Arc::new(RateCard::builtin());
    let (views, receiver) = watch::channel(Arc::new(View::default()));
    // One real second is an hour of the demo.
    let mut reconciler = Reconciler::new(
        Feed::demo(1, 3600),
        Ledger::in_memory(),
        card.clone(),
        "cost-center".into(),
        views,
    );
    reconciler.step();
    let first = receiver.borrow().clone();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    reconciler.step();
    let second = receiver.borrow().clone();
    assert!(
        second.as_of - first.as_of >= 5000,
        "{} → {}",
        first.as_of,
        second.as_of
    );
    let running = |view: &View| -> std::collections::BTreeSet<String> {
        view.live
            .allocations
            .iter()
            .filter(|a| a.interval.end == view.as_of)
            .map(|a| view.live.names.resolve(a.pod_uid).to_string())
            .collect()
    };
    let (before, after) = (running(&first), running(&second));
    assert!(before.len() > 100 && after.len() > 100);
    assert!(before.difference(&after).count() > 0, "some pods ended");
    assert!(after.difference(&before).count() > 0, "some pods started");
    let app = router(support::app_state(
        card,
        receiver,
        Arc::new(support::no_budgets()),
    ));
    let response = app
        .oneshot(
            Request::get("/api/v1/chargeback")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}
