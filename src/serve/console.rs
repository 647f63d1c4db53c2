//! `GET /`: the console page, from the same engine and the same stored days as the API. Its
//! reports run on the blocking pool under the report limit, like any chargeback.

use std::sync::Arc;

use axum::Form;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::archive::Archive;
use super::auth::{Refusal, SESSION_COOKIE, Scope, credentials, session_value};
use super::quota::QuotaGate;
use super::state::{AppState, report_job};
use super::view::View;
use crate::budget::{BudgetScope, month_of};
use crate::console::{BudgetLine, Drill, Gate, Page, Row, TokenRow, Typed, login, refused, render};
use crate::cost::{
    CostOverflow, CostReport, GroupBy, GroupKey, LineFilter, ReportRequest, RequestText,
};
use crate::pricing::RateCard;
use crate::reporting::ReportError;
use crate::time::{Interval, Step, UnixSeconds};

/// The page's query: the window and the drill-down.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ConsoleParams {
    from: Option<String>,
    to: Option<String>,
    cost_center: Option<String>,
    namespace: Option<String>,
    group_by: Option<String>,
}

impl ConsoleParams {
    /// What the query asks of the page, or why it cannot be asked (for a 400).
    fn asked(&self, as_of: UnixSeconds) -> Result<Asked, String> {
        let text = RequestText {
            from: self.from.as_deref(),
            to: self.to.as_deref(),
            group_by: None,
            ..RequestText::default()
        };
        let window = ReportRequest::parse(text, as_of)
            .map_err(|e| e.to_string())?
            .window;
        let grouping = match self
            .group_by
            .as_deref()
            .map(str::trim)
            .filter(|g| !g.is_empty())
        {
            None => None,
            Some(text) => Some(
                text.parse::<GroupBy>()
                    .map_err(|e| format!("group_by: {e}"))?
                    .keys()
                    .to_vec(),
            ),
        };
        let drill = Drill {
            cost_center: self.cost_center.clone().filter(|c| !c.is_empty()),
            namespace: self.namespace.clone().filter(|n| !n.is_empty()),
        };
        Ok(Asked {
            window,
            drill,
            grouping,
        })
    }

    /// The query as it was typed.
    fn typed(&self) -> Typed<'_> {
        Typed {
            from: self.from.as_deref(),
            to: self.to.as_deref(),
            group_by: self.group_by.as_deref(),
            cost_center: self.cost_center.as_deref(),
            namespace: self.namespace.as_deref(),
        }
    }
}

/// What the page was asked: its window, drill-down and grouping.
struct Asked {
    window: Interval,
    drill: Drill,
    grouping: Option<Vec<GroupKey>>,
}

/// Rows listed per table where a list could be long (idle workloads, unallocated nodes).
const TOP: usize = 15;

/// Rows a drill-down level lists at most (a namespace of thousands of pods); the download has
/// them all.
const MOST_ROWS: usize = 200;

/// The console's sign-in form.
#[derive(Debug, Deserialize)]
pub(super) struct SessionForm {
    token: String,
}

/// The sign-in page, with why the last attempt was refused.
fn sign_in(status: StatusCode, refused: Option<&str>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        login(refused),
    )
        .into_response()
}

/// What the console could not show, and why: a page for people, as its others are.
fn not_shown(status: StatusCode, why: &str, params: &ConsoleParams) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        refused(why, &params.typed()),
    )
        .into_response()
}

/// `POST /console/session`: a token that reads chargebacks becomes the browser's session.
pub(super) async fn session(
    State(state): State<AppState>,
    Form(form): Form<SessionForm>,
) -> Response {
    let token = form.token.trim();
    match state
        .auth
        .check(Scope::Finance, Some(&format!("Bearer {token}")))
        .await
    {
        Ok(()) => (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, "/".to_string()),
                (
                    header::SET_COOKIE,
                    format!(
                        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
                        session_value(token)
                    ),
                ),
            ],
        )
            .into_response(),
        Err(Refusal::Unauthenticated(why)) => sign_in(StatusCode::UNAUTHORIZED, Some(&why)),
        Err(Refusal::Forbidden(why)) => sign_in(StatusCode::FORBIDDEN, Some(&why)),
    }
}

pub(super) async fn console(
    State(state): State<AppState>,
    request: Parts,
    params: Result<Query<ConsoleParams>, QueryRejection>,
) -> Response {
    match state
        .auth
        .check(Scope::Finance, credentials(&request).as_deref())
        .await
    {
        Ok(()) => {}
        Err(Refusal::Unauthenticated(_)) => return sign_in(StatusCode::UNAUTHORIZED, None),
        Err(Refusal::Forbidden(why)) => return sign_in(StatusCode::FORBIDDEN, Some(&why)),
    }
    let Query(params) = match params {
        Ok(params) => params,
        Err(rejection) => {
            let why = rejection.body_text();
            return not_shown(StatusCode::BAD_REQUEST, &why, &ConsoleParams::default());
        }
    };
    let view = state.view();
    let asked = match params.asked(view.as_of) {
        Ok(asked) => asked,
        Err(why) => return not_shown(StatusCode::BAD_REQUEST, &why, &params),
    };
    let quota = state.quota.clone();
    let page = report_job(&state, move |runtime, archive, card| {
        gather(runtime, &view, archive, card, &quota, asked)
    })
    .await;
    match page {
        Ok(page) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            render(&page),
        )
            .into_response(),
        Err((status, why)) => not_shown(status, &why, &params),
    }
}

fn rows(report: &CostReport) -> Vec<Row> {
    report
        .chargeback()
        .lines
        .into_iter()
        .map(|line| Row {
            group: line.group.to_vec(),
            figures: line.figures,
        })
        .collect()
}

fn by_cost_desc(rows: &mut [Row], pick: fn(&Row) -> Option<Decimal>) {
    rows.sort_by(|a, b| pick(b).cmp(&pick(a)).then_with(|| a.group.cmp(&b.group)));
}

/// The last hour's cost per million tokens of each served model, by cost center and namespace,
/// the costliest first, as the archive last priced it: a look-up, so that the page costs no
/// pricing of every pod's hours over its window.
fn served_models(archive: &Archive) -> Vec<TokenRow> {
    let served = archive
        .served_models
        .read()
        .unwrap_or_else(|p| p.into_inner());
    let mut rows: Vec<TokenRow> = served
        .iter()
        .map(|line| TokenRow {
            period: line.period,
            group: line.group.clone(),
            figures: line.figures.clone(),
            input: line.input,
            output: line.output,
            per_million: (line.per_million.tokens, line.per_million.output_tokens),
        })
        .collect();
    rows.sort_by(|a, b| (b.figures.cost.cmp(&a.figures.cost)).then_with(|| a.group.cmp(&b.group)));
    rows.truncate(MOST_ROWS);
    rows
}

fn gather(
    runtime: &tokio::runtime::Handle,
    view: &View,
    archive: &Archive,
    card: &RateCard,
    quota: &Arc<QuotaGate>,
    asked: Asked,
) -> Result<Page, ReportError> {
    let Asked {
        window,
        drill,
        grouping,
    } = asked;
    // A report grouped by `group_by` (keys the API accepts) over `window`.
    let filtered = |window, step, group_by: &[GroupKey], only| -> Result<CostReport, ReportError> {
        let request = ReportRequest {
            window,
            step,
            group_by: GroupBy::new(group_by.to_vec())?,
            share_unallocated: false,
            only,
        };
        archive.report_of(runtime, view, card, &request)
    };
    let report = |window, step, group_by: &[GroupKey]| {
        filtered(window, step, group_by, LineFilter::default())
    };
    // The notes of every report on the page; the unpriced hours are the models report's,
    // the whole window's, of which the others' are parts.
    let mut notes: Vec<String> = Vec::new();

    // Only the level's lines: a namespace's pods, not a month of every pod.
    let level = filtered(window, Step::Window, drill.group_by(), drill.filter())?;
    notes.extend(level.warnings.notes().cloned());
    let mut spend: Vec<Row> = rows(&level);
    by_cost_desc(&mut spend, |r| r.figures.cost);
    let spend_hidden = spend.len().saturating_sub(MOST_ROWS);
    spend.truncate(MOST_ROWS);

    let grouped = match grouping {
        Some(keys) => {
            let asked = report(window, Step::Window, &keys)?;
            notes.extend(asked.warnings.notes().cloned());
            let mut rows = rows(&asked);
            by_cost_desc(&mut rows, |r| r.figures.cost);
            rows.truncate(MOST_ROWS);
            Some((keys, rows))
        }
        None => None,
    };

    let models = report(
        window,
        Step::Window,
        &[GroupKey::GpuModel, GroupKey::PricingTier],
    )?;
    let mut warnings = models.warnings.clone();
    warnings.extend(notes);
    let mut by_model = rows(&models);
    for row in &mut by_model {
        if let Some(tier) = row.group.get_mut(1).filter(|t| t.is_empty()) {
            // Days rolled up before tiers were kept.
            *tier = "not recorded".to_string();
        }
    }
    by_cost_desc(&mut by_model, |r| r.figures.cost);

    let namespaces = report(window, Step::Window, &[GroupKey::Namespace])?;
    let mut idle: Vec<Row> = rows(&namespaces)
        .into_iter()
        .filter(|r| r.group.first().is_some_and(|n| !n.is_empty()))
        .collect();
    by_cost_desc(&mut idle, |r| r.figures.idle_cost);
    idle.truncate(TOP);

    let capacity = report(
        window,
        Step::Window,
        &[GroupKey::CostCenter, GroupKey::GpuModel, GroupKey::Node],
    )?;
    let mut unallocated: Vec<Row> = rows(&capacity)
        .into_iter()
        .filter(|r| {
            r.group
                .first()
                .is_some_and(|c| c == crate::allocation::UNALLOCATED)
        })
        .map(|r| Row {
            group: r.group[1..].to_vec(),
            figures: r.figures,
        })
        .collect();
    by_cost_desc(&mut unallocated, |r| r.figures.cost);
    unallocated.truncate(TOP);

    // Budgets: this month's spend, burn and projection as decisions see them, and the days so
    // far from the same engine.
    let month = month_of(view.as_of);
    let so_far = Interval::new(month.start, view.as_of.max(month.start + 1));
    let daily = report(
        so_far,
        Step::Day,
        &[GroupKey::CostCenter, GroupKey::Namespace],
    )?;
    let hours_left = view.spend.hours_left();
    let budgets = quota
        .budgets()
        .iter()
        .map(|budget| {
            let (usage, column, name) = match &budget.scope {
                BudgetScope::CostCenter(name) => (view.spend.cost_center(name), 0, name),
                BudgetScope::Namespace(name) => (view.spend.namespace(name), 1, name),
            };
            // Exact, each day's total rounded once where it is shown: its last day is the
            // spent beside it to the cent (the days' rounded lines summed could be cents off).
            let mut by_day: Vec<Decimal> = Vec::new();
            let mut total = Decimal::ZERO;
            for period in Step::Day.periods(so_far) {
                total += daily
                    .lines
                    .iter()
                    .filter(|l| l.period == period && l.group[column] == *name)
                    .filter_map(|l| l.figures.cost)
                    .sum::<Decimal>();
                by_day.push(total);
            }
            let projected = usage
                .projected(Decimal::ZERO, hours_left)
                .ok_or(CostOverflow)?;
            Ok(BudgetLine {
                scope: budget.scope.to_string(),
                spent: usage.spent,
                projected,
                budget: budget.monthly,
                by_day,
            })
        })
        .collect::<Result<Vec<BudgetLine>, CostOverflow>>()?;

    // Decisions on a month whose history is not all stored yet are unsure: the page says so.
    let incomplete = view.spend.incomplete.iter();
    warnings
        .extend(incomplete.map(|missing| format!("Budgets see an incomplete month: {missing}")));

    let activity = quota.activity();
    Ok(Page {
        as_of: view.as_of,
        window,
        currency: (
            card.currency().code().to_string(),
            card.currency().minor_units(),
        ),
        rounding: card.rounding(),
        drill,
        spend,
        spend_hidden,
        grouped,
        budgets,
        month_days: usize::try_from((month.end - month.start) / 86_400).unwrap_or(31),
        by_model,
        idle,
        unallocated,
        tokens: served_models(archive),
        gate: Gate {
            per_second: activity.per_second(),
            p99_ms: activity.p99().map(|d| d.as_secs_f64() * 1000.0),
            recent: activity.recent(),
        },
        warnings: warnings.texts(),
    })
}
