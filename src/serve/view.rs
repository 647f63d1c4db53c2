//! What the HTTP handlers read: an immutable picture of the ledger and the live holdings,
//! replaced after every reconcile, so that no request ever waits on the cluster.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::allocation::AllocationSet;
use crate::budget::{ArrivalLog, SpendIndex};
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
    /// True once the source was read completely and reconciled.
    pub ready: bool,
    /// Made from the ledger this replica writes (always, without an election): what rollups
    /// are made from, so that only the replica holding the ledger writes the store.
    pub writer: bool,
    /// For a watched cluster: whether the last API read worked.
    pub kubernetes_up: Option<bool>,
    /// Month-to-date spend, burn and units per cost center and namespace.
    pub spend: Arc<SpendIndex>,
    /// Namespaces' metadata, for the cost center of a pod not created yet.
    pub namespaces: Arc<BTreeMap<String, ObjectMeta>>,
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
            ready: false,
            writer: false,
            kubernetes_up: None,
            spend: Arc::default(),
            namespaces: Arc::default(),
            arrivals: Arc::default(),
            reconciled_in: std::time::Duration::ZERO,
            segments: (0, 0),
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
