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

use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use serde::Deserialize;

use super::cells::{push_decimal, push_normalized, push_text};
use crate::allocation::UNALLOCATED;
use crate::cost::{Carried, CostLine, CostReport, Figures, GroupBy, LineFilter, ReportRequest};
use crate::money::fixed;
use crate::prefetch::AHEAD;
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

/// `AllocatedMethodId`: a node's GPU capacity for a charge period, split over the pods and DRA
/// claims that held its GPUs by GPU-hours held, the rest to the node's unallocated row.
pub const ALLOCATED_METHOD: &str = "tollgate-gpu-hours";

/// Places `AllocatedRatio` is given to; the ratios of one origin charge add up to exactly 1.
const RATIO_PLACES: u32 = 10;

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

/// `AllocatedMethodDetails` around its two numbers: the row's `AllocatedRatio`, then its
/// GPU-hours.
const DETAILS: [&str; 3] = [
    "{\"Elements\":[{\"AllocatedRatio\":",
    ",\"UsageUnit\":\"GPU-Hours\",\"UsageQuantity\":",
    "}]}",
];

/// [`DETAILS`] as a CSV cell: quoted, its quotes doubled.
const DETAILS_QUOTED: [&str; 3] = [
    "\"{\"\"Elements\"\":[{\"\"AllocatedRatio\"\":",
    ",\"\"UsageUnit\"\":\"\"GPU-Hours\"\",\"\"UsageQuantity\"\":",
    "}]}\"",
];

/// Appends the `AllocatedMethodDetails` JSON of a row with this ratio and GPU-hours.
pub(super) fn allocated_details(ratio: Decimal, hours: Decimal, out: &mut Vec<u8>) {
    push_details(out, DETAILS, ratio, hours);
}

/// Appends the `AllocatedMethodDetails` of a row around `pieces`: [`DETAILS`], or
/// [`DETAILS_QUOTED`] for its CSV cell.
fn push_details(out: &mut Vec<u8>, pieces: [&str; 3], ratio: Decimal, hours: Decimal) {
    let [open, between, close] = pieces;
    out.extend_from_slice(open.as_bytes());
    push_normalized(out, ratio);
    out.extend_from_slice(between.as_bytes());
    push_decimal(out, hours);
    out.extend_from_slice(close.as_bytes());
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
    /// `AllocatedTags`: the workload's cost center and namespace, JSON.
    pub allocated_tags: &'a str,
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
        [
            Cell::Details(self.allocated_ratio, self.consumed),
            Fixed(ALLOCATED_METHOD),
            Text(self.resource_id),
            Text(self.resource_name),
            InRun(self.allocated_tags),
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

/// FOCUS rows as RFC 4180 CSV, written straight into a buffer that goes out a part at a time
/// (or when it grows past [`CsvRows::CHUNK`]).
pub struct CsvRows<W: Write> {
    out: W,
    /// The version written and the names it gives the platform.
    settings: FocusSettings,
    buffer: Vec<u8>,
    /// Where each column of the version written is among [`COLUMNS`].
    picked: Vec<usize>,
    /// A row's pieces, made at the first row of each charge period: the cells the same in
    /// every row of the period already printed (with their commas), and where the others go.
    plan: Vec<Piece>,
    /// The last charge period's four times, printed once.
    times: Option<(Interval, [String; 4])>,
    /// Where each cell of the row being written is in `buffer`, by column.
    spans: [(usize, usize); COLUMNS.len()],
    /// The last text of each [`Cell::Shared`] column and its printed bytes, by column.
    shared: Vec<(String, Vec<u8>)>,
    /// The run of the last row written in this part.
    run: Option<u64>,
    /// Bytes buffered before they are written out (or kept).
    chunk: usize,
    /// The buffers of a part's rows, kept whole in order until taken, where rows are not
    /// written out ([`CsvRows::part`]).
    kept: Option<(Vec<Vec<u8>>, Arc<SpareBuffers>)>,
}

/// The header line of the FOCUS version `settings` name.
pub(super) fn csv_header(settings: &FocusSettings) -> Vec<u8> {
    let mut header = Vec::new();
    for (i, column) in settings.version.columns().iter().enumerate() {
        if i > 0 {
            header.push(b',');
        }
        push_text(&mut header, column);
    }
    header.extend_from_slice(b"\r\n");
    header
}

impl CsvRows<std::io::Sink> {
    /// Rows of a part made apart from its file: no header, every byte kept until taken
    /// ([`CsvRows::take`]), in buffers of [`KEPT_CHUNK`] bytes taken from `spare`, each moved
    /// rather than copied.
    pub fn part(settings: &FocusSettings, spare: Arc<SpareBuffers>) -> Self {
        let mut rows = Self::rows(std::io::sink(), settings, KEPT_CHUNK);
        rows.buffer = spare.take();
        rows.kept = Some((Vec::new(), spare));
        rows
    }

    /// The filled buffers of the part being written, once there are `enough`: what can go out
    /// before the part ends (its last buffer, still filling, stays).
    pub fn take_filled(&mut self, enough: usize) -> Option<Vec<Vec<u8>>> {
        match &mut self.kept {
            Some((kept, _)) if kept.len() >= enough => Some(std::mem::take(kept)),
            _ => None,
        }
    }

    /// The bytes of the rows written since the last taken, in order.
    pub fn take(&mut self) -> Vec<Vec<u8>> {
        // Runs are told apart within a part only.
        self.run = None;
        match &mut self.kept {
            Some((kept, spare)) => {
                kept.push(std::mem::replace(&mut self.buffer, spare.take()));
                std::mem::take(kept)
            }
            None => vec![std::mem::take(&mut self.buffer)],
        }
    }
}

/// Bytes a part's buffer fills before another is begun: large enough that writing them costs
/// little, small enough to be handed round again (a day's rows at 10,000 GPUs are ~50 MB).
const KEPT_CHUNK: usize = 1 << 20;

/// Buffers of parts' CSV rows, given back once written out and taken again for the next part's
/// rows: the same memory goes round rather than new memory the kernel must fault in each day.
#[derive(Default)]
pub struct SpareBuffers(Mutex<Vec<Vec<u8>>>);

impl SpareBuffers {
    fn take(&self) -> Vec<u8> {
        let spare = self.0.lock().unwrap_or_else(PoisonError::into_inner).pop();
        // Room for a chunk and the row that crosses its end.
        spare.unwrap_or_else(|| Vec::with_capacity(KEPT_CHUNK + 4096))
    }

    /// Gives `buffer` back, emptied.
    pub fn give(&self, mut buffer: Vec<u8>) {
        buffer.clear();
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(buffer);
    }
}

/// A piece of a CSV row.
enum Piece {
    /// Bytes printed once for every row.
    Printed(Vec<u8>),
    /// The cell of a column (its place among [`COLUMNS`]), after a comma or not.
    Cell(usize, Comma),
    /// The cell of an earlier column of the row, which [`REPEATS`] says is the same, copied.
    Again(usize, Comma),
}

/// Whether a cell's piece begins with the comma before it (most do: a piece of its own for
/// one byte would cost more than the byte).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Comma {
    Before,
    None,
}

/// Columns whose cells are those of another column (by their places among [`COLUMNS`]):
/// `ContractedCost`, `EffectiveCost` and `ListCost` print `BilledCost`; `ResourceId` and
/// `ResourceName` the allocated ones (FOCUS 1.3); `SubAccountName` the `SubAccountId`.
/// A row prints such a cell once and copies it where the other column comes later (and Parquet
/// writes such a column from the other's pages).
pub(super) const REPEATS: [(usize, usize); 6] =
    [(19, 5), (20, 5), (23, 5), (29, 2), (30, 3), (38, 37)];

impl<W: Write> CsvRows<W> {
    /// Bytes a buffer holds before they are written out.
    const CHUNK: usize = 1 << 16;

    /// Writes the header of the version `settings` name to `out`.
    pub fn new(mut out: W, settings: &FocusSettings) -> std::io::Result<Self> {
        out.write_all(&csv_header(settings))?;
        Ok(Self::rows(out, settings, Self::CHUNK))
    }

    /// Rows without a header into `out`, written out whenever `chunk` bytes are buffered.
    fn rows(out: W, settings: &FocusSettings, chunk: usize) -> Self {
        let columns = settings.version.columns();
        let picked = columns
            .iter()
            .filter_map(|c| COLUMNS.iter().position(|all| all == c))
            .collect();
        CsvRows {
            out,
            settings: settings.clone(),
            buffer: Vec::with_capacity(chunk.min(Self::CHUNK) + 4096),
            chunk,
            picked,
            plan: Vec::new(),
            times: None,
            spans: [(0, 0); COLUMNS.len()],
            shared: vec![Default::default(); COLUMNS.len()],
            run: None,
            kept: None,
        }
    }

    /// The pieces of every row of a charge period, from the cells of one.
    fn plan(&self, cells: &[Cell<'_>]) -> Vec<Piece> {
        let mut plan = Vec::new();
        let mut printed = Vec::new();
        for (n, &i) in self.picked.iter().enumerate() {
            if n > 0 {
                printed.push(b',');
            }
            let again = REPEATS
                .iter()
                .find(|&&(column, _)| column == i)
                .map(|&(_, of)| of)
                // Copied only from a cell the row itself prints, earlier.
                .filter(|&of| {
                    self.picked[..n].contains(&of) && !matches!(cells[of], Cell::Fixed(_))
                });
            if let Cell::Fixed(text) = cells[i] {
                push_text(&mut printed, text);
            } else {
                // The comma just printed goes with the cell instead.
                let comma = printed
                    .pop_if(|last| *last == b',')
                    .map_or(Comma::None, |_| Comma::Before);
                if !printed.is_empty() {
                    plan.push(Piece::Printed(std::mem::take(&mut printed)));
                }
                plan.push(match again {
                    Some(of) => Piece::Again(of, comma),
                    None => Piece::Cell(i, comma),
                });
            }
        }
        printed.extend_from_slice(b"\r\n");
        plan.push(Piece::Printed(printed));
        plan
    }

    fn write_out(&mut self) -> std::io::Result<()> {
        self.out.write_all(&self.buffer)?;
        self.buffer.clear();
        // Runs are told apart within a part only.
        self.run = None;
        self.out.flush()
    }
}

impl<W: Write> FocusSink for CsvRows<W> {
    fn row(&mut self, row: &FocusRow<'_>) -> std::io::Result<()> {
        if self.times.as_ref().is_none_or(|(p, _)| *p != row.charge) {
            let times = [
                row.charge.start,
                row.charge.end,
                row.billing.start,
                row.billing.end,
            ];
            self.times = Some((row.charge, times.map(format_time)));
            // The times are printed into the plan.
            self.plan.clear();
        }
        let times = self
            .times
            .as_ref()
            .map(|(_, t)| t)
            .unwrap_or_else(|| unreachable!("set above"));
        let cells = row.cells(&self.settings, times);
        if self.plan.is_empty() {
            self.plan = self.plan(&cells);
        }
        let same_run = self.run == Some(row.run);
        self.run = Some(row.run);
        for piece in &self.plan {
            match piece {
                Piece::Printed(bytes) => self.buffer.extend_from_slice(bytes),
                Piece::Cell(i, comma) => {
                    if *comma == Comma::Before {
                        self.buffer.push(b',');
                    }
                    let start = self.buffer.len();
                    match cells[*i] {
                        Cell::InRun(_) if same_run => {
                            self.buffer.extend_from_slice(&self.shared[*i].1);
                        }
                        Cell::Shared(text) | Cell::InRun(text) => {
                            let (last, printed) = &mut self.shared[*i];
                            if last != text {
                                last.clear();
                                last.push_str(text);
                                printed.clear();
                                push_text(printed, text);
                            }
                            self.buffer.extend_from_slice(printed);
                        }
                        cell => cell.push(&mut self.buffer),
                    }
                    self.spans[*i] = (start, self.buffer.len());
                }
                Piece::Again(of, comma) => {
                    if *comma == Comma::Before {
                        self.buffer.push(b',');
                    }
                    let (start, end) = self.spans[*of];
                    self.buffer.extend_from_within(start..end);
                }
            }
        }
        if self.buffer.len() >= self.chunk {
            match &mut self.kept {
                Some((kept, spare)) => kept.push(std::mem::replace(&mut self.buffer, spare.take())),
                None => {
                    self.out.write_all(&self.buffer)?;
                    self.buffer.clear();
                }
            }
        }
        Ok(())
    }

    fn end_part(&mut self) -> std::io::Result<()> {
        self.write_out()
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.write_out()
    }
}

/// Writes the FOCUS CSV of `report`, a report computed for [`focus_request`]. Lines of any
/// other grouping are skipped.
pub fn write_focus(
    report: &CostReport,
    settings: &FocusSettings,
    out: impl Write,
) -> std::io::Result<()> {
    let mut writer = FocusWriter::new(CsvRows::new(out, settings)?, LineFilter::default());
    writer.write(report)?;
    writer.finish()
}

/// FOCUS rows written a part of the report at a time (one charge period after another), so a
/// month of a large fleet is never held at once: every part is rounded so that the rows of all
/// of them add up to the rounded totals of the whole ([`CostReport::chargeback_carried`]).
pub struct FocusWriter<S> {
    sink: S,
    carried: Carried,
    /// The `Tags` JSON of each cost center, made once.
    tags: TagTexts,
    /// The `AllocatedTags` JSON of each cost center and namespace, made once.
    allocated_tags: TagTexts,
    /// The rows written: those of a cost center or namespace, or all.
    only: LineFilter,
    /// Runs of rows of one cost center and namespace begun so far ([`FocusRow::run`]).
    runs: u64,
}

impl<S> FocusWriter<S> {
    /// Rows into `sink` ([`CsvRows`] or [`ParquetRows`](super::ParquetRows), which name the
    /// platform as their settings say), those `only` keeps (each is the row of the whole
    /// export).
    pub fn new(sink: S, only: LineFilter) -> Self {
        FocusWriter {
            only,
            sink,
            carried: Carried::default(),
            tags: TagTexts::default(),
            allocated_tags: TagTexts::default(),
            runs: 0,
        }
    }
}

impl<S> FocusWriter<S> {
    /// Carries on from parts printed before, elsewhere ([`Carried::after`]): the rows of
    /// these parts and those add up to the rounded totals of all of them.
    pub fn carrying_on(mut self, carried: Carried) -> Self {
        self.carried = carried;
        self
    }

    /// What the parts written so far add up to.
    pub fn carried(&self) -> Carried {
        self.carried
    }

    /// The next part written carries on from `carried` ([`FocusWriter::carrying_on`]).
    pub(super) fn carry_on(&mut self, carried: Carried) {
        self.carried = carried;
    }

    /// Where the rows go.
    pub(super) fn sink(&mut self) -> &mut S {
        &mut self.sink
    }
}

impl<S: FocusSink> FocusWriter<S> {
    /// Ends the output.
    pub fn finish(mut self) -> std::io::Result<()> {
        self.sink.finish()
    }

    /// Writes the rows of the next part of the report.
    pub fn write(&mut self, report: &CostReport) -> std::io::Result<()> {
        self.write_watching(report, |_| Ok(()))
    }

    /// [`FocusWriter::write`], handing the sink to `watch` after each row.
    pub(super) fn write_watching(
        &mut self,
        report: &CostReport,
        mut watch: impl FnMut(&mut S) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let rounded = report.rounded(&mut self.carried).lines;
        let currency = report.currency.code();
        let zero = fixed(Decimal::ZERO, report.currency.minor_units());
        let lines = &report.lines;
        let resources: Vec<Option<Resource<'_>>> = (0..lines.len())
            .map(|n| {
                // The names of lines in print order lie all over the report's: those a few
                // lines ahead are loaded meanwhile.
                if let Some(ahead) = lines.get(n + 2 * AHEAD) {
                    ahead.group.warm(false);
                }
                if let Some(ahead) = lines.get(n + AHEAD) {
                    ahead.group.warm(true);
                }
                Resource::of(&lines[n])
            })
            .collect();
        let ratios = allocated_ratios(&report.lines, &resources, &rounded);
        let keys = report.request.group_by.keys();
        let mut description = String::new();
        let mut billing = (Interval::new(0, 0), Interval::new(0, 0));
        // Rows come sorted by cost center and namespace: a run of rows of one pair looks its
        // tags up once, knowing the pair by where its names lie in this report (the same
        // place is the same text; a pair elsewhere is looked up by text).
        let mut run: Option<(&str, &str)> = None;
        let (mut tags, mut allocated_tags) = ("", "");
        for (((exact, resource), figures), ratio) in report
            .lines
            .iter()
            .zip(&resources)
            .zip(&rounded)
            .zip(ratios)
        {
            let Some(resource) = resource else {
                continue;
            };
            if !self.only.keeps_all() && !self.only.keeps(keys, exact.group.iter()) {
                continue;
            }
            let (name, kind) = resource.describe(&mut description);
            if !figures.unpriced_gpu_hours.is_zero() {
                let _ = write!(
                    description,
                    "; {} GPU-hours have no price in the rate card and cost nothing here",
                    figures.unpriced_gpu_hours
                );
            }
            let utilization = exact
                .figures
                .used_gpu_hours
                .filter(|_| !exact.figures.gpu_hours.is_zero())
                .map(|used| fixed(used / exact.figures.gpu_hours, 4));
            if billing.0 != exact.period {
                billing = (exact.period, billing_period(exact.period));
            }
            let (cost_center, namespace) = (resource.cost_center, resource.namespace);
            if !run.is_some_and(|(cc, ns)| {
                std::ptr::eq(cc, cost_center) && std::ptr::eq(ns, namespace)
            }) {
                tags = self.tags.of(cost_center, None);
                allocated_tags = self.allocated_tags.of(cost_center, Some(namespace));
                run = Some((cost_center, namespace));
                self.runs += 1;
            }
            let row = FocusRow {
                cost: figures.cost.unwrap_or(zero),
                charge: exact.period,
                billing: billing.1,
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
                allocated_ratio: ratio,
                allocated_tags,
                run: self.runs,
            };
            self.sink.row(&row)?;
            watch(&mut self.sink)?;
        }
        self.sink.end_part()
    }
}

/// JSON tag objects made once per cost center (and namespace): `Tags` or `AllocatedTags`.
#[derive(Default)]
struct TagTexts {
    texts: FxHashMap<String, FxHashMap<String, String>>,
    /// The pair asked last and its text: rows come sorted by cost center and namespace, so
    /// most rows ask what the row before asked.
    last: Option<(String, String, String)>,
}

impl TagTexts {
    /// `{"cost_center":…}`, or with a namespace `{"cost_center":…,"namespace":…}`. Looked up
    /// by borrowed text: a row of a pair seen before allocates nothing.
    fn of(&mut self, cost_center: &str, namespace: Option<&str>) -> &str {
        let wanted = namespace.unwrap_or_default();
        let asked_last = |(cc, ns, _): &(String, String, String)| cc == cost_center && ns == wanted;
        if !self.last.as_ref().is_some_and(asked_last) {
            let text = self
                .texts
                .entry(cost_center.to_string())
                .or_default()
                .entry(wanted.to_string())
                .or_insert_with(|| {
                    match namespace {
                        Some(namespace) => serde_json::json!({
                            "cost_center": cost_center, "namespace": namespace
                        }),
                        None => serde_json::json!({ "cost_center": cost_center }),
                    }
                    .to_string()
                });
            self.last = Some((cost_center.to_string(), wanted.to_string(), text.clone()));
        }
        self.last
            .as_ref()
            .map(|(_, _, text)| text.as_str())
            .unwrap_or_else(|| unreachable!("set above"))
    }
}

/// Each line's `AllocatedRatio`: its GPU-hours (as printed) over those of every line of the same
/// origin charge (the node's capacity of one model and tier in the period), to [`RATIO_PLACES`]
/// places, the largest line taking what rounding left so that each origin's ratios add up to
/// exactly 1. Lines that are not FOCUS resources get 0.
fn allocated_ratios(
    lines: &[CostLine],
    resources: &[Option<Resource<'_>>],
    rounded: &[Figures],
) -> Vec<Decimal> {
    // Each line's origin, numbered as met; then each origin's lines side by side, in line
    // order (counted first: no list per origin).
    let mut numbers: FxHashMap<(Interval, &str, &str, &str), u32> = FxHashMap::default();
    let origins: Vec<Option<u32>> = lines
        .iter()
        .zip(resources)
        .map(|(line, resource)| {
            let r = resource.as_ref()?;
            let next = numbers.len() as u32;
            Some(
                *numbers
                    .entry((line.period, r.node, r.gpu_model, r.tier))
                    .or_insert(next),
            )
        })
        .collect();
    let mut starts = vec![0; numbers.len() + 1];
    for &origin in origins.iter().flatten() {
        starts[origin as usize + 1] += 1;
    }
    for at in 1..starts.len() {
        starts[at] += starts[at - 1];
    }
    let mut members = vec![0; starts[numbers.len()]];
    let mut next = starts.clone();
    for (i, origin) in origins.iter().enumerate() {
        if let Some(origin) = origin {
            members[next[*origin as usize]] = i;
            next[*origin as usize] += 1;
        }
    }
    let mut ratios = vec![Decimal::ZERO; lines.len()];
    for bounds in starts.windows(2) {
        let members = &members[bounds[0]..bounds[1]];
        let hours = |i: usize| rounded[i].gpu_hours;
        let total: Decimal = members.iter().map(|&i| hours(i)).sum();
        if total.is_zero() {
            let share = (Decimal::ONE / Decimal::from(members.len())).round_dp(RATIO_PLACES);
            members.iter().for_each(|&i| ratios[i] = share);
        } else {
            members
                .iter()
                .for_each(|&i| ratios[i] = ratio(hours(i), total));
        }
        let sum: Decimal = members.iter().map(|&i| ratios[i]).sum();
        if let Some(&largest) = members
            .iter()
            .max_by_key(|&&i| (hours(i), std::cmp::Reverse(i)))
        {
            ratios[largest] += Decimal::ONE - sum;
        }
    }
    ratios
}

/// `part / whole` rounded to [`RATIO_PLACES`] places, ties to even: in integers where the
/// figures fit (hours printed to a few places), else in decimals.
fn ratio(part: Decimal, whole: Decimal) -> Decimal {
    let scale = part.scale().max(whole.scale());
    let at_scale = |d: Decimal| d.mantissa().checked_mul(10i128.pow(scale - d.scale()));
    let integers = (|| {
        (whole > Decimal::ZERO).then_some(())?;
        let part = at_scale(part)?.checked_mul(10i128.pow(RATIO_PLACES))?;
        let whole = at_scale(whole)?;
        // Hours of a node's day fit 64 bits: their division is the quicker one.
        let (quotient, remainder) = match (u64::try_from(part), u64::try_from(whole)) {
            (Ok(part), Ok(whole)) => (i128::from(part / whole), i128::from(part % whole)),
            _ => (part.div_euclid(whole), part.rem_euclid(whole)),
        };
        // Ties to even: up past the midpoint, or at it when the quotient is odd.
        let up = match (2 * remainder).cmp(&whole.abs()) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Equal => quotient % 2 != 0,
            std::cmp::Ordering::Less => false,
        };
        Decimal::try_from_i128_with_scale(quotient + i128::from(up), RATIO_PLACES).ok()
    })();
    integers.unwrap_or_else(|| (part / whole).round_dp(RATIO_PLACES))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// A ratio of printed hours in integers is the decimal quotient rounded (ties to even).
        #[test]
        fn ratios_of_hours_are_their_decimal_quotients_rounded(
            part in 0i64..=100_000_000,
            whole in 1i64..=100_000_000,
            part_scale in 0u32..=4,
        ) {
            let (part, whole) = (Decimal::new(part, part_scale), Decimal::new(whole, 4));
            proptest::prop_assert_eq!(ratio(part, whole), (part / whole).round_dp(RATIO_PLACES));
        }
    }

    #[test]
    fn allocation_details_are_json_and_their_csv_cell_is_that_json_quoted() {
        let (ratio, hours) = (Decimal::new(1_324_574_299, 10), Decimal::new(254_318, 4));
        let details = |ratio, hours| {
            let mut json = Vec::new();
            allocated_details(ratio, hours, &mut json);
            String::from_utf8(json).expect("UTF-8")
        };
        assert_eq!(
            details(ratio, hours),
            r#"{"Elements":[{"AllocatedRatio":0.1324574299,"UsageUnit":"GPU-Hours","UsageQuantity":25.4318}]}"#
        );
        let mut cell = Vec::new();
        Cell::Details(ratio, hours).push(&mut cell);
        assert_eq!(
            String::from_utf8(cell).expect("UTF-8"),
            r#""{""Elements"":[{""AllocatedRatio"":0.1324574299,""UsageUnit"":""GPU-Hours"",""UsageQuantity"":25.4318}]}""#
        );
        // The quoted pieces are the JSON's as any text cell prints it, whatever the numbers.
        for (ratio, hours) in [
            (Decimal::ZERO, Decimal::new(0, 4)),
            (Decimal::new(5, 1), Decimal::new(123_456_789, 4)),
        ] {
            let (mut quoted, mut cell) = (Vec::new(), Vec::new());
            push_text(&mut quoted, &details(ratio, hours));
            Cell::Details(ratio, hours).push(&mut cell);
            assert_eq!(cell, quoted);
        }
        // A whole ratio prints without its places.
        assert_eq!(
            details(Decimal::new(10_000_000_000, 10), Decimal::new(240_000, 4)),
            r#"{"Elements":[{"AllocatedRatio":1,"UsageUnit":"GPU-Hours","UsageQuantity":24.0000}]}"#
        );
    }

    #[test]
    fn a_ratio_on_a_midpoint_goes_to_the_even_place() {
        // 1/2^11 = 0.00048828125: eleven places, the last a 5.
        let whole = Decimal::from(2048);
        assert_eq!(ratio(Decimal::ONE, whole).to_string(), "0.0004882812");
        assert_eq!(ratio(Decimal::from(3), whole).to_string(), "0.0014648438");
    }

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
                ("ResourceId", "AllocatedResourceId"),
                ("ResourceName", "AllocatedResourceName"),
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
    }

    /// A row of pod `pod-1` with every column filled.
    fn a_row() -> FocusRow<'static> {
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
            allocated_tags: "{}",
            run: 1,
        }
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
