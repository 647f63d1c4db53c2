//! Ledger tests on a moving cluster: pods of the demo fleet, seen hour by hour, with finished
//! pods garbage-collected (deleted) a while after they finish, as a real cluster does.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use rust_decimal::Decimal;

use super::*;
use crate::allocation::{AllocationBuilder, BuildOptions, ClusterObjects};
use crate::cost::{ReportRequest, cost_report};
use crate::pricing::RateCard;
use crate::source::DemoFleet;
use crate::time::{Interval, Step, parse_time};

const HOUR: i64 = 3600;

/// Finished pods are deleted this long after they finish.
const GC_DELAY: i64 = 6 * HOUR;

struct Timeline {
    objects: ClusterObjects,
    card: RateCard,
    start: i64,
}

fn end_of(pod: &Pod) -> Option<i64> {
    crate::allocation::pod_interval(pod, i64::MAX, None)
        .ok()
        .map(|i| i.end)
        .filter(|&e| e != i64::MAX)
}

fn start_of(pod: &Pod) -> i64 {
    pod.status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map_or(i64::MIN, |t| t.0.as_second())
}

/// The pod as the API showed it at `t`: not yet there, running, or finished.
fn pod_at(pod: &Pod, t: i64) -> Option<Pod> {
    if start_of(pod) >= t {
        return None;
    }
    let mut pod = pod.clone();
    if end_of(&pod).is_some_and(|end| end > t) {
        let status = pod.status.as_mut()?;
        status.phase = Some("Running".into());
        status.container_statuses = None;
    }
    Some(pod)
}

impl Timeline {
    /// The demo fleet's H100, H200 (DRA) and L4 (time-sliced) nodes, over its last days.
    fn new() -> Self {
        let end = parse_time("2026-11-20T00:00:00Z").unwrap();
        let mut objects = DemoFleet::new(1, end).objects();
        let keep = |node: &str| {
            ["h100-od-000", "h100-od-001", "h200-dra-000", "l4-ts-001"].contains(&node)
        };
        objects
            .nodes
            .retain(|n| keep(n.metadata.name.as_deref().unwrap_or_default()));
        objects.pods.retain(|p| {
            p.spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_some_and(keep)
        });
        Timeline {
            objects,
            card: RateCard::builtin(),
            start: end - 4 * 24 * HOUR,
        }
    }

    /// What a watcher-fed source shows at `t`: live pods, plus pods whose deletion was seen
    /// since `seen_since` (none when no watch ran in between).
    fn live(&self, t: i64, seen_since: Option<i64>) -> AllocationSet {
        let mut visible = Vec::new();
        let mut deleted = Vec::new();
        for pod in &self.objects.pods {
            let Some(now) = pod_at(pod, t) else { continue };
            match end_of(pod).map(|e| e + GC_DELAY) {
                Some(gone) if gone <= t => {
                    if seen_since.is_some_and(|since| gone > since) {
                        deleted.push((pod.clone(), gone));
                    }
                }
                _ => visible.push(now),
            }
        }
        let mut builder = AllocationBuilder::new(
            &self.card,
            BuildOptions::new(t),
            self.objects.nodes.iter().map(|n| (n, None)),
            &self.objects.namespaces,
            &self.objects.slices,
        );
        builder.add_pods(
            visible
                .iter()
                .map(|p| (p, None))
                .chain(deleted.iter().map(|(p, at)| (p, Some(*at)))),
            &self.objects.claims,
        );
        builder.finish()
    }

    /// GPU-hours per pod over the timeline, from a ledger viewed at `as_of`.
    fn hours_by_pod(&self, ledger: &Ledger, as_of: i64) -> BTreeMap<String, Decimal> {
        let view = ledger.view(as_of);
        let request = ReportRequest {
            window: Interval::new(self.start, as_of),
            step: Step::Window,
            group_by: "namespace,pod".parse().unwrap(),
            share_unallocated: false,
            only: Default::default(),
        };
        cost_report(&view.as_refs(), &self.card, &request)
            .unwrap()
            .lines
            .into_iter()
            .map(|l| (l.group.join("/"), l.figures.gpu_hours))
            .collect()
    }
}

fn run(
    timeline: &Timeline,
    ledger: &mut Ledger,
    ticks: impl Iterator<Item = i64>,
    mut last: Option<i64>,
) -> Vec<String> {
    let mut notes = Vec::new();
    for t in ticks {
        notes.extend(
            ledger
                .reconcile(t, &timeline.live(t, last), None)
                .unwrap()
                .0,
        );
        last = Some(t);
    }
    notes
}

fn hourly(from: i64, to: i64) -> impl Iterator<Item = i64> {
    (from..=to).step_by(HOUR as usize)
}

#[test]
fn a_watched_cluster_is_remembered_after_pods_are_deleted() {
    let timeline = Timeline::new();
    let end = timeline.start + 72 * HOUR;
    let mut ledger = Ledger::in_memory();
    let notes = run(&timeline, &mut ledger, hourly(timeline.start, end), None);
    assert!(notes.is_empty(), "{notes:?}");
    let remembered = timeline.hours_by_pod(&ledger, end);
    // The truth: every pod's interval from the full objects, as if nothing were ever deleted.
    let truth_set =
        crate::allocation::allocations(&timeline.objects, &timeline.card, &BuildOptions::new(end));
    let request = ReportRequest {
        window: Interval::new(timeline.start, end),
        step: Step::Window,
        group_by: "namespace,pod".parse().unwrap(),
        share_unallocated: false,
        only: Default::default(),
    };
    let truth: BTreeMap<String, Decimal> = cost_report(&[&truth_set], &timeline.card, &request)
        .unwrap()
        .lines
        .into_iter()
        .map(|l| (l.group.join("/"), l.figures.gpu_hours))
        .collect();
    // Every pod, including the hundreds deleted along the way, to the second.
    assert!(remembered.len() > 150, "{}", remembered.len());
    assert_eq!(remembered, truth);
}

#[test]
fn restart_and_kill_9_lose_and_double_nothing() {
    let timeline = Timeline::new();
    let crash = timeline.start + 30 * HOUR;
    let back = crash + 4 * HOUR; // shorter than GC_DELAY: nothing is deleted unseen
    let end = timeline.start + 60 * HOUR;

    let mut steady = Ledger::in_memory();
    run(&timeline, &mut steady, hourly(timeline.start, end), None);
    let expected = timeline.hours_by_pod(&steady, end);

    for torn in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (mut ledger, notes) = Ledger::open(dir.path()).unwrap();
        assert!(notes.is_empty());
        run(&timeline, &mut ledger, hourly(timeline.start, crash), None);
        let before = timeline.hours_by_pod(&ledger, crash);
        // Killed: nothing flushed or compacted beyond what each reconcile already fsynced.
        drop(ledger);
        if torn {
            let log = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.extension().is_some_and(|e| e == "log"))
                .unwrap();
            let mut text = std::fs::read(&log).unwrap();
            text.extend_from_slice(b"1234abcd {\"record\":\"heartb");
            std::fs::write(&log, text).unwrap();
        }
        let (mut ledger, notes) = Ledger::open(dir.path()).unwrap();
        assert_eq!(
            notes
                .iter()
                .any(|n| n.contains("dropped a torn last record")),
            torn,
            "{notes:?}"
        );
        assert_eq!(
            timeline.hours_by_pod(&ledger, crash),
            before,
            "replay rebuilds the state"
        );
        // While down, pods finished (still visible, with finishedAt) and new pods started.
        let notes = run(&timeline, &mut ledger, hourly(back, end), None);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(
            timeline.hours_by_pod(&ledger, end),
            expected,
            "torn: {torn}"
        );
    }
}

#[test]
fn what_vanished_while_down_closes_at_the_last_heartbeat_and_says_so() {
    let timeline = Timeline::new();
    let crash = timeline.start + 30 * HOUR;
    let back = crash + 20 * HOUR; // longer than GC_DELAY: some pods finish and are deleted unseen
    let dir = tempfile::tempdir().unwrap();
    let (mut ledger, _) = Ledger::open(dir.path()).unwrap();
    run(&timeline, &mut ledger, hourly(timeline.start, crash), None);
    assert_eq!(ledger.state().heartbeat(), Some(crash));
    drop(ledger);
    let (mut ledger, _) = Ledger::open(dir.path()).unwrap();
    let notes = ledger
        .reconcile(back, &timeline.live(back, None), None)
        .unwrap()
        .0;
    assert!(!notes.is_empty());
    assert!(
        notes.iter().all(|n| n.ends_with(&format!(
            "closed at the last heartbeat {}",
            crate::time::format_time(crash)
        ))),
        "{notes:?}"
    );
    // Each vanished segment ends exactly at the heartbeat: no hour after it is charged.
    let view = ledger.view(back);
    let ended_at_crash = view
        .sets
        .iter()
        .flat_map(|s| &s.allocations)
        .filter(|a| a.interval.end == crash)
        .count();
    assert!(
        ended_at_crash >= notes.len() - view.sets.iter().map(|s| s.capacity.len()).sum::<usize>()
    );
}

#[test]
fn a_node_relabelled_spot_splits_its_pods_at_the_change() {
    let timeline = Timeline::new();
    let t0 = timeline.start;
    let t1 = t0 + 2 * HOUR;
    let mut ledger = Ledger::in_memory();
    ledger
        .reconcile(t0, &timeline.live(t0, None), None)
        .unwrap();
    ledger
        .reconcile(t1 - 1, &timeline.live(t1 - 1, Some(t0)), None)
        .unwrap();
    let mut relabelled = Timeline::new();
    for node in &mut relabelled.objects.nodes {
        let labels = node.metadata.labels.get_or_insert_default();
        labels.insert("karpenter.sh/capacity-type".into(), "spot".into());
    }
    ledger
        .reconcile(t1, &relabelled.live(t1, Some(t1 - 1)), None)
        .unwrap();
    let view = ledger.view(t1 + HOUR);
    // The H100 nodes were on demand before (l4-ts-001 was spot all along).
    let running_at = |t: i64, tier| {
        view.sets
            .iter()
            .flat_map(|s| s.allocations.iter().map(move |a| (s, a)))
            .filter(|(s, a)| s.names.resolve(a.node).starts_with("h100"))
            .filter(|(_, a)| a.tier == tier && a.interval.start <= t && t < a.interval.end)
            .count()
    };
    assert!(running_at(t1 - 1, crate::pricing::PriceTier::OnDemand) > 0);
    assert_eq!(running_at(t1 - 1, crate::pricing::PriceTier::Spot), 0);
    assert_eq!(running_at(t1 + 1, crate::pricing::PriceTier::OnDemand), 0);
    assert!(running_at(t1 + 1, crate::pricing::PriceTier::Spot) > 0);
    // Capacity splits too.
    let capacity_tiers: std::collections::BTreeSet<_> = view
        .sets
        .iter()
        .flat_map(|s| &s.capacity)
        .map(|c| (c.tier, c.interval.end > t1))
        .collect();
    assert_eq!(capacity_tiers.len(), 2, "{capacity_tiers:?}");
}

#[test]
fn records_round_trip_through_the_log_format() {
    let timeline = Timeline::new();
    let mut state = LedgerState::default();
    let t = timeline.start + 10 * HOUR;
    let reconciled = state.reconcile(t, &timeline.live(t, None), None);
    assert!(reconciled.records.len() > 10);
    let mut replayed = LedgerState::default();
    for record in state.records() {
        let json = serde_json::to_string(&record).unwrap();
        replayed.apply(&serde_json::from_str(&json).unwrap());
    }
    assert!(replayed.records().eq(state.records()));
    assert_eq!(replayed.open_count(), state.open_count());
}

#[test]
fn a_follower_reads_what_the_writer_recorded_and_never_writes() {
    let timeline = Timeline::new();
    let end = timeline.start + 48 * HOUR;
    let dir = tempfile::tempdir().unwrap();
    // Nothing written yet: an empty ledger, and no directory made.
    let missing = dir.path().join("not-yet");
    let (empty, _) = Ledger::read(&missing).unwrap();
    assert!(empty.state().earliest().is_none() && !missing.exists());

    let (mut writer, _) = Ledger::open(dir.path()).unwrap();
    let mut steps = hourly(timeline.start, end).peekable();
    let files = || {
        let mut names: Vec<(String, u64)> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| {
                let len = e.metadata().unwrap().len();
                (e.file_name().to_string_lossy().into_owned(), len)
            })
            .collect();
        names.sort();
        names
    };
    while let Some(t) = steps.next() {
        writer.reconcile(t, &timeline.live(t, None), None).unwrap();
        if t % (12 * HOUR) == 0 || steps.peek().is_none() {
            let before = files();
            let (follower, _) = Ledger::read(dir.path()).unwrap();
            assert!(!follower.is_durable());
            assert_eq!(files(), before, "reading writes nothing");
            assert_eq!(
                timeline.hours_by_pod(&follower, t),
                timeline.hours_by_pod(&writer, t),
                "at {t}"
            );
        }
    }
    // A follower reconciling in memory leaves the files alone too.
    let before = files();
    let (mut follower, _) = Ledger::read(dir.path()).unwrap();
    follower
        .reconcile(end + HOUR, &timeline.live(end + HOUR, None), None)
        .unwrap();
    assert_eq!(files(), before);
}

/// A live set of whole-GPU pods `(uid, start, end)` on one node with one H100.
fn pods_on_one_node(pods: &[(&str, i64, i64)]) -> AllocationSet {
    use crate::allocation::{Allocation, AllocationKind, CostCenterSource, NodeCapacity, Sym};
    use crate::pricing::PriceTier;
    use crate::units::GpuUnits;
    let mut set = AllocationSet::default();
    for &(uid, start, end) in pods {
        let allocation = Allocation {
            namespace: set.names.intern("ns"),
            pod: set.names.intern(uid),
            pod_uid: set.names.intern(uid),
            resource_id: set.names.intern(uid),
            claim: Sym::EMPTY,
            node: set.names.intern("n1"),
            product: set.names.intern("NVIDIA-H100-80GB-HBM3"),
            kind: AllocationKind::Gpu,
            units: GpuUnits::ONE,
            interval: Interval::new(start, end),
            tier: PriceTier::OnDemand,
            price_override: None,
            cost_center: set.names.intern("cc"),
            cost_center_source: CostCenterSource::NamespaceLabel,
        };
        set.allocations.push(allocation);
    }
    let capacity = NodeCapacity {
        node: set.names.intern("n1"),
        product: set.names.intern("NVIDIA-H100-80GB-HBM3"),
        units: GpuUnits::ONE,
        interval: Interval::new(0, i64::MAX),
        tier: PriceTier::OnDemand,
        price_override: None,
    };
    set.capacity.push(capacity);
    set
}

/// The keys whose coverage the ledger remembers (its compacted `close` records).
fn covered_pods(ledger: &Ledger) -> Vec<String> {
    ledger
        .state()
        .records()
        .filter_map(|record| match record {
            Record::Close {
                key: SegmentKey::Pod { uid, .. },
                ..
            } => Some(uid),
            _ => None,
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[test]
fn finished_pods_gone_from_the_cluster_are_forgotten_once_their_day_is_rolled_up() {
    let day = 86_400;
    let touched = |uids: &[&str]| Touched {
        pods: uids.iter().map(|u| u.to_string()).collect(),
        nodes: Default::default(),
    };
    let mut ledger = Ledger::in_memory();
    // Day 0: pods a and b run; a finishes at 10:00 and is deleted; b finishes at 11:00 and stays
    // visible (a Job's pod), as does c, still running.
    let all = [("a", 0, day), ("b", 0, day), ("c", 0, 2 * day)];
    ledger
        .reconcile(HOUR, &pods_on_one_node(&all), None)
        .unwrap();
    let finished = [("a", 0, 10 * HOUR), ("b", 0, 11 * HOUR), ("c", 0, 2 * day)];
    ledger
        .reconcile(
            12 * HOUR,
            &pods_on_one_node(&finished),
            Some(&touched(&["a", "b"])),
        )
        .unwrap();
    let visible = [("b", 0, 11 * HOUR), ("c", 0, 2 * day)];
    ledger
        .reconcile(13 * HOUR, &pods_on_one_node(&visible), Some(&touched(&[])))
        .unwrap();
    // Incremental reads never see a go again: its coverage stays until its day is rolled up.
    assert_eq!(covered_pods(&ledger), ["a", "b"]);
    ledger.mark_rolled(day).unwrap();
    ledger
        .reconcile(day + HOUR, &pods_on_one_node(&visible), Some(&touched(&[])))
        .unwrap();
    assert_eq!(covered_pods(&ledger), ["b"]);
    // b, still visible, is read again in full (a relist) and is not counted again.
    let records = ledger
        .reconcile(day + 2 * HOUR, &pods_on_one_node(&visible), None)
        .unwrap();
    assert!(records.1.is_empty(), "{:?}", records.1);
    let view = ledger.view(day + 2 * HOUR);
    let closed_in_rolled_day = view
        .sets
        .iter()
        .flat_map(|s| &s.allocations)
        .filter(|a| a.interval.end <= day)
        .count();
    assert_eq!(
        closed_in_rolled_day, 0,
        "the rolled day is in the store, not in memory"
    );
}

/// Hours per pod UID (and `node` for the capacity) of `set`.
fn hours_by_key(set: &AllocationSet) -> BTreeMap<String, i64> {
    let mut hours = BTreeMap::new();
    for a in &set.allocations {
        *hours
            .entry(set.names.resolve(a.pod_uid).to_string())
            .or_default() += a.interval.seconds() / HOUR;
    }
    for c in &set.capacity {
        *hours.entry("node".to_string()).or_default() += c.interval.seconds() / HOUR;
    }
    hours
}

#[test]
fn a_ledger_that_learns_its_segments_again_does_not_count_a_stored_day_twice() {
    let day = 86_400;
    // What the cluster shows on day 1: pod a runs since day 0 00:00, pod b ran 02:00–10:00.
    let live = [("a", 0, 2 * day), ("b", 2 * HOUR, 10 * HOUR)];
    // The stored day 0, archived when it was rolled up: a 24 h, b 8 h, the node 24 h.
    let mut archived = pods_on_one_node(&[("a", 0, day), ("b", 2 * HOUR, 10 * HOUR)]);
    archived.capacity[0].interval = Interval::new(0, day);
    let expected = BTreeMap::from([("a".into(), 24), ("b".into(), 8), ("node".into(), 24)]);
    assert_eq!(hours_by_key(&archived), expected);

    // A ledger that lost what it had recorded, its day 0 being rolled up: every segment is
    // new to it, and each comes with a correction adding it to the stored day.
    let mut ledger = Ledger::in_memory();
    ledger.mark_rolled(day).unwrap();
    let (_, corrections) = ledger
        .reconcile(day + HOUR, &pods_on_one_node(&live), None)
        .unwrap();
    assert_eq!(corrections.len(), 3, "{corrections:?}");
    let mut corrected = archived.clone();
    for correction in &corrections {
        correction.apply(&mut corrected, Interval::new(0, day));
    }
    assert_eq!(hours_by_key(&corrected), expected, "nothing counted twice");

    // An archive that knew a only until 12:00 gets the 12 hours after, and only those.
    let mut short = pods_on_one_node(&[("a", 0, 12 * HOUR), ("b", 2 * HOUR, 10 * HOUR)]);
    short.capacity[0].interval = Interval::new(0, day);
    for correction in &corrections {
        correction.apply(&mut short, Interval::new(0, day));
    }
    assert_eq!(hours_by_key(&short), expected);
    let a_from: Vec<i64> = short
        .allocations
        .iter()
        .filter(|a| short.names.resolve(a.pod_uid) == "a")
        .map(|a| a.interval.start / HOUR)
        .collect();
    assert_eq!(a_from, [0, 12], "12:00–24:00 added beside 00:00–12:00");
}

#[test]
fn only_one_process_at_a_time_opens_the_ledger_for_writing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _) = Ledger::open(dir.path()).unwrap();
    writer
        .reconcile(HOUR, &pods_on_one_node(&[("a", 0, 2 * HOUR)]), None)
        .unwrap();
    // A second writer (another replica that thinks it leads) is refused, and says why.
    let refused = Ledger::open(dir.path()).unwrap_err();
    assert!(matches!(refused, LedgerError::Held { .. }), "{refused}");
    assert!(
        refused
            .to_string()
            .ends_with("ledger.lock: another process has this ledger open for writing; only one may write it at a time"),
        "{refused}"
    );
    // Readers are not held back, and see what the writer recorded.
    let (reader, _) = Ledger::read(dir.path()).unwrap();
    assert_eq!(reader.state().open_count(), 2, "pod a and the node");
    // Once the writer lets go (drops it, or dies), the next one opens it with everything.
    drop(writer);
    let (next, _) = Ledger::open(dir.path()).unwrap();
    assert_eq!(next.state().open_count(), 2);
    assert_eq!(next.state().heartbeat(), Some(HOUR));
}
