//! Parquet output: the chargeback and the FOCUS export as typed columns — money and hours as
//! `Decimal(38, s)` (the currency's minor units, 4 places for hours), times as UTC timestamps
//! (microseconds), `Tags` as a JSON string — for warehouses (DuckDB, Athena, BigQuery, Trino)
//! that read Parquet. FOCUS rows go out a charge period at a time, one row group each, into
//! polars' Parquet writer: texts that repeat as dictionaries made as rows come; texts each row
//! has its own of, and money, hours and utilization, as PLAIN pages made as rows come
//! ([`plain`]); the rest as Arrow arrays polars encodes.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use polars::prelude::*;
use polars_arrow::array::{Array, DictionaryArray, PrimitiveArray, Utf8ViewArray, new_null_array};
use polars_arrow::datatypes::{ArrowDataType, ArrowSchema, TimeUnit as ArrowTimeUnit};
use polars_buffer::Buffer;
use polars_parquet::parquet::CowBuffer;
use polars_parquet::parquet::compression::Compression;
use polars_parquet::parquet::page::{CompressedDictPage, DataPageHeader};
use polars_parquet::parquet::schema::types::PrimitiveType;
use polars_parquet::write::{
    CompressedDataPage, CompressedPage, CompressionOptions, Descriptor, DynIter,
    DynStreamingIterator, Encoding, FileWriter, Page, ParquetType, StatisticsOptions, Version,
    WriteOptions, ZstdLevel, array_to_columns, compress, fallible_streaming_iterator,
    to_parquet_schema,
};
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;

mod plain;

use self::plain::{Plain, PlainPage, Runs};
use super::figure_columns;
use super::focus::{
    ALLOCATED_METHOD, COLUMNS, FILLS, FocusRow, FocusSettings, FocusSink, REPEATS,
    allocated_details,
};
use crate::cost::{Chargeback, Figures, HOUR_PLACES};
use crate::time::UnixSeconds;

/// The widest decimal Parquet and Arrow keep in 128 bits.
const PRECISION: usize = 38;

/// The places of `x_GpuUtilization`, a ratio.
const UTILIZATION_PLACES: u32 = 4;

fn io_error(e: PolarsError) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// `value` in units of its last place at `scale` places (rounded half to even).
fn scaled(value: Decimal, scale: u32) -> i128 {
    // Rounded figures come at their column's places already.
    if value.scale() == scale {
        return value.mantissa();
    }
    let value = value.round_dp(scale);
    value.mantissa() * 10_i128.pow(scale - value.scale())
}

/// A `Decimal(38, scale)` column of `values` (a value with more places is rounded half to even;
/// a null for `None`).
pub fn decimal_column(
    name: &str,
    scale: u32,
    values: impl Iterator<Item = Option<Decimal>>,
) -> Column {
    let physical: Int128Chunked = values.map(|v| v.map(|v| scaled(v, scale))).collect();
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
        let values: Vec<&str> = lines.iter().map(|l| &l.group[i]).collect();
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

/// A text column whose values repeat (a cost center's, a namespace's, a model's): each distinct
/// text once per row group and each row's key to it, written as Parquet's dictionary encoding
/// without hashing every row's text. A row repeating the row before is found without a lookup.
#[derive(Default)]
struct Repeated {
    keys: Vec<Option<u32>>,
    texts: Vec<String>,
    known: FxHashMap<String, u32>,
    last: Option<u32>,
}

impl Repeated {
    fn push(&mut self, text: Option<&str>) {
        let key = text.map(|text| match self.last {
            Some(last) if self.texts[last as usize] == text => last,
            _ => {
                let key = match self.known.get(text) {
                    Some(&key) => key,
                    None => {
                        let key = self.texts.len() as u32;
                        self.texts.push(text.to_owned());
                        self.known.insert(text.to_owned(), key);
                        key
                    }
                };
                self.last = Some(key);
                key
            }
        });
        self.keys.push(key);
    }

    /// Pushes `text`, known to be the row before's when `again` (a text the same throughout a
    /// run of rows, [`FocusRow::run`]): then not compared.
    fn push_again(&mut self, text: Option<&str>, again: bool) {
        match self.keys.last() {
            Some(&key) if again => self.keys.push(key),
            _ => self.push(text),
        }
    }

    fn array(self) -> PolarsResult<Box<dyn Array>> {
        dictionary(PrimitiveArray::from(self.keys), &self.texts)
    }
}

/// A dictionary-encoded text column: `keys` into `texts`.
fn dictionary(
    keys: PrimitiveArray<u32>,
    texts: &[impl AsRef<str>],
) -> PolarsResult<Box<dyn Array>> {
    let texts = Utf8ViewArray::from_slice_values(texts).boxed();
    Ok(DictionaryArray::try_from_keys(keys, texts, false)?.boxed())
}

/// A column of `rows` rows that all hold `text`.
fn constant(text: &str, rows: usize) -> PolarsResult<Box<dyn Array>> {
    dictionary(PrimitiveArray::from_vec(vec![0; rows]), &[text])
}

/// UTC timestamps (microseconds) of Unix seconds.
fn times(values: impl Iterator<Item = UnixSeconds>) -> Box<dyn Array> {
    let micros: Vec<i64> = values.map(|s| s * 1_000_000).collect();
    let utc = Some(TimeZone::UTC.to_string().into());
    PrimitiveArray::from_vec(micros)
        .to(ArrowDataType::Timestamp(ArrowTimeUnit::Microsecond, utc))
        .boxed()
}

/// The rows of one charge period, column by column.
#[derive(Default)]
struct Batch {
    rows: usize,
    /// The run of the last row pushed ([`FocusRow::run`]).
    run: Option<u64>,
    /// The places of money: the currency's minor units.
    money: u32,
    cost: Plain,
    charge: Vec<(UnixSeconds, UnixSeconds)>,
    billing: Vec<(UnixSeconds, UnixSeconds)>,
    currency: Repeated,
    description: Plain,
    consumed: Plain,
    pricing_category: Repeated,
    pricing_quantity: Plain,
    /// `ResourceId`/`Name`, in pages of allocated rows and of unallocated ones:
    /// `AllocatedResourceId`/`Name` write the same pages where rows are allocated ([`FILLS`]).
    resource_id: Runs,
    resource_name: Runs,
    resource_type: Repeated,
    sku: Repeated,
    sub_account: Repeated,
    tags: Repeated,
    cost_center: Repeated,
    cost_center_source: Repeated,
    utilization: Plain,
    idle_cost: Plain,
    unpriced: Plain,
    allocated_details: Plain,
    allocated_tags: Repeated,
}

/// A column's values: an Arrow array polars encodes, or PLAIN pages made as rows came (in the
/// batch's room).
enum Values<'b> {
    Array(Box<dyn Array>),
    Page(PlainPage<'b>),
    /// A page per run of allocated rows and of unallocated ones, with which it is.
    Runs(Vec<(bool, PlainPage<'b>)>),
    /// On allocated rows the values of the column [`FILLS`] pairs with this one, null on the
    /// others: its pages are that column's runs', or nulls.
    Filled,
}

impl Batch {
    fn new(money: u32) -> Self {
        Batch {
            money,
            ..Batch::default()
        }
    }

    /// Empties the batch for the next charge period, keeping the room of its pages and of its
    /// times and figures: one day's rows are about another's, so an export's pages are neither
    /// copied as they grow nor taken from the system again each day.
    fn clear(&mut self) {
        fn emptied<T: Default>(values: &mut T, clear: fn(&mut T)) -> T {
            let mut values = std::mem::take(values);
            clear(&mut values);
            values
        }
        *self = Batch {
            money: self.money,
            cost: emptied(&mut self.cost, Plain::clear),
            charge: emptied(&mut self.charge, Vec::clear),
            billing: emptied(&mut self.billing, Vec::clear),
            description: emptied(&mut self.description, Plain::clear),
            consumed: emptied(&mut self.consumed, Plain::clear),
            pricing_quantity: emptied(&mut self.pricing_quantity, Plain::clear),
            resource_id: emptied(&mut self.resource_id, Runs::clear),
            resource_name: emptied(&mut self.resource_name, Runs::clear),
            utilization: emptied(&mut self.utilization, Plain::clear),
            idle_cost: emptied(&mut self.idle_cost, Plain::clear),
            unpriced: emptied(&mut self.unpriced, Plain::clear),
            allocated_details: emptied(&mut self.allocated_details, Plain::clear),
            ..Batch::default()
        };
    }

    fn push(&mut self, row: &FocusRow<'_>) {
        self.rows += 1;
        let same_run = self.run == Some(row.run);
        self.run = Some(row.run);
        self.cost.push_decimal(scaled(row.cost, self.money));
        self.charge.push((row.charge.start, row.charge.end));
        self.billing.push((row.billing.start, row.billing.end));
        self.currency.push(Some(row.currency));
        self.description.push_text(row.description);
        self.consumed
            .push_decimal(scaled(row.consumed, HOUR_PLACES));
        self.pricing_category.push(Some(row.pricing_category));
        self.pricing_quantity
            .push_decimal(scaled(row.pricing_quantity, HOUR_PLACES));
        self.resource_id.push_text(row.resource_id, row.allocated);
        self.resource_name
            .push_text(row.resource_name, row.allocated);
        self.resource_type.push(Some(row.resource_type));
        self.sku.push(Some(row.sku));
        self.sub_account.push_again(row.sub_account, same_run);
        self.tags.push_again(Some(row.tags), same_run);
        self.cost_center.push_again(Some(row.cost_center), same_run);
        self.cost_center_source.push(Some(row.cost_center_source));
        self.utilization
            .push_optional_decimal(row.utilization.map(|v| scaled(v, UTILIZATION_PLACES)));
        self.idle_cost
            .push_optional_decimal(row.idle_cost.map(|v| scaled(v, self.money)));
        self.unpriced
            .push_decimal(scaled(row.unpriced, HOUR_PLACES));
        self.allocated_details.push_text_with(|out| {
            allocated_details(row.allocated_ratio, row.consumed, out);
        });
        self.allocated_tags.push_again(row.allocated_tags, same_run);
    }

    /// Every column of [`COLUMNS`], in order; a column [`REPEATS`] says holds another's values
    /// is `None`, its values at the other's place. Pages made as rows came are read where they
    /// were made (until [`Batch::clear`]); the repeated texts are taken.
    fn columns(&mut self, settings: &FocusSettings) -> PolarsResult<Vec<Option<Values<'_>>>> {
        fn page(values: &mut Plain) -> PolarsResult<Option<Values<'_>>> {
            Ok(Some(Values::Page(values.page()?)))
        }
        fn runs(values: &mut Runs) -> PolarsResult<Option<Values<'_>>> {
            Ok(Some(Values::Runs(values.pages()?)))
        }
        let array = |array: Box<dyn Array>| Some(Values::Array(array));
        let repeated = |values: &mut Repeated| std::mem::take(values).array().map(array);
        let n = self.rows;
        let host = settings
            .host_provider
            .as_deref()
            .unwrap_or(&settings.provider);
        Ok(vec![
            page(&mut self.allocated_details)?,
            array(constant(ALLOCATED_METHOD, n)?),
            Some(Values::Filled),
            Some(Values::Filled),
            repeated(&mut self.allocated_tags)?,
            page(&mut self.cost)?,
            array(constant(&settings.billing_account_id, n)?),
            array(constant(&settings.billing_account_name, n)?),
            repeated(&mut self.currency)?,
            array(times(self.billing.iter().map(|b| b.1))),
            array(times(self.billing.iter().map(|b| b.0))),
            array(constant("Usage", n)?),
            array(new_null_array(ArrowDataType::Utf8View, n)),
            page(&mut self.description)?,
            array(constant("Usage-Based", n)?),
            array(times(self.charge.iter().map(|c| c.1))),
            array(times(self.charge.iter().map(|c| c.0))),
            page(&mut self.consumed)?,
            array(constant("GPU-Hours", n)?),
            None,
            None,
            array(constant(host, n)?),
            array(constant(&settings.provider, n)?),
            None,
            repeated(&mut self.pricing_category)?,
            page(&mut self.pricing_quantity)?,
            array(constant("GPU-Hours", n)?),
            array(constant(&settings.provider, n)?),
            array(constant(&settings.provider, n)?),
            runs(&mut self.resource_id)?,
            runs(&mut self.resource_name)?,
            repeated(&mut self.resource_type)?,
            array(constant("Compute", n)?),
            array(constant(&settings.service_name, n)?),
            array(constant(&settings.provider, n)?),
            array(constant("Containers", n)?),
            repeated(&mut self.sku)?,
            repeated(&mut self.sub_account)?,
            None,
            repeated(&mut self.tags)?,
            array(constant(settings.cluster_name(), n)?),
            repeated(&mut self.cost_center)?,
            repeated(&mut self.cost_center_source)?,
            page(&mut self.utilization)?,
            page(&mut self.idle_cost)?,
            page(&mut self.unpriced)?,
        ])
    }
}

/// The type of each column of [`COLUMNS`], in order.
fn column_types(money: u32) -> impl Iterator<Item = DataType> {
    let decimal = |scale: u32| DataType::Decimal(PRECISION, scale as usize);
    let time = DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC));
    COLUMNS.iter().map(move |&name| match name {
        "BilledCost" | "ContractedCost" | "EffectiveCost" | "ListCost" | "x_IdleCost" => {
            decimal(money)
        }
        "ConsumedQuantity" | "PricingQuantity" | "x_UnpricedGpuHours" => decimal(HOUR_PLACES),
        "x_GpuUtilization" => decimal(UTILIZATION_PLACES),
        "BillingPeriodEnd" | "BillingPeriodStart" | "ChargePeriodEnd" | "ChargePeriodStart" => {
            time.clone()
        }
        _ => DataType::String,
    })
}

/// The columns of a FOCUS version's Parquet file: its schema and how each column is written.
struct Layout {
    schema: ArrowSchema,
    /// The version's columns, in order.
    columns: Vec<Written>,
    options: WriteOptions,
}

impl Layout {
    /// The layout of the version `settings` name, money to `money` places.
    fn new(settings: &FocusSettings, money: u32) -> std::io::Result<Self> {
        let types: Vec<DataType> = column_types(money).collect();
        let mut schema = Schema::default();
        let mut columns: Vec<Written> = Vec::new();
        for name in settings.version.columns() {
            let at = COLUMNS
                .iter()
                .position(|c| c == name)
                .ok_or_else(|| std::io::Error::other(format!("no FOCUS column {name}")))?;
            schema.insert(PlSmallStr::from_str(name), types[at].clone());
            // Texts that repeat and times are dictionary-encoded; texts nearly every row has
            // its own of (names, descriptions) are written as they are, not tried first.
            let plain = types[at] == DataType::String && PLAIN_TEXT.contains(name);
            let encoding = if plain {
                Encoding::Plain
            } else {
                Encoding::RleDictionary
            };
            // A column that holds another's values, printed earlier, is written from its
            // pages, encoded and compressed once.
            let copies = REPEATS
                .iter()
                .find(|&&(column, _)| column == at)
                .and_then(|&(_, of)| columns.iter().position(|c| c.at == of));
            columns.push(Written {
                at,
                encoding: vec![encoding],
                copies,
            });
        }
        let level = ZstdLevel::try_new(ZSTD_LEVEL).map_err(io_error)?;
        Ok(Layout {
            schema: schema.to_arrow(CompatLevel::newest()),
            columns,
            options: WriteOptions {
                statistics: StatisticsOptions::default(),
                compression: CompressionOptions::Zstd(Some(level)),
                version: Version::V1,
                data_page_size: None,
            },
        })
    }
}

/// FOCUS rows as Parquet: a row group per charge period, made by a [`ParquetPart`] and written
/// into a [`ParquetFile`] as each part ends.
pub struct ParquetRows<W: Write> {
    part: ParquetPart,
    file: ParquetFile<W>,
}

impl<W: Write> ParquetRows<W> {
    /// Starts a Parquet file on `out`, money to `money` places (the currency's minor units).
    pub fn new(out: W, settings: &FocusSettings, money: u32) -> std::io::Result<Self> {
        Ok(ParquetRows {
            part: ParquetPart::new(settings, money)?,
            file: ParquetFile::new(out, settings, money)?,
        })
    }
}

impl<W: Write> FocusSink for ParquetRows<W> {
    fn row(&mut self, row: &FocusRow<'_>) -> std::io::Result<()> {
        self.part.row(row)
    }

    fn end_part(&mut self) -> std::io::Result<()> {
        // The columns of a part written here are encoded on every core.
        let group = self.part.take(Threads::Every)?;
        self.file.write(group)
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.end_part()?;
        self.file.end()
    }
}

/// A FOCUS Parquet file, written a row group at a time.
pub struct ParquetFile<W: Write> {
    writer: FileWriter<W>,
    /// For each of the version's columns, the earlier column whose pages it holds.
    copies: Vec<Option<usize>>,
}

impl<W: Write> ParquetFile<W> {
    /// Starts a Parquet file on `out`, money to `money` places (the currency's minor units).
    pub fn new(out: W, settings: &FocusSettings, money: u32) -> std::io::Result<Self> {
        let layout = Layout::new(settings, money)?;
        Ok(ParquetFile {
            writer: FileWriter::try_new(out, layout.schema, layout.options).map_err(io_error)?,
            copies: layout.columns.iter().map(|c| c.copies).collect(),
        })
    }

    /// Writes a part's row group (none for a part without rows).
    pub fn write(&mut self, group: RowGroup) -> std::io::Result<()> {
        if group.rows == 0 {
            return Ok(());
        }
        // Each column's pages: its own, or those of the column it copies.
        let mut pages: Vec<&[CompressedPage]> = Vec::with_capacity(self.copies.len());
        let mut own = group.pages.iter();
        for copies in &self.copies {
            let written = match copies {
                Some(of) => pages[*of],
                None => own.next().map_or(&[][..], Vec::as_slice),
            };
            pages.push(written);
        }
        let columns = DynIter::new(pages.into_iter().map(|pages| {
            let pages = fallible_streaming_iterator::convert(pages.iter().map(Ok));
            Ok(DynStreamingIterator::new(pages))
        }));
        self.writer
            .write(group.rows as u64, columns)
            .map_err(io_error)
    }

    /// Writes the footer.
    pub fn end(&mut self) -> std::io::Result<()> {
        self.writer.end(None).map(drop).map_err(io_error)
    }
}

/// A part's rows as a Parquet row group: the pages of each column the file writes that copies
/// no other, encoded and compressed.
pub struct RowGroup {
    rows: usize,
    pages: Vec<Vec<CompressedPage>>,
}

/// The threads a part's columns are encoded on.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// The one making the part (where parts are made on several at once).
    This,
    /// As many as there are cores.
    Every,
}

/// A charge period's FOCUS rows, made into a Parquet row group wherever the period was priced.
pub struct ParquetPart {
    layout: Layout,
    /// The version's columns' Parquet types, in order.
    fields: Vec<ParquetType>,
    settings: FocusSettings,
    batch: Batch,
    /// The zstd context of this thread's pages.
    zstd: zstd::bulk::Compressor<'static>,
}

impl ParquetPart {
    /// Rows of the version `settings` name, money to `money` places.
    pub fn new(settings: &FocusSettings, money: u32) -> std::io::Result<Self> {
        let layout = Layout::new(settings, money)?;
        let fields = to_parquet_schema(&layout.schema)
            .map_err(io_error)?
            .fields()
            .to_vec();
        Ok(ParquetPart {
            layout,
            fields,
            settings: settings.clone(),
            batch: Batch::new(money),
            zstd: page_compressor()?,
        })
    }

    /// The rows pushed since the last, as a row group encoded on `threads`.
    pub fn take(&mut self, threads: Threads) -> std::io::Result<RowGroup> {
        let rows = self.batch.rows;
        if rows == 0 {
            return Ok(RowGroup {
                rows,
                pages: Vec::new(),
            });
        }
        let encoded = self.encode(threads).map_err(io_error);
        self.batch.clear();
        Ok(RowGroup {
            rows,
            pages: encoded?,
        })
    }

    fn encode(&mut self, threads: Threads) -> PolarsResult<Vec<Vec<CompressedPage>>> {
        let Layout {
            columns, options, ..
        } = &self.layout;
        let mut all = self.batch.columns(&self.settings)?;
        // A column holding another's values the version does not write takes them.
        for &(column, of) in &REPEATS {
            if columns.iter().all(|c| c.at != of) {
                all[column] = all[of].take();
            }
        }
        let mut jobs: Vec<Job<'_>> = Vec::with_capacity(columns.len());
        // The job of each column of [`COLUMNS`] encoded, and the columns filled from another's
        // pages once that one's are made (with their jobs).
        let mut job_of = [None; COLUMNS.len()];
        let mut filled = Vec::new();
        for (column, field) in columns.iter().zip(&self.fields) {
            if column.copies.is_some() {
                continue;
            }
            job_of[column.at] = Some(jobs.len());
            let job = match &all[column.at] {
                Some(Values::Array(array)) => {
                    Job::Array(array.as_ref(), field, column.encoding.as_slice())
                }
                Some(Values::Page(page)) => Job::Page(page, field),
                Some(Values::Runs(runs)) => Job::Runs(runs, field),
                Some(Values::Filled) => {
                    filled.push((jobs.len(), column.at, field));
                    Job::Filled
                }
                None => polars_bail!(ComputeError: "a FOCUS column without values"),
            };
            jobs.push(job);
        }
        let mut pages = match threads {
            Threads::Every => encode_in_parallel(&jobs, *options)?,
            Threads::This => jobs
                .iter()
                .map(|job| job.pages(&mut self.zstd, *options))
                .collect::<PolarsResult<_>>()?,
        };
        for (job, at, field) in filled {
            // `ResourceId` for `AllocatedResourceId`, `ResourceName` for its name.
            let resource = FILLS
                .iter()
                .find(|&&(_, allocated)| allocated == at)
                .map(|&(resource, _)| resource);
            let (Some(resource_job), Some(Some(Values::Runs(runs)))) = (
                resource.and_then(|resource| job_of[resource]),
                resource.map(|resource| &all[resource]),
            ) else {
                polars_bail!(ComputeError: "a FOCUS column filled from no column's runs");
            };
            pages[job] = filled_pages(runs, &mut pages[resource_job], field, &mut self.zstd)?;
        }
        Ok(pages)
    }
}

impl FocusSink for ParquetPart {
    fn row(&mut self, row: &FocusRow<'_>) -> std::io::Result<()> {
        self.batch.push(row);
        Ok(())
    }

    /// A part's rows are taken whole ([`ParquetPart::take`]).
    fn end_part(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One of the columns a FOCUS version writes.
struct Written {
    /// Its place among [`COLUMNS`].
    at: usize,
    encoding: Vec<Encoding>,
    /// The place among the version's columns of the earlier column whose values it holds.
    copies: Option<usize>,
}

/// The zstd level of FOCUS pages: polars' default level took a fifth of a month's export at
/// 10,000 GPUs; level 1 writes a file ~1.5× as large (Snappy: 3×) in a fraction of the time.
const ZSTD_LEVEL: i32 = 1;

/// How far zstd's fast strategy steps between the places it looks for a match (its
/// `targetLength`; 1 at level 1). The pod UIDs and JSON of FOCUS rows have few matches to
/// miss: stepping by 2 takes ~13 % fewer instructions to compress them, for a file within 1 %
/// of the size (stepping by 4: ~18 % fewer, a file ~7 % larger).
const ZSTD_STEP: u32 = 2;

/// A zstd context for FOCUS pages: [`ZSTD_LEVEL`], stepping by [`ZSTD_STEP`], literals still
/// Huffman-coded (zstd stops coding them when the fast strategy steps further than 1 unless
/// told to; pod UIDs, hex digits, then take twice the room).
fn page_compressor() -> std::io::Result<zstd::bulk::Compressor<'static>> {
    use zstd::zstd_safe::{CParameter, ParamSwitch};
    let mut zstd = zstd::bulk::Compressor::new(ZSTD_LEVEL)?;
    zstd.set_parameter(CParameter::TargetLength(ZSTD_STEP))?;
    zstd.set_parameter(CParameter::LiteralCompressionMode(ParamSwitch::Enable))?;
    Ok(zstd)
}

/// `page` compressed with `zstd` ([`page_compressor`]), a context a thread reuses for every page
/// (polars' `compress`, used for what this does not handle, makes and clears one a page).
fn compressed(
    page: Page,
    zstd: &mut zstd::bulk::Compressor<'_>,
    options: WriteOptions,
) -> PolarsResult<CompressedPage> {
    Ok(match page {
        Page::Data(page) if matches!(page.header(), DataPageHeader::V1(_)) => {
            let size = page.buffer().len();
            let buffer = CowBuffer::Owned(zstd.compress(page.buffer())?);
            let rows = page.num_rows().ok_or_else(
                || polars_err!(ComputeError: "a Parquet data page without its row count"),
            )?;
            CompressedPage::Data(CompressedDataPage::new(
                page.header().clone(),
                buffer,
                Compression::Zstd,
                size,
                page.descriptor,
                rows,
            ))
        }
        Page::Dict(page) => CompressedPage::Dict(CompressedDictPage::new(
            CowBuffer::Owned(zstd.compress(&page.buffer)?),
            Compression::Zstd,
            page.buffer.len(),
            page.num_values,
            page.is_sorted,
        )),
        page => compress(page, Vec::new(), options.compression)?,
    })
}

/// A column to encode and compress, with its Parquet type.
enum Job<'a> {
    /// Values polars encodes, in the encoding given.
    Array(&'a dyn Array, &'a ParquetType, &'a [Encoding]),
    /// A PLAIN page made as rows came.
    Page(&'a PlainPage<'a>, &'a ParquetType),
    /// PLAIN pages of runs of allocated rows and of unallocated ones, each compressed into
    /// bytes a column filled from them can share.
    Runs(&'a [(bool, PlainPage<'a>)], &'a ParquetType),
    /// A column filled from another's pages once they are made ([`filled_pages`]).
    Filled,
}

impl Job<'_> {
    /// The column's pages, compressed.
    fn pages(
        &self,
        zstd: &mut zstd::bulk::Compressor<'_>,
        options: WriteOptions,
    ) -> PolarsResult<Vec<CompressedPage>> {
        match *self {
            Job::Array(array, type_, encoding) => {
                let mut pages = Vec::new();
                for column in array_to_columns(array, type_.clone(), options, encoding)? {
                    for page in column {
                        pages.push(compressed(page?, zstd, options)?);
                    }
                }
                Ok(pages)
            }
            Job::Page(page, type_) => {
                let compressed = CowBuffer::Owned(zstd.compress(page.bytes())?);
                Ok(vec![plain_page(page, compressed, type_)?])
            }
            Job::Runs(runs, type_) => runs
                .iter()
                .map(|(_, page)| {
                    let compressed = Buffer::from(zstd.compress(page.bytes())?);
                    plain_page(page, CowBuffer::Borrowed(compressed), type_)
                })
                .collect(),
            Job::Filled => Ok(Vec::new()),
        }
    }
}

/// The column of Parquet type `type_` a FOCUS column is written as.
fn primitive(type_: &ParquetType) -> PolarsResult<&PrimitiveType> {
    match type_ {
        ParquetType::PrimitiveType(primitive_type) => Ok(primitive_type),
        ParquetType::GroupType { .. } => {
            polars_bail!(ComputeError: "a FOCUS column of a group type")
        }
    }
}

/// `page`, its bytes `compressed`, as a page of a column of type `type_`.
fn plain_page(
    page: &PlainPage<'_>,
    compressed: CowBuffer,
    type_: &ParquetType,
) -> PolarsResult<CompressedPage> {
    Ok(CompressedPage::Data(CompressedDataPage::new(
        page.header(primitive(type_)?),
        compressed,
        Compression::Zstd,
        page.bytes().len(),
        descriptor(type_)?,
        page.rows(),
    )))
}

/// How a page of a column of type `type_` (optional, not repeated) is described.
fn descriptor(type_: &ParquetType) -> PolarsResult<Descriptor> {
    Ok(Descriptor {
        primitive_type: primitive(type_)?.clone(),
        max_def_level: 1,
        max_rep_level: 0,
    })
}

/// The pages of a column of type `type_` that holds the values of the column whose `runs` made
/// `pages` ([`Job::Runs`]) on allocated rows and nulls on the others: the same compressed bytes
/// where a run is allocated, a page of nulls (compressed with `zstd`) where it is not.
fn filled_pages(
    runs: &[(bool, PlainPage<'_>)],
    pages: &mut [CompressedPage],
    type_: &ParquetType,
    zstd: &mut zstd::bulk::Compressor<'_>,
) -> PolarsResult<Vec<CompressedPage>> {
    // A page per run ([`Job::Runs`]): a column that lost one would be short of rows.
    if runs.len() != pages.len() {
        polars_bail!(ComputeError: "{} runs of FOCUS rows made {} pages", runs.len(), pages.len());
    }
    runs.iter()
        .zip(pages)
        .map(|((allocated, run), page)| {
            if !allocated {
                let mut nulls = Plain::nulls(run.rows());
                let nulls = nulls.page()?;
                let compressed = CowBuffer::Owned(zstd.compress(nulls.bytes())?);
                return plain_page(&nulls, compressed, type_);
            }
            let CompressedPage::Data(page) = page else {
                polars_bail!(ComputeError: "a run of FOCUS rows written as a dictionary");
            };
            // The bytes are shared, not copied: [`Job::Runs`] made them a `Buffer`.
            let (header, size) = (page.header().clone(), page.uncompressed_size());
            let compressed = page.slice_mut().clone();
            Ok(CompressedPage::Data(CompressedDataPage::new(
                header,
                compressed,
                Compression::Zstd,
                size,
                descriptor(type_)?,
                run.rows(),
            )))
        })
        .collect()
}

/// Each column's pages, encoded and compressed on as many threads as there are cores, each
/// taking the next column not yet taken (the writer is the longer half of an export: pricing
/// waits on it).
fn encode_in_parallel(
    jobs: &[Job<'_>],
    options: WriteOptions,
) -> PolarsResult<Vec<Vec<CompressedPage>>> {
    let next = AtomicUsize::new(0);
    let work = || -> PolarsResult<Vec<(usize, Vec<CompressedPage>)>> {
        let mut done = Vec::new();
        let mut zstd = page_compressor()?;
        loop {
            let at = next.fetch_add(1, Ordering::Relaxed);
            let Some(job) = jobs.get(at) else {
                return Ok(done);
            };
            done.push((at, job.pages(&mut zstd, options)?));
        }
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut done = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mut done = work()?;
        for helper in helpers {
            let theirs = helper
                .join()
                .unwrap_or_else(|_| panic!("a thread encoding Parquet columns panicked"))?;
            done.extend(theirs);
        }
        Ok::<_, PolarsError>(done)
    })?;
    done.sort_unstable_by_key(|(at, _)| *at);
    Ok(done.into_iter().map(|(_, pages)| pages).collect())
}

/// Text columns nearly every row has its own value of.
const PLAIN_TEXT: [&str; 7] = [
    "AllocatedMethodDetails",
    "AllocatedResourceId",
    "AllocatedResourceName",
    "ChargeClass",
    "ChargeDescription",
    "ResourceId",
    "ResourceName",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocated_resources_read_back_on_allocated_rows_only_and_share_their_pages() {
        let settings = FocusSettings::default();
        let mut out = Vec::new();
        let mut rows = ParquetRows::new(&mut out, &settings, 2).unwrap();
        // A node's unallocated rest, two pods, then another node's rest: three runs.
        for (resource_id, resource_name, allocated) in [
            ("node-1", "node-1", false),
            ("uid-2", "pod-2", true),
            ("uid-3", "pod-3", true),
            ("node-2", "node-2", false),
        ] {
            let row = FocusRow {
                resource_id,
                resource_name,
                allocated,
                ..super::super::focus::a_row()
            };
            rows.row(&row).unwrap();
        }
        rows.finish().unwrap();
        let frame = ParquetReader::new(std::io::Cursor::new(out))
            .finish()
            .unwrap();
        let texts = |name: &str| -> Vec<Option<String>> {
            let column = frame.column(name).unwrap().str().unwrap();
            column.iter().map(|v| v.map(str::to_owned)).collect()
        };
        let some = |v: &str| Some(v.to_owned());
        assert_eq!(
            texts("ResourceId"),
            [some("node-1"), some("uid-2"), some("uid-3"), some("node-2")]
        );
        assert_eq!(
            texts("AllocatedResourceId"),
            [None, some("uid-2"), some("uid-3"), None]
        );
        assert_eq!(texts("ResourceName")[1..3], [some("pod-2"), some("pod-3")]);
        assert_eq!(
            texts("AllocatedResourceName"),
            [None, some("pod-2"), some("pod-3"), None]
        );

        // The allocated run's page is compressed once: both columns hold the same bytes.
        let mut runs = Runs::default();
        runs.push_text("node-1", false);
        runs.push_text("uid-2", true);
        let runs = runs.pages().unwrap();
        let type_ = |name: &str| {
            ParquetType::PrimitiveType(PrimitiveType::from_physical(
                name.into(),
                polars_parquet::write::ParquetPhysicalType::ByteArray,
            ))
        };
        let (resource, allocated) = (type_("ResourceId"), type_("AllocatedResourceId"));
        let options = Layout::new(&settings, 2).unwrap().options;
        let mut zstd = page_compressor().unwrap();
        let mut pages = Job::Runs(&runs, &resource)
            .pages(&mut zstd, options)
            .unwrap();
        let mut filled = filled_pages(&runs, &mut pages, &allocated, &mut zstd).unwrap();
        let bytes = |page: &mut CompressedPage| match page {
            CompressedPage::Data(page) => (page.slice_mut().as_ptr(), page.num_values()),
            CompressedPage::Dict(_) => panic!("a data page"),
        };
        assert_ne!(bytes(&mut pages[0]).0, bytes(&mut filled[0]).0);
        assert_eq!(bytes(&mut pages[1]), bytes(&mut filled[1]));
        let CompressedPage::Data(nulls) = &filled[0] else {
            panic!("a data page")
        };
        let DataPageHeader::V1(header) = nulls.header() else {
            panic!("a V1 page")
        };
        let null_count = header.statistics.as_ref().and_then(|s| s.null_count);
        assert_eq!((header.num_values, null_count), (1, Some(1)));
    }

    #[test]
    fn repeated_texts_are_kept_once_and_each_row_keys_its_own() {
        let mut column = Repeated::default();
        for text in [
            Some("team-a"),
            Some("team-a"),
            None,
            Some("team-b"),
            Some("team-a"),
        ] {
            column.push(text);
        }
        assert_eq!(column.keys, [Some(0), Some(0), None, Some(1), Some(0)]);
        assert_eq!(column.texts, ["team-a", "team-b"]);
        let array = column.array().unwrap();
        let array = array
            .as_any()
            .downcast_ref::<DictionaryArray<u32>>()
            .unwrap();
        let values = array
            .values()
            .as_any()
            .downcast_ref::<Utf8ViewArray>()
            .unwrap();
        let texts: Vec<Option<&str>> = array
            .keys()
            .iter()
            .map(|key| key.map(|&key| values.value(key as usize)))
            .collect();
        assert_eq!(
            texts,
            [
                Some("team-a"),
                Some("team-a"),
                None,
                Some("team-b"),
                Some("team-a")
            ]
        );
    }

    #[test]
    fn a_text_pushed_again_within_a_run_takes_the_row_befores_key_and_is_compared_after_it() {
        let mut column = Repeated::default();
        column.push_again(Some("team-a"), true);
        column.push_again(Some("team-a"), true);
        column.push_again(None, false);
        column.push_again(None, true);
        column.push_again(Some("team-b"), false);
        column.push_again(Some("team-a"), false);
        assert_eq!(
            column.keys,
            [Some(0), Some(0), None, None, Some(1), Some(0)]
        );
        assert_eq!(column.texts, ["team-a", "team-b"]);
    }
}
