//! What lies beyond the ledger for a running service: Prometheus (DCGM usage, history) and the
//! rollup store of closed days, with the background work that keeps them useful.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustc_hash::FxHashMap;
use tokio::sync::watch;

use super::feed::Recorded;
use super::view::View;
use crate::live::Leadership;
use crate::pricing::RateCard;
use crate::prometheus::{Prometheus, PrometheusError, history_allocations};
use crate::reporting::Sources;
use crate::store::RollupStore;
use crate::time::{Interval, UnixSeconds};
use crate::usage::UsageKey;

const DAY: i64 = 86_400;

/// Prometheus and the rollup store, when configured, and the latest utilization.
#[derive(Default)]
pub struct Archive {
    /// DCGM usage and history.
    pub prometheus: Option<Prometheus>,
    /// Rollups of closed days.
    pub store: Option<RollupStore>,
    /// Days of rollups kept.
    pub retention_days: u32,
    /// The latest utilization per allocation (`tollgate_gpu_utilization_ratio`).
    pub utilization: RwLock<FxHashMap<UsageKey, f64>>,
    /// Whether this replica writes rollups (among several, only the leader does).
    pub leadership: Leadership,
}

impl Archive {
    /// What a report over `view` is made from.
    pub fn sources<'a>(
        &'a self,
        sets: &'a [&'a crate::allocation::AllocationSet],
        card: &'a RateCard,
    ) -> Sources<'a> {
        Sources {
            sets,
            card,
            store: self.store.as_ref(),
            prometheus: self.prometheus.as_ref(),
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

    /// Rolls up the closed days `view` has data for and the store lacks (all of them on the
    /// first call: the backfill), and drops days past retention.
    async fn roll_up(&self, view: &View, card: &RateCard) {
        let Some(store) = &self.store else { return };
        if !view.ready || !self.leadership.is_leader() {
            return;
        }
        let sets = view.ledger.as_refs();
        let earliest = sets
            .iter()
            .flat_map(|s| {
                s.allocations
                    .iter()
                    .map(|a| a.interval.start)
                    .chain(s.capacity.iter().map(|c| c.interval.start))
            })
            .min();
        let Some(earliest) = earliest else { return };
        let today = view.as_of.div_euclid(DAY) * DAY;
        let first = earliest.div_euclid(DAY) * DAY;
        let first = first.max(today - i64::from(self.retention_days) * DAY);
        let stored = match store.days() {
            Ok(days) => days,
            Err(e) => return tracing::error!(error = %e, "rollup store unreadable"),
        };
        let missing: Vec<UnixSeconds> = (first..today)
            .step_by(DAY as usize)
            .filter(|d| !stored.contains(d))
            .collect();
        if missing.is_empty() {
            return;
        }
        tracing::info!(days = missing.len(), "rolling up closed days");
        let total = missing.len();
        let mut done = 0;
        let result = self
            .sources(&sets, card)
            .roll_up(store, &missing, |_| {
                done += 1;
                if done % 7 == 0 || done == total {
                    tracing::info!(done, total, "rollup backfill");
                }
            })
            .await;
        match result {
            Ok(warnings) => warnings.into_iter().for_each(|w| tracing::warn!("{w}")),
            Err(e) => tracing::error!(error = %e, "rollup failed"),
        }
        if let Err(e) = store.remove_before(today - i64::from(self.retention_days) * DAY) {
            tracing::error!(error = %e, "old rollups could not be removed");
        }
    }

    /// Runs utilization polling (every minute) and rollups (every ten minutes) until aborted.
    pub fn spawn(
        self: &Arc<Self>,
        views: watch::Receiver<Arc<View>>,
        card: Arc<RateCard>,
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
        if self.store.is_some() {
            let archive = self.clone();
            let mut views = views;
            tasks.push(tokio::spawn(async move {
                // Backfill as soon as the sources are read, then check every ten minutes.
                let _ = views.wait_for(|view| view.ready).await;
                let mut ticks = tokio::time::interval(Duration::from_secs(600));
                loop {
                    ticks.tick().await;
                    let view = views.borrow().clone();
                    archive.roll_up(&view, &card).await;
                }
            }));
        }
        tasks
    }
}
