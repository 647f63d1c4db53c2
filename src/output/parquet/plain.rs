//! FOCUS columns written as Parquet `PLAIN` pages while rows come: the page's own bytes, never
//! an Arrow array (which polars would copy value by value into a page again). Texts nearly
//! every row has its own of (some null on some rows), money and hours, which are never null, and
//! utilization and idle cost, null where usage is unknown, go this way.

use polars::prelude::PolarsResult;
use polars_arrow::bitmap::MutableBitmap;
use polars_parquet::parquet::page::{DataPageHeader, DataPageHeaderV1};
use polars_parquet::parquet::schema::types::PrimitiveType;
use polars_parquet::parquet::statistics::{BinaryStatistics, FixedLenStatistics};
use polars_parquet::write::{Encoding, Version, write_def_levels};

/// Where a value lies in a page's bytes.
type Place = std::ops::Range<usize>;

/// Bytes kept free before a page's values for its definition levels, written once the rows
/// are counted: a 4-byte length and one run of "present" (a varint of the count, then 1). A
/// column with nulls whose levels take more room has its page put together apart.
const LEVELS_ROOM: usize = 16;

/// One row group's values of a column, PLAIN-encoded as they are pushed.
pub(super) struct Plain {
    /// [`LEVELS_ROOM`] bytes, then the values.
    bytes: Vec<u8>,
    rows: usize,
    /// The least and greatest decimal pushed (decimal columns).
    range: Option<(i128, i128)>,
    /// Where in `bytes` the least and greatest text pushed lie (text columns), in byte order.
    texts: Option<(Place, Place)>,
    /// Which rows hold a value, once one does not (until then every row does).
    present: Option<MutableBitmap>,
    nulls: usize,
    /// A page whose levels did not fit in the room kept for them: levels, then the values.
    apart: Vec<u8>,
}

impl Default for Plain {
    fn default() -> Self {
        Plain {
            bytes: vec![0; LEVELS_ROOM],
            rows: 0,
            range: None,
            texts: None,
            present: None,
            nulls: 0,
            apart: Vec::new(),
        }
    }
}

impl Plain {
    /// Forgets the values pushed, keeping their room.
    pub(super) fn clear(&mut self) {
        self.bytes.truncate(LEVELS_ROOM);
        self.rows = 0;
        self.range = None;
        self.texts = None;
        self.present = None;
        self.nulls = 0;
    }

    /// Counts a row, present or not.
    fn count(&mut self, present: bool) {
        if let Some(rows) = &mut self.present {
            rows.push(present);
        } else if !present {
            let mut rows = MutableBitmap::from_len_set(self.rows);
            rows.push(false);
            self.present = Some(rows);
        }
        self.rows += 1;
        self.nulls += usize::from(!present);
    }

    /// A column of `rows` rows without a value.
    pub(super) fn nulls(rows: usize) -> Self {
        let mut column = Plain::default();
        for _ in 0..rows {
            column.push_null();
        }
        column
    }

    /// Appends a null: a row without a value.
    pub(super) fn push_null(&mut self) {
        self.count(false);
    }

    /// Appends a text: its length (4 bytes, little-endian), then its bytes.
    pub(super) fn push_text(&mut self, text: &str) {
        self.push_text_with(|out| out.extend_from_slice(text.as_bytes()));
    }

    /// Appends the text `write` puts after the bytes it is given (and only there).
    pub(super) fn push_text_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let at = self.bytes.len();
        self.bytes.extend_from_slice(&[0; 4]);
        write(&mut self.bytes);
        let length = u32::try_from(self.bytes.len() - at - 4)
            .unwrap_or_else(|_| unreachable!("a FOCUS cell is far shorter than 4 GiB"));
        self.bytes[at..at + 4].copy_from_slice(&length.to_le_bytes());
        let text = at + 4..self.bytes.len();
        let (least, most) = self.texts.clone().unwrap_or((text.clone(), text.clone()));
        let bytes = |place: &Place| &self.bytes[place.clone()];
        let least = std::cmp::min_by_key(least, text.clone(), bytes);
        self.texts = Some((least, std::cmp::max_by_key(most, text, bytes)));
        self.count(true);
    }

    /// Appends a decimal in units of its column's last place: a `Decimal(38, s)` value is kept
    /// as a 16-byte big-endian integer.
    pub(super) fn push_decimal(&mut self, units: i128) {
        self.bytes.extend_from_slice(&units.to_be_bytes());
        self.range = Some(match self.range {
            Some((least, most)) => (least.min(units), most.max(units)),
            None => (units, units),
        });
        self.count(true);
    }

    /// Appends a decimal ([`Plain::push_decimal`]), or a null where there is none.
    pub(super) fn push_optional_decimal(&mut self, units: Option<i128>) {
        match units {
            Some(units) => self.push_decimal(units),
            None => self.push_null(),
        }
    }

    /// The page of the values pushed: the definition levels of an optional column (polars'
    /// own, as its pages have them), right before the values.
    pub(super) fn page(&mut self) -> PolarsResult<PlainPage<'_>> {
        let mut levels = Vec::with_capacity(LEVELS_ROOM);
        let present = self.present.clone().map(Into::into);
        write_def_levels(&mut levels, true, present.as_ref(), self.rows, Version::V1)?;
        let bytes = match LEVELS_ROOM.checked_sub(levels.len()) {
            Some(start) => {
                self.bytes[start..LEVELS_ROOM].copy_from_slice(&levels);
                &self.bytes[start..]
            }
            None => {
                self.apart.clear();
                self.apart.extend_from_slice(&levels);
                self.apart.extend_from_slice(&self.bytes[LEVELS_ROOM..]);
                &self.apart[..]
            }
        };
        let texts = self.texts.clone();
        let texts = texts.map(|(least, most)| (&self.bytes[least], &self.bytes[most]));
        Ok(PlainPage {
            bytes,
            rows: self.rows,
            nulls: self.nulls,
            range: self.range,
            texts,
        })
    }
}

/// A text column every row holds a value of, in one PLAIN page per run of rows that are
/// allocated, or not, to the resource they name (`FocusRow::allocated`): a column holding the
/// same texts on allocated rows only (`AllocatedResourceId` of `ResourceId`) then writes these
/// pages where rows are allocated, compressed once, and pages of nulls where they are not. A
/// day's rows make two or three runs: the nodes' unallocated capacity (cost center
/// `__unallocated__`) sorts together, in byte order among the pods' cost centers (after one
/// that begins with a capital or a digit, before one in lower case).
#[derive(Default)]
pub(super) struct Runs {
    /// Each run's rows, allocated or not, in order.
    runs: Vec<(bool, Plain)>,
    /// Pages of runs cleared away, their room kept for the next row group's runs.
    spare: Vec<Plain>,
}

impl Runs {
    /// Appends a text, in a page of its own when the row before was allocated and this one is
    /// not, or the other way round.
    pub(super) fn push_text(&mut self, text: &str, allocated: bool) {
        match self.runs.last_mut() {
            Some((run, values)) if *run == allocated => values.push_text(text),
            _ => {
                let mut values = self.spare.pop().unwrap_or_default();
                values.push_text(text);
                self.runs.push((allocated, values));
            }
        }
    }

    /// Forgets the rows pushed, keeping their room: the first run's page is the first taken
    /// again.
    pub(super) fn clear(&mut self) {
        for (_, mut values) in self.runs.drain(..).rev() {
            values.clear();
            self.spare.push(values);
        }
    }

    /// Each run's page, with whether its rows are allocated.
    pub(super) fn pages(&mut self) -> PolarsResult<Vec<(bool, PlainPage<'_>)>> {
        self.runs
            .iter_mut()
            .map(|(allocated, values)| Ok((*allocated, values.page()?)))
            .collect()
    }
}

/// A column's PLAIN page of one row group, where it was made: its definition levels, then its
/// values.
pub(super) struct PlainPage<'p> {
    bytes: &'p [u8],
    rows: usize,
    nulls: usize,
    range: Option<(i128, i128)>,
    texts: Option<(&'p [u8], &'p [u8])>,
}

impl PlainPage<'_> {
    /// The page's bytes, to be compressed.
    pub(super) fn bytes(&self) -> &[u8] {
        self.bytes
    }

    /// The rows of the page.
    pub(super) fn rows(&self) -> usize {
        self.rows
    }

    /// The page's header: its nulls, and its values' range: the least and greatest decimal, or
    /// text in byte order (a reader skips pages and row groups by them: one told of no range
    /// may skip them all when asked for a value, as DuckDB 2.0 did).
    pub(super) fn header(&self, type_: &PrimitiveType) -> DataPageHeader {
        let null_count = Some(self.nulls as i64);
        let statistics = match self.range {
            Some((least, most)) => FixedLenStatistics {
                primitive_type: type_.clone(),
                null_count,
                distinct_count: None,
                max_value: Some(most.to_be_bytes().to_vec()),
                min_value: Some(least.to_be_bytes().to_vec()),
            }
            .serialize(),
            None => BinaryStatistics {
                primitive_type: type_.clone(),
                null_count,
                distinct_count: None,
                max_value: self.texts.map(|(_, most)| most.to_vec()),
                min_value: self.texts.map(|(least, _)| least.to_vec()),
            }
            .serialize(),
        };
        DataPageHeader::V1(DataPageHeaderV1 {
            num_values: self.rows as i32,
            encoding: Encoding::Plain.into(),
            definition_level_encoding: Encoding::Rle.into(),
            repetition_level_encoding: Encoding::Rle.into(),
            statistics: Some(statistics),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_their_length_then_their_bytes_after_one_run_of_present_rows() {
        let mut column = Plain::default();
        for text in ["ab", "", "xyz"] {
            column.push_text(text);
        }
        let page = column.page().unwrap();
        assert_eq!(page.rows(), 3);
        let page = page.bytes();
        // Levels: 2 bytes long, a run of 3 (3 << 1 = 6) of the value 1.
        let levels = [2, 0, 0, 0, 6, 1];
        let values = [
            2, 0, 0, 0, b'a', b'b', 0, 0, 0, 0, 3, 0, 0, 0, b'x', b'y', b'z',
        ];
        assert_eq!(page, [&levels[..], &values[..]].concat());
    }

    #[test]
    fn a_null_row_has_no_value_and_its_level_says_so() {
        let mut column = Plain::default();
        column.push_text("ab");
        column.push_null();
        column.push_text("c");
        let type_ = PrimitiveType::from_physical(
            "t".into(),
            polars_parquet::write::ParquetPhysicalType::ByteArray,
        );
        let page = column.page().unwrap();
        assert_eq!(page.rows(), 3);
        // Levels: 2 bytes long, one bit-packed group of 8 ((1 << 1) | 1 = 3) holding present,
        // absent, present from the lowest bit up (0b101 = 5); then only the two values.
        let levels = [2, 0, 0, 0, 3, 5];
        let values = [2, 0, 0, 0, b'a', b'b', 1, 0, 0, 0, b'c'];
        assert_eq!(page.bytes(), [&levels[..], &values[..]].concat());
        let DataPageHeader::V1(header) = page.header(&type_) else {
            panic!("a V1 page")
        };
        assert_eq!(header.num_values, 3);
        assert_eq!(header.statistics.and_then(|s| s.null_count), Some(1));
        // Emptied, the column is all present again.
        column.clear();
        column.push_text("d");
        assert_eq!(column.page().unwrap().bytes()[..6], [2, 0, 0, 0, 2, 1]);
    }

    #[test]
    fn levels_longer_than_their_room_put_the_page_together_apart() {
        // Every other row null for 200 rows: 25 bit-packed groups, longer than the room kept.
        let mut column = Plain::default();
        for row in 0..200 {
            if row % 2 == 0 {
                column.push_text("x");
            } else {
                column.push_null();
            }
        }
        let page = column.page().unwrap();
        let bytes = page.bytes();
        // A 1-byte header (25 << 1 | 1 = 51), then 25 bytes of 0b01010101 = 0x55: 26 bytes.
        assert_eq!(bytes[..4], 26u32.to_le_bytes());
        assert_eq!(bytes[4], 51);
        assert!(bytes[5..30].iter().all(|&b| b == 0x55));
        assert_eq!(bytes.len(), 4 + 26 + 100 * 5);
        assert_eq!(bytes[30..35], [1, 0, 0, 0, b'x']);
    }

    #[test]
    fn decimals_are_sixteen_big_endian_bytes_and_a_long_run_takes_a_longer_count() {
        let mut column = Plain::default();
        for _ in 0..100 {
            column.push_decimal(-2);
        }
        column.push_decimal(258);
        let type_ = PrimitiveType::from_physical(
            "d".into(),
            polars_parquet::write::ParquetPhysicalType::FixedLenByteArray(16),
        );
        let page = column.page().unwrap();
        let header = page.header(&type_);
        let page = page.bytes();
        // 101 << 1 = 202: 0xCA 0x01 as a varint.
        assert_eq!(page[..7], [3, 0, 0, 0, 0xCA, 0x01, 1]);
        assert_eq!(
            page[7..23],
            [0xFF; 14]
                .iter()
                .chain(&[0xFF, 0xFE])
                .copied()
                .collect::<Vec<u8>>()
        );
        let mut last = [0u8; 16];
        last[14] = 1;
        last[15] = 2;
        assert_eq!(page[page.len() - 16..], last);
        let DataPageHeader::V1(header) = header else {
            panic!("a V1 page")
        };
        assert_eq!(header.num_values, 101);
        let statistics = header.statistics.expect("a range");
        assert_eq!(
            statistics.min_value.as_deref(),
            Some(&(-2i128).to_be_bytes()[..])
        );
        assert_eq!(
            statistics.max_value.as_deref(),
            Some(&258i128.to_be_bytes()[..])
        );
    }

    #[test]
    fn runs_of_allocated_rows_and_of_the_rest_are_pages_of_their_own() {
        let mut column = Runs::default();
        for (text, allocated) in [("n1", false), ("p1", true), ("p2", true), ("n2", false)] {
            column.push_text(text, allocated);
        }
        let pages = column.pages().unwrap();
        let runs: Vec<(bool, usize, &[u8])> = pages
            .iter()
            .map(|(allocated, page)| (*allocated, page.rows(), page.bytes()))
            .collect();
        // Each page all present: 2 bytes of levels, a run of its rows (rows << 1) of 1.
        assert_eq!(
            runs,
            [
                (false, 1, &[2, 0, 0, 0, 2, 1, 2, 0, 0, 0, b'n', b'1'][..]),
                (
                    true,
                    2,
                    &[
                        2, 0, 0, 0, 4, 1, 2, 0, 0, 0, b'p', b'1', 2, 0, 0, 0, b'p', b'2'
                    ][..]
                ),
                (false, 1, &[2, 0, 0, 0, 2, 1, 2, 0, 0, 0, b'n', b'2'][..]),
            ]
        );
        // Cleared, the next row group's first run is a page of its own again, in the room of
        // the first run before.
        let room = column.runs[0].1.bytes.capacity();
        column.clear();
        column.push_text("p3", true);
        assert_eq!(column.runs.len(), 1);
        assert_eq!(column.runs[0].1.bytes.capacity(), room);
        let pages = column.pages().unwrap();
        assert_eq!(
            pages[0].1.bytes(),
            [2, 0, 0, 0, 2, 1, 2, 0, 0, 0, b'p', b'3']
        );
    }

    #[test]
    fn a_decimal_without_a_value_is_a_null_and_outside_the_range() {
        let mut column = Plain::default();
        column.push_optional_decimal(Some(5));
        column.push_optional_decimal(None);
        let page = column.page().unwrap();
        // Levels: one bit-packed group of 8 (3) holding present, absent (0b01 = 1); then the
        // one value, 16 bytes big-endian.
        let mut five = [0u8; 16];
        five[15] = 5;
        assert_eq!(page.bytes(), [&[2, 0, 0, 0, 3, 1][..], &five[..]].concat());
        let type_ = PrimitiveType::from_physical(
            "d".into(),
            polars_parquet::write::ParquetPhysicalType::FixedLenByteArray(16),
        );
        let DataPageHeader::V1(header) = page.header(&type_) else {
            panic!("a V1 page")
        };
        assert_eq!(header.num_values, 2);
        let statistics = header.statistics.expect("a range");
        assert_eq!(statistics.null_count, Some(1));
        assert_eq!(statistics.min_value.as_deref(), Some(&five[..]));
        assert_eq!(statistics.max_value.as_deref(), Some(&five[..]));
    }

    #[test]
    fn a_column_of_nulls_is_its_levels_only() {
        let mut column = Plain::nulls(3);
        let page = column.page().unwrap();
        assert_eq!(page.rows(), 3);
        // A bit-packed group of 8 ((1 << 1) | 1 = 3) of three absent rows (0).
        assert_eq!(page.bytes(), [2, 0, 0, 0, 3, 0]);
    }

    #[test]
    fn a_cleared_column_keeps_its_room_and_its_next_page_holds_only_the_values_after() {
        let mut column = Plain::default();
        for _ in 0..100 {
            column.push_decimal(7);
        }
        // 100 rows: a 2-byte count; the page after has 1 row, a 1-byte count.
        assert_eq!(
            column.page().unwrap().bytes()[..7],
            [3, 0, 0, 0, 0xC8, 0x01, 1]
        );
        let room = column.bytes.capacity();
        column.clear();
        column.push_text("ab");
        assert_eq!(column.bytes.capacity(), room);
        let page = column.page().unwrap();
        assert_eq!(page.rows(), 1);
        assert_eq!(page.bytes(), [2, 0, 0, 0, 2, 1, 2, 0, 0, 0, b'a', b'b']);
        let type_ = PrimitiveType::from_physical(
            "t".into(),
            polars_parquet::write::ParquetPhysicalType::ByteArray,
        );
        let DataPageHeader::V1(header) = page.header(&type_) else {
            panic!("a V1 page")
        };
        assert_eq!(header.num_values, 1);
        // The range is the text's, none of the decimals' left over.
        let statistics = header.statistics.expect("a range");
        assert_eq!(statistics.min_value.as_deref(), Some(&b"ab"[..]));
        assert_eq!(statistics.max_value.as_deref(), Some(&b"ab"[..]));
    }

    #[test]
    fn a_text_page_says_its_least_and_greatest_text_in_byte_order() {
        let mut column = Plain::default();
        // Byte order, as Parquet compares texts: "Z" (0x5A) before "a", "é" (0xC3 0xA9) after
        // "z", and a text before any it begins.
        for text in ["pod-b", "pod-a1", "Z", "pod-a", "z", "é", "pod"] {
            column.push_text(text);
        }
        column.push_null();
        let type_ = PrimitiveType::from_physical(
            "t".into(),
            polars_parquet::write::ParquetPhysicalType::ByteArray,
        );
        let DataPageHeader::V1(header) = column.page().unwrap().header(&type_) else {
            panic!("a V1 page")
        };
        let statistics = header.statistics.expect("a range");
        assert_eq!(statistics.null_count, Some(1));
        assert_eq!(statistics.min_value.as_deref(), Some(&b"Z"[..]));
        assert_eq!(statistics.max_value.as_deref(), Some("é".as_bytes()));
        // Without "Z" and "é": the shortest of the texts others begin with is the least.
        let mut column = Plain::default();
        for text in ["pod-b", "pod-a1", "pod", "pod-a"] {
            column.push_text(text);
        }
        let DataPageHeader::V1(header) = column.page().unwrap().header(&type_) else {
            panic!("a V1 page")
        };
        let statistics = header.statistics.expect("a range");
        assert_eq!(statistics.min_value.as_deref(), Some(&b"pod"[..]));
        assert_eq!(statistics.max_value.as_deref(), Some(&b"pod-b"[..]));
    }
}
