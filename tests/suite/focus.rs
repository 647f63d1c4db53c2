//! The FOCUS 1.2 export (SPEC §4.2): every Mandatory column, only allowed values, the types
//! FOCUS requires, and `BilledCost` adding up to the chargeback CSV's total to the cent.

use crate::support;

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use support::{chargeback_total, fixture_report, report_stdout, tollgate_command};
use tollgate::time::{month_start, next_month_start, parse_time};

/// FOCUS 1.2's Mandatory columns.
const MANDATORY: [&str; 21] = [
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "ServiceCategory",
    "ServiceName",
];

/// The other FOCUS columns SPEC §4.2 asks for, and the extras it names.
const ALSO: [&str; 12] = [
    "ConsumedQuantity",
    "ConsumedUnit",
    "PricingCategory",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "SkuId",
    "SubAccountId",
    "SubAccountName",
    "Tags",
    "ChargeFrequency",
    "ServiceSubcategory",
];
const EXTRAS: [&str; 3] = ["x_CostCenter", "x_GpuUtilization", "x_ClusterName"];

/// What FOCUS 1.3 adds: the split-cost allocation columns, and the providers that replace
/// `ProviderName` (kept, deprecated).
const NEW_IN_1_3: [&str; 7] = [
    "AllocatedMethodDetails",
    "AllocatedMethodId",
    "AllocatedResourceId",
    "AllocatedResourceName",
    "AllocatedTags",
    "HostProviderName",
    "ServiceProviderName",
];

/// Every origin charge's (period, node, model, tier) `AllocatedRatio`s add up to exactly 1, and
/// each row's ratio is its GPU-hours over its origin's.
fn check_allocation(rows: &[Row]) {
    /// (period, node, model, pricing category).
    type Origin = (String, String, String, String);
    let mut origins: BTreeMap<Origin, Vec<(Decimal, Decimal)>> = BTreeMap::new();
    for row in rows {
        assert_eq!(row["AllocatedMethodId"], "tollgate-gpu-hours");
        if row["ResourceType"] == "Node" {
            // FOCUS 1.3: AllocatedResourceId (and its name) MUST be null on the unallocated
            // portion of an origin charge; AllocatedTags MAY be.
            for column in [
                "AllocatedResourceId",
                "AllocatedResourceName",
                "AllocatedTags",
            ] {
                assert_eq!(row[column], "", "{column}");
            }
        } else {
            assert_eq!(row["AllocatedResourceId"], row["ResourceId"]);
            assert_eq!(row["AllocatedResourceName"], row["ResourceName"]);
            // The workload's tags not already in Tags (FOCUS 1.3: MUST NOT repeat them).
            let tags: serde_json::Value = serde_json::from_str(&row["AllocatedTags"]).unwrap();
            assert_eq!(tags, serde_json::json!({"namespace": row["SubAccountId"]}));
        }
        let details: serde_json::Value =
            serde_json::from_str(&row["AllocatedMethodDetails"]).unwrap();
        let element = &details["Elements"][0];
        assert_eq!(element["UsageUnit"], "GPU-Hours");
        let number = |v: &serde_json::Value| v.to_string().parse::<Decimal>().unwrap();
        assert_eq!(
            number(&element["UsageQuantity"]),
            decimal(row, "ConsumedQuantity")
        );
        let node = match row["ResourceType"].as_str() {
            "Node" => row["ResourceName"].clone(),
            // "… on node NAME", and "; … have no price …" after it for unpriced hours.
            _ => row["ChargeDescription"]
                .split(';')
                .next()
                .and_then(|d| d.rsplit(" on node ").next())
                .unwrap()
                .to_string(),
        };
        origins
            .entry((
                row["ChargePeriodStart"].clone(),
                node,
                row["SkuId"].clone(),
                row["PricingCategory"].clone(),
            ))
            .or_default()
            .push((
                number(&element["AllocatedRatio"]),
                decimal(row, "ConsumedQuantity"),
            ));
    }
    for (origin, shares) in origins {
        let ratios: Decimal = shares.iter().map(|s| s.0).sum();
        assert_eq!(ratios, Decimal::ONE, "{origin:?}: {shares:?}");
        let hours: Decimal = shares.iter().map(|s| s.1).sum();
        // Each ratio is to 10 places; the largest also took what rounding left of the others.
        let within = Decimal::new(shares.len() as i64, 10);
        for &(ratio, held) in &shares {
            if !hours.is_zero() {
                assert!(
                    (ratio - held / hours).abs() <= within,
                    "{origin:?}: {shares:?}"
                );
            }
        }
    }
}

type Row = BTreeMap<String, String>;

/// The header and rows of `tollgate report --format focus` with `args`.
fn focus(args: &[&str]) -> (Vec<String>, Vec<Row>) {
    parse(&report_stdout(&[&["--format", "focus"][..], args].concat()))
}

/// The header and rows of a FOCUS CSV.
fn parse(text: &str) -> (Vec<String>, Vec<Row>) {
    assert!(text.ends_with("\r\n"), "RFC 4180 line ends");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let rows = reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            header
                .iter()
                .cloned()
                .zip(record.iter().map(String::from))
                .collect()
        })
        .collect();
    (header, rows)
}

fn decimal(row: &Row, column: &str) -> Decimal {
    row[column]
        .parse()
        .unwrap_or_else(|_| panic!("{column} {:?} is not a decimal: {row:?}", row[column]))
}

fn datetime(row: &Row, column: &str) -> i64 {
    let text = &row[column];
    assert!(text.ends_with('Z'), "{column} {text:?} is not UTC");
    parse_time(text).unwrap_or_else(|e| panic!("{column}: {e}"))
}

/// The header: every Mandatory column and those SPEC §4.2 adds, FOCUS columns before `x_` ones.
fn check_header(header: &[String]) {
    for column in MANDATORY
        .iter()
        .chain(&ALSO)
        .chain(&EXTRAS)
        .chain(&NEW_IN_1_3)
    {
        assert!(header.iter().any(|h| h == column), "{column} is missing");
    }
    let first_extra = header.iter().position(|h| h.starts_with("x_")).unwrap();
    assert!(
        header[first_extra..].iter().all(|h| h.starts_with("x_")),
        "x_ columns come after the FOCUS columns: {header:?}"
    );
    assert!(
        header[..first_extra]
            .iter()
            .all(|h| h.chars().all(|c| c.is_ascii_alphanumeric())),
        "FOCUS column ids are PascalCase alphanumerics"
    );
}

/// One row against FOCUS's rules for the columns it has.
fn check_row(row: &Row) {
    for column in [
        "BillingAccountId",
        "BillingCurrency",
        "ChargeCategory",
        "ChargeDescription",
        "InvoiceIssuerName",
        "PricingUnit",
        "ProviderName",
        "PublisherName",
        "ServiceCategory",
        "ServiceName",
        "ResourceId",
        "SkuId",
    ] {
        assert!(!row[column].is_empty(), "{column} is null: {row:?}");
    }
    assert_eq!(row["ChargeCategory"], "Usage");
    assert_eq!(row["ChargeClass"], "", "null unless a correction");
    assert_eq!(row["ChargeFrequency"], "Usage-Based");
    assert_eq!(row["ServiceCategory"], "Compute");
    assert_eq!(row["ServiceSubcategory"], "Containers");
    assert_eq!(row["PricingUnit"], "GPU-Hours");
    assert_eq!(row["ConsumedUnit"], "GPU-Hours");
    assert_eq!(row["BillingCurrency"], "USD");
    assert!(
        ["Standard", "Dynamic", "Committed"].contains(&row["PricingCategory"].as_str()),
        "{row:?}"
    );
    assert!(["Pod", "ResourceClaim", "Node"].contains(&row["ResourceType"].as_str()));

    let billed = decimal(row, "BilledCost");
    assert_eq!(billed.scale(), 2, "money in cents: {row:?}");
    for column in ["EffectiveCost", "ListCost", "ContractedCost"] {
        assert_eq!(decimal(row, column), billed, "{column}: {row:?}");
    }
    assert!(billed >= Decimal::ZERO);
    let consumed = decimal(row, "ConsumedQuantity");
    let pricing = decimal(row, "PricingQuantity");
    let unpriced = decimal(row, "x_UnpricedGpuHours");
    assert!(consumed > Decimal::ZERO, "{row:?}");
    assert_eq!(pricing, consumed - unpriced);
    if !unpriced.is_zero() {
        assert!(row["ChargeDescription"].contains("no price"), "{row:?}");
    }
    if !row["x_GpuUtilization"].is_empty() {
        let ratio = decimal(row, "x_GpuUtilization");
        assert!((Decimal::ZERO..=Decimal::ONE).contains(&ratio));
    }

    let (start, end) = (
        datetime(row, "ChargePeriodStart"),
        datetime(row, "ChargePeriodEnd"),
    );
    let (billing_start, billing_end) = (
        datetime(row, "BillingPeriodStart"),
        datetime(row, "BillingPeriodEnd"),
    );
    assert!(start < end);
    assert_eq!(month_start(start), Some(billing_start), "{row:?}");
    assert_eq!(next_month_start(start), Some(billing_end), "{row:?}");
    assert!(
        end <= billing_end,
        "the charge period lies in its billing period"
    );

    let tags: serde_json::Value = serde_json::from_str(&row["Tags"]).unwrap();
    assert_eq!(tags["cost_center"], row["x_CostCenter"].as_str());
    assert!(tags.as_object().unwrap().values().all(|v| v.is_string()));
    if row["ResourceType"] == "Node" {
        assert_eq!(row["x_CostCenter"], "__unallocated__");
        assert_eq!(row["SubAccountId"], "");
    } else {
        assert_eq!(row["SubAccountId"], row["SubAccountName"]);
        assert!(!row["SubAccountId"].is_empty());
    }
}

fn billed_total(rows: &[Row]) -> Decimal {
    rows.iter().map(|r| decimal(r, "BilledCost")).sum()
}

#[test]
fn the_warning_about_a_model_without_a_price_counts_every_charge_period() {
    // The fixture's GH200 (no price in tests/fixtures/rates.toml) is held by `probe` from
    // 2026-11-01 on: 12 + 24 + 6 = 42 GPU-hours from 2026-11-01T12:00 to 2026-11-03T06:00, in
    // three daily charge periods made apart (their rows, and their warnings, on two threads).
    let dir = tempfile::tempdir().unwrap();
    let warning = "warning: GPU model \"NVIDIA-GH200-480GB\" has no price in tests/fixtures/rates.toml for 42 GPU-hours; they are reported as unpriced_gpu_hours, with no cost\n";
    for (format, file) in [
        ("focus", "rows.csv"),
        ("focus", "rows.parquet"),
        ("csv", ""),
    ] {
        let mut command = tollgate_command();
        command
            .args(["report", "--snapshot", "tests/fixtures/snapshot"])
            .args(["--pricing", "tests/fixtures/rates.toml"])
            .args(["--as-of", "2026-11-04T00:00:00Z", "--format", format])
            .args([
                "--from",
                "2026-11-01T12:00:00Z",
                "--to",
                "2026-11-03T06:00:00Z",
            ]);
        if !file.is_empty() {
            command.arg("--output").arg(dir.path().join(file));
        } else {
            command.args(["--step", "day"]);
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "{file}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            warning,
            "{format} {file}"
        );
    }
}

#[test]
fn fixture_rows_validate_and_add_up_to_the_chargeback() {
    let (header, rows) = parse(&fixture_report(&["--format", "focus"]));
    check_header(&header);
    rows.iter().for_each(check_row);
    check_allocation(&rows);
    assert_eq!(billed_total(&rows), chargeback_total(&fixture_report(&[])));
    assert_eq!(billed_total(&rows), "2006.40".parse::<Decimal>().unwrap());

    let by_name = |name: &str| rows.iter().find(|r| r["ResourceName"] == name).unwrap();
    // A device-plugin pod: its UID, its namespace as sub-account, its cost center as a tag.
    let chat = by_name("chat-0");
    assert_eq!(chat["ResourceType"], "Pod");
    assert_eq!(chat["ResourceId"], "580f9cb0-3f56-49cf-8051-5b591cfaa2c8");
    assert_eq!(chat["SubAccountId"], "team-a");
    assert_eq!(chat["x_CostCenter"], "cc-100");
    assert_eq!(chat["SkuId"], "H100-80GB");
    assert_eq!(
        (
            chat["ConsumedQuantity"].as_str(),
            chat["BilledCost"].as_str()
        ),
        ("48.0000", "168.00")
    );
    // Spot capacity is priced dynamically.
    assert_eq!(by_name("batch-0")["PricingCategory"], "Dynamic");
    assert_eq!(by_name("node-h100-spot")["PricingCategory"], "Dynamic");
    // A DRA claim is billed under its own UID.
    let claim = by_name("dra-0-gpu-x7k2p");
    assert_eq!(claim["ResourceType"], "ResourceClaim");
    assert_eq!(claim["ResourceId"], "f153bfbb-76aa-4d5f-8d19-d2a2410d3394");
    assert_eq!(claim["BilledCost"], "192.00");
    // A node's idle capacity is its own row.
    let idle = by_name("node-h100");
    assert_eq!(
        (idle["ResourceType"].as_str(), idle["BilledCost"].as_str()),
        ("Node", "404.00")
    );
    // An unpriced model is shown, with no cost, never silently.
    let unpriced = by_name("gh-0");
    assert_eq!(unpriced["x_UnpricedGpuHours"], "24.0000");
    assert_eq!(unpriced["BilledCost"], "0.00");

    // FOCUS 1.3's split: node-h100 has 8 GPUs, 192 GPU-hours in the day. chat-0 held 2 of them
    // all day (48 h: 0.25), serve-0 12 h (0.0625), train-0 16 h (1/12), and the 116 h no pod
    // held are its unallocated row (116/192 = 0.6041666666…, to 10 places and taking what
    // rounding left: 1 − 0.25 − 0.0625 − 0.0833333333).
    let ratio = |name: &str| {
        let details: serde_json::Value =
            serde_json::from_str(&by_name(name)["AllocatedMethodDetails"]).unwrap();
        details["Elements"][0]["AllocatedRatio"].to_string()
    };
    assert_eq!(ratio("chat-0"), "0.25");
    assert_eq!(ratio("serve-0"), "0.0625");
    assert_eq!(ratio("train-0"), "0.0833333333");
    assert_eq!(ratio("node-h100"), "0.6041666667");
    assert_eq!(
        by_name("chat-0")["AllocatedTags"],
        r#"{"namespace":"team-a"}"#
    );
    assert_eq!(by_name("chat-0")["Tags"], r#"{"cost_center":"cc-100"}"#);
    assert_eq!(by_name("chat-0")["AllocatedResourceName"], "chat-0");
    assert_eq!(by_name("node-h100")["AllocatedResourceId"], "");
    for column in ["ServiceProviderName", "HostProviderName", "ProviderName"] {
        assert_eq!(chat[column], "GPU Platform", "{column}");
    }

    // FOCUS 1.2 on request: its 39 columns, in order, and the same rows.
    let (header_1_2, rows_1_2) = parse(&fixture_report(&[
        "--format",
        "focus",
        "--focus-version",
        "1.2",
    ]));
    let expected: Vec<&str> = header
        .iter()
        .map(String::as_str)
        .filter(|c| !NEW_IN_1_3.contains(c))
        .collect();
    assert_eq!(header_1_2, expected);
    assert_eq!(header_1_2.len(), 39);
    assert_eq!(rows_1_2.len(), rows.len());
    assert_eq!(billed_total(&rows_1_2), billed_total(&rows));
    // Every cell 1.2 prints is 1.3's, row by row: ResourceId and ResourceName too, which 1.3
    // prints after AllocatedResourceId and AllocatedResourceName.
    for (row_1_2, row) in rows_1_2.iter().zip(&rows) {
        for column in &header_1_2 {
            assert_eq!(row_1_2[column], row[column], "{column}");
        }
        assert!(!row_1_2["ResourceId"].is_empty());
    }
}

#[test]
fn a_month_of_the_demo_fleet_reconciles_to_the_cent_across_billing_periods() {
    let window = support::DEMO_MONTH;
    // Without --step a charge period is a day: the export streams a day at a time, and its
    // rows, rounded part by part, still add up to the chargeback's total to the cent.
    let (header, rows) = focus(&window);
    check_header(&header);
    rows.iter().for_each(check_row);
    check_allocation(&rows);
    let total = chargeback_total(&report_stdout(&window));
    assert_eq!(billed_total(&rows), total);
    assert!(total > Decimal::from(100_000), "{total}");
    assert!(
        rows.iter().all(|r| {
            datetime(r, "ChargePeriodEnd") - datetime(r, "ChargePeriodStart") == 86_400
        })
    );
    // Both billing periods appear; with --step month each charge period is a whole
    // billing-period part: one row per resource and month.
    let periods: std::collections::BTreeSet<&str> = rows
        .iter()
        .map(|r| r["BillingPeriodStart"].as_str())
        .collect();
    assert_eq!(
        periods.into_iter().collect::<Vec<_>>(),
        ["2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z"]
    );
    let (_, monthly) = focus(&[&window[..], &["--step", "month"]].concat());
    monthly.iter().for_each(check_row);
    assert_eq!(billed_total(&monthly), total);
    assert!(monthly.iter().all(|r| {
        [
            r["ChargePeriodStart"].as_str(),
            r["ChargePeriodEnd"].as_str(),
        ]
        .iter()
        .all(|t| {
            [
                "2026-10-15T00:00:00Z",
                "2026-11-01T00:00:00Z",
                "2026-11-15T00:00:00Z",
            ]
            .contains(t)
        })
    }));
}
