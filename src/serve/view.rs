//! What the HTTP handlers read: an immutable picture of the ledger and the live holdings,
//! replaced after every reconcile, so that no request ever waits on the cluster.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::allocation::{AllocationSet, ClaimAsks, PlacementNodes};
use crate::budget::{ArrivalLog, Placements, SpendIndex};
use crate::ledger::LedgerView;
use crate::time::UnixSeconds;

/// The state as of one reconcile.
#[derive(Clone, Debug)]
pub struct View {
    /// The reconcile's "now".
    pub as_of: UnixSeconds,
    /// When (real time) this view was made.
    pub read_at: Instant,
    /// When (real time) the source was last read completely and currently; `None`: never.
    pub current_at: Option<Instant>,
    /// History and open segments, up to `as_of`.
    pub ledger: LedgerView,
    /// What the cluster holds and offers at `as_of` (running allocations end at `as_of`).
    pub live: Arc<AllocationSet>,
    /// Whether this replica serves yet, or what it waits for.
    pub readiness: Readiness,
    /// Made from the ledger this replica writes (always, without an election): what rollups
    /// are made from, so that only the replica holding the ledger writes the store.
    pub writer: bool,
    /// For a watched cluster: whether the last API read worked.
    pub kubernetes_up: Option<bool>,
    /// Month-to-date spend, burn and units per cost center and namespace.
    pub spend: Arc<SpendIndex>,
    /// Namespaces' metadata, for the cost center of a pod not created yet.
    pub namespaces: Arc<BTreeMap<String, ObjectMeta>>,
    /// What the DRA claims and claim templates ask for, for pods not created yet.
    pub claim_asks: Arc<ClaimAsks>,
    /// The nodes' labels and taints, for where a pod not created yet may run.
    pub nodes: Arc<PlacementNodes>,
    /// Where pods not created yet may run, as worked out for this view's checks.
    pub placements: Arc<Placements>,
    /// Pods that showed up lately: what releases admission holds.
    pub arrivals: Arc<ArrivalLog>,
    /// How long the reconcile that made this view took.
    pub reconciled_in: std::time::Duration,
    /// Ledger segments kept in memory: open, and closed since the last rolled-up day.
    pub segments: (usize, usize),
}

impl Default for View {
    fn default() -> Self {
        View {
            as_of: 0,
            read_at: Instant::now(),
            current_at: None,
            ledger: LedgerView::default(),
            live: Arc::default(),
            readiness: Readiness::Listing,
            writer: false,
            kubernetes_up: None,
            spend: Arc::default(),
            namespaces: Arc::default(),
            claim_asks: Arc::default(),
            nodes: Arc::default(),
            placements: Arc::default(),
            arrivals: Arc::default(),
            reconciled_in: std::time::Duration::ZERO,
            segments: (0, 0),
        }
    }
}

/// Whether a replica serves yet (`/readyz`), and if not, what it waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// The source has not been read completely and reconciled yet.
    Listing,
    /// The leader is rolling the history before its ledger began up into the store: until it
    /// is done, reports and budgets would leave those days out.
    Backfilling,
    /// Read, reconciled, and no backfill running.
    Ready,
}

impl Readiness {
    /// Ready once `synced` (read completely and reconciled) and not `backfilling`.
    pub fn of(synced: bool, backfilling: bool) -> Self {
        match (synced, backfilling) {
            (false, _) => Readiness::Listing,
            (true, true) => Readiness::Backfilling,
            (true, false) => Readiness::Ready,
        }
    }

    /// Whether it serves: read, reconciled, and no backfill running.
    pub fn is_ready(self) -> bool {
        self == Readiness::Ready
    }

    /// What a replica that is not ready waits for, as `/readyz` says it.
    pub fn waiting_for(self) -> Option<&'static str> {
        match self {
            Readiness::Listing => Some("waiting for the first complete list of every watched kind"),
            Readiness::Backfilling => Some(
                "rolling the history before the ledger began up into the store \
                 (the log says how many days are done)",
            ),
            Readiness::Ready => None,
        }
    }
}

impl View {
    /// Seconds since the source was last read completely, if it ever was.
    pub fn age(&self) -> Option<std::time::Duration> {
        self.current_at.map(|at| at.elapsed())
    }

    /// "Now" in the feed's time: the view's as-of plus the real time since it was made.
    pub fn now(&self) -> UnixSeconds {
        self.as_of + self.read_at.elapsed().as_secs() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::Readiness;

    #[test]
    fn a_replica_is_ready_once_synced_and_not_backfilling() {
        let of = |synced, backfilling| Readiness::of(synced, backfilling);
        assert_eq!(of(false, false), Readiness::Listing);
        assert_eq!(of(false, true), Readiness::Listing);
        assert_eq!(of(true, true), Readiness::Backfilling);
        assert_eq!(of(true, false), Readiness::Ready);
        assert!(of(true, false).is_ready() && !of(true, true).is_ready());
    }
}
