//! FOCUS rows as RFC 4180 CSV: each charge period's row planned once (the cells every row of the
//! period shares printed ahead), then row after row written straight into a byte buffer.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use super::{COLUMNS, Cell, FILLS, FocusRow, FocusSettings, FocusSink, REPEATS};
use crate::output::cells::push_text;
use crate::time::{Interval, format_time};

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
pub(in crate::output) fn csv_header(settings: &FocusSettings) -> Vec<u8> {
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
    /// The cell of an earlier column of the row where it is not empty, copied, else this
    /// column's own ([`FILLS`]).
    Fill(usize, usize, Comma),
}

/// Whether a cell's piece begins with the comma before it (most do: a piece of its own for
/// one byte would cost more than the byte).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Comma {
    Before,
    None,
}

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
            // Copied only from a cell the row itself prints, earlier.
            let printed_before =
                |of: usize| self.picked[..n].contains(&of) && !matches!(cells[of], Cell::Fixed(_));
            let copied = |pairs: &[(usize, usize)]| {
                pairs
                    .iter()
                    .find(|&&(column, _)| column == i)
                    .map(|&(_, of)| of)
                    .filter(|&of| printed_before(of))
            };
            let (again, fill) = (copied(&REPEATS), copied(&FILLS));
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
                plan.push(match (again, fill) {
                    (Some(of), _) => Piece::Again(of, comma),
                    (None, Some(of)) => Piece::Fill(of, i, comma),
                    (None, None) => Piece::Cell(i, comma),
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
                Piece::Fill(of, i, comma) => {
                    if *comma == Comma::Before {
                        self.buffer.push(b',');
                    }
                    match self.spans[*of] {
                        (start, end) if start < end => self.buffer.extend_from_within(start..end),
                        _ => cells[*i].push(&mut self.buffer),
                    }
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
