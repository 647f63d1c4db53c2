//! Reading the feed into the ledger and publishing a new [`View`] after every reconcile (the
//! corrections a reconcile makes to closed days go to the [`Archive`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use super::archive::Archive;
use super::feed::{Feed, Reading};
use super::follow::Following;
use super::view::{Readiness, View};
use crate::allocation::{AllocationSet, BuildOptions};
use crate::budget::{Arrivals, SpendIndex, StoredSpend, month_of};
use crate::ledger::{Ledger, Touched};
use crate::pricing::RateCard;
use crate::reporting::UnstoredHistory;
use crate::store::RollupStore;
use crate::time::{Interval, UnixSeconds};

/// One read of `feed` into an in-memory ledger: the view a one-shot command (or a test) decides
/// from.
pub fn read_once(feed: Feed, card: Arc<RateCard>, cost_center_key: &str) -> Arc<View> {
    let (views, receiver) = watch::channel(Arc::new(View::default()));
    Reconciler::new(
        feed,
        Ledger::in_memory(),
        card,
        cost_center_key.to_string(),
        views,
    )
    .step();
    receiver.borrow().clone()
}

/// Reads the feed into the ledger and publishes views.
pub struct Reconciler {
    feed: Feed,
    ledger: Ledger,
    card: Arc<RateCard>,
    cost_center_key: String,
    views: watch::Sender<Arc<View>>,
    current_at: Option<Instant>,
    history: Option<Arc<AllocationSet>>,
    /// The UTC midnight the history in memory starts at: what is before it is the store's.
    history_from: Option<UnixSeconds>,
    following: Option<Following>,
    archive: Option<Arc<Archive>>,
    stored_spend: StoredSpendRead,
    /// Pods and nodes read again since the ledger was last reconciled (`None`: all).
    touched: Option<Touched>,
    /// Pods that showed up lately.
    arrivals: Arrivals,
    /// The view replaced by the last publish, freed at the next one: a request still reading it
    /// then would otherwise free a whole view on the request path.
    retired: Option<Arc<View>>,
}

impl Reconciler {
    /// A reconciler publishing to `views`.
    pub fn new(
        feed: Feed,
        ledger: Ledger,
        card: Arc<RateCard>,
        cost_center_key: String,
        views: watch::Sender<Arc<View>>,
    ) -> Self {
        Reconciler {
            feed,
            ledger,
            card,
            cost_center_key,
            views,
            current_at: None,
            history: None,
            history_from: None,
            following: None,
            archive: None,
            stored_spend: StoredSpendRead::default(),
            touched: None,
            arrivals: Arrivals::default(),
            retired: None,
        }
    }

    /// Reads rolled-up days from the archive's store: the ledger forgets them once stored,
    /// and month-to-date spend takes them from the store.
    pub fn with_archive(mut self, archive: Arc<Archive>) -> Self {
        self.archive = Some(archive);
        self
    }

    /// Forgets what the store now holds: the ledger records the days as rolled up (and
    /// compacts), history before them is dropped.
    fn forget_rolled(&mut self) {
        let Some(until) = self.archive.as_ref().and_then(|a| a.rolled_until()) else {
            return;
        };
        if self
            .ledger
            .state()
            .rolled_until()
            .is_some_and(|r| r >= until)
        {
            return;
        }
        if let Err(e) = self.ledger.mark_rolled(until) {
            tracing::error!(error = %e, "the ledger could not record the rolled-up days");
            return;
        }
        if let Some(history) = &self.history {
            let mut kept = (**history).clone();
            kept.drop_before(until);
            self.history = (!kept.is_empty()).then(|| Arc::new(kept));
        }
    }

    /// The month's spend in the store, before `from`.
    fn stored_spend(&mut self, as_of: UnixSeconds, from: Option<UnixSeconds>) -> &StoredSpend {
        let month = month_of(as_of);
        let window = Interval::new(month.start, from.unwrap_or(month.start).max(month.start));
        let writes = self
            .archive
            .as_ref()
            .map_or(0, |a| a.writes.load(Ordering::Acquire));
        let store = self.archive.as_ref().and_then(|a| a.store.as_ref());
        let history = self.archive.as_ref().and_then(|a| a.history_kept(as_of));
        self.stored_spend.of(store, window, (writes, history))
    }

    /// Adds allocations rebuilt from history for the time before the ledger began; they are
    /// part of every view.
    pub fn with_history(mut self, history: Option<Arc<AllocationSet>>) -> Self {
        self.history_from = history.as_deref().and_then(first_day);
        self.history = history;
        self
    }

    /// History read late (the part of the day the ledger began that came before it, once
    /// Prometheus answered for it): part of every view from the next on. False, and left out,
    /// when that day is rolled up already: the store holds it without this.
    pub fn add_history(&mut self, history: Arc<AllocationSet>) -> bool {
        let first = first_day(&history);
        let rolled = self.ledger.state().rolled_until();
        if first
            .zip(rolled)
            .is_some_and(|(first, rolled)| rolled > first)
        {
            return false;
        }
        self.history_from = first;
        self.history = Some(history);
        true
    }

    /// Among replicas: writes the ledger only while leading, else follows the leader's.
    pub fn with_following(mut self, following: Option<Following>) -> Self {
        self.following = following;
        self
    }

    /// One reconcile: read, record, publish.
    ///
    /// The ledger is only reconciled from a complete and current picture: before every kind
    /// has been listed, or while the API server cannot be read, the objects in memory would make
    /// running pods look vanished or keep deleted ones alive. Then the view is published without
    /// touching the ledger, whose heartbeat stays at the last good read.
    pub fn step(&mut self) {
        let started = Instant::now();
        // Read before the stored spend is: a backfill that ends during this reconcile leaves
        // this view not ready, and the next one reads the days it stored.
        let backfilling = self
            .archive
            .as_ref()
            .is_some_and(|a| a.backfilling.load(Ordering::Acquire));
        if let Some(following) = &mut self.following
            && following.sync(&mut self.ledger)
        {
            // Another ledger: compare every segment with it.
            self.touched = None;
        }
        self.forget_rolled();
        // This replica writes: alone, or holding the ledger among several.
        let writer = self.following.is_none() || self.ledger.is_durable();
        let as_of = self.feed.now();
        let options = BuildOptions {
            as_of,
            cost_center_key: self.cost_center_key.clone(),
        };
        let Reading {
            live,
            namespaces,
            claim_asks,
            nodes,
            synced,
            touched,
        } = self.feed.read(&self.card, options);
        let kubernetes_up = self.feed.kubernetes_up();
        let current = synced && kubernetes_up != Some(false);
        let read_at = Instant::now();
        // What changed since the last reconcile, across reads that were not reconciled.
        if let (Some(all), Some(now)) = (&mut self.touched, touched) {
            all.pods.extend(now.pods);
            all.nodes.extend(now.nodes);
        } else {
            self.touched = None;
        }
        if current {
            self.current_at = Some(read_at);
            let touched = self.touched.replace(Touched::default());
            self.arrivals.take_in(&live, as_of, touched.as_ref());
            match self.ledger.reconcile(as_of, &live, touched.as_ref()) {
                Ok((notes, corrections)) => {
                    // A follower's in-memory reconcile closes what the leader has not yet.
                    let durable = self.ledger.is_durable();
                    for note in &notes {
                        if durable {
                            tracing::warn!("{note}");
                        } else {
                            tracing::debug!("{note}");
                        }
                    }
                    // Among replicas, only what the written ledger learnt corrects the store:
                    // a follower's copy lags the leader's by a read, and the lead may have
                    // changed hands since this reconcile began.
                    if let Some(archive) = self.archive.as_ref().filter(|_| writer) {
                        archive.correct(&corrections, &self.card);
                    }
                }
                Err(e) => tracing::error!(
                    error = %e,
                    "the ledger could not be written; what changed since the last write would be lost on a crash"
                ),
            }
        }
        let mut ledger = self.ledger.view(as_of);
        if let Some(history) = &self.history {
            ledger.sets.insert(0, history.clone());
            // Memory holds nothing before the history does: earlier days are the store's, for
            // budgets and reports alike, before the ledger has forgotten any day itself.
            ledger.from = ledger.from.or(self.history_from);
        }
        // A ledger that cuts over counts nothing before the day it began: the whole days before
        // it are history, the store's (rolled up by the backfill), from the first view on.
        if let Some(began) = self
            .ledger
            .state()
            .began()
            .filter(|_| self.ledger.cuts_over())
        {
            ledger.from = ledger.from.or(Some(began.div_euclid(86_400) * 86_400));
        }
        let stored = self.stored_spend(as_of, ledger.from).clone();
        let mut spend = SpendIndex::build(&ledger.as_refs(), &stored, &live, &self.card, as_of).unwrap_or_else(|e| {
            tracing::error!(error = %e, "month-to-date spend could not be computed; budgets see none");
            SpendIndex::default()
        });
        // Nor does it count what history Prometheus has not answered for yet.
        if let Some(unread) = self
            .archive
            .as_ref()
            .and_then(|a| a.unread_history())
            .filter(|u| u.clip(spend.month).is_some())
        {
            let unread = crate::reporting::unread_history(unread);
            spend.incomplete = Some(match spend.incomplete.take() {
                Some(missing) => format!("{missing}; {unread}"),
                None => unread,
            });
        }
        let view = View {
            as_of,
            read_at,
            current_at: self.current_at,
            ledger,
            live: Arc::new(live),
            readiness: Readiness::of(synced, backfilling),
            writer,
            kubernetes_up,
            spend: Arc::new(spend),
            namespaces: Arc::new(namespaces),
            claim_asks,
            nodes,
            placements: Arc::default(),
            arrivals: self.arrivals.log(),
            reconciled_in: started.elapsed(),
            segments: (
                self.ledger.state().open_count(),
                self.ledger.state().closed_count(),
            ),
        };
        // The view retired a publish ago has no reader left: it is freed here, off the
        // request path, and the one replaced now waits for the next publish.
        self.retired = Some(self.views.send_replace(Arc::new(view)));
    }
}

/// The UTC midnight starting the day of the earliest allocation or capacity of `set`.
fn first_day(set: &AllocationSet) -> Option<UnixSeconds> {
    Some(set.earliest_start()?.div_euclid(86_400) * 86_400)
}

/// The month's spend as last read from the store, and what the store was then.
#[derive(Default)]
struct StoredSpendRead {
    spend: StoredSpend,
    /// What it was read for and from ([`StoredSpendRead::of`]) and the store's
    /// [`RollupStore::changed_at`] then.
    version: Option<(Written, Option<SystemTime>)>,
    read_at: Option<SystemTime>,
}

/// This replica's count of days written, and the days of history before the ledger began the
/// store is to hold.
type Written = (u64, Option<Interval>);

/// How long after a change to the store a read of it may still have missed a second change
/// stamped with the same time (file times tick coarsely): until then, read again.
const STORE_SETTLES: Duration = Duration::from_secs(1);

impl StoredSpendRead {
    /// The store's spend over `window`, read again when the window moves or the store changed
    /// since — a day written here (`written`), or by the leader, corrected or dropped — with
    /// the month's days of history before the ledger began that it does not count.
    fn of(
        &mut self,
        store: Option<&RollupStore>,
        window: Interval,
        written: Written,
    ) -> &StoredSpend {
        let version = (written, store.and_then(RollupStore::changed_at));
        let settled = match (version.1, self.read_at) {
            (None, _) => true,
            (Some(changed), Some(read)) => read
                .duration_since(changed)
                .is_ok_and(|after| after >= STORE_SETTLES),
            (Some(_), None) => false,
        };
        if self.spend.window != window || self.version != Some(version) || !settled {
            let read_at = SystemTime::now();
            let read = store.map(|s| Ok((s.spend(window)?, s.days()?))).transpose();
            self.spend = match read {
                Ok(read) => {
                    let (cost, days) = read.unwrap_or_default();
                    StoredSpend {
                        window,
                        cost,
                        missing: written.1.and_then(|history| {
                            // The month's days of history this spend does not count: not
                            // stored yet, or past the stored stretch (none before the ledger
                            // says what the store holds), memory holding none of them.
                            let counted = days.range(..window.end).copied().collect();
                            let month_on = Interval::new(window.start, history.end);
                            let missing = UnstoredHistory::of(history, month_on, &counted)?;
                            Some(format!("{} not in the rollup store yet", missing.is_are()))
                        }),
                    }
                }
                Err(e) => {
                    let e: crate::store::StoreError = e;
                    tracing::error!(error = %e, "the month's stored spend could not be read; budgets see none of it");
                    StoredSpend::default()
                }
            };
            (self.version, self.read_at) = (Some(version), Some(read_at));
        }
        &self.spend
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::cost_report;
    use crate::source::DemoFleet;
    use crate::store::{Provenance, rollup_requests};
    use crate::time::parse_time;

    const DAY: i64 = 86_400;

    /// A store, and how the leader rolls a day of the smallest demo fleet up into it.
    fn demo_store() -> (
        tempfile::TempDir,
        RollupStore,
        impl Fn(&RollupStore, UnixSeconds),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let card = RateCard::builtin();
        let provenance = Provenance {
            source: "demo".into(),
            rate_card: card.digest(),
        };
        let store = RollupStore::open(dir.path(), provenance).unwrap();
        let as_of = parse_time("2026-11-20T00:00:00Z").unwrap();
        let set = DemoFleet::new(1, as_of).allocations(&card, &BuildOptions::new(as_of));
        let store_day = move |store: &RollupStore, day: UnixSeconds| {
            let [hourly, pods] =
                rollup_requests(day).map(|r| cost_report(&[&set], &card, &r).unwrap());
            store.write_day(day, &hourly, &pods).unwrap();
        };
        (dir, store, store_day)
    }

    #[test]
    fn the_month_s_stored_spend_is_read_again_when_another_replica_stores_a_day() {
        let (_dir, store, store_day) = demo_store();
        let total = |spend: &StoredSpend| -> rust_decimal::Decimal {
            spend.cost.iter().map(|(.., cost)| cost).sum()
        };
        // What a fresh read of the store says.
        let stored = |window| -> rust_decimal::Decimal {
            store
                .spend(window)
                .unwrap()
                .iter()
                .map(|(.., cost)| cost)
                .sum()
        };
        let window = Interval::new(
            parse_time("2026-11-01").unwrap(),
            parse_time("2026-11-20").unwrap(),
        );
        let first = parse_time("2026-11-10").unwrap();
        // This replica writes nothing: its count of writes stays 0 throughout.
        let mut read = StoredSpendRead::default();
        store_day(&store, first);
        let one_day = total(read.of(Some(&store), window, (0, None)));
        assert_eq!(one_day, stored(window));
        assert!(one_day > rust_decimal::Decimal::ZERO);

        // The leader stores the next day, at once and then again once the store has settled.
        store_day(&store, first + DAY);
        let two_days = total(read.of(Some(&store), window, (0, None)));
        assert_eq!(two_days, stored(window));
        assert!(two_days > one_day);
        std::thread::sleep(STORE_SETTLES + Duration::from_millis(100));
        let settled = total(read.of(Some(&store), window, (0, None)));
        assert_eq!(settled, two_days);
        store_day(&store, first + 2 * DAY);
        let three_days = total(read.of(Some(&store), window, (0, None)));
        assert_eq!(three_days, stored(window));
        assert!(three_days > two_days);
    }

    /// A ledger that cuts over (Prometheus history before it) holds nothing before the day it
    /// began: the month's stored days count toward budgets from the first view, not only once
    /// the ledger has rolled a day up itself (until then they counted nothing).
    #[test]
    fn a_ledger_that_cuts_over_counts_the_month_s_stored_history_from_its_first_view() {
        let (_dir, store, store_day) = demo_store();
        let at = |time: &str| parse_time(time).unwrap();
        store_day(&store, at("2026-11-10"));
        store_day(&store, at("2026-11-11"));
        let mut stored: std::collections::BTreeMap<String, rust_decimal::Decimal> =
            Default::default();
        for (cost_center, _, cost) in store
            .spend(Interval::new(at("2026-11-01"), at("2026-11-20")))
            .unwrap()
        {
            *stored.entry(cost_center).or_default() += cost;
        }
        stored.remove(crate::allocation::UNALLOCATED);
        assert!(stored.len() > 1);
        let archive = Arc::new(Archive {
            store: Some(store),
            retention_days: 3650,
            ..Archive::default()
        });
        let mut ledger = Ledger::in_memory().cutting_over(true);
        ledger.begin(at("2026-11-20T10:00:00Z")).unwrap();
        let feed = Feed::Snapshot {
            objects: Box::default(),
            as_of: Some(at("2026-11-20T12:00:00Z")),
        };
        let (views, receiver) = watch::channel(Arc::new(View::default()));
        let card = Arc::new(RateCard::builtin());
        Reconciler::new(feed, ledger, card, "cost-center".into(), views)
            .with_archive(archive)
            .step();
        let view = receiver.borrow().clone();
        for (cost_center, cost) in &stored {
            assert_eq!(
                view.spend.cost_center(cost_center).spent,
                *cost,
                "{cost_center}"
            );
        }
        assert_eq!(view.spend.incomplete, None);
    }

    /// History read late joins the views, unless its day is rolled up already: the store holds
    /// that day without it, and adding it to memory would not put it there.
    #[test]
    fn history_read_late_joins_the_views_unless_its_day_is_rolled_up() {
        let at = |time: &str| parse_time(time).unwrap();
        let card = Arc::new(RateCard::builtin());
        let began = at("2026-11-20T10:00:00Z");
        let history = || {
            let fleet = DemoFleet::new(1, began);
            let before = Interval::new(at("2026-11-20"), began);
            let set = crate::source::DemoHistory::new(fleet).window(before, &card, "cost-center");
            assert!(!set.allocations.is_empty());
            Arc::new(set)
        };
        let reconciler = |rolled: Option<&str>| {
            let mut ledger = Ledger::in_memory().cutting_over(true);
            ledger.begin(began).unwrap();
            if let Some(rolled) = rolled {
                ledger.mark_rolled(at(rolled)).unwrap();
            }
            let feed = Feed::Snapshot {
                objects: Box::default(),
                as_of: Some(at("2026-11-21T12:00:00Z")),
            };
            let (views, receiver) = watch::channel(Arc::new(View::default()));
            let reconciler = Reconciler::new(feed, ledger, card.clone(), "c".into(), views);
            (reconciler, receiver)
        };
        let holds = |view: &View, set: &Arc<AllocationSet>| {
            view.ledger.sets.iter().any(|held| Arc::ptr_eq(held, set))
        };
        let (mut open, views) = reconciler(None);
        let read = history();
        assert!(open.add_history(read.clone()));
        open.step();
        let view = views.borrow().clone();
        assert!(holds(&view, &read));
        assert_eq!(view.ledger.from, Some(at("2026-11-20")));
        let (mut rolled, views) = reconciler(Some("2026-11-21"));
        let read = history();
        assert!(!rolled.add_history(read.clone()));
        rolled.step();
        assert!(!holds(&views.borrow(), &read));
    }

    #[test]
    fn the_month_s_stored_spend_names_the_history_days_the_store_lacks() {
        let (_dir, store, store_day) = demo_store();
        // History from 2026-10-28 to the ledger's start on 2026-11-04: of November's part,
        // 2026-11-01 is stored, 11-02 and 11-03 not yet.
        let history = Interval::new(
            parse_time("2026-10-28").unwrap(),
            parse_time("2026-11-04").unwrap(),
        );
        let window = Interval::new(parse_time("2026-11-01").unwrap(), history.end);
        store_day(&store, window.start);
        let mut read = StoredSpendRead::default();
        let mut missing = |window| {
            read.of(Some(&store), window, (0, Some(history)))
                .missing
                .clone()
        };
        assert_eq!(
            missing(window).as_deref(),
            Some(
                "2 days of history before the ledger began, 2026-11-02 to 2026-11-03, are not in \
                 the rollup store yet"
            )
        );
        store_day(&store, window.start + DAY);
        assert_eq!(
            missing(window).as_deref(),
            Some(
                "the day 2026-11-03 of history before the ledger began is not in the rollup \
                 store yet"
            )
        );
        store_day(&store, window.start + 2 * DAY);
        assert_eq!(missing(window), None);
        // Before the ledger says what the store holds (nothing rolled up by it yet, no history
        // in memory), the stored stretch is empty: none of the month's history counts yet.
        let nothing_yet = Interval::new(window.start, window.start);
        assert_eq!(
            missing(nothing_yet).as_deref(),
            Some(
                "3 days of history before the ledger began, 2026-11-01 to 2026-11-03, are not in \
                 the rollup store yet"
            )
        );
    }
}
