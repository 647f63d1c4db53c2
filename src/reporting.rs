//! A chargeback from everything Tollgate knows: stored rollups for closed days, and the cost
//! engine over allocations (ledger, snapshot, demo or history) with DCGM usage from Prometheus
//! for the rest. Closed days in the store cost no Prometheus query.

use std::collections::BTreeSet;
use std::sync::Arc;

use rust_decimal::Decimal;

mod parts;

use self::parts::{Early, Handed, PartTotals, StopOnExit, Written, whole};
use crate::allocation::AllocationSet;
use crate::cost::{
    Carries, CostError, CostOverflow, CostReport, GroupBy, GroupLines, GroupTotals, LineFilter,
    ReportRequest, TooManyLines, Warnings, cost_report_with_usage,
};
use crate::output::{FocusEncoding, FocusFile, FocusParts, FocusSettings};
use crate::pricing::RateCard;
use crate::prometheus::Prometheus;
use crate::store::{Catalog, Plan, RollupStore, StoreError, compose, rollup_requests};
use crate::time::{Interval, Step, UnixSeconds, format_time};
use crate::tokens::report::{TokenReport, TokenRequest, TokenTally};
use crate::tokens::{Telemetry, TokenCounts, TokenIndex};
use crate::usage::{UsageIndex, Utilization};

const DAY: i64 = 86_400;

/// A report could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A sum overflowed.
    #[error(transparent)]
    Cost(#[from] CostOverflow),
    /// More lines than [`Sources::most_lines`].
    #[error(transparent)]
    TooLarge(#[from] TooManyLines),
    /// A grouping that cannot be.
    #[error(transparent)]
    Grouping(#[from] crate::cost::GroupByError),
    /// The output could not be written.
    #[error("writing the report: {0}")]
    Output(#[from] std::io::Error),
}

/// What a report is made from.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    /// Allocation sets, read as one.
    pub sets: &'a [&'a AllocationSet],
    /// The sets hold nothing before this: earlier days are in the store, rolled up with their
    /// segments archived (`None`: the sets hold everything).
    pub from: Option<UnixSeconds>,
    /// Prices.
    pub card: &'a RateCard,
    /// Rollups of closed days, if kept.
    pub store: Option<&'a RollupStore>,
    /// DCGM usage, if configured.
    pub prometheus: Option<&'a Prometheus>,
    /// Utilization and tokens that need no query (the demo fleet's simulated workloads), used
    /// when there is no Prometheus.
    pub simulated: Option<&'a dyn Telemetry>,
    /// The cluster's name: the `cluster` group key's value.
    pub cluster: &'a str,
    /// Whole days of history before the ledger began that the store is to hold, rolled up in
    /// the background (on the leader): a report over any of them the store lacks yet says so
    /// rather than leaving them out unsaid.
    pub history: Option<Interval>,
    /// The part of the day the ledger began that came before it, when Prometheus has not
    /// answered for it yet (read again in the background): a report over it says so.
    pub unread: Option<Interval>,
    /// The most lines a report is made with at once (the service's `server.max_report_lines`):
    /// one with more fails ([`ReportError::TooLarge`]) before its memory grows with them. The
    /// parts of a report made a period at a time (FOCUS, the token report's days) hold a
    /// period's lines and are not bound; the token report's lines over its window are.
    pub most_lines: Option<usize>,
}

/// Threads that price the parts of a report streamed in parts, and make what is written of
/// each (a day of FOCUS rows held a thread).
const PART_WORKERS: usize = 2;

impl<'a> Sources<'a> {
    /// Sources that are `sets` priced by `card` alone, of the cluster `cluster`: no store, no
    /// Prometheus, nothing simulated.
    pub fn of(sets: &'a [&'a AllocationSet], card: &'a RateCard, cluster: &'a str) -> Self {
        Sources {
            sets,
            from: None,
            card,
            store: None,
            prometheus: None,
            simulated: None,
            cluster,
            history: None,
            unread: None,
            most_lines: None,
        }
    }

    /// These sources without [`Sources::most_lines`]: for the service's own work (rolling
    /// closed days up, correcting and exporting them, the last hour's cost per token), which
    /// the bound on what askers ask for must not stop. A day it refused would stay out of the
    /// store, and its segments in the ledger's memory, however large the fleet grew.
    pub fn unbounded(self) -> Self {
        Sources {
            most_lines: None,
            ..self
        }
    }
}

impl ReportError {
    /// Whether the asker can mend it (a report too large to make at once: ask for less), not
    /// the service.
    pub fn is_the_askers(&self) -> bool {
        matches!(self, ReportError::TooLarge(_))
    }
}

impl From<CostError> for ReportError {
    fn from(e: CostError) -> Self {
        match e {
            CostError::Overflow(e) => ReportError::Cost(e),
            CostError::TooManyLines(e) => ReportError::TooLarge(e),
        }
    }
}

impl Sources<'_> {
    /// DCGM usage over `window` when Prometheus is configured; when it does not answer, none
    /// and a warning saying why.
    async fn measured(&self, window: Interval) -> (Option<UsageIndex>, Option<String>) {
        match self.prometheus {
            Some(prometheus) => match prometheus.dcgm_usage(window).await {
                Ok(usage) => (Some(usage), None),
                Err(e) => (
                    None,
                    Some(format!("{e}: used_gpu_hours and idle_cost are left empty")),
                ),
            },
            None => (None, None),
        }
    }

    /// Fails once a report holds more than [`Sources::most_lines`] lines.
    fn within(&self, lines: usize) -> Result<(), ReportError> {
        Ok(TooManyLines::check(lines, self.most_lines)?)
    }

    /// The engine's report of `window` (part of `request`) over `sets`, with `measured` usage
    /// (the demo's simulated usage without Prometheus).
    fn priced(
        &self,
        sets: &[&AllocationSet],
        request: &ReportRequest,
        window: Interval,
        (measured, warning): &(Option<UsageIndex>, Option<String>),
    ) -> Result<CostReport, ReportError> {
        let part = ReportRequest {
            window,
            ..request.clone()
        };
        let usage = match measured {
            Some(index) => Some(index as &dyn Utilization),
            None if self.prometheus.is_none() => self.simulated.map(|s| s as &dyn Utilization),
            None => None,
        };
        let mut report = cost_report_with_usage(sets, self.card, &part, usage, self.most_lines)?;
        report.warnings.extend(warning.clone());
        Ok(report)
    }

    /// The engine's report of `window` (part of `request`), with usage when Prometheus answers;
    /// when it does not, usage stays empty and a warning says why.
    async fn compute(
        &self,
        sets: &[&AllocationSet],
        request: &ReportRequest,
        window: Interval,
    ) -> Result<CostReport, ReportError> {
        let measured = self.measured(window).await;
        self.priced(sets, request, window, &measured)
    }

    /// The report of `request`: stored days from the store, the rest from the engine.
    pub async fn report(&self, request: &ReportRequest) -> Result<CostReport, ReportError> {
        let report = self.report_of_cluster(&request.without_cluster()).await?;
        Ok(report.with_cluster(request, self.cluster))
    }

    /// [`Sources::report`] of a request without the `cluster` key.
    async fn report_of_cluster(&self, request: &ReportRequest) -> Result<CostReport, ReportError> {
        let catalog = match self.store {
            Some(store) => store.catalog()?,
            None => Catalog::default(),
        };
        let mut report = self.report_from(request, &catalog).await?;
        report
            .warnings
            .extend(self.history_not_stored(request.window, &catalog.mine));
        report.warnings.extend(self.history_unread(request.window));
        Ok(report)
    }

    /// What the report over `window` leaves out of [`Sources::unread`].
    fn history_unread(&self, window: Interval) -> Option<String> {
        let unread = self.unread.filter(|u| u.clip(window).is_some())?;
        Some(format!(
            "{} (it is read again every prometheus.history_retry_seconds): this report leaves it \
             out",
            unread_history(unread)
        ))
    }

    /// What the report of `request` leaves out of [`Sources::history`]: the days in its window
    /// the store does not hold (yet: the leader rolls them up in the background; or a day it
    /// could not read).
    fn history_not_stored(
        &self,
        window: Interval,
        stored: &BTreeSet<UnixSeconds>,
    ) -> Option<String> {
        let missing = UnstoredHistory::of(self.history?, window, stored)?;
        Some(format!(
            "{} not in the rollup store yet (the leader rolls history up from its source in the \
             background, and reads a day it could not read again every \
             prometheus.history_retry_seconds): this report leaves {} out",
            missing.is_are(),
            missing.it_them()
        ))
    }

    /// [`Sources::report_of_cluster`], given what the store holds.
    async fn report_from(
        &self,
        request: &ReportRequest,
        catalog: &Catalog,
    ) -> Result<CostReport, ReportError> {
        let days = &catalog.mine;
        let (grain, plan) = match crate::store::Grain::of(request) {
            Some(grain) => {
                let kept = match self.store {
                    Some(store) => store.days_with(grain, days),
                    None => BTreeSet::new(),
                };
                (grain, Plan::new(request, &kept))
            }
            None => return self.priced_with_segments(request, days).await,
        };
        let read_from_store = days.iter().copied().filter(|&day| {
            plan.stored
                .iter()
                .any(|run| day < run.end && day + DAY > run.start)
        });
        let mut stored = Vec::new();
        let mut stored_warnings = Warnings::default();
        if let Some(store) = self.store {
            for run in &plan.stored {
                let keys = request.group_by.keys();
                let held = stored.len();
                stored.extend(store.read(
                    grain,
                    *run,
                    request.window,
                    request.step,
                    keys,
                    &request.only,
                    |lines| self.within(held + lines),
                )?);
                for (model, hours) in store.unpriced(*run, keys, &request.only)? {
                    stored_warnings.unpriced(self.card.origin(), &model, hours);
                }
            }
        }
        let mut rest = Vec::with_capacity(plan.rest.len());
        for window in &plan.rest {
            // What memory no longer holds (parts of rolled-up days) comes from their archive.
            let split = self
                .from
                .unwrap_or(UnixSeconds::MIN)
                .clamp(window.start, window.end);
            if split > window.start {
                let past = Interval::new(window.start, split);
                let (archived, missing) = self.archived(past, days)?;
                let sets: Vec<&AllocationSet> = archived.iter().collect();
                let mut part = self.compute(&sets, request, past).await?;
                part.warnings.extend(missing_archive(&missing));
                rest.push(part);
            }
            if split < window.end {
                let recent = Interval::new(split, window.end);
                rest.push(self.compute(self.sets, request, recent).await?);
            }
        }
        let template = CostReport {
            request: request.clone(),
            currency: self.card.currency().clone(),
            rounding: self.card.rounding(),
            lines: Vec::new(),
            warnings: stored_warnings,
        };
        let mut report = compose(request, stored, rest, template);
        // The store's days and each of the engine's windows were bound apart; so is the whole.
        self.within(report.lines.len())?;
        report
            .warnings
            .extend(catalog.stale_warning(read_from_store));
        Ok(report)
    }

    /// The token report of `request`: the engine's report per pod and hour (stored days and the
    /// rest, as any report), a day at a time, each pod-hour's figures split over the models it
    /// served by the tokens the serving engines' counters in Prometheus (or the demo's
    /// simulation) say. Blocks on `runtime` like [`Sources::report_by_period`].
    pub fn token_report(
        &self,
        runtime: &tokio::runtime::Handle,
        request: &TokenRequest,
        input_weight: Option<Decimal>,
    ) -> Result<TokenReport, ReportError> {
        let empty = "tokens are not counted: per-token costs are left empty";
        let (counted, warning) = match (self.prometheus, self.simulated) {
            (Some(prometheus), _) => {
                match runtime.block_on(prometheus.token_counts(request.report.window)) {
                    Ok(index) if index.is_empty() => (
                        Some(index),
                        Some(format!(
                            "no token counter of vLLM, SGLang, NIM or TGI names a pod in the window: {empty}"
                        )),
                    ),
                    Ok(index) => (Some(index), None),
                    Err(e) => (None, Some(format!("{e}: {empty}"))),
                }
            }
            (None, Some(_)) => (None, None),
            (None, None) => (
                None,
                Some(format!(
                    "no Prometheus (--prometheus or prometheus.url): {empty}"
                )),
            ),
        };
        let none = TokenIndex::default();
        let tokens: &dyn TokenCounts = match (&counted, self.simulated) {
            (Some(index), _) => index,
            (None, Some(simulated)) if self.prometheus.is_none() => simulated,
            _ => &none,
        };
        let mut tally = TokenTally::new(request);
        // Each day's pods are priced apart (not bound); the lines tallied over the window are.
        let mut warnings =
            self.report_in_whole_parts(runtime, &request.per_pod(), Step::Day, whole, |part| {
                tally.add(&part, tokens);
                self.within(tally.lines())
            })?;
        warnings.extend(warning);
        let money = (self.card.currency().clone(), self.card.rounding());
        Ok(tally.finish(money, input_weight, warnings.texts()))
    }

    /// The report of `request` one period of its step at a time, each made into `T` by a
    /// maker of `makers` on the thread that priced it, and the results handed to `each` here,
    /// in order: what a FOCUS export streams, holding a period's lines (and what is made of
    /// them) per thread at once. A maker is given the part and what the parts before it add
    /// up to, group by group ([`Carries`]), so each part is rounded as if the parts were
    /// printed one after another. Returns the warnings of every period, merged
    /// ([`Warnings::absorb`]). Blocks on `runtime` for each period's report, so it runs off the
    /// runtime's own threads (on the blocking pool, or from a command).
    pub fn report_by_period<T: Send, M>(
        &self,
        runtime: &tokio::runtime::Handle,
        request: &ReportRequest,
        makers: impl Fn() -> std::io::Result<M> + Sync,
        each: impl FnMut(T) -> Result<(), ReportError>,
    ) -> Result<Warnings, ReportError>
    where
        M: FnMut(CostReport, Carries) -> std::io::Result<T>,
    {
        self.report_in_whole_parts(runtime, request, request.step, makers, each)
    }

    /// Writes the FOCUS export of `request` (a request of [`crate::output::focus_request`])
    /// into `out`: the rows `only` keeps, of the version `settings` name, as `encoding` says,
    /// each charge period's rows made on the thread that priced it
    /// ([`Sources::report_by_period`]), and CSV rows written as they are made by the thread
    /// whose period is next. Each cost center and namespace's rows add up to its line of the
    /// chargeback over the window, worked out first ([`Sources::group_lines`]), whichever day
    /// its rows end. Returns the report's warnings.
    pub fn export_focus(
        &self,
        runtime: &tokio::runtime::Handle,
        request: &ReportRequest,
        (settings, encoding, only): (&FocusSettings, FocusEncoding, &LineFilter),
        out: impl std::io::Write,
    ) -> Result<Warnings, ReportError> {
        let lines = Arc::new(self.group_lines(runtime, request, only)?);
        let mut file = FocusFile::new(out, settings, encoding)?;
        let spare = file.spare();
        let makers = || {
            let mut parts = FocusParts::new(settings, encoding, only.clone(), spare.clone())?;
            let lines = lines.clone();
            Ok(move |report: CostReport, carried, early: Early<'_, _>| {
                let carried = Carries {
                    lines: Some(lines.clone()),
                    ..carried
                };
                parts.make(&report, carried, early)
            })
        };
        let warnings = self.report_in_parts(runtime, request, request.step, makers, |part| {
            Ok(file.write(part)?)
        })?;
        file.finish()?;
        Ok(warnings)
    }

    /// The lines of the chargeback of `request`'s window by cost center and namespace that
    /// `only` keeps ([`GroupLines`]), for a report of it printed in parts to add up to: the
    /// stored days from the rollups, the rest priced, each half of the window's days on a
    /// thread of its own, their groups' exact totals summed.
    fn group_lines(
        &self,
        runtime: &tokio::runtime::Handle,
        request: &ReportRequest,
        only: &LineFilter,
    ) -> Result<GroupLines, ReportError> {
        let days = Step::Day.periods(request.window);
        let halves = match days.get(days.len() / 2) {
            Some(middle) if days.len() > 1 => vec![
                Interval::new(request.window.start, middle.start),
                Interval::new(middle.start, request.window.end),
            ],
            _ => vec![request.window],
        };
        let by_group = |window| ReportRequest {
            window,
            step: Step::Window,
            group_by: GroupBy::default(),
            only: LineFilter::default(),
            ..request.clone()
        };
        let totals = std::thread::scope(|scope| {
            let priced: Vec<_> = halves
                .into_iter()
                .map(|half| {
                    let request = by_group(half);
                    scope.spawn(move || runtime.block_on(self.report(&request)))
                })
                .collect();
            priced
                .into_iter()
                .try_fold(GroupTotals::default(), |mut sum, half| {
                    let half = half
                        .join()
                        .unwrap_or_else(|_| panic!("a thread pricing half a window panicked"))?;
                    sum.absorb(&half.group_totals());
                    Ok::<_, ReportError>(sum)
                })
        })?;
        let money = (self.card.currency(), self.card.rounding());
        Ok(GroupLines::new(totals, only, money))
    }

    /// [`Sources::report_in_parts`] with makers that make each part whole, handing nothing
    /// over early.
    fn report_in_whole_parts<T: Send, M>(
        &self,
        runtime: &tokio::runtime::Handle,
        request: &ReportRequest,
        cut: Step,
        makers: impl Fn() -> std::io::Result<M> + Sync,
        each: impl FnMut(T) -> Result<(), ReportError>,
    ) -> Result<Warnings, ReportError>
    where
        M: FnMut(CostReport, Carries) -> std::io::Result<T>,
    {
        let makers = || {
            let mut make = makers()?;
            Ok(move |report, carried, _: Early<'_, T>| make(report, carried))
        };
        self.report_in_parts(runtime, request, cut, makers, each)
    }

    /// [`Sources::report_by_period`] a period of `cut` at a time (each part stepped as
    /// `request` says), a maker also given where to hand what it has made of a part so far
    /// ([`Early`]): the thread whose part is next to be written hands it straight to `each`,
    /// the others keep it until their part's turn.
    fn report_in_parts<T: Send, M>(
        &self,
        runtime: &tokio::runtime::Handle,
        request: &ReportRequest,
        cut: Step,
        makers: impl Fn() -> std::io::Result<M> + Sync,
        mut each: impl FnMut(T) -> Result<(), ReportError>,
    ) -> Result<Warnings, ReportError>
    where
        M: FnMut(CostReport, Carries, Early<'_, T>) -> std::io::Result<T>,
    {
        let periods = cut.periods(request.window);
        let overlapping: Vec<Vec<Vec<u32>>> =
            self.sets.iter().map(|s| s.by_period(&periods)).collect();
        let part = |at: usize| {
            let part = ReportRequest {
                window: periods[at],
                ..request.clone()
            };
            // Each period reads only the allocations that overlap it.
            let sets: Vec<AllocationSet> = self
                .sets
                .iter()
                .zip(&overlapping)
                .map(|(set, overlapping)| set.with_only(&overlapping[at]))
                .collect();
            let sets: Vec<&AllocationSet> = sets.iter().collect();
            // A period's lines are held at a time, whatever the window: not bound.
            let sources = Sources {
                sets: &sets,
                most_lines: None,
                ..*self
            };
            runtime.block_on(sources.report(&part))
        };
        let totals = PartTotals::new(periods.len());
        let written = Written::default();
        // A part priced and made into `T`, with its warnings: its exact totals told to the
        // other workers first, then what the parts before it add up to awaited.
        let made =
            |at: usize, make: &mut M, early: Early<'_, T>| -> Result<(T, Warnings), ReportError> {
                let mut report = part(at)?;
                totals.tell(at, report.group_totals());
                let before = totals.before(at).ok_or_else(|| {
                    std::io::Error::other("a part before this one was not priced")
                })?;
                let warnings = std::mem::take(&mut report.warnings);
                let followed = at + 1 < periods.len();
                let carries = Carries {
                    before,
                    printed: None,
                    followed,
                    lines: None,
                };
                Ok((make(report, carries, early)?, warnings))
            };
        // Parts are priced and made on `workers` threads, each taking every `workers`th
        // period, and handed to `each` here in order, each handed over as it is taken: at most
        // a part a worker and the one being written are held at once, and of the part being
        // written, only what its thread has made and not yet handed over.
        let workers = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .clamp(1, PART_WORKERS)
            .min(periods.len().max(1));
        std::thread::scope(|scope| {
            let receivers: Vec<_> = (0..workers)
                .map(|first| {
                    let (sender, receiver) = std::sync::mpsc::sync_channel(0);
                    let (made, makers, totals, written) = (&made, &makers, &totals, &written);
                    let count = periods.len();
                    scope.spawn(move || {
                        // Should this thread stop early (a failure, the writer gone, a panic),
                        // no other waits for the totals of its parts.
                        let stopping = StopOnExit(totals);
                        let mut make = match makers() {
                            Ok(make) => make,
                            Err(e) => {
                                let _ = sender.send(Handed::Made(Err(e.into())));
                                return;
                            }
                        };
                        for at in (first..count).step_by(workers) {
                            let mut held = Vec::new();
                            let mut early = |piece| {
                                held.push(piece);
                                if written.is_next(at) {
                                    for piece in held.drain(..) {
                                        sender.send(Handed::Early(piece)).map_err(|_| {
                                            std::io::Error::other("the report's writer stopped")
                                        })?;
                                    }
                                }
                                Ok(())
                            };
                            let made = made(at, &mut make, &mut early);
                            let failed = made.is_err();
                            let handed = held.into_iter().map(Handed::Early);
                            let sent = handed
                                .chain([Handed::Made(made)])
                                .try_for_each(|handed| sender.send(handed));
                            if sent.is_err() || failed {
                                return;
                            }
                        }
                        std::mem::forget(stopping);
                    });
                    receiver
                })
                .collect();
            let mut warnings = Warnings::default();
            for at in 0..periods.len() {
                let theirs = loop {
                    let handed = receivers[at % workers]
                        .recv()
                        .unwrap_or_else(|_| panic!("a thread pricing the report's parts panicked"));
                    match handed {
                        Handed::Early(piece) => each(piece)?,
                        Handed::Made(made) => {
                            let (made, theirs) = made?;
                            each(made)?;
                            break theirs;
                        }
                    }
                };
                written.passed(at);
                warnings.absorb(theirs);
            }
            Ok(warnings)
        })
    }

    /// A report the rollups cannot answer (grouped by pod or resource, or sharing unallocated
    /// capacity): the engine over the archived segments of the stored days the sets no longer
    /// hold, and the sets, for the whole window at once.
    async fn priced_with_segments(
        &self,
        request: &ReportRequest,
        days: &BTreeSet<UnixSeconds>,
    ) -> Result<CostReport, ReportError> {
        let window = request.window;
        let (archived, missing) = self.archived(window, days)?;
        let mut sets: Vec<&AllocationSet> = archived.iter().collect();
        sets.extend(self.sets);
        let mut report = self.compute(&sets, request, window).await?;
        report.warnings.extend(missing_archive(&missing));
        Ok(report)
    }

    /// The archived segments of the stored days that overlap `window` and that the sets no
    /// longer hold (before `from`), one set per day, and the days stored without an archive.
    fn archived(
        &self,
        window: Interval,
        days: &BTreeSet<UnixSeconds>,
    ) -> Result<(Vec<AllocationSet>, Vec<UnixSeconds>), ReportError> {
        let before = self.from.unwrap_or(UnixSeconds::MIN).min(window.end);
        let wanted: Vec<UnixSeconds> = days
            .iter()
            .copied()
            .filter(|&day| day < before && day + DAY > window.start)
            .collect();
        Ok(match self.store {
            Some(store) if !wanted.is_empty() => store.read_segments(&wanted)?,
            _ => Default::default(),
        })
    }

    /// Rolls up each day of `days` (UTC midnights) into `store`, calling `done` after each.
    /// Returns the warnings of the days written (Prometheus unreachable, unpriced models: their
    /// hours over every day written).
    pub async fn roll_up(
        &self,
        store: &RollupStore,
        days: &[UnixSeconds],
        mut done: impl FnMut(UnixSeconds),
    ) -> Result<Warnings, ReportError> {
        let mut warnings = Warnings::default();
        for &day in days {
            // Both rollups of the day from one read of its usage.
            let [hourly, pods] = rollup_requests(day);
            let measured = self.measured(hourly.window).await;
            let hourly = self.priced(self.sets, &hourly, hourly.window, &measured)?;
            let pods = self.priced(self.sets, &pods, pods.window, &measured)?;
            store.write_segments(day, self.sets)?;
            store.write_day(day, &hourly, &pods)?;
            warnings.absorb(hourly.warnings);
            done(day);
        }
        Ok(warnings)
    }
}

/// The days of history before the ledger began that the store is to hold and does not (yet):
/// never none, in time order.
pub struct UnstoredHistory(Vec<UnixSeconds>);

impl UnstoredHistory {
    /// The whole days of `history` overlapping `window` that are not among `stored`; `None`
    /// when there are none.
    pub fn of(history: Interval, window: Interval, stored: &BTreeSet<UnixSeconds>) -> Option<Self> {
        let missing: Vec<UnixSeconds> = (history.start..history.end)
            .step_by(DAY as usize)
            .filter(|&day| day < window.end && day + DAY > window.start && !stored.contains(&day))
            .collect();
        (!missing.is_empty()).then_some(UnstoredHistory(missing))
    }

    /// "the day 2026-11-01 of history before the ledger began is" or "3 days of history before
    /// the ledger began, 2026-11-01 to 2026-11-03, are".
    pub fn is_are(&self) -> String {
        let date = |day: UnixSeconds| format_time(day)[..10].to_string();
        let (first, last) = (self.0[0], self.0[self.0.len() - 1]);
        if first == last {
            format!(
                "the day {} of history before the ledger began is",
                date(first)
            )
        } else {
            format!(
                "{} days of history before the ledger began, {} to {}, are",
                self.0.len(),
                date(first),
                date(last)
            )
        }
    }

    /// "it" or "them".
    pub fn it_them(&self) -> &'static str {
        if self.0.len() == 1 { "it" } else { "them" }
    }
}

/// What is missing while the part `unread` of the day the ledger began, before it, has not been
/// read: "the history of 2026-12-06 from 00:00:00 to 10:32:05 UTC, before the ledger began, has
/// not been read from Prometheus yet".
pub fn unread_history(unread: Interval) -> String {
    let (start, end) = (format_time(unread.start), format_time(unread.end));
    format!(
        "the history of {} from {} to {} UTC, before the ledger began, has not been read from \
         Prometheus yet",
        &start[..10],
        &start[11..19],
        &end[11..19]
    )
}

/// The warning for stored days without a segment archive, if there are any.
fn missing_archive(missing: &[UnixSeconds]) -> Option<String> {
    let (first, last) = (missing.first()?, missing.last()?);
    Some(format!(
        "{} stored days from {} to {} have no segment archive (rolled up by an older Tollgate): rows grouped by pod or resource, and hours cut out of those days, leave them out",
        missing.len(),
        &format_time(*first)[..10],
        &format_time(*last)[..10]
    ))
}
