//! Allocation tests over the fixture snapshot (`tests/fixtures/snapshot`, the JSON shape
//! `kubectl get -o json` prints): one pod per path of SPEC §1 and per known trap.

use std::path::Path;

use k8s_openapi::api::core::v1::ResourceRequirements;

use serde_json::{Value, json};

use super::*;
use crate::pricing::RateCard;
use crate::source::read_snapshot;
use crate::time::parse_time;

/// The objects of the snapshot in `tests/fixtures/<dir>`, and the fixture's rate card.
fn snapshot(dir: &str) -> (ClusterObjects, RateCard) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let objects = read_snapshot(&root.join(dir)).unwrap();
    let card = RateCard::load(&root.join("rates.toml")).unwrap();
    (objects, card)
}

fn fixture() -> (ClusterObjects, RateCard) {
    snapshot("snapshot")
}

fn as_of() -> UnixSeconds {
    parse_time("2026-11-02T00:00:00Z").unwrap()
}

fn built() -> AllocationSet {
    let (objects, card) = fixture();
    allocations(&objects, &card, &BuildOptions::new(as_of()))
}

/// The fixture's pod `name`, to change before allocations are built.
fn fixture_pod<'a>(objects: &'a mut ClusterObjects, name: &str) -> &'a mut Pod {
    objects
        .pods
        .iter_mut()
        .find(|p| p.metadata.name.as_deref() == Some(name))
        .unwrap()
}

/// The devices of the ResourceSlice of node `node`, to change before allocations are built.
fn node_devices<'a>(
    objects: &'a mut ClusterObjects,
    node: &str,
) -> &'a mut Vec<k8s_openapi::api::resource::v1::Device> {
    let slice = objects
        .slices
        .iter_mut()
        .find(|s| s.spec.node_name.as_deref() == Some(node))
        .unwrap();
    slice.spec.devices.as_mut().unwrap()
}

/// The allocation results of the claim `name`, to change before allocations are built.
fn claim_results<'a>(
    objects: &'a mut ClusterObjects,
    name: &str,
) -> &'a mut Vec<k8s_openapi::api::resource::v1::DeviceRequestAllocationResult> {
    let claim = objects
        .claims
        .iter_mut()
        .find(|c| c.metadata.name.as_deref() == Some(name))
        .unwrap();
    let allocation = claim.status.as_mut().unwrap().allocation.as_mut().unwrap();
    allocation
        .devices
        .as_mut()
        .unwrap()
        .results
        .as_mut()
        .unwrap()
}

/// A result's `consumedCapacity` of `amount` of `capacity`.
fn consumed(
    capacity: &str,
    amount: &str,
) -> Option<
    std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
> {
    Some(
        [(
            capacity.to_string(),
            k8s_openapi::apimachinery::pkg::api::resource::Quantity(amount.into()),
        )]
        .into(),
    )
}

/// `(kind, units, product, start, end, cost center, source)` of every allocation of a pod.
fn held(
    set: &AllocationSet,
    pod: &str,
) -> Vec<(
    AllocationKind,
    String,
    String,
    String,
    String,
    String,
    CostCenterSource,
)> {
    let name = |sym| set.names.resolve(sym).to_string();
    set.allocations
        .iter()
        .filter(|a| set.names.resolve(a.pod) == pod)
        .map(|a| {
            (
                a.kind,
                a.units.to_string(),
                name(a.product),
                crate::time::format_time(a.interval.start),
                crate::time::format_time(a.interval.end),
                name(a.cost_center),
                a.cost_center_source,
            )
        })
        .collect()
}

/// The GPUs of each capacity record of node `node`.
fn node_units(set: &AllocationSet, node: &str) -> Vec<String> {
    set.capacity
        .iter()
        .filter(|c| set.names.resolve(c.node) == node)
        .map(|c| c.units.to_string())
        .collect()
}

fn units(set: &AllocationSet, pod: &str) -> Vec<(AllocationKind, String)> {
    held(set, pod).into_iter().map(|h| (h.0, h.1)).collect()
}

#[test]
fn whole_gpus_from_limits_without_requests() {
    let set = built();
    let chat = held(&set, "chat-0");
    assert_eq!(chat.len(), 1);
    assert_eq!(chat[0].0, AllocationKind::Gpu);
    assert_eq!(chat[0].1, "2");
    assert_eq!(chat[0].2, "NVIDIA-H100-80GB-HBM3");
    // Running: from its start (before any window) to as-of.
    assert_eq!(
        (chat[0].3.as_str(), chat[0].4.as_str()),
        ("2026-10-31T20:00:00Z", "2026-11-02T00:00:00Z")
    );
    assert_eq!(
        (chat[0].5.as_str(), chat[0].6),
        ("cc-100", CostCenterSource::NamespaceAnnotation)
    );
}

#[test]
fn an_init_container_larger_than_the_app_sets_the_demand() {
    let set = built();
    let train = held(&set, "train-0");
    assert_eq!(
        units(&set, "train-0"),
        vec![(AllocationKind::Gpu, "4".into())]
    );
    // Succeeded: ends at the container's finishedAt.
    assert_eq!(
        (train[0].3.as_str(), train[0].4.as_str()),
        ("2026-11-01T06:00:00Z", "2026-11-01T10:00:00Z")
    );
    assert_eq!(train[0].6, CostCenterSource::NamespaceLabel);
}

#[test]
fn a_sidecar_adds_to_the_app_containers() {
    let set = built();
    assert_eq!(
        units(&set, "serve-0"),
        vec![(AllocationKind::Gpu, "2".into())]
    );
    assert_eq!(held(&set, "serve-0")[0].6, CostCenterSource::PodAnnotation);
}

#[test]
fn spot_nodes_and_failed_pods() {
    let set = built();
    let spot: Vec<_> = set
        .allocations
        .iter()
        .filter(|a| set.names.resolve(a.node) == "node-h100-spot")
        .map(|a| a.tier)
        .collect();
    assert_eq!(spot, vec![crate::pricing::PriceTier::Spot; 2]);
    let crash = held(&set, "crash-0");
    assert_eq!(
        (crash[0].3.as_str(), crash[0].4.as_str()),
        ("2026-11-01T20:00:00Z", "2026-11-01T21:30:00Z")
    );
    assert_eq!(held(&set, "batch-0")[0].6, CostCenterSource::PodLabel);
}

#[test]
fn mig_slices_are_fractions_of_their_gpu() {
    let set = built();
    assert_eq!(
        units(&set, "mig-0"),
        vec![(AllocationKind::Mig, "3/7".into())]
    );
    // A30 has four compute slices: 2 × 1g.6gb is half a GPU.
    assert_eq!(
        units(&set, "a30-0"),
        vec![(AllocationKind::Mig, "1/2".into())]
    );
    assert_eq!(held(&set, "mig-0")[0].6, CostCenterSource::Default);
}

#[test]
fn slices_of_two_profiles_are_one_holding_of_their_sum() {
    let (mut objects, card) = fixture();
    let pod = fixture_pod(&mut objects, "mig-0");
    let spec = pod.spec.as_mut().unwrap();
    let mut second = spec.containers[0].clone();
    second.name = "second".into();
    second.resources = Some(ResourceRequirements {
        limits: Some(
            [(
                "nvidia.com/mig-1g.5gb".to_string(),
                k8s_openapi::apimachinery::pkg::api::resource::Quantity("2".into()),
            )]
            .into(),
        ),
        ..Default::default()
    });
    spec.containers.push(second);
    let set = allocations(&objects, &card, &BuildOptions::new(as_of()));
    // An A100 has seven compute slices: 3g.20gb is 3/7, two 1g.5gb are 2/7; one MIG holding of
    // the pod on the node's GPU model, not two.
    assert_eq!(
        units(&set, "mig-0"),
        vec![(AllocationKind::Mig, "5/7".into())]
    );
}

#[test]
fn time_sliced_gpus_are_shares_of_a_gpu() {
    let set = built();
    assert_eq!(
        units(&set, "ts-0"),
        vec![(AllocationKind::Shared, "1/4".into())]
    );
    // The -SHARED suffix GFD adds is not part of the model.
    assert_eq!(held(&set, "ts-0")[0].2, "NVIDIA-L4");
}

#[test]
fn dra_claims_from_templates_shared_claims_and_extended_resources() {
    let set = built();
    let dra = held(&set, "dra-0");
    assert_eq!(
        units(&set, "dra-0"),
        vec![(AllocationKind::Dra, "1".into())]
    );
    // No product label on the node: the model comes from the ResourceSlice, with the memory
    // its device's capacity states.
    assert_eq!(dra[0].2, "NVIDIA H200 140GB");
    assert_eq!(
        units(&set, "shared-0"),
        vec![(AllocationKind::Dra, "1/2".into())]
    );
    assert_eq!(
        units(&set, "shared-1"),
        vec![(AllocationKind::Dra, "1/2".into())]
    );
    // The extended-resource claim serves nvidia.com/gpu: 1, counted once, not again as a limit.
    assert_eq!(
        units(&set, "ext-0"),
        vec![(AllocationKind::Dra, "1".into())]
    );
    assert_eq!(
        units(&set, "mig-dra-0"),
        vec![(AllocationKind::Dra, "1/7".into())]
    );
    let claim_ids: Vec<&str> = set
        .allocations
        .iter()
        .filter(|a| a.kind == AllocationKind::Dra)
        .map(|a| set.names.resolve(a.resource_id))
        .collect();
    assert!(claim_ids.iter().all(|id| id.len() == 36), "{claim_ids:?}");
}

#[test]
fn a_claim_counts_only_the_pods_it_is_reserved_for() {
    // shared-kv (one H200) lists only shared-0 now. shared-0 holds all of it; shared-1, which
    // still names the claim, holds nothing of it (counting it too would make 1 + 1/2 GPUs of one).
    let (mut objects, card) = fixture();
    let claim = objects
        .claims
        .iter_mut()
        .find(|c| c.metadata.name.as_deref() == Some("shared-kv"))
        .unwrap();
    let reserved = claim
        .status
        .as_mut()
        .unwrap()
        .reserved_for
        .as_mut()
        .unwrap();
    reserved.retain(|r| r.name == "shared-0");
    let set = allocations(&objects, &card, &BuildOptions::new(as_of()));
    assert_eq!(
        units(&set, "shared-0"),
        vec![(AllocationKind::Dra, "1".into())]
    );
    assert!(units(&set, "shared-1").is_empty());
    assert!(
        set.warnings.iter().any(|w| w
            == "pod team-e/shared-1: ResourceClaim team-e/shared-kv is reserved for other pods, not this one; its devices are counted for the pods it lists"),
        "{:?}",
        set.warnings
    );
}

#[test]
fn pending_pods_and_pods_after_as_of_hold_nothing() {
    let set = built();
    assert!(held(&set, "pending-0").is_empty());
    let (objects, card) = fixture();
    let early = allocations(
        &objects,
        &card,
        &BuildOptions::new(parse_time("2026-11-01T05:00:00Z").unwrap()),
    );
    assert!(
        early
            .allocations
            .iter()
            .all(|a| a.interval.end <= parse_time("2026-11-01T05:00:00Z").unwrap())
    );
    assert!(
        !early
            .allocations
            .iter()
            .any(|a| early.names.resolve(a.pod) == "l40s-0")
    );
    // The L40S node was created after that as-of: it has no capacity yet either.
    assert!(
        !early
            .capacity
            .iter()
            .any(|c| early.names.resolve(c.node) == "node-l40s")
    );
}

#[test]
fn node_capacity_from_labels_advertised_resources_and_dra_devices() {
    let set = built();
    let capacity = |node: &str| -> Vec<(String, String)> {
        set.capacity
            .iter()
            .filter(|c| set.names.resolve(c.node) == node)
            .map(|c| {
                (
                    set.names.resolve(c.product).to_string(),
                    c.units.to_string(),
                )
            })
            .collect()
    };
    assert_eq!(
        capacity("node-h100"),
        vec![("NVIDIA-H100-80GB-HBM3".into(), "8".into())]
    );
    // No gpu.count label: 8 time-sliced replicas ÷ 4 = 2 GPUs.
    assert_eq!(
        capacity("node-l4-ts"),
        vec![("NVIDIA-L4".into(), "2".into())]
    );
    // DRA: four GPU devices; the MIG device's parent is one of them and is not counted twice.
    assert_eq!(
        capacity("node-h200-dra"),
        vec![("NVIDIA H200 140GB".into(), "4".into())]
    );
    let l40s = set
        .capacity
        .iter()
        .find(|c| set.names.resolve(c.node) == "node-l40s")
        .unwrap();
    assert_eq!(
        crate::time::format_time(l40s.interval.start),
        "2026-11-01T06:00:00Z"
    );
    let colo = set
        .capacity
        .iter()
        .find(|c| set.names.resolve(c.node) == "node-colo")
        .unwrap();
    assert_eq!(colo.price_override, Some(rust_decimal::Decimal::ONE));
    assert!(set.warnings.is_empty(), "{:?}", set.warnings);
}

#[test]
fn a_pool_is_what_its_newest_slices_say() {
    // node-h200-dra's pool, generation 1 in the fixture, is republished as generation 2 after
    // its fifth GPU (gpu-4) fell off the bus; the generation-1 slice, still listing gpu-4, is
    // not deleted yet. Consumers read only a pool's highest generation: the node has the 4
    // GPUs of generation 2 (5 when the stale slice's GPU was counted too). dra-0's claim was
    // allocated gpu-4 from generation 1: its device is still found there (one H200, nothing
    // said), not counted as a device in no ResourceSlice.
    let (mut objects, card) = fixture();
    let mut stale = objects.slices[0].clone();
    stale.metadata.name = Some("node-h200-dra-gpu.nvidia.com-old".into());
    let mut gone = stale.spec.devices.as_ref().unwrap()[0].clone();
    gone.name = "gpu-4".into();
    let attributes = gone.attributes.as_mut().unwrap();
    attributes.get_mut("uuid").unwrap().string =
        Some("GPU-0d3c2b1a-4e5f-4a6b-8c7d-9e0f1a2b3c4d".into());
    stale.spec.devices.as_mut().unwrap().push(gone);
    objects.slices[0].spec.pool.generation = 2;
    objects.slices.push(stale);
    claim_results(&mut objects, "dra-0-gpu-x7k2p")[0].device = "gpu-4".into();
    let set = allocations(&objects, &card, &BuildOptions::new(as_of()));
    assert_eq!(node_units(&set, "node-h200-dra"), ["4"]);
    let dra = held(&set, "dra-0");
    assert_eq!((dra[0].0, dra[0].1.as_str()), (AllocationKind::Dra, "1"));
    assert_eq!(dra[0].2, "NVIDIA H200 140GB");
    assert!(set.warnings.is_empty(), "{:?}", set.warnings);
}

#[test]
fn the_cost_center_key_is_configurable() {
    let (objects, card) = fixture();
    let options = BuildOptions {
        as_of: as_of(),
        cost_center_key: "team".into(),
    };
    let set = allocations(&objects, &card, &options);
    assert!(
        set.allocations
            .iter()
            .all(|a| set.names.resolve(a.cost_center) == UNASSIGNED)
    );
}

#[test]
fn missing_claims_and_unknown_nodes_are_warned_about() {
    let (mut objects, card) = fixture();
    objects.claims.clear();
    objects
        .nodes
        .retain(|n| n.metadata.name.as_deref() != Some("node-h100"));
    let set = allocations(&objects, &card, &BuildOptions::new(as_of()));
    assert!(held(&set, "dra-0").is_empty());
    let warnings: Vec<&String> = set.warnings.iter().collect();
    assert!(
        warnings
            .iter()
            .any(|w| w
                .contains("pod team-e/dra-0: ResourceClaim team-e/dra-0-gpu-x7k2p was not found")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("node node-h100 is not among the nodes read")),
        "{warnings:?}"
    );
    // The pods on the missing node still count, with an unknown model.
    assert_eq!(held(&set, "chat-0")[0].2, "");
}

#[test]
fn a_pod_seen_deleted_ends_when_it_was_seen() {
    let (objects, _) = fixture();
    let chat = objects
        .pods
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some("chat-0"))
        .unwrap();
    let seen = parse_time("2026-11-01T03:00:00Z").unwrap();
    assert_eq!(
        pod_interval(chat, as_of(), Some(seen)).ok().map(|i| i.end),
        Some(seen)
    );
    assert_eq!(
        pod_interval(chat, as_of(), None).ok().map(|i| i.end),
        Some(as_of())
    );
}

#[test]
fn bad_quantities_are_reported_not_zeroed() {
    // Not a quantity; and quantities Kubernetes refuses for an extended resource: a negative
    // count (once dropped without a word) and parts of a device (once counted as such).
    for (quantity, why) in [
        ("two", "it does not start with a number"),
        ("-1", "a count of devices is a whole number"),
        ("500m", "a count of devices is a whole number"),
        ("1.5", "a count of devices is a whole number"),
    ] {
        let (mut objects, card) = fixture();
        let pod = fixture_pod(&mut objects, "chat-0");
        let container = &mut pod.spec.as_mut().unwrap().containers[0];
        let limits = container
            .resources
            .as_mut()
            .unwrap()
            .limits
            .as_mut()
            .unwrap();
        limits.insert(
            "nvidia.com/gpu".into(),
            k8s_openapi::apimachinery::pkg::api::resource::Quantity(quantity.into()),
        );
        let set = allocations(&objects, &card, &BuildOptions::new(as_of()));
        assert!(held(&set, "chat-0").is_empty(), "{quantity}");
        let said = format!("pod team-a/chat-0: invalid Kubernetes quantity \"{quantity}\": {why}");
        assert!(
            set.warnings.iter().any(|w| w.contains(&said)),
            "{said}: {:?}",
            set.warnings
        );
    }
}

#[test]
fn a_node_price_annotation_tollgate_cannot_take_is_warned_about_and_the_card_applies() {
    // `node-colo` is annotated 1.00 an hour in the fixture. The highest price taken is 10¹²
    // an hour; a cent more, a negative price or no number at all leaves the rate card's.
    for (annotation, taken, why) in [
        ("1000000000000", Some(1_000_000_000_000_i64.into()), None),
        (
            "1000000000000.01",
            None,
            Some(
                "1000000000000.01 an hour is above the highest price Tollgate takes (1000000000000 an hour)",
            ),
        ),
        ("-1", None, Some("a price cannot be negative")),
        ("one", None, Some("it is not a decimal price")),
    ] {
        let (mut objects, card) = fixture();
        let colo = objects
            .nodes
            .iter_mut()
            .find(|n| n.metadata.name.as_deref() == Some("node-colo"))
            .unwrap();
        colo.metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert("tollgate.dev/gpu-hourly-price".into(), annotation.into());
        let set = allocations(&objects, &card, &BuildOptions::new(as_of()));
        let colo = set
            .capacity
            .iter()
            .find(|c| set.names.resolve(c.node) == "node-colo")
            .unwrap();
        assert_eq!(colo.price_override, taken, "{annotation}");
        match why {
            None => assert!(set.warnings.is_empty(), "{:?}", set.warnings),
            Some(why) => assert_eq!(
                set.warnings,
                std::collections::BTreeSet::from([format!(
                    "node node-colo: annotation tollgate.dev/gpu-hourly-price={annotation:?}: {why}; the rate card applies"
                )])
            ),
        }
    }
}

#[test]
fn amd_partitions_without_a_mode_are_said_and_auto_partitions_are_consumed_parts() {
    // tests/fixtures/shapes/amd-dra: small-0's claim holds three CPX partitions of an MI300X
    // (3/8 of a GPU). Without their partitionProfile, each is a whole GPU, with a warning.
    let (objects, _) = snapshot("shapes/amd-dra");
    let card = RateCard::builtin();
    let build = |objects: &ClusterObjects| allocations(objects, &card, &BuildOptions::new(as_of()));
    assert_eq!(
        units(&build(&objects), "small-0"),
        vec![(AllocationKind::Dra, "3/8".into())]
    );
    let mut unreadable = objects.clone();
    for device in node_devices(&mut unreadable, "mi300x-dra-cpx") {
        device
            .attributes
            .as_mut()
            .unwrap()
            .remove("partitionProfile");
    }
    let set = build(&unreadable);
    assert_eq!(
        units(&set, "small-0"),
        vec![(AllocationKind::Dra, "3".into())]
    );
    assert!(
        set.warnings.iter().any(|w| w
            == "ResourceClaim shapes/three-cpx: device gpu-9-137 is part of a GPU whose size cannot be read (no MIG profile or partition mode); counted as a whole GPU"),
        "{:?}",
        set.warnings
    );
    // Auto-partition (the driver's AutoPartition gate): one device stands for a GPU in CPX
    // mode, offering 8 `partitions`; a claim consuming 3 of them holds 3/8 of the GPU, and
    // the node offers that one GPU however many modes it publishes devices for.
    let mut auto = objects.clone();
    let devices = node_devices(&mut auto, "mi300x-dra-cpx");
    let mut virtual_device = devices[0].clone();
    let mode = |mode: &str| k8s_openapi::api::resource::v1::DeviceAttribute {
        string: Some(mode.into()),
        ..Default::default()
    };
    let attributes = virtual_device.attributes.as_mut().unwrap();
    attributes.remove("partitionProfile");
    attributes.insert("computePartition".into(), mode("cpx"));
    attributes.insert("memoryPartition".into(), mode("nps4"));
    virtual_device.capacity = Some(
        [(
            "partitions".to_string(),
            k8s_openapi::api::resource::v1::DeviceCapacity {
                value: k8s_openapi::apimachinery::pkg::api::resource::Quantity("8".into()),
                ..Default::default()
            },
        )]
        .into(),
    );
    let mut spx = virtual_device.clone();
    spx.name = "gpu-0-spx-nps1".into();
    spx.attributes
        .as_mut()
        .unwrap()
        .insert("type".into(), mode("amdgpu"));
    virtual_device.name = "gpu-0-cpx-nps4".into();
    *devices = vec![virtual_device, spx];
    let results = claim_results(&mut auto, "three-cpx");
    results.truncate(1);
    results[0].device = "gpu-0-cpx-nps4".into();
    results[0].consumed_capacity = consumed("partitions", "3");
    let set = build(&auto);
    assert_eq!(
        units(&set, "small-0"),
        vec![(AllocationKind::Dra, "3/8".into())]
    );
    let offered: Vec<String> = set
        .capacity
        .iter()
        .filter(|c| set.names.resolve(c.node) == "mi300x-dra-cpx")
        .map(|c| c.units.to_string())
        .collect();
    assert_eq!(offered, ["1"]);
}

#[test]
fn a_device_given_with_admin_access_is_not_held_by_the_monitoring_pod() {
    // tests/fixtures/shapes/dra-shares: share-1 (pod infer-1) is given its H100 with admin
    // access, as a monitoring agent's claim is (DRAAdminAccess): the device is someone else's
    // or nobody's, so infer-1 holds nothing of it and infer-0 keeps its quarter.
    let (mut objects, card) = snapshot("shapes/dra-shares");
    let result = &mut claim_results(&mut objects, "share-1")[0];
    result.admin_access = Some(true);
    result.consumed_capacity = None;
    let set = allocations(&objects, &card, &BuildOptions::new(as_of()));
    assert_eq!(
        units(&set, "infer-0"),
        vec![(AllocationKind::Dra, "1/4".into())]
    );
    assert_eq!(units(&set, "infer-1"), vec![]);
    assert!(
        !set.warnings.iter().any(|w| w.contains("share-1")),
        "{:?}",
        set.warnings
    );
}

#[test]
fn a_consumed_share_that_cannot_be_right_is_warned_about_never_charged_as_nothing_unsaid() {
    // tests/fixtures/shapes/dra-shares: an H100 published with 80Gi of memory, share-0 (pod
    // infer-0) and share-1 (infer-1) each consuming 20Gi of it: a quarter each. share-1's
    // amount is changed; infer-0 keeps its quarter throughout.
    let (objects, card) = snapshot("shapes/dra-shares");
    let with_share_1 = |amount: &str| {
        let mut objects = objects.clone();
        claim_results(&mut objects, "share-1")[0].consumed_capacity = consumed("memory", amount);
        let set = allocations(&objects, &card, &BuildOptions::new(as_of()));
        assert_eq!(
            units(&set, "infer-0"),
            vec![(AllocationKind::Dra, "1/4".into())]
        );
        let about_share_1: Vec<String> = set
            .warnings
            .iter()
            .filter(|w| w.contains("share-1"))
            .cloned()
            .collect();
        (units(&set, "infer-1"), about_share_1)
    };
    let not_sized = "ResourceClaim shapes/share-1: the capacity it consumes of device gpu-0 cannot \
                   be sized against what the device offers; counted as the whole device";
    // 40Gi of 80Gi: half, no warning.
    assert_eq!(
        with_share_1("40Gi"),
        (vec![(AllocationKind::Dra, "1/2".into())], vec![])
    );
    // Below zero, as not a quantity at all: the whole device, said.
    for amount in ["-20Gi", "lots"] {
        assert_eq!(
            with_share_1(amount),
            (
                vec![(AllocationKind::Dra, "1".into())],
                vec![not_sized.to_string()]
            ),
            "{amount}"
        );
    }
    // More than the device has: the whole device, said.
    assert_eq!(
        with_share_1("200Gi"),
        (
            vec![(AllocationKind::Dra, "1".into())],
            vec![
                "ResourceClaim shapes/share-1: it consumes 200Gi of memory, more than device \
                 gpu-0 offers; counted as the whole device"
                    .to_string()
            ]
        )
    );
    // Nothing: it holds nothing, and the report says so.
    assert_eq!(
        with_share_1("0"),
        (
            vec![],
            vec![
                "ResourceClaim shapes/share-1: it consumes none of what device gpu-0 offers; it \
                 holds nothing of it"
                    .to_string()
            ]
        )
    );
}

#[test]
fn a_node_advertising_a_count_of_gpus_below_zero_or_in_parts_is_not_counted_and_said() {
    // node-l4-ts has no gpu.count label and is time-sliced 4 ways: its capacity is what it
    // advertises ÷ 4. Kubernetes advertises a device plugin's resource only as a whole number.
    let (objects, card) = fixture();
    let advertising = |count: &str| {
        let mut objects = objects.clone();
        let node = objects
            .nodes
            .iter_mut()
            .find(|n| n.metadata.name.as_deref() == Some("node-l4-ts"))
            .unwrap();
        let capacity = node.status.as_mut().unwrap().capacity.as_mut().unwrap();
        capacity.insert(
            "nvidia.com/gpu".into(),
            k8s_openapi::apimachinery::pkg::api::resource::Quantity(count.into()),
        );
        let set = allocations(&objects, &card, &BuildOptions::new(as_of()));
        let units = node_units(&set, "node-l4-ts");
        let said: Vec<String> = set
            .warnings
            .iter()
            .filter(|w| w.starts_with("node node-l4-ts"))
            .cloned()
            .collect();
        (units, said)
    };
    // 6 replicas: 6 ÷ 4 = 1 1/2 GPUs, nothing to say.
    assert_eq!(advertising("6"), (vec!["3/2".to_string()], vec![]));
    for count in ["-8", "7.5"] {
        assert_eq!(
            advertising(count),
            (
                vec![],
                vec![format!(
                    "node node-l4-ts: capacity nvidia.com/gpu: invalid Kubernetes quantity \
                     \"{count}\": a count of devices is a whole number, at least zero \
                     (Kubernetes admits no other for an extended resource); not counted"
                )]
            ),
            "{count}"
        );
    }
}

#[test]
fn a_gpu_pod_without_the_times_it_ran_is_said_not_counted_in_silence() {
    // Objects the API server never sends (a start time comes with the Running phase, a
    // succeeded pod's containers say when they finished), as a hand-made snapshot can hold
    // them. A GPU pod among them is left out with a warning; a pod still pending, a CPU pod, a
    // pod over within the second it began, and one the kubelet refused hold nothing and say
    // nothing.
    let (mut objects, card) = fixture();
    let pod = |name: &str, gpus: bool, phase: &str, status: Value| -> Pod {
        let limits = if gpus {
            json!({"nvidia.com/gpu": "1"})
        } else {
            json!({"cpu": "1"})
        };
        let mut status = status;
        status["phase"] = json!(phase);
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "team-a", "uid": format!("{name}-uid")},
            "spec": {"nodeName": "node-h100",
                     "containers": [{"name": "c", "resources": {"limits": limits}}]},
            "status": status,
        }))
        .unwrap()
    };
    let finished_at = |started: &str, finished: &str| {
        json!({"startTime": started, "containerStatuses": [{"name": "c", "image": "i",
            "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "finishedAt": finished}}}]})
    };
    let start = "2026-11-01T10:00:00Z";
    let before = "2026-11-01T09:00:00Z";
    objects.pods.extend([
        pod("running-unstarted", true, "Running", json!({})),
        pod("succeeded-unstarted", true, "Succeeded", json!({})),
        pod(
            "done-untimed",
            true,
            "Succeeded",
            json!({"startTime": start}),
        ),
        pod(
            "done-before-start",
            true,
            "Succeeded",
            finished_at(start, before),
        ),
        pod("done-at-once", true, "Succeeded", finished_at(start, start)),
        pod("pending", true, "Pending", json!({})),
        pod("cpu-unstarted", false, "Running", json!({})),
        // What the kubelet makes of a pod it refuses (`OutOfnvidia.com/gpu`): Failed, with
        // neither a start nor a condition.
        pod(
            "refused",
            true,
            "Failed",
            json!({"reason": "UnexpectedAdmissionError"}),
        ),
    ]);
    let names = [
        "running-unstarted",
        "succeeded-unstarted",
        "done-untimed",
        "done-before-start",
        "done-at-once",
        "pending",
        "cpu-unstarted",
        "refused",
    ];
    let set = allocations(&objects, &card, &BuildOptions::new(as_of()));
    for name in names {
        assert!(held(&set, name).is_empty(), "{name}");
    }
    let said: Vec<&String> = set
        .warnings
        .iter()
        .filter(|w| names.iter().any(|name| w.contains(&format!("/{name}:"))))
        .collect();
    let no_end = "it has succeeded, but has no finish time at or after its start";
    let no_start = "it runs or has run, but has no start time";
    assert_eq!(
        said,
        [
            format!("pod team-a/done-before-start: {no_end}; its GPUs are not counted"),
            format!("pod team-a/done-untimed: {no_end}; its GPUs are not counted"),
            format!("pod team-a/running-unstarted: {no_start}; its GPUs are not counted"),
            format!("pod team-a/succeeded-unstarted: {no_start}; its GPUs are not counted"),
        ]
        .iter()
        .collect::<Vec<_>>()
    );
}

#[test]
fn shares_of_a_node_that_does_not_say_its_replicas_are_said_to_be_counted_whole() {
    // `renameByDefault` names say the devices are shared; without GFD's replicas label nothing
    // says how many ways, and each share counts as a whole device: said, naming the label.
    let (mut objects, card) = snapshot("shapes/mig");
    let node = objects
        .nodes
        .iter_mut()
        .find(|n| n.metadata.name.as_deref() == Some("a100-mig-mixed-renamed"))
        .unwrap();
    let labels = node.metadata.labels.as_mut().unwrap();
    labels.remove("nvidia.com/mig-1g.5gb.replicas");
    labels.remove("nvidia.com/gpu.replicas");
    let capacity = node.status.as_mut().unwrap().capacity.as_mut().unwrap();
    let shares = capacity.remove("nvidia.com/mig-3g.20gb.shared").unwrap();
    capacity.insert("nvidia.com/gpu.shared".into(), shares);
    let set = allocations(&objects, &card, &BuildOptions::new(as_of()));
    let said: Vec<&String> = set
        .warnings
        .iter()
        .filter(|w| w.contains("shares of a time-sliced or MPS-shared device"))
        .collect();
    assert_eq!(said.len(), 2, "{:?}", set.warnings);
    assert!(
        said.iter().any(|w| w
            .starts_with("node a100-mig-mixed-renamed: nvidia.com/mig-1g.5gb.shared=4 are shares")
            && w.contains("no nvidia.com/mig-1g.5gb.replicas label")),
        "{said:?}"
    );
    assert!(
        said.iter().any(|w| w.contains("nvidia.com/gpu.shared=4")
            && w.contains("no nvidia.com/gpu.replicas label")),
        "{said:?}"
    );
    // The fixture as it is, every share's replicas labelled: nothing said.
    let (objects, _) = snapshot("shapes/mig");
    let set = allocations(&objects, &card, &BuildOptions::new(as_of()));
    assert!(set.warnings.is_empty(), "{:?}", set.warnings);
}

#[test]
fn a_claim_on_a_gpu_driver_s_device_of_a_type_not_read_says_its_type() {
    // tests/fixtures/shapes/amd-dra: serve-0's claim two-whole holds gpu-0-128 and gpu-1-129 of
    // mi300x-dra. Published as passthrough devices (`type=vfio`, which NVIDIA's and AMD's
    // drivers offer for VMs), they are no GPU Tollgate reads: each counts as one GPU of the
    // node's model, and the warning says what the device is (it said "in no ResourceSlice").
    let (mut objects, _) = snapshot("shapes/amd-dra");
    for device in node_devices(&mut objects, "mi300x-dra").iter_mut().take(2) {
        let attributes = device.attributes.as_mut().unwrap();
        attributes.get_mut("type").unwrap().string = Some("vfio".into());
    }
    let set = allocations(&objects, &RateCard::builtin(), &BuildOptions::new(as_of()));
    assert_eq!(
        units(&set, "serve-0"),
        vec![(AllocationKind::Dra, "2".into())]
    );
    for device in ["gpu-0-128", "gpu-1-129"] {
        let said = format!(
            "ResourceClaim shapes/two-whole: device gpu.amd.com/mi300x-dra/{device} is of type vfio, which Tollgate does not read; counted as one whole GPU of its node's model"
        );
        assert!(set.warnings.contains(&said), "{:?}", set.warnings);
    }
}
