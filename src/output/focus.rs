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

/// A charge period's times and its billing period's (the calendar month), as printed.
struct PeriodTimes {
    start: String,
    end: String,
    billing_start: String,
    billing_end: String,
}

impl PeriodTimes {
    fn of(period: Interval) -> Self {
        let billing = Interval::new(
            month_start(period.start).unwrap_or(period.start),
            next_month_start(period.start).unwrap_or(period.end),
        );
        PeriodTimes {
            start: format_time(period.start),
            end: format_time(period.end),
            billing_start: format_time(billing.start),
            billing_end: format_time(billing.end),
        }
    }
}

/// Writes the FOCUS CSV of `report`, a report computed for [`focus_request`]. Lines of any
/// other grouping are skipped.
pub fn write_focus(
    report: &CostReport,
    settings: &FocusSettings,
    out: impl Write,
) -> std::io::Result<()> {
    let mut writer = FocusWriter::new(settings, out)?;
    writer.write(report)?;
    writer.finish().map(drop)
}

/// FOCUS rows written a part of the report at a time (one charge period after another), so a
/// month of a large fleet is never held at once: every part is rounded so that the rows of all
/// of them add up to the rounded totals of the whole ([`CostReport::chargeback_carried`]).
pub struct FocusWriter<'s, W: Write> {
    writer: ::csv::Writer<W>,
    settings: &'s FocusSettings,
    carried: Carried,
    /// The `Tags` JSON of each cost center, made once.
    tags: HashMap<String, String>,
}

impl<'s, W: Write> FocusWriter<'s, W> {
    /// Starts the CSV: writes the header to `out`.
    pub fn new(settings: &'s FocusSettings, out: W) -> std::io::Result<Self> {
        let mut writer = ::csv::WriterBuilder::new()
            .terminator(::csv::Terminator::CRLF)
            .from_writer(out);
        writer.write_record(COLUMNS)?;
        Ok(FocusWriter {
            writer,
            settings,
            carried: Carried::default(),
            tags: HashMap::new(),
        })
    }

    /// Writes the rows of the next part of the report.
    pub fn write(&mut self, report: &CostReport) -> std::io::Result<()> {
        let settings = self.settings;
        let chargeback = report.chargeback_carried(&mut self.carried);
        let currency = chargeback.currency.code();
        let zero = fixed(Decimal::ZERO, chargeback.currency.minor_units());
        let mut times: Option<(Interval, PeriodTimes)> = None;
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
            let cost = figures.cost.unwrap_or(zero).to_string();
            // Lines come in period order: the period's four times are formatted once.
            if times
                .as_ref()
                .is_some_and(|(period, _)| *period != line.period)
            {
                times = None;
            }
            let (_, period) =
                times.get_or_insert_with(|| (line.period, PeriodTimes::of(line.period)));
            let utilization = exact
                .figures
                .used_gpu_hours
                .filter(|_| !exact.figures.gpu_hours.is_zero())
                .map(|used| fixed(used / exact.figures.gpu_hours, 4).to_string());
            let sub_account = if resource.cost_center == UNALLOCATED {
                ""
            } else {
                resource.namespace
            };
            let tags = self
                .tags
                .entry(resource.cost_center.to_string())
                .or_insert_with(|| {
                    serde_json::json!({ "cost_center": resource.cost_center }).to_string()
                });
            let row: [&str; 39] = [
                &cost,
                &settings.billing_account_id,
                &settings.billing_account_name,
                currency,
                &period.billing_end,
                &period.billing_start,
                "Usage",
                "",
                &description,
                "Usage-Based",
                &period.end,
                &period.start,
                &figures.gpu_hours.to_string(),
                "GPU-Hours",
                &cost,
                &cost,
                &settings.provider,
                &cost,
                pricing_category(resource.tier),
                &(figures.gpu_hours - figures.unpriced_gpu_hours).to_string(),
                "GPU-Hours",
                &settings.provider,
                &settings.provider,
                resource.resource_id,
                name,
                kind,
                "Compute",
                &settings.service_name,
                "Containers",
                resource.gpu_model,
                sub_account,
                sub_account,
                tags,
                &settings.cluster,
                resource.cost_center,
                resource.source,
                utilization.as_deref().unwrap_or(""),
                &figures.idle_cost.map(|c| c.to_string()).unwrap_or_default(),
                &figures.unpriced_gpu_hours.to_string(),
            ];
            let row = row.map(spreadsheet_safe);
            self.writer
                .write_record(row.iter().map(|cell| cell.as_bytes()))?;
        }
        Ok(())
    }

    /// Hands the rows written so far to the output.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }

    /// Flushes the rows and gives the output back.
    pub fn finish(self) -> std::io::Result<W> {
        self.writer
            .into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))
    }
}
