//! What the threads pricing a report's parts tell each other: each part's exact totals, so that
//! a part can be rounded (and written) where it was priced, carrying on from the parts before
//! it however far along the others are ([`Carried::after`](crate::cost::Carried::after)); and
//! what they hand the writer, which tells them how far it has written.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use super::ReportError;
use crate::cost::{Carried, CostReport, Figures, Warnings};

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
    /// Each part's totals, once priced.
    parts: Vec<Option<Figures>>,
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
    pub(super) fn tell(&self, at: usize, totals: Figures) {
        self.lock().parts[at] = Some(totals);
        self.changed.notify_all();
    }

    /// The sum of the exact totals of the parts before `at`, once all are told; `None` if a
    /// thread stopped before telling one.
    pub(super) fn before(&self, at: usize) -> Option<Figures> {
        let told = self
            .changed
            .wait_while(self.lock(), |told| {
                !told.stopped && told.parts[..at].iter().any(Option::is_none)
            })
            .unwrap_or_else(PoisonError::into_inner);
        told.parts[..at]
            .iter()
            .try_fold(Figures::default(), |mut sum, part| {
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
-> std::io::Result<impl FnMut(CostReport, Carried) -> std::io::Result<CostReport>> {
    Ok(|report, _| Ok(report))
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;
    use crate::allocation::BuildOptions;
    use crate::cost::{CostLine, GroupBy, ReportRequest};
    use crate::pricing::RateCard;
    use crate::reporting::{ReportError, Sources};
    use crate::source::DemoFleet;
    use crate::time::{Interval, Step, parse_time};

    fn hours(gpu_hours: Decimal, cost: Option<Decimal>) -> Figures {
        Figures {
            gpu_hours,
            cost,
            ..Figures::default()
        }
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
            let before = waiting.join().unwrap().unwrap();
            assert_eq!(before.gpu_hours, dec!(3.75));
            assert_eq!(before.cost, Some(dec!(3.10)));
            assert_eq!(before.used_gpu_hours, None);
        });
        assert_eq!(totals.before(0).unwrap().gpu_hours, Decimal::ZERO);
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

    #[test]
    fn parts_rounded_where_priced_are_rounded_as_one_after_another() {
        with_a_day(|sources, runtime, request| {
            // Rounded where each hour is priced, carrying on from what the hours before add up to.
            let mut made = Vec::new();
            sources
                .report_by_period(
                    runtime,
                    request,
                    || Ok(|report: CostReport, mut carried| Ok(report.rounded(&mut carried))),
                    |rounded| {
                        made.push(rounded);
                        Ok(())
                    },
                )
                .unwrap();
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

    /// The FOCUS CSV of `request` in `sources`, the rows `only` keeps: each row's
    /// (`x_CostCenter`, `BilledCost`, `ConsumedQuantity`).
    fn focus_rows(
        sources: &Sources<'_>,
        runtime: &tokio::runtime::Handle,
        request: &ReportRequest,
        only: &crate::cost::LineFilter,
    ) -> Vec<(String, Decimal, Decimal)> {
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
        let (cost_center, cost, hours) =
            (at("x_CostCenter"), at("BilledCost"), at("ConsumedQuantity"));
        reader
            .records()
            .map(|row| {
                let row = row.unwrap();
                let figure = |at: usize| row[at].parse::<Decimal>().unwrap();
                (row[cost_center].to_string(), figure(cost), figure(hours))
            })
            .collect()
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
            let all_rows = focus_rows(sources, runtime, request, &Default::default());
            let mut apart = 0;
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
                let sum = |rows: &[(String, Decimal, Decimal)]| -> (Decimal, Decimal) {
                    rows.iter()
                        .fold((Decimal::ZERO, Decimal::ZERO), |(c, h), row| {
                            (c + row.1, h + row.2)
                        })
                };
                assert_eq!(
                    sum(&rows),
                    (own.cost.unwrap(), own.gpu_hours),
                    "{cost_center}"
                );
                // The whole export's rows of the cost center, rounded among every row, add up
                // to other figures for some: what the filter's own rounding is for.
                let of_all: Vec<_> = all_rows
                    .iter()
                    .filter(|row| row.0 == cost_center)
                    .cloned()
                    .collect();
                assert_eq!(of_all.len(), rows.len());
                apart += usize::from(sum(&of_all) != sum(&rows));
            }
            assert!(everyone.lines.len() > 2);
            assert!(apart > 0, "every cost center added up the same either way");
        });
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
    #[test]
    fn amid_a_report_in_parts_a_priced_line_prints_its_hours_rounded_whatever_the_unpriced() {
        use crate::allocation::{
            Allocation, AllocationKind, AllocationSet, CostCenterSource, NodeCapacity, Sym,
        };
        use crate::pricing::PriceTier;
        use crate::units::GpuUnits;
        let at = |text: &str| parse_time(text).unwrap();
        let mut set = AllocationSet::default();
        for (node, product, from) in [
            ("n1", "NVIDIA H100", "2026-10-01T00:00:00Z"),
            ("n2", "NVIDIA GH200", "2026-11-02T12:00:02Z"),
        ] {
            let capacity = NodeCapacity {
                node: set.names.intern(node),
                product: set.names.intern(product),
                units: GpuUnits::ONE,
                interval: Interval::new(at(from), at("2026-12-01T00:00:00Z")),
                tier: PriceTier::OnDemand,
                price_override: None,
            };
            set.capacity.push(capacity);
        }
        let allocation = Allocation {
            namespace: set.names.intern("ns"),
            pod: set.names.intern("a"),
            pod_uid: set.names.intern("a"),
            resource_id: set.names.intern("a"),
            claim: Sym::EMPTY,
            node: set.names.intern("n1"),
            product: set.names.intern("NVIDIA H100"),
            kind: AllocationKind::Gpu,
            units: GpuUnits::ONE,
            interval: Interval::new(at("2026-11-01T12:00:00Z"), at("2026-12-01T00:00:00Z")),
            tier: PriceTier::OnDemand,
            price_override: None,
            cost_center: set.names.intern("cc"),
            cost_center_source: CostCenterSource::PodLabel,
        };
        set.allocations.push(allocation);
        let card = "currency = \"USD\"\n[[gpu]]\nmodel = \"H100\"\non_demand = \"3.00\"\n";
        let card = RateCard::parse(card, "card").unwrap();
        let window = Interval::new(at("2026-11-01T01:00:02Z"), at("2026-11-03T06:00:01Z"));
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
        let sets = [&set];
        let sources = Sources::of(&sets, &card, "test");
        let mut days = Vec::new();
        sources
            .report_by_period(
                runtime.handle(),
                &request,
                || {
                    Ok(|report: CostReport, mut carried| {
                        let rounded = report.rounded(&mut carried);
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
                        Ok(lines)
                    })
                },
                |day| {
                    days.push(day);
                    Ok(())
                },
            )
            .unwrap();
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
                .report_in_parts(
                    runtime,
                    request,
                    (request.step, &Default::default()),
                    makers,
                    each,
                )
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
                || -> std::io::Result<fn(CostReport, Carried) -> std::io::Result<()>> {
                    Err(std::io::Error::other("no room for a part"))
                },
                |()| Ok(()),
            );
            let no_room = |e: &std::io::Error| e.to_string() == "no room for a part";
            assert!(matches!(failed, Err(ReportError::Output(e)) if no_room(&e)));
        });
    }
}
