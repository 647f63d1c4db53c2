//! `[[budget]]` entries: read from configuration, validated with errors naming the entry.

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::allocation::UNALLOCATED;

/// What a budget covers.
#[derive(Clone, PartialEq, Eq, Debug, Hash, PartialOrd, Ord)]
pub enum BudgetScope {
    /// Every pod charged to a cost center.
    CostCenter(String),
    /// Every pod in a namespace.
    Namespace(String),
}

impl std::fmt::Display for BudgetScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BudgetScope::CostCenter(name) => write!(f, "cost center {name}"),
            BudgetScope::Namespace(name) => write!(f, "namespace {name}"),
        }
    }
}

/// A validated budget.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Budget {
    /// What it covers.
    pub scope: BudgetScope,
    /// Spend allowed per calendar month (UTC), in the rate card's currency.
    pub monthly: Decimal,
    /// GPU units the scope may hold at once.
    pub max_units: Option<Decimal>,
    /// Warn when the projection passes this share of `monthly`.
    pub warn_at: Option<Decimal>,
    /// Deny (true) or only warn (false) when the budget or the GPU cap would be passed.
    pub enforce: bool,
    /// `scope = "global"`: spend, burn and units are the sums over every cluster (this one's
    /// own, the others' from `[quota] global_prometheus`).
    pub global: bool,
}

/// A `[[budget]]` as written. Numbers may be written as numbers or decimal strings.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawBudget {
    /// The cost center covered (or `namespace`).
    pub cost_center: Option<String>,
    /// The namespace covered (or `cost_center`).
    pub namespace: Option<String>,
    /// Monthly amount, e.g. `"25000.00"`.
    pub monthly: Option<String>,
    /// Cap on GPU units held at once, e.g. `16`.
    pub max_gpus: Option<String>,
    /// Share of `monthly` at which to warn, e.g. `0.8`.
    pub warn_at: Option<String>,
    /// Deny when exceeded (default true).
    pub enforce: Option<bool>,
    /// `cluster` (default: this cluster's spend) or `global` (every cluster's).
    pub scope: Option<String>,
}

/// A budget entry that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("budget[{index}]{}: {message}", scope.as_ref().map(|s| format!(" ({s})")).unwrap_or_default())]
pub struct BudgetError {
    /// 0-based position among the `[[budget]]` entries.
    pub index: usize,
    /// What it covers, when readable.
    pub scope: Option<BudgetScope>,
    /// What is wrong.
    pub message: String,
}

fn decimal(field: &str, text: &str) -> Result<Decimal, String> {
    let value: Decimal = text
        .trim()
        .parse()
        .map_err(|_| format!("{field}: {text:?} is not a decimal number"))?;
    if value < Decimal::ZERO {
        return Err(format!("{field}: must not be negative"));
    }
    Ok(value)
}

fn budget(raw: &RawBudget) -> Result<Budget, (Option<BudgetScope>, String)> {
    let scope = match (&raw.cost_center, &raw.namespace) {
        (Some(cc), None) if !cc.trim().is_empty() => BudgetScope::CostCenter(cc.trim().to_string()),
        (None, Some(ns)) if !ns.trim().is_empty() => BudgetScope::Namespace(ns.trim().to_string()),
        (Some(_), Some(_)) => return Err((None, "set cost_center or namespace, not both".into())),
        _ => return Err((None, "set cost_center = \"…\" or namespace = \"…\"".into())),
    };
    let fail = |message: String| (Some(scope.clone()), message);
    if scope == BudgetScope::CostCenter(UNALLOCATED.to_string()) {
        return Err(fail(format!(
            "{UNALLOCATED} names the capacity no pod holds, not a cost center: no pod is charged to it and it counts toward no budget, so this one could never be spent"
        )));
    }
    let monthly = raw
        .monthly
        .as_deref()
        .ok_or_else(|| fail("monthly: missing (write e.g. monthly = \"25000.00\")".into()))?;
    let monthly = decimal("monthly", monthly).map_err(fail)?;
    let max_units = raw
        .max_gpus
        .as_deref()
        .map(|m| decimal("max_gpus", m))
        .transpose()
        .map_err(fail)?;
    let warn_at = raw
        .warn_at
        .as_deref()
        .map(|w| decimal("warn_at", w))
        .transpose()
        .map_err(fail)?;
    if warn_at.is_some_and(|w| w > Decimal::ONE) {
        return Err(fail(
            "warn_at: a share of the budget, from 0 to 1 (e.g. 0.8)".into(),
        ));
    }
    let global = match raw.scope.as_deref().map(str::trim) {
        None | Some("cluster") => false,
        Some("global") if matches!(scope, BudgetScope::CostCenter(_)) => true,
        Some("global") => {
            return Err(fail(
                "scope = \"global\" is for a cost center's budget: other clusters export their spend by cost center".into(),
            ));
        }
        Some(other) => return Err(fail(format!("scope: {other:?}: use cluster or global"))),
    };
    Ok(Budget {
        scope,
        monthly,
        max_units,
        warn_at,
        enforce: raw.enforce.unwrap_or(true),
        global,
    })
}

/// Validates every entry; two budgets for the same scope are an error.
pub fn validate_budgets(raw: &[RawBudget]) -> Result<Vec<Budget>, BudgetError> {
    let mut budgets: Vec<Budget> = Vec::with_capacity(raw.len());
    for (index, entry) in raw.iter().enumerate() {
        let budget = budget(entry).map_err(|(scope, message)| BudgetError {
            index,
            scope,
            message,
        })?;
        if let Some(other) = budgets.iter().position(|b| b.scope == budget.scope) {
            return Err(BudgetError {
                index,
                scope: Some(budget.scope),
                message: format!(
                    "a second budget for the same scope (the first is budget[{other}])"
                ),
            });
        }
        budgets.push(budget);
    }
    Ok(budgets)
}
