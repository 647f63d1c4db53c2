//! A pod's demand for each GPU resource, by the Kubernetes effective-request rule.
//!
//! The scheduler reserves, per resource, the larger of what the app containers (plus running
//! sidecars) need together and what the largest init container needs while it runs (plus the
//! sidecars started before it). For extended resources a limit without a request counts as the
//! request.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use rust_decimal::Decimal;
use smallvec::SmallVec;

use super::device::{classify, unpriced_accelerator};
use crate::quantity::{QuantityError, parse_quantity};

/// GPU resources a container asks for: `(resource, amount)` in the order of their names,
/// requests preferred over limits. Read in place: a pod's resource names are borrowed, not
/// copied (every pod of a cluster passes here each time allocations are built).
fn container_gpus(container: &Container) -> Result<SmallVec<[(&str, Decimal); 2]>, QuantityError> {
    let Some(resources) = &container.resources else {
        return Ok(SmallVec::new());
    };
    let requests = resources.requests.as_ref();
    let limits = resources.limits.as_ref();
    let mut names: SmallVec<[&str; 4]> = requests
        .into_iter()
        .flat_map(|r| r.keys())
        .chain(limits.into_iter().flat_map(|l| l.keys()))
        .map(String::as_str)
        .filter(|name| classify(name).is_some())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let quantity = requests
                .and_then(|r| r.get(name))
                .or_else(|| limits.and_then(|l| l.get(name)))
                .map(|q| q.0.as_str())
                .unwrap_or("0");
            Ok((name, device_count(quantity)?))
        })
        .collect()
}

/// A count of devices: Kubernetes admits an extended resource (every device plugin's, GPUs
/// among them) only as a whole number at least zero, so a pod asking for half a GPU, a hundred
/// milli-GPUs or minus one (a hand-written snapshot, a quota check's pod) is refused, not
/// counted as some fraction of a device or as nothing. A node's advertised capacity of them
/// is a count of devices too.
pub(super) fn device_count(quantity: &str) -> Result<Decimal, QuantityError> {
    let count = parse_quantity(quantity)?;
    if count.is_sign_negative() && !count.is_zero() || !count.fract().is_zero() {
        return Err(QuantityError {
            value: quantity.to_string(),
            reason: "a count of devices is a whole number, at least zero (Kubernetes admits no other for an extended resource)",
        });
    }
    Ok(count)
}

/// The pod's effective demand per GPU resource name. `excluded` lists `(container, resource)`
/// pairs already served by a DRA extended-resource claim, which must not be counted again.
/// Sums saturate at `Decimal::MAX`: a demand that large is refused by whoever sizes it (a
/// warning when allocations are built, an error naming the resource in a quota check), never a
/// panic.
pub(crate) fn gpu_demand<'s>(
    spec: &'s PodSpec,
    excluded: &[(String, String)],
) -> Result<BTreeMap<&'s str, Decimal>, QuantityError> {
    let amounts = |container: &'s Container| -> Result<_, QuantityError> {
        let mut amounts = container_gpus(container)?;
        amounts.retain(|(resource, _)| {
            !excluded
                .iter()
                .any(|(c, r)| *c == container.name && r == resource)
        });
        Ok(amounts)
    };
    let mut app: BTreeMap<&str, Decimal> = BTreeMap::new();
    for container in &spec.containers {
        for (resource, amount) in amounts(container)? {
            let total = app.entry(resource).or_default();
            *total = total.saturating_add(amount);
        }
    }
    let mut sidecars: BTreeMap<&str, Decimal> = BTreeMap::new();
    let mut init_peak: BTreeMap<&str, Decimal> = BTreeMap::new();
    for container in spec.init_containers.iter().flatten() {
        let restartable = container.restart_policy.as_deref() == Some("Always");
        for (resource, amount) in amounts(container)? {
            let running = sidecars.get(resource).copied().unwrap_or_default();
            let peak = init_peak.entry(resource).or_default();
            *peak = (*peak).max(running.saturating_add(amount));
            if restartable {
                let total = sidecars.entry(resource).or_default();
                *total = total.saturating_add(amount);
            }
        }
    }
    // Each resource's steady demand (app containers and sidecars together), or its init
    // containers' peak where that is larger.
    let mut demand = app;
    for (resource, amount) in sidecars {
        let total = demand.entry(resource).or_default();
        *total = total.saturating_add(amount);
    }
    for (resource, peak) in init_peak {
        let steady = demand.entry(resource).or_default();
        *steady = (*steady).max(peak);
    }
    demand.retain(|_, effective| *effective > Decimal::ZERO);
    Ok(demand)
}

/// True when a pod asks for a GPU (any `nvidia.com/*` or `amd.com/*` resource, or anything
/// that looks like an accelerator) or a DRA claim, in any container, init container or the
/// pod-level resources. A pod that does not is never judged against a budget.
pub fn asks_for_gpus(spec: &PodSpec) -> bool {
    let accelerator =
        |name: &String| classify(name).is_some() || unpriced_accelerator(name.as_str());
    let asks = |resources: Option<&k8s_openapi::api::core::v1::ResourceRequirements>| {
        resources.is_some_and(|r| {
            r.requests
                .iter()
                .chain(r.limits.iter())
                .any(|list| list.keys().any(accelerator))
                || r.claims.as_ref().is_some_and(|c| !c.is_empty())
        })
    };
    spec.containers.iter().any(|c| asks(c.resources.as_ref()))
        || spec
            .init_containers
            .iter()
            .flatten()
            .any(|c| asks(c.resources.as_ref()))
        || asks(spec.resources.as_ref())
        || spec.resource_claims.as_ref().is_some_and(|c| !c.is_empty())
}
