//! The quota decision: `projected = spent + (burn + pod) × hours left`, against every budget the
//! pod falls under (its cost center's and its namespace's); each must pass.

use rust_decimal::Decimal;
use serde::Serialize;

use super::clusters::OtherClusters;
use super::limits::{Budget, BudgetScope};
use super::model::ProspectError;
use super::prospect::Prospect;
use super::spend::{SpendIndex, Usage};
use crate::money::{Currency, Rounding};
use crate::time::format_time;

/// Everything a decision reads.
#[derive(Clone, Copy, Debug)]
pub struct QuotaInput<'a> {
    /// The pod.
    pub prospect: &'a Prospect,
    /// Spend and use per cost center and namespace.
    pub spend: &'a SpendIndex,
    /// Reserved (admitted, not yet running) use of the pod's cost center and namespace.
    pub reserved: (Usage, Usage),
    /// All budgets.
    pub budgets: &'a [Budget],
    /// The rate card's currency and rounding, for the figures shown.
    pub currency: &'a Currency,
    /// How shown money is rounded.
    pub rounding: Rounding,
    /// True when the data is older than the configured limit, or leaves out part of the month.
    pub stale: bool,
    /// The other clusters' figures, added to this one's for global budgets.
    pub others: &'a OtherClusters,
}

/// The answer of SPEC §5, field for field.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuotaDecision {
    /// May the pod start.
    pub allowed: bool,
    /// One sentence for `kubectl apply`.
    pub message: String,
    /// Warnings to pass on.
    pub warnings: Vec<String>,
    /// The pod's cost center.
    pub cost_center: String,
    /// Currency of every amount.
    pub currency: String,
    /// The deciding budget's monthly amount.
    pub budget: Option<String>,
    /// Month-to-date spend of the deciding budget's scope.
    pub spent: String,
    /// Current hourly burn of that scope (running pods and holds).
    pub burn_per_hour: String,
    /// The pod's hourly cost.
    pub pod_per_hour: String,
    /// Projected month-end spend with the pod.
    pub projected: Option<String>,
    /// `budget − projected`.
    pub headroom: Option<String>,
    /// GPU units the scope holds (running pods and holds).
    pub units_held: String,
    /// The scope's cap on units.
    pub max_units: Option<String>,
    /// When the data was read.
    pub as_of: String,
    /// True when the data is older than the configured limit.
    pub stale: bool,
    /// When a global budget applies: the time of the oldest figure of another cluster it
    /// added (absent when none was ever read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_clusters_as_of: Option<String>,
}

fn units_text(units: Decimal) -> String {
    let rounded = units.round_dp(4).normalize();
    if rounded.is_zero() {
        "0".into()
    } else {
        rounded.to_string()
    }
}

struct Evaluation<'a> {
    budget: &'a Budget,
    usage: Usage,
    /// What the pod adds to the scope's burn ([`Prospect::added_to`]).
    pod_per_hour: Decimal,
    projected: Decimal,
    headroom: Decimal,
    units_after: Decimal,
    over_budget: bool,
    over_units: bool,
}

/// The figures of one budget, with checked arithmetic: `None` when they overflow `Decimal`.
fn evaluate<'a>(
    budget: &'a Budget,
    mut usage: Usage,
    held: Usage,
    prospect: &Prospect,
    hours_left: Decimal,
) -> Option<Evaluation<'a>> {
    usage.burn_per_hour = usage.burn_per_hour.checked_add(held.burn_per_hour)?;
    usage.units = usage.units.checked_add(held.units)?;
    let (pod_per_hour, pod_units) = prospect.added_to(&budget.scope);
    let projected = usage.projected(pod_per_hour, hours_left)?;
    let units_after = usage.units.checked_add(pod_units)?;
    Some(Evaluation {
        budget,
        usage,
        pod_per_hour,
        projected,
        headroom: budget.monthly.checked_sub(projected)?,
        units_after,
        over_budget: projected > budget.monthly,
        over_units: budget.max_units.is_some_and(|max| units_after > max),
    })
}

fn too_large(what: impl std::fmt::Display) -> ProspectError {
    ProspectError(format!(
        "the figures of {what} are too large to decide on (Decimal overflow)"
    ))
}

/// Decides. Every sum is checked: figures too large for `Decimal` are an error naming the
/// scope, never a panic.
pub fn decide(input: QuotaInput<'_>) -> Result<QuotaDecision, ProspectError> {
    let QuotaInput {
        prospect,
        spend,
        reserved,
        budgets,
        currency,
        rounding,
        stale,
        others,
    } = input;
    let places = currency.minor_units();
    let money = |d: Decimal| rounding.money(d, places).to_string();
    let code = currency.code();
    let hours_left = spend.hours_left();
    let mut evaluations: Vec<Evaluation<'_>> = Vec::new();
    for budget in budgets {
        let (usage, held) = match &budget.scope {
            BudgetScope::CostCenter(name) if *name == prospect.cost_center => {
                let mut usage = spend.cost_center(name);
                if budget.global {
                    usage.add(others.cost_center(name));
                }
                (usage, reserved.0)
            }
            BudgetScope::Namespace(name) if *name == prospect.namespace => {
                (spend.namespace(name), reserved.1)
            }
            _ => continue,
        };
        evaluations.push(
            evaluate(budget, usage, held, prospect, hours_left)
                .ok_or_else(|| too_large(&budget.scope))?,
        );
    }

    let mut warnings = prospect.notes.clone();
    let mut denials = Vec::new();
    for e in &evaluations {
        let scope = &e.budget.scope;
        if e.pod_per_hour != prospect.per_hour {
            warnings.push(format!(
                "{scope}'s running pods sharing its claims pay {} {code} an hour less once this pod shares them: it adds {} {code} an hour to {scope}'s burn",
                money(prospect.per_hour - e.pod_per_hour),
                money(e.pod_per_hour)
            ));
        }
        let mut problems = Vec::new();
        if e.over_budget {
            problems.push(format!(
                "{scope} would reach {} {code} of its {} {code} monthly budget",
                money(e.projected),
                money(e.budget.monthly)
            ));
        }
        if e.over_units {
            problems.push(format!(
                "{scope} would hold {} GPUs, over its limit of {}",
                units_text(e.units_after),
                units_text(e.budget.max_units.unwrap_or_default())
            ));
        }
        if e.budget.enforce {
            denials.extend(problems);
        } else {
            warnings.extend(problems.into_iter().map(|p| format!("{p} (not enforced)")));
        }
        if let Some(warn_at) = e.budget.warn_at
            && !e.over_budget
            && !e.budget.monthly.is_zero()
            && e.budget
                .monthly
                .checked_mul(warn_at)
                .is_some_and(|line| e.projected >= line)
        {
            let percent = e
                .projected
                .checked_div(e.budget.monthly)
                .and_then(|r| r.checked_mul(Decimal::ONE_HUNDRED))
                .ok_or_else(|| too_large(scope))?;
            warnings.push(format!(
                "{scope} is projected to spend {} {code}, {}% of its {} {code} monthly budget",
                money(e.projected),
                percent.round(),
                money(e.budget.monthly)
            ));
        }
    }
    // The budget shown: the first one denying, else the one with the least headroom.
    let shown = evaluations
        .iter()
        .find(|e| e.budget.enforce && (e.over_budget || e.over_units))
        .or_else(|| {
            evaluations
                .iter()
                .min_by(|a, b| a.headroom.cmp(&b.headroom))
        });
    let usage = match shown {
        Some(e) => e.usage,
        None => {
            let fallback = spend.cost_center(&prospect.cost_center);
            Usage {
                burn_per_hour: fallback
                    .burn_per_hour
                    .checked_add(reserved.0.burn_per_hour)
                    .ok_or_else(|| too_large(&prospect.cost_center))?,
                units: fallback
                    .units
                    .checked_add(reserved.0.units)
                    .ok_or_else(|| too_large(&prospect.cost_center))?,
                ..fallback
            }
        }
    };
    let global = evaluations.iter().any(|e| e.budget.global);
    let allowed = denials.is_empty();
    let message = match (allowed, shown) {
        (false, _) => denials.join("; "),
        (true, Some(e)) => format!(
            "{} is projected at {} {code} of its {} {code} monthly budget",
            e.budget.scope,
            money(e.projected),
            money(e.budget.monthly)
        ),
        (true, None) => format!(
            "no budget applies to cost center {} or namespace {}",
            prospect.cost_center, prospect.namespace
        ),
    };
    Ok(QuotaDecision {
        allowed,
        message,
        warnings,
        cost_center: prospect.cost_center.clone(),
        currency: code.to_string(),
        budget: shown.map(|e| money(e.budget.monthly)),
        spent: money(usage.spent),
        burn_per_hour: money(usage.burn_per_hour),
        pod_per_hour: money(shown.map_or(prospect.per_hour, |e| e.pod_per_hour)),
        projected: shown.map(|e| money(e.projected)),
        headroom: shown.map(|e| money(e.headroom)),
        units_held: units_text(usage.units),
        max_units: shown.and_then(|e| e.budget.max_units).map(units_text),
        as_of: format_time(spend.as_of),
        stale,
        other_clusters_as_of: others.as_of.filter(|_| global).map(format_time),
    })
}

/// Applies the failure mode to a decision made on stale data, `why` it is unsure
/// ("Tollgate's budget data is 600 s old").
pub fn with_failure_mode(
    mut decision: QuotaDecision,
    fail_closed: bool,
    why: &str,
) -> QuotaDecision {
    if !decision.stale {
        return decision;
    }
    if fail_closed {
        decision.allowed = false;
        decision.message = format!(
            "{why}; failing closed until it is current again ({})",
            decision.message
        );
    } else {
        decision.warnings.push(format!(
            "{why}; allowed because the failure mode is fail_open"
        ));
        decision.allowed = true;
    }
    decision
}
