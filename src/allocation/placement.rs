//! Where a pod not scheduled yet may run: the nodes its `nodeName`, `nodeSelector` and required
//! node affinity admit, whose taints it tolerates and that offer the GPU devices it asks for,
//! read as the scheduler reads them (the quota check prices a pod pinned to a node pool as the
//! GPUs in that pool).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    Node, NodeSelectorRequirement, NodeSelectorTerm, PodSpec, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use rust_decimal::Decimal;

use super::is_gpu_resource;
use crate::quantity::parse_quantity;

/// What the scheduler reads of a node to tell whether a pod may run there.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlacementNode {
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// The taints that keep pods not tolerating them off the node for good (`NoSchedule`,
    /// `NoExecute`), those of passing conditions left out ([`lasting`]).
    pub taints: Vec<Taint>,
    /// The GPU device resources it offers (`nvidia.com/gpu`, `nvidia.com/mig-1g.10gb`,
    /// `amd.com/gpu`: a capacity above zero): a pod asking for one it does not offer does not
    /// fit there.
    pub devices: BTreeSet<String>,
}

/// Nodes as placement reads them, by node name.
pub type PlacementNodes = BTreeMap<String, PlacementNode>;

impl PlacementNode {
    /// What placement reads of `node`.
    pub fn of(node: Node) -> Self {
        let taints = node.spec.and_then(|s| s.taints).unwrap_or_default();
        let capacity = node.status.and_then(|s| s.capacity).unwrap_or_default();
        let offered =
            |amount: &Quantity| parse_quantity(&amount.0).is_ok_and(|n| n > Decimal::ZERO);
        PlacementNode {
            labels: node.metadata.labels.unwrap_or_default(),
            taints: taints.into_iter().filter(lasting).collect(),
            devices: capacity
                .into_iter()
                .filter(|(resource, amount)| is_gpu_resource(resource) && offered(amount))
                .map(|(resource, _)| resource)
                .collect(),
        }
    }
}

/// `nodes` as placement reads them, by name.
pub fn placement_nodes(nodes: impl IntoIterator<Item = Node>) -> PlacementNodes {
    nodes
        .into_iter()
        .filter_map(|node| Some((node.metadata.name.clone()?, PlacementNode::of(node))))
        .collect()
}

/// Whether `taint` keeps pods not tolerating it off its node for as long as the node is what it
/// is. `PreferNoSchedule` only steers; the taints Kubernetes, cloud providers and autoscalers
/// put on a node for a passing condition (not ready, unreachable, cordoned, under pressure, not
/// initialized, being drained or removed) clear or go with the node, and a pod waiting for them
/// lands there or on a node like it: they count as tolerated, so a pod is never priced below a
/// node it may yet run on.
fn lasting(taint: &Taint) -> bool {
    const PASSING: [&str; 3] = [
        "node.kubernetes.io/",
        "node.cloudprovider.kubernetes.io/",
        "karpenter.sh/",
    ];
    const AUTOSCALER: [&str; 2] = [
        "ToBeDeletedByClusterAutoscaler",
        "DeletionCandidateOfClusterAutoscaler",
    ];
    matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute")
        && !PASSING.iter().any(|prefix| taint.key.starts_with(prefix))
        && !AUTOSCALER.contains(&taint.key.as_str())
}

/// Labels every Linux node of a cluster has alike, whatever GPU it holds or pool it is in: a pod
/// selecting them (as many charts do, `kubernetes.io/os: linux`) says nothing of which GPU.
const EVERY_NODE_S: [&str; 4] = [
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
];

/// What `spec` says of where it runs (a node name, a node selector, required node affinity,
/// with the tolerations that narrow them), as one text that pods saying the same share; `None`
/// when it says nothing of which nodes: neither a node name, nor a selector pair or every
/// affinity term on a label other than those every node has alike ([`EVERY_NODE_S`]; a term
/// only on those admits every node, and terms are alternatives). Tolerations alone say nothing
/// either: they let a pod onto nodes, they do not choose among them.
pub fn placement_key(spec: &PodSpec) -> Option<String> {
    let named = spec.node_name.as_deref().filter(|n| !n.is_empty());
    let selector = spec.node_selector.as_ref().filter(|s| !s.is_empty());
    let terms = required_terms(spec);
    let chooses = |key: &str| !EVERY_NODE_S.contains(&key);
    let selects = selector.is_some_and(|s| s.keys().any(|key| chooses(key)));
    let affine = !terms.is_empty()
        && terms.iter().all(|term| {
            let expressions = term.match_expressions.iter().flatten();
            // `metadata.name` is the one field a term may have.
            term.match_fields.as_ref().is_some_and(|f| !f.is_empty())
                || expressions.map(|e| e.key.as_str()).any(chooses)
        });
    if named.is_none() && !selects && !affine {
        return None;
    }
    serde_json::to_string(&(named, selector, terms, &spec.tolerations)).ok()
}

/// Whether a pod of `spec` may run on the node `name`: its node name is that node's (when it
/// has one), every pair of its node selector is among the node's labels, one of its required
/// node affinity's terms matches (a term matches when all its expressions and fields do; a term
/// with neither matches no node), and it tolerates every lasting taint of the node that would
/// keep it off (`NoExecute`; `NoSchedule` too, unless it names its node, which the scheduler
/// does not place and the kubelet starts whatever the node's `NoSchedule` taints).
pub fn admits(spec: &PodSpec, name: &str, node: &PlacementNode) -> bool {
    let labels = &node.labels;
    let pinned = spec.node_name.as_deref().filter(|n| !n.is_empty());
    let named = pinned.is_none_or(|n| n == name);
    let selected = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(key, value)| labels.get(key) == Some(value));
    let terms = required_terms(spec);
    let tolerations = spec.tolerations.as_deref().unwrap_or_default();
    let tolerated = node
        .taints
        .iter()
        .filter(|taint| pinned.is_none() || taint.effect == "NoExecute")
        .all(|taint| tolerations.iter().any(|t| tolerates(t, taint)));
    named
        && selected
        && tolerated
        && (terms.is_empty() || terms.iter().any(|t| term_matches(t, name, labels)))
}

/// Whether `toleration` tolerates `taint`, as Kubernetes matches them: the same effect (any,
/// where it names none), the same key (any, where it names none and says `Exists`), and the
/// same value where it says `Equal` (or nothing). An operator Kubernetes may add later counts as
/// tolerating, so that the node stays among those the pod is priced from.
fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let differs = |field: &Option<String>, of: &str| {
        field.as_deref().is_some_and(|f| !f.is_empty() && f != of)
    };
    if differs(&toleration.effect, &taint.effect) || differs(&toleration.key, &taint.key) {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or_default() {
        "" | "Equal" => {
            toleration.value.as_deref().unwrap_or_default()
                == taint.value.as_deref().unwrap_or_default()
        }
        _ => true,
    }
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

    fn untainted(pairs: &[(&str, &str)]) -> PlacementNode {
        PlacementNode {
            labels: labels(pairs),
            ..PlacementNode::default()
        }
    }

    #[test]
    fn node_name_selector_and_required_affinity_are_read_as_the_scheduler_reads_them() {
        let pool = untainted(&[
            ("cloud.google.com/gke-nodepool", "l4-pool"),
            ("gpu-count", "4"),
        ]);
        let other = untainted(&[("cloud.google.com/gke-nodepool", "h100-pool")]);
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
        let under = untainted(&[("gpu-count", "2")]);
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
        // Labels every node has alike say nothing of which; with another, they are read.
        let term = |keys: &[&str]| {
            let expressions: Vec<_> = keys
                .iter()
                .map(|k| serde_json::json!({"key": k, "operator": "Exists"}))
                .collect();
            serde_json::json!({"matchExpressions": expressions})
        };
        let said = |json: serde_json::Value| placement_key(&spec(json)).is_some();
        let affinity = |terms: Vec<serde_json::Value>| {
            serde_json::json!({"containers": [], "affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}})
        };
        let linux = serde_json::json!({"kubernetes.io/os": "linux"});
        assert!(!said(
            serde_json::json!({"containers": [], "nodeSelector": linux})
        ));
        assert!(said(serde_json::json!({"containers": [], "nodeSelector":
            {"kubernetes.io/os": "linux", "pool": "gpu"}})));
        assert!(!said(affinity(vec![term(&["kubernetes.io/arch"])])));
        assert!(said(affinity(vec![term(&["kubernetes.io/arch", "pool"])])));
        // Terms are alternatives: one only on such labels admits every node.
        assert!(!said(affinity(vec![
            term(&["pool"]),
            term(&["beta.kubernetes.io/os"])
        ])));
    }

    #[test]
    fn a_node_whose_lasting_taints_a_pod_does_not_tolerate_is_not_where_it_may_run() {
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "h200", "labels": {"pool": "gpu"}},
            "spec": {"taints": [
                {"key": "dedicated", "value": "training", "effect": "NoSchedule"},
                {"key": "nvidia.com/gpu", "value": "present", "effect": "NoExecute"},
                {"key": "spread", "effect": "PreferNoSchedule"},
                {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                {"key": "karpenter.sh/disrupted", "effect": "NoSchedule"},
                {"key": "ToBeDeletedByClusterAutoscaler", "value": "1", "effect": "NoSchedule"}
            ]}
        }))
        .unwrap();
        let nodes = placement_nodes([node]);
        let node = &nodes["h200"];
        // Only the two lasting taints are kept: a preference and passing conditions are not.
        let kept: Vec<&str> = node.taints.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(kept, ["dedicated", "nvidia.com/gpu"]);
        let pod = |placement: serde_json::Value, tolerations: serde_json::Value| {
            let mut json = serde_json::json!({"containers": [], "tolerations": tolerations});
            json.as_object_mut()
                .unwrap()
                .extend(placement.as_object().unwrap().clone());
            spec(json)
        };
        let pool = serde_json::json!({"nodeSelector": {"pool": "gpu"}});
        let gpu = serde_json::json!({"key": "nvidia.com/gpu", "operator": "Exists"});
        let training = serde_json::json!({"key": "dedicated", "operator": "Equal",
                                          "value": "training", "effect": "NoSchedule"});
        // (placement, tolerations, admitted)
        let cases = [
            (pool.clone(), serde_json::json!([]), false),
            (pool.clone(), serde_json::json!([gpu]), false),
            (pool.clone(), serde_json::json!([training]), false),
            (pool.clone(), serde_json::json!([gpu, training]), true),
            // The value compared where the operator is `Equal` or left out.
            (
                pool.clone(),
                serde_json::json!([gpu, {"key": "dedicated", "value": "inference"}]),
                false,
            ),
            (
                pool.clone(),
                serde_json::json!([gpu, {"key": "dedicated", "value": "training"}]),
                true,
            ),
            // Another effect does not tolerate it; `Exists` with no key tolerates every taint.
            (
                pool.clone(),
                serde_json::json!([gpu, {"key": "dedicated", "operator": "Exists",
                                         "effect": "NoExecute"}]),
                false,
            ),
            (
                pool.clone(),
                serde_json::json!([{"operator": "Exists"}]),
                true,
            ),
            // An operator not known counts as tolerating (the pod is priced from the node).
            (
                pool.clone(),
                serde_json::json!([gpu, {"key": "dedicated", "operator": "Gt", "value": "1"}]),
                true,
            ),
            // A pod naming its node is started there whatever its `NoSchedule` taints; a
            // `NoExecute` one it does not tolerate still puts it out.
            (
                serde_json::json!({"nodeName": "h200"}),
                serde_json::json!([gpu]),
                true,
            ),
            (
                serde_json::json!({"nodeName": "h200"}),
                serde_json::json!([]),
                false,
            ),
        ];
        for (placement, tolerations, admitted) in cases {
            let pod = pod(placement.clone(), tolerations.clone());
            assert_eq!(
                admits(&pod, "h200", node),
                admitted,
                "{placement} {tolerations}"
            );
        }
        // Tolerations are part of what a pod says of where it runs, but do not say it alone.
        let tolerating = pod(pool.clone(), serde_json::json!([gpu]));
        assert_ne!(
            placement_key(&tolerating),
            placement_key(&pod(pool, serde_json::json!([])))
        );
        assert_eq!(
            placement_key(&pod(serde_json::json!({}), serde_json::json!([gpu]))),
            None
        );
    }

    #[test]
    fn a_node_offers_the_gpu_devices_it_has_a_capacity_of() {
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n"},
            "status": {"capacity": {
                "cpu": "64",
                "nvidia.com/gpu": "8",
                "nvidia.com/mig-1g.10gb": "0",
                "amd.com/gpu": "2",
                "example.com/nic": "1",
                "nvidia.com/gpu.shared": "bad"
            }}
        }))
        .unwrap();
        let offered: Vec<String> = PlacementNode::of(node).devices.into_iter().collect();
        assert_eq!(offered, ["amd.com/gpu", "nvidia.com/gpu"]);
    }
}
