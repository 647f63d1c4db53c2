//! The ledger's state and its one way of changing: records.
//!
//! `reconcile` compares what the cluster holds now with the open segments and emits records
//! (open, close, closed, heartbeat); `apply` is the only function that changes the state, so
//! replaying the persisted records rebuilds exactly the state that wrote them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use super::segment::{Correction, SegmentAttrs, SegmentKey, all_segments, push_segment, segments};
use crate::allocation::AllocationSet;
use crate::time::{Interval, UnixSeconds, format_time};

/// One change to the ledger, as written to its log.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    /// A segment starts (it is still running).
    Open {
        /// What.
        key: SegmentKey,
        /// With which attributes.
        attrs: SegmentAttrs,
        /// Since when.
        start: UnixSeconds,
    },
    /// The open segment of `key` ends at `end` (with none open: `key` is known up to `end`).
    Close {
        /// What.
        key: SegmentKey,
        /// When it ended.
        end: UnixSeconds,
    },
    /// A segment first seen already finished.
    Closed {
        /// What.
        key: SegmentKey,
        /// With which attributes.
        attrs: SegmentAttrs,
        /// From.
        start: UnixSeconds,
        /// Until.
        end: UnixSeconds,
    },
    /// Everything open was seen still open at `at`.
    Heartbeat {
        /// When.
        at: UnixSeconds,
    },
    /// The install's cut-over: its first heartbeat. Where history covers what came before, the
    /// ledger counts nothing before it.
    Began {
        /// When.
        at: UnixSeconds,
    },
    /// Every day before `until` is in the rollup store: the ledger keeps nothing before it.
    Rolled {
        /// The first instant still kept.
        until: UnixSeconds,
    },
}

#[derive(Clone, Debug)]
struct OpenSegment {
    attrs: SegmentAttrs,
    start: UnixSeconds,
}

/// Closed history is kept in chunks; a chunk is frozen (shared, never copied) at this size.
const CHUNK: usize = 4096;

/// What a reconcile did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// The records to persist, already applied.
    pub records: Vec<Record>,
    /// Things worth a log line (segments closed at the last heartbeat).
    pub notes: Vec<String>,
    /// What the rolled-up days in the store must take in: facts about their time that became
    /// known only after they were rolled up (a pod that finished while Tollgate was down).
    pub corrections: Vec<Correction>,
}

/// Allocation sets that together are the ledger's history plus what is open, up to an as-of.
#[derive(Clone, Debug, Default)]
pub struct LedgerView {
    /// Frozen history chunks, then one set with the recent history and the open segments.
    pub sets: Vec<Arc<AllocationSet>>,
    /// Nothing before this is in `sets`: those days are in the rollup store.
    pub from: Option<UnixSeconds>,
}

impl LedgerView {
    /// The sets, as the cost engine takes them.
    pub fn as_refs(&self) -> Vec<&AllocationSet> {
        self.sets.iter().map(Arc::as_ref).collect()
    }
}

/// Open segments, closed history and the last heartbeat.
#[derive(Clone, Debug, Default)]
pub struct LedgerState {
    frozen: Vec<Arc<AllocationSet>>,
    recent: AllocationSet,
    open: BTreeMap<SegmentKey, OpenSegment>,
    /// For keys still visible: the end of their last closed segment. A new segment of the key
    /// never starts before it, so nothing is counted twice.
    covered: FxHashMap<SegmentKey, UnixSeconds>,
    heartbeat: Option<UnixSeconds>,
    began: Option<UnixSeconds>,
    rolled_until: Option<UnixSeconds>,
    /// The rolled-up day `covered` was last cleared of keys gone from the cluster.
    covered_cleared: Option<UnixSeconds>,
    cut_over: bool,
    /// Pods and nodes to look at again on the next reconcile even if unchanged: a segment that
    /// starts only at the reconcile that read it.
    waiting: Touched,
    /// The open segments as records, kept in step with `open` so that a view is a copy.
    open_records: OpenRecords,
}

/// The open segments as allocation and capacity records (running to the end of time), with
/// where each key's record is.
#[derive(Clone, Debug, Default)]
struct OpenRecords {
    set: AllocationSet,
    pods: Vec<SegmentKey>,
    nodes: Vec<SegmentKey>,
    at: FxHashMap<SegmentKey, usize>,
}

impl OpenRecords {
    fn insert(&mut self, key: &SegmentKey, attrs: &SegmentAttrs, start: UnixSeconds) {
        push_segment(
            &mut self.set,
            key,
            attrs,
            Interval::new(start, UnixSeconds::MAX),
        );
        let keys = match key {
            SegmentKey::Pod { .. } => &mut self.pods,
            SegmentKey::Node { .. } => &mut self.nodes,
        };
        self.at.insert(key.clone(), keys.len());
        keys.push(key.clone());
    }

    fn remove(&mut self, key: &SegmentKey) {
        let Some(index) = self.at.remove(key) else {
            return;
        };
        let keys = match key {
            SegmentKey::Pod { .. } => {
                self.set.allocations.swap_remove(index);
                &mut self.pods
            }
            SegmentKey::Node { .. } => {
                self.set.capacity.swap_remove(index);
                &mut self.nodes
            }
        };
        keys.swap_remove(index);
        if let Some(moved) = keys.get(index) {
            self.at.insert(moved.clone(), index);
        }
    }

    /// Starts afresh from `open` once names of closed segments outnumber the open ones.
    fn compact(&mut self, open: &BTreeMap<SegmentKey, OpenSegment>) {
        if self.set.names.len() <= 8 * open.len() + 4096 {
            return;
        }
        *self = OpenRecords::default();
        for (key, segment) in open {
            self.insert(key, &segment.attrs, segment.start);
        }
    }
}

/// The pods (by UID) and nodes (by name) whose segments may have changed since the last
/// reconcile: what an incremental read of the cluster knows it read again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Touched {
    /// Pod UIDs.
    pub pods: FxHashSet<String>,
    /// Node names.
    pub nodes: FxHashSet<String>,
}

impl Touched {
    /// Adds the owner of `key`.
    fn add(&mut self, key: &SegmentKey) {
        match key {
            SegmentKey::Pod { uid, .. } => self.pods.insert(uid.clone()),
            SegmentKey::Node { name, .. } => self.nodes.insert(name.clone()),
        };
    }

    /// Whether `key` belongs to one of these pods or nodes.
    pub fn owns(&self, key: &SegmentKey) -> bool {
        match key {
            SegmentKey::Pod { uid, .. } => self.pods.contains(uid),
            SegmentKey::Node { name, .. } => self.nodes.contains(name),
        }
    }
}

/// The segments of `live` that belong to `touched` (all without).
fn segments_of<'s>(
    live: &'s AllocationSet,
    touched: Option<&'s Touched>,
) -> impl Iterator<Item = (SegmentKey, SegmentAttrs, Interval)> + 's {
    let name = |sym| live.names.resolve(sym);
    let pods = live
        .allocations
        .iter()
        .filter(move |a| touched.is_none_or(|t| t.pods.contains(name(a.pod_uid))));
    let nodes = live
        .capacity
        .iter()
        .filter(move |c| touched.is_none_or(|t| t.nodes.contains(name(c.node))));
    segments(live, pods, nodes)
}

impl LedgerState {
    /// Counts nothing before the cut-over (the first heartbeat): history covers that time.
    pub fn cut_over(&mut self, on: bool) {
        self.cut_over = on;
    }

    /// Whether nothing before the cut-over is counted.
    pub fn cuts_over(&self) -> bool {
        self.cut_over
    }

    /// The first heartbeat of this install.
    pub fn began(&self) -> Option<UnixSeconds> {
        self.began
    }

    /// Days before this are in the rollup store and no longer kept here.
    pub fn rolled_until(&self) -> Option<UnixSeconds> {
        self.rolled_until
    }

    /// The last time everything open was seen open.
    pub fn heartbeat(&self) -> Option<UnixSeconds> {
        self.heartbeat
    }

    /// How many segments are open.
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// How many closed segments are kept.
    pub fn closed_count(&self) -> usize {
        self.frozen
            .iter()
            .map(|s| s.allocations.len() + s.capacity.len())
            .sum::<usize>()
            + self.recent.allocations.len()
            + self.recent.capacity.len()
    }

    /// Applies one record.
    pub fn apply(&mut self, record: &Record) {
        match record {
            Record::Open { key, attrs, start } => {
                let replaced = self.open.insert(
                    key.clone(),
                    OpenSegment {
                        attrs: attrs.clone(),
                        start: *start,
                    },
                );
                if replaced.is_some() {
                    self.open_records.remove(key);
                }
                self.open_records.insert(key, attrs, *start);
            }
            Record::Close { key, end } => match self.open.remove(key) {
                Some(open) => {
                    self.open_records.remove(key);
                    self.close(key, &open.attrs, Interval::new(open.start, *end));
                }
                None => {
                    let covered = self.covered.entry(key.clone()).or_insert(UnixSeconds::MIN);
                    *covered = (*covered).max(*end);
                }
            },
            Record::Closed {
                key,
                attrs,
                start,
                end,
            } => self.close(key, attrs, Interval::new(*start, *end)),
            Record::Heartbeat { at } => self.heartbeat = Some(*at),
            Record::Began { at } => {
                self.began.get_or_insert(*at);
            }
            Record::Rolled { until } => {
                if self.rolled_until.is_none_or(|rolled| *until > rolled) {
                    self.rolled_until = Some(*until);
                    self.prune(*until);
                }
            }
        }
    }

    /// Drops what lies before `until` from the closed history.
    fn prune(&mut self, until: UnixSeconds) {
        let mut kept = Vec::with_capacity(self.frozen.len());
        for chunk in self.frozen.drain(..) {
            let needed = |i: Interval| i.end > until;
            let whole = |i: Interval| i.start >= until;
            let intervals = || {
                chunk
                    .allocations
                    .iter()
                    .map(|a| a.interval)
                    .chain(chunk.capacity.iter().map(|c| c.interval))
            };
            if intervals().all(whole) {
                kept.push(chunk);
            } else if intervals().any(needed) {
                let mut rest = (*chunk).clone();
                rest.drop_before(until);
                kept.push(Arc::new(rest));
            }
        }
        self.frozen = kept;
        self.recent.drop_before(until);
    }

    fn close(&mut self, key: &SegmentKey, attrs: &SegmentAttrs, during: Interval) {
        let covered = self.covered.entry(key.clone()).or_insert(UnixSeconds::MIN);
        *covered = (*covered).max(during.end);
        let during = Interval::new(
            during
                .start
                .max(self.rolled_until.unwrap_or(UnixSeconds::MIN)),
            during.end,
        );
        if during.is_empty() {
            return;
        }
        push_segment(&mut self.recent, key, attrs, during);
        if self.recent.allocations.len() + self.recent.capacity.len() >= CHUNK {
            self.frozen.push(Arc::new(std::mem::take(&mut self.recent)));
        }
    }

    /// Brings the ledger in line with `live`, the allocations and capacity read from the
    /// cluster as of `now` (running things end at `now`; finished or deleted ones earlier).
    ///
    /// - a running segment not open yet opens at its start (never before what is already
    ///   covered); one whose attributes changed is closed at `now` and reopened;
    /// - a finished segment closes its open segment at its real end, or is recorded closed;
    /// - an open segment absent from `live` vanished unseen (deleted while no watch ran): it is
    ///   closed at the last heartbeat, the last time it was known to exist, and a note says so.
    ///
    /// With `touched`, only the segments of those pods and nodes are compared (the others are
    /// known unchanged since the last reconcile); without, every segment is.
    pub fn reconcile(
        &mut self,
        now: UnixSeconds,
        live: &AllocationSet,
        touched: Option<&Touched>,
    ) -> Reconciled {
        let mut out = Reconciled::default();
        let touched = touched.map(|t| {
            let mut all = t.clone();
            all.pods.extend(self.waiting.pods.drain());
            all.nodes.extend(self.waiting.nodes.drain());
            all
        });
        if self.began.is_none() {
            let began = Record::Began { at: now };
            self.apply(&began);
            out.records.push(began);
        }
        let cut_over = self
            .began
            .filter(|_| self.cut_over)
            .unwrap_or(UnixSeconds::MIN);
        let rolled = self.rolled_until.unwrap_or(UnixSeconds::MIN);
        let mut seen: BTreeSet<SegmentKey> = BTreeSet::new();
        for (key, attrs, during) in segments_of(live, touched.as_ref()) {
            let covered = self.covered.get(&key).copied().unwrap_or(UnixSeconds::MIN);
            let start = during.start.max(covered).max(cut_over);
            let running = running_at(during, now);
            let record = match (self.open.get(&key), running) {
                (Some(open), true) if open.attrs == attrs => None,
                (Some(_), true) => {
                    out.records.push(Record::Close {
                        key: key.clone(),
                        end: now,
                    });
                    Some(Record::Open {
                        key: key.clone(),
                        attrs,
                        start: now,
                    })
                }
                (None, true) if start < now => Some(Record::Open {
                    key: key.clone(),
                    attrs,
                    start,
                }),
                (Some(open), false) => Some(Record::Close {
                    key: key.clone(),
                    end: during.end.max(open.start),
                }),
                (None, false) if start < during.end => Some(Record::Closed {
                    key: key.clone(),
                    attrs,
                    start,
                    end: during.end,
                }),
                _ => None,
            };
            // Looked at again on the next reconcile: a segment that could not open yet.
            if running && record.is_none() && !self.open.contains_key(&key) {
                self.waiting.add(&key);
            }
            if let Some(record) = &record {
                out.corrections.extend(self.correction(record, rolled));
            }
            out.records.extend(record);
            seen.insert(key);
        }
        let last_known = self.heartbeat.unwrap_or(now).min(now);
        let vanished: Vec<SegmentKey> = self
            .keys_of(touched.as_ref(), self.open.keys())
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        for key in vanished {
            out.notes.push(format!(
                "{} vanished without a deletion being seen; closed at the last heartbeat {}",
                describe(&key, &self.open[&key].attrs),
                format_time(last_known)
            ));
            out.records.push(Record::Close {
                key,
                end: last_known,
            });
        }
        out.records.push(Record::Heartbeat { at: now });
        for record in &out.records {
            self.apply(record);
        }
        self.open_records.compact(&self.open);
        match &touched {
            None => self.covered.retain(|key, _| seen.contains(key)),
            Some(touched) => self
                .covered
                .retain(|key, _| seen.contains(key) || !touched.owns(key)),
        }
        if self.covered_cleared != self.rolled_until {
            self.clear_covered(live);
        }
        out
    }

    /// Forgets the coverage of keys whose pod or node is gone from `live` and whose last segment
    /// ended in a rolled-up day: nothing can extend them any more. Once per roll-up, so what the
    /// ledger remembers of closed keys follows what the cluster still shows, not every pod that
    /// ever ran (a reconcile that reads only what changed never sees the others go).
    fn clear_covered(&mut self, live: &AllocationSet) {
        let rolled = self.rolled_until.unwrap_or(UnixSeconds::MIN);
        let pods: FxHashSet<&str> = live
            .allocations
            .iter()
            .map(|a| live.names.resolve(a.pod_uid))
            .collect();
        let nodes: FxHashSet<&str> = live
            .capacity
            .iter()
            .map(|c| live.names.resolve(c.node))
            .collect();
        self.covered.retain(|key, end| {
            *end > rolled
                || match key {
                    SegmentKey::Pod { uid, .. } => pods.contains(uid.as_str()),
                    SegmentKey::Node { name, .. } => nodes.contains(name.as_str()),
                }
        });
        self.covered_cleared = self.rolled_until;
    }

    /// The keys among `keys` that belong to `touched` (all of them without).
    fn keys_of<'k>(
        &self,
        touched: Option<&'k Touched>,
        keys: impl Iterator<Item = &'k SegmentKey> + 'k,
    ) -> impl Iterator<Item = &'k SegmentKey> + 'k {
        keys.filter(move |key| touched.is_none_or(|t| t.owns(key)))
    }

    /// What `record` (about to be applied) changes in days rolled up before `rolled`.
    fn correction(&self, record: &Record, rolled: UnixSeconds) -> Option<Correction> {
        let (key, during, attrs) = match record {
            Record::Close { key, end } => {
                let open = self.open.get(key)?;
                (key, Interval::new((*end).max(open.start), rolled), None)
            }
            Record::Open { key, attrs, start } => (key, Interval::new(*start, rolled), Some(attrs)),
            Record::Closed {
                key,
                attrs,
                start,
                end,
            } => (key, Interval::new(*start, (*end).min(rolled)), Some(attrs)),
            Record::Heartbeat { .. } | Record::Began { .. } | Record::Rolled { .. } => {
                return None;
            }
        };
        if during.is_empty() {
            return None;
        }
        Some(match attrs {
            None => Correction::Cut {
                key: key.clone(),
                during,
            },
            Some(attrs) => Correction::Add {
                key: key.clone(),
                attrs: attrs.clone(),
                during,
            },
        })
    }

    /// The whole ledger as records (closed history, open segments, heartbeat): what a
    /// compacted log holds, made one at a time.
    pub fn records(&self) -> impl Iterator<Item = Record> + '_ {
        let marks = self
            .began
            .map(|at| Record::Began { at })
            .into_iter()
            .chain(self.rolled_until.map(|until| Record::Rolled { until }));
        let closed = self
            .frozen
            .iter()
            .map(Arc::as_ref)
            .chain(std::iter::once(&self.recent))
            .flat_map(all_segments)
            .map(|(key, attrs, during)| Record::Closed {
                key,
                attrs,
                start: during.start,
                end: during.end,
            });
        // Keys still visible keep their coverage even if their closed segment was empty.
        let covered = self.covered.iter().map(|(key, &end)| Record::Close {
            key: key.clone(),
            end,
        });
        let open = self.open.iter().map(|(key, open)| Record::Open {
            key: key.clone(),
            attrs: open.attrs.clone(),
            start: open.start,
        });
        marks
            .chain(closed)
            .chain(covered)
            .chain(open)
            .chain(self.heartbeat.map(|at| Record::Heartbeat { at }))
    }

    /// When the earliest recorded segment starts, if any.
    pub fn earliest(&self) -> Option<UnixSeconds> {
        let closed = self
            .frozen
            .iter()
            .map(Arc::as_ref)
            .chain(std::iter::once(&self.recent))
            .filter_map(AllocationSet::earliest_start);
        closed.chain(self.open.values().map(|o| o.start)).min()
    }

    /// History plus open segments running until `as_of`, ready to price.
    pub fn view(&self, as_of: UnixSeconds) -> LedgerView {
        let from = self.rolled_until.unwrap_or(UnixSeconds::MIN);
        let mut open = self.open_records.set.clone();
        let running = |interval: &mut Interval| {
            interval.start = interval.start.max(from);
            interval.end = as_of;
            !interval.is_empty()
        };
        open.allocations.retain_mut(|a| running(&mut a.interval));
        open.capacity.retain_mut(|c| running(&mut c.interval));
        let mut sets = self.frozen.clone();
        sets.push(Arc::new(self.recent.clone()));
        sets.push(Arc::new(open));
        LedgerView {
            sets,
            from: self.rolled_until,
        }
    }
}

/// A segment read at `now` runs on when it ends no earlier than `now`.
fn running_at(during: Interval, now: UnixSeconds) -> bool {
    during.end >= now
}

fn describe(key: &SegmentKey, attrs: &SegmentAttrs) -> String {
    match key {
        SegmentKey::Pod { kind, product, .. } => {
            format!(
                "{kind} allocation of pod {}/{} ({product})",
                attrs.namespace, attrs.pod
            )
        }
        SegmentKey::Node { name, product } => format!("capacity of node {name} ({product})"),
    }
}
