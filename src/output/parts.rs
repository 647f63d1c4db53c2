//! The FOCUS export a part (a charge period) at a time, each part's rows made (rounded, then
//! CSV bytes or a Parquet row group encoded and compressed) by a [`FocusParts`] wherever the
//! part was priced, and written into a [`FocusFile`] in order. Each part is rounded carrying on
//! from the exact totals of the parts before it ([`Carried::after`]), so the rows add up to the
//! rounded totals of the whole as if written one after another.

use std::io::Write;
use std::sync::Arc;

use super::focus::{CsvRows, FocusSettings, FocusWriter, SpareBuffers, csv_header};
use super::parquet::{ParquetFile, ParquetPart, RowGroup, Threads};
use crate::cost::{Carried, CostReport, LineFilter};

/// How FOCUS rows are written.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FocusEncoding {
    /// RFC 4180 CSV.
    Csv,
    /// Parquet, money to `money` places (the currency's minor units).
    Parquet {
        /// The places of money.
        money: u32,
    },
}

impl FocusEncoding {
    /// Parquet when `parquet`, else CSV; money to `money` places.
    pub fn new(parquet: bool, money: u32) -> Self {
        if parquet {
            FocusEncoding::Parquet { money }
        } else {
            FocusEncoding::Csv
        }
    }
}

/// A charge period's FOCUS rows, made.
pub enum FocusPart {
    /// CSV rows, their bytes in order.
    Csv(Vec<Vec<u8>>),
    /// A Parquet row group.
    Parquet(RowGroup),
}

/// Where a thread makes parts' rows.
enum PartRows {
    Csv(Box<CsvRows<std::io::Sink>>),
    Parquet(Box<ParquetPart>),
}

impl super::FocusSink for PartRows {
    fn row(&mut self, row: &super::FocusRow<'_>) -> std::io::Result<()> {
        match self {
            PartRows::Csv(rows) => rows.row(row),
            PartRows::Parquet(rows) => rows.row(row),
        }
    }

    /// A part's rows are taken whole ([`FocusParts::make`]).
    fn end_part(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Makes the rows of the parts one thread prices.
pub struct FocusParts {
    writer: FocusWriter<PartRows>,
}

impl FocusParts {
    /// Rows of the version `settings` name, encoded as `encoding`, those `only` keeps; CSV
    /// rows into buffers from `spare` (their file's, [`FocusFile::spare`]).
    pub fn new(
        settings: &FocusSettings,
        encoding: FocusEncoding,
        only: LineFilter,
        spare: Arc<SpareBuffers>,
    ) -> std::io::Result<Self> {
        let rows = match encoding {
            FocusEncoding::Csv => PartRows::Csv(Box::new(CsvRows::part(settings, spare))),
            FocusEncoding::Parquet { money } => {
                PartRows::Parquet(Box::new(ParquetPart::new(settings, money)?))
            }
        };
        Ok(FocusParts {
            writer: FocusWriter::new(rows, only),
        })
    }

    /// The rows of `report`, one part of a report (a charge period), rounded carrying on from
    /// the parts before it.
    pub fn make(&mut self, report: &CostReport, carried: Carried) -> std::io::Result<FocusPart> {
        self.writer.carry_on(carried);
        self.writer.write(report)?;
        Ok(match self.writer.sink() {
            PartRows::Csv(rows) => FocusPart::Csv(rows.take()),
            PartRows::Parquet(rows) => FocusPart::Parquet(rows.take(Threads::This)?),
        })
    }
}

/// A FOCUS file written a part at a time.
pub struct FocusFile<W: Write> {
    out: Out<W>,
    /// The buffers of CSV rows written out, for parts to come.
    spare: Arc<SpareBuffers>,
}

enum Out<W: Write> {
    /// CSV: the header, then each part's rows.
    Csv(W),
    /// Parquet: a row group a part, then the footer.
    Parquet(Box<ParquetFile<W>>),
}

impl<W: Write> FocusFile<W> {
    /// Starts the file of the version `settings` name on `out`.
    pub fn new(
        mut out: W,
        settings: &FocusSettings,
        encoding: FocusEncoding,
    ) -> std::io::Result<Self> {
        let out = match encoding {
            FocusEncoding::Csv => {
                out.write_all(&csv_header(settings))?;
                Out::Csv(out)
            }
            FocusEncoding::Parquet { money } => {
                Out::Parquet(Box::new(ParquetFile::new(out, settings, money)?))
            }
        };
        Ok(FocusFile {
            out,
            spare: Arc::default(),
        })
    }

    /// Where the buffers of CSV rows it has written out go, for the parts still to be made.
    pub fn spare(&self) -> Arc<SpareBuffers> {
        self.spare.clone()
    }

    /// Writes the next part.
    pub fn write(&mut self, part: FocusPart) -> std::io::Result<()> {
        match (&mut self.out, part) {
            (Out::Csv(out), FocusPart::Csv(rows)) => {
                for bytes in rows {
                    out.write_all(&bytes)?;
                    self.spare.give(bytes);
                }
                // A part's rows go out as it ends.
                out.flush()
            }
            (Out::Parquet(file), FocusPart::Parquet(group)) => file.write(group),
            _ => Err(std::io::Error::other(
                "a FOCUS part made for another encoding than its file's",
            )),
        }
    }

    /// Ends the file (Parquet's footer) and flushes it.
    pub fn finish(self) -> std::io::Result<()> {
        match self.out {
            Out::Csv(mut out) => out.flush(),
            Out::Parquet(mut file) => file.end(),
        }
    }
}
