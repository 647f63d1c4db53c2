use std::str::FromStr;

use super::*;
use crate::cost::LineFilter;
use crate::tokens::TokenIndex;

/// A printed line: group, hours, cost, idle cost, input and output tokens.
type Printed<'a> = (Vec<&'a str>, String, String, String, u64, u64);

/// Tokens by pod and hour start, from a literal table.
struct Table(Vec<(&'static str, i64, Served)>);

impl TokenCounts for Table {
    fn served(&self, _namespace: &str, pod: &str, period: Interval) -> Vec<Served> {
        self.0
            .iter()
            .filter(|(p, hour, _)| *p == pod && *hour == period.start)
            .map(|(_, _, s)| s.clone())
            .collect()
    }
}

fn served(model: &str, input: u64, output: u64) -> Served {
    Served {
        model: model.into(),
        input,
        output,
    }
}

fn d(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

fn line(hour: i64, group: [&str; 3], hours: &str, cost: &str, idle: &str) -> CostLine {
    CostLine {
        period: Interval::new(hour, hour + 3600),
        group: group.iter().map(|s| s.to_string()).collect(),
        figures: Figures {
            gpu_hours: d(hours),
            used_gpu_hours: Some(d(hours) - d(idle) / d(cost) * d(hours)),
            cost: Some(d(cost)),
            idle_cost: Some(d(idle)),
            unpriced_gpu_hours: Decimal::ZERO,
        },
    }
}

fn request(group_by: Option<&str>) -> TokenRequest {
    let text = RequestText {
        from: Some("1970-01-01T00:00:00Z"),
        to: Some("1970-01-01T02:00:00Z"),
        group_by,
        ..RequestText::default()
    };
    TokenRequest::parse(text, 0).unwrap()
}

/// The engine's per-pod hourly lines of two hours: pod-1 serves A and B, pod-2 serves C and no
/// tokens, and unallocated capacity.
fn per_pod(request: &TokenRequest) -> CostReport {
    CostReport {
        request: request.per_pod(),
        currency: Currency::new("USD").unwrap(),
        rounding: Rounding::HalfEven,
        lines: vec![
            line(0, ["__unallocated__", "", ""], "1", "3", "3"),
            line(0, ["cc-1", "ns-a", "pod-1"], "1", "4", "1"),
            line(0, ["cc-2", "ns-b", "pod-2"], "2", "6", "6"),
            line(3600, ["cc-1", "ns-a", "pod-1"], "1", "4", "2"),
        ],
        warnings: Default::default(),
    }
}

fn tokens() -> Table {
    Table(vec![
        ("pod-1", 0, served("A", 300_000, 100_000)),
        ("pod-1", 0, served("B", 100_000, 0)),
        ("pod-1", 3600, served("A", 0, 500_000)),
        ("pod-2", 0, served("C", 0, 0)),
    ])
}

/// The token report of `request` over `per_pod`, added in `parts` (the lines of each hour
/// apart, or all at once).
fn report_of(request: &TokenRequest, weight: Option<Decimal>, by_hour: bool) -> TokenReport {
    let whole = per_pod(request);
    let mut tally = TokenTally::new(request);
    if by_hour {
        for hour in [0, 3600] {
            let part = CostReport {
                lines: whole
                    .lines
                    .iter()
                    .filter(|l| l.period.start == hour)
                    .cloned()
                    .collect(),
                ..whole.clone()
            };
            tally.add(&part, &tokens());
        }
    } else {
        tally.add(&whole, &tokens());
    }
    let money = (Currency::new("USD").unwrap(), Rounding::HalfEven);
    tally.finish(money, weight, vec!["from the engine".into()])
}

#[test]
fn a_pods_hourly_cost_goes_to_its_models_by_their_share_of_its_tokens() {
    let request = request(None);
    assert_eq!(
        request.columns(),
        ["served_model", "cost_center", "namespace"]
    );
    let report = report_of(&request, Some(d("0.25")), false);
    assert_eq!(
        report,
        report_of(&request, Some(d("0.25")), true),
        "in parts"
    );
    let printed = report.printed();
    let rows: Vec<Printed> = printed
        .lines
        .iter()
        .map(|l| {
            (
                l.group.iter().map(String::as_str).collect(),
                l.figures.gpu_hours.to_string(),
                l.figures.cost.unwrap().to_string(),
                l.figures.idle_cost.unwrap().to_string(),
                l.input,
                l.output,
            )
        })
        .collect();
    // Hour 0: pod-1's 400k tokens of A and 100k of B take 0.8 and 0.2 of its 1 h and $4
    // ($1 idle); hour 1 is all A's.
    assert_eq!(
        rows,
        vec![
            (
                vec!["", "__unallocated__", ""],
                "1.0000".into(),
                "3.00".into(),
                "3.00".into(),
                0,
                0
            ),
            (
                vec!["A", "cc-1", "ns-a"],
                "1.8000".into(),
                "7.20".into(),
                "2.80".into(),
                300_000,
                600_000
            ),
            (
                vec!["B", "cc-1", "ns-a"],
                "0.2000".into(),
                "0.80".into(),
                "0.20".into(),
                100_000,
                0
            ),
            (
                vec!["C", "cc-2", "ns-b"],
                "2.0000".into(),
                "6.00".into(),
                "6.00".into(),
                0,
                0
            ),
        ]
    );
    let per = |i: usize| &printed.lines[i].per_million;
    // A: $7.20 over 900k tokens, 600k of them output; weighted 0.25 × 300k + 600k = 675k.
    assert_eq!(per(1).tokens, Some(d("8.0000")));
    assert_eq!(per(1).output_tokens, Some(d("12.0000")));
    assert_eq!(per(1).output, Some(d("10.6667")));
    assert_eq!(per(1).input, Some(d("2.6667")));
    // B generated nothing: no cost per output token, never a zero.
    assert_eq!(per(2).tokens, Some(d("8.0000")));
    assert_eq!(per(2).output_tokens, None);
    // C had GPU cost and no tokens: empty, and said.
    assert_eq!(per(3), &PerMillion::default());
    assert_eq!(per(0), &PerMillion::default());
    assert_eq!(report.warnings[0], "from the engine");
    assert!(report.warnings[1].contains(": C;"), "{:?}", report.warnings);
    assert_eq!(printed.total.figures.cost, Some(d("17.00")));
    assert_eq!(
        (printed.total.input, printed.total.output),
        (400_000, 600_000)
    );
    assert_eq!(printed.total.per_million.tokens, Some(d("17.0000")));
}

#[test]
fn every_chargeback_key_groups_tokens_and_the_model_may_be_left_out() {
    let request = request(Some("cost_center"));
    assert_eq!(request.model_at, None);
    let report = report_of(&request, None, false);
    let printed = report.printed();
    let cc1 = printed.lines.iter().find(|l| l.group == ["cc-1"]).unwrap();
    assert_eq!(cc1.figures.cost, Some(d("8.00")));
    assert_eq!((cc1.input, cc1.output), (400_000, 600_000));
    assert_eq!(cc1.per_million.tokens, Some(d("8.0000")));
    assert_eq!(cc1.per_million.input, None, "no input_weight, no split");
}

#[test]
fn a_pods_tokens_follow_its_gpu_hours_when_it_has_several_lines_in_an_hour() {
    // Grouped by gpu_model: pod-1 held an A100 for 1 h and an H100 for 2 h in hour 0.
    assert_eq!(share_tokens(100, &[d("1"), d("2")]), vec![33, 67]);
    assert_eq!(share_tokens(2, &[d("1"), d("1"), d("1")]), vec![1, 1, 0]);
    assert_eq!(share_tokens(5, &[Decimal::ZERO, Decimal::ZERO]), vec![5, 0]);
}

#[test]
fn token_group_bys_are_read_like_the_chargebacks() {
    let text = |group_by| RequestText {
        group_by: Some(group_by),
        ..RequestText::default()
    };
    let model_last = TokenRequest::parse(text("namespace,served_model"), 3600).unwrap();
    assert_eq!(model_last.model_at, Some(1));
    assert_eq!(model_last.report.only, LineFilter::default());
    let only_model = TokenRequest::parse(text("served_model"), 3600).unwrap();
    assert!(only_model.report.group_by.keys().is_empty());
    assert_eq!(
        only_model.per_pod().group_by.keys(),
        [GroupKey::Namespace, GroupKey::Pod]
    );
    let error = TokenRequest::parse(text("served_model,team"), 3600).unwrap_err();
    assert_eq!(error.field, "group_by");
    assert!(error.message.contains("\"team\""), "{}", error.message);
    assert!(TokenRequest::parse(text("served_model,served_model"), 3600).is_err());
    // A filter needs its key, as in a chargeback.
    let filtered = RequestText {
        cost_center: Some("cc-1"),
        ..text("served_model")
    };
    assert_eq!(
        TokenRequest::parse(filtered, 3600).unwrap_err().field,
        "cost_center"
    );
    assert!(TokenIndex::default().is_empty());
}
