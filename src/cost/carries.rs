//! A report printed in parts (a FOCUS export's charge periods, the days an export writes), each
//! cost center and namespace rounded carrying on from its own parts before, so that its rows add
//! up to its line of the chargeback over the same window, not only all rows to the
//! chargeback's total.
//!
//! A group's line is its line of the chargeback by cost center and namespace — the groups'
//! sums rounded together, largest remainders first, so that they add up to the rounded total.
//! Where the lines are known before the first part ([`GroupLines`]: an export, which works them
//! out first), every part rounds each group's sums so far toward its line
//! ([`money::toward_line`]): each row stays its exact value rounded down or up, and the group
//! reaches its line in the part where its rows end, whichever that is. Without them, amid the
//! parts a group's rows bring its printed sum so far to its exact sum so far rounded
//! ([`Carried::amid`]), the last part brings every group to its line, and a group with no row
//! in the last part keeps what it printed (a unit from its line at most) while the others make
//! the total. Parts each written as the last of their span (an export's day files) are each
//! rounded as a last part, carrying on from what the days before printed
//! ([`Carries::of_days`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use rust_decimal::Decimal;

use super::group::GroupKey;
use super::report::{Carried, Chargeback, CostLine, CostReport, Figures, HOUR_PLACES, exact_sum};
use super::request::LineFilter;
use crate::money::{self, Currency, Rounding};
use crate::time::Interval;

/// A cost center and namespace (empty where the report is not grouped by it).
type Group = (String, String);

/// Each cost center and namespace's column totals.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct GroupTotals(BTreeMap<Group, Figures>);

impl GroupTotals {
    /// Adds `other`'s totals in, group by group.
    pub fn absorb(&mut self, other: &GroupTotals) {
        for (group, figures) in &other.0 {
            self.0.entry(group.clone()).or_default().absorb(figures);
        }
    }

    /// The totals of every group together.
    pub fn total(&self) -> Figures {
        self.0
            .values()
            .fold(Figures::default(), |mut sum, figures| {
                sum.absorb(figures);
                sum
            })
    }

    /// A group's totals (none: nothing).
    fn of(&self, group: &Group) -> Figures {
        self.0.get(group).cloned().unwrap_or_default()
    }
}

impl FromIterator<(Group, Figures)> for GroupTotals {
    fn from_iter<I: IntoIterator<Item = (Group, Figures)>>(totals: I) -> Self {
        GroupTotals(totals.into_iter().collect())
    }
}

/// Each cost center and namespace's line of the chargeback over a whole report printed in parts,
/// known before its first part: its exact totals over the window, and what they print as (the
/// groups a filter keeps rounded together, as that filtered chargeback's lines are).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct GroupLines {
    exact: GroupTotals,
    printed: BTreeMap<Group, Figures>,
}

impl GroupLines {
    /// The lines of the groups `only` keeps, of a window whose groups' exact totals are
    /// `window` (a report over it by cost center and namespace).
    pub fn new(window: GroupTotals, only: &LineFilter, money: (&Currency, Rounding)) -> Self {
        let printed = aims(&window, &Carries::default(), only, money);
        GroupLines {
            exact: window,
            printed,
        }
    }

    /// `group`'s exact totals over the window and its line (none for a group not kept).
    fn of(&self, group: &Group) -> Option<(&Figures, &Figures)> {
        Some((self.exact.0.get(group)?, self.printed.get(group)?))
    }
}

/// What the parts of a report printed before the next one add up to, group by group.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Carries {
    /// Each group's exact totals in the parts before.
    pub before: GroupTotals,
    /// What each group printed in the parts before, where each part was printed as the last
    /// of its span ([`Carries::of_days`]); `None`: parts of one export, amid which a group
    /// printed its running total rounded ([`Carried::amid`]).
    pub printed: Option<GroupTotals>,
    /// More parts follow the next one.
    pub followed: bool,
    /// Each group's line over the whole report, where it is known before the parts: every part
    /// rounds the group toward it ([`money::toward_line`]).
    pub lines: Option<Arc<GroupLines>>,
}

impl Carries {
    /// What `days` printed (each group's exact totals a day, in order), each written as the
    /// last of its span (an export's day files, from the month's first day): worked out again
    /// from their exact totals, so a day written in any run carries on as if all were written
    /// in one.
    pub fn of_days(days: &[GroupTotals], money: (&Currency, Rounding)) -> Self {
        let mut carries = Carries {
            printed: Some(GroupTotals::default()),
            ..Carries::default()
        };
        for day in days {
            let aims = aims(day, &carries, &LineFilter::default(), money);
            if let Some(printed) = &mut carries.printed {
                printed.0.extend(aims);
            }
            carries.before.absorb(day);
        }
        carries
    }

    /// `group`'s exact totals over the whole report and its line there, where known
    /// ([`GroupLines`]).
    fn ends(&self, group: &Group) -> Option<(&Figures, &Figures)> {
        self.lines.as_deref()?.of(group)
    }

    /// `group`'s line over the whole report, once its exact totals so far are `so_far` and
    /// they are all of the window's: every row of it is in.
    fn ended(&self, group: &Group, so_far: &Figures) -> Option<&Figures> {
        let (window, line) = self.ends(group)?;
        window.settled_alike(so_far).then_some(line)
    }

    /// What a group printed before, its exact totals so far being `so_far`: rounded toward
    /// its line where that is known ([`toward_line`]).
    fn printed_before(
        &self,
        group: &Group,
        so_far: &Figures,
        money: (&Currency, Rounding),
    ) -> Carried {
        match (&self.printed, self.ends(group)) {
            (Some(printed), _) => Carried::printed_as(so_far, &printed.of(group)),
            (None, Some(ends)) => Carried::printed_as(so_far, &toward_line(so_far, ends, money)),
            (None, None) => Carried::amid(so_far, money.0, money.1, self.followed),
        }
    }
}

/// What a group's parts so far print, column by column, their exact sums so far being `so_far`
/// and the group's exact totals over the window and its line `(window, line)`: each column's
/// sum so far rounded toward its line ([`money::toward_line`]), so that every part prints its
/// exact sums rounded down or up and the part where a column's figures end brings it to the
/// line. Hours are their unpriced and their priced part each rounded toward the line's, as a
/// row's hours are wholly one or the other: an unpriced row then prints its unpriced hours as
/// its hours, and priced rows make up the rest.
fn toward_line(
    so_far: &Figures,
    (window, line): (&Figures, &Figures),
    (currency, rounding): (&Currency, Rounding),
) -> Figures {
    let toward = |pick: fn(&Figures) -> Option<Decimal>, places: u32| match (
        pick(so_far),
        pick(window),
        pick(line),
    ) {
        (Some(so_far), Some(window), Some(line)) => {
            Some(money::toward_line(so_far, (window, line), places))
        }
        (so_far, ..) => so_far.map(|so_far| rounding.money(so_far, places)),
    };
    let priced = |f: &Figures| Some(f.gpu_hours - f.unpriced_gpu_hours);
    let unpriced = |f: &Figures| Some(f.unpriced_gpu_hours);
    let hours = |pick| toward(pick, HOUR_PLACES).unwrap_or_default();
    let money = currency.minor_units();
    Figures {
        gpu_hours: hours(unpriced) + hours(priced),
        used_gpu_hours: toward(|f| f.used_gpu_hours, HOUR_PLACES),
        cost: toward(|f| f.cost, money),
        idle_cost: toward(|f| f.idle_cost, money),
        unpriced_gpu_hours: hours(unpriced),
    }
}

/// What each group `only` keeps prints over all parts once `part` (each group's exact totals
/// in it) is printed as the last: the groups' sums of all parts rounded together as the
/// chargeback's lines are; a group with no line in `part`, or whose rows ended, keeps what it
/// printed (its line, [`Carries::ended`]).
fn aims(
    part: &GroupTotals,
    carries: &Carries,
    only: &LineFilter,
    money: (&Currency, Rounding),
) -> BTreeMap<Group, Figures> {
    let mut now = carries.before.clone();
    now.absorb(part);
    let (mut here, mut named) = (Vec::new(), Vec::new());
    let (mut gone, mut gone_printed) = (Figures::default(), Figures::default());
    for (group, so_far) in &now.0 {
        if !only.keeps_group(&group.0, &group.1) {
            continue;
        }
        match part.0.get(group) {
            Some(in_part) if carries.ended(group, so_far).is_none() => {
                // What the group printed before this part, in the columns its rows here have
                // nothing of, it keeps: the groups that can move them make them up.
                let before = carries.before.of(group);
                let printed = carries.printed_before(group, &before, money).printed();
                let (free, kept) = movable(in_part, so_far, &printed);
                gone.absorb(&kept.0);
                gone_printed.absorb(&kept.1);
                here.push(CostLine {
                    period: Interval::new(0, 0),
                    group: std::iter::empty::<String>().collect(),
                    figures: free,
                });
                named.push((group.clone(), kept.1));
            }
            _ => {
                gone.absorb(so_far);
                gone_printed.absorb(&carries.printed_before(group, so_far, money).printed());
            }
        }
    }
    let mut carried = Carried::printed_as(&gone, &gone_printed);
    let columns = CostReport::columns_of(&here, money, &mut carried);
    named
        .into_iter()
        .enumerate()
        .map(|(n, (group, kept))| {
            let mut aim = columns.line(n);
            aim.absorb(&kept);
            (group, aim)
        })
        .collect()
}

/// A group's exact figures so far (`so_far`) split by what its rows in a part (`part`) can
/// move: the columns they have some of, and the others (a cost where every row is of a model
/// without a price, unpriced hours where every row is priced), exact and as printed before
/// (`printed`), which stay as they were.
fn movable(part: &Figures, so_far: &Figures, printed: &Figures) -> (Figures, (Figures, Figures)) {
    // A column the rows have none of: taken out of the free figures, kept exact and printed.
    let option = |part: Option<Decimal>, free: &mut Option<Decimal>, printed: Option<Decimal>| {
        if part.is_some_and(|v| !v.is_zero()) || free.is_none() {
            (None, None)
        } else {
            (free.take(), printed)
        }
    };
    let decimal = |part: Decimal, free: &mut Decimal, printed: Decimal| {
        if part.is_zero() && !free.is_zero() {
            (std::mem::take(free), printed)
        } else {
            (Decimal::ZERO, Decimal::ZERO)
        }
    };
    let mut free = so_far.clone();
    let hours = decimal(part.gpu_hours, &mut free.gpu_hours, printed.gpu_hours);
    let used = option(
        part.used_gpu_hours,
        &mut free.used_gpu_hours,
        printed.used_gpu_hours,
    );
    let cost = option(part.cost, &mut free.cost, printed.cost);
    let idle = option(part.idle_cost, &mut free.idle_cost, printed.idle_cost);
    let unpriced = decimal(
        part.unpriced_gpu_hours,
        &mut free.unpriced_gpu_hours,
        printed.unpriced_gpu_hours,
    );
    let kept = Figures {
        gpu_hours: hours.0,
        used_gpu_hours: used.0,
        cost: cost.0,
        idle_cost: idle.0,
        unpriced_gpu_hours: unpriced.0,
    };
    let kept_printed = Figures {
        gpu_hours: hours.1,
        used_gpu_hours: used.1,
        cost: cost.1,
        idle_cost: idle.1,
        unpriced_gpu_hours: unpriced.1,
    };
    (free, (kept, kept_printed))
}

impl CostReport {
    /// The line numbers of each cost center and namespace, in text order.
    fn groups(&self) -> BTreeMap<Group, Vec<usize>> {
        let keys = self.request.group_by.keys();
        let at = |key| keys.iter().position(|k| *k == key);
        let (cost_center, namespace) = (at(GroupKey::CostCenter), at(GroupKey::Namespace));
        let mut groups: BTreeMap<Group, Vec<usize>> = BTreeMap::new();
        // Lines come sorted by their group values: a group's lines are met in a run, named once.
        let mut run: Option<(&str, &str, Vec<usize>)> = None;
        let mut end = |run: Option<(&str, &str, Vec<usize>)>| {
            if let Some((cc, ns, lines)) = run {
                let group = (cc.to_string(), ns.to_string());
                groups.entry(group).or_default().extend(lines);
            }
        };
        for (i, line) in self.lines.iter().enumerate() {
            let value = |at: Option<usize>| at.and_then(|at| line.group.get(at)).unwrap_or("");
            let (cc, ns) = (value(cost_center), value(namespace));
            match &mut run {
                Some((run_cc, run_ns, lines)) if *run_cc == cc && *run_ns == ns => lines.push(i),
                _ => end(run.replace((cc, ns, vec![i]))),
            }
        }
        end(run);
        groups
    }

    /// Each cost center and namespace's exact totals in this report.
    pub fn group_totals(&self) -> GroupTotals {
        self.totals_of(&self.groups())
    }

    /// The exact totals of `groups`, lines of this report.
    fn totals_of(&self, groups: &BTreeMap<Group, Vec<usize>>) -> GroupTotals {
        let totals = groups.iter().map(|(group, at)| {
            let sum = exact_sum(at.iter().map(|&i| &self.lines[i]));
            (group.clone(), sum)
        });
        totals.collect()
    }

    /// Every line's figures, in the report's order, rounded as a part of a report printed in
    /// parts after `carries` (see the module's text): each cost center and namespace carrying
    /// on from its own parts before, and in the last part brought to its chargeback line. The
    /// groups `only` keeps are rounded together in the last part (a cost center's or
    /// namespace's export adds up to its own chargeback); the others apart, so that every line
    /// has figures (a FOCUS `AllocatedRatio` is a share of all of an origin's lines).
    pub fn rounded_in_groups(&self, only: &LineFilter, carries: &Carries) -> Vec<Figures> {
        let groups = self.groups();
        let money = (&self.currency, self.rounding);
        // This part's totals, where they decide what a group is brought to: in the last part,
        // and in any once the groups' lines are known (a group whose rows end here).
        let part = if !carries.followed || carries.lines.is_some() {
            self.totals_of(&groups)
        } else {
            GroupTotals::default()
        };
        let aims = if carries.followed {
            BTreeMap::new()
        } else {
            aims(&part, carries, only, money)
        };
        let mut figures = vec![Figures::default(); self.lines.len()];
        for (group, at) in &groups {
            let mut so_far = carries.before.of(group);
            let mut carried = carries.printed_before(group, &so_far, money);
            so_far.absorb(&part.of(group));
            // The last part brings a group to what `aims` says; any brings each column whose
            // figures end in it to the group's line.
            if let Some(aim) = aims.get(group) {
                carried = carried.aiming(aim);
            } else if let Some(ends) = carries.ends(group) {
                carried = carried.aiming(&toward_line(&so_far, ends, money));
            }
            let lines: Vec<&CostLine> = at.iter().map(|&i| &self.lines[i]).collect();
            let columns = Self::columns_of(&lines, money, &mut carried);
            for (n, &i) in at.iter().enumerate() {
                figures[i] = columns.line(n);
            }
        }
        figures
    }

    /// The chargeback of this report printed as a part after `carries`
    /// ([`CostReport::rounded_in_groups`]).
    pub fn chargeback_in_groups(&self, carries: &Carries) -> Chargeback {
        let figures = self.rounded_in_groups(&LineFilter::default(), carries);
        let mut total = Figures::default();
        let lines = self.lines.iter().zip(figures).map(|(line, figures)| {
            total.absorb(&figures);
            CostLine {
                period: line.period,
                group: line.group.clone(),
                figures,
            }
        });
        let lines = lines.collect();
        self.printed(lines, total)
    }

    /// Each cost center and namespace's exact totals in each period of this report, in order
    /// (a period without lines is left out).
    pub fn group_totals_by_period(&self) -> Vec<GroupTotals> {
        let mut periods: BTreeMap<Interval, GroupTotals> = BTreeMap::new();
        for (group, at) in self.groups() {
            let mut by_period: BTreeMap<Interval, Vec<&CostLine>> = BTreeMap::new();
            for &i in &at {
                let line = &self.lines[i];
                by_period.entry(line.period).or_default().push(line);
            }
            for (period, lines) in by_period {
                let sum = exact_sum(lines);
                periods
                    .entry(period)
                    .or_default()
                    .0
                    .insert(group.clone(), sum);
            }
        }
        periods.into_values().collect()
    }
}
