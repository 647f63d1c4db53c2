//! `[auth]`: the finance API behind bearer tokens from a mounted file or Kubernetes
//! TokenReview (against the fake API server, which answers TokenReviews with the real
//! audience rules), the quota check accepting Kyverno's projected token, open health and
//! metrics, and JSON 401/403s.

use crate::support;

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::Value;
use support::apiserver::{API_AUDIENCE, FakeApiServer};
use tokio::sync::watch;
use tollgate::serve::{AppState, Auth, AuthMode, AuthSettings, read_once, router};
use tower::ServiceExt;

const CHARGEBACK: &str = "/api/v1/chargeback?from=2026-11-01&to=2026-11-02";
const KYVERNO: &str = "kyverno-svc.kyverno.io";

fn app(auth: Auth) -> axum::Router {
    let card = Arc::new(support::fixture_card());
    let (_, views) = watch::channel(read_once(
        support::fixture_feed(),
        card.clone(),
        "cost-center",
    ));
    router(AppState {
        auth: Arc::new(auth),
        ..support::app_state(card, views, Arc::new(support::no_budgets()))
    })
}

/// Status, `WWW-Authenticate`, and the body as JSON (or as a string when it is not JSON).
async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
) -> (u16, String, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let body = if method == "POST" {
        Body::from(r#"{"namespace": "team-a", "gpus": 1}"#)
    } else {
        Body::empty()
    };
    let response = app
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, challenge, body)
}

fn write_tokens(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn token_settings(file: &Path) -> AuthSettings {
    AuthSettings {
        mode: AuthMode::Token,
        tokens_file: Some(file.to_path_buf()),
        ..AuthSettings::default()
    }
}

#[tokio::test]
async fn tokens_from_a_file_guard_the_finance_api_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens");
    write_tokens(&file, "# finance exporters\nfinance-0123456789\n\n");
    let app = app(Auth::new(token_settings(&file)).unwrap());

    let (status, challenge, body) = call(&app, "GET", CHARGEBACK, None).await;
    assert_eq!(status, 401);
    assert_eq!(challenge, "Bearer realm=\"tollgate\"");
    assert_eq!(
        body["error"],
        "a bearer token is required: send Authorization: Bearer <token>"
    );
    let (status, _, body) = call(&app, "GET", CHARGEBACK, Some("finance-012345678")).await;
    assert_eq!(status, 401);
    assert_eq!(
        body["error"],
        "the bearer token is not one of auth.tokens_file's"
    );
    for format in ["csv", "json", "focus"] {
        let uri = format!("{CHARGEBACK}&format={format}");
        let (status, _, body) = call(&app, "GET", &uri, None).await;
        assert_eq!(status, 401, "{format}: {body}");
        let (status, _, _) = call(&app, "GET", &uri, Some("finance-0123456789")).await;
        assert_eq!(status, 200, "{format}");
    }
    let (_, _, body) = call(&app, "GET", CHARGEBACK, Some("finance-0123456789")).await;
    assert_eq!(
        body.as_str().unwrap(),
        support::fixture_report(&[]),
        "the same chargeback"
    );
    // Health, readiness, metrics and the API description stay open.
    for open in ["/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"] {
        let (status, _, _) = call(&app, "GET", open, None).await;
        assert_eq!(status, 200, "{open}");
    }
    // The quota check takes the listed tokens too, and nothing else without a cluster.
    let (status, _, _) = call(&app, "POST", "/api/v1/quota/check", None).await;
    assert_eq!(status, 401);
    let (status, _, body) = call(
        &app,
        "POST",
        "/api/v1/quota/check",
        Some("finance-0123456789"),
    )
    .await;
    assert_eq!((status, body["allowed"].as_bool()), (200, Some(true)));

    // A rotated Secret: the new token works at once, the old one no longer does.
    write_tokens(&file, "rotated-token-abcdefghijklmnop\n");
    let (status, _, _) = call(&app, "GET", CHARGEBACK, Some("finance-0123456789")).await;
    assert_eq!(status, 401);
    let (status, _, _) = call(
        &app,
        "GET",
        CHARGEBACK,
        Some("rotated-token-abcdefghijklmnop"),
    )
    .await;
    assert_eq!(status, 200);
}

fn client(api: &FakeApiServer) -> kube::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    kube::Client::try_from(kube::Config::new(api.url().parse().unwrap())).unwrap()
}

#[tokio::test]
async fn token_review_lets_finance_read_refuses_others_and_takes_kyvernos_token() {
    let api = FakeApiServer::start().await;
    api.accept_token("alice-token", "alice", &["finance"], &[API_AUDIENCE]);
    api.accept_token("bob-token", "bob", &["developers"], &[API_AUDIENCE]);
    api.accept_token(
        "kyverno-projected",
        "system:serviceaccount:kyverno:kyverno-admission-controller",
        &["system:serviceaccounts"],
        &[KYVERNO],
    );
    let settings = AuthSettings {
        mode: AuthMode::TokenReview,
        finance_groups: vec!["finance".into()],
        quota_users: vec!["system:serviceaccount:kyverno:kyverno-admission-controller".into()],
        ..AuthSettings::default()
    };
    let app = app(Auth::new(settings)
        .and_then(|a| a.with_reviews(Some(client(&api))))
        .unwrap());

    let (status, _, _) = call(&app, "GET", CHARGEBACK, Some("alice-token")).await;
    assert_eq!(status, 200);
    let (status, challenge, body) = call(&app, "GET", CHARGEBACK, Some("bob-token")).await;
    assert_eq!((status, challenge.as_str()), (403, ""));
    assert_eq!(
        body["error"],
        "bob may not read chargebacks (auth.finance_users, auth.finance_groups)"
    );
    let (status, _, body) = call(&app, "GET", CHARGEBACK, Some("forged")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid bearer token"))
    );
    // Kyverno's projected token is for the quota check only: the API server's audience is
    // not among its audiences.
    let (status, _, _) = call(&app, "GET", CHARGEBACK, Some("kyverno-projected")).await;
    assert_eq!(status, 401);
    let (status, _, body) = call(
        &app,
        "POST",
        "/api/v1/quota/check",
        Some("kyverno-projected"),
    )
    .await;
    assert_eq!((status, body["allowed"].as_bool()), (200, Some(true)));
    // A token for the API server is not one for Tollgate's quota audience.
    let (status, _, body) = call(&app, "POST", "/api/v1/quota/check", Some("alice-token")).await;
    assert_eq!(status, 401, "{body}");

    // Answers are reused: a second read with alice's token asks the API server nothing.
    let reviews = api.reviews();
    let (status, _, _) = call(&app, "GET", CHARGEBACK, Some("alice-token")).await;
    assert_eq!(status, 200);
    assert_eq!(api.reviews(), reviews);
}

#[tokio::test]
async fn with_token_mode_the_quota_check_still_takes_kyvernos_projected_token() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens");
    write_tokens(&file, "finance-0123456789\n");
    let api = FakeApiServer::start().await;
    api.accept_token("kyverno-projected", "kyverno", &[], &[KYVERNO]);
    let app = app(Auth::new(token_settings(&file))
        .and_then(|a| a.with_reviews(Some(client(&api))))
        .unwrap());
    let (status, _, _) = call(
        &app,
        "POST",
        "/api/v1/quota/check",
        Some("kyverno-projected"),
    )
    .await;
    assert_eq!(status, 200);
    // It does not open the finance API.
    let (status, _, _) = call(&app, "GET", CHARGEBACK, Some("kyverno-projected")).await;
    assert_eq!(status, 401);
}

#[test]
fn a_broken_auth_configuration_is_refused_with_what_to_fix() {
    let err = |settings| {
        Auth::new(settings)
            .and_then(|a| a.with_reviews(None))
            .err()
            .unwrap()
    };
    assert_eq!(
        err(AuthSettings {
            mode: AuthMode::Token,
            ..AuthSettings::default()
        }),
        "auth.mode token needs auth.tokens_file"
    );
    assert_eq!(
        err(AuthSettings {
            mode: AuthMode::TokenReview,
            ..AuthSettings::default()
        }),
        "auth.mode token_review needs the Kubernetes API: run in a cluster or set KUBECONFIG"
    );
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("tokens");
    write_tokens(&empty, "# nothing yet\n");
    assert!(err(token_settings(&empty)).ends_with("holds no token (one per line)"));
    // Through the command line: exit 2 and one line.
    let output = support::tollgate_command()
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        .env("TOLLGATE__AUTH__MODE", "token")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(output.stderr).unwrap(),
        "error: auth.mode token needs auth.tokens_file\n"
    );
}

/// Status, a response header, and the body as text, of a request with `headers` and `body`.
async fn browse(
    app: &axum::Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
    header: &str,
) -> (u16, String, String) {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let value = response
        .headers()
        .get(header)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, value, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn the_console_asks_a_browser_for_a_token_and_keeps_it_for_reading_only() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens");
    write_tokens(&file, "finance-0123456789\n");
    let app = app(Auth::new(token_settings(&file)).unwrap());
    let form = [("content-type", "application/x-www-form-urlencoded")];

    // No token: the page is a form, not figures.
    let (status, _, page) = browse(&app, "GET", "/", &[], "", "content-type").await;
    assert_eq!(status, 401);
    assert!(page.contains("action=\"/console/session\"") && !page.contains("Budgets this month"));
    // A wrong token is refused, saying why.
    let (status, cookie, page) = browse(
        &app,
        "POST",
        "/console/session",
        &form,
        "token=nope",
        "set-cookie",
    )
    .await;
    assert_eq!((status, cookie.as_str()), (401, ""));
    assert!(page.contains("not one of auth.tokens_file"), "{page}");
    // The right one becomes an HttpOnly, same-site session.
    let (status, cookie, _) = browse(
        &app,
        "POST",
        "/console/session",
        &form,
        "token=finance-0123456789",
        "set-cookie",
    )
    .await;
    assert_eq!(status, 303);
    assert!(
        cookie.ends_with("; Path=/; HttpOnly; SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_string();
    let with_session = [("cookie", session.as_str())];
    let (status, _, page) = browse(
        &app,
        "GET",
        "/?from=2026-11-01&to=2026-11-02",
        &with_session,
        "",
        "x",
    )
    .await;
    assert_eq!(status, 200);
    assert!(page.contains("Budgets this month"));
    // Its downloads read with the session too; a quota check (a POST) never does.
    let (status, _, csv) = browse(&app, "GET", CHARGEBACK, &with_session, "", "x").await;
    assert_eq!(status, 200);
    assert_eq!(csv, support::fixture_report(&[]));
    let quota = r#"{"namespace": "team-a", "gpus": 1}"#;
    let (status, _, _) = browse(
        &app,
        "POST",
        "/api/v1/quota/check",
        &with_session,
        quota,
        "x",
    )
    .await;
    assert_eq!(status, 401);
}
