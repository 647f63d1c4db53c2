//! `/metrics` (SPEC §4.4): what is held and burning now, month-to-date spend, unallocated
//! capacity, source health, and the process. Built fresh from the current view on each scrape,
//! so a pod that ends leaves the exposition and label cardinality stays bounded by what runs.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::archive::Archive;
use super::process::gauge_with;
use super::quota::QuotaGate;
use super::view::View;
use crate::allocation::AllocationSet;
use crate::budget::BudgetScope;
use crate::pricing::{ProductIdentity, RateCard};
use crate::usage::UsageKey;

type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct HeldLabels {
    namespace: String,
    pod: String,
    cost_center: String,
    gpu_model: String,
    node: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct BurnLabels {
    namespace: String,
    pod: String,
    cost_center: String,
    gpu_model: String,
    node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct NodeLabels {
    node: String,
    gpu_model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct SpendLabels {
    cost_center: String,
    period: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

fn float(value: Decimal) -> f64 {
    value.to_f64().unwrap_or(f64::NAN)
}

fn gauge_family<L>(registry: &mut Registry, name: &str, help: &str, values: BTreeMap<L, Decimal>)
where
    L: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug + Send + Sync + 'static,
{
    let family = Family::<L, FloatGauge>::default();
    for (labels, value) in values {
        family.get_or_create(&labels).set(float(value));
    }
    registry.register(name, help, family);
}

/// What runs at the view's as-of.
#[derive(Default)]
struct Current {
    held: BTreeMap<HeldLabels, Decimal>,
    burn: BTreeMap<BurnLabels, Decimal>,
    /// Free units per (node, product identity), with the product's model label.
    free: BTreeMap<(String, ProductIdentity), (String, Decimal)>,
}

fn current(live: &AllocationSet, card: &RateCard, as_of: i64) -> Current {
    let name = |sym| live.names.resolve(sym).to_string();
    let mut now = Current::default();
    for c in live.capacity.iter().filter(|c| c.interval.end >= as_of) {
        let product = name(c.product);
        let entry = now
            .free
            .entry((name(c.node), card.product_identity(&product)))
            .or_insert_with(|| (card.model_label(&product), Decimal::ZERO));
        entry.1 += c.units.to_decimal();
    }
    for a in live.allocations.iter().filter(|a| a.interval.end >= as_of) {
        let product = name(a.product);
        let units = a.units.to_decimal();
        let burn = BurnLabels {
            namespace: name(a.namespace),
            pod: name(a.pod),
            cost_center: name(a.cost_center),
            gpu_model: card.model_label(&product),
            node: name(a.node),
        };
        let held = HeldLabels {
            namespace: burn.namespace.clone(),
            pod: burn.pod.clone(),
            cost_center: burn.cost_center.clone(),
            gpu_model: burn.gpu_model.clone(),
            node: burn.node.clone(),
            kind: a.kind.to_string(),
        };
        *now.held.entry(held).or_default() += units;
        if let Some(price) = card.price_at(&product, a.tier, a.price_override, as_of) {
            *now.burn.entry(burn).or_default() += units * price;
        }
        if let Some((_, free)) = now
            .free
            .get_mut(&(name(a.node), card.product_identity(&product)))
        {
            *free -= units;
        }
    }
    now
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct BudgetLabels {
    cost_center: String,
    namespace: String,
}

/// Budget, projected month-end spend without new pods, and headroom, per budget.
fn budgets(registry: &mut Registry, view: &View, quota: &QuotaGate, card: &RateCard) {
    let mut amount = BTreeMap::new();
    let mut projected = BTreeMap::new();
    let mut headroom = BTreeMap::new();
    let hours_left = view.spend.hours_left();
    for budget in quota.budgets() {
        let (labels, usage) = match &budget.scope {
            BudgetScope::CostCenter(name) => (
                BudgetLabels {
                    cost_center: name.clone(),
                    namespace: String::new(),
                },
                view.spend.cost_center(name),
            ),
            BudgetScope::Namespace(name) => (
                BudgetLabels {
                    cost_center: String::new(),
                    namespace: name.clone(),
                },
                view.spend.namespace(name),
            ),
        };
        let at_month_end = usage.spent + usage.burn_per_hour * hours_left;
        amount.insert(labels.clone(), budget.monthly);
        projected.insert(labels.clone(), at_month_end);
        headroom.insert(labels, budget.monthly - at_month_end);
    }
    let currency = card.currency();
    gauge_family(
        registry,
        "tollgate_budget",
        &format!("Monthly budget, in {currency}"),
        amount,
    );
    gauge_family(
        registry,
        "tollgate_budget_projected",
        &format!("Projected month-end spend at the current burn, in {currency}"),
        projected,
    );
    gauge_family(
        registry,
        "tollgate_budget_headroom",
        &format!("Budget minus projected month-end spend, in {currency}"),
        headroom,
    );
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SegmentLabels {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct UtilizationLabels {
    namespace: String,
    pod: String,
    gpu_model: String,
}

/// The latest DCGM utilization of each pod running now (the demo's simulated utilization of
/// this hour when it has no Prometheus).
fn utilization(registry: &mut Registry, view: &View, card: &RateCard, archive: &Archive) {
    let latest = archive
        .utilization
        .read()
        .unwrap_or_else(|p| p.into_inner());
    let hour = view.as_of.div_euclid(3_600) * 3_600;
    let ratio_of = |key: &UsageKey| match (&archive.prometheus, &archive.simulated) {
        (Some(_), _) => latest.get(key).and_then(|r| Decimal::from_f64_retain(*r)),
        (None, Some(simulated)) => simulated.hourly(key, hour),
        (None, None) => None,
    };
    let live = &view.live;
    let mut ratios: BTreeMap<UtilizationLabels, Decimal> = BTreeMap::new();
    for a in live
        .allocations
        .iter()
        .filter(|a| a.interval.end >= view.as_of)
    {
        let key = UsageKey::of(live, a);
        if let Some(ratio) = ratio_of(&key) {
            let labels = UtilizationLabels {
                namespace: live.names.resolve(a.namespace).to_string(),
                pod: live.names.resolve(a.pod).to_string(),
                gpu_model: card.model_label(live.names.resolve(a.product)),
            };
            ratios.insert(labels, ratio.round_dp(6));
        }
    }
    gauge_family(
        registry,
        "tollgate_gpu_utilization_ratio",
        "Latest DCGM utilization of a pod's GPUs (0–1)",
        ratios,
    );
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct TokenLabels {
    served_model: String,
    cost_center: String,
    namespace: String,
}

/// The cost per million tokens of the last hour, as the archive last priced it (models with
/// tokens only).
fn token_costs(registry: &mut Registry, card: &RateCard, archive: &Archive) {
    let served = archive
        .served_models
        .read()
        .unwrap_or_else(|p| p.into_inner());
    let values = served
        .iter()
        .filter_map(|line| {
            let [served_model, cost_center, namespace] = line.group.as_slice() else {
                return None;
            };
            let labels = TokenLabels {
                served_model: served_model.clone(),
                cost_center: cost_center.clone(),
                namespace: namespace.clone(),
            };
            Some((labels, line.per_million.tokens?))
        })
        .collect();
    gauge_family(
        registry,
        "tollgate_cost_per_million_tokens",
        &format!(
            "GPU cost of a million tokens a served model read and generated in the last hour, in {}",
            card.currency()
        ),
        values,
    );
}

/// The text exposition of the view; every series is labelled with the cluster's name (when it
/// has one), so that a global Prometheus tells the clusters apart.
pub fn render(view: &View, card: &RateCard, quota: &QuotaGate, archive: &Archive) -> String {
    let cluster = Some(archive.cluster.clone())
        .filter(|name| !name.is_empty())
        .map(|name| ("cluster".into(), name.into()));
    let mut registry = Registry::with_labels(cluster.into_iter());
    let now = current(&view.live, card, view.as_of);
    gauge_family(
        &mut registry,
        "tollgate_gpu_allocated_units",
        "GPU units held now (fractions for MIG, time-sliced and shared claims)",
        now.held,
    );
    gauge_family(
        &mut registry,
        "tollgate_gpu_cost_per_hour",
        &format!("Current GPU cost per hour of a pod, in {}", card.currency()),
        now.burn,
    );
    let mut unallocated: BTreeMap<NodeLabels, Decimal> = BTreeMap::new();
    // Pods holding more than a node has leave none of it free, never less than none (the
    // chargeback reports the excess as a warning).
    for ((node, _), (gpu_model, free)) in now.free {
        *unallocated
            .entry(NodeLabels { node, gpu_model })
            .or_default() += free.max(Decimal::ZERO);
    }
    gauge_family(
        &mut registry,
        "tollgate_unallocated_gpu_units",
        "GPU units of a node nobody holds now",
        unallocated,
    );

    let spend: BTreeMap<SpendLabels, Decimal> = view
        .spend
        .spent_by_cost_center()
        .map(|(cost_center, spent)| {
            let labels = SpendLabels {
                cost_center: cost_center.to_string(),
                period: "month".into(),
            };
            (labels, spent)
        })
        .collect();
    gauge_family(
        &mut registry,
        "tollgate_cost_center_spend",
        &format!(
            "Month-to-date GPU spend of a cost center, in {}",
            card.currency()
        ),
        spend,
    );
    // The spend above reads low while some of the month is not counted yet (history before
    // the ledger began, still being rolled up or not read): a metric has no room for the
    // warning reports and quota checks give, so this says it.
    gauge_with(
        &mut registry,
        "tollgate_spend_complete",
        "1 when month-to-date spend counts the whole month so far; 0 while some of the month's \
         history before the ledger began is not counted yet (spend reads low; quota checks follow \
         fail_mode)",
        if view.spend.incomplete.is_some() {
            0.0
        } else {
            1.0
        },
    );

    let up = [
        ("kubernetes", view.kubernetes_up),
        (
            "prometheus",
            archive.prometheus.as_ref().and_then(|p| p.up()),
        ),
    ];
    if up.iter().any(|(_, up)| up.is_some()) {
        let family = Family::<SourceLabels, Gauge>::default();
        for (source, up) in up {
            if let Some(up) = up {
                family
                    .get_or_create(&SourceLabels {
                        source: source.into(),
                    })
                    .set(i64::from(up));
            }
        }
        registry.register(
            "tollgate_source_up",
            "1 when the last read of the source worked",
            family,
        );
    }
    gauge_with(
        &mut registry,
        "tollgate_reconcile_duration_seconds",
        "How long the latest reconcile of the cluster with the ledger took",
        view.reconciled_in.as_secs_f64(),
    );
    let segments = Family::<SegmentLabels, Gauge>::default();
    for (state, count) in [("open", view.segments.0), ("closed", view.segments.1)] {
        segments
            .get_or_create(&SegmentLabels {
                state: state.into(),
            })
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }
    registry.register(
        "tollgate_ledger_segments",
        "Ledger segments kept in memory: open, and closed since the last rolled-up day",
        segments,
    );
    budgets(&mut registry, view, quota, card);
    utilization(&mut registry, view, card, archive);
    token_costs(&mut registry, card, archive);
    quota.register(&mut registry);
    super::process::register(&mut registry);

    let mut out = String::new();
    // Encoding into a String cannot fail.
    let _ = encode(&mut out, &registry);
    out
}
