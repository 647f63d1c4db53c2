//! Cost engine tests on small hand-built allocation sets, plus properties checked against a
//! naive per-allocation reference computation.

use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use super::*;
use crate::allocation::{
    Allocation, AllocationKind, AllocationSet, CostCenterSource, NodeCapacity, UNALLOCATED,
};
use crate::pricing::{PriceTier, RateCard};
use crate::time::{Interval, Step, parse_time};
use crate::units::GpuUnits;

const CARD: &str = r#"
currency = "USD"
[[gpu]]
model = "H100"
on_demand = "4.00"
spot = "2.00"
until = "2026-11-01T12:00:00Z"
[[gpu]]
model = "H100"
on_demand = "3.00"
from = "2026-11-01T12:00:00Z"
[[gpu]]
model = "L4"
on_demand = "0.70"
"#;

fn card() -> RateCard {
    RateCard::parse(CARD, "test").unwrap()
}

fn t(hour: i64) -> i64 {
    parse_time("2026-11-01T00:00:00Z").unwrap() + hour * 3600
}

/// A pod holding `units` of `product` on `node` from hour `from` to hour `to` of 2026-11-01.
struct Hold<'a> {
    cost_center: &'a str,
    namespace: &'a str,
    pod: &'a str,
    node: &'a str,
    product: &'a str,
    units: GpuUnits,
    hours: (i64, i64),
    tier: PriceTier,
}

fn hold<'a>(
    cost_center: &'a str,
    product: &'a str,
    units: GpuUnits,
    hours: (i64, i64),
) -> Hold<'a> {
    Hold {
        cost_center,
        namespace: "ns",
        pod: "p",
        node: "n1",
        product,
        units,
        hours,
        tier: PriceTier::OnDemand,
    }
}

fn set_of(holds: &[Hold<'_>], capacity: &[(&str, &str, i64)]) -> AllocationSet {
    let mut set = AllocationSet::default();
    for h in holds {
        let a = Allocation {
            namespace: set.names.intern(h.namespace),
            pod: set.names.intern(h.pod),
            pod_uid: set.names.intern(h.pod),
            resource_id: set.names.intern(h.pod),
            claim: crate::allocation::Sym::EMPTY,
            node: set.names.intern(h.node),
            product: set.names.intern(h.product),
            kind: AllocationKind::Gpu,
            units: h.units,
            interval: Interval::new(t(h.hours.0), t(h.hours.1)),
            tier: h.tier,
            price_override: None,
            cost_center: set.names.intern(h.cost_center),
            cost_center_source: CostCenterSource::PodLabel,
        };
        set.allocations.push(a);
    }
    for (node, product, gpus) in capacity {
        let c = NodeCapacity {
            node: set.names.intern(node),
            product: set.names.intern(product),
            units: GpuUnits::whole(*gpus),
            interval: Interval::new(t(-100), t(24)),
            tier: PriceTier::OnDemand,
            price_override: None,
        };
        set.capacity.push(c);
    }
    set
}

fn request(group_by: &str, step: Step) -> ReportRequest {
    ReportRequest {
        window: Interval::new(t(0), t(24)),
        step,
        group_by: group_by.parse().unwrap(),
        share_unallocated: false,
        only: Default::default(),
    }
}

/// The report of `set` by cost center over 2026-11-01, unallocated capacity shared out.
fn shared_by_cost_center(set: &AllocationSet) -> CostReport {
    let mut shared = request("cost_center", Step::Window);
    shared.share_unallocated = true;
    cost_report(&[set], &card(), &shared).unwrap()
}

/// Each line's period start, group values, GPU-hours and cost.
fn by_period(report: &CostReport) -> Vec<(i64, String, Decimal, Option<Decimal>)> {
    let lines = report.lines.iter();
    lines
        .map(|l| {
            let figures = &l.figures;
            let group = l.group.join("/");
            (l.period.start, group, figures.gpu_hours, figures.cost)
        })
        .collect()
}

fn summary(report: &CostReport) -> Vec<(String, Decimal, Option<Decimal>, Decimal)> {
    report
        .lines
        .iter()
        .map(|l| {
            (
                l.group.join("/"),
                l.figures.gpu_hours,
                l.figures.cost,
                l.figures.unpriced_gpu_hours,
            )
        })
        .collect()
}

#[test]
fn allocations_are_split_at_price_changes() {
    // Two GPUs from 10:00 to 14:00: 2 h at 4.00 and 2 h at 3.00 per GPU.
    let set = set_of(
        &[hold("cc", "NVIDIA H100", GpuUnits::whole(2), (10, 14))],
        &[],
    );
    let report = cost_report(&[&set], &card(), &request("cost_center", Step::Window)).unwrap();
    assert_eq!(
        summary(&report),
        vec![("cc".into(), dec!(8), Some(dec!(28.00)), dec!(0))]
    );
}

#[test]
fn tiers_fall_back_per_period() {
    let mut spot = hold("cc", "NVIDIA H100", GpuUnits::ONE, (10, 14));
    spot.tier = PriceTier::Spot;
    let set = set_of(&[spot], &[]);
    let report = cost_report(&[&set], &card(), &request("cost_center", Step::Window)).unwrap();
    // 2 h spot at 2.00, then 2 h in a period without spot price: its on-demand 3.00.
    assert_eq!(report.lines[0].figures.cost, Some(dec!(10.00)));
}

#[test]
fn unknown_models_are_unpriced_never_zero() {
    let set = set_of(
        &[
            hold("a", "Mystery GPU", GpuUnits::ONE, (0, 3)),
            hold("b", "NVIDIA L4", GpuUnits::ratio(1, 3).unwrap(), (0, 3)),
            hold("b", "Mystery GPU", GpuUnits::ONE, (0, 1)),
        ],
        &[],
    );
    let report = cost_report(&[&set], &card(), &request("cost_center", Step::Window)).unwrap();
    assert_eq!(
        summary(&report),
        vec![
            ("a".into(), dec!(3), None, dec!(3)),
            ("b".into(), dec!(2), Some(dec!(0.70)), dec!(1)),
        ]
    );
    let warnings = report.warnings.texts();
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].starts_with("GPU model \"Mystery GPU\" has no price in test for 4 GPU-hours")
    );
    let printed = report.chargeback();
    assert_eq!(printed.lines[0].figures.cost, None);
    assert_eq!(printed.total.cost, Some(dec!(0.70)));
    assert_eq!(printed.total.unpriced_gpu_hours, dec!(4.0000));
}

#[test]
fn unpriced_hours_print_on_unpriced_lines_only_and_all_of_their_hours() {
    // Team a holds an unpriced GPU for 2 s: 2/3600 h = 5.5556 units of 0.0001 h, all of them
    // unpriced. Team b holds an L4 for 1 s: 2.7778 units, priced. Unpriced hours first:
    // 5.5556 units print as 6, all on a (0.0006). Hours hold them: a, wholly unpriced, prints
    // its 6 units; b starts at its floor, 2; 8.3333 units print as 8 = 6 + 2, so b keeps 0.0002.
    // By largest remainders alone hours would be a 5, b 3 (b's remainder 0.7778 beats a's
    // 0.5556) and the unpriced unit would land on b, a priced line, or above a's hours.
    let mut set = set_of(
        &[
            hold("a", "Mystery GPU", GpuUnits::ONE, (1, 2)),
            hold("b", "NVIDIA L4", GpuUnits::ONE, (1, 2)),
        ],
        &[],
    );
    set.allocations[0].interval = Interval::new(t(1), t(1) + 2);
    set.allocations[1].interval = Interval::new(t(1), t(1) + 1);
    let report = cost_report(&[&set], &card(), &request("cost_center", Step::Window)).unwrap();
    // Rounded in place, the report's lines becoming the chargeback's.
    let printed = report.into_chargeback();
    let hours: Vec<(Decimal, Decimal)> = printed
        .lines
        .iter()
        .map(|l| (l.figures.gpu_hours, l.figures.unpriced_gpu_hours))
        .collect();
    assert_eq!(
        hours,
        vec![(dec!(0.0006), dec!(0.0006)), (dec!(0.0002), dec!(0.0000))]
    );
    assert_eq!(printed.total.gpu_hours, dec!(0.0008));
    assert_eq!(printed.total.unpriced_gpu_hours, dec!(0.0006));
}

#[test]
fn capacity_held_to_the_last_fraction_leaves_no_unallocated_line() {
    // One H100 held for a few seconds by parts adding up to exactly one GPU (a half, three
    // tenths and a fifth; a third, a sixth and a half; two sevenths, a half and three
    // fourteenths): nothing is left over. Each unit denominator's hours are divided apart
    // (3 s of a half: 3/7200 h, a decimal that does not end in 28 digits), and for some of
    // these lengths their sum against the capacity's left a residue of 10⁻²⁸ h: a line of
    // 0.0000 hours, or 0.0001 where the residue ranked first for a unit.
    let splits = [
        [(1, 2), (3, 10), (1, 5)],
        [(1, 3), (1, 6), (1, 2)],
        [(2, 7), (1, 2), (3, 14)],
    ];
    for parts in splits {
        for seconds in 1..=12 {
            let holds: Vec<Hold<'_>> = parts
                .iter()
                .zip(["p1", "p2", "p3"])
                .map(|(&(numer, denom), pod)| Hold {
                    pod,
                    ..hold("a", "H100", GpuUnits::ratio(numer, denom).unwrap(), (1, 2))
                })
                .collect();
            let mut set = set_of(&holds, &[("n1", "H100", 1)]);
            let held = Interval::new(t(1), t(1) + seconds);
            for a in &mut set.allocations {
                a.interval = held;
            }
            set.capacity[0].interval = held;
            let request = request("cost_center,pod", Step::Window);
            let report = cost_report(&[&set], &card(), &request).unwrap();
            let centers: Vec<&str> = report
                .lines
                .iter()
                .map(|l| l.group.get(0).unwrap())
                .collect();
            assert_eq!(centers, ["a", "a", "a"], "{parts:?} for {seconds} s");
        }
    }
}

#[test]
fn a_price_override_prices_even_an_unknown_model() {
    let mut set = set_of(&[hold("a", "Mystery GPU", GpuUnits::ONE, (0, 2))], &[]);
    set.allocations[0].price_override = Some(dec!(1.25));
    let report = cost_report(&[&set], &card(), &request("gpu_model", Step::Window)).unwrap();
    assert_eq!(
        summary(&report),
        vec![("Mystery GPU".into(), dec!(2), Some(dec!(2.50)), dec!(0))]
    );
    assert!(report.warnings.texts().is_empty());
}

#[test]
fn unallocated_capacity_completes_the_node_and_can_be_shared() {
    // One L4 node with 2 GPUs for 24 h = 48 GPU-h = 33.60. Team a holds 1 GPU for 12 h (8.40),
    // team b half a GPU for 24 h (8.40): 16.80 of capacity is unallocated.
    let set = set_of(
        &[
            hold("a", "NVIDIA L4", GpuUnits::ONE, (0, 12)),
            hold("b", "NVIDIA L4", GpuUnits::ratio(1, 2).unwrap(), (0, 24)),
        ],
        &[("n1", "NVIDIA L4", 2)],
    );
    let report = cost_report(
        &[&set],
        &card(),
        &request("cost_center,namespace", Step::Window),
    )
    .unwrap();
    assert_eq!(
        summary(&report),
        vec![
            (
                "__unallocated__/".into(),
                dec!(24),
                Some(dec!(16.80)),
                dec!(0)
            ),
            ("a/ns".into(), dec!(12), Some(dec!(8.40)), dec!(0)),
            ("b/ns".into(), dec!(12), Some(dec!(8.40)), dec!(0)),
        ]
    );
    let by_model = cost_report(&[&set], &card(), &request("gpu_model", Step::Window)).unwrap();
    assert_eq!(
        summary(&by_model),
        vec![("L4".into(), dec!(48), Some(dec!(33.60)), dec!(0))]
    );

    let report = shared_by_cost_center(&set);
    assert_eq!(
        summary(&report),
        vec![
            ("a".into(), dec!(24), Some(dec!(16.80)), dec!(0)),
            ("b".into(), dec!(24), Some(dec!(16.80)), dec!(0)),
        ]
    );
}

/// A report over 2026-11-01 grouped by `group_by`, of lines made by hand: each line's group
/// values and exact figures.
fn by_hand(group_by: &str, lines: Vec<(Vec<String>, Figures)>) -> CostReport {
    let line = |(group, figures): (Vec<String>, Figures)| CostLine {
        period: Interval::new(t(0), t(24)),
        group: group.into_iter().collect(),
        figures,
    };
    CostReport {
        request: request(group_by, Step::Window),
        currency: crate::money::Currency::new("USD").unwrap(),
        rounding: crate::money::Rounding::HalfEven,
        lines: lines.into_iter().map(line).collect(),
        warnings: Default::default(),
    }
}

/// A report of one line per `(name, gpu_hours, unpriced_gpu_hours)`, cost left unknown: what
/// rounding the hours and their unpriced part makes of it, as (hours, unpriced) per line.
fn hours_printed(lines: &[(&str, Decimal, Decimal)]) -> Vec<(Decimal, Decimal)> {
    let lines = lines.iter().map(|&(name, hours, unpriced)| {
        let figures = Figures {
            gpu_hours: hours,
            unpriced_gpu_hours: unpriced,
            ..Figures::default()
        };
        (vec![name.to_string()], figures)
    });
    by_hand("cost_center", lines.collect())
        .chargeback()
        .lines
        .iter()
        .map(|l| (l.figures.gpu_hours, l.figures.unpriced_gpu_hours))
        .collect()
}

/// Lines of (cost center, namespace, exact cost) over 2026-11-01, no hours.
fn costing(lines: &[(&str, &str, Decimal)]) -> CostReport {
    let lines = lines.iter().map(|&(cost_center, namespace, cost)| {
        let figures = Figures {
            cost: Some(cost),
            ..Figures::default()
        };
        (
            vec![cost_center.to_string(), namespace.to_string()],
            figures,
        )
    });
    by_hand("cost_center,namespace", lines.collect())
}

/// Each part of a report in parts rounded by cost center and namespace
/// ([`CostReport::rounded_in_groups`]), the rows `only` keeps: their costs, part by part. With
/// `known`, each group's line over all parts is known before the first ([`GroupLines`]).
fn costs_in_groups(
    parts: &[CostReport],
    only: &LineFilter,
    known: bool,
) -> Vec<Vec<Option<Decimal>>> {
    let lines = known.then(|| {
        let mut window = GroupTotals::default();
        parts.iter().for_each(|p| window.absorb(&p.group_totals()));
        let money = (&parts[0].currency, parts[0].rounding);
        std::sync::Arc::new(GroupLines::new(window, only, money))
    });
    let mut before = GroupTotals::default();
    let mut printed = Vec::new();
    for (at, part) in parts.iter().enumerate() {
        let carries = Carries {
            before: before.clone(),
            printed: None,
            followed: at + 1 < parts.len(),
            lines: lines.clone(),
        };
        let figures = part.rounded_in_groups(only, &carries);
        let keys = part.request.group_by.keys();
        let kept = part.lines.iter().zip(figures);
        let kept = kept.filter(|(line, _)| only.keeps(keys, line.group.iter()));
        printed.push(kept.map(|(_, figures)| figures.cost).collect());
        before.absorb(&part.group_totals());
    }
    printed
}

/// Whether a row prints nothing of a column it has none of: no unpriced hours on a priced row,
/// no cost on a row without one.
fn prints_only_what_it_has(exact: &Figures, printed: &Figures) -> bool {
    let has_cost = exact.cost.is_some_and(|c| !c.is_zero());
    (!exact.unpriced_gpu_hours.is_zero() || printed.unpriced_gpu_hours.is_zero())
        && (has_cost || printed.cost.is_none_or(|c| c.is_zero()))
}

/// Whether a row of a part rounded toward its group's line ([`GroupLines`]) prints its cost
/// within a cent of its exact cost, its unpriced hours within a unit of theirs and no more than
/// its hours, and a wholly unpriced row's hours as its unpriced hours. (Its hours can be a unit
/// further where its group's line's hours less its unpriced hours, each rounded apart, are a
/// unit from the group's exact priced hours.)
fn prints_its_parts_within_a_unit(exact: &Figures, printed: &Figures) -> bool {
    let within = |exact: Decimal, printed: Decimal, unit: Decimal| (exact - printed).abs() < unit;
    let cost = match (exact.cost, printed.cost) {
        (Some(exact), Some(printed)) => within(exact, printed, dec!(0.01)),
        (exact, printed) => exact.is_none() && printed.is_none_or(|c| c.is_zero()),
    };
    let unpriced = (exact.unpriced_gpu_hours, printed.unpriced_gpu_hours);
    let wholly_unpriced = exact.unpriced_gpu_hours == exact.gpu_hours;
    cost && within(unpriced.0, unpriced.1, dec!(0.0001))
        && printed.unpriced_gpu_hours <= printed.gpu_hours
        && (!wholly_unpriced || printed.unpriced_gpu_hours == printed.gpu_hours)
}

/// Parts' costs in cents, as [`costs_in_groups`] gives them.
fn cents(values: &[&[i64]]) -> Vec<Vec<Option<Decimal>>> {
    let cent = |c: i64| Some(Decimal::new(c, 2));
    values
        .iter()
        .map(|part| part.iter().map(|&c| cent(c)).collect())
        .collect()
}

#[test]
fn each_part_rounds_a_group_toward_its_line_so_a_whole_row_prints_whole() {
    // a/x, b/y and c/z cost 0.006 each in the first part and a whole 1.00 each (a pod's hour
    // at 1.00) in the last. The chargeback: 1.006 each, 3.018 → 3.02, the floors make 3.00,
    // and the two cents go to the largest remainders, tied, the first lines: a/x 1.01, b/y
    // 1.01, c/z 1.00. a/x's and b/y's lines are their nearest, so their first part prints
    // 0.006 to the nearest, 0.01; c/z's line is below its nearest, so its parts round down:
    // 0.00, then its whole hour 1.00. Each group its line, each row its exact cost rounded
    // down or up. Before, every group's first part printed its nearest, 0.01, and the last
    // brought c/z to its line: 0.99 for an hour at 1.00.
    let first = costing(&[
        ("a", "x", dec!(0.006)),
        ("b", "y", dec!(0.006)),
        ("c", "z", dec!(0.006)),
    ]);
    let last = costing(&[
        ("a", "x", dec!(1.00)),
        ("b", "y", dec!(1.00)),
        ("c", "z", dec!(1.00)),
    ]);
    assert_eq!(
        costs_in_groups(&[first, last], &LineFilter::default(), true),
        cents(&[&[1, 1, 0], &[100, 100, 100]])
    );
}

#[test]
fn parts_rounded_in_groups_add_up_to_each_group_s_chargeback_line() {
    let everything = LineFilter::default();
    // a/x and b/y cost 0.004 each, two parts. The chargeback: 0.008 each → 0.01 and 0.01
    // (0.016 → 0.02). One running total would have printed a/x 0.01 then 0.01 more (the tie
    // to the first line both times) and b/y nothing. Each group carries on from its own: the
    // first part rounds each 0.004 down, the last brings each to its line, 0.01.
    let day = costing(&[("a", "x", dec!(0.004)), ("b", "y", dec!(0.004))]);
    let two_days = [day.clone(), day.clone()];
    for known in [false, true] {
        assert_eq!(
            costs_in_groups(&two_days, &everything, known),
            cents(&[&[0, 0], &[1, 1]])
        );
    }
    let mut whole = Carried::default().followed(true);
    let first = day.rounded(&mut whole).lines;
    let last = day.rounded(&mut whole.followed(false)).lines;
    let costs = |rounded: &[Figures]| rounded.iter().map(|f| f.cost).collect::<Vec<_>>();
    assert_eq!(
        [costs(&first), costs(&last)],
        cents(&[&[1, 0], &[1, 0]])[..]
    );
    // b alone: its own chargeback, 0.008 → 0.01.
    let only_b = LineFilter {
        cost_center: Some("b".into()),
        namespace: None,
    };
    for known in [false, true] {
        assert_eq!(
            costs_in_groups(&two_days, &only_b, known),
            cents(&[&[0], &[1]])
        );
    }
    // b/y has no line in the last part. The chargeback's lines: a/x 0.006 and b/y 0.006,
    // 0.012 → 0.01, the unit to a/x (remainders tied, the first line). Not knowing them, b/y
    // keeps the 0.01 its 0.006 printed, and a/x makes the total: 0.00 on its 0.006, each
    // group a cent from its line. Knowing them, b/y's rows end in the first part and print its
    // line, 0.00; a/x prints its 0.003 rounded, 0.00, then the cent that brings it to its
    // line: each group its line, the total exact.
    let first = costing(&[("a", "x", dec!(0.003)), ("b", "y", dec!(0.006))]);
    let last = costing(&[("a", "x", dec!(0.003))]);
    let parts = [first, last];
    assert_eq!(
        costs_in_groups(&parts, &everything, false),
        cents(&[&[0, 1], &[0]])
    );
    assert_eq!(
        costs_in_groups(&parts, &everything, true),
        cents(&[&[0, 0], &[1]])
    );
}

#[test]
fn days_each_written_as_the_last_of_their_span_bring_each_group_to_its_line_so_far() {
    let cents = |values: &[i64]| -> Vec<Option<Decimal>> {
        values.iter().map(|&c| Some(Decimal::new(c, 2))).collect()
    };
    // Each day a file, carrying on from what the days before printed (worked out again from
    // their exact totals) and brought to the chargeback of the month so far by group.
    let written = |days: &[CostReport]| -> Vec<Vec<Option<Decimal>>> {
        let mut before: Vec<GroupTotals> = Vec::new();
        days.iter()
            .map(|day| {
                let carries = Carries::of_days(&before, (&day.currency, day.rounding));
                let chargeback = day.chargeback_in_groups(&carries);
                before.push(day.group_totals());
                let costs: Vec<_> = chargeback.lines.iter().map(|l| l.figures.cost).collect();
                let sum: Decimal = costs.iter().flatten().sum();
                assert_eq!(chargeback.total.cost.unwrap_or_default(), sum);
                costs
            })
            .collect()
    };
    // a/x and b/y cost 0.004 a day. The first day's chargeback: 0.008 → 0.01, to a/x (tied,
    // first); the two days': 0.008 each → 0.01 and 0.01. So the second day prints b/y's cent,
    // where the month's running total alone gave a/x both.
    let day = costing(&[("a", "x", dec!(0.004)), ("b", "y", dec!(0.004))]);
    assert_eq!(
        written(&[day.clone(), day]),
        [cents(&[1, 0]), cents(&[0, 1])]
    );
    // b/y has no line the second day: it keeps the 0.01 its 0.006 printed, and a/x (0.003 a
    // day) makes the total, 0.012 → 0.01: 0.00 both days, where the two days' chargeback
    // gives a/x the cent (tied, first). Each within a cent of its line, the total exact.
    let first = costing(&[("a", "x", dec!(0.003)), ("b", "y", dec!(0.006))]);
    let second = costing(&[("a", "x", dec!(0.003))]);
    assert_eq!(written(&[first, second]), [cents(&[0, 1]), cents(&[0])]);
    // a/x 0.006 and b/y 0.004 the first day: 0.01 → a/x (.6 over .4). The second day a/x holds
    // only a model without a price (an hour, no cost) and b/y costs 0.003: the two days'
    // chargeback, 0.006 and 0.007, gives the cent to b/y. a/x's row has no cost to give its cent
    // back, so a/x keeps it and b/y prints 0.00: the files add up to the two days' 0.01, where
    // b/y taking its line's cent made them 0.02.
    let first = costing(&[("a", "x", dec!(0.006)), ("b", "y", dec!(0.004))]);
    let mut second = costing(&[("a", "x", Decimal::ZERO), ("b", "y", dec!(0.003))]);
    second.lines[0].figures = Figures {
        gpu_hours: Decimal::ONE,
        unpriced_gpu_hours: Decimal::ONE,
        ..Figures::default()
    };
    assert_eq!(
        written(&[first, second]),
        [cents(&[1, 0]), vec![None, Some(dec!(0.00))]]
    );
}

#[test]
fn an_unpriced_unit_goes_where_the_hours_can_hold_it() {
    let unit = dec!(0.0001);
    let cases = [
        // Units of 0.0001 h. M: 10.9 hours, 3.45 of them unpriced; W1 2.4 and W2 1.3 hours, all
        // unpriced. Unpriced: 7.15 → 7, one unit over the floors, and by remainder alone it
        // went to M (.45 over W1's .40); hours: 14.6 → 15, two units, and W1 and W2 print their
        // unpriced hours, so M took both: 12, past its 10.9. With the unit on W1 instead: M 11,
        // W1 3, W2 1.
        (
            [
                (dec!(10.9), dec!(3.45)),
                (dec!(2.4), dec!(2.4)),
                (dec!(1.3), dec!(1.3)),
            ],
            [(11, 3), (3, 3), (1, 1)],
        ),
        // The reverse. M: 10 hours exactly, 3.55 unpriced; W1 2.67 and W2 1.78, all unpriced.
        // Unpriced: 8.00, two units, by remainder to W2 (.78) and W1 (.67); hours: 14.45 → 14,
        // one unit, but W1 and W2 with theirs made 15, and M gave one back: 9, under its exact
        // 10. With W1's unit on M instead: M 10 (4 unpriced), W1 2, W2 2.
        (
            [
                (dec!(10), dec!(3.55)),
                (dec!(2.67), dec!(2.67)),
                (dec!(1.78), dec!(1.78)),
            ],
            [(10, 4), (2, 2), (2, 2)],
        ),
    ];
    for (lines, printed) in cases {
        let named: Vec<(&str, Decimal, Decimal)> = ["m", "w1", "w2"]
            .into_iter()
            .zip(lines)
            .map(|(name, (hours, unpriced))| (name, hours * unit, unpriced * unit))
            .collect();
        let units = |n: i64| Decimal::from(n) * unit;
        let want: Vec<(Decimal, Decimal)> =
            printed.iter().map(|&(h, u)| (units(h), units(u))).collect();
        assert_eq!(hours_printed(&named), want, "{lines:?}");
    }
}

#[test]
fn a_line_without_a_price_gets_no_cost_from_shared_capacity() {
    // Two nodes of a GPU the card does not price: n1's priced by its node annotation at 2.00,
    // n2's not. Team a holds n1's GPU 0–12 h (24.00), so 12 h (24.00) of n1 are unallocated;
    // team b holds n2's GPU all day, 24 unpriced hours. Shared out by cost, a takes all of the
    // unallocated 24.00 and 12 h; b, with no cost to weigh, takes nothing and stays without a
    // cost (not 0.00).
    let mut set = set_of(
        &[
            hold("a", "Mystery GPU", GpuUnits::ONE, (0, 12)),
            Hold {
                node: "n2",
                ..hold("b", "Mystery GPU", GpuUnits::ONE, (0, 24))
            },
        ],
        &[("n1", "Mystery GPU", 1), ("n2", "Mystery GPU", 1)],
    );
    set.allocations[0].price_override = Some(dec!(2.00));
    set.capacity[0].price_override = Some(dec!(2.00));
    let report = shared_by_cost_center(&set);
    assert_eq!(
        summary(&report),
        vec![
            ("a".into(), dec!(24), Some(dec!(48.00)), dec!(0)),
            ("b".into(), dec!(24), None, dec!(24)),
        ]
    );
    let printed = report.chargeback();
    assert_eq!(printed.lines[1].figures.cost, None);
}

#[test]
fn pods_holding_more_than_a_node_has_leave_no_negative_idle_and_say_so() {
    // One L4 node, 1 GPU, 24 h (16.80 at 0.70). Team a holds it 0–20 h (14.00); team b holds
    // half a GPU 6–18 h (6 GPU-h, 4.20), beyond the node's one GPU. Held: 1 (0–6), 1.5 (6–18),
    // 1 (18–20), 0 (20–24). Unallocated is the 4 idle hours (2.80), not 24 − 20 − 6 = −2, and
    // the 0.5 × 12 = 6 GPU-hours held beyond capacity are a warning.
    let set = set_of(
        &[
            hold("a", "NVIDIA L4", GpuUnits::ONE, (0, 20)),
            hold("b", "NVIDIA L4", GpuUnits::ratio(1, 2).unwrap(), (6, 18)),
        ],
        &[("n1", "NVIDIA L4", 1)],
    );
    let report = cost_report(&[&set], &card(), &request("cost_center", Step::Window)).unwrap();
    assert_eq!(
        summary(&report),
        vec![
            ("__unallocated__".into(), dec!(4), Some(dec!(2.80)), dec!(0)),
            ("a".into(), dec!(20), Some(dec!(14.00)), dec!(0)),
            ("b".into(), dec!(6), Some(dec!(4.20)), dec!(0)),
        ]
    );
    assert_eq!(
        report.warnings.texts(),
        vec!["node n1: pods held more L4 GPUs than the node has, for 6 GPU-hours beyond its capacity; its unallocated capacity counts as zero there and the pods are charged in full".to_string()]
    );
    // Hour by hour, no unallocated line is ever negative.
    let hourly = cost_report(&[&set], &card(), &request("cost_center", Step::Hour)).unwrap();
    for line in &hourly.lines {
        assert!(line.figures.gpu_hours >= Decimal::ZERO, "{line:?}");
    }
    let idle: Decimal = hourly
        .lines
        .iter()
        .filter(|l| l.group == ["__unallocated__"])
        .map(|l| l.figures.gpu_hours)
        .sum();
    assert_eq!(idle, dec!(4));
}

#[test]
fn capacity_and_holdings_meet_whatever_the_products_spelling() {
    // GPU Feature Discovery labels the node `NVIDIA-L4`; the DRA driver's ResourceSlice says
    // `NVIDIA L4`. The pod holds the node's one GPU all day: nothing is unallocated, and by model
    // the fleet is 24 GPU-hours (16.80), not 48.
    let set = set_of(
        &[hold("a", "NVIDIA L4", GpuUnits::ONE, (0, 24))],
        &[("n1", "NVIDIA-L4", 1)],
    );
    let report = cost_report(&[&set], &card(), &request("cost_center", Step::Window)).unwrap();
    assert_eq!(
        summary(&report),
        vec![("a".into(), dec!(24), Some(dec!(16.80)), dec!(0))]
    );
    let by_model = cost_report(&[&set], &card(), &request("gpu_model", Step::Window)).unwrap();
    assert_eq!(
        summary(&by_model),
        vec![("L4".into(), dec!(24), Some(dec!(16.80)), dec!(0))]
    );
    // A model the card does not price meets on its words: `NVIDIA-GH200-480GB` is
    // `NVIDIA GH200 480GB`; its 12 held hours leave 12 unpriced hours unallocated.
    let set = set_of(
        &[hold("a", "NVIDIA GH200 480GB", GpuUnits::ONE, (0, 12))],
        &[("n1", "NVIDIA-GH200-480GB", 1)],
    );
    let report = cost_report(&[&set], &card(), &request("cost_center", Step::Window)).unwrap();
    assert_eq!(
        summary(&report),
        vec![
            ("__unallocated__".into(), dec!(12), None, dec!(12)),
            ("a".into(), dec!(12), None, dec!(12)),
        ]
    );
}

#[test]
fn steps_cut_rows_and_add_up_to_the_window() {
    let set = set_of(
        &[hold(
            "a",
            "NVIDIA H100",
            GpuUnits::ratio(2, 7).unwrap(),
            (1, 23),
        )],
        &[("n1", "NVIDIA H100", 1)],
    );
    let whole = cost_report(&[&set], &card(), &request("cost_center", Step::Window)).unwrap();
    let hourly = cost_report(&[&set], &card(), &request("cost_center", Step::Hour)).unwrap();
    assert_eq!(hourly.lines.iter().filter(|l| l.group == ["a"]).count(), 22);
    assert_eq!(
        hourly
            .lines
            .iter()
            .filter(|l| l.group == ["__unallocated__"])
            .count(),
        24
    );
    let total = |r: &CostReport| -> Decimal { r.lines.iter().filter_map(|l| l.figures.cost).sum() };
    assert_eq!(total(&whole), dec!(84.00));
    assert_eq!(total(&hourly).round_dp(20), dec!(84.00));
    // Rows come sorted by period, then group.
    assert!(
        hourly
            .lines
            .windows(2)
            .all(|w| (w[0].period, &w[0].group) < (w[1].period, &w[1].group))
    );
}

fn naive_cost(set: &AllocationSet, card: &RateCard, window: Interval) -> (Decimal, Decimal) {
    // One allocation at a time, straight from the definition: units × hours × price.
    let mut cost = Decimal::ZERO;
    let mut hours = Decimal::ZERO;
    let items = set
        .allocations
        .iter()
        .map(|a| (a.product, a.units, a.interval, a.tier))
        .chain(
            set.capacity
                .iter()
                .map(|c| (c.product, c.units, c.interval, c.tier)),
        );
    for (product, units, interval, tier) in items {
        let Some(during) = interval.clip(window) else {
            continue;
        };
        let units = Decimal::from(units.numer()) / Decimal::from(units.denom());
        hours += units * Decimal::from(during.seconds()) / dec!(3600);
        if let Some(model) = card.model_for(set.names.resolve(product)) {
            for segment in card.schedule(model, tier).segments() {
                if let (Some(part), Some(price)) = (during.clip(segment.during), segment.price) {
                    cost += units * Decimal::from(part.seconds()) / dec!(3600) * price;
                }
            }
        }
    }
    (hours, cost)
}

/// (cost center, product, numerator, start minute, length in minutes, spot)
type ArbitraryHold = (u8, u8, i64, i64, i64, bool);

fn arbitrary_holds() -> impl Strategy<Value = Vec<ArbitraryHold>> {
    // (cost center, product, numerator, start minute, length in minutes, spot)
    prop::collection::vec(
        (
            0u8..4,
            0u8..3,
            1i64..9,
            -600i64..1500,
            1i64..1200,
            any::<bool>(),
        ),
        1..40,
    )
}

/// The hold of [`arbitrary_holds`]'s `(cost center, product, …)`, by one of `centers`, of one
/// of `products`, holding `units`, whole hours (its minutes rounded out) on node `n1`.
fn arbitrary_hold<'a>(
    &(center, product, _, start, minutes, spot): &ArbitraryHold,
    (centers, products): (&'a [String], &[&'a str]),
    units: GpuUnits,
) -> Hold<'a> {
    Hold {
        tier: if spot {
            PriceTier::Spot
        } else {
            PriceTier::OnDemand
        },
        ..hold(
            &centers[center as usize],
            products[product as usize],
            units,
            (start / 60, (start + minutes) / 60 + 1),
        )
    }
}

proptest! {
    #[test]
    fn engine_matches_the_definition_and_rounded_lines_reconcile(
        holds in arbitrary_holds(),
        denom in 1i64..8,
        step in prop::sample::select(vec![Step::Window, Step::Hour, Step::Day]),
        share in any::<bool>(),
    ) {
        let products = ["NVIDIA H100", "NVIDIA L4", "Mystery"];
        let mut set = AllocationSet::default();
        for (center, product, numer, start, minutes, spot) in &holds {
            let start = t(0) + start * 60;
            let a = Allocation {
                namespace: set.names.intern("ns"),
                pod: set.names.intern("p"),
                pod_uid: set.names.intern("p"),
                resource_id: set.names.intern("p"),
                claim: crate::allocation::Sym::EMPTY,
                node: set.names.intern("n"),
                product: set.names.intern(products[*product as usize]),
                kind: AllocationKind::Gpu,
                units: GpuUnits::ratio(*numer, denom).unwrap(),
                interval: Interval::new(start, start + minutes * 60),
                tier: if *spot { PriceTier::Spot } else { PriceTier::OnDemand },
                price_override: None,
                cost_center: set.names.intern(&format!("cc-{center}")),
                cost_center_source: CostCenterSource::PodLabel,
            };
            set.allocations.push(a);
        }
        let card = card();
        let mut req = request("cost_center,gpu_model", step);
        req.share_unallocated = share;
        let report = cost_report(&[&set], &card, &req).unwrap();
        let (hours, cost) = naive_cost(&set, &card, req.window);
        let engine_hours: Decimal = report.lines.iter().map(|l| l.figures.gpu_hours).sum();
        let engine_cost: Decimal = report.lines.iter().filter_map(|l| l.figures.cost).sum();
        prop_assert!((engine_hours - hours).abs() < dec!(0.000000000001));
        prop_assert!((engine_cost - cost).abs() < dec!(0.000000000001));

        let printed = report.chargeback();
        // The report's own lines rounded in place print the same.
        prop_assert_eq!(&report.clone().into_chargeback(), &printed);
        // Totals are the exact totals rounded (half-even: the card's rounding).
        let exact_unpriced: Decimal = report.lines.iter().map(|l| l.figures.unpriced_gpu_hours).sum();
        prop_assert_eq!(printed.total.gpu_hours, engine_hours.round_dp(4));
        prop_assert_eq!(printed.total.unpriced_gpu_hours, exact_unpriced.round_dp(4));
        let line_cost: Decimal = printed.lines.iter().filter_map(|l| l.figures.cost).sum();
        let line_hours: Decimal = printed.lines.iter().map(|l| l.figures.gpu_hours).sum();
        let line_unpriced: Decimal = printed.lines.iter().map(|l| l.figures.unpriced_gpu_hours).sum();
        prop_assert_eq!(Some(line_cost), printed.total.cost.or(Some(Decimal::ZERO)));
        prop_assert_eq!(line_hours, printed.total.gpu_hours);
        prop_assert_eq!(line_unpriced, printed.total.unpriced_gpu_hours);
        if let Some(total) = printed.total.cost {
            prop_assert!((total - cost).abs() <= dec!(0.005000000001));
        }
        for (exact, shown) in report.lines.iter().zip(&printed.lines) {
            if let (Some(e), Some(s)) = (exact.figures.cost, shown.figures.cost) {
                prop_assert!((e - s).abs() < dec!(0.01));
            }
            prop_assert_eq!(shown.figures.gpu_hours.scale(), 4);
            // A part is never printed above its whole (one report, rounded at once).
            let f = &shown.figures;
            prop_assert!(f.unpriced_gpu_hours <= f.gpu_hours, "{:?}", f);
            prop_assert!(f.used_gpu_hours.is_none_or(|used| used <= f.gpu_hours), "{:?}", f);
            if let (Some(idle), Some(cost)) = (f.idle_cost, f.cost) {
                prop_assert!(idle <= cost, "{:?}", f);
            }
            // Every line within one unit of its exact hours; no unpriced hours on a priced
            // line, and all of a wholly unpriced line's.
            prop_assert!((exact.figures.gpu_hours - f.gpu_hours).abs() < dec!(0.0001));
            let e = &exact.figures;
            if e.unpriced_gpu_hours.is_zero() {
                prop_assert!(f.unpriced_gpu_hours.is_zero(), "{:?} of {:?}", f, e);
            }
            if e.unpriced_gpu_hours == e.gpu_hours {
                prop_assert_eq!(f.unpriced_gpu_hours, f.gpu_hours, "{:?} of {:?}", f, e);
            }
        }
    }
}

proptest! {
    #[test]
    fn a_report_of_one_cost_center_is_the_whole_report_s_lines_of_it(
        holds in arbitrary_holds(),
        gpus in 1i64..12,
        kept in 0u8..5,
        step in prop::sample::select(vec![Step::Window, Step::Hour, Step::Day]),
        share in any::<bool>(),
    ) {
        let products = ["NVIDIA H100", "NVIDIA L4", "Mystery"];
        let centers: Vec<String> = (0..4).map(|c| format!("cc-{c}")).collect();
        let holds: Vec<Hold<'_>> = holds
            .iter()
            .map(|h| arbitrary_hold(h, (&centers, &products), GpuUnits::whole(h.2)))
            .collect();
        let capacity: Vec<(&str, &str, i64)> = products.iter().map(|p| ("n1", *p, gpus)).collect();
        let set = set_of(&holds, &capacity);
        let mut whole = request("cost_center,gpu_model,pod", step);
        whole.share_unallocated = share;
        let kept = centers.get(kept as usize).map_or(UNALLOCATED, String::as_str);
        let only = ReportRequest {
            only: LineFilter {
                cost_center: Some(kept.to_string()),
                namespace: None,
            },
            ..whole.clone()
        };
        let lines = |report: &CostReport| -> Vec<(i64, String, Figures)> {
            let lines = report.lines.iter();
            lines.map(|l| (l.period.start, l.group.join("/"), l.figures.clone())).collect()
        };
        let whole = cost_report(&[&set], &card(), &whole).unwrap();
        let only = cost_report(&[&set], &card(), &only).unwrap();
        let of_kept: Vec<_> = lines(&whole)
            .into_iter()
            .filter(|(_, group, _)| group.split('/').next() == Some(kept))
            .collect();
        prop_assert_eq!(lines(&only), of_kept);
    }
}

/// [`arbitrary_holds`] as pods of 4 cost centers in 2 namespaces (by their units' numerator),
/// each its own pod holding `denom`ths of GPUs (sevenths, thirds…: figures that round) on one
/// node of `gpus` of each model; and 2026-11-01 cut into `cuts` parts (the last maybe shorter).
fn pods_in_parts(
    holds: &[ArbitraryHold],
    gpus: i64,
    denom: i64,
    cuts: i64,
) -> (AllocationSet, Vec<Interval>) {
    let products = ["NVIDIA H100", "NVIDIA L4", "Mystery"];
    let centers: Vec<String> = (0..4).map(|c| format!("cc-{c}")).collect();
    let pods: Vec<String> = (0..holds.len()).map(|n| format!("p{n}")).collect();
    let holds: Vec<Hold<'_>> = holds
        .iter()
        .zip(&pods)
        .map(|(h, pod)| Hold {
            namespace: if h.2 % 2 == 0 { "even" } else { "odd" },
            pod,
            ..arbitrary_hold(
                h,
                (&centers, &products),
                GpuUnits::ratio(h.2, denom).unwrap(),
            )
        })
        .collect();
    let capacity: Vec<(&str, &str, i64)> = products.iter().map(|p| ("n1", *p, gpus)).collect();
    let hours = 24 / cuts + 1;
    let parts = (0..24)
        .step_by(hours as usize)
        .map(|from| Interval::new(t(from), t((from + hours).min(24))))
        .collect();
    (set_of(&holds, &capacity), parts)
}

/// Holds, GPUs a model, the denominator of their units and the parts a day is cut into, for
/// [`pods_in_parts`].
fn a_day_in_parts() -> impl Strategy<Value = (Vec<ArbitraryHold>, i64, i64, i64)> {
    (arbitrary_holds(), 1i64..12, 1i64..8, 2i64..7)
}

/// `set`'s report over `window` by what tells billed resources apart, as the FOCUS export's
/// rows are (cost center and namespace first): a row per pod and model, and per node and
/// model of the capacity nobody held.
fn by_resource(set: &AllocationSet, window: Interval) -> CostReport {
    let by_resource = ReportRequest {
        window,
        group_by: crate::cost::GroupBy::resources(),
        ..request("cost_center,namespace", Step::Window)
    };
    cost_report(&[set], &card(), &by_resource).unwrap()
}

proptest! {
    #[test]
    fn parts_add_up_to_each_group_s_line_whichever_part_its_rows_end_in(
        (holds, gpus, denom, cuts) in a_day_in_parts(),
    ) {
        // Each part priced on its own, by resource as the export's rows are, and rounded by
        // cost center and namespace, each group's line over the day known first. No row prints
        // a unit of a column it has none of, and each prints its parts within a unit.
        let (set, parts) = pods_in_parts(&holds, gpus, denom, cuts);
        let card = card();
        let day = cost_report(&[&set], &card, &request("cost_center,namespace", Step::Window))
            .unwrap();
        let money = (&day.currency, day.rounding);
        let lines = std::sync::Arc::new(GroupLines::new(
            day.group_totals(),
            &LineFilter::default(),
            money,
        ));
        let mut before = GroupTotals::default();
        let mut printed: std::collections::BTreeMap<(String, String), Figures> =
            Default::default();
        for (at, &window) in parts.iter().enumerate() {
            let part = by_resource(&set, window);
            let carries = Carries {
                before: before.clone(),
                printed: None,
                followed: at + 1 < parts.len(),
                lines: Some(lines.clone()),
            };
            let rows = part.lines.iter().zip(part.rounded_in_groups(&LineFilter::default(), &carries));
            for (line, figures) in rows {
                prop_assert!(prints_only_what_it_has(&line.figures, &figures), "{:?}: {:?}", line.figures, figures);
                prop_assert!(prints_its_parts_within_a_unit(&line.figures, &figures), "{:?}: {:?}", line.figures, figures);
                let group = (line.group[0].to_string(), line.group[1].to_string());
                printed.entry(group).or_default().absorb(&figures);
            }
            before.absorb(&part.group_totals());
        }
        // Each group's rows, summed, are its line of the day's chargeback, every column.
        let chargeback = day.chargeback();
        prop_assert_eq!(printed.len(), chargeback.lines.len());
        for line in &chargeback.lines {
            let group = (line.group[0].to_string(), line.group[1].to_string());
            let rows = printed.get(&group).cloned().unwrap_or_default();
            prop_assert_eq!(rows.gpu_hours, line.figures.gpu_hours, "{:?}", group);
            prop_assert_eq!(rows.unpriced_gpu_hours, line.figures.unpriced_gpu_hours, "{:?}", group);
            prop_assert_eq!(rows.cost.unwrap_or_default(), line.figures.cost.unwrap_or_default(), "{:?}", group);
            let used = |f: &Figures| f.used_gpu_hours.unwrap_or_default();
            let idle = |f: &Figures| f.idle_cost.unwrap_or_default();
            prop_assert_eq!(used(&rows), used(&line.figures), "{:?}", group);
            prop_assert_eq!(idle(&rows), idle(&line.figures), "{:?}", group);
        }
    }
}

proptest! {
    #[test]
    fn day_files_add_up_to_each_span_s_chargeback_and_print_nothing_a_row_has_none_of(
        (holds, gpus, denom, cuts) in a_day_in_parts(),
    ) {
        // Each part a day file (`tollgate export`): rounded by cost center and namespace as the
        // last part of the span from the first part to it, what the parts before printed
        // worked out again from their exact totals.
        let (set, parts) = pods_in_parts(&holds, gpus, denom, cuts);
        let card = card();
        let mut before: Vec<GroupTotals> = Vec::new();
        let mut files = Figures::default();
        for &window in &parts {
            let part = by_resource(&set, window);
            let carries = Carries::of_days(&before, (&part.currency, part.rounding));
            let rows = part.lines.iter().zip(part.rounded_in_groups(&LineFilter::default(), &carries));
            for (line, figures) in rows {
                prop_assert!(prints_only_what_it_has(&line.figures, &figures), "{:?}: {:?}", line.figures, figures);
                files.absorb(&figures);
            }
            before.push(part.group_totals());
            // The files so far add up to the span's chargeback, every column.
            let span = ReportRequest {
                window: Interval::new(parts[0].start, window.end),
                ..request("cost_center,namespace", Step::Window)
            };
            let total = cost_report(&[&set], &card, &span).unwrap().chargeback().total;
            prop_assert_eq!(files.gpu_hours, total.gpu_hours, "to {}", window.end);
            prop_assert_eq!(files.unpriced_gpu_hours, total.unpriced_gpu_hours, "to {}", window.end);
            prop_assert_eq!(files.cost.unwrap_or_default(), total.cost.unwrap_or_default(), "to {}", window.end);
        }
    }
}

#[test]
fn a_period_priced_from_the_allocations_that_overlap_it_is_the_period_of_the_whole_set() {
    // Hours 0–24 cut in 8-hour periods. By hand: p0 [0,10) overlaps periods 0 and 1; p1 [8,16)
    // exactly period 1; p2 [17,30) period 2 (clipped at 24); p3 [24,30) none; p4 [0,24) all;
    // p5 [2,4) period 0, holding 2 GPUs while p0 and p4 hold the node's 2 (over-committed).
    let holds = [
        (0, 10, "p0"),
        (8, 16, "p1"),
        (17, 30, "p2"),
        (24, 30, "p3"),
        (0, 24, "p4"),
        (2, 4, "p5"),
    ];
    let holds: Vec<Hold<'_>> = holds
        .iter()
        .map(|&(from, to, pod)| Hold {
            pod,
            ..hold(
                "a",
                "H100",
                GpuUnits::whole(if pod == "p5" { 2 } else { 1 }),
                (from, to),
            )
        })
        .collect();
    let set = set_of(&holds, &[("n1", "H100", 2)]);
    let periods: Vec<Interval> = (0..3)
        .map(|p| Interval::new(t(8 * p), t(8 * p + 8)))
        .collect();
    let overlapping = set.by_period(&periods);
    assert_eq!(overlapping, vec![vec![0, 4, 5], vec![0, 1, 4], vec![2, 4]]);
    let card = card();
    for (period, members) in periods.iter().zip(&overlapping) {
        let part = ReportRequest {
            window: *period,
            group_by: GroupBy::resources(),
            ..request("", Step::Window)
        };
        let only = set.with_only(members);
        assert_eq!(only.capacity, set.capacity);
        assert_eq!(
            cost_report(&[&only], &card, &part).unwrap(),
            cost_report(&[&set], &card, &part).unwrap()
        );
    }
}

#[test]
fn lines_of_a_key_with_too_many_values_to_rank_are_sorted_by_its_text_and_merged() {
    // More pods than are ranked up front: pod names are compared where namespaces tie, and the
    // pricing tier after them. Pods are interned out of text order; "pod-00001" also runs on
    // spot, and "pod-00002" twice on demand (on two nodes: one line).
    let count = super::order::RANKED_VALUES + 100;
    let names: Vec<(String, &str)> = (0..count)
        .map(|i| {
            let n = (i * 7919) % count;
            (
                format!("pod-{n:05}"),
                if n.is_multiple_of(2) { "b" } else { "a" },
            )
        })
        .collect();
    let mut holds: Vec<Hold<'_>> = names
        .iter()
        .map(|(pod, namespace)| Hold {
            pod,
            namespace,
            ..hold("cc", "L4", GpuUnits::whole(1), (0, 1))
        })
        .collect();
    holds.push(Hold {
        pod: "pod-00001",
        namespace: "a",
        tier: PriceTier::Spot,
        ..hold("cc", "L4", GpuUnits::whole(1), (1, 2))
    });
    holds.push(Hold {
        pod: "pod-00002",
        namespace: "b",
        node: "n2",
        ..hold("cc", "L4", GpuUnits::whole(1), (1, 2))
    });
    let set = set_of(&holds, &[]);
    let keys = vec![GroupKey::Namespace, GroupKey::Pod, GroupKey::PricingTier];
    let asked = ReportRequest {
        group_by: GroupBy::new(keys).unwrap(),
        ..request("", Step::Window)
    };
    let report = cost_report(&[&set], &card(), &asked).unwrap();
    // By hand: odd pod numbers in namespace "a", even in "b", each in number order (the
    // names are zero-padded); every line 1 GPU-hour but pod-00002's 2, and pod-00001 twice.
    let mut expected: Vec<(String, Decimal)> = Vec::new();
    for parity in [1, 0] {
        for n in (0..count).filter(|n| n % 2 == parity) {
            let namespace = if parity == 1 { "a" } else { "b" };
            let hours = if n == 2 { dec!(2) } else { dec!(1) };
            expected.push((format!("{namespace}/pod-{n:05}/on-demand"), hours));
            if n == 1 {
                expected.push(("a/pod-00001/spot".to_string(), dec!(1)));
            }
        }
    }
    let seen: Vec<(String, Decimal)> = report
        .lines
        .iter()
        .map(|l| (l.group.join("/"), l.figures.gpu_hours))
        .collect();
    assert_eq!(seen.len(), expected.len());
    assert_eq!(seen, expected);
}

#[test]
fn pods_whose_names_share_all_but_their_ends_are_sorted_by_their_whole_text() {
    // One namespace of pods whose names begin alike (one a prefix of others, two alike for
    // their first 19 bytes), among more pods elsewhere than are ranked up front; "web-7f9c-b"
    // also runs on a second node (one line of 2 GPU-hours). Interned in no order.
    let alike = [
        "web-7f9c-abcdefghijk",
        "web-7f9c-b",
        "web",
        "web-7f9c-abcdefghijj",
        "web-7f9c-a",
        "web-7f9c-",
        "web-7f9c-ab",
    ];
    let others: Vec<String> = (0..super::order::RANKED_VALUES + 10)
        .map(|i| format!("other-{i:05}"))
        .collect();
    let mut holds: Vec<Hold<'_>> = alike
        .iter()
        .map(|pod| Hold {
            pod,
            namespace: "web",
            ..hold("cc", "L4", GpuUnits::whole(1), (0, 1))
        })
        .collect();
    holds.push(Hold {
        pod: "web-7f9c-b",
        namespace: "web",
        node: "n2",
        ..hold("cc", "L4", GpuUnits::whole(1), (1, 2))
    });
    holds.extend(others.iter().map(|pod| Hold {
        pod,
        namespace: "zz",
        ..hold("cc", "L4", GpuUnits::whole(1), (0, 1))
    }));
    let set = set_of(&holds, &[]);
    let asked = ReportRequest {
        group_by: GroupBy::new(vec![GroupKey::Namespace, GroupKey::Pod]).unwrap(),
        ..request("", Step::Window)
    };
    let report = cost_report(&[&set], &card(), &asked).unwrap();
    let web: Vec<(String, Decimal)> = report
        .lines
        .iter()
        .filter(|l| &l.group[0] == "web")
        .map(|l| (l.group[1].to_string(), l.figures.gpu_hours))
        .collect();
    // By hand, byte by byte: a name before every longer name it begins.
    let expected = [
        ("web", dec!(1)),
        ("web-7f9c-", dec!(1)),
        ("web-7f9c-a", dec!(1)),
        ("web-7f9c-ab", dec!(1)),
        ("web-7f9c-abcdefghijj", dec!(1)),
        ("web-7f9c-abcdefghijk", dec!(1)),
        ("web-7f9c-b", dec!(2)),
    ]
    .map(|(pod, hours)| (pod.to_string(), hours));
    assert_eq!(web, expected);
    let rest: Vec<&str> = report.lines[web.len()..]
        .iter()
        .map(|l| &l.group[1])
        .collect();
    assert_eq!(rest, others.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn a_line_of_many_periods_sums_each_period_apart_whatever_order_holdings_come_in() {
    // Two pods of "a" (the later one first) and one of "b" on a node of two H100s, hour by
    // hour: 24 periods a line, more than a line's sums are walked for.
    let mut later = hold("a", "NVIDIA H100", GpuUnits::whole(1), (10, 20));
    later.pod = "a-2";
    let earlier = hold("a", "NVIDIA H100", GpuUnits::whole(1), (2, 6));
    let b = hold("b", "NVIDIA H100", GpuUnits::whole(1), (4, 14));
    let set = set_of(&[later, earlier, b], &[("n1", "NVIDIA H100", 2)]);
    let report = cost_report(&[&set], &card(), &request("cost_center", Step::Hour)).unwrap();
    let mut expected = Vec::new();
    for hour in 0..24 {
        // $4.00 an hour until noon, $3.00 after (the card above).
        let price = if hour < 12 { dec!(4.00) } else { dec!(3.00) };
        let a = i64::from((2..6).contains(&hour) || (10..20).contains(&hour));
        let b = i64::from((4..14).contains(&hour));
        let free = 2 - a - b;
        for (group, gpus) in [("__unallocated__", free), ("a", a), ("b", b)] {
            if gpus > 0 {
                let hours = Decimal::from(gpus);
                expected.push((t(hour), group.to_string(), hours, Some(hours * price)));
            }
        }
    }
    assert_eq!(by_period(&report), expected);
}

#[test]
fn a_report_of_more_lines_than_its_most_is_not_made() {
    // Node n1 offers 3 L4s over hours 0–4; pod a holds one over hours 0–3, pod b one over
    // hour 1. By pod and hour: a's 3 lines, b's 1, and the node's unallocated capacity in
    // each of the 4 hours (2, 1, 2 and 3 GPUs free): 8 lines, none of them empty.
    let set = set_of(
        &[
            Hold {
                pod: "a",
                ..hold("cc", "L4", GpuUnits::whole(1), (0, 3))
            },
            Hold {
                pod: "b",
                ..hold("cc", "L4", GpuUnits::whole(1), (1, 2))
            },
        ],
        &[("n1", "L4", 3)],
    );
    let by_pod_and_hour = ReportRequest {
        window: Interval::new(t(0), t(4)),
        ..request("pod", Step::Hour)
    };
    let made = |most| cost_report_with_usage(&[&set], &card(), &by_pod_and_hour, None, most);
    let whole = made(None).unwrap();
    assert_eq!(whole.lines.len(), 8);
    assert_eq!(made(Some(8)).unwrap().lines, whole.lines);
    assert_eq!(
        made(Some(7)).unwrap_err(),
        CostError::TooManyLines(TooManyLines(7))
    );
    // The same holdings by cost center over the window are 2 lines (cc, and the node's).
    let by_cost_center = ReportRequest {
        window: Interval::new(t(0), t(4)),
        ..request("cost_center", Step::Window)
    };
    let report = cost_report_with_usage(&[&set], &card(), &by_cost_center, None, Some(2));
    assert_eq!(report.unwrap().lines.len(), 2);
}

#[test]
fn a_report_of_one_cost_center_or_namespace_is_bound_by_its_own_lines() {
    // Node n1 offers 3 L4s (0.70/h). Over hours 0–4: pod pa (cost center a) holds one over
    // hours 0–3; pb (b) one over hour 1; pc (b, namespace other) two over hour 1, when the
    // pods hold 4 of the 3: one GPU-hour of over-commit, the node's capacity free that hour
    // clamped at 0. By cost center, pod and hour: pa's 3 lines, pb's 1, pc's 1, and the
    // node's free capacity in hours 0, 2 and 3 (2, 2 and 3 GPUs): 8 lines, of 9 sums made
    // (hour 1's free capacity, −1 GPU until it is clamped, is made and then left out).
    let pod = |cost_center, pod, units, hours| Hold {
        pod,
        ..hold(cost_center, "L4", GpuUnits::whole(units), hours)
    };
    let set = set_of(
        &[
            pod("a", "pa", 1, (0, 3)),
            pod("b", "pb", 1, (1, 2)),
            Hold {
                namespace: "other",
                ..pod("b", "pc", 2, (1, 2))
            },
        ],
        &[("n1", "L4", 3)],
    );
    let asked = |group_by, cost_center: Option<&str>, namespace: Option<&str>| ReportRequest {
        window: Interval::new(t(0), t(4)),
        only: LineFilter {
            cost_center: cost_center.map(String::from),
            namespace: namespace.map(String::from),
        },
        ..request(group_by, Step::Hour)
    };
    let made = |request: &ReportRequest, most| {
        cost_report_with_usage(&[&set], &card(), request, None, Some(most))
    };
    let over_commit = "node n1: pods held more L4 GPUs than the node has, for 1 GPU-hours \
                       beyond its capacity; its unallocated capacity counts as zero there and \
                       the pods are charged in full";
    let whole = asked("cost_center,pod", None, None);
    assert_eq!(
        made(&whole, 8).unwrap_err(),
        CostError::TooManyLines(TooManyLines(8))
    );
    assert_eq!(made(&whole, 9).unwrap().lines.len(), 8);

    // Cost center a's 3 lines are made within a bound of 3, and none beyond.
    let of_a = asked("cost_center,pod", Some("a"), None);
    let report = made(&of_a, 3).unwrap();
    assert_eq!(report.warnings.texts(), [over_commit]);
    let pa = |hour| (t(hour), "a/pa".to_string(), dec!(1), Some(dec!(0.70)));
    assert_eq!(by_period(&report), [pa(0), pa(1), pa(2)]);
    assert_eq!(
        made(&of_a, 2).unwrap_err(),
        CostError::TooManyLines(TooManyLines(2))
    );
    // The nodes' free capacity is what the pods, kept or not, leave of it.
    let unallocated = asked("cost_center,pod", Some(UNALLOCATED), None);
    let report = made(&unallocated, 4).unwrap();
    assert_eq!(report.warnings.texts(), [over_commit]);
    let free = |hour, gpus: i64, cost| {
        (
            t(hour),
            "__unallocated__/".to_string(),
            Decimal::from(gpus),
            Some(cost),
        )
    };
    assert_eq!(
        by_period(&report),
        [
            free(0, 2, dec!(1.40)),
            free(2, 2, dec!(1.40)),
            free(3, 3, dec!(2.10))
        ]
    );
    // A namespace's: pc's one line.
    let of_other = asked("namespace,pod", None, Some("other"));
    let report = made(&of_other, 1).unwrap();
    assert_eq!(
        by_period(&report),
        [(t(1), "other/pc".to_string(), dec!(2), Some(dec!(1.40)))]
    );
    // Shared out, the free capacity goes over every line before any is left out: all are made.
    let shared = ReportRequest {
        share_unallocated: true,
        ..of_a.clone()
    };
    assert_eq!(
        made(&shared, 3).unwrap_err(),
        CostError::TooManyLines(TooManyLines(3))
    );
}
