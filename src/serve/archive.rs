//! What lies beyond the ledger for a running service: Prometheus (DCGM usage, history) and the
//! rollup store of closed days, with the background work that keeps them useful.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use tokio::sync::watch;

use super::feed::Recorded;
use super::view::View;
use crate::export::{Destination, export_days};
use crate::ledger::Correction;
use crate::live::Leadership;
use crate::output::FocusSettings;
use crate::pricing::RateCard;
use crate::prometheus::{Prometheus, PrometheusError, history_allocations};
use crate::reporting::Sources;
use crate::source::DemoHistory;
use crate::store::RollupStore;
use crate::time::{Interval, UnixSeconds, format_time};
use crate::tokens::Telemetry;
use crate::tokens::report::{PrintedLine, TokenRequest};
use crate::usage::UsageKey;

const DAY: i64 = 86_400;

/// Prometheus and the rollup store, when configured, and the latest utilization.
#[derive(Default)]
pub struct Archive {
    /// DCGM usage and history.
    pub prometheus: Option<Prometheus>,
    /// Utilization and tokens without Prometheus: the demo fleet's simulated workloads.
    pub simulated: Option<Arc<dyn Telemetry + Send>>,
    /// Rollups of closed days.
    pub store: Option<RollupStore>,
    /// The cluster's name: the `cluster` group key and metric label.
    pub cluster: String,
    /// Days of rollups kept.
    pub retention_days: u32,
    /// `tokens.input_weight`, read.
    pub input_weight: Option<Decimal>,
    /// The token report of the hour before the latest view: its lines with a served model, by
    /// served model, cost center and namespace (`tollgate_cost_per_million_tokens`, the
    /// console's served models).
    pub served_models: RwLock<Vec<PrintedLine>>,
    /// The latest utilization per allocation (`tollgate_gpu_utilization_ratio`).
    pub utilization: RwLock<FxHashMap<UsageKey, f64>>,
    /// Whether this replica writes rollups (among several, only the leader does).
    pub leadership: Leadership,
    /// Every day before this is stored (0: none yet): what the ledger may forget.
    pub rolled: AtomicI64,
    /// Bumped whenever a day is written to the store.
    pub writes: AtomicU64,
    /// Whether stored days were looked at for export since the service started.
    pub exported_once: AtomicBool,
    /// True while history before the cut-over is still being rolled up.
    pub backfilling: AtomicBool,
    /// The whole days of history before the cut-over that the store is to hold (every
    /// replica's, whether it backfills them or waits for the leader to).
    pub history: OnceLock<Interval>,
    /// The part of the day the ledger began that came before it, while Prometheus has not
    /// answered for it ([`Archive::read_unread_history`] reads it again).
    pub unread_history: RwLock<Option<Interval>>,
    /// Where each closed day is exported once rolled up (`[export] dest`).
    pub export: Option<DailyExport>,
    /// The Prometheus holding every cluster's series, read for global budgets every so often
    /// (`[quota] global_prometheus`).
    pub global: Option<(Prometheus, Duration)>,
    /// The most lines a report of the API or console is made with at once
    /// (`server.max_report_lines`; [`Sources::most_lines`]).
    pub most_lines: Option<usize>,
}

/// `[export] dest`: closed days exported as `tollgate export` writes them.
pub struct DailyExport {
    /// Where.
    pub dest: Destination,
    /// The FOCUS names.
    pub focus: FocusSettings,
}

/// Where the time before the install's cut-over comes from, a day at a time.
pub enum HistorySource {
    /// The demo fleet's simulated past.
    Demo(Box<DemoHistory>),
    /// kube-state-metrics and DCGM series in Prometheus.
    Prometheus,
}

/// The part of the day the ledger began that came before it, when Prometheus did not answer
/// for it at the start: read again in the background until it does.
pub struct UnreadHistory {
    /// From the day's start to the cut-over.
    pub window: Interval,
    /// The annotation/label key of cost centers.
    pub cost_center_key: String,
    /// How long between attempts.
    pub retry_every: Duration,
}

/// Whether a backfill stored every day it was to.
enum Outcome {
    Complete,
    /// Some days are still missing: to be tried again.
    LeftOut,
}

/// History to roll up into the store when the service starts: the whole days before the
/// cut-over the store lacks.
pub struct Backfill {
    /// Where it comes from.
    pub source: HistorySource,
    /// The days, UTC midnight to UTC midnight.
    pub days: Interval,
    /// The annotation/label key of cost centers.
    pub cost_center_key: String,
    /// How long after a backfill that left days out (Prometheus could not answer for them, or
    /// the lead moved) the store's missing days are read again, while the service runs.
    pub retry_every: Duration,
}

/// How often the rollup task looks for closed days (a demo on a fast clock closes one every
/// few minutes; when nothing is due, a look costs a directory listing).
const ROLL_UP_CHECK: Duration = Duration::from_secs(10);

/// Days of history in a row that Prometheus could not answer for, after which a backfill stops
/// and leaves the rest for its retry: one such day may be that day's own trouble (too many
/// series); two in a row, most likely Prometheus itself.
const UNREAD_DAYS_IN_A_ROW: usize = 2;

/// Closed days are rolled up this long after they end, so that what finished just before
/// midnight has been seen first.
const ROLL_UP_GRACE: i64 = 15 * 60;

impl Archive {
    /// The report of `request` over what `view` holds and the store, blocking on `runtime`
    /// (call it from the blocking pool).
    pub fn report_of(
        &self,
        runtime: &tokio::runtime::Handle,
        view: &View,
        card: &RateCard,
        request: &crate::cost::ReportRequest,
    ) -> Result<crate::cost::CostReport, crate::reporting::ReportError> {
        let sets = view.ledger.as_refs();
        runtime.block_on(self.sources(&sets, view.ledger.from, card).report(request))
    }

    /// What a report over `sets` (holding nothing before `from`) is made from.
    pub fn sources<'a>(
        &'a self,
        sets: &'a [&'a crate::allocation::AllocationSet],
        from: Option<UnixSeconds>,
        card: &'a RateCard,
    ) -> Sources<'a> {
        Sources {
            sets,
            from,
            card,
            store: self.store.as_ref(),
            prometheus: self.prometheus.as_ref(),
            simulated: self.simulated.as_deref().map(|u| u as &dyn Telemetry),
            cluster: &self.cluster,
            history: self.history_kept(jiff::Timestamp::now().as_second()),
            unread: self.unread_history(),
            most_lines: self.most_lines,
        }
    }

    /// [`Archive::unread_history`], read.
    pub fn unread_history(&self) -> Option<Interval> {
        *self
            .unread_history
            .read()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Sets [`Archive::unread_history`].
    pub fn set_unread_history(&self, unread: Option<Interval>) {
        *self
            .unread_history
            .write()
            .unwrap_or_else(|p| p.into_inner()) = unread;
    }

    /// [`Archive::history`] less the days the store has dropped by `now` (kept
    /// `retention_days`).
    pub(super) fn history_kept(&self, now: UnixSeconds) -> Option<Interval> {
        let days = *self.history.get()?;
        let kept_from = (now.div_euclid(DAY) - i64::from(self.retention_days)) * DAY;
        Some(Interval::new(days.start.max(kept_from), days.end)).filter(|days| !days.is_empty())
    }

    /// The allocations of `unread`, read from Prometheus every `retry_every` until it answers
    /// (`None` without Prometheus).
    pub async fn read_unread_history(
        &self,
        unread: &UnreadHistory,
        card: &RateCard,
    ) -> Option<crate::allocation::AllocationSet> {
        let prometheus = self.prometheus.as_ref()?;
        loop {
            tokio::time::sleep(unread.retry_every).await;
            let read =
                history_allocations(prometheus, unread.window, card, &unread.cost_center_key);
            match read.await {
                Ok(set) => return Some(set),
                Err(e) => tracing::warn!(
                    error = %e,
                    "history before the ledger began could not be read again; it is left out for now"
                ),
            }
        }
    }

    /// Puts `history`, the part `unread` of the day the ledger began that came before it, read
    /// after that day was rolled up without it, into the stored day: its archived segments and
    /// `history` rolled up again (by the leader alone). True when the stored day holds it now
    /// (also when it did already: a day whose segments reach before the cut-over is left as
    /// it is, never counted twice).
    pub fn complete_stored_day(
        &self,
        unread: Interval,
        history: &crate::allocation::AllocationSet,
        card: &RateCard,
    ) -> bool {
        let (Some(store), Ok(runtime)) = (&self.store, tokio::runtime::Handle::try_current())
        else {
            return false;
        };
        let day = unread.start.div_euclid(DAY) * DAY;
        let mut set = match store.read_segments(&[day]) {
            Ok((mut sets, _)) if !sets.is_empty() => sets.remove(0),
            Ok(_) => return false,
            Err(e) => {
                tracing::error!(error = %e, "a stored day could not be read to complete it");
                return false;
            }
        };
        if set.earliest_start().is_some_and(|start| start < unread.end) {
            return true;
        }
        if !self.leadership.is_leader() {
            return false;
        }
        set.extend_from(history, unread.end);
        match self.store_day(&runtime, store, day, &set, card) {
            Ok(_) => true,
            Err(e) => {
                tracing::error!(error = %e, "a stored day could not be completed");
                false
            }
        }
    }

    /// Allocations rebuilt from Prometheus history over the `days` before now, read now and
    /// again every `step` in the background (`serve --history`). The window starts on a
    /// multiple of `step`, so that history is sampled on the same grid as a `report --history`
    /// of whole days. `None` without Prometheus.
    pub async fn follow_history(
        self: &Arc<Self>,
        card: RateCard,
        cost_center_key: String,
        days: u32,
        step: Duration,
    ) -> Option<Result<Recorded, PrometheusError>> {
        let prometheus = self.prometheus.as_ref()?;
        let (span, grid) = (i64::from(days) * DAY, step.as_secs().max(1) as i64);
        let window = move || {
            let at = jiff::Timestamp::now().as_second();
            Interval::new((at - span).div_euclid(grid) * grid, at)
        };
        let first = window();
        let recorded = match history_allocations(prometheus, first, &card, &cost_center_key).await {
            Ok(set) => Recorded::new(set, first.end),
            Err(e) => return Some(Err(e)),
        };
        let (archive, following) = (self.clone(), recorded.clone());
        tokio::spawn(async move {
            let Some(prometheus) = &archive.prometheus else {
                return;
            };
            loop {
                tokio::time::sleep(step).await;
                let next = window();
                match history_allocations(prometheus, next, &card, &cost_center_key).await {
                    Ok(set) => following.replace(set, next.end),
                    Err(e) => tracing::warn!(error = %e, "history could not be read again"),
                }
            }
        });
        Some(Ok(recorded))
    }

    /// Refreshes the latest utilization.
    async fn poll_utilization(&self) {
        let Some(prometheus) = &self.prometheus else {
            return;
        };
        match prometheus.current_utilization().await {
            Ok(latest) => {
                *self.utilization.write().unwrap_or_else(|p| p.into_inner()) =
                    latest.into_iter().collect();
            }
            Err(e) => tracing::warn!(error = %e, "utilization could not be read"),
        }
    }

    /// Refreshes the token report of the hour before `view`'s as-of, per served model, cost
    /// center and namespace.
    async fn poll_served_models(self: &Arc<Self>, view: Arc<View>, card: Arc<RateCard>) {
        let request = TokenRequest::served_models(Interval::new(view.as_of - 3600, view.as_of));
        let (archive, runtime) = (self.clone(), tokio::runtime::Handle::current());
        let priced = super::background::spawn_background(move || {
            let sets = view.ledger.as_refs();
            let sources = archive.sources(&sets, view.ledger.from, &card).unbounded();
            sources.token_report(&runtime, &request, archive.input_weight)
        })
        .await;
        let report = match priced {
            Ok(Ok(report)) => report,
            Ok(Err(e)) => return tracing::warn!(error = %e, "token costs could not be priced"),
            Err(e) => return tracing::error!(error = %e, "pricing token costs panicked"),
        };
        let served = report
            .printed()
            .lines
            .into_iter()
            .filter(|line| line.group.first().is_some_and(|model| !model.is_empty()))
            .collect();
        *self
            .served_models
            .write()
            .unwrap_or_else(|p| p.into_inner()) = served;
    }

    /// Rolls up each whole day of `backfill` the store lacks, one day in memory at a time.
    /// Returns whether the store may still lack some: a day history could not be read for, a
    /// lead lost on the way, a store that failed.
    fn backfill(&self, backfill: &mut Backfill, card: &RateCard) -> Outcome {
        let Some(store) = &self.store else {
            return Outcome::Complete;
        };
        let Backfill {
            source,
            days,
            cost_center_key,
            ..
        } = backfill;
        let stored = match store.days() {
            Ok(stored) => stored,
            Err(e) => {
                tracing::error!(error = %e, "rollup store unreadable");
                return Outcome::LeftOut;
            }
        };
        let missing: Vec<UnixSeconds> = (days.start..days.end)
            .step_by(DAY as usize)
            .filter(|d| !stored.contains(d))
            .collect();
        if missing.is_empty() {
            return Outcome::Complete;
        }
        tracing::info!(
            days = missing.len(),
            "rolling up history before the cut-over"
        );
        let runtime = tokio::runtime::Handle::current();
        let (total, mut outcome, mut unread_in_a_row) = (missing.len(), Outcome::Complete, 0);
        for (done, day) in missing.into_iter().enumerate() {
            if !self.still_leads(done, total) {
                return Outcome::LeftOut;
            }
            let window = Interval::new(day, day + DAY);
            let set = match source {
                HistorySource::Demo(history) => Ok(history.window(window, card, cost_center_key)),
                HistorySource::Prometheus => match &self.prometheus {
                    Some(prometheus) => runtime.block_on(history_allocations(
                        prometheus,
                        window,
                        card,
                        cost_center_key,
                    )),
                    None => return Outcome::Complete,
                },
            };
            let set = match set {
                Ok(set) => set,
                Err(e) => {
                    tracing::warn!(error = %e, day = %format_time(day), "history could not be read; the day is left out for now");
                    // Prometheus down (or hanging until each query times out) would hold the
                    // rest up for as many days as are left: they are read again later.
                    unread_in_a_row += 1;
                    if unread_in_a_row == UNREAD_DAYS_IN_A_ROW {
                        tracing::warn!(
                            left = total - done - 1,
                            "history could not be read for days in a row; the rest is read again later"
                        );
                        return Outcome::LeftOut;
                    }
                    outcome = Outcome::LeftOut;
                    continue;
                }
            };
            unread_in_a_row = 0;
            match self.store_day(&runtime, store, day, &set, card) {
                Ok(warnings) => warnings.texts().iter().for_each(|w| tracing::warn!("{w}")),
                Err(e) => {
                    tracing::error!(error = %e, "history rollup failed");
                    return Outcome::LeftOut;
                }
            }
            if (done + 1) % 7 == 0 || done + 1 == total {
                tracing::info!(done = done + 1, total, "history backfill");
            }
        }
        outcome
    }

    /// Runs [`Archive::backfill`] in the background; returns the backfill again, to be retried
    /// when its `retry_every` has passed, if it left days out.
    async fn backfill_in_background(
        self: &Arc<Self>,
        mut backfill: Backfill,
        card: &Arc<RateCard>,
    ) -> Option<(Backfill, tokio::time::Instant)> {
        let (history, card) = (self.clone(), card.clone());
        let done = super::background::spawn_background(move || {
            let outcome = history.backfill(&mut backfill, &card);
            (outcome, backfill)
        });
        match done.await {
            Ok((Outcome::Complete, _)) => None,
            Ok((Outcome::LeftOut, backfill)) => {
                let due = tokio::time::Instant::now() + backfill.retry_every;
                Some((backfill, due))
            }
            Err(e) => {
                tracing::error!(error = %e, "the history backfill panicked");
                None
            }
        }
    }

    /// The backfill `left` again if it is due and this replica leads, over the days of it
    /// the store still keeps ([`Archive::history_kept`]); what it leaves out is kept for later.
    async fn retry_backfill(
        self: &Arc<Self>,
        left: Option<(Backfill, tokio::time::Instant)>,
        card: &Arc<RateCard>,
    ) -> Option<(Backfill, tokio::time::Instant)> {
        let (mut backfill, due) = left?;
        if tokio::time::Instant::now() < due || !self.leadership.is_leader() {
            return Some((backfill, due));
        }
        backfill.days = self.history_kept(jiff::Timestamp::now().as_second())?;
        self.backfill_in_background(backfill, card).await
    }

    /// Rolls `set` up into `store` as the day `day` (what the store held of it is replaced),
    /// counted among the writes; the roll-up's warnings.
    fn store_day(
        &self,
        runtime: &tokio::runtime::Handle,
        store: &RollupStore,
        day: UnixSeconds,
        set: &crate::allocation::AllocationSet,
        card: &RateCard,
    ) -> Result<crate::cost::Warnings, crate::reporting::ReportError> {
        let sets = [set];
        let warnings = runtime.block_on(self.sources(&sets, None, card).unbounded().roll_up(
            store,
            &[day],
            |_| {},
        ))?;
        self.writes.fetch_add(1, Ordering::AcqRel);
        Ok(warnings)
    }

    /// Corrects the stored days `corrections` touch (facts about rolled-up time the ledger
    /// learnt late, such as a pod that finished while Tollgate was down): each such day is
    /// priced again from its archived segments, corrected, before the next view is published.
    /// Only the replica that writes rollups does it.
    pub fn correct(&self, corrections: &[Correction], card: &RateCard) {
        if corrections.is_empty() || !self.leadership.is_leader() {
            return;
        }
        let Some(store) = &self.store else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return tracing::error!("stored days need correcting, but no runtime runs the store");
        };
        let mut by_day: BTreeMap<UnixSeconds, Vec<&Correction>> = BTreeMap::new();
        for correction in corrections {
            let during = correction.during();
            let first = during.start.div_euclid(DAY) * DAY;
            for day in (first..during.end).step_by(DAY as usize) {
                by_day.entry(day).or_default().push(correction);
            }
        }
        for (day, corrections) in by_day {
            let window = Interval::new(day, day + DAY);
            let mut set = match store.read_segments(&[day]) {
                Ok((mut sets, _)) if !sets.is_empty() => sets.remove(0),
                Ok(_) => {
                    tracing::warn!(day = %format_time(day), "a stored day has no segment archive to correct; its rollup keeps what was known when it was rolled up");
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "a stored day could not be read to correct it");
                    continue;
                }
            };
            for correction in corrections {
                correction.apply(&mut set, window);
            }
            match self.store_day(&runtime, store, day, &set, card) {
                Ok(_) => {
                    tracing::info!(day = %format_time(day), "stored day corrected with what was learnt after it was rolled up");
                }
                Err(e) => tracing::error!(error = %e, "a stored day could not be corrected"),
            }
        }
    }

    /// Whether this replica still leads before the next of `total` days to roll up (`done`
    /// so far), saying so when it no longer does: a long backfill can outlast the lead, and
    /// the replica that has it now does the rest.
    fn still_leads(&self, done: usize, total: usize) -> bool {
        let leads = self.leadership.is_leader();
        if !leads {
            tracing::info!(
                done,
                total,
                "no longer leading: the leader rolls up the rest"
            );
        }
        leads
    }

    /// Every day before this is in the store, if the rollups say so.
    pub fn rolled_until(&self) -> Option<UnixSeconds> {
        Some(self.rolled.load(Ordering::Acquire)).filter(|&until| until > 0)
    }

    /// Rolls up the closed days `view` has data for and the store lacks (all of them on the
    /// first call: the backfill) — only while leading, from a view of the ledger written here
    /// (a new leader waiting for the old one to let go of it has none yet) — drops days past
    /// retention, and once every day before today is stored, says so
    /// ([`Archive::rolled_until`]) so the ledger can forget them.
    async fn roll_up(&self, view: &View, card: &RateCard) {
        let Some(store) = &self.store else { return };
        if !view.readiness.is_ready() || !view.writer || !self.leadership.is_leader() {
            return;
        }
        let sets = view.ledger.as_refs();
        let earliest = sets.iter().filter_map(|s| s.earliest_start()).min();
        let Some(earliest) = earliest else { return };
        let today = (view.as_of - ROLL_UP_GRACE).div_euclid(DAY) * DAY;
        let first = earliest.div_euclid(DAY) * DAY;
        let first = first
            .max(today - i64::from(self.retention_days) * DAY)
            .max(view.ledger.from.unwrap_or(UnixSeconds::MIN));
        let stored = match store.days() {
            Ok(days) => days,
            Err(e) => return tracing::error!(error = %e, "rollup store unreadable"),
        };
        let missing: Vec<UnixSeconds> = (first..today)
            .step_by(DAY as usize)
            .filter(|d| !stored.contains(d))
            .collect();
        if missing.is_empty() {
            self.rolled.fetch_max(today, Ordering::AcqRel);
            if !self.exported_once.swap(true, Ordering::AcqRel) {
                self.export_stored(view, card).await;
            }
            return;
        }
        tracing::info!(days = missing.len(), "rolling up closed days");
        if let Some(unread) = self.unread_history().filter(|u| {
            missing
                .iter()
                .any(|&day| u.clip(Interval::new(day, day + DAY)).is_some())
        }) {
            tracing::error!(
                "{}: the day is rolled up without it, and the stored day is completed once it is read",
                crate::reporting::unread_history(unread)
            );
        }
        let (total, sources) = (
            missing.len(),
            self.sources(&sets, view.ledger.from, card).unbounded(),
        );
        let (mut warnings, mut failed) = (crate::cost::Warnings::default(), false);
        for (done, day) in missing.into_iter().enumerate() {
            if !self.still_leads(done, total) {
                return;
            }
            match sources.roll_up(store, &[day], |_| {}).await {
                Ok(more) => warnings.absorb(more),
                Err(e) => {
                    tracing::error!(error = %e, "rollup failed");
                    failed = true;
                    break;
                }
            }
            self.writes.fetch_add(1, Ordering::AcqRel);
            if (done + 1) % 7 == 0 || done + 1 == total {
                tracing::info!(done = done + 1, total, "rollup backfill");
            }
        }
        if !failed {
            warnings.texts().iter().for_each(|w| tracing::warn!("{w}"));
            self.rolled.fetch_max(today, Ordering::AcqRel);
        }
        if let Err(e) = store.remove_before(today - i64::from(self.retention_days) * DAY) {
            tracing::error!(error = %e, "old rollups could not be removed");
        }
        self.exported_once.store(true, Ordering::Release);
        self.export_stored(view, card).await;
    }

    /// Exports the stored days not yet at `[export] dest` (each day's two files, as
    /// `tollgate export` writes them).
    async fn export_stored(&self, view: &View, card: &RateCard) {
        let (Some(export), Some(store)) = (&self.export, &self.store) else {
            return;
        };
        let days: Vec<UnixSeconds> = match store.days() {
            Ok(days) => days.into_iter().collect(),
            Err(e) => return tracing::error!(error = %e, "rollup store unreadable"),
        };
        let sets = view.ledger.as_refs();
        let sources = self.sources(&sets, view.ledger.from, card).unbounded();
        match export_days(&sources, &export.dest, &export.focus, &days, false, |_| {}).await {
            Ok(done) if done.written > 0 => {
                tracing::info!(days = done.written, "closed days exported")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "closed days could not be exported"),
        }
    }

    /// Reads the other clusters' figures into `quota` now and every so often, when a global
    /// Prometheus is configured and a budget is global.
    pub fn spawn_global(
        self: &Arc<Self>,
        quota: Arc<super::QuotaGate>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let every = self.global.as_ref()?.1;
        if !quota.has_global_budgets() {
            return None;
        }
        let archive = self.clone();
        Some(tokio::spawn(async move {
            let Some((prometheus, _)) = &archive.global else {
                return;
            };
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match prometheus.other_clusters(&archive.cluster).await {
                    Ok(others) => quota.set_other_clusters(others),
                    Err(e) => {
                        tracing::warn!(error = %e, "the other clusters' figures could not be read")
                    }
                }
            }
        }))
    }

    /// Runs utilization polling (every minute) and rollups (looked for every few seconds, after
    /// the `backfill` of history) until aborted.
    pub fn spawn(
        self: &Arc<Self>,
        views: watch::Receiver<Arc<View>>,
        card: Arc<RateCard>,
        backfill: Option<Backfill>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        if self.prometheus.is_some() {
            let archive = self.clone();
            tasks.push(tokio::spawn(async move {
                let mut ticks = tokio::time::interval(Duration::from_secs(60));
                loop {
                    ticks.tick().await;
                    archive.poll_utilization().await;
                }
            }));
        }
        if self.prometheus.is_some() || self.simulated.is_some() {
            let (archive, card) = (self.clone(), card.clone());
            let mut views = views.clone();
            tasks.push(tokio::spawn(async move {
                let _ = views.wait_for(|view| view.readiness.is_ready()).await;
                let mut ticks = tokio::time::interval(Duration::from_secs(60));
                loop {
                    ticks.tick().await;
                    let view = views.borrow().clone();
                    archive.poll_served_models(view, card.clone()).await;
                }
            }));
        }
        if self.store.is_some() {
            let archive = self.clone();
            let mut views = views;
            tasks.push(tokio::spawn(async move {
                let mut left = None;
                if let Some(backfill) = backfill {
                    let _ = archive.history.set(backfill.days);
                    // Only the leader writes the store: a follower serves what the leader
                    // rolls up meanwhile, and takes the backfill over should it lead one day.
                    if !archive.leadership.is_leader() {
                        archive.backfilling.store(false, Ordering::Release);
                        while !archive.leadership.is_leader() {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                        archive.backfilling.store(true, Ordering::Release);
                    }
                    left = archive.backfill_in_background(backfill, &card).await;
                }
                archive.backfilling.store(false, Ordering::Release);
                // Roll up as soon as the sources are read, then look again every few seconds
                // (and for the history days left out, once they are due again).
                let _ = views.wait_for(|view| view.readiness.is_ready()).await;
                let mut ticks = tokio::time::interval(ROLL_UP_CHECK);
                loop {
                    ticks.tick().await;
                    left = archive.retry_backfill(left, &card).await;
                    let view = views.borrow().clone();
                    let (archive, card) = (archive.clone(), card.clone());
                    let runtime = tokio::runtime::Handle::current();
                    let rolled = super::background::spawn_background(move || {
                        runtime.block_on(archive.roll_up(&view, &card));
                    });
                    if let Err(e) = rolled.await {
                        tracing::error!(error = %e, "a rollup panicked");
                    }
                }
            }));
        }
        tasks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::DemoFleet;
    use crate::store::Provenance;

    /// History of the day the ledger began, read only after that day was rolled up without
    /// it, completes the stored day: as if the day had been rolled up whole, and once only.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn history_read_after_its_day_is_rolled_up_completes_the_stored_day() {
        let card = RateCard::builtin();
        let day = crate::time::parse_time("2026-11-19").unwrap();
        let began = day + 10 * 3600 + 1234;
        let fleet = DemoFleet::new(1, day + DAY);
        let part = |from, to| DemoHistory::new(fleet).window(Interval::new(from, to), &card, "c");
        let archive = |dir: &std::path::Path| {
            let provenance = Provenance {
                source: "demo".into(),
                rate_card: card.digest(),
            };
            Archive {
                store: Some(RollupStore::open(dir, provenance).unwrap()),
                retention_days: 3650,
                ..Archive::default()
            }
        };
        let spend = |archive: &Archive| {
            let store = archive.store.as_ref().unwrap();
            let mut spend = store.spend(Interval::new(day, day + DAY)).unwrap();
            spend.sort();
            spend
        };
        let roll_up = |archive: &Archive, set: &crate::allocation::AllocationSet| {
            let (sets, store) = ([set], archive.store.as_ref().unwrap());
            let sources = archive.sources(&sets, None, &card);
            let runtime = tokio::runtime::Handle::current();
            tokio::task::block_in_place(|| {
                runtime.block_on(sources.roll_up(store, &[day], |_| {}))
            })
            .unwrap();
        };
        // The day rolled up whole, as a ledger that had its history all along would.
        let (whole_dir, part_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let whole = archive(whole_dir.path());
        roll_up(&whole, &part(day, day + DAY));
        // The day rolled up from the ledger's part alone, then completed.
        let completed = archive(part_dir.path());
        roll_up(&completed, &part(began, day + DAY));
        let short = spend(&completed);
        assert_ne!(short, spend(&whole));
        let (unread, before) = (Interval::new(day, began), part(day, began));
        assert!(!before.allocations.is_empty());
        let done =
            tokio::task::block_in_place(|| completed.complete_stored_day(unread, &before, &card));
        assert!(done);
        assert_eq!(spend(&completed), spend(&whole));
        // Read again (another replica's reading, a second start): not counted twice.
        let again =
            tokio::task::block_in_place(|| completed.complete_stored_day(unread, &before, &card));
        assert!(again);
        assert_eq!(spend(&completed), spend(&whole));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_follower_leaves_the_history_backfill_to_the_leader_until_it_leads() {
        let dir = tempfile::tempdir().unwrap();
        let card = Arc::new(RateCard::builtin());
        let provenance = Provenance {
            source: "demo".into(),
            rate_card: card.digest(),
        };
        let (leadership, campaign) = Leadership::contested();
        let archive = Arc::new(Archive {
            store: Some(RollupStore::open(dir.path(), provenance).unwrap()),
            leadership,
            retention_days: 3650,
            ..Archive::default()
        });
        archive.backfilling.store(true, Ordering::Release);
        // Two whole days of the smallest demo fleet's past.
        let today = crate::time::parse_time("2026-11-20").unwrap();
        let backfill = Backfill {
            source: HistorySource::Demo(Box::new(DemoHistory::new(DemoFleet::new(1, today)))),
            days: Interval::new(today - 2 * DAY, today),
            cost_center_key: "cost-center".into(),
            retry_every: Duration::from_secs(300),
        };
        let (_views, receiver) = watch::channel(Arc::new(View::default()));
        let tasks = archive.spawn(receiver, card.clone(), Some(backfill));
        let stored = || archive.store.as_ref().unwrap().days().unwrap().len();
        // The two days by cost center, as a replica holding nothing of them in memory (its
        // ledger began after them) answers.
        let report = || async {
            let request = crate::cost::ReportRequest {
                window: Interval::new(today - 2 * DAY, today),
                step: crate::time::Step::Window,
                group_by: "cost_center".parse().unwrap(),
                share_unallocated: false,
                only: Default::default(),
            };
            let sources = archive.sources(&[], None, &card);
            sources.report(&request).await.unwrap()
        };
        let not_stored = "2 days of history before the ledger began, 2026-11-18 to 2026-11-19, \
            are not in the rollup store yet";

        // A follower: ready to serve (not backfilling), and nothing written.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!archive.backfilling.load(Ordering::Acquire));
        assert_eq!(stored(), 0);
        assert!(
            !dir.path().join("rollups/daily").exists(),
            "no file written"
        );
        // What it answers for those days meanwhile says they are missing: not a silent zero.
        let meanwhile = report().await;
        assert!(meanwhile.lines.is_empty());
        assert!(
            meanwhile
                .warnings
                .texts()
                .iter()
                .any(|w| w.starts_with(not_stored)),
            "{:?}",
            meanwhile.warnings.texts()
        );

        // Leading, it rolls up both days.
        campaign.lead_until(Some(std::time::Instant::now() + Duration::from_secs(3600)));
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while stored() < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "the backfill never ran"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Stored, the days are answered from the store, with nothing said missing.
        let after = report().await;
        assert!(!after.lines.is_empty());
        assert!(
            !after
                .warnings
                .texts()
                .iter()
                .any(|w| w.contains("not in the rollup store")),
            "{:?}",
            after.warnings.texts()
        );
        tasks.iter().for_each(tokio::task::JoinHandle::abort);
    }
}
