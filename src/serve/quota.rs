//! The quota gate: one decision per request, from memory only, with reservations so that
//! concurrent admissions cannot over-admit, and the counters of SPEC §4.4.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use rust_decimal::Decimal;

use super::activity::Activity;
use super::view::View;
use crate::allocation::asks_for_gpus;
use crate::budget::{
    Budget, BudgetScope, OtherClusters, PodIdentity, Prospect, ProspectContext, ProspectError,
    QuotaDecision, QuotaInput, Reservation, Reservations, decide, prospect_from_count,
    prospect_from_pod, prospect_without_gpus, with_failure_mode,
};
use crate::config::{FailMode, QuotaSettings};
use crate::console::RecentDecision;
use crate::pricing::RateCard;

/// What a check is about: a pod spec, or a number of GPUs.
#[derive(Clone, Debug)]
pub enum Subject {
    /// The pod object (Kyverno's `request.object`, or the AdmissionReview's).
    Pod(Box<Pod>),
    /// `gpus` GPUs of `gpu_model` (the costliest when absent).
    Gpus {
        /// How many.
        gpus: Decimal,
        /// Which product or model.
        gpu_model: Option<String>,
    },
}

/// One quota check.
#[derive(Clone, Debug)]
pub struct CheckRequest {
    /// The namespace the pod would run in.
    pub namespace: String,
    /// The pod or the GPU count.
    pub subject: Subject,
    /// A cost center that overrides the pod's and the namespace's.
    pub cost_center: Option<String>,
    /// Decide without reserving.
    pub dry_run: bool,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    decision: &'static str,
}

/// Budgets, reservations, settings and the quota counters.
pub struct QuotaGate {
    budgets: Vec<Budget>,
    settings: QuotaSettings,
    cost_center_key: String,
    book: Mutex<Reservations>,
    checks: Family<DecisionLabels, Counter<u64, AtomicU64>>,
    durations: Histogram,
    activity: Activity,
    /// The other clusters' figures, for global budgets (replaced by each read).
    others: RwLock<Arc<OtherClusters>>,
}

impl QuotaGate {
    /// A gate over validated budgets.
    pub fn new(budgets: Vec<Budget>, settings: QuotaSettings, cost_center_key: String) -> Self {
        QuotaGate {
            budgets,
            settings,
            cost_center_key,
            book: Mutex::default(),
            checks: Family::default(),
            // 10 µs to ~80 ms.
            durations: Histogram::new(exponential_buckets(0.00001, 2.0, 14)),
            activity: Activity::default(),
            others: RwLock::default(),
        }
    }

    /// Whether a budget is global: the other clusters' figures are wanted.
    pub fn has_global_budgets(&self) -> bool {
        self.budgets.iter().any(|b| b.global)
    }

    /// Takes in the latest read of the other clusters' figures.
    pub fn set_other_clusters(&self, others: OtherClusters) {
        *self.others.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(others);
    }

    fn other_clusters(&self) -> Arc<OtherClusters> {
        self.others
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The budgets.
    pub fn budgets(&self) -> &[Budget] {
        &self.budgets
    }

    /// How many admitted pods are held and not yet seen running.
    pub fn reservations(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Reservations> {
        self.book
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn context<'a>(
        &'a self,
        view: &'a View,
        card: &'a RateCard,
        request: &'a CheckRequest,
    ) -> ProspectContext<'a> {
        ProspectContext {
            namespace: &request.namespace,
            namespace_meta: view.namespaces.get(&request.namespace),
            cost_center: request.cost_center.as_deref(),
            cost_center_key: &self.cost_center_key,
            card,
            at: view.as_of,
            claims: &view.claim_asks,
            live: &view.live,
            nodes: &view.nodes,
            placements: &view.placements,
        }
    }

    /// Decides, and reserves what an allowed, non-dry-run pod will hold (once per pod, however
    /// often it is checked). A pod asking for no GPU is allowed at once, before any budget is
    /// looked at. Never waits on anything but the reservation lock, held for the decision alone.
    pub fn check(
        &self,
        view: &View,
        card: &RateCard,
        request: &CheckRequest,
    ) -> Result<QuotaDecision, ProspectError> {
        let started = Instant::now();
        let outcome = self.decide(view, card, request);
        if let Ok(decision) = &outcome {
            self.activity.remember(RecentDecision {
                at: view.as_of,
                namespace: request.namespace.clone(),
                cost_center: decision.cost_center.clone(),
                allowed: decision.allowed,
                message: decision.message.clone(),
            });
        }
        let label = match &outcome {
            Ok(d) if d.allowed => "allow",
            Ok(_) => "deny",
            Err(_) => "error",
        };
        self.record(label, started);
        outcome
    }

    fn decide(
        &self,
        view: &View,
        card: &RateCard,
        request: &CheckRequest,
    ) -> Result<QuotaDecision, ProspectError> {
        let context = self.context(view, card, request);
        let prospect = match &request.subject {
            Subject::Pod(pod) if !pod.spec.as_ref().is_some_and(asks_for_gpus) => {
                return not_judged(
                    prospect_without_gpus(pod, &context),
                    "the pod asks for no GPU or DRA device",
                    view,
                    card,
                );
            }
            // Its claims ask for devices that are no GPU (a ComputeDomain channel, admin access
            // for monitoring), or it asks for none: it adds nothing to any budget.
            Subject::Pod(pod) => match prospect_from_pod(pod, &context)? {
                prospect if prospect.units.is_zero() => {
                    return not_judged(prospect, "the pod would hold no GPU", view, card);
                }
                prospect => prospect,
            },
            Subject::Gpus { gpus, gpu_model } => {
                prospect_from_count(*gpus, gpu_model.as_deref(), &context)?
            }
        };
        let now = view.now();
        let others = self.other_clusters();
        let limit = Duration::from_secs(self.settings.max_staleness_seconds);
        let mut age = view.age();
        // A global budget of the pod's cost center decides on the other clusters' figures too:
        // the older of theirs and this cluster's is the data's age.
        if self
            .budgets
            .iter()
            .any(|b| {
                b.global
                    && matches!(&b.scope, BudgetScope::CostCenter(name) if *name == prospect.cost_center)
            })
        {
            // Their samples carry Prometheus's (wall-clock) times.
            let wall = jiff::Timestamp::now().as_second();
            let theirs = others
                .as_of
                .map(|at| Duration::from_secs(u64::try_from(wall - at).unwrap_or(0)));
            age = match (age, theirs) {
                (Some(ours), Some(theirs)) => Some(ours.max(theirs)),
                _ => None,
            };
        }
        // Month-to-date spend that leaves out days the store does not hold yet is no surer.
        let old = age.is_none_or(|a| a > limit);
        let incomplete = view.spend.incomplete.as_deref().filter(|_| !old);
        let stale = old || incomplete.is_some();
        let mut book = self.lock();
        book.settle(&view.arrivals, now);
        let decision = decide(QuotaInput {
            prospect: &prospect,
            spend: &view.spend,
            reserved: book.usage(
                &prospect.cost_center,
                PodIdentity {
                    namespace: &prospect.namespace,
                    name: prospect.name.as_deref(),
                    uid: prospect.uid.as_deref(),
                },
                now,
            ),
            budgets: &self.budgets,
            currency: card.currency(),
            rounding: card.rounding(),
            stale,
            others: &others,
        })?;
        let why = match incomplete {
            Some(missing) => format!("Tollgate's month-to-date spend is incomplete: {missing}"),
            None => format!(
                "Tollgate's budget data is {} s old",
                age.map_or(u64::MAX, |a| a.as_secs())
            ),
        };
        let decision = with_failure_mode(
            decision,
            self.settings.fail_mode == FailMode::FailClosed,
            &why,
        );
        if decision.allowed && !request.dry_run && !prospect.units.is_zero() {
            book.reserve(Reservation {
                namespace: prospect.namespace,
                name: prospect.name,
                uid: prospect.uid,
                cost_center: prospect.cost_center,
                units: prospect.units,
                per_hour: prospect.per_hour,
                expires: now.saturating_add(
                    i64::try_from(self.settings.reservation_ttl_seconds).unwrap_or(i64::MAX),
                ),
            });
        }
        Ok(decision)
    }

    /// Counts a check that failed before a decision (a malformed request).
    pub fn record_error(&self, started: Instant) {
        self.record("error", started);
    }

    fn record(&self, decision: &'static str, started: Instant) {
        self.checks
            .get_or_create(&DecisionLabels { decision })
            .inc();
        let took = started.elapsed();
        self.durations.observe(took.as_secs_f64());
        self.activity.count(took);
    }

    /// What the gate did lately.
    pub fn activity(&self) -> &Activity {
        &self.activity
    }

    /// Adds the quota counters to a scrape.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "tollgate_quota_checks",
            "Quota checks by decision",
            self.checks.clone(),
        );
        registry.register(
            "tollgate_quota_check_duration_seconds",
            "Time to decide a quota check",
            self.durations.clone(),
        );
    }
}

/// The answer for a pod that asks for no GPU: allowed, whatever its team has spent, stale data
/// or not; the figures shown are its cost center's.
fn not_judged(
    prospect: Prospect,
    why: &str,
    view: &View,
    card: &RateCard,
) -> Result<QuotaDecision, ProspectError> {
    let mut decision = decide(QuotaInput {
        prospect: &prospect,
        spend: &view.spend,
        reserved: Default::default(),
        budgets: &[],
        currency: card.currency(),
        rounding: card.rounding(),
        stale: false,
        others: &OtherClusters::default(),
    })?;
    decision.message = format!("{why}: allowed without a budget check");
    Ok(decision)
}
