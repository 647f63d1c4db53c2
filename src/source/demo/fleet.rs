//! The demo fleet's shape: node pools, namespaces, and what runs on each share of each node.

/// How a node offers its GPUs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Offer {
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
pub(super) enum Workload {
    /// Autoscaled inference replicas: hours to a day, fewer at night.
    Inference,
    /// Batch jobs: an hour or a few.
    Batch,
    /// Training: one to three days.
    Training,
}

/// One namespace's pods on one slot.
#[derive(Clone, Copy, Debug)]
pub(super) struct Tenant {
    pub(super) namespace: &'static str,
    pub(super) app: &'static str,
    pub(super) workload: Workload,
}

pub(super) struct Pool {
    pub(super) prefix: &'static str,
    pub(super) nodes: u32,
    pub(super) gpus: u32,
    pub(super) product: &'static str,
    pub(super) offer: Offer,
    pub(super) labels: &'static [(&'static str, &'static str)],
    /// Days before "as of" the pool's nodes were created.
    pub(super) age_days: i64,
}

pub(super) const POOLS: &[Pool] = &[
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

pub(super) const NAMESPACES: &[(&str, Option<(&str, &str)>)] = &[
    ("inference-chat", Some(("annotation", "cc-100"))),
    ("inference-search", Some(("label", "cc-200"))),
    ("ml-training", Some(("annotation", "cc-300"))),
    ("recsys", Some(("annotation", "cc-400"))),
    ("batch-eval", None),
    ("research", None),
    ("platform-tools", None),
];

pub(super) const REPLICAS: u32 = 4;

/// One node of the fleet, with what the simulation needs to fill it.
pub(super) struct DemoNode {
    pub(super) name: String,
    pub(super) pool: &'static Pool,
    pub(super) index: u32,
}

/// A run of pods on one share of one node.
pub(super) struct Slot {
    pub(super) tenant: Tenant,
    /// What each pod on the slot asks for.
    pub(super) ask: Ask,
}

#[derive(Clone, Debug)]
pub(super) enum Ask {
    /// Extended resource `resource` × `count`.
    Resource { resource: &'static str, count: u32 },
    /// A template claim for DRA device `gpu-<device>`.
    TemplateClaim { device: u32 },
    /// A claim for `gpu-<device>` shared by two pods that run side by side.
    SharedClaim { device: u32 },
    /// `nvidia.com/gpu: 1` served by a scheduler-made claim for `gpu-<device>`.
    ExtendedClaim { device: u32 },
}

impl Ask {
    pub(super) fn device(&self) -> Option<u32> {
        match self {
            Ask::Resource { .. } => None,
            Ask::TemplateClaim { device }
            | Ask::SharedClaim { device }
            | Ask::ExtendedClaim { device } => Some(*device),
        }
    }
}

/// The shares of `node` and what each runs.
pub(super) fn slots(node: &DemoNode) -> Vec<Slot> {
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
