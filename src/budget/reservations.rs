//! Admitted pods not yet seen running: held against their budgets for a while, so that a burst
//! of checks cannot each see the same headroom and together over-admit.

use std::collections::BTreeSet;

use rust_decimal::Decimal;

use super::spend::Usage;
use crate::allocation::AllocationSet;
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

/// The open reservations and the pods already seen running.
#[derive(Clone, Debug, Default)]
pub struct Reservations {
    held: Vec<Reservation>,
    seen: BTreeSet<String>,
    settled_at: Option<UnixSeconds>,
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

    /// Drops expired holds and the holds of pods now running in `live` (read at `as_of`): a hold
    /// with a name is released by that pod; a nameless one (generated names) by the first new pod
    /// of its namespace holding the same units. Pods running at the first read are not new.
    /// Does nothing more if `as_of` was already settled.
    pub fn settle(&mut self, live: &AllocationSet, as_of: UnixSeconds, now: UnixSeconds) {
        self.held.retain(|r| r.expires > now);
        if self.settled_at == Some(as_of) {
            return;
        }
        // The first read only learns what already runs: none of it arrived for a hold.
        let first = self.settled_at.is_none();
        self.settled_at = Some(as_of);
        let mut running: Vec<(String, String, String, Decimal)> = Vec::new();
        for a in live.allocations.iter().filter(|a| a.interval.end >= as_of) {
            let uid = live.names.resolve(a.pod_uid).to_string();
            match running.iter_mut().find(|r| r.0 == uid) {
                Some(entry) => entry.3 += a.units.to_decimal(),
                None => running.push((
                    uid,
                    live.names.resolve(a.namespace).to_string(),
                    live.names.resolve(a.pod).to_string(),
                    a.units.to_decimal(),
                )),
            }
        }
        for (uid, namespace, name, units) in running {
            if !self.seen.insert(uid) || first {
                continue;
            }
            let named = self
                .held
                .iter()
                .position(|r| r.namespace == namespace && r.name.as_deref() == Some(name.as_str()));
            let matched = named.or_else(|| {
                self.held
                    .iter()
                    .position(|r| r.namespace == namespace && r.name.is_none() && r.units == units)
            });
            if let Some(i) = matched {
                self.held.remove(i);
            }
        }
        let current: BTreeSet<String> = live
            .allocations
            .iter()
            .filter(|a| a.interval.end >= as_of)
            .map(|a| live.names.resolve(a.pod_uid).to_string())
            .collect();
        self.seen.retain(|uid| current.contains(uid));
    }
}
