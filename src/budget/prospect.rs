//! A pod that wants to start: what it would hold and cost per hour, read from its spec before
//! any scheduler has placed it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rust_decimal::Decimal;

use super::claimed::{ClaimPricing, Relief, claimed};
use super::limits::BudgetScope;
use super::model::{MAX_UNITS, ProspectError, costliest_offering, priced_model};
use super::placed::{Costliest, Needs, Placements};
use crate::allocation::{
    AMD_PARTITION_LABELS, AMD_PRODUCT_LABELS, AllocationSet, AmdPartitionMode, CLOUD_GPU_LABELS,
    ClaimAsks, CostCenterSource, GKE_PARTITION_LABEL, GpuResource, INSTANCE_TYPE_LABELS,
    PRODUCT_LABEL, PlacementNodes, REPLICAS_LABELS, SHARED_PRODUCT_SUFFIX, capacity_tier, classify,
    cloud_gpu, cloud_product, cost_center, first_cost_center, first_label, gpu_demand,
    instance_product, mig_replicas_label, read_replicas, required_terms, split_product_label,
};
use crate::pricing::{DeviceHint, Maker, ModelId, PriceTier, RateCard};
use crate::time::UnixSeconds;

/// The pod a quota check is about.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Prospect {
    /// Its namespace.
    pub namespace: String,
    /// Its name, if it has one yet (generated names come later).
    pub name: Option<String>,
    /// Its UID, if the request carries one (validating webhooks see it).
    pub uid: Option<String>,
    /// Who would pay.
    pub cost_center: String,
    /// Where that came from.
    pub cost_center_source: CostCenterSource,
    /// GPU units it would hold.
    pub units: Decimal,
    /// What it would cost per hour.
    pub per_hour: Decimal,
    /// The model it was priced as.
    pub gpu_model: Option<String>,
    /// How it was priced, when that was a guess (the costliest model, a whole GPU for a share).
    pub notes: Vec<String>,
    /// What running pods sharing its claims stop paying once it shares them, claim by claim.
    pub relief: Vec<Relief>,
}

impl Prospect {
    /// What the pod adds to the burn and units of `scope`'s budget: its cost, less what the
    /// running pods of the scope sharing its claims stop paying (all of them for its
    /// namespace's, whose claims they are).
    pub fn added_to(&self, scope: &BudgetScope) -> (Decimal, Decimal) {
        let counted = |cost_center: &String| match scope {
            BudgetScope::CostCenter(name) => cost_center == name,
            BudgetScope::Namespace(_) => true,
        };
        let (mut per_hour, mut units) = (self.per_hour, self.units);
        for relief in &self.relief {
            // Summed over the scope's holders, then divided once: where they are all of the
            // claim's, exactly what the pod's share of it was.
            let (burn, held) = relief
                .holders
                .iter()
                .filter(|(cost_center, ..)| counted(cost_center))
                .fold((Decimal::ZERO, Decimal::ZERO), |(b, h), (_, burn, held)| {
                    (b + burn, h + held)
                });
            per_hour -= burn / relief.sharers;
            units -= held / relief.sharers;
        }
        (per_hour, units)
    }
}

/// The GPU products a pod can land on, from its node selector (`selector`: the pod's, with what
/// every node it may run on says) or its required node affinity (`In`) on GPU Feature
/// Discovery's `nvidia.com/gpu.product`, AMD's node labeller's `amd.com/gpu.product-name`, a
/// cloud's GPU label (GKE's accelerator, Karpenter's GPU name) or the instance type
/// (`p5.48xlarge`); empty when they do not say.
fn product_choices(selector: &BTreeMap<String, String>, spec: &PodSpec) -> Vec<String> {
    if let Some(product) = selector.get(PRODUCT_LABEL) {
        return vec![product.clone()];
    }
    if let Some((_, product)) = first_label(selector, &AMD_PRODUCT_LABELS) {
        return vec![product.to_string()];
    }
    if let Some(product) = cloud_product(selector) {
        return vec![product];
    }
    let expressions = required_terms(spec)
        .iter()
        .flat_map(|t| t.match_expressions.iter().flatten())
        .filter(|e| e.operator == "In");
    let gpus = |key: &str| {
        expressions
            .clone()
            .filter(|e| e.key == key)
            .flat_map(|e| e.values.iter().flatten())
            .collect::<Vec<_>>()
    };
    let products: Vec<String> = [PRODUCT_LABEL]
        .iter()
        .chain(&AMD_PRODUCT_LABELS)
        .flat_map(|key| gpus(key))
        .cloned()
        .collect();
    if !products.is_empty() {
        return products;
    }
    let clouds: Vec<String> = CLOUD_GPU_LABELS
        .iter()
        .flat_map(|key| gpus(key))
        .map(|gpu| cloud_gpu(gpu, None))
        .collect();
    if !clouds.is_empty() {
        return clouds;
    }
    // Instance types, only where Tollgate knows the GPU of every one: one it does not know
    // could hold any GPU.
    INSTANCE_TYPE_LABELS
        .iter()
        .flat_map(|key| gpus(key))
        .map(|name| instance_product(name))
        .collect::<Option<Vec<String>>>()
        .unwrap_or_default()
}

/// The costliest model of the card that the GPU resources of `demand` are devices of, where
/// they narrow the card (an AMD resource, a MIG profile; `selector`'s GKE partition size for
/// `nvidia.com/gpu`): its name, and the note saying so.
fn offered_for(
    card: &RateCard,
    demand: &BTreeMap<&str, Decimal>,
    selector: &BTreeMap<String, String>,
    tier: PriceTier,
    at: UnixSeconds,
) -> Option<(String, String)> {
    let partition = first_label(selector, &[GKE_PARTITION_LABEL]).map(|(_, profile)| profile);
    let amd_mode = first_label(selector, &AMD_PARTITION_LABELS)
        .and_then(|(_, mode)| AmdPartitionMode::parse(mode));
    let resources: Vec<(&str, Decimal, GpuResource)> = demand
        .iter()
        .filter(|(_, count)| !count.is_zero())
        .filter_map(|(resource, count)| Some((*resource, *count, classify(resource)?)))
        .collect();
    let hints: Vec<DeviceHint<'_>> = resources
        .iter()
        .map(|(_, _, kind)| match kind {
            GpuResource::Whole => DeviceHint {
                maker: Maker::Nvidia,
                mig_profile: partition,
            },
            GpuResource::Shared => DeviceHint {
                maker: Maker::Nvidia,
                mig_profile: None,
            },
            GpuResource::Mig { profile, .. } => DeviceHint {
                maker: Maker::Nvidia,
                mig_profile: Some(profile),
            },
            GpuResource::AmdGpu | GpuResource::AmdPartition { .. } => DeviceHint {
                maker: Maker::Amd,
                mig_profile: None,
            },
        })
        .collect();
    // What the devices come to on a GPU of `model`: each item the part of it that it is.
    let cost = |model: ModelId, price: Decimal| -> Decimal {
        let slice = |profile: &str| {
            card.model_mig_fraction(model, profile)
                .map_or(Decimal::ONE, |f| f.to_decimal())
        };
        let product = &card.model(model).name;
        let parts =
            |mode: &AmdPartitionMode| Decimal::ONE / Decimal::from(mode.partitions(product));
        resources
            .iter()
            .map(|(_, count, kind)| {
                let part = match kind {
                    GpuResource::Whole => partition.map_or(Decimal::ONE, &slice),
                    GpuResource::Mig { profile, .. } => slice(profile),
                    GpuResource::AmdGpu => amd_mode.as_ref().map_or(Decimal::ONE, parts),
                    GpuResource::AmdPartition { mode } => parts(mode),
                    GpuResource::Shared => Decimal::ONE,
                };
                count.saturating_mul(part)
            })
            .fold(Decimal::ZERO, Decimal::saturating_add)
            .saturating_mul(price)
    };
    let (product, _) = costliest_offering(card, &hints, tier, at, cost)?;
    let asked: Vec<&str> = resources.iter().map(|(resource, ..)| *resource).collect();
    let note = format!(
        "its GPU model is not known before scheduling: priced as {}, the most expensive GPU in the rate card that offers {}",
        card.model_label(&product),
        asked.join(" and ")
    );
    Some((product, note))
}

/// Where a prospective pod would run and how it is priced.
#[derive(Clone, Copy, Debug)]
pub struct ProspectContext<'a> {
    /// The namespace it would run in.
    pub namespace: &'a str,
    /// That namespace's metadata, when known.
    pub namespace_meta: Option<&'a ObjectMeta>,
    /// A cost center overriding the pod's and the namespace's.
    pub cost_center: Option<&'a str>,
    /// The annotation/label key of cost centers.
    pub cost_center_key: &'a str,
    /// Prices.
    pub card: &'a RateCard,
    /// When it would start.
    pub at: UnixSeconds,
    /// What the cluster's DRA claims and claim templates ask for.
    pub claims: &'a ClaimAsks,
    /// What the cluster holds and offers now.
    pub live: &'a AllocationSet,
    /// The nodes' labels and taints: where a pod that says where it runs may run.
    pub nodes: &'a PlacementNodes,
    /// Where pods saying so may run, as far as worked out for this view.
    pub placements: &'a Placements,
}

impl ProspectContext<'_> {
    /// The override, else the pod's own cost center chain; and what to say of a value passed
    /// over (the name of capacity no pod holds).
    fn cost_center(&self, pod: &ObjectMeta) -> (String, CostCenterSource, Option<String>) {
        let chosen = match self.cost_center.filter(|cc| !cc.trim().is_empty()) {
            Some(cc) => first_cost_center([Some(cc), None, None, None]),
            None => cost_center(pod, self.namespace_meta, self.cost_center_key),
        };
        let pod = format!(
            "{}/{}",
            self.namespace,
            pod.name.as_deref().unwrap_or_default()
        );
        let said = chosen.warning(&pod, self.cost_center_key);
        (chosen.name.to_string(), chosen.source, said)
    }
}

/// What `pod` would hold and cost: every container and init container (effective requests),
/// plus the devices its DRA claims ask for (the claim it names, or the template its claim will
/// be made from; one GPU for a claim whose object is not known).
pub fn prospect_from_pod(
    pod: &Pod,
    context: &ProspectContext<'_>,
) -> Result<Prospect, ProspectError> {
    let card = context.card;
    let spec = pod
        .spec
        .as_ref()
        .ok_or_else(|| ProspectError("pod: has no spec".into()))?;
    let demand = gpu_demand(spec, &[]).map_err(|e| ProspectError(format!("pod: {e}")))?;
    let own: BTreeMap<String, String> = spec.node_selector.clone().unwrap_or_default();
    let own_choices = product_choices(&own, spec);
    let named = !own_choices.is_empty();
    // What it needs of its node: the GPU devices it asks for (a count of none asks for
    // nothing), and the drivers its claims' requests need.
    let needs = Needs {
        devices: demand
            .iter()
            .filter(|(resource, count)| !count.is_zero() && classify(resource).is_some())
            .map(|(resource, _)| *resource)
            .collect(),
        drivers: spec
            .resource_claims
            .iter()
            .flatten()
            .filter_map(|entry| context.claims.of(context.namespace, entry).ok())
            .flat_map(|ask| ask.drivers_needed())
            .collect(),
    };
    // A pod pinned by other labels (a node pool's, a node's name) runs on one of the nodes
    // those admit now that offer those devices: what they all say, it is as if it selected;
    // and its GPU is theirs (the costliest where they differ). Said, since a node made later
    // may hold another.
    let placed = context.placements.of(
        (spec, &needs),
        (context.live, context.nodes, context.claims),
        card,
        context.at,
    );
    let mut selector = own.clone();
    for (key, value) in placed.iter().flat_map(|p| &p.common) {
        selector.entry(key.clone()).or_insert_with(|| value.clone());
    }
    let mut tier = capacity_tier(&selector);
    let mut choices = product_choices(&selector, spec);
    let costliest = placed.as_ref().and_then(|p| p.costliest.clone());
    if let Some(costliest) = costliest.as_ref().filter(|_| choices.is_empty()) {
        (choices, tier) = (vec![costliest.product.clone()], costliest.tier);
    }
    // A pod saying nothing of its GPU still asks for devices only some GPUs offer: AMD's for
    // `amd.com/` resources, those cut into its MIG profile for a MIG device.
    let guessed = choices.is_empty();
    let offered = guessed
        .then(|| offered_for(card, &demand, &selector, tier, context.at))
        .flatten();
    if let Some((product, _)) = &offered {
        choices = vec![product.clone()];
    }
    let (product, model, mut price, model_note) = priced_model(card, &choices, tier, context.at)?;
    let model_note = offered.map(|(_, note)| note).or(model_note);
    // What it will pay on the nodes it may run on: their costliest price for that model, a
    // node's own where it has one.
    let own_price = match costliest {
        Some(Costliest {
            product: priced,
            tier: paid_tier,
            price: Some(paid),
            own,
        }) if model_note.is_none() && card.model_label(&priced) == model => {
            (price, tier) = (paid, paid_tier);
            own
        }
        _ => false,
    };
    let model_note = match &placed {
        Some(placed) if (choices != own_choices || own_price) && model_note.is_none() => {
            Some(placed.note(&model, tier, own_price))
        }
        _ => model_note,
    };
    let mut notes: Vec<String> = Vec::new();
    // A pod naming its GPU takes its tier and partitions from the nodes too: said.
    if named && placed.is_some() {
        let mut from_nodes: Vec<String> = [GKE_PARTITION_LABEL]
            .iter()
            .chain(&AMD_PARTITION_LABELS)
            .filter(|key| !own.contains_key(**key))
            .filter_map(|key| Some(format!("{key}={}", selector.get(*key)?)))
            .collect();
        if capacity_tier(&own) != tier {
            from_nodes.insert(0, format!("{tier} capacity"));
        }
        if !from_nodes.is_empty() {
            notes.push(format!(
                "{} on every GPU node its node name, selector, affinity and tolerations allow now",
                from_nodes.join(", ")
            ));
        }
    }
    // Time-slicing replicas a node selector names (GFD's, GKE's clients per GPU, or GFD's of a
    // MIG profile), or that every node the pod may run on has: `None` where neither says, said
    // where its value is no number of them, or where the nodes said it.
    let selected_replicas = |label: &str, notes: &mut Vec<String>| {
        let value = selector.get(label)?;
        let read = read_replicas(value);
        if read.is_none() {
            notes.push(format!(
                "node selector {label}={value:?} is not a number of replicas: its devices counted whole"
            ));
        } else if !own.contains_key(label) {
            notes.push(format!(
                "{label}={value} on every GPU node its node name, selector, affinity and tolerations allow now"
            ));
        }
        read
    };
    let replicas = REPLICAS_LABELS
        .into_iter()
        .find(|label| selector.contains_key(*label))
        .and_then(|label| selected_replicas(label, &mut notes));
    // GFD's product label tells how its nodes share their GPUs: `-MIG-<profile>` (the MIG single
    // strategy: an `nvidia.com/gpu` is one MIG device of that profile), `-SHARED` (time-sliced).
    let (selected_product, single_profile) = split_product_label(&product);
    let time_sliced = product.ends_with(SHARED_PRODUCT_SUFFIX);
    let mut units = Decimal::ZERO;
    for (resource, count) in demand {
        if count > MAX_UNITS || count < Decimal::ZERO {
            return Err(ProspectError(format!(
                "pod: {resource}={count} is not a number of GPUs a pod can hold (0 to {MAX_UNITS})"
            )));
        }
        let per_item = match classify(resource) {
            // A node selector on GKE's MIG partition size or GFD's product (`-MIG-<profile>`,
            // `-SHARED`), or on time-slicing replicas (GFD's, GKE's clients per GPU), says what
            // one `nvidia.com/gpu` is there.
            Some(GpuResource::Whole) => {
                let partition = first_label(&selector, &[GKE_PARTITION_LABEL])
                    .map(|(_, profile)| profile)
                    .or(single_profile.as_deref());
                let whole = match partition {
                    Some(profile) => mig_fraction(card, &selected_product, resource, profile)?,
                    None => Decimal::ONE,
                };
                if time_sliced && replicas.is_none() {
                    notes.push(format!(
                        "{resource} counted as a whole device of {product}: its time-slicing replicas are not known before scheduling"
                    ));
                }
                whole / Decimal::from(replicas.unwrap_or(1))
            }
            Some(GpuResource::Shared) => match replicas {
                Some(replicas) => Decimal::ONE / Decimal::from(replicas),
                None => {
                    notes.push(format!(
                        "{resource} counted as a whole GPU: its time-slicing replicas are not known before scheduling"
                    ));
                    Decimal::ONE
                }
            },
            // A device of a time-sliced MIG profile is a share of it: a node selector on the
            // profile's replicas says how much.
            Some(GpuResource::Mig { profile, renamed }) => {
                let slice = mig_fraction(card, &selected_product, resource, &profile)?;
                match selected_replicas(&mig_replicas_label(&profile), &mut notes) {
                    Some(replicas) => slice / Decimal::from(replicas),
                    None => {
                        if renamed {
                            notes.push(format!(
                                "{resource} counted as a whole {profile} MIG device: its time-slicing replicas are not known before scheduling"
                            ));
                        }
                        slice
                    }
                }
            }
            // Partitioned or not is the node's; a node selector on the labeller's label says.
            Some(GpuResource::AmdGpu) => first_label(&selector, &AMD_PARTITION_LABELS)
                .and_then(|(_, mode)| AmdPartitionMode::parse(mode))
                .map_or(Decimal::ONE, |mode| {
                    Decimal::ONE / Decimal::from(mode.partitions(&product))
                }),
            Some(GpuResource::AmdPartition { mode }) => {
                Decimal::ONE / Decimal::from(mode.partitions(&product))
            }
            None => continue,
        };
        units += count * per_item;
    }
    let pricing = ClaimPricing {
        card,
        tier,
        at: context.at,
        product: &product,
        model: &model,
        price,
        guessed,
        claims: context.claims,
        live: context.live,
    };
    let claims = claimed(pod, context.namespace, &pricing)?;
    let per_hour = hourly(units, price)?
        .checked_add(claims.per_hour)
        .ok_or_else(|| ProspectError("the pod's cost is too large to decide on".into()))?;
    // The model it is priced as, unless all it would hold is of models its claims name.
    let gpu_model = if units.is_zero() {
        claims.models.first().cloned()
    } else {
        Some(model.clone())
    };
    if gpu_model.as_ref() == Some(&model) || claims.models.contains(&model) {
        notes.splice(0..0, model_note);
    }
    units += claims.units;
    if units > MAX_UNITS {
        return Err(ProspectError(format!(
            "pod: {units} GPUs in all is more than a pod can hold (at most {MAX_UNITS})"
        )));
    }
    let (cost_center, cost_center_source, said) = context.cost_center(&pod.metadata);
    // What a pod holding nothing was priced as says nothing; what its claims are, does.
    let held = !units.is_zero();
    notes.retain(|_| held);
    notes.extend(claims.notes);
    notes.extend(said.filter(|_| held));
    Ok(Prospect {
        namespace: context.namespace.to_string(),
        name: pod.metadata.name.clone().filter(|n| !n.is_empty()),
        uid: pod.metadata.uid.clone().filter(|u| !u.is_empty()),
        cost_center,
        cost_center_source,
        units,
        per_hour: per_hour.normalize(),
        gpu_model: gpu_model.filter(|_| !units.is_zero()),
        notes,
        relief: claims.relief,
    })
}

/// The part of a `product` GPU one MIG device of `profile` is, or an error naming `resource`.
fn mig_fraction(
    card: &RateCard,
    product: &str,
    resource: &str,
    profile: &str,
) -> Result<Decimal, ProspectError> {
    card.mig_fraction(product, profile)
        .map(|f| f.to_decimal())
        .ok_or_else(|| {
            ProspectError(format!(
                "pod: MIG resource {resource} cannot be sized as part of a {product}: \
                 its profile starts <g>g, g from 1 to the GPU's compute slices"
            ))
        })
}

/// `units × price`, or an error when a rate card's price is too large to multiply.
fn hourly(units: Decimal, price: Decimal) -> Result<Decimal, ProspectError> {
    units
        .checked_mul(price)
        .map(|cost| cost.normalize())
        .ok_or_else(|| {
            ProspectError(format!(
                "{units} GPUs at {price} an hour is too large a cost to decide on"
            ))
        })
}

/// What a pod that asks for no GPU holds: nothing, charged to its cost center.
pub fn prospect_without_gpus(pod: &Pod, context: &ProspectContext<'_>) -> Prospect {
    let (cost_center, cost_center_source, _) = context.cost_center(&pod.metadata);
    Prospect {
        namespace: context.namespace.to_string(),
        name: pod.metadata.name.clone().filter(|n| !n.is_empty()),
        uid: pod.metadata.uid.clone().filter(|u| !u.is_empty()),
        cost_center,
        cost_center_source,
        units: Decimal::ZERO,
        per_hour: Decimal::ZERO,
        gpu_model: None,
        notes: Vec::new(),
        relief: Vec::new(),
    }
}

/// What `gpus` whole GPUs of `gpu_model` (or of the costliest model) would cost.
pub fn prospect_from_count(
    gpus: Decimal,
    gpu_model: Option<&str>,
    context: &ProspectContext<'_>,
) -> Result<Prospect, ProspectError> {
    if gpus < Decimal::ZERO {
        return Err(ProspectError("gpus: must not be negative".into()));
    }
    if gpus > MAX_UNITS {
        return Err(ProspectError(format!(
            "gpus: {gpus} is more GPUs than a pod can hold (at most {MAX_UNITS})"
        )));
    }
    // A cloud's name for it (GKE's `nvidia-tesla-a100`) reads as the GPU it names.
    let choices: Vec<String> = gpu_model.map(|m| cloud_gpu(m, None)).into_iter().collect();
    let (_, model, price, note) =
        priced_model(context.card, &choices, PriceTier::OnDemand, context.at)?;
    let (cost_center, cost_center_source, said) = context.cost_center(&ObjectMeta::default());
    Ok(Prospect {
        namespace: context.namespace.to_string(),
        name: None,
        uid: None,
        cost_center,
        cost_center_source,
        units: gpus,
        per_hour: hourly(gpus, price)?,
        gpu_model: Some(model),
        notes: note.into_iter().chain(said).collect(),
        relief: Vec::new(),
    })
}
