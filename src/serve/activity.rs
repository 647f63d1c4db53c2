//! What the admission gate did lately, for the console: the last decisions (denials with their
//! message), checks per second over the last minute, and the p99 of deciding over the last
//! checks. Kept in memory, a few kilobytes, updated under a lock held for a push.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::console::RecentDecision;

/// Decisions kept for the console.
const RECENT: usize = 50;
/// Decision times kept for the p99.
const TIMINGS: usize = 2048;
/// Seconds the rate is counted over.
const WINDOW: usize = 60;

struct Book {
    recent: VecDeque<RecentDecision>,
    timings: VecDeque<Duration>,
    /// Checks per second, by `second % WINDOW`, with the second each slot counts.
    per_second: [(i64, u64); WINDOW],
}

impl Default for Book {
    fn default() -> Self {
        Book {
            recent: VecDeque::new(),
            timings: VecDeque::new(),
            per_second: [(0, 0); WINDOW],
        }
    }
}

/// The gate's recent activity.
#[derive(Default)]
pub struct Activity {
    book: Mutex<Book>,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Activity {
    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a check that took `took`.
    pub fn count(&self, took: Duration) {
        let second = now();
        let mut book = self.lock();
        let slot = &mut book.per_second[second.rem_euclid(WINDOW as i64) as usize];
        if slot.0 != second {
            *slot = (second, 0);
        }
        slot.1 += 1;
        if book.timings.len() == TIMINGS {
            book.timings.pop_front();
        }
        book.timings.push_back(took);
    }

    /// Keeps a decision for the console.
    pub fn remember(&self, decision: RecentDecision) {
        let mut book = self.lock();
        if book.recent.len() == RECENT {
            book.recent.pop_front();
        }
        book.recent.push_back(decision);
    }

    /// The last decisions, newest first.
    pub fn recent(&self) -> Vec<RecentDecision> {
        self.lock().recent.iter().rev().cloned().collect()
    }

    /// Checks per second over the last minute.
    pub fn per_second(&self) -> f64 {
        let second = now();
        let book = self.lock();
        let counted: u64 = book
            .per_second
            .iter()
            .filter(|(at, _)| second - at < WINDOW as i64)
            .map(|(_, n)| n)
            .sum();
        counted as f64 / WINDOW as f64
    }

    /// The 99th percentile of the last checks' decision times; `None` before any.
    pub fn p99(&self) -> Option<Duration> {
        let mut timings: Vec<Duration> = self.lock().timings.iter().copied().collect();
        if timings.is_empty() {
            return None;
        }
        timings.sort_unstable();
        let at = (timings.len() * 99).div_ceil(100).saturating_sub(1);
        Some(timings[at])
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn keeps_the_last_decisions_the_rate_and_the_p99() {
        let activity = Activity::default();
        assert_eq!(activity.p99(), None);
        for i in 0..100u64 {
            activity.count(Duration::from_micros(i + 1));
        }
        assert_eq!(activity.p99(), Some(Duration::from_micros(99)));
        assert!((activity.per_second() - 100.0 / 60.0).abs() < 1e-9);
        for i in 0..60 {
            activity.remember(RecentDecision {
                at: i,
                namespace: "a".into(),
                cost_center: "cc".into(),
                allowed: i % 2 == 0,
                message: format!("decision {i}"),
            });
        }
        let recent = activity.recent();
        assert_eq!(recent.len(), RECENT);
        assert_eq!(recent[0].message, "decision 59");
    }
}
