//! Cost reports: exact lines from the engine, and the rounded chargeback every output prints.

use std::borrow::Borrow;

use rust_decimal::Decimal;

use super::request::ReportRequest;
use super::values::GroupValues;
use super::warnings::Warnings;
use crate::money::{
    self, Apportioned, Carry, Column, Currency, ExactSum, Rounding, Within, apportion_carried,
    apportion_within, fixed,
};
use crate::time::Interval;

/// Hours print with four decimals.
pub const HOUR_PLACES: u32 = 4;

/// The figures of a line (or of a column total).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Figures {
    /// All GPU-hours, priced or not.
    pub gpu_hours: Decimal,
    /// GPU-hours actually busy (`gpu_hours × utilization`); `None` without usage data.
    pub used_gpu_hours: Option<Decimal>,
    /// Cost of the priced hours; `None` when no hour has a price.
    pub cost: Option<Decimal>,
    /// Cost of the idle part (`cost × (1 − utilization)`); `None` without usage data.
    pub idle_cost: Option<Decimal>,
    /// The part of `gpu_hours` with no price.
    pub unpriced_gpu_hours: Decimal,
}

fn add(a: Option<Decimal>, b: Option<Decimal>) -> Option<Decimal> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or_default() + b.unwrap_or_default()),
    }
}

impl Figures {
    /// True when nothing was held (a line of capacity exactly used up, for instance).
    pub fn is_empty(&self) -> bool {
        let zero = |v: Option<Decimal>| v.is_none_or(|v| v.is_zero());
        self.gpu_hours.is_zero()
            && self.unpriced_gpu_hours.is_zero()
            && zero(self.cost)
            && zero(self.used_gpu_hours)
            && zero(self.idle_cost)
    }

    /// Adds `other` in; an unknown figure plus a known one is the known one.
    pub fn absorb(&mut self, other: &Figures) {
        self.gpu_hours += other.gpu_hours;
        self.unpriced_gpu_hours += other.unpriced_gpu_hours;
        self.used_gpu_hours = add(self.used_gpu_hours, other.used_gpu_hours);
        self.cost = add(self.cost, other.cost);
        self.idle_cost = add(self.idle_cost, other.idle_cost);
    }

    /// True when every figure is the other's made another way ([`money::settled_alike`]);
    /// an unknown figure is alike only to an unknown one.
    pub fn settled_alike(&self, other: &Figures) -> bool {
        let alike = |a: Option<Decimal>, b: Option<Decimal>| match (a, b) {
            (Some(a), Some(b)) => money::settled_alike(a, b),
            (a, b) => a.is_none() && b.is_none(),
        };
        alike(Some(self.gpu_hours), Some(other.gpu_hours))
            && alike(self.used_gpu_hours, other.used_gpu_hours)
            && alike(self.cost, other.cost)
            && alike(self.idle_cost, other.idle_cost)
            && alike(
                Some(self.unpriced_gpu_hours),
                Some(other.unpriced_gpu_hours),
            )
    }

    /// Every figure times `factor` (for sharing a line out in proportion).
    pub fn scaled(&self, factor: Decimal) -> Figures {
        Figures {
            gpu_hours: self.gpu_hours * factor,
            used_gpu_hours: self.used_gpu_hours.map(|v| v * factor),
            cost: self.cost.map(|v| v * factor),
            idle_cost: self.idle_cost.map(|v| v * factor),
            unpriced_gpu_hours: self.unpriced_gpu_hours * factor,
        }
    }
}

/// One group in one period.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CostLine {
    /// The row's period (the whole window unless stepped).
    pub period: Interval,
    /// Values of the group-by keys, in the order asked.
    pub group: GroupValues,
    /// What the group held and cost in the period.
    pub figures: Figures,
}

/// Exact cost lines, sorted by period then group values.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CostReport {
    /// What was asked.
    pub request: ReportRequest,
    /// The rate card's currency.
    pub currency: Currency,
    /// The rate card's rounding.
    pub rounding: Rounding,
    /// Exact figures, never rounded.
    pub lines: Vec<CostLine>,
    /// Things the reader must know (unpriced models, unreadable objects).
    pub warnings: Warnings,
}

/// What the parts of a report printed so far add up to, column by column (see
/// [`CostReport::rounded`]; by cost center and namespace, [`Carries`](super::Carries)).
#[derive(Clone, Copy, Debug, Default)]
pub struct Carried {
    gpu_hours: Carry,
    used_gpu_hours: Carry,
    cost: Carry,
    idle_cost: Carry,
    unpriced_gpu_hours: Carry,
    /// More parts follow the next one: its hours bring the parts' to the priced and the
    /// unpriced hours so far each rounded, not to all hours so far rounded (the last part
    /// brings them to that).
    followed: bool,
}

impl Carried {
    /// What the parts of a report printed so far add up to when their exact column totals are
    /// `exact`, money in `currency` rounded by `rounding` ([`Carry::after`]).
    pub fn after(exact: &Figures, currency: &Currency, rounding: Rounding) -> Self {
        let money = currency.minor_units();
        let carry = |v: Option<Decimal>, places| {
            v.map(|v| Carry::after(v, places, rounding))
                .unwrap_or_default()
        };
        Carried {
            gpu_hours: carry(Some(exact.gpu_hours), HOUR_PLACES),
            used_gpu_hours: carry(exact.used_gpu_hours, HOUR_PLACES),
            cost: carry(exact.cost, money),
            idle_cost: carry(exact.idle_cost, money),
            unpriced_gpu_hours: carry(Some(exact.unpriced_gpu_hours), HOUR_PLACES),
            followed: false,
        }
    }

    /// [`Carried::after`] parts of one report printed one after another (a FOCUS export's
    /// charge periods), which brought the hours to the priced and unpriced hours so far each
    /// rounded; `followed`: more parts follow the next one.
    ///
    /// A FOCUS row's hours are wholly priced or wholly unpriced, and an unpriced row's are its
    /// unpriced hours: a part's priced rows can always make up the priced hours so far rounded
    /// (less what the parts before printed), each within a unit of its exact hours, where the
    /// hours so far rounded could ask a unit more or less of them than their exact hours
    /// rounded down or up allow (a pod holding a GPU the whole day printed 23.9999 hours).
    pub fn amid(exact: &Figures, currency: &Currency, rounding: Rounding, followed: bool) -> Self {
        let (hours, unpriced) = (exact.gpu_hours, exact.unpriced_gpu_hours);
        Carried {
            gpu_hours: Carry::after_held(hours, unpriced, HOUR_PLACES, rounding),
            ..Carried::after(exact, currency, rounding).followed(followed)
        }
    }

    /// These carries, with more parts following the next one or not ([`Carried::amid`]).
    pub fn followed(self, followed: bool) -> Self {
        Carried { followed, ..self }
    }

    /// The carry after parts whose exact column totals are `exact` and were printed as
    /// `printed` (the sum of parts each rounded apart, [`Carry::printed_as`]).
    pub fn printed_as(exact: &Figures, printed: &Figures) -> Self {
        let carry = |exact: Option<Decimal>, printed: Option<Decimal>| {
            exact
                .map(|exact| Carry::printed_as(exact, printed.unwrap_or_default()))
                .unwrap_or_default()
        };
        Carried {
            gpu_hours: carry(Some(exact.gpu_hours), Some(printed.gpu_hours)),
            used_gpu_hours: carry(exact.used_gpu_hours, printed.used_gpu_hours),
            cost: carry(exact.cost, printed.cost),
            idle_cost: carry(exact.idle_cost, printed.idle_cost),
            unpriced_gpu_hours: carry(
                Some(exact.unpriced_gpu_hours),
                Some(printed.unpriced_gpu_hours),
            ),
            followed: false,
        }
    }

    /// What the parts so far printed, column by column.
    pub fn printed(&self) -> Figures {
        Figures {
            gpu_hours: self.gpu_hours.printed(),
            used_gpu_hours: Some(self.used_gpu_hours.printed()),
            cost: Some(self.cost.printed()),
            idle_cost: Some(self.idle_cost.printed()),
            unpriced_gpu_hours: self.unpriced_gpu_hours.printed(),
        }
    }

    /// The next part brings what is printed so far to `aim`, column by column
    /// ([`Carry::aiming`]).
    pub fn aiming(self, aim: &Figures) -> Self {
        let aimed = |carry: Carry, aim: Option<Decimal>| match aim {
            Some(aim) => carry.aiming(aim),
            None => carry,
        };
        Carried {
            gpu_hours: aimed(self.gpu_hours, Some(aim.gpu_hours)),
            used_gpu_hours: aimed(self.used_gpu_hours, aim.used_gpu_hours),
            cost: aimed(self.cost, aim.cost),
            idle_cost: aimed(self.idle_cost, aim.idle_cost),
            unpriced_gpu_hours: aimed(self.unpriced_gpu_hours, Some(aim.unpriced_gpu_hours)),
            followed: self.followed,
        }
    }
}

/// A report's figures rounded for print ([`CostReport::rounded`]).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Rounded {
    /// Each line's rounded figures, in the report's order.
    pub lines: Vec<Figures>,
    /// Rounded column totals: what the lines add up to.
    pub total: Figures,
}

/// A report rounded for print: each column's lines add up exactly to its total.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Chargeback {
    /// What was asked.
    pub request: ReportRequest,
    /// The currency of every money figure.
    pub currency: Currency,
    /// Rounded lines, in the report's order.
    pub lines: Vec<CostLine>,
    /// Rounded column totals.
    pub total: Figures,
    /// Things the reader must know.
    pub warnings: Vec<String>,
}

impl CostReport {
    /// The report of `request`, grouped by `cluster` where it asks to be, from `self` (computed
    /// for [`ReportRequest::without_cluster`]): every line gets `name`, the cluster's name, at
    /// the key's place. Lines keep their order: all of them have the same name.
    pub fn with_cluster(mut self, request: &ReportRequest, name: &str) -> CostReport {
        if let Some(at) = request.cluster_column() {
            for line in &mut self.lines {
                line.group
                    .insert(at.min(line.group.len()), name.to_string());
            }
        }
        self.request = request.clone();
        self
    }

    /// The exact column totals of every line.
    pub fn exact_total(&self) -> Figures {
        exact_sum(&self.lines)
    }

    /// Rounds once: hours to 4 decimals, money to the currency's minor unit, each column with
    /// largest-remainder correction so that the printed lines add up to the printed total.
    pub fn chargeback(&self) -> Chargeback {
        let Rounded { lines, total } = self.rounded(&mut Carried::default());
        let lines = self
            .lines
            .iter()
            .zip(lines)
            .map(|(line, figures)| CostLine {
                period: line.period,
                group: line.group.clone(),
                figures,
            })
            .collect();
        self.printed(lines, total)
    }

    /// [`CostReport::chargeback`] made of the report's own lines, each given its rounded
    /// figures in place of its exact ones: a month by pod is over a million lines, which a
    /// chargeback copied beside the report held twice.
    pub fn into_chargeback(mut self) -> Chargeback {
        let columns = self.rounded_columns(&mut Carried::default());
        for (i, line) in self.lines.iter_mut().enumerate() {
            line.figures = columns.line(i);
        }
        let lines = std::mem::take(&mut self.lines);
        self.printed(lines, columns.total())
    }

    /// The chargeback of these rounded `lines` and `total`.
    pub(super) fn printed(&self, lines: Vec<CostLine>, total: Figures) -> Chargeback {
        Chargeback {
            request: self.request.clone(),
            currency: self.currency.clone(),
            lines,
            total,
            warnings: self.warnings.texts(),
        }
    }

    /// The figures of [`CostReport::chargeback`], line by line in the report's order, without
    /// the lines' group values, for one part of a report printed in parts after `carried`: the
    /// printed lines of every part add up to the rounded totals of the whole (see
    /// [`apportion_carried`]).
    pub fn rounded(&self, carried: &mut Carried) -> Rounded {
        let columns = self.rounded_columns(carried);
        let lines = (0..self.lines.len()).map(|i| columns.line(i)).collect();
        Rounded {
            lines,
            total: columns.total(),
        }
    }

    /// The columns of [`CostReport::rounded`], each rounded apart.
    fn rounded_columns(&self, carried: &mut Carried) -> RoundedColumns {
        Self::columns_of(&self.lines, (&self.currency, self.rounding), carried)
    }

    /// The columns of `lines` (a report's, or some of them, or lines made for a total) rounded
    /// as a report's are ([`CostReport::rounded`]), money in `currency` by `rounding`.
    pub(super) fn columns_of<L: Borrow<CostLine>>(
        lines: &[L],
        (currency, rounding): (&Currency, Rounding),
        carried: &mut Carried,
    ) -> RoundedColumns {
        let money = currency.minor_units();
        // Used and unpriced hours are parts of the hours and idle cost part of the cost: each
        // is rounded within its whole's printed line, so no printed line shows more idle than
        // cost or more unpriced or used hours than hours, and a line that is none or all of
        // its whole prints zero or its whole (capacity nobody held: idle cost = cost; a model
        // without a price: unpriced hours = hours; a priced line: no unpriced hours).
        // Unpriced hours are rounded first and the hours hold them, so that both columns add
        // up to their rounded totals even where every line is wholly priced or unpriced.
        let exact = |pick: fn(&Figures) -> Option<Decimal>| -> Vec<Option<Decimal>> {
            lines.iter().map(|l| pick(&l.borrow().figures)).collect()
        };
        let tied = |values: &[Option<Decimal>], within: Within<'_>, places, carry: &mut Carry| {
            apportion_within(values, Some(within), places, rounding, carry)
        };
        let exact_unpriced = exact(|f| Some(f.unpriced_gpu_hours));
        let mut unpriced = apportion_carried(
            &exact_unpriced,
            HOUR_PLACES,
            rounding,
            &mut carried.unpriced_gpu_hours,
        );
        let exact_hours = exact(|f| Some(f.gpu_hours));
        // Amid parts, the hours so far are printed as the unpriced hours so far as printed and
        // the priced hours so far rounded ([`Carried::amid`]).
        let unpriced_so_far = &carried.unpriced_gpu_hours;
        let held = (unpriced_so_far.exact(), unpriced_so_far.printed());
        carried.gpu_hours.holding(carried.followed.then_some(held));
        let hours_before = carried.gpu_hours;
        let round_hours = |unpriced: &[Option<Decimal>], carry: &mut Carry| {
            tied(
                &exact_hours,
                Within::Holds(Column {
                    exact: &exact_unpriced,
                    printed: unpriced,
                }),
                HOUR_PLACES,
                carry,
            )
        };
        let mut gpu_hours = round_hours(&unpriced.lines, &mut carried.gpu_hours);
        // Where the lines holding their unpriced hours left the hours a line past its exact
        // value rounded (the unpriced units went to lines that pin their hours while the others
        // had no room, or the reverse), an unpriced unit moves to where it lets the hours round
        // within a unit, as long as that leaves fewer such lines.
        if unpriced.total.is_some_and(|t| !t.is_zero()) {
            fn hours<'a>(
                exact: &'a [Option<Decimal>],
                printed: &'a [Option<Decimal>],
            ) -> Column<'a> {
                Column { exact, printed }
            }
            let mut strays = money::strays(hours(&exact_hours, &gpu_hours.lines), HOUR_PLACES);
            for _ in 0..lines.len() {
                if strays == (0, 0) {
                    break;
                }
                let mut moved = unpriced.lines.clone();
                let column = hours(&exact_hours, &gpu_hours.lines);
                if !money::move_held_unit(column, &exact_unpriced, &mut moved, HOUR_PLACES, strays)
                {
                    break;
                }
                let mut carry = hours_before;
                let again = round_hours(&moved, &mut carry);
                let after = money::strays(hours(&exact_hours, &again.lines), HOUR_PLACES);
                if after.0 + after.1 >= strays.0 + strays.1 {
                    break;
                }
                (unpriced.lines, gpu_hours, strays) = (moved, again, after);
                carried.gpu_hours = carry;
            }
        }
        // Each column's exact values go once no column left needs them: a month by pod is
        // over a million lines, ~28 MB a column.
        drop(exact_unpriced);
        let hours = Column {
            exact: &exact_hours,
            printed: &gpu_hours.lines,
        };
        let used = tied(
            &exact(|f| f.used_gpu_hours),
            Within::PartOf(hours),
            HOUR_PLACES,
            &mut carried.used_gpu_hours,
        );
        drop(exact_hours);
        let exact_cost = exact(|f| f.cost);
        let cost = apportion_carried(&exact_cost, money, rounding, &mut carried.cost);
        let idle = tied(
            &exact(|f| f.idle_cost),
            Within::PartOf(Column {
                exact: &exact_cost,
                printed: &cost.lines,
            }),
            money,
            &mut carried.idle_cost,
        );
        RoundedColumns {
            gpu_hours,
            used,
            cost,
            idle,
            unpriced,
        }
    }
}

/// The exact column totals of `lines`, summed in integers where they fit
/// ([`ExactSum`]): `Decimal` addition rescales at nearly every line.
pub(super) fn exact_sum<'a>(lines: impl IntoIterator<Item = &'a CostLine>) -> Figures {
    // A column with no line's figure totals `None`, as [`Figures::absorb`] adds them.
    #[derive(Default)]
    struct Column(Option<ExactSum>);
    impl Column {
        fn add(&mut self, value: Option<Decimal>) {
            if let Some(value) = value {
                self.0.get_or_insert_default().add(value);
            }
        }
        fn total(&self) -> Option<Decimal> {
            self.0.as_ref().map(ExactSum::total)
        }
    }
    let [mut hours, mut used, mut cost, mut idle, mut unpriced]: [Column; 5] = Default::default();
    for line in lines {
        let figures = &line.figures;
        hours.add(Some(figures.gpu_hours));
        used.add(figures.used_gpu_hours);
        cost.add(figures.cost);
        idle.add(figures.idle_cost);
        unpriced.add(Some(figures.unpriced_gpu_hours));
    }
    Figures {
        gpu_hours: hours.total().unwrap_or_default(),
        used_gpu_hours: used.total(),
        cost: cost.total(),
        idle_cost: idle.total(),
        unpriced_gpu_hours: unpriced.total().unwrap_or_default(),
    }
}

/// A report's columns rounded ([`CostReport::rounded`]), line by line in the report's order.
pub(super) struct RoundedColumns {
    gpu_hours: Apportioned,
    used: Apportioned,
    cost: Apportioned,
    idle: Apportioned,
    unpriced: Apportioned,
}

impl RoundedColumns {
    /// Line `i`'s rounded figures.
    pub(super) fn line(&self, i: usize) -> Figures {
        let zero_hours = fixed(Decimal::ZERO, HOUR_PLACES);
        Figures {
            gpu_hours: self.gpu_hours.lines[i].unwrap_or(zero_hours),
            used_gpu_hours: self.used.lines[i],
            cost: self.cost.lines[i],
            idle_cost: self.idle.lines[i],
            unpriced_gpu_hours: self.unpriced.lines[i].unwrap_or(zero_hours),
        }
    }

    /// The rounded column totals.
    fn total(&self) -> Figures {
        let zero_hours = fixed(Decimal::ZERO, HOUR_PLACES);
        Figures {
            gpu_hours: self.gpu_hours.total.unwrap_or(zero_hours),
            used_gpu_hours: self.used.total,
            cost: self.cost.total,
            idle_cost: self.idle.total,
            unpriced_gpu_hours: self.unpriced.total.unwrap_or(zero_hours),
        }
    }
}
