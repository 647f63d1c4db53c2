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

pub use segment::{SegmentAttrs, SegmentKey};
pub use state::{LedgerState, LedgerView, Reconciled, Record};
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

    /// Whether reconciles are written to disk.
    pub fn is_durable(&self) -> bool {
        self.store.is_some()
    }

    /// Reconciles with `live` (read as of `now`) and makes the change durable. Returns notes
    /// about segments closed at the last heartbeat.
    pub fn reconcile(
        &mut self,
        now: UnixSeconds,
        live: &AllocationSet,
    ) -> Result<Vec<String>, LedgerError> {
        let Reconciled { records, notes } = self.state.reconcile(now, live);
        if let Some(store) = &mut self.store {
            store.append(&records)?;
            if store.log_bytes() > COMPACT_AT_BYTES {
                store.compact(&self.state)?;
            }
        }
        Ok(notes)
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
