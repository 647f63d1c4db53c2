//! HTTP routes of `tollgate serve` (SPEC §4.3, §4.4, §6). Every handler answers from the
//! current [`View`]; none waits on the cluster.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::admission::{
    MAX_BODY_BYTES, Review, admission_response, admission_review, quota_request,
};
use super::archive::Archive;
use super::auth::{Scope, require};
use super::metrics;
use super::quota::QuotaGate;
use super::reply::{ErrorBody, error};
use super::state::{AppState, status_of};
use super::view::View;
use crate::budget::QuotaDecision;
use crate::cost::{LineFilter, ReportRequest, RequestText};
use crate::output::{
    FocusEncoding, Format, write_chargeback_parquet, write_report, write_tokens_csv,
    write_tokens_json,
};
use crate::pricing::RateCard;
use crate::reporting::ReportError;
use crate::tokens::report::TokenRequest;
use axum::body::Bytes;

/// Query parameters of the chargeback.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChargebackParams {
    /// Window start: RFC 3339 or a date (midnight UTC). Default: start of the month of `to`.
    from: Option<String>,
    /// Window end, exclusive: RFC 3339 or a date. Default: now.
    to: Option<String>,
    /// Comma-separated keys among cost_center, namespace, gpu_model, node, pod,
    /// cost_center_source. Default: cost_center,namespace.
    group_by: Option<String>,
    /// hour, day, month, or window (default: one row per group for the whole window).
    step: Option<String>,
    /// csv (default), json, or focus (FinOps FOCUS rows, 1.3 or as `focus.version` says).
    format: Option<String>,
    /// true: spread unallocated capacity over the groups that used it.
    share_unallocated: Option<bool>,
    /// Only this cost center's lines (cost_center must be grouped by).
    cost_center: Option<String>,
    /// Only this namespace's lines (namespace must be grouped by).
    namespace: Option<String>,
}

impl ChargebackParams {
    /// The request's parameters as given.
    fn text(&self) -> RequestText<'_> {
        RequestText {
            from: self.from.as_deref(),
            to: self.to.as_deref(),
            group_by: self.group_by.as_deref(),
            step: self.step.as_deref(),
            share_unallocated: self.share_unallocated.unwrap_or(false),
            cost_center: self.cost_center.as_deref(),
            namespace: self.namespace.as_deref(),
        }
    }
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "The process is up", body = String)))]
async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: 200 once every source has been read completely and reconciled.
#[utoipa::path(
    get,
    path = "/readyz",
    responses(
        (status = 200, description = "Every source is synced"),
        (status = 503, description = "Still reading the sources", body = ErrorBody)
    )
)]
async fn readyz(State(state): State<AppState>) -> Response {
    match state.view().readiness.waiting_for() {
        None => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"ready": true})),
        )
            .into_response(),
        Some(waiting) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {waiting}"),
        ),
    }
}

/// The chargeback of SPEC §4.1 over the ledger and what runs now, as CSV or JSON.
#[utoipa::path(
    get,
    path = "/api/v1/chargeback",
    params(ChargebackParams),
    responses(
        (status = 200, description = "Chargeback rows (CSV: text/csv; JSON: lines, total, warnings)", content_type = "text/csv", body = String),
        (status = 400, description = "A parameter is wrong, or the report has more lines than `server.max_report_lines`", body = ErrorBody),
        (status = 401, description = "Auth is on and no accepted bearer token came", body = ErrorBody),
        (status = 403, description = "The token's user may not read chargebacks", body = ErrorBody)
    ),
    security((), ("bearer" = []))
)]
async fn chargeback(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    params: Result<Query<ChargebackParams>, QueryRejection>,
) -> Response {
    let Query(params) = match params {
        Ok(params) => params,
        Err(rejection) => return error(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    let format: Format = match params.format.as_deref().unwrap_or("csv").parse() {
        Ok(format) => format,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("format: {e}")),
    };
    let view = state.view();
    let (request, only) = match ReportRequest::parse(params.text(), view.as_of).and_then(|r| {
        let request = format.request(&r, params.group_by.is_some())?;
        Ok((request, r.only))
    }) {
        Ok(asked) => asked,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    // `Accept: application/vnd.apache.parquet` asks for Parquet (CSV and FOCUS rows).
    let parquet = format != Format::Json && accepts_parquet(&headers);
    if format == Format::Focus {
        // Reports run on the blocking pool, a few at a time, so that a month's FOCUS export
        // never holds up the threads that answer quota checks.
        let Ok(permit) = state.reports.clone().acquire_owned().await else {
            return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
        };
        return focus_stream(&state, view, (request, only), permit, parquet);
    }
    let focus = state.focus.clone();
    let content_type = if parquet {
        PARQUET
    } else {
        format.content_type()
    };
    let make = move |runtime: &_, archive: &Archive, card: &_| {
        archive.report_of(runtime, &view, card, &request)
    };
    streamed_report(&state, content_type, make, move |report, body| {
        if parquet {
            write_chargeback_parquet(&report.into_chargeback(), body)
        } else {
            write_report(report, format, &focus, body)
        }
    })
    .await
}

/// Cost per million tokens per served model (and any chargeback key), as CSV or JSON: the
/// token report of `tollgate report --tokens`.
#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    params(ChargebackParams),
    responses(
        (status = 200, description = "Token report rows (CSV: text/csv; JSON: lines, total, warnings); group_by also takes served_model (default served_model,cost_center,namespace); format is csv or json", content_type = "text/csv", body = String),
        (status = 400, description = "A parameter is wrong", body = ErrorBody),
        (status = 401, description = "Auth is on and no accepted bearer token came", body = ErrorBody),
        (status = 403, description = "The token's user may not read chargebacks", body = ErrorBody)
    ),
    security((), ("bearer" = []))
)]
async fn tokens(
    State(state): State<AppState>,
    params: Result<Query<ChargebackParams>, QueryRejection>,
) -> Response {
    let Query(params) = match params {
        Ok(params) => params,
        Err(rejection) => return error(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    let format = match params.format.as_deref().unwrap_or("csv").parse() {
        Ok(format @ (Format::Csv | Format::Json)) => format,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "format: a token report is csv or json",
            );
        }
    };
    let view = state.view();
    let request = match TokenRequest::parse(params.text(), view.as_of) {
        Ok(request) => request,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let make = move |runtime: &_, archive: &Archive, card: &_| {
        let sets = view.ledger.as_refs();
        let sources = archive.sources(&sets, view.ledger.from, card);
        sources.token_report(runtime, &request, archive.input_weight)
    };
    streamed_report(
        &state,
        format.content_type(),
        make,
        move |report, body| match format {
            Format::Json => write_tokens_json(&report, body),
            _ => write_tokens_csv(&report, body),
        },
    )
    .await
}

/// A report made as [`super::state::report_job`] makes one (on the blocking pool at background priority,
/// under `server.reports_at_once`, a failure the JSON error to answer), then written to the
/// client by `write` as it is made, still under the limit: neither the text nor more reports
/// than the limit are ever held at once.
async fn streamed_report<R: Send + 'static>(
    state: &AppState,
    content_type: &'static str,
    make: impl FnOnce(&tokio::runtime::Handle, &Archive, &RateCard) -> Result<R, ReportError>
    + Send
    + 'static,
    write: impl FnOnce(R, &mut BodyWriter) -> std::io::Result<()> + Send + 'static,
) -> Response {
    let Ok(permit) = state.reports.clone().acquire_owned().await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    };
    let (archive, card) = (state.archive.clone(), state.card.clone());
    let runtime = tokio::runtime::Handle::current();
    let (made, ready) = tokio::sync::oneshot::channel();
    let body = streamed_body("the report", move |body| {
        let _permit = permit;
        match make(&runtime, &archive, &card) {
            Ok(report) => {
                let _ = made.send(Ok(()));
                Ok(write(report, body)?)
            }
            Err(e) => {
                let _ = made.send(Err((status_of(&e), e.to_string())));
                Ok(())
            }
        }
    });
    match ready.await {
        Ok(Ok(())) => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        Ok(Err((status, e))) => error(status, e),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the report failed: it stopped before it was made",
        ),
    }
}

/// Bytes of a streamed body are handed over in chunks of about this size.
const BODY_CHUNK: usize = 256 * 1024;

/// A `Write` that hands what is written to a streamed HTTP body, a chunk at a time. Writing
/// fails once the client has gone away, which stops the work behind it.
struct BodyWriter {
    sender: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    buffer: Vec<u8>,
}

impl std::io::Write for BodyWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= BODY_CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(BODY_CHUNK),
        ));
        self.sender.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

/// The media type of Parquet.
const PARQUET: &str = "application/vnd.apache.parquet";

/// Whether the request's `Accept` names Parquet's media type, other than as not acceptable
/// (`q=0`, RFC 9110 §12.4.2).
fn accepts_parquet(headers: &axum::http::HeaderMap) -> bool {
    let ranges = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','));
    ranges.into_iter().any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default();
        let refused = parts.any(|p| {
            p.split_once('=').is_some_and(|(name, q)| {
                name.trim().eq_ignore_ascii_case("q")
                    && q.trim()
                        .parse::<rust_decimal::Decimal>()
                        .is_ok_and(|q| q.is_zero())
            })
        });
        media.eq_ignore_ascii_case(PARQUET) && !refused
    })
}

/// The FOCUS export as a streamed body (CSV, or Parquet a row group per charge period): rows
/// are priced and written a charge period at a time on a background thread, so neither the
/// export nor its memory grows with the window. A failure after the first rows ends the body
/// early (and is logged).
fn focus_stream(
    state: &AppState,
    view: Arc<View>,
    (request, only): (ReportRequest, LineFilter),
    permit: tokio::sync::OwnedSemaphorePermit,
    parquet: bool,
) -> Response {
    let runtime = tokio::runtime::Handle::current();
    let (archive, card, focus) = (
        state.archive.clone(),
        state.card.clone(),
        state.focus.clone(),
    );
    let body = streamed_body("the FOCUS export", move |body| {
        let _permit = permit;
        let sets = view.ledger.as_refs();
        let sources = archive.sources(&sets, view.ledger.from, &card);
        let encoding = FocusEncoding::new(parquet, card.currency().minor_units());
        let settings = (&*focus, encoding, &only);
        let warnings = sources.export_focus(&runtime, &request, settings, body)?;
        warnings.texts().iter().for_each(|w| tracing::warn!("{w}"));
        Ok(())
    });
    let content_type = if parquet {
        PARQUET
    } else {
        Format::Focus.content_type()
    };
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// A body `write` writes on a background thread, handed to the client a chunk at a time as
/// chunks fill, so that the whole is never held. A failure after the first bytes ends the body
/// early (and is logged, naming `what`).
fn streamed_body(
    what: &'static str,
    write: impl FnOnce(&mut BodyWriter) -> Result<(), ReportError> + Send + 'static,
) -> Body {
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    let failed = sender.clone();
    super::background::spawn_background(move || {
        let mut body = BodyWriter {
            sender,
            buffer: Vec::with_capacity(BODY_CHUNK),
        };
        let written = write(&mut body).and_then(|()| Ok(std::io::Write::flush(&mut body)?));
        if let Err(e) = written {
            tracing::warn!(error = %e, "{what} stopped before its end");
            let _ = failed.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let chunks = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    Body::from_stream(chunks)
}

/// The body of a quota check (Kyverno `apiCall` `data`), with or without a Content-Type.
#[derive(ToSchema)]
#[allow(dead_code)] // documentation only: bodies are read by `admission::quota_request`
struct QuotaCheckBody {
    /// Namespace the pod would run in (default: the pod's).
    namespace: Option<String>,
    /// The Pod object, as Kyverno's `{{ request.object }}`.
    pod: Option<serde_json::Value>,
    /// A cost center overriding the pod's and the namespace's.
    #[schema(rename = "costCenter")]
    cost_center: Option<String>,
    /// Instead of `pod`: a number of GPUs (a number or a decimal string).
    gpus: Option<String>,
    /// With `gpus`: the GPU model or product (default: the costliest in the rate card).
    #[schema(rename = "gpuModel")]
    gpu_model: Option<String>,
    /// Decide without holding the pod against its budget.
    #[schema(rename = "dryRun")]
    dry_run: Option<bool>,
}

async fn read_body(
    state: &AppState,
    body: Body,
    started: Instant,
) -> Result<axum::body::Bytes, Response> {
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            state.quota.record_error(started);
            error(
                StatusCode::BAD_REQUEST,
                "body: unreadable or larger than 1 MiB",
            )
        })
}

/// May this pod start within its budgets? (SPEC §5; Kyverno `apiCall` compatible.)
#[utoipa::path(
    post,
    path = "/api/v1/quota/check",
    request_body(content = QuotaCheckBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The decision, as in SPEC §5", body = QuotaDecision),
        (status = 400, description = "The body is wrong", body = ErrorBody),
        (status = 401, description = "Auth is on and no accepted bearer token came", body = ErrorBody),
        (status = 403, description = "The token's user may not ask quota checks", body = ErrorBody)
    ),
    security((), ("bearer" = []))
)]
async fn quota_check(State(state): State<AppState>, body: Body) -> Response {
    let started = Instant::now();
    let bytes = match read_body(&state, body, started).await {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    let request = match quota_request(&bytes) {
        Ok(request) => request,
        Err(e) => {
            state.quota.record_error(started);
            return error(StatusCode::BAD_REQUEST, e);
        }
    };
    match state.quota.check(&state.view(), &state.card, &request) {
        Ok(decision) => axum::Json(decision).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// The same decision as a native `ValidatingAdmissionWebhook` (`admission.k8s.io/v1`).
#[utoipa::path(
    post,
    path = "/admission/v1/validate",
    request_body(content = serde_json::Value, description = "AdmissionReview", content_type = "application/json"),
    responses(
        (status = 200, description = "AdmissionReview with the response: uid copied, 403 and message on deny, warnings"),
        (status = 400, description = "Not an AdmissionReview", body = ErrorBody)
    )
)]
async fn admission_validate(State(state): State<AppState>, body: Body) -> Response {
    let started = Instant::now();
    let bytes = match read_body(&state, body, started).await {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    let (uid, request) = match admission_review(&bytes) {
        Ok(Review::Check { uid, request }) => (uid, request),
        Ok(Review::Pass { uid }) => {
            return axum::Json(admission_response(&uid, None)).into_response();
        }
        Err(e) => {
            state.quota.record_error(started);
            return error(StatusCode::BAD_REQUEST, e);
        }
    };
    match state.quota.check(&state.view(), &state.card, &request) {
        Ok(decision) => axum::Json(admission_response(&uid, Some(&decision))).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// Prometheus metrics (SPEC §4.4).
#[utoipa::path(
    get,
    path = "/metrics",
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String))
)]
async fn metrics_text(State(state): State<AppState>) -> Response {
    let view = state.view();
    let card = state.card.clone();
    let quota = state.quota.clone();
    let archive = state.archive.clone();
    match super::background::spawn_background(move || {
        metrics::render(&view, &card, &quota, &archive)
    })
    .await
    {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("metrics failed: {e}"),
        ),
    }
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", responses((status = 200, description = "OpenAPI 3.1 document")))]
async fn openapi() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such route: see /api/v1/openapi.json",
    )
}

/// The OpenAPI description of every route.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tollgate",
        description = "GPU cost chargeback, metrics and budgets for Kubernetes"
    ),
    paths(
        healthz,
        readyz,
        chargeback,
        tokens,
        quota_check,
        admission_validate,
        metrics_text,
        openapi
    ),
    components(schemas(ErrorBody, QuotaCheckBody, QuotaDecision)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// The `bearer` security scheme the guarded routes name (needed only when `[auth]` is on).
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        openapi
            .components
            .get_or_insert_default()
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
    }
}

/// The router of the HTTP port: every route.
pub fn router(state: AppState) -> Router {
    let guard = |scope| from_fn_with_state((state.auth.clone(), scope), require);
    let quota = state.quota.clone();
    Router::new()
        .route("/", get(super::console::console))
        .route("/console/session", post(super::console::session))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route(
            "/api/v1/chargeback",
            get(chargeback).layer(guard(Scope::Finance)),
        )
        .route("/api/v1/tokens", get(tokens).layer(guard(Scope::Finance)))
        .route(
            "/api/v1/quota/check",
            post(quota_check).layer(guard(Scope::Quota)),
        )
        .route("/admission/v1/validate", post(admission_validate))
        .route("/metrics", get(metrics_text))
        .route("/api/v1/openapi.json", get(openapi))
        .fallback(not_found)
        .layer(from_fn_with_state(quota, catch_panic))
        .with_state(state)
}

/// The router of the HTTPS port: the admission webhook and the probes, nothing else. The
/// NetworkPolicy opens that port to the API server's callers; chargebacks and the Kyverno
/// quota route stay on the HTTP port.
pub fn webhook_router(state: AppState) -> Router {
    let quota = state.quota.clone();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/admission/v1/validate", post(admission_validate))
        .fallback(not_found)
        .layer(from_fn_with_state(quota, catch_panic))
        .with_state(state)
}

/// The last line of defence: a handler that panics answers a JSON 500 (counted as a quota
/// `decision="error"` on the quota routes) instead of resetting the connection.
async fn catch_panic(
    State(quota): State<Arc<QuotaGate>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use futures::FutureExt;
    let started = Instant::now();
    let decides = matches!(
        request.uri().path(),
        "/api/v1/quota/check" | "/admission/v1/validate"
    );
    let path = request.uri().path().to_string();
    match std::panic::AssertUnwindSafe(next.run(request))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(path, panic = what, "a request handler panicked");
            if decides {
                quota.record_error(started);
            }
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error: this request could not be answered; the service's log says why",
            )
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    #[test]
    fn parquet_is_answered_where_accept_names_it_and_does_not_refuse_it() {
        let accepts = |values: &[&str]| {
            let mut headers = axum::http::HeaderMap::new();
            for value in values {
                headers.append(header::ACCEPT, value.parse().unwrap());
            }
            accepts_parquet(&headers)
        };
        assert!(accepts(&["application/vnd.apache.parquet"]));
        assert!(accepts(&["Application/Vnd.Apache.Parquet"]));
        assert!(accepts(&[
            "text/csv;q=0.9, application/vnd.apache.parquet;q=0.5"
        ]));
        assert!(accepts(&["text/csv", "application/vnd.apache.parquet"]));
        // RFC 9110: q=0 is "not acceptable".
        assert!(!accepts(&["application/vnd.apache.parquet;q=0, text/csv"]));
        assert!(!accepts(&["application/vnd.apache.parquet ; Q=0.000"]));
        assert!(!accepts(&["application/vnd.apache.parquet-cousin"]));
        assert!(!accepts(&["*/*"]));
        assert!(!accepts(&[]));
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_json_500_and_counts_an_error() {
        let quota = Arc::new(QuotaGate::new(
            Vec::new(),
            crate::config::QuotaSettings::default(),
            "cost-center".into(),
        ));
        let app: Router = Router::new()
            .route(
                "/api/v1/quota/check",
                post(|| async {
                    if true {
                        panic!("a defect");
                    }
                    "unreachable"
                }),
            )
            .layer(from_fn_with_state(quota.clone(), catch_panic));
        let response = app
            .oneshot(
                Request::post("/api/v1/quota/check")
                    .body(Body::from("{}"))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
            serde_json::json!({"error": "internal error: this request could not be answered; the service's log says why"})
        );
        let mut registry = prometheus_client::registry::Registry::default();
        quota.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("tollgate_quota_checks_total{decision=\"error\"} 1"),
            "{text}"
        );
    }
}
