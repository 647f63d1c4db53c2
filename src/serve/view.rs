//! What the HTTP handlers read: an immutable picture of the ledger and the live holdings,
//! replaced after every reconcile, so that no request ever waits on the cluster.

use std::sync::Arc;

use tokio::sync::watch;

use super::feed::Feed;
use crate::allocation::{AllocationSet, BuildOptions};
use crate::ledger::{Ledger, LedgerView};
use crate::pricing::RateCard;
use crate::time::UnixSeconds;

/// The state as of one reconcile.
#[derive(Clone, Debug, Default)]
pub struct View {
    /// The reconcile's "now".
    pub as_of: UnixSeconds,
    /// History and open segments, up to `as_of`.
    pub ledger: LedgerView,
    /// What the cluster holds and offers at `as_of` (running allocations end at `as_of`).
    pub live: Arc<AllocationSet>,
    /// True once the source was read completely and reconciled.
    pub ready: bool,
    /// For a watched cluster: whether the last API read worked.
    pub kubernetes_up: Option<bool>,
}

/// Reads the feed into the ledger and publishes views.
pub struct Reconciler {
    feed: Feed,
    ledger: Ledger,
    card: Arc<RateCard>,
    cost_center_key: String,
    views: watch::Sender<Arc<View>>,
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
        }
    }

    /// One reconcile: read, record, publish.
    ///
    /// The ledger is only reconciled from a complete and current picture: before every kind
    /// has been listed, or while the API server cannot be read, the objects in memory would make
    /// running pods look vanished or keep deleted ones alive. Then the view is published without
    /// touching the ledger, whose heartbeat stays at the last good read.
    pub fn step(&mut self) {
        let as_of = self.feed.now();
        let options = BuildOptions {
            as_of,
            cost_center_key: self.cost_center_key.clone(),
        };
        let (live, synced) = self.feed.read(&self.card, options);
        let kubernetes_up = self.feed.kubernetes_up();
        let current = synced && kubernetes_up != Some(false);
        if current {
            match self.ledger.reconcile(as_of, &live) {
                Ok(notes) => {
                    for note in notes {
                        tracing::warn!("{note}");
                    }
                }
                Err(e) => tracing::error!(
                    error = %e,
                    "the ledger could not be written; what changed since the last write would be lost on a crash"
                ),
            }
        }
        let view = View {
            as_of,
            ledger: self.ledger.view(as_of),
            live: Arc::new(live),
            ready: synced,
            kubernetes_up,
        };
        self.views.send_replace(Arc::new(view));
    }
}
