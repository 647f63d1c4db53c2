//! Allocations rebuilt from kube-state-metrics and DCGM for time Tollgate did not watch.
//!
//! A pod held its GPUs while `kube_pod_container_resource_requests` (GPU resources) existed for
//! it and `kube_pod_status_phase{phase="Running"}` was 1; `kube_pod_info` gives its node;
//! `kube_pod_annotations` / `kube_pod_labels` / `kube_namespace_*` its cost center;
//! `kube_node_labels` the node's model, tier, sharing and GPU count. DRA claims, which
//! kube-state-metrics cannot show, come from DCGM series carrying `dra_*` labels. Samples every
//! `history_step_seconds` become intervals `[first sample, last sample + step)`: each end is
//! off by less than one step.

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;

use super::{Prometheus, PrometheusError};
use crate::allocation::{
    Allocation, AllocationKind, AllocationSet, CostCenterSource, NodeCapacity, Sym, UNASSIGNED,
    capacity_tier,
};
use crate::pricing::RateCard;
use crate::time::{Interval, UnixSeconds};
use crate::units::GpuUnits;

/// kube-state-metrics label names for the node labels Tollgate reads (sanitized: every
/// non-alphanumeric becomes `_`; camelCase keys appear in both spellings across versions).
pub const HISTORY_LABELS: [(&str, &str); 9] = [
    ("label_nvidia_com_gpu_product", "nvidia.com/gpu.product"),
    ("label_nvidia_com_gpu_count", "nvidia.com/gpu.count"),
    ("label_nvidia_com_gpu_replicas", "nvidia.com/gpu.replicas"),
    (
        "label_karpenter_sh_capacity_type",
        "karpenter.sh/capacity-type",
    ),
    (
        "label_eks_amazonaws_com_capacity_type",
        "eks.amazonaws.com/capacityType",
    ),
    (
        "label_eks_amazonaws_com_capacityType",
        "eks.amazonaws.com/capacityType",
    ),
    (
        "label_cloud_google_com_gke_spot",
        "cloud.google.com/gke-spot",
    ),
    (
        "label_cloud_google_com_gke_preemptible",
        "cloud.google.com/gke-preemptible",
    ),
    (
        "label_kubernetes_azure_com_scalesetpriority",
        "kubernetes.azure.com/scalesetpriority",
    ),
];

/// The kube-state-metrics label for an annotation or label key (`cost-center` → `cost_center`).
fn sanitized(key: &str) -> String {
    key.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Runs of consecutive samples (`step` apart) as intervals `[first, last + step)`, clipped.
fn runs(timestamps: &[UnixSeconds], step: i64, window: Interval) -> Vec<Interval> {
    let mut out: Vec<Interval> = Vec::new();
    for &t in timestamps {
        match out.last_mut() {
            Some(run) if t <= run.end => run.end = t + step,
            _ => out.push(Interval::new(t, t + step)),
        }
    }
    out.into_iter().filter_map(|run| run.clip(window)).collect()
}

fn sample_times(series: &prometheus_http_query::response::RangeVector) -> Vec<UnixSeconds> {
    series
        .samples()
        .iter()
        .filter(|s| s.value() > 0.0)
        .map(|s| s.timestamp() as i64)
        .collect()
}

fn get<'a>(labels: &'a HashMap<String, String>, key: &str) -> &'a str {
    labels.get(key).map(String::as_str).unwrap_or_default()
}

/// What history knows of a node.
#[derive(Default, Clone)]
struct NodeHistory {
    labels: BTreeMap<String, String>,
    price_override: Option<Decimal>,
    seen: Vec<Interval>,
}

/// `kube_node_labels` (latest label set per node) and the price annotation.
async fn nodes(
    prometheus: &Prometheus,
    window: Interval,
    step: i64,
) -> Result<BTreeMap<String, NodeHistory>, PrometheusError> {
    let mut nodes: BTreeMap<String, NodeHistory> = BTreeMap::new();
    for series in prometheus
        .range("kube_node_labels", window.start, window.end - 1, step)
        .await?
    {
        let labels = series.metric();
        let node = nodes.entry(get(labels, "node").to_string()).or_default();
        node.seen.extend(runs(&sample_times(&series), step, window));
        for (metric_label, label) in HISTORY_LABELS {
            if let Some(value) = labels.get(metric_label) {
                node.labels.insert(label.to_string(), value.clone());
            }
        }
    }
    let query = "kube_node_annotations{annotation_tollgate_dev_gpu_hourly_price!=\"\"}";
    for series in prometheus
        .range(query, window.start, window.end - 1, step)
        .await?
    {
        let labels = series.metric();
        if let Some(node) = nodes.get_mut(get(labels, "node")) {
            node.price_override = get(labels, "annotation_tollgate_dev_gpu_hourly_price")
                .parse()
                .ok();
        }
    }
    Ok(nodes)
}

/// Cost centers by source: pod annotations and labels by (namespace, pod), namespace
/// annotations and labels by namespace.
async fn cost_centers(
    prometheus: &Prometheus,
    window: Interval,
    key: &str,
) -> Result<[HashMap<(String, String), String>; 4], PrometheusError> {
    let key = sanitized(key);
    let mut found: [HashMap<(String, String), String>; 4] = Default::default();
    let step = (window.end - window.start).max(1);
    let sources = [
        ("kube_pod_annotations", format!("annotation_{key}")),
        ("kube_pod_labels", format!("label_{key}")),
        ("kube_namespace_annotations", format!("annotation_{key}")),
        ("kube_namespace_labels", format!("label_{key}")),
    ];
    for (i, (metric, label)) in sources.iter().enumerate() {
        let query = format!("max_over_time({metric}{{{label}!=\"\"}}[{step}s])");
        for series in prometheus
            .range(&query, window.end - 1, window.end - 1, step)
            .await?
        {
            let labels = series.metric();
            let pod = if i < 2 {
                get(labels, "pod").to_string()
            } else {
                String::new()
            };
            found[i].insert(
                (get(labels, "namespace").to_string(), pod),
                get(labels, label).to_string(),
            );
        }
    }
    Ok(found)
}

/// Rebuilds allocations and node capacity over `window` from Prometheus.
pub async fn history_allocations(
    prometheus: &Prometheus,
    window: Interval,
    card: &RateCard,
    cost_center_key: &str,
) -> Result<AllocationSet, PrometheusError> {
    let step = i64::from(prometheus.settings.history_step_seconds.max(1));
    let nodes = nodes(prometheus, window, step).await?;
    let [pod_annotations, pod_labels, ns_annotations, ns_labels] =
        cost_centers(prometheus, window, cost_center_key).await?;
    let mut set = AllocationSet::default();
    let cost_center =
        |set: &mut AllocationSet, namespace: &str, pod: &str| -> (Sym, CostCenterSource) {
            let pod_key = (namespace.to_string(), pod.to_string());
            let ns_key = (namespace.to_string(), String::new());
            let (value, source) = [
                (
                    pod_annotations.get(&pod_key),
                    CostCenterSource::PodAnnotation,
                ),
                (pod_labels.get(&pod_key), CostCenterSource::PodLabel),
                (
                    ns_annotations.get(&ns_key),
                    CostCenterSource::NamespaceAnnotation,
                ),
                (ns_labels.get(&ns_key), CostCenterSource::NamespaceLabel),
            ]
            .into_iter()
            .find_map(|(v, source)| v.map(|v| (v.as_str(), source)))
            .unwrap_or((UNASSIGNED, CostCenterSource::Default));
            (set.names.intern(value), source)
        };

    let requests = "sum by (namespace, pod, uid, resource) (kube_pod_container_resource_requests{resource=~\"nvidia_com_gpu|nvidia_com_gpu_shared|nvidia_com_mig_.*\"}) \
        * on (namespace, pod, uid) group_left (node) max by (namespace, pod, uid, node) (kube_pod_info{node!=\"\"}) \
        * on (namespace, pod, uid) group_left () max by (namespace, pod, uid) (kube_pod_status_phase{phase=\"Running\"} == 1)";
    for series in prometheus
        .range(requests, window.start, window.end - 1, step)
        .await?
    {
        let labels = series.metric();
        let (namespace, pod, node_name) = (
            get(labels, "namespace"),
            get(labels, "pod"),
            get(labels, "node"),
        );
        let node = nodes.get(node_name).cloned().unwrap_or_default();
        let product = node
            .labels
            .get("nvidia.com/gpu.product")
            .cloned()
            .unwrap_or_default();
        let product = product
            .strip_suffix("-SHARED")
            .unwrap_or(&product)
            .to_string();
        let replicas: i64 = node
            .labels
            .get("nvidia.com/gpu.replicas")
            .and_then(|r| r.parse().ok())
            .unwrap_or(1)
            .max(1);
        let count = series.samples().last().map_or(0.0, |s| s.value());
        let Some(count) = Decimal::from_f64_retain(count)
            .map(|c| c.round_dp(6))
            .and_then(GpuUnits::from_decimal)
        else {
            continue;
        };
        let resource = get(labels, "resource");
        let (kind, per_item) = match resource {
            "nvidia_com_gpu" if replicas > 1 => {
                (AllocationKind::Shared, GpuUnits::ratio(1, replicas))
            }
            "nvidia_com_gpu" => (AllocationKind::Gpu, Some(GpuUnits::ONE)),
            "nvidia_com_gpu_shared" => (AllocationKind::Shared, GpuUnits::ratio(1, replicas)),
            mig => {
                let profile = mig
                    .trim_start_matches("nvidia_com_mig_")
                    .replacen('_', ".", 1);
                (AllocationKind::Mig, card.mig_fraction(&product, &profile))
            }
        };
        let Some(units) = per_item.and_then(|p| count.checked_mul(p)) else {
            set.warnings.insert(format!(
                "history: pod {namespace}/{pod}: {resource} cannot be sized; not counted"
            ));
            continue;
        };
        let (center, source) = cost_center(&mut set, namespace, pod);
        for interval in runs(&sample_times(&series), step, window) {
            let allocation = Allocation {
                namespace: set.names.intern(namespace),
                pod: set.names.intern(pod),
                pod_uid: set.names.intern(get(labels, "uid")),
                resource_id: set.names.intern(get(labels, "uid")),
                claim: Sym::EMPTY,
                node: set.names.intern(node_name),
                product: set.names.intern(&product),
                kind,
                units,
                interval,
                tier: capacity_tier(&node.labels),
                price_override: node.price_override,
                cost_center: center,
                cost_center_source: source,
            };
            set.allocations.push(allocation);
        }
    }

    // DRA claims, from DCGM series that carry them.
    let dra = "max by (dra_claim_name, dra_claim_namespace, dra_pool_name, dra_device_name, dra_mig_profile, modelName, Hostname, hostname, exported_pod, pod) \
        (DCGM_FI_PROF_GR_ENGINE_ACTIVE{dra_claim_name!=\"\"} or DCGM_FI_DEV_GPU_UTIL{dra_claim_name!=\"\"})";
    for series in prometheus
        .range(dra, window.start, window.end - 1, step)
        .await?
    {
        let labels = series.metric();
        let namespace = get(labels, "dra_claim_namespace");
        let claim = get(labels, "dra_claim_name");
        let node_name = [
            get(labels, "Hostname"),
            get(labels, "hostname"),
            get(labels, "dra_pool_name"),
        ]
        .into_iter()
        .find(|n| !n.is_empty())
        .unwrap_or_default();
        let node = nodes.get(node_name).cloned().unwrap_or_default();
        let product = get(labels, "modelName").to_string();
        let units = match get(labels, "dra_mig_profile") {
            "" => Some(GpuUnits::ONE),
            profile => card.mig_fraction(&product, profile),
        };
        let Some(units) = units else { continue };
        let pod = [get(labels, "exported_pod"), get(labels, "pod")]
            .into_iter()
            .find(|p| !p.is_empty())
            .unwrap_or(claim);
        let (center, source) = cost_center(&mut set, namespace, pod);
        let resource_id = format!("{namespace}/{claim}/{}", get(labels, "dra_device_name"));
        for interval in runs(&sample_times(&series), step, window) {
            let allocation = Allocation {
                namespace: set.names.intern(namespace),
                pod: set.names.intern(pod),
                pod_uid: set.names.intern(&resource_id),
                resource_id: set.names.intern(&resource_id),
                claim: set.names.intern(claim),
                node: set.names.intern(node_name),
                product: set.names.intern(&product),
                kind: AllocationKind::Dra,
                units,
                interval,
                tier: capacity_tier(&node.labels),
                price_override: node.price_override,
                cost_center: center,
                cost_center_source: source,
            };
            set.allocations.push(allocation);
        }
    }

    for (name, node) in &nodes {
        let Some(count) = node
            .labels
            .get("nvidia.com/gpu.count")
            .and_then(|c| c.parse::<i64>().ok())
        else {
            continue;
        };
        let product = node
            .labels
            .get("nvidia.com/gpu.product")
            .cloned()
            .unwrap_or_default();
        let product = product
            .strip_suffix("-SHARED")
            .unwrap_or(&product)
            .to_string();
        for interval in &node.seen {
            let capacity = NodeCapacity {
                node: set.names.intern(name),
                product: set.names.intern(&product),
                units: GpuUnits::whole(count),
                interval: *interval,
                tier: capacity_tier(&node.labels),
                price_override: node.price_override,
            };
            set.capacity.push(capacity);
        }
    }
    set.warnings.insert(format!(
        "history: allocations rebuilt from Prometheus samples every {step} s; each interval end is off by less than {step} s"
    ));
    Ok(set)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn sample_runs_become_intervals_within_one_step() {
        let window = Interval::new(0, 10_000);
        assert_eq!(
            runs(&[300, 600, 900, 2400, 2700], 300, window),
            vec![Interval::new(300, 1200), Interval::new(2400, 3000)]
        );
        assert_eq!(
            runs(&[9900], 300, window),
            vec![Interval::new(9900, 10_000)]
        );
        assert_eq!(sanitized("cost-center"), "cost_center");
    }
}
