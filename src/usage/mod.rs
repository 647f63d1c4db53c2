//! GPU usage from DCGM: how busy the GPUs an allocation held were, hour by hour (SPEC §1.5).
//!
//! Prometheus answers per series (a GPU, a MIG instance, a time-sliced share); this module turns
//! series labels in any of the exporter's spellings into the allocation they belong to — a pod,
//! or a DRA claim — and averages the series of one allocation in one hour into a utilization
//! ratio. Raw samples are `f64`; they become exact `Decimal` ratios here, before any money.

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;
use rustc_hash::FxHashMap;

use crate::allocation::{Allocation, AllocationSet, Sym};
use crate::time::{Interval, UnixSeconds};

/// How busy an allocation's GPUs were, hour by hour: what the cost engine splits used from idle
/// with. Measured ([`UsageIndex`], from DCGM) or simulated (the demo fleet's workloads).
pub trait Utilization: Sync {
    /// The utilization ratio (0–1) of `key`'s GPUs in the hour starting at `hour`, if known.
    fn hourly(&self, key: &UsageKey, hour: UnixSeconds) -> Option<Decimal>;

    /// Each clock hour `during` touches whose utilization is known, in order, with it: what
    /// [`Utilization::hourly`] gives for each, with `key` looked up once for all of them.
    fn each_hour(
        &self,
        key: &UsageKey,
        during: Interval,
        each: &mut dyn FnMut(UnixSeconds, Decimal),
    );
}

/// The start of each clock hour `during` touches, in order.
pub fn hours_of(during: Interval) -> impl Iterator<Item = UnixSeconds> {
    let first = during.start.div_euclid(HOUR) * HOUR;
    (first..during.end).step_by(HOUR as usize)
}

const HOUR: i64 = 3_600;

impl UsageKey {
    /// The key of an allocation: its claim for DRA, else its pod.
    pub fn of(set: &AllocationSet, allocation: &Allocation) -> UsageKey {
        let namespace = set.names.resolve(allocation.namespace).to_string();
        if allocation.claim != Sym::EMPTY {
            UsageKey::Claim {
                namespace,
                claim: set.names.resolve(allocation.claim).to_string(),
            }
        } else {
            UsageKey::Pod {
                namespace,
                pod: set.names.resolve(allocation.pod).to_string(),
            }
        }
    }
}

/// What a DCGM series is about.
#[derive(Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum UsageKey {
    /// A pod's GPUs (device plugin, MIG, time-sliced).
    Pod {
        /// Namespace.
        namespace: String,
        /// Pod name.
        pod: String,
    },
    /// The devices of a DRA claim.
    Claim {
        /// Namespace of the claim.
        namespace: String,
        /// Claim name.
        claim: String,
    },
}

fn label<'a>(labels: &'a HashMap<String, String>, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|name| labels.get(*name))
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// The allocation a series belongs to. DRA labels win (the claim is what holds the device); then
/// `exported_pod`/`exported_namespace` (scraped without `honorLabels`, where `pod` names the
/// exporter), then `pod`/`namespace`, then the old `pod_name`/`pod_namespace`. `None` for a GPU
/// nobody holds.
pub fn series_key(labels: &HashMap<String, String>) -> Option<UsageKey> {
    if let (Some(claim), Some(namespace)) = (
        label(labels, &["dra_claim_name"]),
        label(labels, &["dra_claim_namespace"]),
    ) {
        return Some(UsageKey::Claim {
            namespace: namespace.to_string(),
            claim: claim.to_string(),
        });
    }
    for (pod, namespace) in [
        ("exported_pod", "exported_namespace"),
        ("pod", "namespace"),
        ("pod_name", "pod_namespace"),
    ] {
        if let (Some(pod), Some(namespace)) = (label(labels, &[pod]), label(labels, &[namespace])) {
            return Some(UsageKey::Pod {
                namespace: namespace.to_string(),
                pod: pod.to_string(),
            });
        }
    }
    None
}

/// Hourly utilization per allocation.
#[derive(Clone, Debug, Default)]
pub struct UsageIndex {
    hours: FxHashMap<UsageKey, BTreeMap<UnixSeconds, Decimal>>,
}

/// Sums of one (key, hour) while samples are being added.
#[derive(Default)]
struct Mean {
    sum: f64,
    count: u32,
}

/// Collects per-series hourly means into an index: several series of one allocation in one hour
/// (a pod's several GPUs, or GPUs with both metrics) are averaged.
#[derive(Default)]
pub struct UsageCollector {
    means: FxHashMap<(UsageKey, UnixSeconds), Mean>,
}

impl UsageCollector {
    /// Adds one series' mean utilization (a ratio 0–1) for the hour starting at `hour`.
    pub fn add(&mut self, key: UsageKey, hour: UnixSeconds, utilization: f64) {
        if !utilization.is_finite() {
            return;
        }
        let mean = self.means.entry((key, hour)).or_default();
        mean.sum += utilization.clamp(0.0, 1.0);
        mean.count += 1;
    }

    /// The index: each mean as an exact ratio with six decimals.
    pub fn finish(self) -> UsageIndex {
        let mut index = UsageIndex::default();
        for ((key, hour), mean) in self.means {
            let ratio = Decimal::from_f64_retain(mean.sum / f64::from(mean.count))
                .unwrap_or_default()
                .round_dp(6)
                .clamp(Decimal::ZERO, Decimal::ONE);
            index.hours.entry(key).or_default().insert(hour, ratio);
        }
        index
    }
}

impl Utilization for UsageIndex {
    fn hourly(&self, key: &UsageKey, hour: UnixSeconds) -> Option<Decimal> {
        self.hours.get(key)?.get(&hour).copied()
    }

    fn each_hour(
        &self,
        key: &UsageKey,
        during: Interval,
        each: &mut dyn FnMut(UnixSeconds, Decimal),
    ) {
        let (Some(hours), Some(first)) = (self.hours.get(key), hours_of(during).next()) else {
            return;
        };
        for (&hour, &ratio) in hours.range(first..during.end) {
            // Only hour starts are asked for, as `hourly` is.
            if hour.rem_euclid(HOUR) == 0 {
                each(hour, ratio);
            }
        }
    }
}

impl UsageIndex {
    /// Utilization per hour start of one allocation, if any series was seen for it.
    pub fn hours(&self, key: &UsageKey) -> Option<&BTreeMap<UnixSeconds, Decimal>> {
        self.hours.get(key)
    }

    /// True when no series matched anything.
    pub fn is_empty(&self) -> bool {
        self.hours.is_empty()
    }

    /// How many (allocation, hour) means there are.
    pub fn len(&self) -> usize {
        self.hours.values().map(BTreeMap::len).sum()
    }

    /// Adds another index's hours (a later chunk of the same window).
    pub fn merge(&mut self, other: UsageIndex) {
        for (key, hours) in other.hours {
            self.hours.entry(key).or_default().extend(hours);
        }
    }
}

/// Series labels from pairs, for tests.
#[cfg(test)]
pub(crate) fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn every_label_spelling_finds_its_allocation() {
        let pod = |ns: &str, p: &str| {
            Some(UsageKey::Pod {
                namespace: ns.into(),
                pod: p.into(),
            })
        };
        assert_eq!(
            series_key(&labels(&[
                ("pod", "a"),
                ("namespace", "n"),
                ("UUID", "GPU-1")
            ])),
            pod("n", "a")
        );
        assert_eq!(
            series_key(&labels(&[("pod_name", "a"), ("pod_namespace", "n")])),
            pod("n", "a")
        );
        // Scraped without honorLabels: pod/namespace name the exporter, exported_* the workload.
        assert_eq!(
            series_key(&labels(&[
                ("pod", "dcgm-exporter-x"),
                ("namespace", "gpu-operator"),
                ("exported_pod", "a"),
                ("exported_namespace", "n")
            ])),
            pod("n", "a")
        );
        assert_eq!(
            series_key(&labels(&[
                ("dra_claim_name", "c"),
                ("dra_claim_namespace", "n"),
                ("pod", "a"),
                ("namespace", "n")
            ])),
            Some(UsageKey::Claim {
                namespace: "n".into(),
                claim: "c".into()
            })
        );
        assert_eq!(series_key(&labels(&[("UUID", "GPU-1"), ("pod", "")])), None);
    }

    /// Pod `a` of namespace `n`.
    fn pod_a() -> UsageKey {
        UsageKey::Pod {
            namespace: "n".into(),
            pod: "a".into(),
        }
    }

    #[test]
    fn series_of_one_allocation_are_averaged_exactly() {
        let key = pod_a();
        let mut collector = UsageCollector::default();
        collector.add(key.clone(), 0, 0.5);
        collector.add(key.clone(), 0, 0.75);
        collector.add(key.clone(), 3600, 1.7);
        collector.add(key.clone(), 7200, f64::NAN);
        let index = collector.finish();
        let hours = index.hours(&key).unwrap();
        assert_eq!(hours[&0], Decimal::new(625, 3));
        assert_eq!(hours[&3600], Decimal::ONE, "clamped to 1");
        assert_eq!(hours.len(), 2);
    }

    #[test]
    fn an_allocation_s_hours_are_those_its_interval_touches() {
        let key = pod_a();
        let mut collector = UsageCollector::default();
        for (hour, ratio) in [(0, 0.25), (3600, 0.5), (7200, 0.75), (10800, 1.0)] {
            collector.add(key.clone(), hour, ratio);
        }
        let index = collector.finish();
        let hours = |start, end| {
            let mut seen = Vec::new();
            index.each_hour(&key, Interval::new(start, end), &mut |hour, ratio| {
                seen.push((hour, ratio));
            });
            seen
        };
        // 00:30–02:00:10 touches the hours starting at 0, 3600 and 7200, not 10800.
        assert_eq!(
            hours(1800, 7210),
            [
                (0, Decimal::new(25, 2)),
                (3600, Decimal::new(5, 1)),
                (7200, Decimal::new(75, 2))
            ]
        );
        // One second of the second hour.
        assert_eq!(hours(3600, 3601), [(3600, Decimal::new(5, 1))]);
        assert!(hours(14400, 20000).is_empty(), "no samples then");
        let other = UsageKey::Pod {
            namespace: "n".into(),
            pod: "b".into(),
        };
        let mut none = true;
        index.each_hour(&other, Interval::new(0, 7200), &mut |_, _| none = false);
        assert!(none, "an allocation without series has no hours");
    }
}
