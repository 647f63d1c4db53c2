//! A report printed in parts (a FOCUS export's charge periods), each cost center and namespace
//! rounded carrying on from its own parts before, so that its rows add up to its line of the
//! chargeback over the same window, not only all rows to the chargeback's total.
//!
//! Amid the parts, a group's rows bring its printed sum so far to its exact sum so far rounded
//! ([`Carried::amid`]): each row stays its exact value rounded down or up. The last part brings
//! every group to its line of the chargeback by cost center and namespace — the groups' sums
//! so far rounded together, largest remainders first, so that they add up to the rounded total.
//! A group with no row in the last part keeps what it printed, and the others make the total.

use std::collections::BTreeMap;

use super::group::GroupKey;
use super::report::{Carried, CostLine, CostReport, Figures, exact_sum};
use super::request::LineFilter;

/// A cost center and namespace (empty where the report is not grouped by it).
type Group = (String, String);

/// Each cost center and namespace's exact column totals.
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
}

impl FromIterator<(Group, Figures)> for GroupTotals {
    fn from_iter<I: IntoIterator<Item = (Group, Figures)>>(totals: I) -> Self {
        GroupTotals(totals.into_iter().collect())
    }
}

/// What the parts of a report printed before the next one add up to, group by group.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Carries {
    /// Each group's exact totals in the parts before.
    pub before: GroupTotals,
    /// More parts follow the next one.
    pub followed: bool,
}

impl Carries {
    /// What the parts before add up to with every group as one ([`Carried::amid`]).
    pub fn whole(&self, report: &CostReport) -> Carried {
        let total = self.before.total();
        Carried::amid(&total, &report.currency, report.rounding, self.followed)
    }
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
        let totals = self.groups().into_iter().map(|(group, at)| {
            let sum = exact_sum(at.iter().map(|&i| &self.lines[i]));
            (group, sum)
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
        let (currency, rounding) = (&self.currency, self.rounding);
        let nothing = Figures::default();
        let before = |group: &Group| carries.before.0.get(group).unwrap_or(&nothing);
        let aims = if carries.followed {
            BTreeMap::new()
        } else {
            self.last_lines(only, &groups, &carries.before)
        };
        let mut figures = vec![Figures::default(); self.lines.len()];
        for (group, at) in &groups {
            let mut carried = Carried::amid(before(group), currency, rounding, carries.followed);
            if let Some(aim) = aims.get(group) {
                carried = carried.aiming(aim);
            }
            let lines: Vec<&CostLine> = at.iter().map(|&i| &self.lines[i]).collect();
            let columns = self.columns_of(&lines, &mut carried);
            for (n, &i) in at.iter().enumerate() {
                figures[i] = columns.line(n);
            }
        }
        figures
    }

    /// What each kept group of the last part prints over all parts: the groups' sums of all
    /// parts, `before` and these `groups`, rounded together as the chargeback's lines are; a
    /// kept group with no line in this part keeps what its parts before printed.
    fn last_lines(
        &self,
        only: &LineFilter,
        groups: &BTreeMap<Group, Vec<usize>>,
        before: &GroupTotals,
    ) -> BTreeMap<Group, Figures> {
        let (currency, rounding) = (&self.currency, self.rounding);
        let mut now = before.clone();
        now.absorb(&self.group_totals());
        let (mut here, mut named) = (Vec::new(), Vec::new());
        let (mut gone, mut gone_printed) = (Figures::default(), Figures::default());
        for (group, so_far) in &now.0 {
            if !only.keeps_group(&group.0, &group.1) {
                continue;
            }
            if groups.contains_key(group) {
                here.push(CostLine {
                    period: self.lines[groups[group][0]].period,
                    group: std::iter::empty::<String>().collect(),
                    figures: so_far.clone(),
                });
                named.push(group.clone());
            } else {
                gone.absorb(so_far);
                let printed = Carried::amid(so_far, currency, rounding, true).printed();
                gone_printed.absorb(&printed);
            }
        }
        let mut carried = Carried::printed_as(&gone, &gone_printed);
        let columns = self.columns_of(&here, &mut carried);
        named
            .into_iter()
            .enumerate()
            .map(|(n, group)| (group, columns.line(n)))
            .collect()
    }
}
