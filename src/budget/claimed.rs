//! What a prospective pod's DRA claims would hold and cost: the devices their requests ask for,
//! read from the `ResourceClaim` a claim names or the `ResourceClaimTemplate` it will be made
//! from, priced before any device is allocated.

use k8s_openapi::api::core::v1::Pod;
use rust_decimal::Decimal;

use super::model::{MAX_UNITS, ProspectError, costliest_offering, priced_model};
use super::spend::running;
use crate::allocation::{
    AMD_DRIVER, AllocationSet, ClaimAsk, ClaimAsks, ConsumedShare, DeviceAsk, DeviceClass,
    DeviceCount, consumed_share,
};
use crate::pricing::{DeviceHint, Maker, PriceTier, RateCard, mig_profile};
use crate::time::UnixSeconds;

/// How the pod is priced: what its claims are priced as unless their selectors name a model.
pub(super) struct ClaimPricing<'a> {
    /// Prices.
    pub card: &'a RateCard,
    /// The pod's price tier.
    pub tier: PriceTier,
    /// When it would start.
    pub at: UnixSeconds,
    /// The product the pod is priced as (MIG slices are sized against it).
    pub product: &'a str,
    /// The model's name.
    pub model: &'a str,
    /// Its price per GPU-hour.
    pub price: Decimal,
    /// Whether the pod's model is a guess (nothing it says names one): a claim naming none is
    /// then priced as the costliest GPU its device class offers.
    pub guessed: bool,
    /// What the cluster's claims and claim templates ask for.
    pub claims: &'a ClaimAsks,
    /// What the cluster holds and offers now: the largest node, for a request of every device.
    pub live: &'a AllocationSet,
}

/// GPU units and their cost per hour, and how they were priced when that was a guess.
#[derive(Debug, Default)]
pub(super) struct Held {
    /// GPU units.
    pub units: Decimal,
    /// Their cost per hour.
    pub per_hour: Decimal,
    /// What to say of how.
    pub notes: Vec<String>,
    /// The models the units were priced as, each once.
    pub models: Vec<String>,
    /// What the running pods holding claims the pod would share stop paying once it does.
    pub relief: Vec<Relief>,
}

/// What the running pods holding a claim a pod would share stop paying once it does: each
/// holder's share shrinks from 1/n to 1/(n + 1) of the claim, so 1/(n + 1) of what it pays and
/// holds now moves to the pod. A budget counting holders is charged the pod's cost less theirs
/// (all of a claim's holders are in its namespace, the pod's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relief {
    /// Each holder's cost center, and the burn and GPU units it has of the claim now.
    pub holders: Vec<(String, Decimal, Decimal)>,
    /// n + 1.
    pub sharers: Decimal,
}

impl Held {
    fn add(&mut self, other: Held) {
        self.units += other.units;
        self.per_hour += other.per_hour;
        self.notes.extend(other.notes);
        for model in other.models {
            if !self.models.contains(&model) {
                self.models.push(model);
            }
        }
        self.relief.extend(other.relief);
    }
}

/// What `pod`'s claims (in `namespace`) would hold and cost. A claim whose object is not known
/// counts as one GPU of the pod's model, and says so.
pub(super) fn claimed(
    pod: &Pod,
    namespace: &str,
    pricing: &ClaimPricing<'_>,
) -> Result<Held, ProspectError> {
    let mut held = Held::default();
    let entries = pod
        .spec
        .iter()
        .flat_map(|s| s.resource_claims.iter().flatten());
    let pod_uid = pod.metadata.uid.as_deref();
    for entry in entries {
        let allocated = entry
            .resource_claim_name
            .as_deref()
            .and_then(|name| allocated_share(namespace, name, pod_uid, pricing));
        if let Some(share) = allocated {
            held.add(share);
            continue;
        }
        match pricing.claims.of(namespace, entry) {
            Ok(ask) => held.add(claim_held(ask, pod_uid, pricing)?),
            Err(unknown) => held.add(Held {
                units: Decimal::ONE,
                per_hour: pricing.price,
                notes: vec![format!(
                    "{unknown} is not known to Tollgate: the claim is counted as one GPU"
                )],
                models: vec![pricing.model.to_string()],
                relief: Vec::new(),
            }),
        }
    }
    Ok(held)
}

/// A pod's share of the claim `namespace`/`name` that running pods hold now: what it was
/// allocated, at the prices of its devices' models, shared equally with them (as the
/// chargeback will share it). `None` when no running pod holds it.
fn allocated_share(
    namespace: &str,
    name: &str,
    pod_uid: Option<&str>,
    pricing: &ClaimPricing<'_>,
) -> Option<Held> {
    let live = pricing.live;
    let names = &live.names;
    let (namespace_sym, claim) = (names.get(namespace)?, names.get(name)?);
    let mut held = Held::default();
    let mut pods = Vec::new();
    let mut holders = Vec::new();
    let holding = running(live, pricing.card, pricing.at)
        .filter(|(a, ..)| a.namespace == namespace_sym && a.claim == claim);
    for (allocation, units, burn) in holding {
        let product = names.resolve(allocation.product);
        let model = pricing.card.model_label(product);
        // As a budget's burn counts it: an unpriced model's hours count toward no budget.
        let unpriced = format!(
            "ResourceClaim {namespace}/{name}: its {model} GPU has no price; its share counts toward no budget"
        );
        if burn.is_none() && !held.notes.contains(&unpriced) {
            held.notes.push(unpriced);
        }
        let per_hour = burn.unwrap_or(Decimal::ZERO);
        let cost_center = names.resolve(allocation.cost_center).to_string();
        holders.push((cost_center, per_hour, units));
        held.add(Held {
            units,
            per_hour,
            notes: Vec::new(),
            models: vec![model],
            relief: Vec::new(),
        });
        if !pods.contains(&allocation.pod_uid) {
            pods.push(allocation.pod_uid);
        }
    }
    if pods.is_empty() {
        return None;
    }
    let already = pod_uid
        .and_then(|uid| names.get(uid))
        .is_some_and(|uid| pods.contains(&uid));
    let sharers = Decimal::from(pods.len() + usize::from(!already));
    held.notes.push(format!(
        "ResourceClaim {namespace}/{name} is allocated and held by {} running pod(s): this pod's share is 1/{sharers} of the {} GPU(s) it holds",
        pods.len(),
        held.units.round_dp(4).normalize()
    ));
    held.units /= sharers;
    held.per_hour /= sharers;
    // A pod holding it already (checked again) takes nothing from the others.
    if !already {
        held.relief.push(Relief { holders, sharers });
    }
    Some(held)
}

/// What one claim would hold: each request as its costliest way of being met, shared with the
/// pods an existing claim is reserved for.
fn claim_held(
    ask: &ClaimAsk,
    pod_uid: Option<&str>,
    pricing: &ClaimPricing<'_>,
) -> Result<Held, ProspectError> {
    let mut held = Held::default();
    if ask.requests.is_empty() {
        held.notes.push(format!(
            "{} asks for no device: it holds none",
            ask.describes
        ));
    }
    for request in &ask.requests {
        let what = format!("{}, request {}", ask.describes, request.name);
        let mut costliest: Option<Held> = None;
        for way in &request.ways {
            let way = way_held(way, &what, pricing)?;
            if costliest.as_ref().is_none_or(|c| way.per_hour > c.per_hour) {
                costliest = Some(way);
            }
        }
        let mut costliest = costliest.unwrap_or_else(|| Held {
            notes: vec![format!(
                "{what}: it names no device class; it holds nothing"
            )],
            ..Held::default()
        });
        if request.ways.len() > 1 {
            costliest.notes.push(format!(
                "{what}: priced as the costliest of its {} alternatives",
                request.ways.len()
            ));
        }
        held.add(costliest);
    }
    let others = ask
        .reserved_for
        .iter()
        .filter(|uid| Some(uid.as_str()) != pod_uid)
        .count();
    if others > 0 && !held.units.is_zero() {
        let sharers = Decimal::from(others + 1);
        held.units /= sharers;
        held.per_hour /= sharers;
        held.notes.push(format!(
            "{} is reserved for {others} other pod(s) already: this pod's share is 1/{sharers} of its devices",
            ask.describes
        ));
    }
    Ok(held)
}

/// The GPU a request for part of a device's capacity is priced on.
struct SharedGpu {
    product: String,
    model: String,
    price: Decimal,
    /// The part of the GPU it asks for.
    share: Decimal,
}

/// Of the GPUs claims may share now that the request's driver publishes and that offer what
/// `way` asks for (of a model its selectors name, where they name one), the one where its share
/// costs most: the share of each is the largest part of a capacity it asks for, as the
/// chargeback will charge it ([`consumed_share`]). `None` when none offers it.
fn shared_gpu(way: &DeviceAsk, named: &[String], pricing: &ClaimPricing<'_>) -> Option<SharedGpu> {
    let card = pricing.card;
    let named_models: Vec<String> = named.iter().map(|p| card.model_label(p)).collect();
    let offers = pricing.claims.shareable().iter().filter_map(|gpu| {
        if gpu.driver != way.class_name {
            return None;
        }
        let product = gpu
            .product
            .clone()
            .unwrap_or_else(|| pricing.product.to_string());
        let model = card.model_label(&product);
        if !named_models.is_empty() && !named_models.contains(&model) {
            return None;
        }
        let price = card.price_at(&product, pricing.tier, None, pricing.at)?;
        let asked = way.capacity.iter().map(|(name, q)| (name, q.as_str()));
        let ConsumedShare::Share(share) = consumed_share(asked, &gpu.capacity) else {
            return None;
        };
        let share = share.to_decimal();
        Some(SharedGpu {
            product,
            model,
            price,
            share,
        })
    });
    offers.max_by(|a, b| (a.price * a.share, a.share).cmp(&(b.price * b.share, b.share)))
}

/// The most whole GPUs one node offers now (at least one).
fn largest_node(live: &AllocationSet) -> Decimal {
    live.capacity
        .iter()
        .map(|c| c.units.to_decimal().ceil())
        .max()
        .unwrap_or(Decimal::ONE)
        .max(Decimal::ONE)
}

/// Where the pod's model is a guess, the costliest GPU of the card a device of `way`'s class
/// can be, where that narrows the card: an AMD GPU for AMD's driver, an NVIDIA GPU for
/// NVIDIA's, one cut into the MIG profile its selectors name for `mig.nvidia.com`. Returns its
/// name, price, and what it offers (for the note).
fn offered_by_class(
    way: &DeviceAsk,
    pricing: &ClaimPricing<'_>,
) -> Option<(String, Decimal, String)> {
    if !pricing.guessed {
        return None;
    }
    let mut profiles: Vec<&str> = way
        .texts
        .iter()
        .map(String::as_str)
        .filter(|text| mig_profile(text).is_some())
        .collect();
    profiles.dedup();
    let (maker, profile) = match way.class {
        DeviceClass::Gpu if way.class_name == AMD_DRIVER => (Maker::Amd, None),
        DeviceClass::Gpu => (Maker::Nvidia, None),
        DeviceClass::Mig => (Maker::Nvidia, <[&str; 1]>::try_from(profiles).ok()),
        DeviceClass::NotGpu | DeviceClass::Unknown => return None,
    };
    let hint = DeviceHint {
        maker,
        mig_profile: profile.map(|[profile]| profile),
    };
    let card = pricing.card;
    let cost = |model, price: Decimal| {
        let part = hint
            .mig_profile
            .and_then(|profile| card.model_mig_fraction(model, profile))
            .map_or(Decimal::ONE, |f| f.to_decimal());
        part * price
    };
    let (product, price) = costliest_offering(card, &[hint], pricing.tier, pricing.at, cost)?;
    let offers = match hint.mig_profile {
        Some(profile) => format!("{} devices of profile {profile}", way.class_name),
        None => format!("{} devices", way.class_name),
    };
    Some((product, price, offers))
}

/// What one way of meeting a request would hold and cost.
fn way_held(
    way: &DeviceAsk,
    what: &str,
    pricing: &ClaimPricing<'_>,
) -> Result<Held, ProspectError> {
    let mut notes = Vec::new();
    if way.admin {
        notes.push(format!(
            "{what}: admin access to devices in use by others; it takes none"
        ));
        return Ok(Held {
            notes,
            ..Held::default()
        });
    }
    if way.class == DeviceClass::NotGpu {
        return Ok(Held::default());
    }
    if way.class == DeviceClass::Unknown {
        notes.push(format!(
            "{what}: device class {} is not one Tollgate knows as a GPU's (gpu.nvidia.com, \
             mig.nvidia.com, gpu.amd.com); each device counted as one GPU",
            way.class_name
        ));
    }
    // The model its selectors name, else the pod's.
    let card = pricing.card;
    let named: Vec<String> = way
        .texts
        .iter()
        .filter(|text| {
            card.price_at(text, pricing.tier, None, pricing.at)
                .is_some()
        })
        .cloned()
        .collect();
    let offered = named
        .is_empty()
        .then(|| offered_by_class(way, pricing))
        .flatten();
    let (product, model, price) = if let Some((product, price, offers)) = offered {
        let model = card.model_label(&product);
        notes.push(format!(
            "{what}: priced as {model}, the most expensive GPU in the rate card that offers {offers}"
        ));
        (product, model, price)
    } else if named.is_empty() {
        (
            pricing.product.to_string(),
            pricing.model.to_string(),
            pricing.price,
        )
    } else {
        let (product, model, price, _) = priced_model(card, &named, pricing.tier, pricing.at)?;
        if model != pricing.model {
            notes.push(format!(
                "{what}: priced as {model}, which its selectors name"
            ));
        }
        (product, model, price)
    };
    // Part of a GPU's capacity: its share of the GPU it would cost most on, of those that offer
    // it now.
    let shared = (!way.capacity.is_empty() && way.class == DeviceClass::Gpu)
        .then(|| shared_gpu(way, &named, pricing))
        .flatten();
    let (product, model, price) = match &shared {
        Some(gpu) => (gpu.product.clone(), gpu.model.clone(), gpu.price),
        None => (product, model, price),
    };
    let per_device = if let Some(gpu) = &shared {
        gpu.share
    } else if way.class == DeviceClass::Mig {
        let mut fractions: Vec<Decimal> = way
            .texts
            .iter()
            .filter_map(|text| card.mig_fraction(&product, text))
            .map(|f| f.to_decimal())
            .collect();
        fractions.dedup();
        match fractions.as_slice() {
            [fraction] => *fraction,
            _ => {
                notes.push(format!(
                    "{what}: its selectors name no one MIG profile of a {model}; each slice counted as a whole GPU"
                ));
                Decimal::ONE
            }
        }
    } else {
        Decimal::ONE
    };
    let count = match way.count {
        DeviceCount::Exactly(n) if Decimal::from(n) > MAX_UNITS => {
            return Err(ProspectError(format!(
                "pod: {what} asks for {n} devices, more than a pod can hold (at most {MAX_UNITS})"
            )));
        }
        DeviceCount::Exactly(n) if n >= 1 => Decimal::from(n),
        DeviceCount::Exactly(n) => {
            notes.push(format!(
                "{what}: a count of {n} devices is not one Kubernetes allocates; counted as one"
            ));
            Decimal::ONE
        }
        DeviceCount::All => {
            let most = largest_node(pricing.live);
            notes.push(format!(
                "{what}: allocationMode All takes every matching device of its node; counted as {most}, the most GPUs a node offers"
            ));
            most
        }
    };
    match &shared {
        Some(gpu) => notes.push(format!(
            "{what}: it asks for part of a device's capacity: priced as {} of a {model}, its share of the costliest GPU claims may share that offers it now",
            gpu.share.round_dp(4).normalize(),
        )),
        None if !way.capacity.is_empty() => notes.push(format!(
            "{what}: it asks for part of a device's capacity, and no GPU that claims may share offers it now; counted as whole devices"
        )),
        None => {}
    }
    let units = count * per_device;
    let per_hour = units.checked_mul(price).ok_or_else(|| {
        ProspectError(format!(
            "{units} GPUs at {price} an hour is too large a cost to decide on"
        ))
    })?;
    Ok(Held {
        models: (!units.is_zero()).then_some(model).into_iter().collect(),
        units,
        per_hour,
        notes,
        relief: Vec::new(),
    })
}
