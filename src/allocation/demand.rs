//! A pod's demand for each GPU resource, by the Kubernetes effective-request rule.
//!
//! The scheduler reserves, per resource, the larger of what the app containers (plus running
//! sidecars) need together and what the largest init container needs while it runs (plus the
//! sidecars started before it). For extended resources a limit without a request counts as the
//! request.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use rust_decimal::Decimal;

use super::device::classify;
use crate::quantity::{QuantityError, parse_quantity};

/// GPU resources a container asks for: `(resource, amount)`, requests preferred over limits.
fn container_gpus(container: &Container) -> Result<Vec<(String, Decimal)>, QuantityError> {
    let Some(resources) = &container.resources else {
        return Ok(Vec::new());
    };
    let requests = resources.requests.as_ref();
    let limits = resources.limits.as_ref();
    let names: std::collections::BTreeSet<&String> = requests
        .into_iter()
        .flat_map(|r| r.keys())
        .chain(limits.into_iter().flat_map(|l| l.keys()))
        .filter(|name| classify(name).is_some())
        .collect();
    names
        .into_iter()
        .map(|name| {
            let quantity = requests
                .and_then(|r| r.get(name))
                .or_else(|| limits.and_then(|l| l.get(name)))
                .map(|q| q.0.as_str())
                .unwrap_or("0");
            Ok((name.clone(), parse_quantity(quantity)?))
        })
        .collect()
}

/// The pod's effective demand per GPU resource name. `excluded` lists `(container, resource)`
/// pairs already served by a DRA extended-resource claim, which must not be counted again.
/// Sums saturate at `Decimal::MAX`: a demand that large is refused by whoever sizes it (a
/// warning when allocations are built, an error naming the resource in a quota check), never a
/// panic.
pub(crate) fn gpu_demand(
    spec: &PodSpec,
    excluded: &[(String, String)],
) -> Result<BTreeMap<String, Decimal>, QuantityError> {
    let amounts = |container: &Container| -> Result<Vec<(String, Decimal)>, QuantityError> {
        Ok(container_gpus(container)?
            .into_iter()
            .filter(|(resource, _)| {
                !excluded
                    .iter()
                    .any(|(c, r)| *c == container.name && r == resource)
            })
            .collect())
    };
    let mut app: BTreeMap<String, Decimal> = BTreeMap::new();
    for container in &spec.containers {
        for (resource, amount) in amounts(container)? {
            let total = app.entry(resource).or_default();
            *total = total.saturating_add(amount);
        }
    }
    let mut sidecars: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut init_peak: BTreeMap<String, Decimal> = BTreeMap::new();
    for container in spec.init_containers.iter().flatten() {
        let restartable = container.restart_policy.as_deref() == Some("Always");
        for (resource, amount) in amounts(container)? {
            let running = sidecars.get(&resource).copied().unwrap_or_default();
            let peak = init_peak.entry(resource.clone()).or_default();
            *peak = (*peak).max(running.saturating_add(amount));
            if restartable {
                let total = sidecars.entry(resource).or_default();
                *total = total.saturating_add(amount);
            }
        }
    }
    let mut demand = BTreeMap::new();
    let resources: std::collections::BTreeSet<&String> = app
        .keys()
        .chain(sidecars.keys())
        .chain(init_peak.keys())
        .collect();
    for resource in resources {
        let steady = app
            .get(resource)
            .copied()
            .unwrap_or_default()
            .saturating_add(sidecars.get(resource).copied().unwrap_or_default());
        let peak = init_peak.get(resource).copied().unwrap_or_default();
        let effective = steady.max(peak);
        if effective > Decimal::ZERO {
            demand.insert(resource.clone(), effective);
        }
    }
    Ok(demand)
}
