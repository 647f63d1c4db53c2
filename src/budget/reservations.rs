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
    /// The pod's UID, when the request had one (a validating webhook sees it, and the name
    /// generated from `generateName`).
    pub uid: Option<String>,
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
    /// Its UID.
    pub uid: String,
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
                uid: uid.to_string(),
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

/// Who a hold is for: the same pod checked twice (a retried check, or both the Kyverno rule and
/// the native webhook) holds its cost once.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum HoldKey {
    /// A pod with a name.
    Named { namespace: String, name: String },
    /// A pod known by its UID only.
    Uid(String),
    /// A pod the request did not identify (a bare GPU count, or a pod without name or UID).
    Anonymous(u64),
}

/// The open reservations, and how far the arrivals were read.
#[derive(Clone, Debug, Default)]
pub struct Reservations {
    held: FxHashMap<HoldKey, Reservation>,
    /// Holds without a name, by namespace: released by a new pod of their namespace holding
    /// the same units.
    nameless: FxHashMap<String, Vec<HoldKey>>,
    next_anonymous: u64,
    settled: u64,
}

impl HoldKey {
    /// The key of an identified pod; `None` when the request named none.
    fn of(namespace: &str, name: Option<&str>, uid: Option<&str>) -> Option<HoldKey> {
        match (name, uid) {
            (Some(name), _) => Some(HoldKey::Named {
                namespace: namespace.to_string(),
                name: name.to_string(),
            }),
            (None, Some(uid)) => Some(HoldKey::Uid(uid.to_string())),
            (None, None) => None,
        }
    }
}

/// The pod a check is about, as far as the request identifies it.
#[derive(Clone, Copy, Debug)]
pub struct PodIdentity<'a> {
    /// Its namespace.
    pub namespace: &'a str,
    /// Its name, if known.
    pub name: Option<&'a str>,
    /// Its UID, if known.
    pub uid: Option<&'a str>,
}

impl Reservations {
    /// Adds a hold, replacing the one the same pod already has.
    pub fn reserve(&mut self, reservation: Reservation) {
        let identified = HoldKey::of(
            &reservation.namespace,
            reservation.name.as_deref(),
            reservation.uid.as_deref(),
        );
        let key = identified.unwrap_or_else(|| {
            self.next_anonymous += 1;
            HoldKey::Anonymous(self.next_anonymous)
        });
        if reservation.name.is_none() && !self.held.contains_key(&key) {
            self.nameless
                .entry(reservation.namespace.clone())
                .or_default()
                .push(key.clone());
        }
        self.held.insert(key, reservation);
    }

    /// How many holds are open.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// True when no hold is open.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Held units and burn of a cost center and of a namespace, counting holds alive at `now`
    /// besides `pod`'s own (a pod checked again is not in its own way). Sums saturate: holds are
    /// bounded by the check (`MAX_UNITS` GPUs each), so only absurd numbers of them could reach
    /// `Decimal`'s range.
    pub fn usage(
        &self,
        cost_center: &str,
        pod: PodIdentity<'_>,
        now: UnixSeconds,
    ) -> (Usage, Usage) {
        let own = HoldKey::of(pod.namespace, pod.name, pod.uid);
        let namespace = pod.namespace;
        let mut by_cost_center = Usage::default();
        let mut by_namespace = Usage::default();
        let add = |usage: &mut Usage, r: &Reservation| {
            usage.units = usage.units.saturating_add(r.units);
            usage.burn_per_hour = usage.burn_per_hour.saturating_add(r.per_hour);
        };
        let others = self
            .held
            .iter()
            .filter(|(key, _)| own.as_ref() != Some(*key));
        for (_, r) in others.filter(|(_, r)| r.expires > now) {
            if r.cost_center == cost_center {
                add(&mut by_cost_center, r);
            }
            if r.namespace == namespace {
                add(&mut by_namespace, r);
            }
        }
        (by_cost_center, by_namespace)
    }

    /// Drops expired holds and the holds of pods that arrived since the last settle: a hold
    /// with a name (or UID) is released by that pod; a nameless one by a new pod of its
    /// namespace holding the same units. Costs one pass over the holds plus a lookup per
    /// arrival: never a pass over what runs.
    pub fn settle(&mut self, arrivals: &ArrivalLog, now: UnixSeconds) {
        self.held.retain(|_, r| r.expires > now);
        for arrival in arrivals.since(self.settled) {
            let named = HoldKey::Named {
                namespace: arrival.namespace.clone(),
                name: arrival.name.clone(),
            };
            if self.held.remove(&named).is_some() {
                continue;
            }
            if self
                .held
                .remove(&HoldKey::Uid(arrival.uid.clone()))
                .is_some()
            {
                continue;
            }
            let held = &self.held;
            let same_units = self.nameless.get(&arrival.namespace).and_then(|keys| {
                keys.iter()
                    .find(|k| held.get(k).is_some_and(|r| r.units == arrival.units))
                    .cloned()
            });
            if let Some(key) = same_units {
                self.held.remove(&key);
            }
        }
        let held = &self.held;
        self.nameless.retain(|_, keys| {
            keys.retain(|k| held.contains_key(k));
            !keys.is_empty()
        });
        self.settled = arrivals.next();
    }
}
