//! Allocations rebuilt from kube-state-metrics and DCGM for time Tollgate did not watch.
//!
//! A pod held its GPUs while `kube_pod_info` showed it on a node and
//! `kube_pod_status_phase{phase="Running"}` was 1; how many follows the effective-request rule
//! over `kube_pod_container_resource_requests`, `kube_pod_init_container_resource_requests` and
//! `kube_pod_init_container_info{restart_policy="Always"}` (sidecars);
//! `kube_pod_annotations` / `kube_pod_labels` / `kube_namespace_*` its cost center;
//! `kube_node_labels` the node's model, tier, sharing and GPU count. DRA claims, which
//! kube-state-metrics cannot show, come from DCGM series carrying `dra_*` labels.
//!
//! Each series is evaluated every `history_step_seconds` as `max_over_time(…[step])`: present at
//! `T` when it had a sample in `[T − step, T]`. A run of presences from `T₁` to `Tₙ` becomes the
//! interval `[T₁ − step, Tₙ)`; as long as the series is scraped more often than every step, each
//! end is off by less than one step.

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;

mod sharers;
mod times;

use super::{Prometheus, PrometheusError};
use k8s_openapi::api::core::v1::{Node, NodeStatus};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sharers::Sharers;

use crate::allocation::{
    Allocation, AllocationKind, AllocationSet, CostCenterSource, DeviceIndex, GpuResource,
    NodeCapacity, NodeFacts, PRICE_ANNOTATION, Sym, classify, first_cost_center, mig,
    mig_replicas_label, node_facts, units_per_item,
};
use crate::pricing::RateCard;
use crate::time::{Interval, UnixSeconds};
use crate::units::GpuUnits;

/// kube-state-metrics label names for the node labels Tollgate reads (sanitized: every
/// non-alphanumeric becomes `_`; camelCase keys appear in both spellings across versions).
pub const HISTORY_LABELS: [(&str, &str); 29] = [
    ("label_nvidia_com_gpu_product", "nvidia.com/gpu.product"),
    ("label_nvidia_com_gpu_memory", "nvidia.com/gpu.memory"),
    ("label_nvidia_com_gpu_count", "nvidia.com/gpu.count"),
    ("label_nvidia_com_gpu_replicas", "nvidia.com/gpu.replicas"),
    ("label_amd_com_gpu_product_name", "amd.com/gpu.product-name"),
    (
        "label_beta_amd_com_gpu_product_name",
        "beta.amd.com/gpu.product-name",
    ),
    ("label_amd_com_gpu_vram", "amd.com/gpu.vram"),
    ("label_beta_amd_com_gpu_vram", "beta.amd.com/gpu.vram"),
    (
        "label_amd_com_compute_memory_partition",
        "amd.com/compute-memory-partition",
    ),
    (
        "label_amd_com_gpu_compute_memory_partition",
        "amd.com/gpu.compute-memory-partition",
    ),
    (
        "label_beta_amd_com_gpu_compute_memory_partition",
        "beta.amd.com/gpu.compute-memory-partition",
    ),
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
    (
        "label_cloud_google_com_gke_accelerator",
        "cloud.google.com/gke-accelerator",
    ),
    (
        "label_karpenter_k8s_aws_instance_gpu_name",
        "karpenter.k8s.aws/instance-gpu-name",
    ),
    (
        "label_karpenter_k8s_aws_instance_gpu_memory",
        "karpenter.k8s.aws/instance-gpu-memory",
    ),
    (
        "label_karpenter_k8s_aws_instance_gpu_count",
        "karpenter.k8s.aws/instance-gpu-count",
    ),
    (
        "label_eks_amazonaws_com_instance_gpu_count",
        "eks.amazonaws.com/instance-gpu-count",
    ),
    (
        "label_karpenter_azure_com_sku_gpu_count",
        "karpenter.azure.com/sku-gpu-count",
    ),
    (
        "label_eks_amazonaws_com_instance_gpu_name",
        "eks.amazonaws.com/instance-gpu-name",
    ),
    (
        "label_eks_amazonaws_com_instance_gpu_memory",
        "eks.amazonaws.com/instance-gpu-memory",
    ),
    (
        "label_cloud_google_com_gke_max_shared_clients_per_gpu",
        "cloud.google.com/gke-max-shared-clients-per-gpu",
    ),
    (
        "label_cloud_google_com_gke_gpu_partition_size",
        "cloud.google.com/gke-gpu-partition-size",
    ),
    (
        "label_node_kubernetes_io_instance_type",
        "node.kubernetes.io/instance-type",
    ),
    (
        "label_beta_kubernetes_io_instance_type",
        "beta.kubernetes.io/instance-type",
    ),
];

/// The kube-state-metrics label for an annotation or label key (`cost-center` → `cost_center`).
fn sanitized(key: &str) -> String {
    key.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Runs of presences (`step` apart) as intervals `[first − step, last)`, clipped.
fn runs(timestamps: &[UnixSeconds], step: i64, window: Interval) -> Vec<Interval> {
    let mut out: Vec<Interval> = Vec::new();
    for &t in timestamps {
        match out.last_mut() {
            Some(run) if t <= run.end + step => run.end = t,
            _ => out.push(Interval::new(t - step, t)),
        }
    }
    out.into_iter().filter_map(|run| run.clip(window)).collect()
}

/// Evaluation points per range query: Prometheus refuses more than 11,000 per series.
const POINTS_PER_QUERY: i64 = 10_000;

/// One series over the whole window: its labels and its samples, in time order.
struct Series {
    labels: HashMap<String, String>,
    samples: Vec<(UnixSeconds, f64)>,
}

impl Series {
    fn metric(&self) -> &HashMap<String, String> {
        &self.labels
    }

    /// When it was present (a positive value).
    fn times(&self) -> Vec<UnixSeconds> {
        self.samples
            .iter()
            .filter(|(_, value)| *value > 0.0)
            .map(|(t, _)| *t)
            .collect()
    }

    /// Its last value, to six decimals.
    fn last_value(&self) -> Option<Decimal> {
        let (_, value) = self.samples.last()?;
        Decimal::from_f64_retain(*value).map(|v| v.round_dp(6))
    }
}

/// `query` evaluated every `step` so that its presences cover `window` (see the module docs),
/// in as many range queries as Prometheus's point limit needs, each series merged across them.
async fn sampled(
    prometheus: &Prometheus,
    query: &str,
    window: Interval,
    step: i64,
) -> Result<Vec<Series>, PrometheusError> {
    let (first, last) = (window.start + step, window.end - 1 + step);
    let mut merged: BTreeMap<Vec<(String, String)>, Series> = BTreeMap::new();
    let mut start = first;
    while start <= last {
        let end = (start + (POINTS_PER_QUERY - 1) * step).min(last);
        for vector in prometheus.range(query, start, end, step).await? {
            let mut key: Vec<(String, String)> = vector
                .metric()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            key.sort();
            let series = merged.entry(key).or_insert_with(|| Series {
                labels: vector.metric().clone(),
                samples: Vec::new(),
            });
            series.samples.extend(
                vector
                    .samples()
                    .iter()
                    .map(|s| (s.timestamp() as i64, s.value())),
            );
        }
        start = end + step;
    }
    Ok(merged.into_values().collect())
}

/// `max_over_time(selector[step])`.
fn present(selector: &str, step: i64) -> String {
    format!("max_over_time({selector}[{step}s])")
}

/// Each container's GPU requests from a kube-state-metrics request metric, sampled.
fn gpu_requests(metric: &str, step: i64) -> String {
    format!(
        "max by (namespace, pod, uid, container, resource) ({})",
        present(&format!("{metric}{{{GPU_RESOURCES}}}"), step)
    )
}

/// The GPU resources of the device plugins, as kube-state-metrics names them.
const GPU_RESOURCES: &str = "resource=~\"nvidia_com_gpu|nvidia_com_gpu_shared|nvidia_com_mig_.*|amd_com_gpu|amd_com_[a-z]px_nps[0-9]+\"";

fn get<'a>(labels: &'a HashMap<String, String>, key: &str) -> &'a str {
    labels.get(key).map(String::as_str).unwrap_or_default()
}

/// The node (or DRA pool) a DCGM series names its GPU in.
fn node_of(labels: &HashMap<String, String>) -> &str {
    [
        get(labels, "Hostname"),
        get(labels, "hostname"),
        get(labels, "dra_pool_name"),
    ]
    .into_iter()
    .find(|n| !n.is_empty())
    .unwrap_or_default()
}

/// What history knows of a node.
#[derive(Default, Clone)]
struct NodeHistory {
    labels: BTreeMap<String, String>,
    /// The `tollgate.dev/gpu-hourly-price` annotation, as written.
    price: Option<String>,
    /// GPU resources the node advertised (`kube_node_status_capacity`), by resource name.
    capacity: BTreeMap<String, Decimal>,
    seen: Vec<Interval>,
}

impl NodeHistory {
    /// The node read by the same rules as a watched one (product and MIG single strategy,
    /// replicas, tier, price annotation, `nvidia.com/gpu.count` capacity).
    fn facts(&self, name: &str, card: &RateCard, warnings: &mut Vec<String>) -> NodeFacts {
        let node = Node {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                labels: Some(self.labels.clone()),
                annotations: self
                    .price
                    .clone()
                    .map(|price| BTreeMap::from([(PRICE_ANNOTATION.to_string(), price)])),
                ..ObjectMeta::default()
            },
            status: Some(NodeStatus {
                capacity: Some(
                    self.capacity
                        .iter()
                        .map(|(resource, count)| (resource.clone(), Quantity(count.to_string())))
                        .collect(),
                ),
                ..NodeStatus::default()
            }),
            ..Node::default()
        };
        node_facts(&node, &DeviceIndex::default(), card, warnings)
    }
}

/// The device-plugin resource of a kube-state-metrics resource name (`nvidia_com_gpu`,
/// `nvidia_com_gpu_shared`, `nvidia_com_mig_1g_10gb`, `amd_com_gpu`, `amd_com_cpx_nps4`).
fn gpu_resource(sanitized: &str) -> Option<GpuResource> {
    match sanitized {
        "nvidia_com_gpu" => Some(GpuResource::Whole),
        "nvidia_com_gpu_shared" => Some(GpuResource::Shared),
        _ if sanitized.starts_with("amd_com_") => {
            classify(&format!("amd.com/{}", &sanitized["amd_com_".len()..]))
        }
        // `1g_5gb` is `1g.5gb`; `1g_5gb_shared` its `renameByDefault` name.
        _ => {
            let profile = sanitized.strip_prefix("nvidia_com_mig_")?;
            let profile = match profile.strip_suffix("_shared") {
                Some(profile) => format!("{profile}.shared"),
                None => profile.to_string(),
            };
            mig(&profile.replacen('_', ".", 1))
        }
    }
}

/// The node label a `kube_node_labels` label of GFD's MIG replicas stands for
/// (`label_nvidia_com_mig_1g_5gb_replicas` → `nvidia.com/mig-1g.5gb.replicas`): one per
/// profile, so not in [`HISTORY_LABELS`].
fn mig_replicas_node_label(metric_label: &str) -> Option<String> {
    let profile = metric_label
        .strip_prefix("label_nvidia_com_mig_")?
        .strip_suffix("_replicas")
        .filter(|profile| !profile.is_empty())?;
    Some(mig_replicas_label(&profile.replacen('_', ".", 1)))
}

/// `kube_node_labels` (latest label set per node) and the price annotation.
async fn nodes(
    prometheus: &Prometheus,
    window: Interval,
    step: i64,
) -> Result<BTreeMap<String, NodeHistory>, PrometheusError> {
    let mut nodes: BTreeMap<String, NodeHistory> = BTreeMap::new();
    for series in sampled(prometheus, &present("kube_node_labels", step), window, step).await? {
        let labels = series.metric();
        let node = nodes.entry(get(labels, "node").to_string()).or_default();
        node.seen.extend(runs(&series.times(), step, window));
        for (metric_label, label) in HISTORY_LABELS {
            if let Some(value) = labels.get(metric_label) {
                node.labels.insert(label.to_string(), value.clone());
            }
        }
        for (metric_label, value) in labels {
            if let Some(label) = mig_replicas_node_label(metric_label) {
                node.labels.insert(label, value.clone());
            }
        }
    }
    let query = present(
        "kube_node_annotations{annotation_tollgate_dev_gpu_hourly_price!=\"\"}",
        step,
    );
    for series in sampled(prometheus, &query, window, step).await? {
        let labels = series.metric();
        if let Some(node) = nodes.get_mut(get(labels, "node")) {
            node.price = Some(get(labels, "annotation_tollgate_dev_gpu_hourly_price").to_string());
        }
    }
    // What the device plugin advertised: capacity where GFD's count label is missing.
    let query = format!(
        "max by (node, resource) ({})",
        present(
            &format!("kube_node_status_capacity{{{GPU_RESOURCES}}}"),
            step
        )
    );
    for series in sampled(prometheus, &query, window, step).await? {
        let labels = series.metric();
        let resource = gpu_resource(get(labels, "resource")).map(|r| r.name());
        if let (Some(node), Some(resource), Some(count)) = (
            nodes.get_mut(get(labels, "node")),
            resource,
            series.last_value(),
        ) {
            node.capacity.insert(resource, count);
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

/// A pod as kube-state-metrics shows it: GPU requests of its containers, and when it ran where.
#[derive(Default)]
struct PodDemand {
    node: String,
    running: Vec<Interval>,
    /// Every end of `running` inside the window is exact (kube-state-metrics' pod times).
    exact: bool,
    app: BTreeMap<String, Decimal>,
    /// (container, resource) → request, for init containers.
    init: BTreeMap<(String, String), Decimal>,
    sidecars: std::collections::BTreeSet<String>,
}

impl PodDemand {
    /// Per resource: the larger of app containers plus sidecars and the largest other init
    /// container (SPEC §1.1; kube-state-metrics does not say the init containers' order).
    fn effective(&self) -> BTreeMap<String, Decimal> {
        let mut steady = self.app.clone();
        let mut peak: BTreeMap<String, Decimal> = BTreeMap::new();
        for ((container, resource), amount) in &self.init {
            if self.sidecars.contains(container) {
                *steady.entry(resource.clone()).or_default() += amount;
            } else {
                let top = peak.entry(resource.clone()).or_default();
                *top = (*top).max(*amount);
            }
        }
        for (resource, amount) in peak {
            let entry = steady.entry(resource).or_default();
            *entry = (*entry).max(amount);
        }
        steady.retain(|_, amount| *amount > Decimal::ZERO);
        steady
    }
}

type PodKey = (String, String, String);

fn pod_key(labels: &HashMap<String, String>) -> PodKey {
    (
        get(labels, "namespace").to_string(),
        get(labels, "pod").to_string(),
        get(labels, "uid").to_string(),
    )
}

/// GPU requests (app containers, init containers, which init containers are sidecars) and
/// running intervals of every pod that ran in `window`.
async fn pod_demands(
    prometheus: &Prometheus,
    window: Interval,
    step: i64,
) -> Result<BTreeMap<PodKey, PodDemand>, PrometheusError> {
    let mut pods: BTreeMap<PodKey, PodDemand> = BTreeMap::new();
    let running = format!(
        "max by (namespace, pod, uid, node) ({}) * on (namespace, pod, uid) group_left () (max by (namespace, pod, uid) ({}) == 1)",
        present("kube_pod_info{node!=\"\"}", step),
        present("kube_pod_status_phase{phase=\"Running\"}", step),
    );
    for series in sampled(prometheus, &running, window, step).await? {
        let pod = pods.entry(pod_key(series.metric())).or_default();
        pod.node = get(series.metric(), "node").to_string();
        pod.running.extend(runs(&series.times(), step, window));
    }
    let app = gpu_requests("kube_pod_container_resource_requests", step);
    for series in sampled(prometheus, &app, window, step).await? {
        let (Some(pod), Some(value)) =
            (pods.get_mut(&pod_key(series.metric())), series.last_value())
        else {
            continue;
        };
        *pod.app
            .entry(get(series.metric(), "resource").to_string())
            .or_default() += value;
    }
    let init = gpu_requests("kube_pod_init_container_resource_requests", step);
    for series in sampled(prometheus, &init, window, step).await? {
        let (Some(pod), Some(value)) =
            (pods.get_mut(&pod_key(series.metric())), series.last_value())
        else {
            continue;
        };
        let key = (
            get(series.metric(), "container").to_string(),
            get(series.metric(), "resource").to_string(),
        );
        pod.init.insert(key, value);
    }
    let sidecars = format!(
        "max by (namespace, pod, uid, container) ({})",
        present(
            "kube_pod_init_container_info{restart_policy=\"Always\"}",
            step
        )
    );
    for series in sampled(prometheus, &sidecars, window, step).await? {
        if let Some(pod) = pods.get_mut(&pod_key(series.metric())) {
            pod.sidecars
                .insert(get(series.metric(), "container").to_string());
        }
    }
    pods.retain(|_, pod| !pod.app.is_empty() || !pod.init.is_empty());
    let exact = times::pod_times(prometheus, window, step).await?;
    for (key, pod) in &mut pods {
        let times = exact.get(key).copied().unwrap_or_default();
        pod.exact = times::snap(&mut pod.running, times, step, window);
    }
    Ok(pods)
}

/// What the scheduler puts in the name of a claim it makes for an extended resource, after the
/// pod's name.
const EXTENDED_CLAIM_INFIX: &str = "-extended-resources-";

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
            let chosen = first_cost_center([
                pod_annotations.get(&pod_key).map(String::as_str),
                pod_labels.get(&pod_key).map(String::as_str),
                ns_annotations.get(&ns_key).map(String::as_str),
                ns_labels.get(&ns_key).map(String::as_str),
            ]);
            if let Some(warning) = chosen.warning(&format!("{namespace}/{pod}"), cost_center_key) {
                set.warnings.insert(format!("history: {warning}"));
            }
            (set.names.intern(chosen.name), chosen.source)
        };

    let mut warnings = Vec::new();
    let facts: BTreeMap<&str, NodeFacts> = nodes
        .iter()
        .map(|(name, node)| (name.as_str(), node.facts(name, card, &mut warnings)))
        .collect();
    set.warnings
        .extend(warnings.into_iter().map(|w| format!("history: {w}")));
    // DRA claims, from DCGM series that carry them.
    let dra = format!(
        "max by (dra_claim_name, dra_claim_namespace, dra_pool_name, dra_device_name, dra_mig_profile, modelName, Hostname, hostname, exported_pod, pod) ({} or {})",
        present("DCGM_FI_PROF_GR_ENGINE_ACTIVE{dra_claim_name!=\"\"}", step),
        present("DCGM_FI_DEV_GPU_UTIL{dra_claim_name!=\"\"}", step),
    );
    let unknown = NodeFacts::default();
    // Pods' extended-resource claims and when DCGM saw them: (namespace, pod) → intervals.
    let mut extended: HashMap<(&str, &str), Vec<Interval>> = HashMap::new();
    let dra_series = sampled(prometheus, &dra, window, step).await?;
    // A device under several series at once is theirs in equal parts.
    let mut sharers = Sharers::default();
    for series in &dra_series {
        let labels = series.metric();
        let device = (node_of(labels), get(labels, "dra_device_name"));
        sharers.add(device, &series.times());
    }
    for series in &dra_series {
        let labels = series.metric();
        let namespace = get(labels, "dra_claim_namespace");
        let claim = get(labels, "dra_claim_name");
        let node_name = node_of(labels);
        let node = facts.get(node_name).unwrap_or(&unknown);
        let product = get(labels, "modelName").to_string();
        let units = match get(labels, "dra_mig_profile") {
            "" => Some(GpuUnits::ONE),
            profile => card.mig_fraction(&product, profile),
        };
        let Some(units) = units else { continue };
        // A claim the scheduler made for a plain `nvidia.com/gpu` limit (DRAExtendedResource)
        // is named after its pod: `<pod>-extended-resources-<suffix>`.
        let extended_for = claim.rsplit_once(EXTENDED_CLAIM_INFIX).map(|(pod, _)| pod);
        let pod = [get(labels, "exported_pod"), get(labels, "pod")]
            .into_iter()
            .find(|p| !p.is_empty())
            .or(extended_for)
            .unwrap_or(claim);
        let (center, source) = cost_center(&mut set, namespace, pod);
        let device = get(labels, "dra_device_name");
        let resource_id = format!("{namespace}/{claim}/{device}");
        let held = sharers
            .split((node_name, device), series.times())
            .into_iter()
            .filter_map(|(sharers, times)| Some((units.split(sharers)?, times)))
            .flat_map(|(units, times)| {
                runs(&times, step, window)
                    .into_iter()
                    .map(move |interval| (units, interval))
            });
        for (units, interval) in held {
            if extended_for.is_some() {
                extended.entry((namespace, pod)).or_default().push(interval);
            }
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
                tier: node.tier,
                price_override: node.price_override,
                cost_center: center,
                cost_center_source: source,
            };
            set.allocations.push(allocation);
        }
    }

    let pods = pod_demands(prometheus, window, step).await?;
    for ((namespace, pod, uid), demand) in &pods {
        let node = facts.get(demand.node.as_str()).unwrap_or(&unknown);
        let (center, source) = cost_center(&mut set, namespace, pod);
        for (resource, count) in demand.effective() {
            let Some(gpu) = gpu_resource(&resource) else {
                continue;
            };
            let sized = units_per_item(&gpu, node, card).and_then(|(kind, per_item)| {
                Some((kind, GpuUnits::from_decimal(count)?.checked_mul(per_item)?))
            });
            let Some((kind, units)) = sized else {
                set.warnings.insert(format!(
                    "history: pod {namespace}/{pod}: {resource} cannot be sized; not counted"
                ));
                continue;
            };
            // A request served by the pod's extended-resource claim is the claim's, counted
            // from its DCGM series above; kube-state-metrics still shows the plain limit.
            let served = extended.get(&(namespace.as_str(), pod.as_str()));
            for interval in demand.running.iter().filter(|running| {
                served.is_none_or(|claims| claims.iter().all(|c| c.clip(**running).is_none()))
            }) {
                let allocation = Allocation {
                    namespace: set.names.intern(namespace),
                    pod: set.names.intern(pod),
                    pod_uid: set.names.intern(uid),
                    resource_id: set.names.intern(uid),
                    claim: Sym::EMPTY,
                    node: set.names.intern(&demand.node),
                    product: set.names.intern(&node.product),
                    kind,
                    units,
                    interval: *interval,
                    tier: node.tier,
                    price_override: node.price_override,
                    cost_center: center,
                    cost_center_source: source,
                };
                set.allocations.push(allocation);
            }
        }
    }

    for (name, node) in &nodes {
        let node_facts = &facts[name.as_str()];
        for (product, units) in &node_facts.capacity {
            for interval in &node.seen {
                let capacity = NodeCapacity {
                    node: set.names.intern(name),
                    product: set.names.intern(product),
                    units: *units,
                    interval: *interval,
                    tier: node_facts.tier,
                    price_override: node_facts.price_override,
                };
                set.capacity.push(capacity);
            }
        }
    }
    let sampled_pods = pods.values().filter(|pod| !pod.exact).count();
    set.warnings.insert(if sampled_pods == 0 {
        format!(
            "history: pods' start and end exact to the second (kube_pod_start_time, kube_pod_completion_time, kube_pod_deletion_timestamp); nodes and DRA claims sampled every {step} s, each of their ends off by less than {step} s"
        )
    } else {
        format!(
            "history: allocations rebuilt from Prometheus samples every {step} s; each interval end is off by less than {step} s ({sampled_pods} pods without kube-state-metrics' exact start and end times)"
        )
    });
    Ok(set)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn history_nodes_and_resources_are_read_as_live_ones_are() {
        let card = RateCard::builtin();
        assert_eq!(gpu_resource("nvidia_com_gpu"), Some(GpuResource::Whole));
        assert_eq!(gpu_resource("amd_com_gpu"), Some(GpuResource::AmdGpu));
        assert_eq!(
            gpu_resource("amd_com_cpx_nps4").map(|r| r.name()),
            Some("amd.com/cpx_nps4".to_string())
        );
        assert_eq!(
            gpu_resource("nvidia_com_gpu_shared"),
            Some(GpuResource::Shared)
        );
        assert_eq!(
            gpu_resource("nvidia_com_mig_1g_10gb"),
            Some(GpuResource::Mig {
                profile: "1g.10gb".into(),
                renamed: false
            })
        );
        assert_eq!(
            gpu_resource("nvidia_com_mig_1g_5gb_shared"),
            Some(GpuResource::Mig {
                profile: "1g.5gb".into(),
                renamed: true
            })
        );
        assert_eq!(
            mig_replicas_node_label("label_nvidia_com_mig_3g_20gb_replicas").as_deref(),
            Some("nvidia.com/mig-3g.20gb.replicas")
        );
        assert_eq!(
            mig_replicas_node_label("label_nvidia_com_mig_3g_20gb_count"),
            None
        );
        assert_eq!(gpu_resource("cpu"), None);

        // MIG single strategy: every nvidia.com/gpu is a 1g.5gb slice (1/7) of an A100.
        let node = NodeHistory {
            labels: BTreeMap::from([
                (
                    "nvidia.com/gpu.product".to_string(),
                    "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb".to_string(),
                ),
                ("nvidia.com/gpu.count".to_string(), "2".to_string()),
                ("karpenter.sh/capacity-type".to_string(), "spot".to_string()),
            ]),
            price: Some("1,50".to_string()),
            capacity: BTreeMap::new(),
            seen: Vec::new(),
        };
        let mut warnings = Vec::new();
        let facts = node.facts("node-a", &card, &mut warnings);
        assert_eq!(facts.product, "NVIDIA-A100-SXM4-40GB");
        assert_eq!(facts.tier, crate::pricing::PriceTier::Spot);
        // GFD counts MIG devices under the single strategy: two 1g.5gb are cut from one GPU.
        assert_eq!(facts.capacity["NVIDIA-A100-SXM4-40GB"], GpuUnits::ONE);
        assert_eq!(
            units_per_item(&GpuResource::Whole, &facts, &card),
            Some((AllocationKind::Mig, GpuUnits::ratio(1, 7).unwrap()))
        );
        // A bad price annotation is said, not silently dropped.
        assert_eq!(facts.price_override, None);
        assert!(warnings.iter().any(|w| w.contains("1,50")), "{warnings:?}");
    }

    #[test]
    fn sample_runs_become_intervals_within_one_step() {
        let window = Interval::new(0, 10_000);
        // Present at 300…900 (samples somewhere in (0, 900]) and at 2400…2700.
        assert_eq!(
            runs(&[300, 600, 900, 2400, 2700], 300, window),
            vec![Interval::new(0, 900), Interval::new(2100, 2700)]
        );
        assert_eq!(
            runs(&[10_200], 300, window),
            vec![Interval::new(9900, 10_000)]
        );
        assert_eq!(sanitized("cost-center"), "cost_center");
    }
}
