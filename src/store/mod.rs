//! The rollup store: closed days priced once and kept as Parquet (polars), so that a month or a
//! quarter is read from disk instead of recomputed from the ledger and Prometheus.
//!
//! Three rollups per UTC day: `rollups/YYYY-MM-DD.parquet` with one row per hour and group of
//! (`cost_center`, `namespace`, `gpu_model`, `node`, `cost_center_source`, `pricing_tier`),
//! `rollups/daily/YYYY-MM-DD.parquet` with the day's sum per group (read for day, month and
//! whole-window steps: 24 times fewer rows), and `rollups/pods/YYYY-MM-DD.parquet` with the
//! day's sum per group and pod (what a report by pod over stored days reads, instead of pricing
//! their archived segments again). Rows hold the figures the cost engine computed
//! (`gpu_hours`, `used_gpu_hours`, `cost`, `idle_cost`, `unpriced_gpu_hours`) as
//! `Decimal(38, 18)` — exact sums, far below a cent. Files are written to a temporary name,
//! fsynced and renamed, the daily file last: a day counts as stored once its daily file exists,
//! so rewriting a day (backfill, re-pricing) is idempotent and a crash never leaves half of one.
//! Days rolled up before tiers and pods were kept read with an empty `pricing_tier`, and
//! reports by pod price those days from their segments.

mod plan;
mod provenance;
mod segments;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use polars::prelude::*;
use rust_decimal::Decimal;

pub use plan::{Grain, POD_KEYS, Plan, ROLLUP_KEYS, compose, rollup_requests};
pub use provenance::{Catalog, Provenance};

use crate::allocation::AllocationSet;
use crate::cost::{CostLine, CostReport, Figures, GroupKey, GroupValues, LineFilter};
use crate::time::{Interval, Step, UnixSeconds, format_time};

const DAY: i64 = 86_400;
const SCALE: u32 = 18;

/// The store could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("rollup store {}: {message}", path.display())]
pub struct StoreError {
    /// The file or directory.
    pub path: PathBuf,
    /// What failed.
    pub message: String,
}

/// Daily Parquet rollups in `<store.dir>/rollups`, read and written for one source.
#[derive(Clone, Debug)]
pub struct RollupStore {
    dir: PathBuf,
    provenance: Provenance,
}

/// No bound on the lines a [`RollupStore::read`] holds.
pub fn unbounded(_: usize) -> Result<(), StoreError> {
    Ok(())
}

fn fail(path: &Path, message: impl ToString) -> StoreError {
    StoreError {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

fn decimal_column(name: &str, values: impl Iterator<Item = Option<Decimal>>) -> Column {
    crate::output::decimal_column(name, SCALE, values)
}

impl RollupStore {
    /// The store under `dir` for `provenance`'s source, if one was ever written there.
    pub fn existing(dir: &Path, provenance: Provenance) -> Option<Self> {
        let rollups = dir.join("rollups");
        rollups.is_dir().then_some(RollupStore {
            dir: rollups,
            provenance,
        })
    }

    /// The store under `dir` (created if missing) for `provenance`'s source: it reads only
    /// that source's days and records it on every day it writes.
    pub fn open(dir: &Path, provenance: Provenance) -> Result<Self, StoreError> {
        let dir = dir.join("rollups");
        fs::create_dir_all(&dir).map_err(|e| fail(&dir, e))?;
        Ok(RollupStore { dir, provenance })
    }

    /// The source and rate card this store reads and writes for.
    pub fn provenance(&self) -> &Provenance {
        &self.provenance
    }

    fn provenance_path(&self, day: UnixSeconds) -> PathBuf {
        let date = format_time(day);
        self.dir
            .join("provenance")
            .join(format!("{}.json", &date[..10]))
    }

    fn path(&self, day: UnixSeconds) -> PathBuf {
        let date = format_time(day);
        self.dir.join(format!("{}.parquet", &date[..10]))
    }

    fn daily_path(&self, day: UnixSeconds) -> PathBuf {
        let date = format_time(day);
        self.dir
            .join("daily")
            .join(format!("{}.parquet", &date[..10]))
    }

    fn pods_path(&self, day: UnixSeconds) -> PathBuf {
        let date = format_time(day);
        self.dir
            .join("pods")
            .join(format!("{}.parquet", &date[..10]))
    }

    fn grain_path(&self, grain: Grain, day: UnixSeconds) -> PathBuf {
        match grain {
            Grain::Hourly => self.path(day),
            Grain::Daily => self.daily_path(day),
            Grain::Pods => self.pods_path(day),
        }
    }

    fn segments_path(&self, day: UnixSeconds) -> PathBuf {
        let date = format_time(day);
        self.dir
            .join("segments")
            .join(format!("{}.parquet", &date[..10]))
    }

    /// Archives the allocations and capacity of `sets` that fall in the day starting at
    /// `day`, clipped to it: what reports the rollups cannot answer are priced from. Written
    /// before the day's rollups, so a stored day always has them.
    pub fn write_segments(
        &self,
        day: UnixSeconds,
        sets: &[&AllocationSet],
    ) -> Result<(), StoreError> {
        let path = self.segments_path(day);
        let dir = self.dir.join("segments");
        fs::create_dir_all(&dir).map_err(|e| fail(&dir, e))?;
        segments::write_segments(&path, sets, Interval::new(day, day + DAY))
    }

    /// The archived records of the stored days in `days`, one set per day. Days stored
    /// without an archive (by an older Tollgate) are named in the second list.
    pub fn read_segments(
        &self,
        days: &[UnixSeconds],
    ) -> Result<(Vec<AllocationSet>, Vec<UnixSeconds>), StoreError> {
        let mut sets = Vec::with_capacity(days.len());
        let mut missing = Vec::new();
        for &day in days {
            let path = self.segments_path(day);
            if path.exists() {
                sets.push(segments::read_segments(&path)?);
            } else {
                missing.push(day);
            }
        }
        Ok((sets, missing))
    }

    /// The days (their UTC midnights) the store holds for this source.
    pub fn days(&self) -> Result<BTreeSet<UnixSeconds>, StoreError> {
        Ok(self.catalog()?.mine)
    }

    /// When a day's daily file was last written, replaced or removed (the daily directory's
    /// change time; `None` before any): what another replica's write changes too.
    pub fn changed_at(&self) -> Option<std::time::SystemTime> {
        fs::metadata(self.dir.join("daily"))
            .and_then(|m| m.modified())
            .ok()
    }

    /// Which of `days` have the rollup of `grain` (days rolled up by an older Tollgate have no
    /// pod rollup).
    pub fn days_with(&self, grain: Grain, days: &BTreeSet<UnixSeconds>) -> BTreeSet<UnixSeconds> {
        match grain {
            Grain::Hourly | Grain::Daily => days.clone(),
            Grain::Pods => days
                .iter()
                .copied()
                .filter(|&day| self.pods_path(day).exists())
                .collect(),
        }
    }

    /// Every stored day, sorted by source and rate card.
    pub fn catalog(&self) -> Result<Catalog, StoreError> {
        let mut days = Vec::new();
        for day in self.all_days()? {
            days.push((day, provenance::read(&self.provenance_path(day))?));
        }
        Ok(Catalog::of(days, &self.provenance))
    }

    /// The days whose daily file exists, whatever their source.
    fn all_days(&self) -> Result<BTreeSet<UnixSeconds>, StoreError> {
        let mut days = BTreeSet::new();
        let daily = self.dir.join("daily");
        if !daily.is_dir() {
            return Ok(days);
        }
        for entry in fs::read_dir(&daily).map_err(|e| fail(&daily, e))? {
            let name = entry.map_err(|e| fail(&daily, e))?.file_name();
            let name = name.to_string_lossy();
            if let Some(date) = name.strip_suffix(".parquet")
                && let Ok(day) = crate::time::parse_time(date)
            {
                days.insert(day);
            }
        }
        Ok(days)
    }

    /// Writes the rollups of one day: `hourly` and `pods` must come from [`rollup_requests`]
    /// for that day.
    pub fn write_day(
        &self,
        day: UnixSeconds,
        hourly: &CostReport,
        pods: &CostReport,
    ) -> Result<(), StoreError> {
        write_lines(&self.path(day), &ROLLUP_KEYS, &hourly.lines)?;
        let pods_dir = self.dir.join("pods");
        fs::create_dir_all(&pods_dir).map_err(|e| fail(&pods_dir, e))?;
        write_lines(&self.pods_path(day), &POD_KEYS, &pods.lines)?;
        let provenance_dir = self.dir.join("provenance");
        fs::create_dir_all(&provenance_dir).map_err(|e| fail(&provenance_dir, e))?;
        provenance::write(&self.provenance_path(day), &self.provenance)?;
        let mut sums: BTreeMap<&GroupValues, Figures> = BTreeMap::new();
        for line in &hourly.lines {
            sums.entry(&line.group).or_default().absorb(&line.figures);
        }
        let daily: Vec<CostLine> = sums
            .into_iter()
            .map(|(group, figures)| CostLine {
                period: Interval::new(day, day + DAY),
                group: group.clone(),
                figures,
            })
            .collect();
        let daily_dir = self.dir.join("daily");
        fs::create_dir_all(&daily_dir).map_err(|e| fail(&daily_dir, e))?;
        write_lines(&self.daily_path(day), &ROLLUP_KEYS, &daily)
    }

    /// Removes this source's days before `keep_from`.
    pub fn remove_before(&self, keep_from: UnixSeconds) -> Result<usize, StoreError> {
        let mut removed = 0;
        for day in self.days()?.into_iter().filter(|d| *d < keep_from) {
            for path in [
                self.daily_path(day),
                self.path(day),
                self.pods_path(day),
                self.segments_path(day),
                self.provenance_path(day),
            ] {
                match fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(fail(&path, e));
                    }
                    _ => {}
                }
            }
            removed += 1;
        }
        Ok(removed)
    }

    /// The cost of each (cost center, namespace) over `window` (whole stored days): the part
    /// of month-to-date spend the store holds.
    pub fn spend(&self, window: Interval) -> Result<Vec<(String, String, Decimal)>, StoreError> {
        if window.is_empty() {
            return Ok(Vec::new());
        }
        let keys = [GroupKey::CostCenter, GroupKey::Namespace];
        let lines = self.read(
            Grain::Daily,
            window,
            window,
            Step::Window,
            &keys,
            &LineFilter::default(),
            unbounded,
        )?;
        Ok(lines
            .into_iter()
            .filter_map(|line| {
                let cost = line.figures.cost?;
                let group = &line.group;
                Some((group.get(0)?.to_string(), group.get(1)?.to_string(), cost))
            })
            .collect())
    }

    /// The stored hours of `hours` (whole days the store holds), read from the rollups of
    /// `grain`, grouped by `keys` (a subset of the grain's keys) into the periods of `step`
    /// over `window`; only the lines `only` keeps. `within` is told how many lines the days
    /// read so far hold, after each day, and the read fails where it fails ([`unbounded`]
    /// never does).
    #[allow(clippy::too_many_arguments)]
    pub fn read<E: From<StoreError>>(
        &self,
        grain: Grain,
        hours: Interval,
        window: Interval,
        step: Step,
        keys: &[GroupKey],
        only: &LineFilter,
        within: impl Fn(usize) -> Result<(), E>,
    ) -> Result<Vec<CostLine>, E> {
        let days: Vec<UnixSeconds> = self
            .days()?
            .into_iter()
            .filter(|d| *d + DAY > hours.start && *d < hours.end)
            .collect();
        if days.is_empty() {
            return Ok(Vec::new());
        }
        let periods = step.periods(window);
        let period = period_expr(step, window, &periods);
        let mut by = vec![period.cast(DataType::Int64).alias("period")];
        by.extend(keys.iter().map(|k| col(k.as_str())));
        let mut aggregates: Vec<Expr> = FIGURES.iter().map(|f| col(*f).sum()).collect();
        aggregates.extend(
            FIGURES
                .iter()
                .map(|f| col(*f).count().alias(format!("{f}_known"))),
        );
        let mut wanted = col("hour")
            .gt_eq(lit(hours.start))
            .and(col("hour").lt(lit(hours.end)));
        for (key, value) in only.wanted().filter(|(key, _)| keys.contains(key)) {
            wanted = wanted.and(col(key.as_str()).eq(lit(value)));
        }
        // A day at a time, the days' lines then merged: polars summing a month of pod
        // rollups at once (1.8 million rows at 10,000 GPUs) took ~700 MB.
        let mut each_day = Vec::with_capacity(days.len());
        for day in &days {
            let path = self.grain_path(grain, *day);
            let frame = scan(&path, keys)?
                .filter(wanted.clone())
                .group_by(by.clone())
                .agg(aggregates.clone())
                .collect()
                .map_err(|e| fail(&path, e))?;
            each_day.push(lines(&frame, keys, &periods).map_err(|e| fail(&path, e))?);
            within(each_day.iter().map(Vec::len).sum())?;
        }
        // Room made once: a vector growing by doubling holds its old lines and their copy.
        let mut read = Vec::with_capacity(each_day.iter().map(Vec::len).sum());
        for day in each_day {
            read.extend(day);
        }
        plan::merge_same_lines(&mut read);
        Ok(read)
    }

    /// The unpriced GPU-hours of each model over `hours` (whole days the store holds) in the
    /// lines `only` keeps of a report grouped by `keys`: what the warning naming models without
    /// a price counts of stored days, whatever the report is grouped by.
    pub fn unpriced(
        &self,
        hours: Interval,
        keys: &[GroupKey],
        only: &LineFilter,
    ) -> Result<Vec<(String, Decimal)>, StoreError> {
        let mut by = vec![GroupKey::GpuModel];
        by.extend(
            only.wanted()
                .map(|(key, _)| key)
                .filter(|key| keys.contains(key)),
        );
        let lines = self.read(
            Grain::Daily,
            hours,
            hours,
            Step::Window,
            &by,
            only,
            unbounded,
        )?;
        Ok(lines
            .into_iter()
            .filter(|line| line.figures.unpriced_gpu_hours > Decimal::ZERO)
            .map(|line| (line.group[0].to_string(), line.figures.unpriced_gpu_hours))
            .collect())
    }
}

/// The figure columns of every rollup.
const FIGURES: [&str; 5] = [
    "gpu_hours",
    "used_gpu_hours",
    "cost",
    "idle_cost",
    "unpriced_gpu_hours",
];

/// A lazy scan of the rollup at `path`: its hours, the `keys` and the figures, in that order. A
/// rollup written before tiers were kept reads with an empty `pricing_tier`.
fn scan(path: &Path, keys: &[GroupKey]) -> Result<LazyFrame, StoreError> {
    let mut frame = LazyFrame::scan_parquet(
        PlRefPath::from(path.to_string_lossy().as_ref()),
        ScanArgsParquet::default(),
    )
    .map_err(|e| fail(path, e))?;
    let schema = frame.collect_schema().map_err(|e| fail(path, e))?;
    let mut columns = vec![col("hour")];
    columns.extend(keys.iter().map(|key| {
        let name = key.as_str();
        if *key == GroupKey::PricingTier && !schema.contains(name) {
            lit("").alias(name)
        } else {
            col(name)
        }
    }));
    columns.extend(FIGURES.iter().map(|f| col(*f)));
    Ok(frame.select(columns))
}

/// Writes `lines` (one row each, grouped by `keys`) to `path`, crash-safely.
fn write_lines(path: &Path, keys: &[GroupKey], lines: &[CostLine]) -> Result<(), StoreError> {
    let mut columns = vec![Column::new(
        "hour".into(),
        lines.iter().map(|l| l.period.start).collect::<Vec<i64>>(),
    )];
    for (i, key) in keys.iter().enumerate() {
        let values: Vec<&str> = lines.iter().map(|l| &l.group[i]).collect();
        columns.push(Column::new(key.as_str().into(), values));
    }
    let figure = |f: fn(&Figures) -> Option<Decimal>| lines.iter().map(move |l| f(&l.figures));
    columns.push(decimal_column("gpu_hours", figure(|f| Some(f.gpu_hours))));
    columns.push(decimal_column(
        "used_gpu_hours",
        figure(|f| f.used_gpu_hours),
    ));
    columns.push(decimal_column("cost", figure(|f| f.cost)));
    columns.push(decimal_column("idle_cost", figure(|f| f.idle_cost)));
    columns.push(decimal_column(
        "unpriced_gpu_hours",
        figure(|f| Some(f.unpriced_gpu_hours)),
    ));
    let frame = DataFrame::new(lines.len(), columns).map_err(|e| fail(path, e))?;
    write_frame(path, frame)
}

/// Writes `frame` to `path` as Parquet, crash-safely: a temporary file, fsynced, renamed into
/// place, the directory fsynced.
fn write_frame(path: &Path, mut frame: DataFrame) -> Result<(), StoreError> {
    let tmp = path.with_extension("parquet.tmp");
    let mut file = File::create(&tmp).map_err(|e| fail(&tmp, e))?;
    ParquetWriter::new(&mut file)
        .finish(&mut frame)
        .map_err(|e| fail(&tmp, e))?;
    file.sync_all().map_err(|e| fail(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| fail(path, e))?;
    File::open(path.parent().unwrap_or(Path::new(".")))
        .and_then(|d| d.sync_all())
        .map_err(|e| fail(path, e))
}

/// The start of the period of `step` over `window` that holds each row's hour.
fn period_expr(step: Step, window: Interval, periods: &[Interval]) -> Expr {
    let floor = |size: i64| {
        let floored = col("hour") - col("hour") % lit(size);
        when(floored.clone().lt(lit(window.start)))
            .then(lit(window.start))
            .otherwise(floored)
    };
    match step {
        Step::Window => lit(window.start),
        Step::Hour => floor(3600),
        Step::Day => floor(DAY),
        Step::Month => periods
            .iter()
            .rev()
            .fold(lit(window.start), |otherwise, p| {
                when(
                    col("hour")
                        .lt(lit(p.end))
                        .and(col("hour").gt_eq(lit(p.start))),
                )
                .then(lit(p.start))
                .otherwise(otherwise)
            }),
    }
}

/// Rows of an aggregated frame as cost lines.
fn lines(
    frame: &DataFrame,
    keys: &[GroupKey],
    periods: &[Interval],
) -> PolarsResult<Vec<CostLine>> {
    let by_start: BTreeMap<UnixSeconds, Interval> = periods.iter().map(|p| (p.start, *p)).collect();
    let period = frame.column("period")?.i64()?;
    let groups: Vec<&StringChunked> = keys
        .iter()
        .map(|k| frame.column(k.as_str())?.str())
        .collect::<PolarsResult<_>>()?;
    let decimal = |name: &str| -> PolarsResult<Vec<Option<Decimal>>> {
        let column = frame.column(name)?;
        let known = frame
            .column(&format!("{name}_known"))?
            .cast(&DataType::UInt64)?;
        let known = known.u64()?;
        let values = column.decimal()?;
        let scale = values.scale() as u32;
        Ok(values
            .physical()
            .iter()
            .zip(known.iter())
            .map(|(v, n)| match (v, n) {
                (Some(v), Some(n)) if n > 0 => Decimal::try_from_i128_with_scale(v, scale).ok(),
                _ => None,
            })
            .collect())
    };
    let gpu_hours = decimal("gpu_hours")?;
    let used = decimal("used_gpu_hours")?;
    let cost = decimal("cost")?;
    let idle = decimal("idle_cost")?;
    let unpriced = decimal("unpriced_gpu_hours")?;
    let mut out = Vec::with_capacity(frame.height());
    for i in 0..frame.height() {
        let start = period.get(i).unwrap_or_default();
        out.push(CostLine {
            period: by_start
                .get(&start)
                .copied()
                .unwrap_or(Interval::new(start, start)),
            group: groups
                .iter()
                .map(|g| g.get(i).unwrap_or_default().to_string())
                .collect(),
            figures: Figures {
                gpu_hours: gpu_hours[i].unwrap_or_default(),
                used_gpu_hours: used[i],
                cost: cost[i],
                idle_cost: idle[i],
                unpriced_gpu_hours: unpriced[i].unwrap_or_default(),
            },
        });
    }
    Ok(out)
}
