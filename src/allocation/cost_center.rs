//! Who pays for a pod: pod annotation → pod label → namespace annotation → namespace label →
//! `unassigned`, remembering which one answered (SPEC §1.3).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{CostCenterSource, UNALLOCATED, UNASSIGNED};

/// The sources of a pod's cost center that a value can come from, in the order they are asked.
const CHAIN: [CostCenterSource; 4] = [
    CostCenterSource::PodAnnotation,
    CostCenterSource::PodLabel,
    CostCenterSource::NamespaceAnnotation,
    CostCenterSource::NamespaceLabel,
];

/// A pod's cost center, where it came from, and a value passed over on the way because it
/// names the capacity no pod holds (`__unallocated__`), which no pod can be charged under.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Chosen<'a> {
    pub(crate) name: &'a str,
    pub(crate) source: CostCenterSource,
    passed_over: Option<CostCenterSource>,
}

impl Chosen<'_> {
    /// What to warn about pod `pod` (`namespace/name`), whose cost center is under `key`.
    pub(crate) fn warning(&self, pod: &str, key: &str) -> Option<String> {
        self.passed_over.map(|source| {
            format!(
                "pod {pod}: {key}={UNALLOCATED} ({}) names the capacity no pod holds, not a cost \
                 center; it is charged to {} ({})",
                source.as_str(),
                self.name,
                self.source.as_str()
            )
        })
    }
}

/// The first value of `values` (in [`CHAIN`]'s order) that names a cost center: trimmed, an
/// empty one is absent, and [`UNALLOCATED`] is passed over; none is [`UNASSIGNED`].
pub(crate) fn first_cost_center(values: [Option<&str>; 4]) -> Chosen<'_> {
    let mut passed_over = None;
    for (value, source) in values.into_iter().zip(CHAIN) {
        let Some(name) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            continue;
        };
        if name == UNALLOCATED {
            passed_over.get_or_insert(source);
            continue;
        }
        return Chosen {
            name,
            source,
            passed_over,
        };
    }
    Chosen {
        name: UNASSIGNED,
        source: CostCenterSource::Default,
        passed_over,
    }
}

/// The cost center of a pod from its and its namespace's annotations and labels under `key`.
pub(crate) fn cost_center<'a>(
    pod: &'a ObjectMeta,
    namespace: Option<&'a ObjectMeta>,
    key: &str,
) -> Chosen<'a> {
    let value = |map: Option<&'a BTreeMap<String, String>>| map?.get(key).map(String::as_str);
    first_cost_center([
        value(pod.annotations.as_ref()),
        value(pod.labels.as_ref()),
        namespace.and_then(|ns| value(ns.annotations.as_ref())),
        namespace.and_then(|ns| value(ns.labels.as_ref())),
    ])
}

#[cfg(test)]
mod test {
    use super::*;

    fn meta(annotations: &[(&str, &str)], labels: &[(&str, &str)]) -> ObjectMeta {
        let map = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        ObjectMeta {
            annotations: map(annotations),
            labels: map(labels),
            ..Default::default()
        }
    }

    fn chosen<'a>(
        pod: &'a ObjectMeta,
        namespace: Option<&'a ObjectMeta>,
        key: &str,
    ) -> (&'a str, CostCenterSource) {
        let chosen = cost_center(pod, namespace, key);
        assert_eq!(chosen.warning("ns/p", key), None);
        (chosen.name, chosen.source)
    }

    #[test]
    fn first_found_wins_and_says_where() {
        let ns = meta(&[("cost-center", "ns-ann")], &[("cost-center", "ns-lbl")]);
        let pod = meta(&[("cost-center", "pod-ann")], &[("cost-center", "pod-lbl")]);
        assert_eq!(
            chosen(&pod, Some(&ns), "cost-center"),
            ("pod-ann", CostCenterSource::PodAnnotation)
        );
        let pod = meta(&[("cost-center", " ")], &[("cost-center", "pod-lbl")]);
        assert_eq!(
            chosen(&pod, Some(&ns), "cost-center"),
            ("pod-lbl", CostCenterSource::PodLabel)
        );
        let pod = meta(&[], &[]);
        assert_eq!(
            chosen(&pod, Some(&ns), "cost-center"),
            ("ns-ann", CostCenterSource::NamespaceAnnotation)
        );
        let ns = meta(&[], &[("cost-center", "ns-lbl")]);
        assert_eq!(
            chosen(&pod, Some(&ns), "cost-center"),
            ("ns-lbl", CostCenterSource::NamespaceLabel)
        );
        assert_eq!(
            chosen(&pod, None, "cost-center"),
            ("unassigned", CostCenterSource::Default)
        );
        assert_eq!(
            chosen(&pod, Some(&ns), "team"),
            ("unassigned", CostCenterSource::Default)
        );
    }

    #[test]
    fn the_name_of_capacity_no_pod_holds_is_no_cost_center_of_a_pod() {
        // A pod annotated __unallocated__ was charged as capacity nobody held: its FOCUS rows
        // had no namespace and its spend was no cost center's.
        let ns = meta(&[], &[("cost-center", "ns-lbl")]);
        let pod = meta(&[("cost-center", " __unallocated__ ")], &[]);
        let chosen = cost_center(&pod, Some(&ns), "cost-center");
        assert_eq!(
            (chosen.name, chosen.source),
            ("ns-lbl", CostCenterSource::NamespaceLabel)
        );
        assert_eq!(
            chosen.warning("team-a/p", "cost-center").as_deref(),
            Some(
                "pod team-a/p: cost-center=__unallocated__ (pod-annotation) names the capacity no \
                 pod holds, not a cost center; it is charged to ns-lbl (namespace-label)"
            )
        );
        let ns = meta(&[], &[("cost-center", "__unallocated__")]);
        let chosen = cost_center(&pod, Some(&ns), "cost-center");
        assert_eq!(
            (chosen.name, chosen.source),
            ("unassigned", CostCenterSource::Default)
        );
        assert!(chosen.warning("team-a/p", "cost-center").is_some());
    }
}
