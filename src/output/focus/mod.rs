//! The FinOps FOCUS export (SPEC §4.2), 1.3 by default and 1.2 on request: one cost-and-usage
//! row per billed resource (pod, DRA claim, or a node's unallocated capacity) and charge period.
//!
//! FOCUS 1.3's split-cost allocation columns describe what Tollgate does: each row is a share of
//! its node's GPU capacity for the period (the origin charge, per node, model and tier), split by
//! the GPU-hours each pod or claim held, the rest being the node's unallocated row
//! (`AllocatedMethodId` [`ALLOCATED_METHOD`]; `AllocatedMethodDetails` gives the row's ratio and
//! its GPU-hours).
//!
//! Rows come from the same engine as the chargeback, grouped by every key that tells resources
//! apart, and rounded the same way: the `BilledCost` column adds up to the chargeback's total.
//! Tollgate's rate card is both the list and the contracted price of an internal platform, so
//! `ListCost`, `ContractedCost`, `EffectiveCost` and `BilledCost` are equal.

mod allocated;
mod csv;
mod writer;

use rust_decimal::Decimal;
use serde::Deserialize;

use super::cells::{push_decimal, push_text};
use crate::allocation::UNALLOCATED;
use crate::cost::{CostLine, GroupBy, LineFilter, ReportRequest};
use crate::time::{Interval, Step, month_start, next_month_start};

pub use allocated::ALLOCATED_METHOD;
pub(super) use allocated::allocated_details;
use allocated::{DETAILS_QUOTED, push_details};
pub(super) use csv::csv_header;
pub use csv::{CsvRows, SpareBuffers};
pub use writer::{FocusWriter, write_focus};

/// `[focus]`: the names the FOCUS export gives the platform.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct FocusSettings {
    /// `BillingAccountId` (default `tollgate`).
    pub billing_account_id: String,
    /// `BillingAccountName` (default `Kubernetes GPU platform`).
    pub billing_account_name: String,
    /// `ProviderName`, `PublisherName` and `InvoiceIssuerName`: the platform that charges
    /// (default `GPU Platform`).
    pub provider: String,
    /// `ServiceName` (default `Kubernetes GPUs`).
    pub service_name: String,
    /// `x_ClusterName` (default: the cluster's name, `[cluster] name` or its default).
    pub cluster: Option<String>,
    /// `HostProviderName` (FOCUS 1.3): whose machines the GPUs are (default: `provider`).
    pub host_provider: Option<String>,
    /// The FOCUS version written: `1.3` (default) or `1.2`.
    pub version: FocusVersion,
}

/// A FOCUS version Tollgate writes.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub enum FocusVersion {
    /// FOCUS 1.2.
    #[serde(rename = "1.2")]
    V1_2,
    /// FOCUS 1.3 (ratified 2025-12-05): 1.2's columns and the split-cost allocation ones,
    /// `ServiceProviderName` and `HostProviderName`.
    #[default]
    #[serde(rename = "1.3")]
    V1_3,
}

impl FocusSettings {
    /// These settings for the cluster `name`: `x_ClusterName` is `name` unless configured.
    pub fn for_cluster(mut self, name: &str) -> Self {
        self.cluster.get_or_insert_with(|| name.to_string());
        self
    }

    /// `x_ClusterName`.
    pub fn cluster_name(&self) -> &str {
        self.cluster.as_deref().unwrap_or_default()
    }
}

impl std::str::FromStr for FocusVersion {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "1.2" => Ok(FocusVersion::V1_2),
            "1.3" => Ok(FocusVersion::V1_3),
            other => Err(format!("FOCUS version {other:?}: use 1.3 or 1.2")),
        }
    }
}

impl FocusVersion {
    /// The columns of this version, in order.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            FocusVersion::V1_2 => &COLUMNS_1_2,
            FocusVersion::V1_3 => &COLUMNS,
        }
    }
}

impl Default for FocusSettings {
    fn default() -> Self {
        FocusSettings {
            billing_account_id: "tollgate".into(),
            billing_account_name: "Kubernetes GPU platform".into(),
            provider: "GPU Platform".into(),
            service_name: "Kubernetes GPUs".into(),
            cluster: None,
            host_provider: None,
            version: FocusVersion::default(),
        }
    }
}

/// The columns of FOCUS 1.3, FOCUS's in alphabetical order, then the `x_` extras.
pub const COLUMNS: [&str; 46] = [
    "AllocatedMethodDetails",
    "AllocatedMethodId",
    "AllocatedResourceId",
    "AllocatedResourceName",
    "AllocatedTags",
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "EffectiveCost",
    "HostProviderName",
    "InvoiceIssuerName",
    "ListCost",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "ServiceProviderName",
    "ServiceSubcategory",
    "SkuId",
    "SubAccountId",
    "SubAccountName",
    "Tags",
    "x_ClusterName",
    "x_CostCenter",
    "x_CostCenterSource",
    "x_GpuUtilization",
    "x_IdleCost",
    "x_UnpricedGpuHours",
];

/// The columns of FOCUS 1.2: 1.3's less the allocation columns, `HostProviderName` and
/// `ServiceProviderName`.
pub const COLUMNS_1_2: [&str; 39] = {
    let mut columns = [""; 39];
    let (mut from, mut to) = (0, 0);
    while from < COLUMNS.len() {
        if !is_new_in_1_3(COLUMNS[from]) {
            columns[to] = COLUMNS[from];
            to += 1;
        }
        from += 1;
    }
    columns
};

/// Whether FOCUS 1.3 added `column` (to what Tollgate writes).
const fn is_new_in_1_3(column: &str) -> bool {
    let bytes = column.as_bytes();
    starts_with(bytes, b"Allocated")
        || matches!(bytes, b"HostProviderName")
        || matches!(bytes, b"ServiceProviderName")
}

const fn starts_with(bytes: &[u8], prefix: &[u8]) -> bool {
    if bytes.len() < prefix.len() {
        return false;
    }
    let mut i = 0;
    while i < prefix.len() {
        if bytes[i] != prefix[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The request FOCUS rows are computed from: grouped by resource, one charge period a day
/// unless another step is asked (a period never crosses a billing period: months cut too).
/// Days are what lets an export stream with one day in memory at a time.
///
/// A filter on cost center or namespace is left to the [`FocusWriter`]: every row's
/// `AllocatedRatio` is a share of its node's capacity, which takes the node's other rows.
pub fn focus_request(request: &ReportRequest) -> ReportRequest {
    ReportRequest {
        step: match request.step {
            Step::Window => Step::Day,
            step => step,
        },
        group_by: GroupBy::resources(),
        only: LineFilter::default(),
        ..request.clone()
    }
}

/// `PricingCategory` of a price tier (as the engine prints it).
fn pricing_category(tier: &str) -> &'static str {
    match tier {
        "spot" => "Dynamic",
        "reserved" => "Committed",
        _ => "Standard",
    }
}

/// The group values of a line of a [`focus_request`] report, by name.
struct Resource<'a> {
    cost_center: &'a str,
    namespace: &'a str,
    gpu_model: &'a str,
    node: &'a str,
    pod: &'a str,
    resource_id: &'a str,
    claim: &'a str,
    tier: &'a str,
    source: &'a str,
}

impl<'a> Resource<'a> {
    fn of(line: &'a CostLine) -> Option<Self> {
        let [cc, ns, model, node, pod, id, claim, tier, source] = line.group.all()?;
        Some(Resource {
            cost_center: cc,
            namespace: ns,
            gpu_model: model,
            node,
            pod,
            resource_id: id,
            claim,
            tier,
            source,
        })
    }

    /// `ResourceName` and `ResourceType`; `ChargeDescription` into `text`.
    fn describe(&self, text: &mut String) -> (&'a str, &'static str) {
        let (model, node, ns, pod, claim) = (
            self.gpu_model,
            self.node,
            self.namespace,
            self.pod,
            self.claim,
        );
        text.clear();
        let mut put = |pieces: &[&str]| pieces.iter().for_each(|piece| text.push_str(piece));
        if self.cost_center == UNALLOCATED {
            put(&["Unallocated ", model, " capacity of node ", node]);
            (node, "Node")
        } else if !claim.is_empty() {
            put(&[model, " GPU time of DRA claim ", ns, "/", claim]);
            put(&[" (pod ", ns, "/", pod, ") on node ", node]);
            (claim, "ResourceClaim")
        } else {
            put(&[model, " GPU time of pod ", ns, "/", pod, " on node ", node]);
            (pod, "Pod")
        }
    }
}

/// The billing period (the calendar month) of a charge period.
fn billing_period(period: Interval) -> Interval {
    Interval::new(
        month_start(period.start).unwrap_or(period.start),
        next_month_start(period.start).unwrap_or(period.end),
    )
}

/// One FOCUS row, typed: what a sink writes as CSV text or Parquet columns.
pub struct FocusRow<'a> {
    /// `BilledCost`, `ContractedCost`, `EffectiveCost` and `ListCost` (0 when unpriced).
    pub cost: Decimal,
    /// `ChargePeriodStart`/`End`.
    pub charge: Interval,
    /// `BillingPeriodStart`/`End`.
    pub billing: Interval,
    /// `BillingCurrency`.
    pub currency: &'a str,
    /// `ChargeDescription`.
    pub description: &'a str,
    /// `ConsumedQuantity` (GPU-hours).
    pub consumed: Decimal,
    /// `PricingCategory`.
    pub pricing_category: &'static str,
    /// `PricingQuantity` (priced GPU-hours).
    pub pricing_quantity: Decimal,
    /// `ResourceId`, `ResourceName`, `ResourceType`.
    pub resource_id: &'a str,
    /// `ResourceName`.
    pub resource_name: &'a str,
    /// `ResourceType`.
    pub resource_type: &'static str,
    /// `SkuId`: the GPU model.
    pub sku: &'a str,
    /// `SubAccountId`/`Name`: the namespace; `None` for unallocated capacity.
    pub sub_account: Option<&'a str>,
    /// `Tags`, a JSON object.
    pub tags: &'a str,
    /// `x_CostCenter`.
    pub cost_center: &'a str,
    /// `x_CostCenterSource`.
    pub cost_center_source: &'a str,
    /// `x_GpuUtilization`, to 4 places.
    pub utilization: Option<Decimal>,
    /// `x_IdleCost`.
    pub idle_cost: Option<Decimal>,
    /// `x_UnpricedGpuHours`.
    pub unpriced: Decimal,
    /// The row's share of its origin charge: `AllocatedMethodDetails` is this `AllocatedRatio`
    /// and `consumed` GPU-hours, as JSON ([`allocated_details`]).
    pub allocated_ratio: Decimal,
    /// Whether the row is a workload's share of its origin charge (a pod's or a claim's):
    /// `AllocatedResourceId`/`Name` are then its `ResourceId`/`Name`. The unallocated rest of a
    /// node's capacity is not: FOCUS 1.3 has them null for it.
    pub allocated: bool,
    /// `AllocatedTags`, JSON: the workload's tags not already in `Tags` (its namespace); null
    /// for the unallocated rest.
    pub allocated_tags: Option<&'a str>,
    /// The run of rows of one cost center and namespace this row is in (rows come sorted by
    /// them; a writer numbers its runs, a part's first row starting a new one): rows of one
    /// run have the same `cost_center`, `sub_account`, `tags` and `allocated_tags`, so a sink
    /// can take what it made of them for the row before without comparing texts.
    pub run: u64,
}

/// A FOCUS CSV cell of a row.
#[derive(Clone, Copy)]
enum Cell<'c> {
    /// Text, quoted where it must be and spreadsheet-safe.
    Text(&'c str),
    /// Text the same in every row of a charge period (a setting, a constant, the period's
    /// times): printed into the rows' plan, once a period.
    Fixed(&'c str),
    /// Text rows of one cost center and namespace share (their tags, model, namespace):
    /// printed as [`Cell::Text`] where it changes, copied from the row before where it does not.
    Shared(&'c str),
    /// [`Cell::Shared`] text that is the same throughout a run ([`FocusRow::run`]): within a
    /// run, copied from the row before without being compared.
    InRun(&'c str),
    /// Text that needs neither (a pricing category, a resource type).
    Plain(&'c str),
    /// A number, or an empty cell.
    Number(Option<Decimal>),
    /// `AllocatedMethodDetails` of a ratio and GPU-hours: JSON, printed quoted as
    /// [`Cell::Text`] would print it without being scanned for quotes.
    Details(Decimal, Decimal),
}

impl Cell<'_> {
    fn push(self, out: &mut Vec<u8>) {
        match self {
            Cell::Text(text) | Cell::Fixed(text) | Cell::Shared(text) | Cell::InRun(text) => {
                push_text(out, text)
            }
            Cell::Plain(text) => out.extend_from_slice(text.as_bytes()),
            Cell::Number(Some(value)) => push_decimal(out, value),
            Cell::Number(None) => {}
            Cell::Details(ratio, hours) => push_details(out, DETAILS_QUOTED, ratio, hours),
        }
    }
}

impl FocusRow<'_> {
    /// The row as FOCUS 1.3 CSV cells, in [`COLUMNS`] order.
    fn cells<'c>(&'c self, settings: &'c FocusSettings, times: &'c [String; 4]) -> [Cell<'c>; 46] {
        use Cell::{Fixed, InRun, Number, Plain, Shared, Text};
        let [start, end, billing_start, billing_end] = times;
        let host = settings
            .host_provider
            .as_deref()
            .unwrap_or(&settings.provider);
        let cost = Number(Some(self.cost));
        let provider = Fixed(&settings.provider);
        let sub_account = InRun(self.sub_account.unwrap_or_default());
        let allocated = |text| Text(if self.allocated { text } else { "" });
        [
            Cell::Details(self.allocated_ratio, self.consumed),
            Fixed(ALLOCATED_METHOD),
            allocated(self.resource_id),
            allocated(self.resource_name),
            InRun(self.allocated_tags.unwrap_or_default()),
            cost,
            Fixed(&settings.billing_account_id),
            Fixed(&settings.billing_account_name),
            Shared(self.currency),
            Fixed(billing_end),
            Fixed(billing_start),
            Fixed("Usage"),
            Fixed(""),
            Text(self.description),
            Fixed("Usage-Based"),
            Fixed(end),
            Fixed(start),
            Number(Some(self.consumed)),
            Fixed("GPU-Hours"),
            cost,
            cost,
            Fixed(host),
            provider,
            cost,
            Plain(self.pricing_category),
            Number(Some(self.pricing_quantity)),
            Fixed("GPU-Hours"),
            provider,
            provider,
            Text(self.resource_id),
            Text(self.resource_name),
            Plain(self.resource_type),
            Fixed("Compute"),
            Fixed(&settings.service_name),
            provider,
            Fixed("Containers"),
            Shared(self.sku),
            sub_account,
            sub_account,
            InRun(self.tags),
            Fixed(settings.cluster_name()),
            InRun(self.cost_center),
            Shared(self.cost_center_source),
            Number(self.utilization),
            Number(self.idle_cost),
            Number(Some(self.unpriced)),
        ]
    }
}

/// Where FOCUS rows go: CSV text ([`CsvRows`]), or Parquet row groups
/// ([`ParquetRows`](super::ParquetRows)).
pub trait FocusSink {
    /// Writes one row.
    fn row(&mut self, row: &FocusRow<'_>) -> std::io::Result<()>;
    /// Ends a part of the report (a charge period): what was written so far can go out.
    fn end_part(&mut self) -> std::io::Result<()>;
    /// Ends the output (Parquet's footer) and flushes it.
    fn finish(&mut self) -> std::io::Result<()>;
}

impl<T: FocusSink + ?Sized> FocusSink for Box<T> {
    fn row(&mut self, row: &FocusRow<'_>) -> std::io::Result<()> {
        (**self).row(row)
    }

    fn end_part(&mut self) -> std::io::Result<()> {
        (**self).end_part()
    }

    fn finish(&mut self) -> std::io::Result<()> {
        (**self).finish()
    }
}

/// Columns whose cells are those of another column (by their places among [`COLUMNS`]):
/// `ContractedCost`, `EffectiveCost` and `ListCost` print `BilledCost`; `SubAccountName` the
/// `SubAccountId`. A row prints such a cell once and copies it where the other column comes
/// later (and Parquet writes such a column from the other's pages).
pub(super) const REPEATS: [(usize, usize); 4] = [(19, 5), (20, 5), (23, 5), (38, 37)];

/// Columns whose cells are those of another column wherever that one is not empty: `ResourceId`
/// and `ResourceName` print the allocated ones (FOCUS 1.3), empty only on unallocated rows
/// ([`FocusRow::allocated`]). A CSV row copies such a cell where it can.
pub(super) const FILLS: [(usize, usize); 2] = [(29, 2), (30, 3)];

/// A row of pod `pod-1` with every column filled (for tests).
#[cfg(test)]
pub(super) fn a_row() -> FocusRow<'static> {
    FocusRow {
        cost: Decimal::new(1234, 2),
        charge: Interval::new(0, 86_400),
        billing: Interval::new(0, 2_678_400),
        currency: "USD",
        description: "a description",
        consumed: Decimal::new(7, 0),
        pricing_category: "Standard",
        pricing_quantity: Decimal::new(6, 0),
        resource_id: "uid-1",
        resource_name: "pod-1",
        resource_type: "Pod",
        sku: "H100",
        sub_account: Some("team-ns"),
        tags: "{}",
        cost_center: "team",
        cost_center_source: "label",
        utilization: None,
        idle_cost: None,
        unpriced: Decimal::ONE,
        allocated_ratio: Decimal::new(25, 2),
        allocated: true,
        allocated_tags: Some("{}"),
        run: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_a_row_copies_print_the_same_cells_as_the_columns_they_copy() {
        let named = |i: usize| COLUMNS[i];
        let pairs: Vec<(&str, &str)> = REPEATS
            .iter()
            .map(|&(c, of)| (named(c), named(of)))
            .collect();
        assert_eq!(
            pairs,
            [
                ("ContractedCost", "BilledCost"),
                ("EffectiveCost", "BilledCost"),
                ("ListCost", "BilledCost"),
                ("SubAccountName", "SubAccountId"),
            ]
        );
        let row = a_row();
        let times = ["a", "b", "c", "d"].map(String::from);
        let settings = FocusSettings::default();
        let cells = row.cells(&settings, &times);
        let printed = |i: usize| {
            let mut out = Vec::new();
            cells[i].push(&mut out);
            String::from_utf8(out).expect("UTF-8")
        };
        for (column, of) in REPEATS {
            assert_eq!(printed(column), printed(of), "{}", COLUMNS[column]);
        }
        // and the row's other figures are not what they copy
        assert_ne!(printed(17), printed(5), "ConsumedQuantity");
        let fills: Vec<(&str, &str)> = FILLS.iter().map(|&(c, of)| (named(c), named(of))).collect();
        assert_eq!(
            fills,
            [
                ("ResourceId", "AllocatedResourceId"),
                ("ResourceName", "AllocatedResourceName")
            ]
        );
        for (column, of) in FILLS {
            assert_eq!(printed(column), printed(of), "{}", COLUMNS[column]);
        }
        // The unallocated rest of a node has no allocated resource, but is a resource.
        let rest = FocusRow {
            allocated: false,
            ..a_row()
        };
        let cells = rest.cells(&settings, &times);
        let printed = |i: usize| {
            let mut out = Vec::new();
            cells[i].push(&mut out);
            String::from_utf8(out).expect("UTF-8")
        };
        assert_eq!((printed(2), printed(3)), (String::new(), String::new()));
        assert_eq!((printed(29), printed(30)), ("uid-1".into(), "pod-1".into()));
    }

    #[test]
    fn a_run_of_rows_prints_its_cost_center_once_made_and_a_new_run_or_part_its_own() {
        let settings = FocusSettings::default();
        let mut out = Vec::new();
        let mut rows = CsvRows::new(&mut out, &settings).expect("a header");
        for (cost_center, run) in [("team-a", 1), ("team-a", 1), ("team-b", 2)] {
            let row = FocusRow {
                cost_center,
                run,
                ..a_row()
            };
            rows.row(&row).expect("written");
        }
        rows.end_part().expect("written");
        // Another part may number its runs as the part before did.
        let row = FocusRow {
            cost_center: "team-c",
            run: 2,
            ..a_row()
        };
        rows.row(&row).expect("written");
        rows.finish().expect("written");
        let text = String::from_utf8(out).expect("UTF-8");
        let at = COLUMNS
            .iter()
            .position(|c| *c == "x_CostCenter")
            .expect("a column");
        let printed: Vec<&str> = text
            .lines()
            .skip(1)
            // From the end: the cells after it hold no commas.
            .map(|line| {
                line.rsplit(',')
                    .nth(COLUMNS.len() - 1 - at)
                    .expect("a cell")
            })
            .collect();
        assert_eq!(printed, ["team-a", "team-a", "team-b", "team-c"]);
    }
}
