//! The demo fleet: a deterministic simulated cluster, as Kubernetes objects.
//!
//! 209 GPUs per unit of scale across H100 (on-demand and spot), H200 through DRA only (template
//! claims, a shared claim, scheduler-made extended-resource claims), A100 split by MIG, time-sliced
//! L4, L40S (one node with a price override) and one GH200 that the built-in rate card does not
//! price; seven namespaces whose cost centers come from every link of the chain; 35 days of pod
//! churn ending at "as of". The objects are what `kubectl get -o json` would show if finished pods
//! and their claims were never garbage-collected, so the demo enters the same path as a snapshot.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerExtendedResourceRequest, ContainerState, ContainerStateTerminated,
    ContainerStatus, Namespace, Node, NodeStatus, Pod, PodCondition,
    PodExtendedResourceClaimStatus, PodResourceClaim, PodResourceClaimStatus, PodSpec, PodStatus,
    ResourceRequirements,
};
use k8s_openapi::api::resource::v1::{
    AllocationResult, Device, DeviceAllocationResult, DeviceAttribute,
    DeviceRequestAllocationResult, ResourceClaim, ResourceClaimConsumerReference,
    ResourceClaimSpec, ResourceClaimStatus, ResourcePool, ResourceSlice, ResourceSliceSpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use crate::allocation::{AllocationBuilder, AllocationSet, BuildOptions, ClusterObjects};
use crate::pricing::RateCard;
use crate::time::UnixSeconds;

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

/// How long the simulated history runs before "as of".
pub const DEMO_DAYS: i64 = 35;

/// The simulated fleet, `scale` times the base pools, seen at `as_of`.
///
/// The layout of pods is fixed by `anchor` (history runs from 35 days before it) and by the
/// seeds alone, so the same fleet seen at a later `as_of` ([`DemoFleet::at`]) has the same past
/// and more present: that is how `serve --demo` moves.
#[derive(Clone, Copy, Debug)]
pub struct DemoFleet {
    scale: u32,
    anchor: UnixSeconds,
    as_of: UnixSeconds,
}

/// How a node offers its GPUs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Offer {
    /// `nvidia.com/gpu`, `n` per pod.
    Whole,
    /// DRA devices only, through claims.
    Dra,
    /// MIG mixed strategy, each GPU cut 3g.40gb + 2g.20gb + 2g.20gb.
    Mig,
    /// Time-sliced, `nvidia.com/gpu.shared`, 4 replicas.
    Shared,
}

/// How pods come and go in a slot.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Workload {
    /// Autoscaled inference replicas: hours to a day, fewer at night.
    Inference,
    /// Batch jobs: an hour or a few.
    Batch,
    /// Training: one to three days.
    Training,
}

/// One namespace's pods on one slot.
#[derive(Clone, Copy, Debug)]
struct Tenant {
    namespace: &'static str,
    app: &'static str,
    workload: Workload,
}

struct Pool {
    prefix: &'static str,
    nodes: u32,
    gpus: u32,
    product: &'static str,
    offer: Offer,
    labels: &'static [(&'static str, &'static str)],
    /// Days before "as of" the pool's nodes were created.
    age_days: i64,
}

const POOLS: &[Pool] = &[
    Pool {
        prefix: "h100-od",
        nodes: 8,
        gpus: 8,
        product: "NVIDIA-H100-80GB-HBM3",
        offer: Offer::Whole,
        labels: &[("karpenter.sh/capacity-type", "on-demand")],
        age_days: 40,
    },
    Pool {
        prefix: "h100-spot",
        nodes: 4,
        gpus: 8,
        product: "NVIDIA-H100-80GB-HBM3",
        offer: Offer::Whole,
        labels: &[("karpenter.sh/capacity-type", "spot")],
        age_days: 20,
    },
    Pool {
        prefix: "h200-dra",
        nodes: 4,
        gpus: 8,
        product: "NVIDIA H200",
        offer: Offer::Dra,
        labels: &[("karpenter.sh/capacity-type", "on-demand")],
        age_days: 40,
    },
    Pool {
        prefix: "a100-mig",
        nodes: 4,
        gpus: 8,
        product: "NVIDIA-A100-SXM4-80GB",
        offer: Offer::Mig,
        labels: &[
            ("eks.amazonaws.com/capacityType", "ON_DEMAND"),
            ("nvidia.com/mig.strategy", "mixed"),
        ],
        age_days: 40,
    },
    Pool {
        prefix: "l4-ts",
        nodes: 6,
        gpus: 4,
        product: "NVIDIA-L4",
        offer: Offer::Shared,
        labels: &[
            ("nvidia.com/gpu.replicas", "4"),
            ("nvidia.com/gpu.sharing-strategy", "time-slicing"),
        ],
        age_days: 40,
    },
    Pool {
        prefix: "l40s",
        nodes: 6,
        gpus: 4,
        product: "NVIDIA-L40S",
        offer: Offer::Whole,
        labels: &[],
        age_days: 40,
    },
    Pool {
        prefix: "gh200",
        nodes: 1,
        gpus: 1,
        product: "NVIDIA-GH200-480GB",
        offer: Offer::Whole,
        labels: &[],
        age_days: 40,
    },
];

const NAMESPACES: &[(&str, Option<(&str, &str)>)] = &[
    ("inference-chat", Some(("annotation", "cc-100"))),
    ("inference-search", Some(("label", "cc-200"))),
    ("ml-training", Some(("annotation", "cc-300"))),
    ("recsys", Some(("annotation", "cc-400"))),
    ("batch-eval", None),
    ("research", None),
    ("platform-tools", None),
];

const REPLICAS: u32 = 4;

/// A deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[low, high)` (seconds, counts).
    fn between(&mut self, low: i64, high: i64) -> i64 {
        low + (self.next() % (high - low).max(1) as u64) as i64
    }

    fn token(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..len)
            .map(|_| ALPHABET[(self.next() % ALPHABET.len() as u64) as usize] as char)
            .collect()
    }

    fn uid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0xfff,
            b & 0xffff_ffff_ffff
        )
    }
}

fn time(seconds: UnixSeconds) -> Time {
    Time(jiff::Timestamp::from_second(seconds).unwrap_or(jiff::Timestamp::UNIX_EPOCH))
}

fn map(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    (!pairs.is_empty()).then(|| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    })
}

fn quantities(pairs: &[(&str, String)]) -> BTreeMap<String, Quantity> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Quantity(v.clone())))
        .collect()
}

fn text_attribute(value: &str) -> DeviceAttribute {
    DeviceAttribute {
        string: Some(value.to_string()),
        ..Default::default()
    }
}

/// One node of the fleet, with what the simulation needs to fill it.
struct DemoNode {
    name: String,
    pool: &'static Pool,
    index: u32,
}

/// A run of pods on one share of one node.
struct Slot {
    tenant: Tenant,
    /// What each pod on the slot asks for.
    ask: Ask,
}

#[derive(Clone, Debug)]
enum Ask {
    /// Extended resource `resource` × `count`.
    Resource { resource: &'static str, count: u32 },
    /// A template claim for DRA device `gpu-<device>`.
    TemplateClaim { device: u32 },
    /// A claim for `gpu-<device>` shared by two pods that run side by side.
    SharedClaim { device: u32 },
    /// `nvidia.com/gpu: 1` served by a scheduler-made claim for `gpu-<device>`.
    ExtendedClaim { device: u32 },
}

impl DemoFleet {
    /// A fleet of `scale` times the base pools (209 GPUs each), whose 35-day history ends at
    /// `as_of` (laid out from the hour `as_of` falls in).
    pub fn new(scale: u32, as_of: UnixSeconds) -> Self {
        DemoFleet {
            scale: scale.max(1),
            anchor: as_of.div_euclid(HOUR) * HOUR,
            as_of,
        }
    }

    /// The same fleet seen at another time: pods that started by then, running if they had
    /// not finished.
    pub fn at(self, as_of: UnixSeconds) -> Self {
        DemoFleet { as_of, ..self }
    }

    /// Physical GPUs in the fleet.
    pub fn gpu_count(&self) -> u32 {
        POOLS.iter().map(|p| p.nodes * p.gpus).sum::<u32>() * self.scale
    }

    fn nodes(&self) -> Vec<DemoNode> {
        POOLS
            .iter()
            .flat_map(|pool| {
                (0..pool.nodes * self.scale).map(move |index| DemoNode {
                    name: format!("{}-{index:03}", pool.prefix),
                    pool,
                    index,
                })
            })
            .collect()
    }

    /// Nodes, namespaces and DRA slices; no pods or claims.
    pub fn cluster(&self) -> ClusterObjects {
        let nodes = self.nodes();
        ClusterObjects {
            nodes: nodes.iter().map(|n| self.node_object(n)).collect(),
            namespaces: NAMESPACES
                .iter()
                .map(|(name, cc)| namespace_object(name, *cc))
                .collect(),
            slices: nodes
                .iter()
                .filter(|n| n.pool.offer == Offer::Dra)
                .map(slice_object)
                .collect(),
            ..ClusterObjects::default()
        }
    }

    /// Every object, pods and claims included.
    pub fn objects(&self) -> ClusterObjects {
        let mut objects = self.cluster();
        for node in self.nodes() {
            let (pods, claims) = self.node_pods(&node);
            objects.pods.extend(pods);
            objects.claims.extend(claims);
        }
        objects.pods.extend(self.pending_pods());
        objects
    }

    /// Allocations of the whole fleet, built node by node so that a large fleet's pods are
    /// never all held as objects at once. Same result as `allocations(&self.objects(), …)`.
    pub fn allocations(&self, card: &RateCard, options: &BuildOptions) -> AllocationSet {
        let mut builder = AllocationBuilder::for_cluster(card, options.clone(), &self.cluster());
        for node in self.nodes() {
            let (pods, claims) = self.node_pods(&node);
            builder.add_pods(pods.iter().map(|p| (p, None)), &claims);
        }
        builder.add_pods(self.pending_pods().iter().map(|p| (p, None)), &[]);
        builder.finish()
    }

    fn node_object(&self, node: &DemoNode) -> Node {
        let pool = node.pool;
        let mut labels: BTreeMap<String, String> = map(pool.labels).unwrap_or_default();
        labels.insert("kubernetes.io/hostname".into(), node.name.clone());
        labels.insert("topology.kubernetes.io/region".into(), "us-east-1".into());
        labels.insert(
            "node.kubernetes.io/instance-type".into(),
            format!("{}-x{}", pool.prefix, pool.gpus),
        );
        let mut annotations = BTreeMap::new();
        if pool.offer != Offer::Dra {
            labels.insert("nvidia.com/gpu.product".into(), pool.product.into());
            labels.insert("nvidia.com/gpu.count".into(), pool.gpus.to_string());
        }
        match pool.prefix {
            // Half the L4 and L40S nodes are spot, through GKE's and AKS's labels.
            "l4-ts" if node.index % 2 == 1 => {
                labels.insert("cloud.google.com/gke-spot".into(), "true".into());
            }
            "l40s" if node.index % 2 == 1 => {
                labels.insert(
                    "kubernetes.azure.com/scalesetpriority".into(),
                    "spot".into(),
                );
            }
            // One owned L40S node is priced by annotation, not by the rate card.
            "l40s" if node.index == 0 => {
                annotations.insert("tollgate.dev/gpu-hourly-price".into(), "1.50".into());
            }
            _ => {}
        }
        let capacity = match pool.offer {
            Offer::Whole => quantities(&[("nvidia.com/gpu", pool.gpus.to_string())]),
            Offer::Dra => BTreeMap::new(),
            Offer::Mig => quantities(&[
                ("nvidia.com/mig-3g.40gb", pool.gpus.to_string()),
                ("nvidia.com/mig-2g.20gb", (pool.gpus * 2).to_string()),
            ]),
            Offer::Shared => {
                quantities(&[("nvidia.com/gpu.shared", (pool.gpus * REPLICAS).to_string())])
            }
        };
        Node {
            metadata: ObjectMeta {
                name: Some(node.name.clone()),
                uid: Some(Rng::new(seed(&node.name, 0, 0)).uid()),
                creation_timestamp: Some(time(self.anchor - pool.age_days * DAY)),
                labels: Some(labels),
                annotations: (!annotations.is_empty()).then_some(annotations),
                ..Default::default()
            },
            status: Some(NodeStatus {
                allocatable: Some(capacity.clone()),
                capacity: Some(capacity),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn slots(node: &DemoNode) -> Vec<Slot> {
        let t = |namespace, app, workload| Tenant {
            namespace,
            app,
            workload,
        };
        let resource = |resource, count| Ask::Resource { resource, count };
        match (node.pool.prefix, node.index % 2) {
            ("h100-od", 0) => [2, 2, 1, 1, 1, 1]
                .into_iter()
                .map(|n| Slot {
                    tenant: t("inference-chat", "chat-llama-70b", Workload::Inference),
                    ask: resource("nvidia.com/gpu", n),
                })
                .collect(),
            ("h100-od", _) => vec![
                Slot {
                    tenant: t("ml-training", "finetune-llama", Workload::Training),
                    ask: resource("nvidia.com/gpu", 4),
                },
                Slot {
                    tenant: t("ml-training", "distill-mistral", Workload::Training),
                    ask: resource("nvidia.com/gpu", 4),
                },
            ],
            ("h100-spot", _) => (0..8)
                .map(|_| Slot {
                    tenant: t("batch-eval", "eval-harness", Workload::Batch),
                    ask: resource("nvidia.com/gpu", 1),
                })
                .collect(),
            ("h200-dra", _) => (0..8)
                .map(|device| Slot {
                    tenant: t("inference-search", "search-embedder", Workload::Inference),
                    ask: match device {
                        6 => Ask::SharedClaim { device },
                        7 => Ask::ExtendedClaim { device },
                        _ => Ask::TemplateClaim { device },
                    },
                })
                .collect(),
            ("a100-mig", _) => (0..node.pool.gpus)
                .flat_map(|_| {
                    [
                        ("nvidia.com/mig-3g.40gb", "ranker"),
                        ("nvidia.com/mig-2g.20gb", "candidate-gen"),
                        ("nvidia.com/mig-2g.20gb", "feature-embed"),
                    ]
                })
                .map(|(r, app)| Slot {
                    tenant: t("recsys", app, Workload::Inference),
                    ask: resource(r, 1),
                })
                .collect(),
            ("l4-ts", _) => (0..node.pool.gpus * REPLICAS)
                .map(|i| Slot {
                    tenant: if i % 2 == 0 {
                        t("research", "notebook", Workload::Batch)
                    } else {
                        t("platform-tools", "ocr-service", Workload::Inference)
                    },
                    ask: resource("nvidia.com/gpu.shared", 1),
                })
                .collect(),
            ("l40s", 1) => (0..node.pool.gpus)
                .map(|_| Slot {
                    tenant: t("inference-chat", "chat-mistral-7b", Workload::Inference),
                    ask: resource("nvidia.com/gpu", 1),
                })
                .collect(),
            ("l40s", _) => (0..node.pool.gpus)
                .map(|_| Slot {
                    tenant: t("batch-eval", "eval-vision", Workload::Batch),
                    ask: resource("nvidia.com/gpu", 1),
                })
                .collect(),
            _ => vec![Slot {
                tenant: t("research", "gh200-probe", Workload::Batch),
                ask: resource("nvidia.com/gpu", 1),
            }],
        }
    }

    /// The pods (and the claims they use) that ran on one node over the simulated history.
    fn node_pods(&self, node: &DemoNode) -> (Vec<Pod>, Vec<ResourceClaim>) {
        let mut pods = Vec::new();
        let mut claims = Vec::new();
        let created = self.anchor - node.pool.age_days * DAY;
        let history_start = (self.anchor - DEMO_DAYS * DAY).max(created);
        for (slot_index, slot) in Self::slots(node).into_iter().enumerate() {
            let mut rng = Rng::new(seed(&node.name, slot_index as u64, 1));
            let mut at = history_start + rng.between(0, 3 * HOUR);
            let mut serial = 0;
            while at < self.as_of {
                let (run, gap) = durations(slot.tenant.workload, at, &mut rng);
                let end = at + run;
                let running = end > self.as_of;
                let replicas = if matches!(slot.ask, Ask::SharedClaim { .. }) {
                    2
                } else {
                    1
                };
                let mut members = Vec::new();
                for _ in 0..replicas {
                    let name = pod_name(&slot.tenant, &mut rng);
                    let uid = rng.uid();
                    members.push((name, uid));
                }
                let claim_name = match &slot.ask {
                    Ask::Resource { .. } => None,
                    Ask::TemplateClaim { .. } => {
                        Some(format!("{}-gpu-{}", members[0].0, rng.token(5)))
                    }
                    Ask::SharedClaim { .. } => Some(format!("kv-cache-{}-{serial}", node.name)),
                    Ask::ExtendedClaim { .. } => Some(format!(
                        "{}-extended-resources-{}",
                        members[0].0,
                        rng.token(5)
                    )),
                };
                if let (Some(claim_name), Some(device)) = (&claim_name, slot.ask.device()) {
                    claims.push(claim_object(
                        &slot.tenant,
                        claim_name,
                        &node.name,
                        device,
                        &slot.ask,
                        &members,
                        rng.uid(),
                        at,
                    ));
                }
                for (name, uid) in &members {
                    let cost_center_tag = pod_cost_center(&slot.tenant, &mut rng);
                    pods.push(pod_object(PodPlan {
                        tenant: &slot.tenant,
                        name,
                        uid,
                        node: Some(&node.name),
                        ask: &slot.ask,
                        claim: claim_name.as_deref(),
                        start: at,
                        end: (!running).then_some(end),
                        cost_center: cost_center_tag,
                    }));
                }
                serial += 1;
                at = end + gap;
            }
        }
        (pods, claims)
    }

    /// Training pods waiting for eight GPUs: they hold nothing.
    fn pending_pods(&self) -> Vec<Pod> {
        let tenant = Tenant {
            namespace: "ml-training",
            app: "pretrain-8x",
            workload: Workload::Training,
        };
        let mut rng = Rng::new(seed("pending", 0, 2));
        (0..3 * self.scale)
            .map(|_| {
                let name = pod_name(&tenant, &mut rng);
                let uid = rng.uid();
                pod_object(PodPlan {
                    tenant: &tenant,
                    name: &name,
                    uid: &uid,
                    node: None,
                    ask: &Ask::Resource {
                        resource: "nvidia.com/gpu",
                        count: 8,
                    },
                    claim: None,
                    start: self.as_of - HOUR,
                    end: None,
                    cost_center: None,
                })
            })
            .collect()
    }
}

impl Ask {
    fn device(&self) -> Option<u32> {
        match self {
            Ask::Resource { .. } => None,
            Ask::TemplateClaim { device }
            | Ask::SharedClaim { device }
            | Ask::ExtendedClaim { device } => Some(*device),
        }
    }
}

fn seed(name: &str, slot: u64, salt: u64) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    }) ^ slot.wrapping_mul(0x9E37_79B9)
        ^ salt.rotate_left(48)
}

/// How long a pod runs and how long its slot then stays empty. Inference replicas scale down
/// at night (longer gaps from 22:00 to 06:00 UTC).
fn durations(workload: Workload, at: UnixSeconds, rng: &mut Rng) -> (i64, i64) {
    let night = !(6..22).contains(&(at.rem_euclid(DAY) / HOUR));
    match workload {
        Workload::Inference => {
            let run = rng.between(2 * HOUR, 14 * HOUR);
            let gap = if night {
                rng.between(HOUR, 5 * HOUR)
            } else {
                rng.between(60, HOUR)
            };
            (run, gap)
        }
        Workload::Batch => (
            rng.between(20 * 60, 6 * HOUR),
            rng.between(5 * 60, 3 * HOUR),
        ),
        Workload::Training => (
            rng.between(12 * HOUR, 60 * HOUR),
            rng.between(HOUR, 12 * HOUR),
        ),
    }
}

fn pod_name(tenant: &Tenant, rng: &mut Rng) -> String {
    match tenant.workload {
        Workload::Inference => format!("{}-{}-{}", tenant.app, rng.token(9), rng.token(5)),
        Workload::Batch | Workload::Training => {
            format!("{}-{}-{}", tenant.app, rng.token(6), rng.token(5))
        }
    }
}

/// Pods whose namespace names no cost center sometimes carry their own.
fn pod_cost_center(tenant: &Tenant, rng: &mut Rng) -> Option<(&'static str, &'static str)> {
    match tenant.namespace {
        "batch-eval" if rng.next().is_multiple_of(2) => Some(("label", "cc-300")),
        "platform-tools" => Some(("annotation", "cc-500")),
        "inference-chat" if rng.next().is_multiple_of(10) => Some(("annotation", "cc-110")),
        _ => None,
    }
}

fn namespace_object(name: &str, cost_center: Option<(&str, &str)>) -> Namespace {
    let tag = |kind: &str| match cost_center {
        Some((k, value)) if k == kind => map(&[("cost-center", value)]),
        _ => None,
    };
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            uid: Some(Rng::new(seed(name, 0, 3)).uid()),
            annotations: tag("annotation"),
            labels: tag("label"),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn slice_object(node: &DemoNode) -> ResourceSlice {
    let mut rng = Rng::new(seed(&node.name, 0, 4));
    let devices = (0..node.pool.gpus)
        .map(|minor| Device {
            name: format!("gpu-{minor}"),
            attributes: Some(BTreeMap::from([
                ("type".to_string(), text_attribute("gpu")),
                ("productName".to_string(), text_attribute(node.pool.product)),
                (
                    "uuid".to_string(),
                    text_attribute(&format!("GPU-{}", rng.uid())),
                ),
                ("architecture".to_string(), text_attribute("Hopper")),
            ])),
            ..Default::default()
        })
        .collect();
    ResourceSlice {
        metadata: ObjectMeta {
            name: Some(format!("{}-gpu.nvidia.com-{}", node.name, rng.token(5))),
            ..Default::default()
        },
        spec: ResourceSliceSpec {
            driver: "gpu.nvidia.com".into(),
            node_name: Some(node.name.clone()),
            pool: ResourcePool {
                name: node.name.clone(),
                generation: 1,
                resource_slice_count: 1,
            },
            devices: Some(devices),
            ..Default::default()
        },
    }
}

#[allow(clippy::too_many_arguments)]
fn claim_object(
    tenant: &Tenant,
    name: &str,
    node: &str,
    device: u32,
    ask: &Ask,
    members: &[(String, String)],
    uid: String,
    at: UnixSeconds,
) -> ResourceClaim {
    let extended = matches!(ask, Ask::ExtendedClaim { .. });
    let request = if extended {
        "container-0-request-0"
    } else {
        "gpu"
    };
    ResourceClaim {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(tenant.namespace.to_string()),
            uid: Some(uid),
            creation_timestamp: Some(time(at)),
            annotations: extended
                .then(|| map(&[("resource.kubernetes.io/extended-resource-claim", "true")]))
                .flatten(),
            ..Default::default()
        },
        spec: ResourceClaimSpec::default(),
        status: Some(ResourceClaimStatus {
            allocation: Some(AllocationResult {
                devices: Some(DeviceAllocationResult {
                    results: Some(vec![DeviceRequestAllocationResult {
                        request: request.into(),
                        driver: "gpu.nvidia.com".into(),
                        pool: node.to_string(),
                        device: format!("gpu-{device}"),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            reserved_for: Some(
                members
                    .iter()
                    .map(|(pod, uid)| ResourceClaimConsumerReference {
                        resource: "pods".into(),
                        name: pod.clone(),
                        uid: uid.clone(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
    }
}

struct PodPlan<'a> {
    tenant: &'a Tenant,
    name: &'a str,
    uid: &'a str,
    node: Option<&'a str>,
    ask: &'a Ask,
    claim: Option<&'a str>,
    start: UnixSeconds,
    end: Option<UnixSeconds>,
    cost_center: Option<(&'static str, &'static str)>,
}

fn pod_object(plan: PodPlan<'_>) -> Pod {
    let tenant = plan.tenant;
    let gpu_limit = match plan.ask {
        Ask::Resource { resource, count } => Some((*resource, count.to_string())),
        Ask::ExtendedClaim { .. } => Some(("nvidia.com/gpu", "1".to_string())),
        Ask::TemplateClaim { .. } | Ask::SharedClaim { .. } => None,
    };
    let mut limits = quantities(&[("memory", "64Gi".to_string())]);
    if let Some((resource, count)) = &gpu_limit {
        limits.insert(resource.to_string(), Quantity(count.clone()));
    }
    let server = Container {
        name: "server".into(),
        image: Some(format!("registry.internal/{}:2026.11", tenant.app)),
        resources: Some(ResourceRequirements {
            limits: Some(limits),
            requests: Some(quantities(&[
                ("cpu", "4".to_string()),
                ("memory", "32Gi".to_string()),
            ])),
            ..Default::default()
        }),
        ..Default::default()
    };
    let sidecar = Container {
        name: "metrics-proxy".into(),
        image: Some("registry.internal/metrics-proxy:1.4".into()),
        restart_policy: Some("Always".into()),
        ..Default::default()
    };
    let (resource_claims, claim_statuses) = match (plan.ask, plan.claim) {
        (Ask::TemplateClaim { .. }, Some(claim)) => (
            Some(vec![PodResourceClaim {
                name: "gpu".into(),
                resource_claim_template_name: Some("single-h200".into()),
                ..Default::default()
            }]),
            Some(vec![PodResourceClaimStatus {
                name: "gpu".into(),
                resource_claim_name: Some(claim.into()),
            }]),
        ),
        (Ask::SharedClaim { .. }, Some(claim)) => (
            Some(vec![PodResourceClaim {
                name: "shared".into(),
                resource_claim_name: Some(claim.into()),
                ..Default::default()
            }]),
            None,
        ),
        _ => (None, None),
    };
    let extended = match (plan.ask, plan.claim) {
        (Ask::ExtendedClaim { .. }, Some(claim)) => Some(PodExtendedResourceClaimStatus {
            resource_claim_name: claim.into(),
            request_mappings: vec![ContainerExtendedResourceRequest {
                container_name: "server".into(),
                resource_name: "nvidia.com/gpu".into(),
                request_name: "container-0-request-0".into(),
            }],
        }),
        _ => None,
    };
    let scheduled = plan.node.is_some();
    let phase = match (scheduled, plan.end) {
        (false, _) => "Pending",
        (true, None) => "Running",
        (true, Some(_)) if tenant.workload == Workload::Inference => "Failed",
        (true, Some(_)) => "Succeeded",
    };
    let terminated = plan.end.map(|end| ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: if phase == "Failed" { 143 } else { 0 },
            reason: Some(
                if phase == "Failed" {
                    "Error"
                } else {
                    "Completed"
                }
                .into(),
            ),
            started_at: Some(time(plan.start)),
            finished_at: Some(time(end)),
            ..Default::default()
        }),
        ..Default::default()
    });
    let mut labels = vec![("app", tenant.app)];
    let mut annotations = Vec::new();
    match plan.cost_center {
        Some(("label", value)) => labels.push(("cost-center", value)),
        Some((_, value)) => annotations.push(("cost-center", value)),
        None => {}
    }
    Pod {
        metadata: ObjectMeta {
            name: Some(plan.name.into()),
            namespace: Some(tenant.namespace.into()),
            uid: Some(plan.uid.into()),
            creation_timestamp: Some(time(plan.start - 5)),
            labels: map(&labels),
            annotations: map(&annotations),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: plan.node.map(str::to_string),
            containers: vec![server],
            init_containers: (tenant.workload == Workload::Inference).then(|| vec![sidecar]),
            resource_claims,
            restart_policy: Some(
                if tenant.workload == Workload::Inference {
                    "Always"
                } else {
                    "Never"
                }
                .into(),
            ),
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some(phase.into()),
            start_time: scheduled.then(|| time(plan.start)),
            conditions: Some(vec![PodCondition {
                type_: "PodScheduled".into(),
                status: if scheduled { "True" } else { "False" }.into(),
                last_transition_time: Some(time(plan.start)),
                reason: (!scheduled).then(|| "Unschedulable".into()),
                ..Default::default()
            }]),
            container_statuses: scheduled.then(|| {
                vec![ContainerStatus {
                    name: "server".into(),
                    image: format!("registry.internal/{}:2026.11", tenant.app),
                    image_id: String::new(),
                    ready: plan.end.is_none(),
                    restart_count: 0,
                    state: terminated,
                    ..Default::default()
                }]
            }),
            resource_claim_statuses: claim_statuses,
            extended_resource_claim_status: extended,
            ..Default::default()
        }),
    }
}

#[cfg(test)]
mod test {
    use std::collections::BTreeSet;

    use rust_decimal::Decimal;

    use super::*;
    use crate::allocation::{AllocationKind, CostCenterSource, allocations};
    use crate::cost::{ReportRequest, cost_report};
    use crate::pricing::PriceTier;
    use crate::time::{Interval, Step, parse_time};

    fn as_of() -> UnixSeconds {
        parse_time("2026-11-27T09:30:00Z").unwrap()
    }

    fn resolved(set: &AllocationSet) -> Vec<String> {
        let n = |s| set.names.resolve(s);
        let mut rows: Vec<String> = set
            .allocations
            .iter()
            .map(|a| {
                format!(
                    "{} {} {} {} {} {} {:?}",
                    n(a.namespace),
                    n(a.pod),
                    n(a.node),
                    a.units,
                    a.interval,
                    n(a.cost_center),
                    a.tier
                )
            })
            .collect();
        rows.sort();
        rows
    }

    #[test]
    fn the_fleet_covers_every_way_of_holding_a_gpu() {
        let fleet = DemoFleet::new(1, as_of());
        assert!(fleet.gpu_count() >= 200, "{}", fleet.gpu_count());
        let card = RateCard::builtin();
        let set = fleet.allocations(&card, &BuildOptions::new(as_of()));
        let kinds: BTreeSet<AllocationKind> = set.allocations.iter().map(|a| a.kind).collect();
        assert_eq!(kinds.len(), 4, "{kinds:?}");
        let tiers: BTreeSet<PriceTier> = set.allocations.iter().map(|a| a.tier).collect();
        assert!(tiers.contains(&PriceTier::Spot) && tiers.contains(&PriceTier::OnDemand));
        let sources: BTreeSet<CostCenterSource> = set
            .allocations
            .iter()
            .map(|a| a.cost_center_source)
            .collect();
        assert_eq!(sources.len(), 5, "{sources:?}");
        let namespaces: BTreeSet<_> = set.allocations.iter().map(|a| a.namespace).collect();
        assert!(namespaces.len() >= 6);
        let first = set
            .allocations
            .iter()
            .map(|a| a.interval.start)
            .min()
            .unwrap();
        assert!(first <= as_of() - (DEMO_DAYS - 1) * DAY);
        assert!(set.allocations.len() > 10_000, "{}", set.allocations.len());
        assert!(
            set.allocations.iter().any(|a| a.interval.end == as_of()),
            "some pods still run"
        );
        assert!(set.warnings.is_empty(), "{:?}", set.warnings);
    }

    #[test]
    fn streaming_by_node_equals_reading_all_objects_and_is_deterministic() {
        let fleet = DemoFleet::new(1, as_of());
        let card = RateCard::builtin();
        let options = BuildOptions::new(as_of());
        let streamed = resolved(&fleet.allocations(&card, &options));
        let whole = resolved(&allocations(&fleet.objects(), &card, &options));
        assert_eq!(streamed, whole);
        assert_eq!(
            streamed,
            resolved(&DemoFleet::new(1, as_of()).allocations(&card, &options))
        );
    }

    #[test]
    fn pods_never_exceed_their_nodes_so_models_recover_full_cost() {
        let fleet = DemoFleet::new(1, as_of());
        let card = RateCard::builtin();
        let set = fleet.allocations(&card, &BuildOptions::new(as_of()));
        let window = Interval::new(as_of() - 30 * DAY, as_of());
        let request = ReportRequest {
            window,
            step: Step::Day,
            group_by: "gpu_model".parse().unwrap(),
            share_unallocated: false,
        };
        let report = cost_report(&[&set], &card, &request).unwrap();
        let hours: Decimal = report.lines.iter().map(|l| l.figures.gpu_hours).sum();
        let capacity_hours: i64 = set
            .capacity
            .iter()
            .filter_map(|c| {
                c.interval
                    .clip(window)
                    .map(|i| c.units.numer() * i.seconds() / c.units.denom())
            })
            .sum();
        assert_eq!(hours, Decimal::from(capacity_hours) / Decimal::from(3600));
        // Unallocated capacity is never negative: no node is over-committed.
        let free = ReportRequest {
            group_by: "cost_center,node".parse().unwrap(),
            ..request
        };
        let report = cost_report(&[&set], &card, &free).unwrap();
        assert!(
            report
                .lines
                .iter()
                .all(|l| l.figures.gpu_hours >= Decimal::ZERO)
        );
    }
}
