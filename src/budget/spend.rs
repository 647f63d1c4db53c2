//! What each cost center and namespace has spent this month, burns now and holds now: the
//! figures a quota decision starts from, built once per reconcile so a decision is a lookup.

use rust_decimal::Decimal;
use rustc_hash::FxHashMap;

use crate::allocation::{Allocation, AllocationSet, UNALLOCATED};
use crate::cost::{CostOverflow, ReportRequest, cost_report};
use crate::pricing::RateCard;
use crate::time::{Interval, Step, UnixSeconds, month_start, next_month_start};

/// The allocations of `live` still held at `as_of`, each with its GPU units and what they cost
/// an hour (`None`: its model has no price then, and it burns toward no budget).
pub(super) fn running<'a>(
    live: &'a AllocationSet,
    card: &'a RateCard,
    as_of: UnixSeconds,
) -> impl Iterator<Item = (&'a Allocation, Decimal, Option<Decimal>)> + 'a {
    live.allocations
        .iter()
        .filter(move |a| a.interval.end >= as_of)
        .map(move |a| {
            let units = a.units.to_decimal();
            let product = live.names.resolve(a.product);
            let burn = card
                .price_at(product, a.tier, a.price_override, as_of)
                .map(|price| price * units);
            (a, units, burn)
        })
}

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
    /// Month-end spend at this burn plus `extra_per_hour` for `hours_left` (SPEC §5:
    /// `spent + (burn + pod) × hours left`); `None` when it overflows `Decimal`.
    pub fn projected(&self, extra_per_hour: Decimal, hours_left: Decimal) -> Option<Decimal> {
        let burn = self.burn_per_hour.checked_add(extra_per_hour)?;
        self.spent.checked_add(burn.checked_mul(hours_left)?)
    }

    /// Adds `other` in.
    pub fn add(&mut self, other: Usage) {
        self.spent += other.spent;
        self.burn_per_hour += other.burn_per_hour;
        self.units += other.units;
    }
}

/// Spend already rolled up into the store: the cost of each (cost center, namespace) over
/// the stored days of a month, read once a day rather than on every reconcile.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredSpend {
    /// The stored stretch: `[month start, first day still in memory)`.
    pub window: Interval,
    /// Cost per (cost center, namespace); unallocated capacity under [`UNALLOCATED`].
    pub cost: Vec<(String, String, Decimal)>,
    /// Days of the stretch the store should hold and does not yet (history before the ledger
    /// began, still being rolled up), said in a sentence: the cost above is less than was
    /// spent.
    pub missing: Option<String>,
}

/// The calendar month (UTC) that holds `at`.
pub fn month_of(at: UnixSeconds) -> Interval {
    let start = month_start(at).unwrap_or(at);
    Interval::new(start, next_month_start(start).unwrap_or(at))
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
    unallocated: Decimal,
    /// What of the month the spend leaves out ([`StoredSpend::missing`]): decisions on it are
    /// as unsure as on stale data.
    pub incomplete: Option<String>,
}

impl SpendIndex {
    /// Builds the index: month-to-date cost from `stored` (the month's days in the rollup
    /// store) plus the engine's price of `memory` (what is held in memory: the ledger's
    /// unrolled segments and what runs, from `stored.window.end` on), burn and units from what
    /// `live` shows running at `as_of`. Unallocated capacity and unpriced hours count toward
    /// no budget.
    pub fn build(
        memory: &[&AllocationSet],
        stored: &StoredSpend,
        live: &AllocationSet,
        card: &RateCard,
        as_of: UnixSeconds,
    ) -> Result<Self, CostOverflow> {
        let month = month_of(as_of);
        let mut index = SpendIndex {
            as_of,
            month,
            ..SpendIndex::default()
        };
        let from = month.start.max(stored.window.end);
        let mut spent: Vec<(String, String, Decimal)> = Vec::new();
        if as_of > from {
            let request = ReportRequest {
                window: Interval::new(from, as_of),
                step: Step::Window,
                group_by: "cost_center,namespace".parse().unwrap_or_default(),
                share_unallocated: false,
                only: Default::default(),
            };
            for line in cost_report(memory, card, &request)?.lines {
                let Some(cost) = line.figures.cost else {
                    continue;
                };
                if let (Some(cost_center), Some(namespace)) = (line.group.get(0), line.group.get(1))
                {
                    spent.push((cost_center.to_string(), namespace.to_string(), cost));
                }
            }
        }
        if stored.window.start == month.start {
            spent.extend(stored.cost.iter().cloned());
            index.incomplete.clone_from(&stored.missing);
        }
        for (cost_center, namespace, cost) in spent {
            if cost_center == UNALLOCATED {
                index.unallocated += cost;
                continue;
            }
            let spent = Usage {
                spent: cost,
                ..Usage::default()
            };
            index
                .by_cost_center
                .entry(cost_center)
                .or_default()
                .add(spent);
            index.by_namespace.entry(namespace).or_default().add(spent);
        }
        for (a, units, burn) in running(live, card, as_of) {
            let burn = burn.unwrap_or(Decimal::ZERO);
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

    /// Month-to-date spend of every cost center, unallocated capacity under
    /// [`UNALLOCATED`] (`tollgate_cost_center_spend`).
    pub fn spent_by_cost_center(&self) -> impl Iterator<Item = (&str, Decimal)> {
        self.by_cost_center
            .iter()
            .map(|(name, usage)| (name.as_str(), usage.spent))
            .chain((!self.unallocated.is_zero()).then_some((UNALLOCATED, self.unallocated)))
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
