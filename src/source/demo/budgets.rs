//! Budgets for the demo fleet's cost centers, so that the gate and the burn-down have a story:
//! inference-chat's cc-100 near its limit (warned), inference-search's cc-200 over it (denied),
//! the others with room. Amounts are per unit of scale, from the fleet's own run rate (cc-100
//! spends about 4,300 USD a day at scale 1, cc-200 about 5,800): a 31-day month projects cc-100
//! to ~95 % of 140,000, a 28-day one cc-200 past 130,000 by a fifth.

use rust_decimal::Decimal;

use crate::budget::RawBudget;

/// (scope kind, name, monthly USD at scale 1, max GPUs at scale 1, warn at)
const DEMO_BUDGETS: [(&str, &str, i64, Option<i64>, &str); 5] = [
    ("cost_center", "cc-100", 140_000, None, "0.8"),
    ("cost_center", "cc-200", 130_000, None, "0.8"),
    ("cost_center", "cc-300", 250_000, None, "0.8"),
    ("cost_center", "cc-400", 150_000, Some(40), "0.8"),
    ("namespace", "research", 20_000, None, "0.9"),
];

/// The demo's budgets for a fleet of `scale` times the base pools.
pub fn demo_budgets(scale: u32) -> Vec<RawBudget> {
    let scale = Decimal::from(scale.max(1));
    DEMO_BUDGETS
        .iter()
        .map(|(kind, name, monthly, max_gpus, warn_at)| RawBudget {
            cost_center: (*kind == "cost_center").then(|| name.to_string()),
            namespace: (*kind == "namespace").then(|| name.to_string()),
            monthly: Some((Decimal::from(*monthly) * scale).to_string()),
            max_gpus: max_gpus.map(|m| (Decimal::from(m) * scale).to_string()),
            warn_at: Some(warn_at.to_string()),
            enforce: None,
            scope: None,
        })
        .collect()
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn demo_budgets_are_valid_and_scale_with_the_fleet() {
        let budgets = crate::budget::validate_budgets(&demo_budgets(48)).unwrap();
        assert_eq!(budgets.len(), 5);
        assert_eq!(budgets[0].monthly, Decimal::from(140_000 * 48));
        assert_eq!(budgets[3].max_units, Some(Decimal::from(40 * 48)));
    }
}
