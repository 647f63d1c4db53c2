//! `tollgate export` (SPEC §6): closed days as Hive-partitioned Parquet in a directory or an
//! S3-compatible bucket, for the query engines organisations already run over object storage
//! (DuckDB, Trino, Athena, Spark, BigQuery):
//!
//! ```text
//! DEST/focus/cluster=<name>/billing_month=YYYY-MM/day=YYYY-MM-DD.parquet      FOCUS rows
//! DEST/chargeback/cluster=<name>/billing_month=YYYY-MM/day=YYYY-MM-DD.parquet hourly rollup rows
//! ```
//!
//! Each file is written whole or not at all (a directory's through a staged file renamed into
//! place, a bucket's in one PUT), so an export that stops can be run again: days whose two files
//! are there are skipped. Every file of a billing month is rounded carrying on from the month's
//! earlier days ([`Carried::after`]), so the files of a month, from its first day to any day,
//! add up to that span's rounded chargeback to the cent, however many runs wrote them.

use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::cost::{Carries, GroupBy, GroupTotals, LineFilter, ReportRequest, Warnings};
use crate::output::{FocusSettings, FocusWriter, ParquetRows, write_chargeback_parquet};
use crate::reporting::{ReportError, Sources};
use crate::store::rollup_requests;
use crate::time::{Interval, Step, UnixSeconds, format_time, month_start};

const DAY: i64 = 86_400;

/// An export that could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The destination cannot be used.
    #[error("export destination {dest}: {message}")]
    Destination {
        /// As given.
        dest: String,
        /// What is wrong.
        message: String,
    },
    /// A day's report failed.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// A file could not be written or looked for.
    #[error("{path}: {message}")]
    Write {
        /// Where, as a URL or path.
        path: String,
        /// What failed.
        message: String,
    },
}

/// Where exports go: a directory, or `s3://bucket/prefix` (credentials, region and endpoint
/// from the usual `AWS_*` environment, a web-identity token included).
pub struct Destination {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    shown: String,
}

impl Destination {
    /// The destination `text` names: `s3://bucket[/prefix]`, else a directory (created).
    pub fn parse(text: &str) -> Result<Self, ExportError> {
        let fail = |message: String| ExportError::Destination {
            dest: text.to_string(),
            message,
        };
        let shown = text.trim_end_matches('/').to_string();
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(fail("name a bucket: s3://bucket/prefix".into()));
            }
            let store = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .map_err(|e| fail(e.to_string()))?;
            return Ok(Destination {
                store: Arc::new(store),
                prefix: ObjectPath::from(prefix.trim_matches('/')),
                shown,
            });
        }
        if text.contains("://") {
            return Err(fail(
                "use a directory or s3://bucket/prefix (an S3-compatible endpoint by AWS_ENDPOINT_URL)".into(),
            ));
        }
        std::fs::create_dir_all(text).map_err(|e| fail(e.to_string()))?;
        let store = LocalFileSystem::new_with_prefix(text).map_err(|e| fail(e.to_string()))?;
        Ok(Destination {
            store: Arc::new(store),
            prefix: ObjectPath::default(),
            shown,
        })
    }

    fn at(&self, relative: &str) -> ObjectPath {
        self.prefix
            .parts()
            .chain(ObjectPath::from(relative).parts())
            .collect()
    }

    fn failed(&self, relative: &str, e: impl std::fmt::Display) -> ExportError {
        ExportError::Write {
            path: format!("{}/{relative}", self.shown),
            message: e.to_string(),
        }
    }

    async fn has(&self, relative: &str) -> Result<bool, ExportError> {
        match self.store.head(&self.at(relative)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.failed(relative, e)),
        }
    }

    async fn put(&self, relative: &str, bytes: Vec<u8>) -> Result<(), ExportError> {
        self.store
            .put(&self.at(relative), PutPayload::from(bytes))
            .await
            .map(drop)
            .map_err(|e| self.failed(relative, e))
    }
}

/// A Hive partition value: letters, digits, `.`, `_` and `-` as they are, any other byte as
/// `%XX`.
fn partition_value(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'_' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The two files of one cluster's day, relative to the destination: FOCUS, then chargeback.
pub fn day_files(cluster: &str, day: UnixSeconds) -> [String; 2] {
    let date = &format_time(day)[..10];
    let partition = format!(
        "cluster={}/billing_month={}/day={date}.parquet",
        partition_value(cluster),
        &date[..7]
    );
    [
        format!("focus/{partition}"),
        format!("chargeback/{partition}"),
    ]
}

/// What an export did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Exported {
    /// Days written.
    pub written: usize,
    /// Days already there, skipped.
    pub skipped: usize,
    /// The warnings of the days written: each note once, unpriced hours summed over the days.
    pub warnings: Warnings,
}

/// Exports each day of `days` (UTC midnights, in order) from `sources` to `dest`, skipping days
/// already there unless `again`; calls `done` after each.
pub async fn export_days(
    sources: &Sources<'_>,
    dest: &Destination,
    focus: &FocusSettings,
    days: &[UnixSeconds],
    again: bool,
    mut done: impl FnMut(UnixSeconds),
) -> Result<Exported, ExportError> {
    let mut exported = Exported::default();
    // The exact totals of the month's earlier days, by cost center and namespace, once known.
    let mut carried: Option<(UnixSeconds, Vec<GroupTotals>)> = None;
    for &day in days {
        let [focus_file, chargeback_file] = day_files(sources.cluster, day);
        if !again && dest.has(&focus_file).await? && dest.has(&chargeback_file).await? {
            exported.skipped += 1;
            carried = None;
            done(day);
            continue;
        }
        let month = month_start(day).unwrap_or(day);
        let (_, days_before) = match &mut carried {
            Some(carry) if carry.0 == month => carry,
            slot => {
                let before = month_so_far(sources, Interval::new(month, day)).await?;
                slot.insert((month, before))
            }
        };
        // The day's FOCUS rows and chargeback lines carry on from what the same days printed,
        // each cost center and namespace brought to its line of the month so far.
        let money = (sources.card.currency(), sources.card.rounding());
        let carries = Carries::of_days(days_before, money);
        let window = Interval::new(day, day + DAY);
        let rows = ReportRequest {
            window,
            step: Step::Day,
            group_by: GroupBy::resources(),
            share_unallocated: false,
            only: Default::default(),
        };
        let report = sources.report(&rows).await?;
        let money = report.currency.minor_units();
        let mut focus_bytes = Vec::new();
        let sink = ParquetRows::new(&mut focus_bytes, focus, money)
            .map_err(|e| dest.failed(&focus_file, e))?;
        let mut writer = FocusWriter::new(sink, LineFilter::default());
        writer.carry_on(carries.clone());
        writer
            .write(&report)
            .map_err(|e| dest.failed(&focus_file, e))?;
        days_before.push(report.group_totals());
        writer.finish().map_err(|e| dest.failed(&focus_file, e))?;
        exported.warnings.absorb(report.warnings);

        let [hourly, _] = rollup_requests(day);
        let chargeback = sources.report(&hourly).await?;
        let mut chargeback_bytes = Vec::new();
        write_chargeback_parquet(
            &chargeback.chargeback_in_groups(&carries),
            &mut chargeback_bytes,
        )
        .map_err(|e| dest.failed(&chargeback_file, e))?;
        // FOCUS last: a day is done when both are there.
        dest.put(&chargeback_file, chargeback_bytes).await?;
        dest.put(&focus_file, focus_bytes).await?;
        exported.written += 1;
        done(day);
    }
    Ok(exported)
}

/// The exact totals of the month's days in `span` (its first day up to the day exported), by
/// cost center and namespace, a day at a time: what they printed, had they been exported
/// ([`Carries::of_days`]).
async fn month_so_far(
    sources: &Sources<'_>,
    span: Interval,
) -> Result<Vec<GroupTotals>, ExportError> {
    if span.is_empty() {
        return Ok(Vec::new());
    }
    let days = ReportRequest {
        window: span,
        step: Step::Day,
        group_by: GroupBy::default(),
        share_unallocated: false,
        only: Default::default(),
    };
    Ok(sources.report(&days).await?.group_totals_by_period())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_partitioned_by_cluster_month_and_day() {
        // 2026-11-03T00:00:00Z: 20,760 days after 1970-01-01.
        let day = 20_760 * DAY;
        assert_eq!(
            day_files("demo", day),
            [
                "focus/cluster=demo/billing_month=2026-11/day=2026-11-03.parquet",
                "chargeback/cluster=demo/billing_month=2026-11/day=2026-11-03.parquet",
            ]
        );
        assert_eq!(
            partition_value("prometheus:http://p/x y"),
            "prometheus%3Ahttp%3A%2F%2Fp%2Fx%20y"
        );
    }
}
