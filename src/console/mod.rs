//! The console: one page people open (`GET /` on `serve`) with spend by cost center against its
//! budget, the burn-down over the month, the drill-down from cost center to namespace to pod,
//! idle and unallocated GPUs, spend by model and tier, the cost per million tokens of each served
//! model, and what the admission gate did lately.
//!
//! Pure: [`render`] turns a [`Page`] — figures the cost engine already computed and rounded, as
//! the API serves them — into HTML with inline CSS and server-drawn SVG (`svg`), no script and
//! no asset from anywhere else. Every chart has its figures in a table.

mod html;
mod svg;

use std::fmt::Write;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::cost::{Figures, GroupKey, LineFilter};
use crate::money::Rounding;
use crate::time::{Interval, UnixSeconds, format_time};

pub use html::{escape, query_value};

/// Where the drill-down stands: the fleet, a cost center, or a namespace of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Drill {
    /// The cost center opened, if any.
    pub cost_center: Option<String>,
    /// The namespace opened (of that cost center), if any.
    pub namespace: Option<String>,
}

impl Drill {
    /// The chargeback grouping that lists this level's rows.
    pub fn group_by(&self) -> &'static [GroupKey] {
        match (&self.cost_center, &self.namespace) {
            (None, _) => &[GroupKey::CostCenter],
            (Some(_), None) => &[GroupKey::CostCenter, GroupKey::Namespace],
            (Some(_), Some(_)) => &[GroupKey::CostCenter, GroupKey::Namespace, GroupKey::Pod],
        }
    }

    /// The lines of this level: those of the cost center and namespace opened.
    pub fn filter(&self) -> LineFilter {
        LineFilter {
            cost_center: self.cost_center.clone(),
            namespace: self.namespace.clone(),
        }
    }
}

/// One printed line: its group values and rounded figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Group values, in the order the section asked.
    pub group: Vec<String>,
    /// Rounded figures, as the chargeback API prints them.
    pub figures: Figures,
}

/// One budget's month: exact figures, rounded when shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetLine {
    /// What it covers, as decisions name it (`cost center cc-100`).
    pub scope: String,
    /// Month-to-date spend.
    pub spent: Decimal,
    /// Spend projected to month end at the current burn.
    pub projected: Decimal,
    /// The monthly budget.
    pub budget: Decimal,
    /// Cumulative spend at the end of each day of the month so far.
    pub by_day: Vec<Decimal>,
}

/// One decision of the gate, as the console lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecentDecision {
    /// When (Unix seconds).
    pub at: i64,
    /// The pod's namespace.
    pub namespace: String,
    /// Who would pay.
    pub cost_center: String,
    /// Allowed or not.
    pub allowed: bool,
    /// The decision's sentence.
    pub message: String,
}

/// What the admission gate did lately.
#[derive(Clone, Debug, Default)]
pub struct Gate {
    /// Checks per second over the last minute.
    pub per_second: f64,
    /// p99 of deciding over the last checks, in milliseconds.
    pub p99_ms: Option<f64>,
    /// The last decisions, newest first.
    pub recent: Vec<RecentDecision>,
}

/// What a served model cost per million tokens, for one cost center and namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRow {
    /// The hour the figures are of.
    pub period: Interval,
    /// Served model, cost center, namespace.
    pub group: Vec<String>,
    /// Rounded GPU figures.
    pub figures: Figures,
    /// Prompt tokens.
    pub input: u64,
    /// Generated tokens.
    pub output: u64,
    /// Cost per million tokens, and per million output tokens (`None`: no tokens to divide by).
    pub per_million: (Option<Decimal>, Option<Decimal>),
}

/// Everything the page shows.
#[derive(Clone, Debug)]
pub struct Page {
    /// When the figures are as of.
    pub as_of: UnixSeconds,
    /// The window of the spend sections.
    pub window: Interval,
    /// The rate card's currency code and its minor units.
    pub currency: (String, u32),
    /// How money is rounded for print.
    pub rounding: Rounding,
    /// The drill-down level.
    pub drill: Drill,
    /// This level's rows (cost centers, a cost center's namespaces, or a namespace's pods), the
    /// costliest first.
    pub spend: Vec<Row>,
    /// Rows of this level left out of `spend` (in the CSV download).
    pub spend_hidden: usize,
    /// Spend grouped as asked (`group_by`, any keys the API takes), with those keys.
    pub grouped: Option<(Vec<GroupKey>, Vec<Row>)>,
    /// Budgets with their month.
    pub budgets: Vec<BudgetLine>,
    /// Days in the month of `as_of`.
    pub month_days: usize,
    /// Spend by GPU model and tier.
    pub by_model: Vec<Row>,
    /// Idle cost by namespace.
    pub idle: Vec<Row>,
    /// Unallocated capacity by model and node.
    pub unallocated: Vec<Row>,
    /// The last hour's cost per million tokens by served model, cost center and namespace, the
    /// costliest first (empty when no token counter names a pod).
    pub tokens: Vec<TokenRow>,
    /// The gate.
    pub gate: Gate,
    /// What the engine warned about.
    pub warnings: Vec<String>,
}

const STYLE: &str = include_str!("console.css");

fn number(value: Option<Decimal>) -> String {
    value.map_or_else(|| "—".to_string(), |v| v.to_string())
}

fn float(value: Option<Decimal>) -> f64 {
    value.and_then(|v| v.to_f64()).unwrap_or(0.0)
}

/// Utilization of a row: used ÷ all GPU-hours, as a percentage with one decimal.
fn utilization(figures: &Figures) -> String {
    match figures.used_gpu_hours {
        Some(used) if !figures.gpu_hours.is_zero() => {
            format!(
                "{} %",
                (used / figures.gpu_hours * Decimal::ONE_HUNDRED).round_dp(1)
            )
        }
        _ => "—".into(),
    }
}

/// A cost cell: the amount, or "unpriced" with the hours the rate card has no price for.
fn cost_cell(figures: &Figures) -> String {
    match figures.cost {
        Some(cost) if figures.unpriced_gpu_hours.is_zero() => cost.to_string(),
        Some(cost) => format!(
            "{cost} <span class=\"warn\">+ {} h unpriced</span>",
            figures.unpriced_gpu_hours
        ),
        None => format!(
            "<span class=\"warn\">unpriced ({} h)</span>",
            figures.unpriced_gpu_hours
        ),
    }
}

impl Page {
    fn money(&self, amount: Decimal) -> String {
        format!(
            "{} {}",
            self.rounding.money(amount, self.currency.1),
            escape(&self.currency.0)
        )
    }

    /// The page's own URL with `params` (and the window).
    fn link(&self, params: &[(&str, &str)]) -> String {
        let mut url = format!(
            "/?from={}&amp;to={}",
            query_value(&format_time(self.window.start)),
            query_value(&format_time(self.window.end))
        );
        for (key, value) in params {
            let _ = write!(url, "&amp;{key}={}", query_value(value));
        }
        url
    }

    /// The grouping on screen: the one asked, else the drill-down's.
    fn group_by_text(&self) -> String {
        let keys = match &self.grouped {
            Some((keys, _)) => keys.as_slice(),
            None => self.drill.group_by(),
        };
        keys.iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The token report API for the window, as CSV.
    fn tokens_download(&self) -> String {
        format!(
            "/api/v1/tokens?format=csv&amp;from={}&amp;to={}",
            query_value(&format_time(self.window.start)),
            query_value(&format_time(self.window.end)),
        )
    }

    /// The chargeback API for the window, in `format`: CSV grouped as the drill-down shows it,
    /// FOCUS as its rows always are (one per resource and charge period).
    fn download(&self, format: &str) -> String {
        let mut url = format!(
            "/api/v1/chargeback?format={format}&amp;from={}&amp;to={}",
            query_value(&format_time(self.window.start)),
            query_value(&format_time(self.window.end)),
        );
        if format != "focus" {
            let _ = write!(url, "&amp;group_by={}", query_value(&self.group_by_text()));
        }
        // What is on screen: the drill-down's lines (a grouping asked for shows them all).
        if format == "focus" || self.grouped.is_none() {
            for (key, value) in self.drill.filter().wanted() {
                let _ = write!(url, "&amp;{key}={}", query_value(value));
            }
        }
        url
    }
}

/// The page as HTML.
pub fn render(page: &Page) -> String {
    let mut out = String::with_capacity(32 * 1024);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Tollgate — GPU spend</title><style>{STYLE}</style></head><body>\
<a class=\"skip\" href=\"#spend\">Skip to spend</a>\
<header><h1>Tollgate</h1><p>GPU spend as of <time>{}</time>, in {}</p></header><main>",
        format_time(page.as_of),
        escape(&page.currency.0)
    );
    window_form(page, &mut out);
    budgets(page, &mut out);
    spend(page, &mut out);
    grouped(page, &mut out);
    idle_and_unallocated(page, &mut out);
    models(page, &mut out);
    tokens(page, &mut out);
    gate(page, &mut out);
    if !page.warnings.is_empty() {
        out.push_str("<section><h2>Warnings</h2><ul>");
        for warning in &page.warnings {
            let _ = write!(out, "<li>{}</li>", escape(warning));
        }
        out.push_str("</ul></section>");
    }
    out.push_str("</main></body></html>");
    out
}

/// The page a browser gets when `[auth]` is on and it has no token yet (or a refused one):
/// a form that keeps the token in a session cookie.
pub fn login(refused: Option<&str>) -> String {
    let refused = refused
        .map(|r| format!("<p class=\"over\" role=\"alert\">{}</p>", escape(r)))
        .unwrap_or_default();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Tollgate — sign in</title><style>{STYLE}</style></head><body>\
<header><h1>Tollgate</h1><p>GPU spend is for readers with a token</p></header><main>\
<form class=\"window\" method=\"post\" action=\"/console/session\">{refused}\
<label>Token <input name=\"token\" type=\"password\" autocomplete=\"current-password\" required></label> \
<button>Open the console</button></form>\
<p>The token is one the service accepts for chargebacks (<code>auth.tokens_file</code>, or a \
Kubernetes token of a finance reader); the browser keeps it for this site only.</p></main></body></html>"
    )
}

/// What a page was asked, as it was typed: what a refusal's form asks again with.
#[derive(Default)]
pub struct Typed<'a> {
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub group_by: Option<&'a str>,
    pub cost_center: Option<&'a str>,
    pub namespace: Option<&'a str>,
}

/// The page a browser gets when the console cannot show what was asked (a window or grouping
/// it does not take, a report too large to make): why, the form as it was `typed` to ask
/// again, and the way back.
pub fn refused(why: &str, typed: &Typed<'_>) -> String {
    let mut out = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Tollgate — not shown</title><style>{STYLE}</style></head><body>\
<header><h1>Tollgate</h1><p>GPU spend</p></header><main>\
<p class=\"over\" role=\"alert\">{}</p>",
        escape(why)
    );
    form_fields(typed, &mut out);
    out.push_str(
        " <button>Show</button></form>\
<p><a href=\"/\">This month's spend</a></p></main></body></html>",
    );
    out
}

/// The window form's opening and fields, filled as `typed`: from, to, the drill-down kept
/// hidden, and the grouping.
fn form_fields(typed: &Typed<'_>, out: &mut String) {
    let value = |text: Option<&str>| escape(text.unwrap_or_default());
    let _ = write!(
        out,
        "<form class=\"window\" method=\"get\" action=\"/\"><label>From <input name=\"from\" value=\"{}\"></label> \
<label>To <input name=\"to\" value=\"{}\"></label>",
        value(typed.from),
        value(typed.to)
    );
    for (name, value) in [
        ("cost_center", typed.cost_center),
        ("namespace", typed.namespace),
    ] {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            let _ = write!(
                out,
                "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                escape(value)
            );
        }
    }
    let _ = write!(
        out,
        " <label>Group by <input name=\"group_by\" value=\"{}\" placeholder=\"gpu_model,node\"></label>",
        value(typed.group_by)
    );
}

fn window_form(page: &Page, out: &mut String) {
    let (from, to) = (format_time(page.window.start), format_time(page.window.end));
    let grouping = page.grouped.as_ref().map(|_| page.group_by_text());
    let typed = Typed {
        from: Some(&from),
        to: Some(&to),
        group_by: grouping.as_deref(),
        cost_center: page.drill.cost_center.as_deref(),
        namespace: page.drill.namespace.as_deref(),
    };
    form_fields(&typed, out);
    let _ = write!(
        out,
        " <button>Show</button> <a href=\"{}\">Download CSV</a> <a href=\"{}\">Download FOCUS</a></form>",
        page.download("csv"),
        page.download("focus")
    );
}

fn budgets(page: &Page, out: &mut String) {
    out.push_str("<section id=\"budgets\"><h2>Budgets this month</h2>");
    if page.budgets.is_empty() {
        out.push_str("<p>No budget is configured.</p></section>");
        return;
    }
    let mut rows = Vec::new();
    for b in &page.budgets {
        let label = format!(
            "{}: spent {}, projected {} of a {} budget",
            b.scope,
            page.money(b.spent),
            page.money(b.projected),
            page.money(b.budget)
        );
        let headroom = b.budget - b.projected;
        let over = headroom.is_sign_negative();
        let bar = svg::budget_bar(
            float(Some(b.spent)),
            float(Some(b.projected)),
            float(Some(b.budget)),
            over,
            &label,
        );
        let class = if over { " class=\"over\"" } else { "" };
        rows.push(vec![
            escape(&b.scope),
            page.money(b.spent),
            page.money(b.projected),
            page.money(b.budget),
            format!("<span{class}>{}</span>", page.money(headroom)),
            bar,
        ]);
    }
    out.push_str(&html::table(
        "Spent and projected to month end against each budget",
        &["budget", "spent", "projected", "budget", "headroom", ""],
        &rows,
        1,
    ));
    out.push_str("<h3>Burn-down</h3><div class=\"charts\">");
    for b in &page.budgets {
        let by_day: Vec<f64> = b.by_day.iter().map(|d| float(Some(*d))).collect();
        let label = format!(
            "{}: cumulative spend by day, projected {} at month end against {}",
            b.scope,
            page.money(b.projected),
            page.money(b.budget)
        );
        let chart = svg::burn_down(
            &by_day,
            page.month_days,
            float(Some(b.projected)),
            float(Some(b.budget)),
            &label,
        );
        let rows: Vec<Vec<String>> = b
            .by_day
            .iter()
            .enumerate()
            .map(|(day, total)| vec![format!("{}", day + 1), page.money(*total)])
            .collect();
        let _ = write!(
            out,
            "<figure><figcaption>{}</figcaption>{chart}<details><summary>Figures</summary>{}</details></figure>",
            escape(&b.scope),
            html::table("Spent by the end of each day", &["day", "spent"], &rows, 1)
        );
    }
    out.push_str("</div></section>");
}

fn spend(page: &Page, out: &mut String) {
    let drill = &page.drill;
    let (title, head) = match (&drill.cost_center, &drill.namespace) {
        (None, _) => ("Spend by cost center".to_string(), "cost center"),
        (Some(cc), None) => (
            format!("Cost center {} by namespace", escape(cc)),
            "namespace",
        ),
        (Some(cc), Some(ns)) => (
            format!("Namespace {} of {} by pod", escape(ns), escape(cc)),
            "pod",
        ),
    };
    let _ = write!(out, "<section id=\"spend\"><h2>{title}</h2>");
    let mut crumbs = vec![format!(
        "<a href=\"{}\">all cost centers</a>",
        page.link(&[])
    )];
    if let Some(cc) = &drill.cost_center {
        crumbs.push(format!(
            "<a href=\"{}\">{}</a>",
            page.link(&[("cost_center", cc)]),
            escape(cc)
        ));
    }
    let _ = write!(
        out,
        "<nav aria-label=\"Drill-down\">{}</nav>",
        crumbs.join(" › ")
    );
    let top = page
        .spend
        .iter()
        .map(|r| float(r.figures.cost))
        .fold(0.0, f64::max);
    let level = drill.group_by().len();
    let rows: Vec<Vec<String>> = page
        .spend
        .iter()
        .map(|row| {
            let name = row.group.get(level - 1).cloned().unwrap_or_default();
            let cell = match (&drill.cost_center, &drill.namespace) {
                (None, _) if name != "__unallocated__" => format!(
                    "<a href=\"{}\">{}</a>",
                    page.link(&[("cost_center", &name)]),
                    escape(&name)
                ),
                (Some(cc), None) => format!(
                    "<a href=\"{}\">{}</a>",
                    page.link(&[("cost_center", cc), ("namespace", &name)]),
                    escape(&name)
                ),
                _ => escape(&name),
            };
            let f = &row.figures;
            vec![
                cell,
                f.gpu_hours.to_string(),
                cost_cell(f),
                number(f.idle_cost),
                utilization(f),
                svg::share_bar(float(f.cost), top),
            ]
        })
        .collect();
    out.push_str(&html::table(
        &format!(
            "GPU-hours, cost, idle cost and utilization in {}",
            page.currency.0
        ),
        &[head, "GPU-hours", "cost", "idle cost", "utilization", ""],
        &rows,
        1,
    ));
    if page.spend_hidden > 0 {
        let _ = write!(
            out,
            "<p>{} more, each costing less: <a href=\"{}\">download CSV</a> for every one.</p>",
            page.spend_hidden,
            page.download("csv")
        );
    }
    out.push_str("</section>");
}

/// A figure column of a grouped table.
#[derive(Clone, Copy)]
enum Column {
    Hours,
    Cost,
    Idle,
    Utilization,
}

impl Column {
    fn head(self) -> &'static str {
        match self {
            Column::Hours => "GPU-hours",
            Column::Cost => "cost",
            Column::Idle => "idle cost",
            Column::Utilization => "utilization",
        }
    }

    fn cell(self, figures: &Figures) -> String {
        match self {
            Column::Hours => figures.gpu_hours.to_string(),
            Column::Cost => cost_cell(figures),
            Column::Idle => number(figures.idle_cost),
            Column::Utilization => utilization(figures),
        }
    }
}

/// A table of `rows`: their group values under `labels`, then `columns` of their figures.
fn grouped_table(caption: &str, labels: &[&str], columns: &[Column], rows: &[Row]) -> String {
    let head: Vec<&str> = labels
        .iter()
        .copied()
        .chain(columns.iter().map(|c| c.head()))
        .collect();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            (0..labels.len())
                .map(|i| escape(row.group.get(i).map(String::as_str).unwrap_or_default()))
                .chain(columns.iter().map(|c| c.cell(&row.figures)))
                .collect()
        })
        .collect();
    html::table(caption, &head, &cells, labels.len())
}

fn grouped(page: &Page, out: &mut String) {
    let Some((keys, rows)) = &page.grouped else {
        return;
    };
    let labels: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
    let _ = write!(
        out,
        "<section id=\"grouped\"><h2>Spend by {}</h2>",
        escape(&labels.join(", "))
    );
    out.push_str(&grouped_table(
        "As the chargeback API groups it",
        &labels,
        &[
            Column::Hours,
            Column::Cost,
            Column::Idle,
            Column::Utilization,
        ],
        rows,
    ));
    out.push_str("</section>");
}

fn idle_and_unallocated(page: &Page, out: &mut String) {
    out.push_str("<section id=\"idle\"><h2>Idle and unallocated</h2>");
    out.push_str(&grouped_table(
        "Idle cost by workload (namespace): GPUs held but not busy",
        &["namespace"],
        &[Column::Idle, Column::Cost, Column::Utilization],
        &page.idle,
    ));
    out.push_str(&grouped_table(
        "Unallocated capacity by model and node: GPUs no pod held",
        &["GPU model", "node"],
        &[Column::Hours, Column::Cost],
        &page.unallocated,
    ));
    out.push_str("</section>");
}

fn models(page: &Page, out: &mut String) {
    out.push_str("<section id=\"models\"><h2>Spend by GPU model and tier</h2>");
    out.push_str(&grouped_table(
        "Unpriced models are shown as such, never as zero",
        &["GPU model", "tier"],
        &[Column::Hours, Column::Cost, Column::Idle],
        &page.by_model,
    ));
    out.push_str("</section>");
}

/// Cost per million tokens, when the serving engines' counters name pods.
fn tokens(page: &Page, out: &mut String) {
    let Some(first) = page.tokens.first() else {
        return;
    };
    let _ = write!(
        out,
        "<section id=\"tokens\"><h2>Cost per million tokens, the last hour</h2><p>From \
<time>{}</time> to <time>{}</time>: each serving pod's GPU cost, idle time included, split over \
the models it served by their share of its tokens. <a href=\"{}\">This window's, as CSV</a></p>",
        format_time(first.period.start),
        format_time(first.period.end),
        page.tokens_download()
    );
    let rows: Vec<Vec<String>> = page
        .tokens
        .iter()
        .map(|row| {
            let mut cells: Vec<String> = row.group.iter().map(|v| escape(v)).collect();
            cells.extend([
                cost_cell(&row.figures),
                number(row.figures.idle_cost),
                row.input.to_string(),
                row.output.to_string(),
                number(row.per_million.0),
                number(row.per_million.1),
            ]);
            cells
        })
        .collect();
    out.push_str(&html::table(
        "A model with GPU cost and no tokens shows — per token, never zero",
        &[
            "served model",
            "cost center",
            "namespace",
            "GPU cost",
            "idle cost",
            "input tokens",
            "output tokens",
            "per 1M tokens",
            "per 1M output tokens",
        ],
        &rows,
        3,
    ));
    out.push_str("</section>");
}

fn gate(page: &Page, out: &mut String) {
    let g = &page.gate;
    let p99 = g
        .p99_ms
        .map_or_else(|| "—".to_string(), |ms| format!("{ms:.3} ms"));
    let _ = write!(
        out,
        "<section id=\"gate\"><h2>Admission gate</h2><p><strong>{:.1}</strong> checks/s over the last minute; \
p99 of deciding <strong>{p99}</strong> over the last checks.</p>",
        g.per_second
    );
    let rows: Vec<Vec<String>> = g
        .recent
        .iter()
        .map(|d| {
            vec![
                format_time(d.at),
                escape(&d.namespace),
                escape(&d.cost_center),
                if d.allowed {
                    "allowed".into()
                } else {
                    "<span class=\"over\">denied</span>".into()
                },
                escape(&d.message),
            ]
        })
        .collect();
    out.push_str(&html::table(
        "Recent decisions, newest first",
        &["at", "namespace", "cost center", "decision", "message"],
        &rows,
        5,
    ));
    out.push_str("</section>");
}

#[cfg(test)]
mod tests;
