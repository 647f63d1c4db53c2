//! A replica among several: it writes the ledger only while it leads (see
//! [`crate::live::Leadership`]); otherwise it reads what the leader wrote, every so often, and
//! reconciles what it watches into that copy in memory — enough to serve chargebacks, metrics
//! and quota checks without writing a byte.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::ledger::{Ledger, LedgerError};
use crate::live::Leadership;

/// How a replica keeps its ledger in step with the leader's.
#[derive(Clone, Debug)]
pub struct Following {
    dir: PathBuf,
    leadership: Leadership,
    every: Duration,
    read_at: Option<Instant>,
}

impl Following {
    /// Follows the ledger in `dir`, read again every `every` while not leading.
    pub fn new(dir: PathBuf, leadership: Leadership, every: Duration) -> Self {
        Following {
            dir,
            leadership,
            every,
            read_at: None,
        }
    }

    /// Before a reconcile: takes the ledger over on becoming leader, lets go of it on losing
    /// the lead, and otherwise reads the leader's when due. True when `ledger` was replaced.
    pub fn sync(&mut self, ledger: &mut Ledger) -> bool {
        let leading = self.leadership.is_leader();
        if leading && !ledger.is_durable() {
            match Ledger::open(&self.dir) {
                Ok((opened, notes)) => {
                    notes.iter().for_each(|note| tracing::warn!("{note}"));
                    *ledger = opened.cutting_over(ledger.cuts_over());
                    return true;
                }
                // The replica that led before has not let go yet: it will, at its next reconcile.
                Err(e @ LedgerError::Held { .. }) => {
                    tracing::warn!(error = %e, "leading, waiting for the previous writer to let go of the ledger")
                }
                Err(e) => {
                    tracing::error!(error = %e, "leading, but the ledger could not be opened for writing")
                }
            }
            return false;
        }
        let due = self.read_at.is_none_or(|at| at.elapsed() >= self.every);
        if !leading && (ledger.is_durable() || due) {
            match Ledger::read(&self.dir) {
                Ok((read, notes)) => {
                    // A torn last line is the leader mid-write, not damage.
                    notes.iter().for_each(|note| tracing::debug!("{note}"));
                    *ledger = read.cutting_over(ledger.cuts_over());
                    self.read_at = Some(Instant::now());
                    return true;
                }
                Err(e) => tracing::warn!(error = %e, "the leader's ledger could not be read"),
            }
        }
        false
    }
}
