//! What each cost center and namespace has spent this month, burns now and holds now: the
//! figures a quota decision starts from, built once per reconcile so a decision is a lookup.

use rust_decimal::Decimal;
use rustc_hash::FxHashMap;

use crate::allocation::{AllocationSet, UNALLOCATED};
use crate::cost::{CostOverflow, ReportRequest, cost_report};
use crate::pricing::RateCard;
use crate::time::{Interval, Step, UnixSeconds, month_start, next_month_start};

/// Spend and current use of one cost center or namespace.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Usage {
    /// Month-to-date cost (exact).
    pub spent: Decimal,
    /// Cost per hour of what runs now.
    pub burn_per_hour: Decimal,
    /// GPU units held now.
    pub units: Decimal,
}

impl Usage {
    fn add(&mut self, other: Usage) {
        self.spent += other.spent;
        self.burn_per_hour += other.burn_per_hour;
        self.units += other.units;
    }
}

/// Usage per cost center and per namespace, as of one moment.
#[derive(Clone, Debug, Default)]
pub struct SpendIndex {
    /// When.
    pub as_of: UnixSeconds,
    /// The calendar month (UTC) holding `as_of`.
    pub month: Interval,
    by_cost_center: FxHashMap<String, Usage>,
    by_namespace: FxHashMap<String, Usage>,
}

impl SpendIndex {
    /// Builds the index: month-to-date cost from `history` (the ledger's sets, priced by the
    /// same engine as every report), burn and units from what `live` shows running at `as_of`.
    /// Unallocated capacity and unpriced hours count toward no budget.
    pub fn build(
        history: &[&AllocationSet],
        live: &AllocationSet,
        card: &RateCard,
        as_of: UnixSeconds,
    ) -> Result<Self, CostOverflow> {
        let start = month_start(as_of - 1).unwrap_or(as_of);
        let month = Interval::new(start, next_month_start(start).unwrap_or(as_of));
        let mut index = SpendIndex {
            as_of,
            month,
            ..SpendIndex::default()
        };
        if as_of > start {
            let request = ReportRequest {
                window: Interval::new(start, as_of),
                step: Step::Window,
                group_by: "cost_center,namespace".parse().unwrap_or_default(),
                share_unallocated: false,
            };
            for line in cost_report(history, card, &request)?.lines {
                let (Some(cost), [cost_center, namespace]) =
                    (line.figures.cost, line.group.as_slice())
                else {
                    continue;
                };
                if cost_center == UNALLOCATED {
                    continue;
                }
                let spent = Usage {
                    spent: cost,
                    ..Usage::default()
                };
                index
                    .by_cost_center
                    .entry(cost_center.clone())
                    .or_default()
                    .add(spent);
                index
                    .by_namespace
                    .entry(namespace.clone())
                    .or_default()
                    .add(spent);
            }
        }
        for a in live.allocations.iter().filter(|a| a.interval.end >= as_of) {
            let units = a.units.to_decimal();
            let product = live.names.resolve(a.product);
            let burn = card
                .price_at(product, a.tier, a.price_override, as_of)
                .map_or(Decimal::ZERO, |p| p * units);
            let now = Usage {
                spent: Decimal::ZERO,
                burn_per_hour: burn,
                units,
            };
            index
                .by_cost_center
                .entry(live.names.resolve(a.cost_center).to_string())
                .or_default()
                .add(now);
            index
                .by_namespace
                .entry(live.names.resolve(a.namespace).to_string())
                .or_default()
                .add(now);
        }
        Ok(index)
    }

    /// Usage of a cost center (zero when it has none).
    pub fn cost_center(&self, name: &str) -> Usage {
        self.by_cost_center.get(name).copied().unwrap_or_default()
    }

    /// Usage of a namespace (zero when it has none).
    pub fn namespace(&self, name: &str) -> Usage {
        self.by_namespace.get(name).copied().unwrap_or_default()
    }

    /// Hours from `as_of` to the end of the month.
    pub fn hours_left(&self) -> Decimal {
        Decimal::from((self.month.end - self.as_of).max(0)) / Decimal::from(3600)
    }
}
