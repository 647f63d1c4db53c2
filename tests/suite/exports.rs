//! `tollgate report --output FILE` (issue 14): Parquet and gzipped CSV, read back by DuckDB —
//! a reader Tollgate does not write with — with every FOCUS Mandatory column of the type FOCUS
//! gives it (Decimal, DateTime as UTC timestamps, String), never null where FOCUS forbids it,
//! and `SUM(BilledCost)` equal to the chargeback total to the cent.

use crate::support;

use std::path::Path;

use rust_decimal::Decimal;
use serde_json::Value;
use support::tools::{Tool, require};
use support::{chargeback_total, fixture_report, report_stdout};

/// FOCUS 1.3's Mandatory columns, with the type DuckDB reads for each: FOCUS's Decimal as
/// DECIMAL (money to the cent of USD), DateTime as a UTC timestamp, String as VARCHAR.
const MANDATORY: [(&str, &str); 23] = [
    ("HostProviderName", "VARCHAR"),
    ("ServiceProviderName", "VARCHAR"),
    ("BilledCost", "DECIMAL(38,2)"),
    ("BillingAccountId", "VARCHAR"),
    ("BillingAccountName", "VARCHAR"),
    ("BillingCurrency", "VARCHAR"),
    ("BillingPeriodEnd", "TIMESTAMP WITH TIME ZONE"),
    ("BillingPeriodStart", "TIMESTAMP WITH TIME ZONE"),
    ("ChargeCategory", "VARCHAR"),
    ("ChargeClass", "VARCHAR"),
    ("ChargeDescription", "VARCHAR"),
    ("ChargePeriodEnd", "TIMESTAMP WITH TIME ZONE"),
    ("ChargePeriodStart", "TIMESTAMP WITH TIME ZONE"),
    ("ContractedCost", "DECIMAL(38,2)"),
    ("EffectiveCost", "DECIMAL(38,2)"),
    ("InvoiceIssuerName", "VARCHAR"),
    ("ListCost", "DECIMAL(38,2)"),
    ("PricingQuantity", "DECIMAL(38,4)"),
    ("PricingUnit", "VARCHAR"),
    ("ProviderName", "VARCHAR"),
    ("PublisherName", "VARCHAR"),
    ("ServiceCategory", "VARCHAR"),
    ("ServiceName", "VARCHAR"),
];

/// What DuckDB makes of the files in `dir`: the FOCUS Parquet's schema, the nulls of each
/// column, row counts and `SUM(BilledCost)` of the Parquet and the gzipped CSV, and the
/// chargeback Parquet's schema and cost total.
fn duckdb(dir: &Path) -> Value {
    let script = r#"
import duckdb, json, sys
d = sys.argv[1]
con = duckdb.connect()
focus = f"read_parquet('{d}/focus.parquet')"
schema = con.execute(f"DESCRIBE SELECT * FROM {focus}").fetchall()
nulls = {name: con.execute(f'SELECT count(*) FROM {focus} WHERE "{name}" IS NULL').fetchone()[0]
         for (name, *_rest) in schema}
csv = f"read_csv('{d}/focus.csv.gz', header = true, all_varchar = true)"
chargeback = f"read_parquet('{d}/chargeback.parquet')"
# Rows asked for by a text's value, the filter handed to the Parquet reader (which skips pages
# and row groups by their statistics), against the same count over the rows read whole.
con.execute(f"CREATE TABLE whole AS SELECT * FROM {focus}")
by_value = {}
for name in ["ResourceId", "ResourceName", "AllocatedResourceId", "AllocatedResourceName",
             "ChargeDescription", "AllocatedMethodDetails", "SubAccountId", "x_CostCenter"]:
    (value,) = con.execute(f'SELECT "{name}" FROM whole WHERE "{name}" IS NOT NULL '
                           f'ORDER BY ChargePeriodStart DESC, "{name}" LIMIT 1').fetchone()
    count = lambda table: con.execute(f'SELECT count(*) FROM {table} WHERE "{name}" = ?',
                                      [value]).fetchone()[0]
    by_value[name] = [count(focus), count("whole")]
print(json.dumps({
    "by_value": by_value,
    "schema": {name: kind for (name, kind, *_rest) in schema},
    "nulls": nulls,
    "rows": con.execute(f"SELECT count(*) FROM {focus}").fetchone()[0],
    "billed": str(con.execute(f"SELECT sum(BilledCost) FROM {focus}").fetchone()[0]),
    "csv_rows": con.execute(f"SELECT count(*) FROM {csv}").fetchone()[0],
    "csv_billed": str(con.execute(f"SELECT sum(CAST(BilledCost AS DECIMAL(38,2))) FROM {csv}").fetchone()[0]),
    "unallocated": con.execute(f"SELECT count(*) FROM {focus} WHERE ResourceType = 'Node'").fetchone()[0],
    "allocated_nulls_elsewhere": con.execute(f"""SELECT count(*) FROM {focus} WHERE ResourceType <> 'Node'
        AND (AllocatedResourceId IS NULL OR AllocatedResourceName IS NULL OR AllocatedTags IS NULL
             OR AllocatedResourceId <> ResourceId)""").fetchone()[0],
    "periods": [str(p) for (p,) in con.execute(
        f"SELECT DISTINCT BillingPeriodStart FROM {focus} ORDER BY 1").fetchall()],
    "chargeback_schema": {name: kind for (name, kind, *_rest) in
        con.execute(f"DESCRIBE SELECT * FROM {chargeback}").fetchall()},
    "chargeback_cost": str(con.execute(f"SELECT sum(cost) FROM {chargeback}").fetchone()[0]),
}))
"#;
    support::duckdb(script, dir)
}

/// Writes the FOCUS export as Parquet and gzipped CSV and the chargeback as Parquet, each with
/// `--output`, into `dir`.
fn export(dir: &Path, args: &[&str]) {
    for (file, format) in [
        ("focus.parquet", "focus"),
        ("focus.csv.gz", "focus"),
        ("chargeback.parquet", "csv"),
    ] {
        let path = dir.join(file);
        let written = report_stdout(
            &[
                args,
                &["--format", format, "--output", path.to_str().unwrap()][..],
            ]
            .concat(),
        );
        assert!(written.is_empty(), "--output writes nothing to stdout");
    }
}

fn check_focus_types(found: &Value) {
    for (column, kind) in MANDATORY {
        assert_eq!(found["schema"][column], kind, "{column}: {found}");
        // FOCUS lets ChargeClass alone be null (it is, on every row: nothing is a correction).
        let nulls = found["nulls"][column].as_u64().unwrap();
        if column == "ChargeClass" {
            assert_eq!(nulls, found["rows"].as_u64().unwrap());
        } else {
            assert_eq!(nulls, 0, "{column} has nulls");
        }
    }
    assert_eq!(found["schema"]["ConsumedQuantity"], "DECIMAL(38,4)");
    assert_eq!(found["schema"]["x_IdleCost"], "DECIMAL(38,2)");
    assert_eq!(found["schema"]["Tags"], "VARCHAR");
    // FOCUS 1.3's split: the unallocated rest of a node has no allocated resource (MUST be
    // null) and no allocated tags; every pod's and claim's row has its own.
    let unallocated = found["unallocated"].as_u64().unwrap();
    assert!(unallocated > 0, "{found}");
    for column in [
        "AllocatedResourceId",
        "AllocatedResourceName",
        "AllocatedTags",
    ] {
        assert_eq!(
            found["nulls"][column].as_u64(),
            Some(unallocated),
            "{column}"
        );
    }
    assert_eq!(found["allocated_nulls_elsewhere"], 0);
    assert_eq!(found["rows"], found["csv_rows"]);
    // A row asked for by its text is found: pages and row groups say the range of their texts
    // (told of none, DuckDB skipped them all and found no row).
    for (column, counts) in found["by_value"].as_object().unwrap() {
        let whole = counts[1].as_u64().unwrap();
        assert!(whole > 0, "{column}");
        assert_eq!(counts[0].as_u64(), Some(whole), "{column}: {found}");
    }
}

#[test]
fn the_fixture_day_loads_in_duckdb_typed_and_to_the_cent() {
    require(&[Tool::DuckDb]);
    let dir = tempfile::tempdir().unwrap();
    export(dir.path(), &support::FIXTURE);
    let found = duckdb(dir.path());
    check_focus_types(&found);
    // The fixture's total, derived by hand in `focus.rs` and `report_cli.rs`.
    assert_eq!(found["billed"], "2006.40");
    assert_eq!(found["csv_billed"], "2006.40");
    assert_eq!(found["chargeback_cost"], "2006.40");
    assert_eq!(
        found["chargeback_schema"]["period_start"],
        "TIMESTAMP WITH TIME ZONE"
    );
    assert_eq!(found["chargeback_schema"]["cost"], "DECIMAL(38,2)");
    assert_eq!(found["chargeback_schema"]["gpu_hours"], "DECIMAL(38,4)");
    assert_eq!(found["chargeback_schema"]["cost_center"], "VARCHAR");
    assert_eq!(
        chargeback_total(&fixture_report(&[])).to_string(),
        "2006.40"
    );
}

#[test]
fn a_month_across_billing_periods_loads_in_duckdb_to_the_cent() {
    require(&[Tool::DuckDb]);
    let dir = tempfile::tempdir().unwrap();
    let window = support::DEMO_MONTH;
    export(dir.path(), &window);
    let found = duckdb(dir.path());
    check_focus_types(&found);
    // The chargeback CSV's total, summed here from its text.
    let total = chargeback_total(&report_stdout(&window));
    assert!(total > Decimal::from(100_000), "{total}");
    for figure in ["billed", "csv_billed", "chargeback_cost"] {
        assert_eq!(found[figure], total.to_string(), "{figure}");
    }
    assert_eq!(
        found["periods"],
        serde_json::json!(["2026-10-01 00:00:00+00:00", "2026-11-01 00:00:00+00:00"])
    );
}

/// `GET url` with `Accept: application/vnd.apache.parquet`: the content type and the body.
async fn get_parquet(url: &str) -> (String, Vec<u8>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::Client::new()
        .get(url)
        .header("Accept", "application/vnd.apache.parquet")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    (content_type, response.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_parquet_when_asked() {
    require(&[Tool::DuckDb]);
    let (urls, stop, server) = support::spawn_service(support::no_budgets(), None).await;
    let base = format!(
        "http://{}/api/v1/chargeback?from=2026-11-01&to=2026-11-02",
        support::address(&urls[0])
    );
    let dir = tempfile::tempdir().unwrap();
    for (file, query) in [
        ("focus.parquet", "&format=focus"),
        ("chargeback.parquet", ""),
    ] {
        let (content_type, body) = get_parquet(&format!("{base}{query}")).await;
        assert_eq!(content_type, "application/vnd.apache.parquet");
        assert!(body.starts_with(b"PAR1") && body.ends_with(b"PAR1"));
        std::fs::write(dir.path().join(file), body).unwrap();
    }
    let gz = dir.path().join("focus.csv.gz");
    fixture_report(&["--format", "focus", "--output", gz.to_str().unwrap()]);
    let found = duckdb(dir.path());
    check_focus_types(&found);
    assert_eq!(found["billed"], "2006.40");
    assert_eq!(found["chargeback_cost"], "2006.40");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

/// A window that starts and ends mid-day and crosses a billing period (05:30 on 15 November to
/// 13:17 on 2 December): DuckDB sums the FOCUS Parquet's rows by cost center and namespace and
/// finds every sum equal to that group's line of the chargeback CSV — cost, GPU-hours, idle
/// cost and unpriced hours — and checks each row against FOCUS's own relations.
#[test]
fn a_window_cut_mid_day_reconciles_group_by_group_in_duckdb() {
    require(&[Tool::DuckDb]);
    let dir = tempfile::tempdir().unwrap();
    let window = [
        "--demo",
        "--from",
        "2026-11-15T05:30:00Z",
        "--to",
        "2026-12-02T13:17:00Z",
        "--as-of",
        "2026-12-02T13:17:00Z",
    ];
    let focus = dir.path().join("focus.parquet");
    let chargeback = dir.path().join("chargeback.csv");
    report_stdout(
        &[
            &window[..],
            &["--format", "focus", "--output", focus.to_str().unwrap()],
        ]
        .concat(),
    );
    report_stdout(&[&window[..], &["--output", chargeback.to_str().unwrap()]].concat());
    let script = r#"
import duckdb, json, sys
d = sys.argv[1]
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
focus = f"read_parquet('{d}/focus.parquet')"
groups = f"""
  WITH f AS (
    SELECT x_CostCenter AS cc, coalesce(SubAccountId, '') AS ns, sum(BilledCost) AS cost,
      sum(ConsumedQuantity) AS hours, sum(x_IdleCost) AS idle, sum(x_UnpricedGpuHours) AS unpriced
    FROM {focus} GROUP BY ALL),
  c AS (
    SELECT cost_center AS cc, coalesce(namespace, '') AS ns, CAST(cost AS DECIMAL(38,2)) AS cost,
      CAST(gpu_hours AS DECIMAL(38,4)) AS hours, CAST(idle_cost AS DECIMAL(38,2)) AS idle,
      CAST(unpriced_gpu_hours AS DECIMAL(38,4)) AS unpriced
    FROM read_csv('{d}/chargeback.csv', header = true, all_varchar = true))
  SELECT cc, ns, CAST(f.cost AS VARCHAR), CAST(c.cost AS VARCHAR) FROM f FULL OUTER JOIN c USING (cc, ns)
  WHERE f.cost IS DISTINCT FROM c.cost OR f.hours IS DISTINCT FROM c.hours
     OR f.idle IS DISTINCT FROM c.idle OR f.unpriced IS DISTINCT FROM c.unpriced"""
rows = f"""SELECT
  count(*),
  count(DISTINCT (x_CostCenter, SubAccountId)),
  count(*) FILTER (WHERE BilledCost <> ListCost OR BilledCost <> EffectiveCost OR BilledCost <> ContractedCost),
  count(*) FILTER (WHERE ChargePeriodStart < BillingPeriodStart OR ChargePeriodEnd > BillingPeriodEnd),
  count(*) FILTER (WHERE PricingQuantity + x_UnpricedGpuHours <> ConsumedQuantity),
  count(*) FILTER (WHERE x_IdleCost > BilledCost OR BilledCost < 0),
  CAST(min(ChargePeriodStart) AS VARCHAR), CAST(max(ChargePeriodEnd) AS VARCHAR),
  count(DISTINCT BillingPeriodStart)
  FROM {focus}"""
print(json.dumps({"differ": con.execute(groups).fetchall(), "rows": con.execute(rows).fetchone()}))
"#;
    let found = support::duckdb(script, dir.path());
    assert_eq!(found["differ"], serde_json::json!([]), "{found}");
    let rows = &found["rows"];
    assert!(rows[0].as_u64().unwrap() > 10_000, "{found}");
    assert!(rows[1].as_u64().unwrap() >= 10, "{found}");
    for (at, relation) in [
        (2, "the four costs equal"),
        (3, "the charge period within the billing period"),
        (4, "priced plus unpriced hours the consumed"),
        (5, "idle cost within the billed, none negative"),
    ] {
        assert_eq!(rows[at], 0, "rows breaking {relation}: {found}");
    }
    assert_eq!(rows[6], "2026-11-15 05:30:00+00");
    assert_eq!(rows[7], "2026-12-02 13:17:00+00");
    assert_eq!(rows[8], 2);
}
