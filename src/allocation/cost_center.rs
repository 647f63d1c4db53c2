//! Who pays for a pod: pod annotation → pod label → namespace annotation → namespace label →
//! `unassigned`, remembering which one answered (SPEC §1.3).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{CostCenterSource, UNASSIGNED};

fn value<'a>(map: Option<&'a BTreeMap<String, String>>, key: &str) -> Option<&'a str> {
    map?.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// The cost center of a pod and where it came from. Empty values are treated as absent.
pub(crate) fn cost_center<'a>(
    pod: &'a ObjectMeta,
    namespace: Option<&'a ObjectMeta>,
    key: &str,
) -> (&'a str, CostCenterSource) {
    let chain = [
        (
            value(pod.annotations.as_ref(), key),
            CostCenterSource::PodAnnotation,
        ),
        (value(pod.labels.as_ref(), key), CostCenterSource::PodLabel),
        (
            namespace.and_then(|ns| value(ns.annotations.as_ref(), key)),
            CostCenterSource::NamespaceAnnotation,
        ),
        (
            namespace.and_then(|ns| value(ns.labels.as_ref(), key)),
            CostCenterSource::NamespaceLabel,
        ),
    ];
    chain
        .into_iter()
        .find_map(|(found, source)| found.map(|v| (v, source)))
        .unwrap_or((UNASSIGNED, CostCenterSource::Default))
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

    #[test]
    fn first_found_wins_and_says_where() {
        let ns = meta(&[("cost-center", "ns-ann")], &[("cost-center", "ns-lbl")]);
        let pod = meta(&[("cost-center", "pod-ann")], &[("cost-center", "pod-lbl")]);
        assert_eq!(
            cost_center(&pod, Some(&ns), "cost-center"),
            ("pod-ann", CostCenterSource::PodAnnotation)
        );
        let pod = meta(&[("cost-center", " ")], &[("cost-center", "pod-lbl")]);
        assert_eq!(
            cost_center(&pod, Some(&ns), "cost-center"),
            ("pod-lbl", CostCenterSource::PodLabel)
        );
        let pod = meta(&[], &[]);
        assert_eq!(
            cost_center(&pod, Some(&ns), "cost-center"),
            ("ns-ann", CostCenterSource::NamespaceAnnotation)
        );
        let ns = meta(&[], &[("cost-center", "ns-lbl")]);
        assert_eq!(
            cost_center(&pod, Some(&ns), "cost-center"),
            ("ns-lbl", CostCenterSource::NamespaceLabel)
        );
        assert_eq!(
            cost_center(&pod, None, "cost-center"),
            ("unassigned", CostCenterSource::Default)
        );
        assert_eq!(
            cost_center(&pod, Some(&ns), "team"),
            ("unassigned", CostCenterSource::Default)
        );
    }
}
