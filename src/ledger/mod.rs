//! The ledger: what was held, by whom, when — remembered across pod deletions and restarts.
//!
//! A live cluster forgets: a deleted pod is gone from the API. The ledger turns each reconcile's
//! view of the cluster into segments (a pod's allocation, a node's capacity, with unchanged
//! attributes over an interval), closes them when pods finish, are deleted or change, and keeps
//! them durable in a data directory so that a restart, even `kill -9`, neither loses nor counts
//! twice a GPU-second. See `store` for the file format.

mod segment;
mod state;
mod store;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use segment::{Correction, SegmentAttrs, SegmentKey};
pub use state::{LedgerState, LedgerView, Reconciled, Record, Touched};
pub use store::{LedgerError, LedgerStore, read_ledger};

use crate::allocation::AllocationSet;
use crate::time::UnixSeconds;

/// Compact the log when it grows past this.
const COMPACT_AT_BYTES: u64 = 16 * 1024 * 1024;

/// The ledger state, with a store when it is durable.
#[derive(Debug, Default)]
pub struct Ledger {
    state: LedgerState,
    store: Option<LedgerStore>,
}

impl Ledger {
    /// A ledger that lives only in memory (snapshots and the demo).
    pub fn in_memory() -> Self {
        Ledger::default()
    }

    /// Opens the durable ledger in `dir`, replays it and compacts it. Returns notes about
    /// anything repaired on the way.
    pub fn open(dir: &Path) -> Result<(Ledger, Vec<String>), LedgerError> {
        let (mut store, state, notes) = LedgerStore::open(dir)?;
        store.compact(&state)?;
        Ok((
            Ledger {
                state,
                store: Some(store),
            },
            notes,
        ))
    }

    /// The durable ledger in `dir` as another process is writing it, held in memory only:
    /// what a follower replica serves from. Returns notes about anything skipped.
    pub fn read(dir: &Path) -> Result<(Ledger, Vec<String>), LedgerError> {
        let (state, notes) = read_ledger(dir)?;
        Ok((Ledger { state, store: None }, notes))
    }

    /// Counts nothing before the install's first heartbeat (the cut-over): for a source whose
    /// history before then comes from elsewhere (Prometheus, the demo's simulated past).
    pub fn cutting_over(mut self, on: bool) -> Self {
        self.state.cut_over(on);
        self
    }

    /// Whether the ledger counts nothing before its cut-over.
    pub fn cuts_over(&self) -> bool {
        self.state.cuts_over()
    }

    /// The install's cut-over: `at` on the ledger's first start (recorded), else the one
    /// recorded then.
    pub fn begin(&mut self, at: UnixSeconds) -> Result<UnixSeconds, LedgerError> {
        if let Some(began) = self.state.began() {
            return Ok(began);
        }
        let record = Record::Began { at };
        self.state.apply(&record);
        if let Some(store) = &mut self.store {
            store.append(std::slice::from_ref(&record))?;
        }
        Ok(at)
    }

    /// Records that every day before `until` is in the rollup store, forgets what lies before
    /// it, and compacts the files so they hold only what is kept.
    pub fn mark_rolled(&mut self, until: UnixSeconds) -> Result<(), LedgerError> {
        if self
            .state
            .rolled_until()
            .is_some_and(|rolled| rolled >= until)
        {
            return Ok(());
        }
        let record = Record::Rolled { until };
        self.state.apply(&record);
        if let Some(store) = &mut self.store {
            store.append(std::slice::from_ref(&record))?;
            store.compact(&self.state)?;
        }
        Ok(())
    }

    /// Stops writing: the files are closed and their lock let go of; the state stays, in
    /// memory only.
    pub fn let_go(&mut self) {
        self.store = None;
    }

    /// Whether reconciles are written to disk.
    pub fn is_durable(&self) -> bool {
        self.store.is_some()
    }

    /// Reconciles with `live` (read as of `now`; with `touched`, only those pods and nodes
    /// changed since the last reconcile) and makes the change durable. Returns notes
    /// about segments closed at the last heartbeat, and the corrections the store's rolled-up
    /// days need.
    pub fn reconcile(
        &mut self,
        now: UnixSeconds,
        live: &AllocationSet,
        touched: Option<&Touched>,
    ) -> Result<(Vec<String>, Vec<Correction>), LedgerError> {
        let Reconciled {
            records,
            notes,
            corrections,
        } = self.state.reconcile(now, live, touched);
        if let Some(store) = &mut self.store {
            store.append(&records)?;
            if store.log_bytes() > COMPACT_AT_BYTES {
                store.compact(&self.state)?;
            }
        }
        Ok((notes, corrections))
    }

    /// History plus what is open, up to `as_of`.
    pub fn view(&self, as_of: UnixSeconds) -> LedgerView {
        self.state.view(as_of)
    }

    /// The state, for inspection.
    pub fn state(&self) -> &LedgerState {
        &self.state
    }
}
