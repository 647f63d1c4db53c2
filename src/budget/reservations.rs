//! Admitted pods not yet seen running: held against their budgets for a while, so that a burst
//! of checks cannot each see the same headroom and together over-admit.

use std::collections::VecDeque;
use std::sync::Arc;

use rust_decimal::Decimal;
use rustc_hash::{FxHashMap, FxHashSet};

use super::spend::Usage;
use crate::allocation::AllocationSet;
use crate::ledger::Touched;
use crate::time::UnixSeconds;

/// One admitted pod's hold on its budgets.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Reservation {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name, when the request had one.
    pub name: Option<String>,
    /// Its cost center.
    pub cost_center: String,
    /// Units it will hold.
    pub units: Decimal,
    /// What it will cost per hour.
    pub per_hour: Decimal,
    /// When the hold lapses if the pod never shows up.
    pub expires: UnixSeconds,
}

/// A pod seen running for the first time.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Arrival {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The GPU units it holds.
    pub units: Decimal,
}

/// The pods that showed up lately, numbered in the order they did: what releases holds.
#[derive(Clone, Debug, Default)]
pub struct ArrivalLog {
    /// The number of the first entry kept.
    first: u64,
    /// When each arrived, and what.
    entries: VecDeque<(UnixSeconds, Arrival)>,
}

impl ArrivalLog {
    /// The number the next arrival gets.
    pub fn next(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    /// The arrivals numbered `from` and later that are still kept.
    fn since(&self, from: u64) -> impl Iterator<Item = &Arrival> {
        let skip = usize::try_from(from.saturating_sub(self.first)).unwrap_or(usize::MAX);
        self.entries.iter().skip(skip).map(|(_, arrival)| arrival)
    }
}

/// Finds arrivals as the reconciler reads the cluster (off the request path), so that settling
/// holds costs what arrived since, never a pass over everything running.
#[derive(Clone, Debug, Default)]
pub struct Arrivals {
    /// What arrived lately, shared with the views.
    log: Arc<ArrivalLog>,
    /// UIDs of the pods running at the last read.
    running: FxHashSet<String>,
    /// Whether a read was taken in (the first read's pods are not arrivals: they were there).
    read: bool,
}

/// How long arrivals are kept: longer than any hold waits for its pod.
const ARRIVALS_KEPT: UnixSeconds = 3600;

impl Arrivals {
    /// The log of recent arrivals.
    pub fn log(&self) -> Arc<ArrivalLog> {
        self.log.clone()
    }

    /// Takes in a read of the cluster at `as_of`: pods of `live` running then and not at the
    /// last read arrived. With `touched`, only those pods may have changed since that read.
    pub fn take_in(&mut self, live: &AllocationSet, as_of: UnixSeconds, touched: Option<&Touched>) {
        let mut now_running: FxHashMap<&str, Arrival> = FxHashMap::default();
        for a in live.allocations.iter().filter(|a| a.interval.end >= as_of) {
            let uid = live.names.resolve(a.pod_uid);
            if touched.is_some_and(|t| !t.pods.contains(uid)) {
                continue;
            }
            let arrival = now_running.entry(uid).or_insert_with(|| Arrival {
                namespace: live.names.resolve(a.namespace).to_string(),
                name: live.names.resolve(a.pod).to_string(),
                units: Decimal::ZERO,
            });
            arrival.units += a.units.to_decimal();
        }
        match touched {
            None => self
                .running
                .retain(|uid| now_running.contains_key(uid.as_str())),
            Some(touched) => self.running.retain(|uid| {
                !touched.pods.contains(uid) || now_running.contains_key(uid.as_str())
            }),
        }
        let arrived: Vec<Arrival> = now_running
            .into_iter()
            .filter(|(uid, _)| self.running.insert(uid.to_string()) && self.read)
            .map(|(_, arrival)| arrival)
            .collect();
        self.read = true;
        let stale = |log: &ArrivalLog| {
            log.entries
                .front()
                .is_some_and(|(at, _)| *at < as_of - ARRIVALS_KEPT)
        };
        if arrived.is_empty() && !stale(&self.log) {
            return;
        }
        let log = Arc::make_mut(&mut self.log);
        log.entries.extend(arrived.into_iter().map(|a| (as_of, a)));
        while stale(log) {
            log.entries.pop_front();
            log.first += 1;
        }
    }
}

/// The open reservations, and how far the arrivals were read.
#[derive(Clone, Debug, Default)]
pub struct Reservations {
    held: Vec<Reservation>,
    settled: u64,
}

impl Reservations {
    /// Adds a hold.
    pub fn reserve(&mut self, reservation: Reservation) {
        self.held.push(reservation);
    }

    /// How many holds are open.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// True when no hold is open.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Held units and burn of a cost center and of a namespace, counting holds alive at `now`.
    pub fn usage(&self, cost_center: &str, namespace: &str, now: UnixSeconds) -> (Usage, Usage) {
        let mut by_cost_center = Usage::default();
        let mut by_namespace = Usage::default();
        for r in self.held.iter().filter(|r| r.expires > now) {
            if r.cost_center == cost_center {
                by_cost_center.units += r.units;
                by_cost_center.burn_per_hour += r.per_hour;
            }
            if r.namespace == namespace {
                by_namespace.units += r.units;
                by_namespace.burn_per_hour += r.per_hour;
            }
        }
        (by_cost_center, by_namespace)
    }

    /// Drops expired holds and the holds of pods that arrived since the last settle: a hold
    /// with a name is released by that pod; a nameless one (generated names) by a new pod of its
    /// namespace holding the same units. Costs the arrivals since the last settle times the
    /// holds open: never a pass over what runs.
    pub fn settle(&mut self, arrivals: &ArrivalLog, now: UnixSeconds) {
        self.held.retain(|r| r.expires > now);
        for arrival in arrivals.since(self.settled) {
            let named = self.held.iter().position(|r| {
                r.namespace == arrival.namespace && r.name.as_deref() == Some(arrival.name.as_str())
            });
            let matched = named.or_else(|| {
                self.held.iter().position(|r| {
                    r.namespace == arrival.namespace && r.name.is_none() && r.units == arrival.units
                })
            });
            if let Some(i) = matched {
                self.held.remove(i);
            }
        }
        self.settled = arrivals.next();
    }
}
