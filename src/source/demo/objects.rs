//! The demo fleet as Kubernetes objects — its nodes, namespaces and DRA slices, and its runs'
//! pods and claims: what `kubectl get -o json` would show, cut to the fields Tollgate reads (what a watcher keeps of a pod after stripping it), so that a
//! large fleet's month is quick to build. No images, CPU or memory requests.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerExtendedResourceRequest, ContainerState, ContainerStateTerminated,
    ContainerStatus, Namespace, Node, NodeStatus, Pod, PodCondition,
    PodExtendedResourceClaimStatus, PodResourceClaim, PodResourceClaimStatus, PodSpec, PodStatus,
    ResourceRequirements,
};
use k8s_openapi::api::resource::v1::{
    AllocationResult, CELDeviceSelector, Device, DeviceAllocationResult, DeviceAttribute,
    DeviceClaim, DeviceRequest, DeviceRequestAllocationResult, DeviceSelector, ExactDeviceRequest,
    ResourceClaim, ResourceClaimConsumerReference, ResourceClaimSpec, ResourceClaimStatus,
    ResourceClaimTemplate, ResourceClaimTemplateSpec, ResourcePool, ResourceSlice,
    ResourceSliceSpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use super::fleet::{Ask, DemoNode, Offer, REPLICAS, Slot, Tenant, Workload};
use super::timeline::{DAY, Member, Rng, Run, RunClaim, seed};
use crate::time::UnixSeconds;

pub(super) fn time(seconds: UnixSeconds) -> Time {
    Time(jiff::Timestamp::from_second(seconds).unwrap_or(jiff::Timestamp::UNIX_EPOCH))
}

pub(super) fn map(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    (!pairs.is_empty()).then(|| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    })
}

pub(super) fn quantities(pairs: &[(&str, String)]) -> BTreeMap<String, Quantity> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Quantity(v.clone())))
        .collect()
}

pub(super) fn text_attribute(value: &str) -> DeviceAttribute {
    DeviceAttribute {
        string: Some(value.to_string()),
        ..Default::default()
    }
}

/// The pods of `run` on `node` (and the claim they share), as seen at `as_of`: finished if the
/// run ended by then, else running.
pub(super) fn run_objects(
    run: &Run,
    node: &DemoNode,
    slot: &Slot,
    as_of: UnixSeconds,
) -> (Vec<Pod>, Option<ResourceClaim>) {
    let pods = run
        .members
        .iter()
        .map(|member| pod_object(member_plan(run, node, slot, as_of, member)))
        .collect();
    (pods, run_claim(run, node, slot))
}

/// The claim the pods of `run` on `node` share, if they share one.
pub(super) fn run_claim(run: &Run, node: &DemoNode, slot: &Slot) -> Option<ResourceClaim> {
    run.claim
        .as_ref()
        .zip(slot.ask.device())
        .map(|(claim, device)| {
            claim_object(
                &slot.tenant,
                claim,
                &node.name,
                device,
                &slot.ask,
                &run.members,
                run.start,
            )
        })
}

/// Each pod of `run` on `node` as [`run_objects`] makes it, lent to `each` where it was made:
/// a `Pod` is 2,248 bytes before what it points to, and a month of a large fleet is over a
/// million of them, none of which need be moved to be read.
pub(super) fn each_run_pod(
    run: &Run,
    node: &DemoNode,
    slot: &Slot,
    as_of: UnixSeconds,
    mut each: impl FnMut(&Pod),
) {
    for member in &run.members {
        let pod = pod_object(member_plan(run, node, slot, as_of, member));
        each(&pod);
    }
}

/// What the pod of `member` of `run` is made from.
fn member_plan<'a>(
    run: &'a Run,
    node: &'a DemoNode,
    slot: &'a Slot,
    as_of: UnixSeconds,
    member: &'a Member,
) -> PodPlan<'a> {
    PodPlan {
        tenant: &slot.tenant,
        name: &member.name,
        uid: &member.uid,
        node: Some(&node.name),
        ask: &slot.ask,
        claim: run.claim.as_ref().map(|c| c.name.as_str()),
        start: run.start,
        end: (run.end <= as_of).then_some(run.end),
        cost_center: member.cost_center,
    }
}

fn claim_object(
    tenant: &Tenant,
    claim: &RunClaim,
    node: &str,
    device: u32,
    ask: &Ask,
    members: &[Member],
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
            name: Some(claim.name.clone()),
            namespace: Some(tenant.namespace.to_string()),
            uid: Some(claim.uid.clone()),
            creation_timestamp: Some(time(at)),
            annotations: extended
                .then(|| map(&[("resource.kubernetes.io/extended-resource-claim", "true")]))
                .flatten(),
            ..Default::default()
        },
        spec: one_gpu(request, None),
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
                    .map(|member| ResourceClaimConsumerReference {
                        resource: "pods".into(),
                        name: member.name.clone(),
                        uid: member.uid.clone(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
    }
}

/// A claim spec asking for one GPU of NVIDIA's DRA driver, of `product` when given.
fn one_gpu(request: &str, product: Option<&str>) -> ResourceClaimSpec {
    let selectors = product.map(|product| {
        vec![DeviceSelector {
            cel: Some(CELDeviceSelector {
                expression: format!(
                    "device.attributes[\"gpu.nvidia.com\"].productName == \"{product}\""
                ),
            }),
        }]
    });
    ResourceClaimSpec {
        devices: Some(DeviceClaim {
            requests: Some(vec![DeviceRequest {
                name: request.to_string(),
                exactly: Some(ExactDeviceRequest {
                    device_class_name: "gpu.nvidia.com".into(),
                    selectors,
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

/// The claim template the fleet's DRA pods name (`single-h200`), in `namespace`.
pub(super) fn template_object(namespace: &str) -> ResourceClaimTemplate {
    ResourceClaimTemplate {
        metadata: ObjectMeta {
            name: Some(SINGLE_H200.into()),
            namespace: Some(namespace.into()),
            uid: Some(format!("template-{namespace}-{SINGLE_H200}")),
            ..Default::default()
        },
        spec: ResourceClaimTemplateSpec {
            metadata: None,
            spec: one_gpu("gpu", Some("NVIDIA H200")),
        },
    }
}

/// The claim template of the fleet's DRA pods.
const SINGLE_H200: &str = "single-h200";

pub(super) struct PodPlan<'a> {
    pub(super) tenant: &'a Tenant,
    pub(super) name: &'a str,
    pub(super) uid: &'a str,
    pub(super) node: Option<&'a str>,
    pub(super) ask: &'a Ask,
    pub(super) claim: Option<&'a str>,
    pub(super) start: UnixSeconds,
    pub(super) end: Option<UnixSeconds>,
    pub(super) cost_center: Option<(&'static str, &'static str)>,
}

pub(super) fn pod_object(plan: PodPlan<'_>) -> Pod {
    let tenant = plan.tenant;
    let gpu_limit = match plan.ask {
        Ask::Resource { resource, count } => Some((*resource, count.to_string())),
        Ask::ExtendedClaim { .. } => Some(("nvidia.com/gpu", "1".to_string())),
        Ask::TemplateClaim { .. } | Ask::SharedClaim { .. } => None,
    };
    let server = Container {
        name: "server".into(),
        resources: gpu_limit.map(|(resource, count)| ResourceRequirements {
            limits: Some(quantities(&[(resource, count)])),
            ..Default::default()
        }),
        ..Default::default()
    };
    let (resource_claims, claim_statuses) = match (plan.ask, plan.claim) {
        (Ask::TemplateClaim { .. }, Some(claim)) => (
            Some(vec![PodResourceClaim {
                name: "gpu".into(),
                resource_claim_template_name: Some(SINGLE_H200.into()),
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
    let finished = plan.end.map(|end| {
        vec![ContainerStatus {
            name: "server".into(),
            state: Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: if phase == "Failed" { 143 } else { 0 },
                    finished_at: Some(time(end)),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }]
    });
    let (mut labels, mut annotations) = (Vec::new(), Vec::new());
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
            labels: map(&labels),
            annotations: map(&annotations),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: plan.node.map(str::to_string),
            containers: vec![server],
            resource_claims,
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some(phase.into()),
            start_time: scheduled.then(|| time(plan.start)),
            // A pod waiting for room says why; a scheduled one has its start time.
            conditions: (!scheduled).then(|| {
                vec![PodCondition {
                    type_: "PodScheduled".into(),
                    status: "False".into(),
                    reason: Some("Unschedulable".into()),
                    ..Default::default()
                }]
            }),
            container_statuses: finished,
            resource_claim_statuses: claim_statuses,
            extended_resource_claim_status: extended,
            ..Default::default()
        }),
    }
}

/// The Node object of `node`, created `age_days` before `anchor`.
pub(super) fn node_object(node: &DemoNode, anchor: UnixSeconds) -> Node {
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
            creation_timestamp: Some(time(anchor - pool.age_days * DAY)),
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

pub(super) fn namespace_object(name: &str, cost_center: Option<(&str, &str)>) -> Namespace {
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

pub(super) fn slice_object(node: &DemoNode) -> ResourceSlice {
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
