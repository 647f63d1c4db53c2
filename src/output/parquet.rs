//! Parquet output: the chargeback and the FOCUS export as typed columns — money and hours as
//! `Decimal(38, s)` (the currency's minor units, 4 places for hours), times as UTC timestamps
//! (microseconds), `Tags` as a JSON string — for warehouses (DuckDB, Athena, BigQuery, Trino)
//! that read Parquet. FOCUS rows go out a charge period at a time, one row group each.

use std::io::Write;

use polars::prelude::*;
use rust_decimal::Decimal;

use super::figure_columns;
use super::focus::{ALLOCATED_METHOD, COLUMNS, FocusRow, FocusSettings, FocusSink};
use crate::cost::{Chargeback, Figures, HOUR_PLACES};
use crate::time::UnixSeconds;

/// The widest decimal Parquet and Arrow keep in 128 bits.
const PRECISION: usize = 38;

fn io_error(e: PolarsError) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// A `Decimal(38, scale)` column of `values` (a value with more places is rounded half to even;
/// a null for `None`).
pub fn decimal_column(
    name: &str,
    scale: u32,
    values: impl Iterator<Item = Option<Decimal>>,
) -> Column {
    let physical: Int128Chunked = values
        .map(|v| {
            v.map(|v| {
                let v = v.round_dp(scale);
                v.mantissa() * 10_i128.pow(scale - v.scale())
            })
        })
        .collect();
    physical
        .with_name(name.into())
        .into_decimal_unchecked(PRECISION, scale as usize)
        .into_series()
        .into_column()
}

/// A UTC timestamp column (microseconds) of Unix seconds.
fn time_column(name: &str, values: impl Iterator<Item = UnixSeconds>) -> Column {
    let micros: Int64Chunked = values.map(|s| Some(s * 1_000_000)).collect();
    micros
        .with_name(name.into())
        .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
        .into_series()
        .into_column()
}

/// The chargeback as a Parquet file: the CSV's columns, typed.
pub fn write_chargeback_parquet(chargeback: &Chargeback, out: impl Write) -> std::io::Result<()> {
    let lines = &chargeback.lines;
    let mut columns = vec![
        time_column("period_start", lines.iter().map(|l| l.period.start)),
        time_column("period_end", lines.iter().map(|l| l.period.end)),
    ];
    for (i, key) in chargeback.request.group_by.keys().iter().enumerate() {
        let values: Vec<&str> = lines.iter().map(|l| l.group[i].as_str()).collect();
        columns.push(Column::new(key.as_str().into(), values));
    }
    let money = chargeback.currency.minor_units();
    for (i, (name, _)) in figure_columns(&Figures::default()).iter().enumerate() {
        let scale = if name.ends_with("hours") {
            HOUR_PLACES
        } else {
            money
        };
        let values = lines.iter().map(|l| figure_columns(&l.figures)[i].1);
        columns.push(decimal_column(name, scale, values));
    }
    let currency = vec![chargeback.currency.code(); lines.len()];
    columns.push(Column::new("currency".into(), currency));
    let mut frame = DataFrame::new(lines.len(), columns).map_err(io_error)?;
    ParquetWriter::new(out)
        .finish(&mut frame)
        .map(drop)
        .map_err(io_error)
}

/// The rows of one charge period, column by column.
#[derive(Default)]
struct Batch {
    cost: Vec<Decimal>,
    charge: Vec<(UnixSeconds, UnixSeconds)>,
    billing: Vec<(UnixSeconds, UnixSeconds)>,
    currency: Vec<String>,
    description: Vec<String>,
    consumed: Vec<Decimal>,
    pricing_category: Vec<&'static str>,
    pricing_quantity: Vec<Decimal>,
    resource_id: Vec<String>,
    resource_name: Vec<String>,
    resource_type: Vec<&'static str>,
    sku: Vec<String>,
    sub_account: Vec<Option<String>>,
    tags: Vec<String>,
    cost_center: Vec<String>,
    cost_center_source: Vec<String>,
    utilization: Vec<Option<Decimal>>,
    idle_cost: Vec<Option<Decimal>>,
    unpriced: Vec<Decimal>,
    allocated_details: Vec<String>,
    allocated_tags: Vec<String>,
}

impl Batch {
    fn push(&mut self, row: &FocusRow<'_>) {
        self.cost.push(row.cost);
        self.charge.push((row.charge.start, row.charge.end));
        self.billing.push((row.billing.start, row.billing.end));
        self.currency.push(row.currency.to_string());
        self.description.push(row.description.to_string());
        self.consumed.push(row.consumed);
        self.pricing_category.push(row.pricing_category);
        self.pricing_quantity.push(row.pricing_quantity);
        self.resource_id.push(row.resource_id.to_string());
        self.resource_name.push(row.resource_name.to_string());
        self.resource_type.push(row.resource_type);
        self.sku.push(row.sku.to_string());
        self.sub_account.push(row.sub_account.map(str::to_string));
        self.tags.push(row.tags.to_string());
        self.cost_center.push(row.cost_center.to_string());
        self.cost_center_source
            .push(row.cost_center_source.to_string());
        self.utilization.push(row.utilization);
        self.idle_cost.push(row.idle_cost);
        self.unpriced.push(row.unpriced);
        self.allocated_details
            .push(row.allocated_details.to_string());
        self.allocated_tags.push(row.allocated_tags.to_string());
    }

    /// The batch as a frame of the columns of `settings.version`, in order.
    fn frame(&self, settings: &FocusSettings, money: u32) -> PolarsResult<DataFrame> {
        let n = self.cost.len();
        let fixed = |name: &str, value: &str| Column::new(name.into(), vec![value; n]);
        let text = |name: &str, values: &[String]| Column::new(name.into(), values);
        let cost = |name: &str| decimal_column(name, money, self.cost.iter().map(|c| Some(*c)));
        let hours = |name: &str, values: &[Decimal]| {
            decimal_column(name, HOUR_PLACES, values.iter().map(|v| Some(*v)))
        };
        let host = settings
            .host_provider
            .as_deref()
            .unwrap_or(&settings.provider);
        let columns = vec![
            text("AllocatedMethodDetails", &self.allocated_details),
            fixed("AllocatedMethodId", ALLOCATED_METHOD),
            text("AllocatedResourceId", &self.resource_id),
            text("AllocatedResourceName", &self.resource_name),
            text("AllocatedTags", &self.allocated_tags),
            cost("BilledCost"),
            fixed("BillingAccountId", &settings.billing_account_id),
            fixed("BillingAccountName", &settings.billing_account_name),
            text("BillingCurrency", &self.currency),
            time_column("BillingPeriodEnd", self.billing.iter().map(|b| b.1)),
            time_column("BillingPeriodStart", self.billing.iter().map(|b| b.0)),
            fixed("ChargeCategory", "Usage"),
            Column::full_null("ChargeClass".into(), n, &DataType::String),
            text("ChargeDescription", &self.description),
            fixed("ChargeFrequency", "Usage-Based"),
            time_column("ChargePeriodEnd", self.charge.iter().map(|c| c.1)),
            time_column("ChargePeriodStart", self.charge.iter().map(|c| c.0)),
            hours("ConsumedQuantity", &self.consumed),
            fixed("ConsumedUnit", "GPU-Hours"),
            cost("ContractedCost"),
            cost("EffectiveCost"),
            fixed("HostProviderName", host),
            fixed("InvoiceIssuerName", &settings.provider),
            cost("ListCost"),
            Column::new("PricingCategory".into(), &self.pricing_category),
            hours("PricingQuantity", &self.pricing_quantity),
            fixed("PricingUnit", "GPU-Hours"),
            fixed("ProviderName", &settings.provider),
            fixed("PublisherName", &settings.provider),
            text("ResourceId", &self.resource_id),
            text("ResourceName", &self.resource_name),
            Column::new("ResourceType".into(), &self.resource_type),
            fixed("ServiceCategory", "Compute"),
            fixed("ServiceName", &settings.service_name),
            fixed("ServiceProviderName", &settings.provider),
            fixed("ServiceSubcategory", "Containers"),
            text("SkuId", &self.sku),
            Column::new("SubAccountId".into(), &self.sub_account),
            Column::new("SubAccountName".into(), &self.sub_account),
            text("Tags", &self.tags),
            fixed("x_ClusterName", settings.cluster_name()),
            text("x_CostCenter", &self.cost_center),
            text("x_CostCenterSource", &self.cost_center_source),
            decimal_column("x_GpuUtilization", 4, self.utilization.iter().copied()),
            decimal_column("x_IdleCost", money, self.idle_cost.iter().copied()),
            hours("x_UnpricedGpuHours", &self.unpriced),
        ];
        debug_assert!(columns.iter().map(|c| c.name().as_str()).eq(COLUMNS));
        DataFrame::new(n, columns)?.select(settings.version.columns().iter().copied())
    }
}

/// FOCUS rows as Parquet: a row group per charge period.
pub struct ParquetRows<W: Write> {
    writer: polars::io::parquet::write::BatchedWriter<W>,
    settings: FocusSettings,
    money: u32,
    batch: Batch,
}

impl<W: Write> ParquetRows<W> {
    /// Starts a Parquet file on `out`, money to `money` places (the currency's minor units).
    pub fn new(out: W, settings: &FocusSettings, money: u32) -> std::io::Result<Self> {
        let empty = Batch::default().frame(settings, money).map_err(io_error)?;
        let writer = ParquetWriter::new(out)
            .batched(empty.schema())
            .map_err(io_error)?;
        Ok(ParquetRows {
            writer,
            settings: settings.clone(),
            money,
            batch: Batch::default(),
        })
    }
}

impl<W: Write> FocusSink for ParquetRows<W> {
    fn row(&mut self, _settings: &FocusSettings, row: &FocusRow<'_>) -> std::io::Result<()> {
        self.batch.push(row);
        Ok(())
    }

    fn end_part(&mut self) -> std::io::Result<()> {
        if self.batch.cost.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let frame = batch.frame(&self.settings, self.money).map_err(io_error)?;
        self.writer.write_batch(&frame).map_err(io_error)
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.end_part()?;
        self.writer.finish().map(drop).map_err(io_error)
    }
}
