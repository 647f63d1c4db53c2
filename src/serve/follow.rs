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
        // Lost the lead: stop writing first, whether or not the leader's ledger reads.
        let let_go = !leading && ledger.is_durable();
        if let_go {
            ledger.let_go();
        }
        let due = self.read_at.is_none_or(|at| at.elapsed() >= self.every);
        if !leading && (let_go || due) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocation::AllocationSet;

    #[test]
    fn a_replica_that_loses_the_lead_lets_go_of_the_ledger_even_if_it_cannot_read_it() {
        let dir = tempfile::tempdir().unwrap();
        let (leadership, campaign) = Leadership::contested();
        let mut following = Following::new(dir.path().into(), leadership, Duration::ZERO);
        let mut ledger = Ledger::in_memory();
        campaign.lead_until(Some(Instant::now() + Duration::from_secs(3600)));
        assert!(
            following.sync(&mut ledger) && ledger.is_durable(),
            "leading, it writes"
        );
        ledger
            .reconcile(60, &AllocationSet::default(), None)
            .unwrap();
        // The files go bad (a damaged line before the last): reading them fails from now on.
        let snapshot = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "snapshot"))
            .unwrap();
        std::fs::write(&snapshot, "00000000 {}\n00000000 {}\n").unwrap();
        assert!(Ledger::read(dir.path()).is_err());

        campaign.lead_until(None);
        assert!(!following.sync(&mut ledger), "nothing read");
        assert!(!ledger.is_durable(), "no longer written");
        // The lock is free: another replica opening it meets the damage, not this one.
        let next = Ledger::open(dir.path()).unwrap_err();
        assert!(matches!(next, LedgerError::Corrupt { .. }), "{next}");
    }
}
