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
    use crate::cost::{GroupBy, ReportRequest};
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
            // The same hours priced one at a time here, each rounded carrying the one before.
            let mut carried = Carried::default();
            let (mut in_order, mut alone) = (Vec::new(), Vec::new());
            for hour in request.step.periods(request.window) {
                let part = ReportRequest {
                    window: hour,
                    ..request.clone()
                };
                let report = runtime.block_on(sources.report(&part)).unwrap();
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
                    Err(std::io::Error::other("disk full"))
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
