//! What the threads pricing a report's parts tell each other: each part's exact totals by cost
//! center and namespace, so that a part can be rounded (and written) where it was priced,
//! carrying on from the parts before it however far along the others are ([`Carries`]); and
//! what they hand the writer, which tells them how far it has written.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use super::ReportError;
use crate::cost::{Carries, CostReport, GroupTotals, Warnings};

/// Where a maker hands what it has made of a part before the part is made: written out at once
/// by the thread whose part is next to be written, kept until then by the others.
pub(super) type Early<'a, T> = &'a mut dyn FnMut(T) -> std::io::Result<()>;

/// What a pricing thread hands the writer, in order.
pub(super) enum Handed<T> {
    /// Some of a part, made before the rest of it.
    Early(T),
    /// The rest of a part (or why it could not be made), and its warnings.
    Made(Result<(T, Warnings), ReportError>),
}

/// The parts the writer has written, counted as it ends each.
#[derive(Default)]
pub(super) struct Written(AtomicUsize);

impl Written {
    /// Every part before `at` is written: part `at`'s thread hands it straight over.
    pub(super) fn is_next(&self, at: usize) -> bool {
        self.0.load(Ordering::Acquire) == at
    }

    /// Part `at` is written.
    pub(super) fn passed(&self, at: usize) {
        self.0.store(at + 1, Ordering::Release);
    }
}

/// Each part's exact column totals, told as its thread prices it.
pub(super) struct PartTotals {
    told: Mutex<Told>,
    changed: Condvar,
}

struct Told {
    /// Each part's totals by cost center and namespace, once priced.
    parts: Vec<Option<GroupTotals>>,
    /// A thread stopped before telling all of its parts: those after them are not made.
    stopped: bool,
}

impl PartTotals {
    pub(super) fn new(parts: usize) -> Self {
        PartTotals {
            told: Mutex::new(Told {
                parts: vec![None; parts],
                stopped: false,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Told> {
        // What is told is whole or not at all: a thread that panicked left nothing half-made.
        self.told.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Part `at` is priced: its exact totals.
    pub(super) fn tell(&self, at: usize, totals: GroupTotals) {
        self.lock().parts[at] = Some(totals);
        self.changed.notify_all();
    }

    /// The sum of the exact totals of the parts before `at`, once all are told; `None` if a
    /// thread stopped before telling one.
    pub(super) fn before(&self, at: usize) -> Option<GroupTotals> {
        let told = self
            .changed
            .wait_while(self.lock(), |told| {
                !told.stopped && told.parts[..at].iter().any(Option::is_none)
            })
            .unwrap_or_else(PoisonError::into_inner);
        told.parts[..at]
            .iter()
            .try_fold(GroupTotals::default(), |mut sum, part| {
                sum.absorb(part.as_ref()?);
                Some(sum)
            })
    }

    fn stop(&self) {
        self.lock().stopped = true;
        self.changed.notify_all();
    }
}

/// Stops `PartTotals` when dropped: held by a pricing thread, and forgotten when it has told
/// every part of its own.
pub(super) struct StopOnExit<'a>(pub(super) &'a PartTotals);

impl Drop for StopOnExit<'_> {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// A maker that keeps each part as priced (for a consumer that reads whole reports).
pub(super) fn whole()
-> std::io::Result<impl FnMut(CostReport, Carries) -> std::io::Result<CostReport>> {
    Ok(|report, _| Ok(report))
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;
    use crate::allocation::BuildOptions;
    use crate::cost::{Carried, CostLine, Figures, GroupBy, ReportRequest};
    use crate::pricing::RateCard;
    use crate::reporting::{ReportError, Sources};
    use crate::source::DemoFleet;
    use crate::time::{Interval, Step, parse_time};

    /// What the parts before add up to with every group as one: a report's parts rounded one
    /// after another by one running total ([`Carried::amid`]).
    fn whole(carries: &Carries, report: &CostReport) -> Carried {
        let total = carries.before.total();
        Carried::amid(&total, &report.currency, report.rounding, carries.followed)
    }

    /// One cost center's totals.
    fn hours(gpu_hours: Decimal, cost: Option<Decimal>) -> GroupTotals {
        let figures = Figures {
            gpu_hours,
            cost,
            ..Figures::default()
        };
        [(("cc".to_string(), "ns".to_string()), figures)]
            .into_iter()
            .collect()
    }

    use rust_decimal::Decimal;

    #[test]
    fn a_part_waits_for_the_totals_of_every_part_before_it() {
        let totals = PartTotals::new(3);
        std::thread::scope(|scope| {
            let waiting = scope.spawn(|| totals.before(2));
            totals.tell(1, hours(dec!(2.5), None));
            totals.tell(2, hours(dec!(100), Some(dec!(9))));
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(!waiting.is_finished(), "part 0 is not told yet");
            totals.tell(0, hours(dec!(1.25), Some(dec!(3.10))));
            // Parts 0 and 1 only: 1.25 + 2.5 hours, and the one cost there is.
            let before = waiting.join().unwrap().unwrap().total();
            assert_eq!(before.gpu_hours, dec!(3.75));
            assert_eq!(before.cost, Some(dec!(3.10)));
            assert_eq!(before.used_gpu_hours, None);
        });
        assert_eq!(totals.before(0).unwrap(), GroupTotals::default());
    }

    #[test]
    fn a_thread_that_stops_early_leaves_no_part_waiting() {
        let totals = PartTotals::new(2);
        std::thread::scope(|scope| {
            let waiting = scope.spawn(|| totals.before(1));
            scope.spawn(|| drop(StopOnExit(&totals)));
            assert!(waiting.join().unwrap().is_none());
        });
    }

    /// A day of the demo fleet at scale 1, by resource and hour, each price of the built-in
    /// card a tenth of a cent more (7.57 an hour becomes 7.571): whole GPU-hours cost a
    /// fraction of a cent, which each hour rounds away unless it carries on from the hours
    /// before.
    fn with_a_day(test: impl FnOnce(&Sources<'_>, &tokio::runtime::Handle, &ReportRequest)) {
        let prices = ["on_demand = ", "spot = ", "reserved = "];
        let card: String = crate::pricing::DEFAULT_RATE_CARD
            .lines()
            .map(|line| match line.strip_suffix('"') {
                Some(price) if prices.iter().any(|p| line.starts_with(p)) => {
                    format!("{price}1\"\n")
                }
                _ => format!("{line}\n"),
            })
            .collect();
        let card = RateCard::parse(&card, "a tenth of a cent more").unwrap();
        let start = parse_time("2026-11-01T00:00:00Z").unwrap();
        let end = parse_time("2026-11-02T00:00:00Z").unwrap();
        let set = DemoFleet::new(1, end).allocations(&card, &BuildOptions::new(end));
        let request = ReportRequest {
            window: Interval::new(start, end),
            step: Step::Hour,
            group_by: GroupBy::resources(),
            share_unallocated: false,
            only: Default::default(),
        };
        let sets = [&set];
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        test(
            &Sources::of(&sets, &card, "demo"),
            runtime.handle(),
            &request,
        );
    }

    /// Each period of `request`'s report, rounded where it is priced carrying on from the
    /// periods before with every group as one ([`whole`]).
    fn rounded_by_period(
        sources: &Sources<'_>,
        runtime: &tokio::runtime::Handle,
        request: &ReportRequest,
    ) -> Vec<(CostReport, crate::cost::Rounded)> {
        let mut made = Vec::new();
        let makers = || {
            Ok(|report: CostReport, carries: Carries| {
                let rounded = report.rounded(&mut whole(&carries, &report));
                Ok((report, rounded))
            })
        };
        let each = |part| {
            made.push(part);
            Ok(())
        };
        sources
            .report_by_period(runtime, request, makers, each)
            .unwrap();
        made
    }

    #[test]
    fn parts_rounded_where_priced_are_rounded_as_one_after_another() {
        with_a_day(|sources, runtime, request| {
            // Rounded where each hour is priced, carrying on from what the hours before add up to.
            let made: Vec<_> = rounded_by_period(sources, runtime, request)
                .into_iter()
                .map(|(_, rounded)| rounded)
                .collect();
            // The same hours priced one at a time here, each rounded carrying the one before
            // and followed by more but the last.
            let mut carried = Carried::default();
            let (mut in_order, mut alone) = (Vec::new(), Vec::new());
            let hours = request.step.periods(request.window);
            for (at, &hour) in hours.iter().enumerate() {
                let part = ReportRequest {
                    window: hour,
                    ..request.clone()
                };
                let report = runtime.block_on(sources.report(&part)).unwrap();
                carried = carried.followed(at + 1 < hours.len());
                in_order.push(report.rounded(&mut carried));
                alone.push(report.rounded(&mut Carried::default()));
            }
            assert_eq!(made.len(), 24);
            assert!(made.iter().all(|part| !part.lines.is_empty()));
            // What was carried matters here: hours rounded each on its own print other figures.
            assert_ne!(alone, in_order);
            assert_eq!(made, in_order);
        });
    }

    /// A FOCUS row as read back: its cost center and namespace (`x_CostCenter`,
    /// `SubAccountId`), its `ResourceName`, `BilledCost`, `ConsumedQuantity` and
    /// `x_UnpricedGpuHours`.
    struct Row {
        group: (String, String),
        name: String,
        cost: Decimal,
        hours: Decimal,
        unpriced: Decimal,
    }

    /// The FOCUS CSV of `request` in `sources`, the rows `only` keeps.
    fn focus_rows(
        sources: &Sources<'_>,
        runtime: &tokio::runtime::Handle,
        request: &ReportRequest,
        only: &crate::cost::LineFilter,
    ) -> Vec<Row> {
        use crate::output::{FocusEncoding, FocusSettings};
        let mut csv = Vec::new();
        let settings = FocusSettings::default();
        let encoding = FocusEncoding::Csv;
        sources
            .export_focus(runtime, request, (&settings, encoding, only), &mut csv)
            .unwrap();
        let mut reader = ::csv::Reader::from_reader(&csv[..]);
        let header = reader.headers().unwrap().clone();
        let at = |name: &str| header.iter().position(|h| h == name).unwrap();
        let (cost_center, namespace) = (at("x_CostCenter"), at("SubAccountId"));
        let (cost, hours) = (at("BilledCost"), at("ConsumedQuantity"));
        let (name, unpriced) = (at("ResourceName"), at("x_UnpricedGpuHours"));
        reader
            .records()
            .map(|row| {
                let row = row.unwrap();
                let figure = |at: usize| row[at].parse::<Decimal>().unwrap();
                Row {
                    group: (row[cost_center].to_string(), row[namespace].to_string()),
                    name: row[name].to_string(),
                    cost: figure(cost),
                    hours: figure(hours),
                    unpriced: figure(unpriced),
                }
            })
            .collect()
    }

    /// Rows' `BilledCost` and `ConsumedQuantity`, summed.
    fn sum<'a>(rows: impl IntoIterator<Item = &'a Row>) -> (Decimal, Decimal) {
        let add = |(cost, hours), row: &Row| (cost + row.cost, hours + row.hours);
        rows.into_iter().fold((Decimal::ZERO, Decimal::ZERO), add)
    }

    #[test]
    fn the_focus_rows_of_each_cost_center_and_namespace_add_up_to_its_chargeback_line() {
        with_a_day(|sources, runtime, request| {
            let by_group = ReportRequest {
                step: Step::Window,
                group_by: GroupBy::default(),
                ..request.clone()
            };
            let chargeback = runtime
                .block_on(sources.report(&by_group))
                .unwrap()
                .chargeback();
            let rows = focus_rows(sources, runtime, request, &Default::default());
            for line in &chargeback.lines {
                let mut values = line.group.iter().map(String::from);
                let group = (values.next().unwrap(), values.next().unwrap());
                let (cost, hours) = sum(rows.iter().filter(|row| row.group == group));
                let want = (line.figures.cost.unwrap(), line.figures.gpu_hours);
                assert_eq!((cost, hours), want, "{group:?}");
            }
            let total = (chargeback.total.cost.unwrap(), chargeback.total.gpu_hours);
            assert_eq!(sum(&rows), total);
        });
    }

    #[test]
    fn the_focus_rows_of_one_cost_center_add_up_to_its_chargeback() {
        with_a_day(|sources, runtime, request| {
            let by_cost_center = |only: crate::cost::LineFilter| ReportRequest {
                step: Step::Window,
                group_by: "cost_center".parse().unwrap(),
                only,
                ..request.clone()
            };
            let everyone = runtime
                .block_on(sources.report(&by_cost_center(Default::default())))
                .unwrap()
                .chargeback();
            for line in &everyone.lines {
                let cost_center = line.group.iter().next().unwrap().to_string();
                let only = crate::cost::LineFilter {
                    cost_center: Some(cost_center.clone()),
                    namespace: None,
                };
                // The cost center's own chargeback: its lines rounded among themselves.
                let own = runtime
                    .block_on(sources.report(&by_cost_center(only.clone())))
                    .unwrap()
                    .chargeback()
                    .total;
                let rows = focus_rows(sources, runtime, request, &only);
                assert_eq!(
                    sum(&rows),
                    (own.cost.unwrap(), own.gpu_hours),
                    "{cost_center}"
                );
                assert!(rows.iter().all(|row| row.group.0 == cost_center));
            }
            assert!(everyone.lines.len() > 2);
        });
    }

    /// Two days (11-01 and 11-02) of a node with one L4 at 1.00 an hour, pods holding a seventh
    /// of it for seconds. Cost center `a` (namespace `x`) 144 s on 11-01 only: 0.04/7 GPU-hours,
    /// 0.0057142… USD. `b` (`y`) 90 s each day: 0.05/7, 0.0071428…. The node's unallocated
    /// rest: 48 − 0.09/7 = 47.9871428… The chargeback by cost center and namespace: the total
    /// 48.00, floors 47.98 + 0.00 + 0.00, so two cents go to the largest remainders (5/7 of a
    /// cent for the rest and `b`, 4/7 for `a`): `__unallocated__` 47.99, `a` 0.00, `b` 0.01.
    /// Hours: 48.0000, floors 47.9871 + 0.0057 + 0.0071, one unit, remainders tied at 3/7
    /// (the rest and `b`), to the first line: 47.9872, 0.0057, 0.0071.
    ///
    /// `a`'s rows end on the first day: rounded on its own (0.0057 → 0.01) it printed a cent
    /// its line does not have, and `b` one short.
    #[test]
    fn a_team_whose_rows_end_before_the_last_day_adds_up_to_its_chargeback_line() {
        use crate::units::GpuUnits;
        let mut set = crate::allocation::AllocationSet::default();
        with_node(&mut set, "n1", "NVIDIA L4", "2026-10-01T00:00:00Z");
        let seventh = ("n1", "NVIDIA L4", GpuUnits::ratio(1, 7).unwrap());
        let (a, b) = (("a", "x"), ("b", "y"));
        with_pod(
            &mut set,
            (a, "a1"),
            seventh,
            ("2026-11-01T10:00:00Z", "2026-11-01T10:02:24Z"),
        );
        with_pod(
            &mut set,
            (b, "b1"),
            seventh,
            ("2026-11-01T10:00:00Z", "2026-11-01T10:01:30Z"),
        );
        with_pod(
            &mut set,
            (b, "b2"),
            seventh,
            ("2026-11-02T10:00:00Z", "2026-11-02T10:01:30Z"),
        );
        let window = Interval::new(at("2026-11-01T00:00:00Z"), at("2026-11-03T00:00:00Z"));
        let rows = rows_of(&set, window);
        let of = |cost_center: &str, namespace: &str| {
            let group = (cost_center.to_string(), namespace.to_string());
            sum(rows.iter().filter(|row| row.group == group))
        };
        assert_eq!(of("a", "x"), (dec!(0.00), dec!(0.0057)));
        assert_eq!(of("b", "y"), (dec!(0.01), dec!(0.0071)));
        assert_eq!(of("__unallocated__", ""), (dec!(47.99), dec!(47.9872)));
        assert_eq!(sum(&rows), (dec!(48.00), dec!(48.0000)));
        // Two days: a row of `a` and of `b` and the node's the first, of `b` and the node's
        // the second.
        assert_eq!(rows.len(), 5);
    }

    /// Two days (11-01 and 11-02) of a node with one L4 at 1.00 an hour. `a`, `b` and `c` (in
    /// namespaces `x`, `y`, `z`) each run a pod 22 s on the first day (0.0061111 h, 0.61 of a
    /// cent) and a pod an hour on the second (1.0000 h, 1.00 USD), one after another. The
    /// node's unallocated rest: 48 h less 3 × 3,622 s, 44.9816666 h.
    ///
    /// The chargeback: 48.00 in all; floors 1.00 × 3 + 44.98, so two cents go to the largest
    /// remainders, the teams' 0.61 (tied, the first two): `a` 1.01, `b` 1.01, `c` 1.00, the rest
    /// 44.98. Hours: floors 1.0061 × 3 + 44.9816, one unit to the rest's 0.67: 44.9817.
    ///
    /// `c`'s line is below its nearest cent, so its days round down: the first 0.00, the second
    /// its hour, 1.00. `a` and `b` print the first day's 0.61 of a cent as 0.01, then their hour,
    /// 1.00. Before, every team's first day printed 0.01 and the last day brought `c` to its
    /// line: **0.99** for its hour at 1.00.
    #[test]
    fn a_pod_s_whole_hour_costs_its_price_whatever_its_team_s_line_asks() {
        let mut set = crate::allocation::AllocationSet::default();
        with_node(&mut set, "n1", "NVIDIA L4", "2026-10-01T00:00:00Z");
        let l4 = ("n1", "NVIDIA L4", crate::units::GpuUnits::ONE);
        for (team, hour) in [(("a", "x"), 10), (("b", "y"), 11), (("c", "z"), 12)] {
            let (first, second) = (format!("{}1", team.0), format!("{}2", team.0));
            let from = |day: u32| format!("2026-11-0{day}T{hour}:00:00Z");
            let first_to = format!("2026-11-01T{hour}:00:22Z");
            let second_to = format!("2026-11-02T{}:00:00Z", hour + 1);
            with_pod(&mut set, (team, &first), l4, (&from(1), &first_to));
            with_pod(&mut set, (team, &second), l4, (&from(2), &second_to));
        }
        let window = Interval::new(at("2026-11-01T00:00:00Z"), at("2026-11-03T00:00:00Z"));
        let rows = rows_of(&set, window);
        let of = |name: &str| {
            let row = rows.iter().find(|row| row.name == name).unwrap();
            (row.cost, row.hours)
        };
        assert_eq!(of("a1"), (dec!(0.01), dec!(0.0061)));
        assert_eq!(of("b1"), (dec!(0.01), dec!(0.0061)));
        assert_eq!(of("c1"), (dec!(0.00), dec!(0.0061)));
        for pod in ["a2", "b2", "c2"] {
            assert_eq!(of(pod), (dec!(1.00), dec!(1.0000)), "{pod}");
        }
        let team = |group: (&str, &str)| {
            let group = (group.0.to_string(), group.1.to_string());
            sum(rows.iter().filter(|row| row.group == group))
        };
        assert_eq!(team(("c", "z")), (dec!(1.00), dec!(1.0061)));
        assert_eq!(team(("a", "x")), (dec!(1.01), dec!(1.0061)));
        assert_eq!(team(("__unallocated__", "")), (dec!(44.98), dec!(44.9817)));
        assert_eq!(sum(&rows), (dec!(48.00), dec!(48.0000)));
    }

    /// Two days (11-01 and 11-02) of a node with one L4 at 1.00 an hour (`n1`) and one with a
    /// GH200 the card has no price for (`n2`). In units of 0.0001 h (a second is 25/9 of one):
    /// - 11-01: on `n2`, `a`'s pod u1 7 s (19 4/9) and `b`'s pod v 3 s (8 3/9).
    /// - 11-02: `a`'s pod p an hour of the L4 (10,000, 1.00 USD), its pod u2 9 s of the GH200
    ///   (25).
    /// - The nodes' unallocated rest: the L4's 47 h, priced (47.00 USD); the GH200's 48 h less
    ///   19 s, 479,947 2/9 unpriced.
    ///
    /// The chargeback's unpriced hours: 480,000 in all; floors `a` 44, `b` 8, the rest 479,947,
    /// so one unit to the largest remainder, `a`'s 4/9: `a` 0.0045, `b` 0.0008, the rest
    /// 47.9947. Its hours: `a` 1.0045 (10,044 4/9 holding 45, the unit to its 4/9 over the
    /// rest's 2/9), `b` 0.0008, the rest 94.9947.
    ///
    /// `a`'s line is above its nearest (44 4/9 → 44), so its unpriced hours so far round up
    /// once within 5/9 of the next unit: u1's 19 4/9 print 20, and u2 its 25 exactly; p its
    /// hour, 1.0000 h, none of it unpriced. Before, u1 printed its nearest, 19, leaving the
    /// second day 26 units for u2's 25, and p (first in print order, tied with u2 at a
    /// remainder of 0) took the unit: 0.0001 unpriced hours on a priced row, and 1.0001 h.
    #[test]
    fn a_team_s_unpriced_unit_goes_where_its_rows_have_a_fraction_for_it() {
        let mut set = crate::allocation::AllocationSet::default();
        with_node(&mut set, "n1", "NVIDIA L4", "2026-10-01T00:00:00Z");
        with_node(&mut set, "n2", "NVIDIA GH200", "2026-10-01T00:00:00Z");
        let whole = crate::units::GpuUnits::ONE;
        let (l4, gh200) = (("n1", "NVIDIA L4", whole), ("n2", "NVIDIA GH200", whole));
        let (a, b) = (("a", "x"), ("b", "y"));
        let day = |day: u32, from: &str, to: &str| {
            let at = |time: &str| format!("2026-11-0{day}T{time}Z");
            (at(from), at(to))
        };
        let pods = [
            ((a, "u1"), gh200, day(1, "10:00:00", "10:00:07")),
            ((b, "v"), gh200, day(1, "11:00:00", "11:00:03")),
            ((a, "p"), l4, day(2, "10:00:00", "11:00:00")),
            ((a, "u2"), gh200, day(2, "10:00:00", "10:00:09")),
        ];
        for (pod, holds, (from, to)) in pods {
            with_pod(&mut set, pod, holds, (&from, &to));
        }
        let window = Interval::new(at("2026-11-01T00:00:00Z"), at("2026-11-03T00:00:00Z"));
        let rows = rows_of(&set, window);
        let of = |name: &str| {
            let row = rows.iter().find(|row| row.name == name).unwrap();
            (row.cost, row.hours, row.unpriced)
        };
        assert_eq!(of("u1"), (dec!(0.00), dec!(0.0020), dec!(0.0020)));
        assert_eq!(of("v"), (dec!(0.00), dec!(0.0008), dec!(0.0008)));
        assert_eq!(of("p"), (dec!(1.00), dec!(1.0000), dec!(0.0000)));
        assert_eq!(of("u2"), (dec!(0.00), dec!(0.0025), dec!(0.0025)));
        let unpriced = |group: (&str, &str)| -> Decimal {
            let group = (group.0.to_string(), group.1.to_string());
            let rows = rows.iter().filter(|row| row.group == group);
            rows.map(|row| row.unpriced).sum()
        };
        assert_eq!(unpriced(a), dec!(0.0045));
        assert_eq!(unpriced(b), dec!(0.0008));
        assert_eq!(unpriced(("__unallocated__", "")), dec!(47.9947));
        assert_eq!(sum(&rows), (dec!(48.00), dec!(96.0000)));
    }

    /// The FOCUS rows of `set` over `window`, priced at the L4's 1.00 an hour.
    fn rows_of(set: &crate::allocation::AllocationSet, window: Interval) -> Vec<Row> {
        let mut rows = Vec::new();
        with_set(set, ("L4", "1.00"), window, |sources, runtime, request| {
            rows = focus_rows(sources, runtime, request, &Default::default());
        });
        rows
    }

    /// A pod holding an H100 (priced) and a GH200 nobody holds (unpriced), by day from
    /// 2026-11-01T01:00:02 to 11-03T06:00:01, rounded where each day is priced. In units of
    /// 0.0001 h (a second is 25/9 of one):
    /// - 11-01: the H100 from 01:00:02, 229,994 4/9; `a` holds it from 12:00, 120,000, its
    ///   node the rest, 109,994 4/9. Hours so far print 229,994: a 12.0000, the node 10.9994.
    /// - 11-02: `a` all day, 240,000; the GH200 from 12:00:02, 119,994 4/9, unpriced. The
    ///   hours so far, 589,988 8/9, round to 589,989: 359,995 for the day, of which 119,994
    ///   unpriced, would leave `a` 240,001 (24.0001 for its 24 hours). Amid the days, the
    ///   hours so far print as their unpriced (119,994 4/9 → 119,994) and priced (469,994 4/9
    ///   → 469,994) parts each rounded: the day prints 359,994, `a` 24.0000.
    /// - 11-03 to 06:00:01: `a` and the GH200 each 60,002 7/9. The last day brings the hours
    ///   to all of them rounded, 709,994 4/9 → 709,994: 120,006 for the day, of which the
    ///   unpriced hours so far, 179,997 2/9 → 179,997, less 119,994 printed: 60,003. `a` takes
    ///   the rest, 60,003, its exact hours rounded up.
    fn at(text: &str) -> i64 {
        parse_time(text).unwrap()
    }

    /// `set` with a node of one GPU of `product` from `from` to December.
    fn with_node(
        set: &mut crate::allocation::AllocationSet,
        node: &str,
        product: &str,
        from: &str,
    ) {
        let capacity = crate::allocation::NodeCapacity {
            node: set.names.intern(node),
            product: set.names.intern(product),
            units: crate::units::GpuUnits::ONE,
            interval: Interval::new(at(from), at("2026-12-01T00:00:00Z")),
            tier: crate::pricing::PriceTier::OnDemand,
            price_override: None,
        };
        set.capacity.push(capacity);
    }

    /// `set` with pod `pod` of cost center and namespace `group` holding `units` of `product`
    /// on `node` from `from` to `to`.
    fn with_pod(
        set: &mut crate::allocation::AllocationSet,
        (group, pod): ((&str, &str), &str),
        (node, product, units): (&str, &str, crate::units::GpuUnits),
        (from, to): (&str, &str),
    ) {
        use crate::allocation::{Allocation, AllocationKind, CostCenterSource, Sym};
        let allocation = Allocation {
            namespace: set.names.intern(group.1),
            pod: set.names.intern(pod),
            pod_uid: set.names.intern(pod),
            resource_id: set.names.intern(pod),
            claim: Sym::EMPTY,
            node: set.names.intern(node),
            product: set.names.intern(product),
            kind: AllocationKind::Gpu,
            units,
            interval: Interval::new(at(from), at(to)),
            tier: crate::pricing::PriceTier::OnDemand,
            price_override: None,
            cost_center: set.names.intern(group.0),
            cost_center_source: CostCenterSource::PodLabel,
        };
        set.allocations.push(allocation);
    }

    /// `test` run on `set`, one model priced (`(model, on_demand)`, USD an hour), given the
    /// report a FOCUS export of `window` asks for.
    fn with_set(
        set: &crate::allocation::AllocationSet,
        (model, on_demand): (&str, &str),
        window: Interval,
        test: impl FnOnce(&Sources<'_>, &tokio::runtime::Handle, &ReportRequest),
    ) {
        let card = format!(
            "currency = \"USD\"\n[[gpu]]\nmodel = \"{model}\"\non_demand = \"{on_demand}\"\n"
        );
        let card = RateCard::parse(&card, "card").unwrap();
        let request = crate::output::focus_request(&ReportRequest {
            window,
            step: Step::Window,
            group_by: GroupBy::default(),
            share_unallocated: false,
            only: Default::default(),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let sets = [set];
        test(
            &Sources::of(&sets, &card, "test"),
            runtime.handle(),
            &request,
        );
    }

    #[test]
    fn amid_a_report_in_parts_a_priced_line_prints_its_hours_rounded_whatever_the_unpriced() {
        use crate::units::GpuUnits;
        let mut set = crate::allocation::AllocationSet::default();
        with_node(&mut set, "n1", "NVIDIA H100", "2026-10-01T00:00:00Z");
        with_node(&mut set, "n2", "NVIDIA GH200", "2026-11-02T12:00:02Z");
        let a = (("cc", "ns"), "a");
        let h100 = ("n1", "NVIDIA H100", GpuUnits::ONE);
        with_pod(
            &mut set,
            a,
            h100,
            ("2026-11-01T12:00:00Z", "2026-12-01T00:00:00Z"),
        );
        let window = Interval::new(at("2026-11-01T01:00:02Z"), at("2026-11-03T06:00:01Z"));
        let mut days = Vec::new();
        with_set(
            &set,
            ("H100", "3.00"),
            window,
            |sources, runtime, request| {
                for (report, rounded) in rounded_by_period(sources, runtime, request) {
                    // The pod's line, or its node's unallocated capacity.
                    let named = |(line, figures): (&CostLine, &Figures)| {
                        let group = line.group.join("/");
                        let name = match () {
                            _ if group.starts_with("cc/") => "a",
                            _ if group.contains("n1") => "n1",
                            _ => "n2",
                        };
                        (name, figures.gpu_hours, figures.unpriced_gpu_hours)
                    };
                    let mut lines: Vec<_> =
                        report.lines.iter().zip(&rounded.lines).map(named).collect();
                    lines.sort();
                    days.push(lines);
                }
            },
        );
        let zero = dec!(0.0000);
        assert_eq!(
            days,
            [
                vec![("a", dec!(12.0000), zero), ("n1", dec!(10.9994), zero)],
                vec![
                    ("a", dec!(24.0000), zero),
                    ("n2", dec!(11.9994), dec!(11.9994))
                ],
                vec![
                    ("a", dec!(6.0003), zero),
                    ("n2", dec!(6.0003), dec!(6.0003))
                ],
            ]
        );
        let all: Decimal = days.iter().flatten().map(|(_, hours, _)| hours).sum();
        assert_eq!(all, dec!(70.9994));
    }

    #[test]
    fn what_is_made_of_a_part_early_is_written_in_order_and_at_once_when_the_part_is_next() {
        with_a_day(|sources, runtime, request| {
            let received = std::sync::atomic::AtomicUsize::new(0);
            let first_hour = request.window.start;
            let mut written = Vec::new();
            let makers = || {
                let received = &received;
                Ok(move |report: CostReport, _, early: Early<'_, (i64, u8)>| {
                    let hour = report.request.window.start;
                    early((hour, 0))?;
                    if hour == first_hour {
                        // Nothing is written before the first hour: its first piece goes out
                        // before the hour is made, not kept until then.
                        let waited = std::time::Instant::now();
                        while received.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                            let waiting = waited.elapsed().as_secs();
                            assert!(waiting < 10, "the first piece was kept, not written");
                            std::thread::sleep(std::time::Duration::from_millis(1));
                        }
                    }
                    early((hour, 1))?;
                    Ok((hour, 2))
                })
            };
            let each = |piece| {
                received.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                written.push(piece);
                Ok(())
            };
            sources
                .report_in_parts(runtime, request, request.step, makers, each)
                .unwrap();
            let hours = request.step.periods(request.window);
            let expected: Vec<(i64, u8)> = hours
                .iter()
                .flat_map(|hour| [(hour.start, 0), (hour.start, 1), (hour.start, 2)])
                .collect();
            assert_eq!(written.len(), 72);
            assert_eq!(written, expected);
        });
    }

    #[test]
    fn a_writer_or_a_maker_that_fails_ends_the_report_with_its_error() {
        with_a_day(|sources, runtime, request| {
            let mut written = 0;
            let failed = sources.report_by_period(
                runtime,
                request,
                || Ok(|report: CostReport, _| Ok(report.lines.len())),
                |_| {
                    written += 1;
                    Err(std::io::Error::other("disk full").into())
                },
            );
            assert!(matches!(failed, Err(ReportError::Output(e)) if e.to_string() == "disk full"));
            assert_eq!(written, 1);
            let failed = sources.report_by_period(
                runtime,
                request,
                || -> std::io::Result<fn(CostReport, Carries) -> std::io::Result<()>> {
                    Err(std::io::Error::other("no room for a part"))
                },
                |()| Ok(()),
            );
            let no_room = |e: &std::io::Error| e.to_string() == "no room for a part";
            assert!(matches!(failed, Err(ReportError::Output(e)) if no_room(&e)));
        });
    }
}
