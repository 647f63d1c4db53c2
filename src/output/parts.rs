//! The FOCUS export a part (a charge period) at a time, each part's rows made (rounded, then
//! CSV bytes or a Parquet row group encoded and compressed) by a [`FocusParts`] wherever the
//! part was priced, and written into a [`FocusFile`] in order. Each part is rounded carrying on
//! from the exact totals of the parts before it, each cost center and namespace from its own
//! ([`Carries`]), so the rows of each add up to its chargeback line, and all of them to the
//! rounded totals of the whole, as if written one after another.

use std::io::Write;
use std::sync::Arc;

use super::focus::{CsvRows, FocusSettings, FocusWriter, SpareBuffers, csv_header};
use super::parquet::{ParquetFile, ParquetPart, RowGroup, Threads};
use crate::cost::{Carries, CostReport, LineFilter};

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

/// Some of a charge period's FOCUS rows, made.
pub enum FocusPart {
    /// CSV rows, their bytes in order.
    Csv(Vec<Vec<u8>>),
    /// A Parquet row group.
    Parquet(RowGroup),
}

/// What [`FocusParts::make`] hands over of a charge period: its first rows, made while the rest
/// are being made (CSV only), or the rest of them.
pub enum FocusPiece {
    /// The first rows of a charge period not yet made whole.
    First(FocusPart),
    /// The rest of the charge period's rows (all of them, where nothing went first).
    Rest(FocusPart),
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

/// Filled buffers of CSV rows (of ~1 MiB) handed over at once before a part ends: the writer
/// writes them while the next are made, and few handovers are waited on.
const FIRST_BUFFERS: usize = 8;

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
    /// the parts before it (`carries`). CSV rows are handed to `first` as they are made, eight
    /// filled buffers at a time (it may write them out at once, or keep them), the rest
    /// returned.
    pub fn make(
        &mut self,
        report: &CostReport,
        carries: Carries,
        first: &mut dyn FnMut(FocusPiece) -> std::io::Result<()>,
    ) -> std::io::Result<FocusPiece> {
        self.writer.carry_on(carries);
        self.writer.write_watching(report, |rows| match rows {
            PartRows::Csv(rows) => rows.take_filled(FIRST_BUFFERS).map_or(Ok(()), |filled| {
                first(FocusPiece::First(FocusPart::Csv(filled)))
            }),
            PartRows::Parquet(_) => Ok(()),
        })?;
        Ok(FocusPiece::Rest(match self.writer.sink() {
            PartRows::Csv(rows) => FocusPart::Csv(rows.take()),
            PartRows::Parquet(rows) => FocusPart::Parquet(rows.take(Threads::This)?),
        }))
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

    /// Writes what comes next: the first rows of a part, or the rest of it
    /// ([`FocusParts::make`]).
    pub fn write(&mut self, piece: FocusPiece) -> std::io::Result<()> {
        let (part, ends) = match piece {
            FocusPiece::First(part) => (part, false),
            FocusPiece::Rest(part) => (part, true),
        };
        match (&mut self.out, part) {
            (Out::Csv(out), FocusPart::Csv(rows)) => {
                for bytes in rows {
                    out.write_all(&bytes)?;
                    self.spare.give(bytes);
                }
                // A part's rows go out as it ends.
                if ends { out.flush() } else { Ok(()) }
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
