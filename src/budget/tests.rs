//! Budget validation and reservation settling; decisions are tested end to end in
//! `tests/quota.rs` against hand-computed figures.

use rust_decimal::Decimal;

use super::*;
use crate::allocation::{Allocation, AllocationKind, AllocationSet, CostCenterSource};
use crate::pricing::PriceTier;
use crate::time::Interval;
use crate::units::GpuUnits;

fn raw(cost_center: Option<&str>, namespace: Option<&str>, monthly: Option<&str>) -> RawBudget {
    RawBudget {
        cost_center: cost_center.map(str::to_string),
        namespace: namespace.map(str::to_string),
        monthly: monthly.map(str::to_string),
        ..RawBudget::default()
    }
}

#[test]
fn budgets_are_validated_with_errors_naming_the_entry() {
    let err = |budgets: &[RawBudget]| validate_budgets(budgets).unwrap_err().to_string();
    assert_eq!(
        err(&[raw(None, None, Some("1"))]),
        "budget[0]: set cost_center = \"…\" or namespace = \"…\""
    );
    assert_eq!(
        err(&[raw(Some("a"), Some("b"), Some("1"))]),
        "budget[0]: set cost_center or namespace, not both"
    );
    assert_eq!(
        err(&[raw(Some("cc-1"), None, None)]),
        "budget[0] (cost center cc-1): monthly: missing (write e.g. monthly = \"25000.00\")"
    );
    assert_eq!(
        err(&[raw(Some("cc-1"), None, Some("lots"))]),
        "budget[0] (cost center cc-1): monthly: \"lots\" is not a decimal number"
    );
    let mut warn = raw(None, Some("team-a"), Some("10"));
    warn.warn_at = Some("80".into());
    assert_eq!(
        err(&[warn]),
        "budget[0] (namespace team-a): warn_at: a share of the budget, from 0 to 1 (e.g. 0.8)"
    );
    assert_eq!(
        err(&[
            raw(Some("cc-1"), None, Some("1")),
            raw(Some("cc-1"), None, Some("2"))
        ]),
        "budget[1] (cost center cc-1): a second budget for the same scope (the first is budget[0])"
    );
    assert_eq!(
        err(&[raw(Some(" __unallocated__ "), None, Some("1000"))]),
        "budget[0] (cost center __unallocated__): __unallocated__ names the capacity no pod holds, not a cost center: no pod is charged to it and it counts toward no budget, so this one could never be spent"
    );
    let ok = validate_budgets(&[raw(Some(" cc-1 "), None, Some("25000.00"))]).unwrap();
    assert_eq!(ok[0].scope, BudgetScope::CostCenter("cc-1".into()));
    assert!(ok[0].enforce);
}

fn running(set: &mut AllocationSet, namespace: &str, pod: &str, uid: &str, units: i64, as_of: i64) {
    let allocation = Allocation {
        namespace: set.names.intern(namespace),
        pod: set.names.intern(pod),
        pod_uid: set.names.intern(uid),
        resource_id: set.names.intern(uid),
        claim: crate::allocation::Sym::EMPTY,
        node: set.names.intern("n"),
        product: set.names.intern("NVIDIA-H100-80GB-HBM3"),
        kind: AllocationKind::Gpu,
        units: GpuUnits::whole(units),
        interval: Interval::new(as_of - 60, as_of),
        tier: PriceTier::OnDemand,
        price_override: None,
        cost_center: set.names.intern("cc"),
        cost_center_source: CostCenterSource::PodLabel,
    };
    set.allocations.push(allocation);
}

/// A check about no particular pod of `namespace`.
fn anywhere(namespace: &str) -> PodIdentity<'_> {
    PodIdentity {
        namespace,
        name: None,
        uid: None,
    }
}

fn hold(namespace: &str, name: Option<&str>, units: i64, expires: i64) -> Reservation {
    Reservation {
        namespace: namespace.into(),
        name: name.map(str::to_string),
        uid: None,
        cost_center: "cc".into(),
        units: Decimal::from(units),
        per_hour: Decimal::from(3 * units),
        expires,
    }
}

#[test]
fn holds_are_released_by_the_pods_that_show_up_or_by_time() {
    let mut book = Reservations::default();
    book.reserve(hold("a", Some("named-0"), 2, 1_000));
    book.reserve(hold("a", None, 1, 1_000));
    book.reserve(hold("a", None, 4, 1_000));
    book.reserve(hold("b", None, 1, 500));
    let (cc, ns) = book.usage("cc", anywhere("a"), 100);
    assert_eq!(
        (cc.units, ns.units, cc.burn_per_hour),
        (Decimal::from(8), Decimal::from(7), Decimal::from(24))
    );

    // A pod already running at the first read is not a new arrival for any hold…
    let mut arrivals = Arrivals::default();
    let mut live = AllocationSet::default();
    running(&mut live, "a", "old", "uid-old", 1, 100);
    arrivals.take_in(&live, 100, None);
    book.settle(&arrivals.log(), 100);
    assert_eq!(book.len(), 4);
    // …but pods that appear later release the hold with their name, or a nameless one of the
    // same units in their namespace.
    let mut live = AllocationSet::default();
    running(&mut live, "a", "old", "uid-old", 1, 200);
    running(&mut live, "a", "named-0", "uid-named", 2, 200);
    running(&mut live, "a", "web-x9z", "uid-gen", 4, 200);
    arrivals.take_in(&live, 200, None);
    book.settle(&arrivals.log(), 200);
    assert_eq!(book.len(), 2);
    let (_, ns) = book.usage("cc", anywhere("a"), 200);
    assert_eq!(ns.units, Decimal::ONE);
    // Reading the same pods again is no new arrival; time lets the rest lapse.
    arrivals.take_in(&live, 200, None);
    book.settle(&arrivals.log(), 200);
    assert_eq!(book.len(), 2);
    book.settle(&arrivals.log(), 600);
    assert_eq!(book.len(), 1, "b's hold expired at 500");
    book.settle(&arrivals.log(), 1_000);
    assert!(book.is_empty());
    // An incremental read names what it read again: pods it did not touch keep running.
    let mut only_new = AllocationSet::default();
    running(&mut only_new, "a", "web-2", "uid-2", 1, 300);
    let touched = crate::ledger::Touched {
        pods: ["uid-2".to_string()].into_iter().collect(),
        ..Default::default()
    };
    book.reserve(hold("a", None, 1, 2_000));
    arrivals.take_in(&only_new, 300, Some(&touched));
    book.settle(&arrivals.log(), 300);
    assert!(book.is_empty(), "web-2 arrived and released the hold");
}

#[test]
fn the_same_pod_checked_twice_holds_once() {
    let mut book = Reservations::default();
    // A retried check, or the Kyverno rule and the native webhook both asking for one pod.
    book.reserve(hold("a", Some("web-0"), 2, 1_000));
    book.reserve(hold("a", Some("web-0"), 2, 1_200));
    // A pod known by its UID only (validating webhooks see the UID).
    let by_uid = || Reservation {
        uid: Some("uid-7".into()),
        ..hold("a", None, 3, 1_000)
    };
    book.reserve(by_uid());
    book.reserve(by_uid());
    // Bare GPU counts identify nothing: each holds.
    book.reserve(hold("a", None, 1, 1_000));
    book.reserve(hold("a", None, 1, 1_000));
    assert_eq!(book.len(), 4);
    let (_, ns) = book.usage("cc", anywhere("a"), 100);
    assert_eq!(ns.units, Decimal::from(2 + 3 + 1 + 1));

    // The UID's pod arrives under its generated name, holding other units than asked (a
    // template's devices): its hold goes, the nameless counts stay.
    let mut arrivals = Arrivals::default();
    arrivals.take_in(&AllocationSet::default(), 100, None);
    let mut live = AllocationSet::default();
    running(&mut live, "a", "job-x7k2q", "uid-7", 2, 200);
    arrivals.take_in(&live, 200, None);
    book.settle(&arrivals.log(), 200);
    assert_eq!(book.len(), 3);
    let (_, ns) = book.usage("cc", anywhere("a"), 200);
    assert_eq!(ns.units, Decimal::from(2 + 1 + 1));
}
