//! Where a pod not scheduled yet may run: the nodes its `nodeName`, `nodeSelector` and required
//! node affinity admit, read as the scheduler reads them (the quota check prices a pod pinned
//! to a node pool as the GPUs in that pool).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeSelectorRequirement, NodeSelectorTerm, PodSpec};

/// Nodes' labels, by node name.
pub type LabelsByNode = BTreeMap<String, BTreeMap<String, String>>;

/// The labels of `nodes`, by name.
pub fn node_labels(nodes: impl IntoIterator<Item = Node>) -> LabelsByNode {
    nodes
        .into_iter()
        .filter_map(|node| {
            Some((
                node.metadata.name?,
                node.metadata.labels.unwrap_or_default(),
            ))
        })
        .collect()
}

/// What `spec` says of where it runs (a node name, a node selector, required node affinity),
/// as one text that pods saying the same share; `None` when it says nothing.
pub fn placement_key(spec: &PodSpec) -> Option<String> {
    let named = spec.node_name.as_deref().filter(|n| !n.is_empty());
    let selector = spec.node_selector.as_ref().filter(|s| !s.is_empty());
    let terms = required_terms(spec);
    if named.is_none() && selector.is_none() && terms.is_empty() {
        return None;
    }
    serde_json::to_string(&(named, selector, terms)).ok()
}

/// Whether a pod of `spec` may run on the node `name` labelled `labels`: its node name is that
/// node's (when it has one), every pair of its node selector is among the labels, and one of its
/// required node affinity's terms matches (a term matches when all its expressions and fields
/// do; a term with neither matches no node).
pub fn admits(spec: &PodSpec, name: &str, labels: &BTreeMap<String, String>) -> bool {
    let named = spec
        .node_name
        .as_deref()
        .filter(|n| !n.is_empty())
        .is_none_or(|n| n == name);
    let selected = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(key, value)| labels.get(key) == Some(value));
    let terms = required_terms(spec);
    named && selected && (terms.is_empty() || terms.iter().any(|t| term_matches(t, name, labels)))
}

/// The terms of `spec`'s required node affinity (alternatives).
pub(crate) fn required_terms(spec: &PodSpec) -> &[NodeSelectorTerm] {
    spec.affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .map(|r| r.node_selector_terms.as_slice())
        .unwrap_or_default()
}

fn term_matches(term: &NodeSelectorTerm, name: &str, labels: &BTreeMap<String, String>) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    expressions
        .iter()
        .all(|e| requirement_matches(e, labels.get(&e.key).map(String::as_str)))
        && fields.iter().all(|f| {
            // `metadata.name` is the one field node affinity selects on.
            f.key == "metadata.name" && requirement_matches(f, Some(name))
        })
}

/// One requirement on a value (`None`: the node has no such label).
fn requirement_matches(requirement: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = requirement.values.as_deref().unwrap_or_default();
    let listed = || value.is_some_and(|v| values.iter().any(|listed| listed == v));
    let compared = |ordering: std::cmp::Ordering| {
        let number = |text: &str| text.trim().parse::<i64>().ok();
        match (value.and_then(number), values) {
            (Some(value), [bound]) => number(bound).is_some_and(|b| value.cmp(&b) == ordering),
            _ => false,
        }
    };
    match requirement.operator.as_str() {
        "In" => listed(),
        "NotIn" => !listed(),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" => compared(std::cmp::Ordering::Greater),
        "Lt" => compared(std::cmp::Ordering::Less),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocation::node::test::labels;

    fn spec(json: serde_json::Value) -> PodSpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn node_name_selector_and_required_affinity_are_read_as_the_scheduler_reads_them() {
        let pool = labels(&[
            ("cloud.google.com/gke-nodepool", "l4-pool"),
            ("gpu-count", "4"),
        ]);
        let other = labels(&[("cloud.google.com/gke-nodepool", "h100-pool")]);
        let selector = spec(serde_json::json!({
            "containers": [],
            "nodeSelector": {"cloud.google.com/gke-nodepool": "l4-pool"}
        }));
        assert!(placement_key(&selector).is_some());
        assert!(admits(&selector, "a", &pool));
        assert!(!admits(&selector, "b", &other));
        let named = spec(serde_json::json!({"containers": [], "nodeName": "b"}));
        assert!(placement_key(&named).is_some());
        assert!(!admits(&named, "a", &pool));
        assert!(admits(&named, "b", &other));
        // Terms are alternatives; a term's expressions all hold.
        let affinity = spec(serde_json::json!({
            "containers": [],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [
                        {"key": "cloud.google.com/gke-nodepool", "operator": "NotIn", "values": ["h100-pool"]},
                        {"key": "gpu-count", "operator": "Gt", "values": ["2"]}
                    ]},
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["c"]}]}
                ]
            }}}
        }));
        assert!(placement_key(&affinity).is_some());
        assert!(admits(&affinity, "a", &pool));
        assert!(!admits(&affinity, "b", &other));
        assert!(admits(&affinity, "c", &other));
        let under = labels(&[("gpu-count", "2")]);
        assert!(!admits(&affinity, "d", &under), "2 is not greater than 2");
        // Exists and DoesNotExist; an empty term matches nothing.
        let exists = spec(serde_json::json!({
            "containers": [],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "gpu-count", "operator": "Exists"},
                                          {"key": "spot", "operator": "DoesNotExist"}]},
                    {}
                ]
            }}}
        }));
        assert!(admits(&exists, "a", &pool));
        assert!(!admits(&exists, "b", &other));
        // Nothing said: every node, and no constraint.
        let free = spec(serde_json::json!({"containers": []}));
        assert_eq!(placement_key(&free), None);
        assert!(admits(&free, "b", &other));
    }
}
