//! A report's lines into FOCUS rows, a part of the report (a charge period) at a time, each
//! rounded carrying on from the parts before it, each cost center and namespace from its own,
//! handed to a [`FocusSink`] (CSV or Parquet).

use std::fmt::Write as _;
use std::io::Write;

use rust_decimal::Decimal;
use rustc_hash::FxHashMap;

use super::allocated::allocated_ratios;
use super::{
    CsvRows, FocusRow, FocusSettings, FocusSink, Resource, billing_period, pricing_category,
};
use crate::allocation::UNALLOCATED;
use crate::cost::{Carries, CostReport, LineFilter};
use crate::money::fixed;
use crate::prefetch::AHEAD;
use crate::time::Interval;

/// Writes the FOCUS CSV of `report`, a report computed for
/// [`focus_request`](super::focus_request). Lines of any other grouping are skipped.
pub fn write_focus(
    report: &CostReport,
    settings: &FocusSettings,
    out: impl Write,
) -> std::io::Result<()> {
    let mut writer = FocusWriter::new(CsvRows::new(out, settings)?, LineFilter::default());
    writer.write(report)?;
    writer.finish()
}

/// FOCUS rows of a report written a part at a time (one charge period after another), so a
/// month of a large fleet is never held at once, or of a whole report (one part, the last):
/// every part is rounded so that each cost center and namespace's rows of all of them add up to
/// its chargeback line, and all rows to the rounded totals of the whole
/// ([`CostReport::rounded_in_groups`]).
pub struct FocusWriter<S> {
    sink: S,
    /// The rows written: those of a cost center or namespace, or all.
    only: LineFilter,
    /// What the parts before the next one add up to ([`FocusWriter::carry_on`]).
    next: Carries,
    /// The `Tags` JSON of each cost center, made once.
    tags: TagTexts,
    /// The `AllocatedTags` JSON of each namespace, made once.
    allocated_tags: TagTexts,
    /// Runs of rows of one cost center and namespace begun so far ([`FocusRow::run`]).
    runs: u64,
}

impl<S> FocusWriter<S> {
    /// The rows `only` keeps of the reports written into `sink` ([`CsvRows`] or
    /// [`ParquetRows`](crate::output::ParquetRows), which name the platform as their settings
    /// say): each a report on its own, or a part of one after the parts [`FocusWriter::carry_on`]
    /// names.
    pub fn new(sink: S, only: LineFilter) -> Self {
        FocusWriter {
            sink,
            only,
            next: Carries::default(),
            tags: TagTexts::new("cost_center"),
            allocated_tags: TagTexts::new("namespace"),
            runs: 0,
        }
    }

    /// The next report written is a part carrying on from `carries`, the parts before it.
    pub fn carry_on(&mut self, carries: Carries) {
        self.next = carries;
    }

    /// Where the rows go.
    pub(in crate::output) fn sink(&mut self) -> &mut S {
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
    pub(in crate::output) fn write_watching(
        &mut self,
        report: &CostReport,
        mut watch: impl FnMut(&mut S) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let rounded = report.rounded_in_groups(&self.only, &std::mem::take(&mut self.next));
        let only = Some(&self.only).filter(|only| !only.keeps_all());
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
        let (mut tags, mut allocated_tags) = ("", None);
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
            if only.is_some_and(|only| !only.keeps(keys, exact.group.iter())) {
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
                tags = self.tags.of(cost_center);
                // A workload's tags not already in `Tags`, as FOCUS 1.3 asks; none for the
                // unallocated rest of a node (whose namespace is empty).
                allocated_tags =
                    (cost_center != UNALLOCATED).then(|| self.allocated_tags.of(namespace));
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
                allocated: resource.cost_center != UNALLOCATED,
                allocated_tags,
                run: self.runs,
            };
            self.sink.row(&row)?;
            watch(&mut self.sink)?;
        }
        self.sink.end_part()
    }
}

/// JSON tag objects of one key made once per value: `Tags` (`{"cost_center":…}`) or
/// `AllocatedTags` (`{"namespace":…}`). Asked once per run of rows ([`FocusRow::run`]).
struct TagTexts {
    key: &'static str,
    texts: FxHashMap<String, String>,
}

impl TagTexts {
    fn new(key: &'static str) -> Self {
        TagTexts {
            key,
            texts: FxHashMap::default(),
        }
    }

    /// `{key: value}`, looked up by borrowed text: a value seen before allocates nothing.
    fn of(&mut self, value: &str) -> &str {
        if !self.texts.contains_key(value) {
            let text = serde_json::json!({ self.key: value }).to_string();
            self.texts.insert(value.to_owned(), text);
        }
        &self.texts[value]
    }
}
