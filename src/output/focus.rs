//! The FinOps FOCUS 1.2 export (SPEC §4.2): one cost-and-usage row per billed resource (pod,
//! DRA claim, or a node's unallocated capacity) and charge period, as CSV.
//!
//! Rows come from the same engine as the chargeback, grouped by every key that tells resources
//! apart, and rounded the same way: the `BilledCost` column adds up to the chargeback's total.
//! Tollgate's rate card is both the list and the contracted price of an internal platform, so
//! `ListCost`, `ContractedCost`, `EffectiveCost` and `BilledCost` are equal.

use std::collections::HashMap;
use std::io::Write;

use rust_decimal::Decimal;
use serde::Deserialize;

use super::spreadsheet_safe;
use crate::allocation::UNALLOCATED;
use crate::cost::{Carried, CostLine, CostReport, GroupBy, ReportRequest};
use crate::money::fixed;
use crate::time::{Interval, Step, format_time, month_start, next_month_start};

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
    /// `x_ClusterName` (default `default`).
    pub cluster: String,
}

impl Default for FocusSettings {
    fn default() -> Self {
        FocusSettings {
            billing_account_id: "tollgate".into(),
            billing_account_name: "Kubernetes GPU platform".into(),
            provider: "GPU Platform".into(),
            service_name: "Kubernetes GPUs".into(),
            cluster: "default".into(),
        }
    }
}

/// The columns, FOCUS's in alphabetical order, then the `x_` extras.
pub const COLUMNS: [&str; 39] = [
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

/// The request FOCUS rows are computed from: grouped by resource, one charge period a day
/// unless another step is asked (a period never crosses a billing period: months cut too).
/// Days are what lets an export stream with one day in memory at a time.
pub fn focus_request(request: &ReportRequest) -> ReportRequest {
    ReportRequest {
        step: match request.step {
            Step::Window => Step::Day,
            step => step,
        },
        group_by: GroupBy::resources(),
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
        let [cc, ns, model, node, pod, id, claim, tier, source] = line.group.as_slice() else {
            return None;
        };
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

    /// `ResourceName`, `ResourceType` and `ChargeDescription`.
    fn describe(&self) -> (&'a str, &'static str, String) {
        let (model, node, ns) = (self.gpu_model, self.node, self.namespace);
        if self.cost_center == UNALLOCATED {
            let text = format!("Unallocated {model} capacity of node {node}");
            (node, "Node", text)
        } else if !self.claim.is_empty() {
            let text = format!(
                "{model} GPU time of DRA claim {ns}/{} (pod {ns}/{}) on node {node}",
                self.claim, self.pod
            );
            (self.claim, "ResourceClaim", text)
        } else {
            let text = format!("{model} GPU time of pod {ns}/{} on node {node}", self.pod);
            (self.pod, "Pod", text)
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
}

/// Where FOCUS rows go: CSV text ([`CsvRows`]), or Parquet row groups
/// ([`ParquetRows`](super::ParquetRows)).
pub trait FocusSink {
    /// Writes one row.
    fn row(&mut self, settings: &FocusSettings, row: &FocusRow<'_>) -> std::io::Result<()>;
    /// Ends a part of the report (a charge period): what was written so far can go out.
    fn end_part(&mut self) -> std::io::Result<()>;
    /// Ends the output (Parquet's footer) and flushes it.
    fn finish(&mut self) -> std::io::Result<()>;
}

impl<T: FocusSink + ?Sized> FocusSink for Box<T> {
    fn row(&mut self, settings: &FocusSettings, row: &FocusRow<'_>) -> std::io::Result<()> {
        (**self).row(settings, row)
    }

    fn end_part(&mut self) -> std::io::Result<()> {
        (**self).end_part()
    }

    fn finish(&mut self) -> std::io::Result<()> {
        (**self).finish()
    }
}

/// FOCUS rows as RFC 4180 CSV.
pub struct CsvRows<W: Write> {
    writer: ::csv::Writer<W>,
    /// The last charge period's four times, printed once.
    times: Option<(Interval, [String; 4])>,
}

impl<W: Write> CsvRows<W> {
    /// Writes the header to `out`.
    pub fn new(out: W) -> std::io::Result<Self> {
        let mut writer = ::csv::WriterBuilder::new()
            .terminator(::csv::Terminator::CRLF)
            .from_writer(out);
        writer.write_record(COLUMNS)?;
        Ok(CsvRows {
            writer,
            times: None,
        })
    }
}

impl<W: Write> FocusSink for CsvRows<W> {
    fn row(&mut self, settings: &FocusSettings, row: &FocusRow<'_>) -> std::io::Result<()> {
        if self.times.as_ref().is_none_or(|(p, _)| *p != row.charge) {
            let times = [
                row.charge.start,
                row.charge.end,
                row.billing.start,
                row.billing.end,
            ];
            self.times = Some((row.charge, times.map(format_time)));
        }
        let [start, end, billing_start, billing_end] = self
            .times
            .as_ref()
            .map(|(_, t)| t)
            .unwrap_or_else(|| unreachable!("set above"));
        let cost = row.cost.to_string();
        let text = |v: Option<Decimal>| v.map(|v| v.to_string()).unwrap_or_default();
        let cells: [&str; 39] = [
            &cost,
            &settings.billing_account_id,
            &settings.billing_account_name,
            row.currency,
            billing_end,
            billing_start,
            "Usage",
            "",
            row.description,
            "Usage-Based",
            end,
            start,
            &row.consumed.to_string(),
            "GPU-Hours",
            &cost,
            &cost,
            &settings.provider,
            &cost,
            row.pricing_category,
            &row.pricing_quantity.to_string(),
            "GPU-Hours",
            &settings.provider,
            &settings.provider,
            row.resource_id,
            row.resource_name,
            row.resource_type,
            "Compute",
            &settings.service_name,
            "Containers",
            row.sku,
            row.sub_account.unwrap_or_default(),
            row.sub_account.unwrap_or_default(),
            row.tags,
            &settings.cluster,
            row.cost_center,
            row.cost_center_source,
            &text(row.utilization),
            &text(row.idle_cost),
            &row.unpriced.to_string(),
        ];
        let cells = cells.map(spreadsheet_safe);
        self.writer
            .write_record(cells.iter().map(|cell| cell.as_bytes()))?;
        Ok(())
    }

    fn end_part(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}

/// Writes the FOCUS CSV of `report`, a report computed for [`focus_request`]. Lines of any
/// other grouping are skipped.
pub fn write_focus(
    report: &CostReport,
    settings: &FocusSettings,
    out: impl Write,
) -> std::io::Result<()> {
    let mut writer = FocusWriter::new(settings, CsvRows::new(out)?);
    writer.write(report)?;
    writer.finish()
}

/// FOCUS rows written a part of the report at a time (one charge period after another), so a
/// month of a large fleet is never held at once: every part is rounded so that the rows of all
/// of them add up to the rounded totals of the whole ([`CostReport::chargeback_carried`]).
pub struct FocusWriter<'s, S> {
    sink: S,
    settings: &'s FocusSettings,
    carried: Carried,
    /// The `Tags` JSON of each cost center, made once.
    tags: HashMap<String, String>,
}

impl<'s, S> FocusWriter<'s, S> {
    /// Rows named by `settings`, into `sink` ([`CsvRows`] or [`ParquetRows`](super::ParquetRows)).
    pub fn new(settings: &'s FocusSettings, sink: S) -> Self {
        FocusWriter {
            sink,
            settings,
            carried: Carried::default(),
            tags: HashMap::new(),
        }
    }
}

impl<S: FocusSink> FocusWriter<'_, S> {
    /// Ends the output.
    pub fn finish(mut self) -> std::io::Result<()> {
        self.sink.finish()
    }

    /// Writes the rows of the next part of the report.
    pub fn write(&mut self, report: &CostReport) -> std::io::Result<()> {
        let chargeback = report.chargeback_carried(&mut self.carried);
        let currency = chargeback.currency.code();
        let zero = fixed(Decimal::ZERO, chargeback.currency.minor_units());
        for (exact, line) in report.lines.iter().zip(&chargeback.lines) {
            let Some(resource) = Resource::of(line) else {
                continue;
            };
            let (name, kind, mut description) = resource.describe();
            let figures = &line.figures;
            if !figures.unpriced_gpu_hours.is_zero() {
                description.push_str(&format!(
                    "; {} GPU-hours have no price in the rate card and cost nothing here",
                    figures.unpriced_gpu_hours
                ));
            }
            let utilization = exact
                .figures
                .used_gpu_hours
                .filter(|_| !exact.figures.gpu_hours.is_zero())
                .map(|used| fixed(used / exact.figures.gpu_hours, 4));
            let tags = self
                .tags
                .entry(resource.cost_center.to_string())
                .or_insert_with(|| {
                    serde_json::json!({ "cost_center": resource.cost_center }).to_string()
                });
            let row = FocusRow {
                cost: figures.cost.unwrap_or(zero),
                charge: line.period,
                billing: billing_period(line.period),
                currency,
                description: &description,
                consumed: figures.gpu_hours,
                pricing_category: pricing_category(resource.tier),
                pricing_quantity: figures.gpu_hours - figures.unpriced_gpu_hours,
                resource_id: resource.resource_id,
                resource_name: name,
                resource_type: kind,
                sku: resource.gpu_model,
                sub_account: (resource.cost_center != UNALLOCATED).then_some(resource.namespace),
                tags,
                cost_center: resource.cost_center,
                cost_center_source: resource.source,
                utilization,
                idle_cost: figures.idle_cost,
                unpriced: figures.unpriced_gpu_hours,
            };
            self.sink.row(self.settings, &row)?;
        }
        self.sink.end_part()
    }
}
