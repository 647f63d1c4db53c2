//! FOCUS columns written as Parquet `PLAIN` pages while rows come: the page's own bytes, never
//! an Arrow array (which polars would copy value by value into a page again). Texts nearly
//! every row has its own of and money and hours, which are never null, go this way.

use polars::prelude::{PolarsResult, polars_err};
use polars_parquet::parquet::page::{DataPageHeader, DataPageHeaderV1};
use polars_parquet::parquet::schema::types::PrimitiveType;
use polars_parquet::parquet::statistics::{BinaryStatistics, FixedLenStatistics};
use polars_parquet::write::{Encoding, Version, write_def_levels};

/// Bytes kept free before a page's values for its definition levels, written once the rows
/// are counted: a 4-byte length and one run of "present" (a varint of the count, then 1).
const LEVELS_ROOM: usize = 16;

/// One row group's values of a column, PLAIN-encoded as they are pushed.
pub(super) struct Plain {
    /// [`LEVELS_ROOM`] bytes, then the values.
    bytes: Vec<u8>,
    rows: usize,
    /// The least and greatest decimal pushed (decimal columns).
    range: Option<(i128, i128)>,
}

impl Default for Plain {
    fn default() -> Self {
        Plain {
            bytes: vec![0; LEVELS_ROOM],
            rows: 0,
            range: None,
        }
    }
}

impl Plain {
    /// A column with room for as many bytes as `like` holds (the day before's: one day's rows
    /// are about another's), so that it is not copied as it grows.
    pub(super) fn sized_like(like: &Plain) -> Self {
        let mut bytes = Vec::with_capacity(like.bytes.len());
        bytes.resize(LEVELS_ROOM, 0);
        Plain {
            bytes,
            ..Plain::default()
        }
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
        self.rows += 1;
    }

    /// Appends a decimal in units of its column's last place: a `Decimal(38, s)` value is kept
    /// as a 16-byte big-endian integer.
    pub(super) fn push_decimal(&mut self, units: i128) {
        self.bytes.extend_from_slice(&units.to_be_bytes());
        self.range = Some(match self.range {
            Some((least, most)) => (least.min(units), most.max(units)),
            None => (units, units),
        });
        self.rows += 1;
    }

    /// The page of the values pushed: the definition levels of an optional column with no
    /// null (polars' own, as its pages have them), right before the values.
    pub(super) fn into_page(mut self) -> PolarsResult<PlainPage> {
        let mut levels = Vec::with_capacity(LEVELS_ROOM);
        write_def_levels(&mut levels, true, None, self.rows, Version::V1)?;
        let start = LEVELS_ROOM.checked_sub(levels.len()).ok_or_else(
            || polars_err!(ComputeError: "definition levels longer than the room kept for them"),
        )?;
        self.bytes[start..LEVELS_ROOM].copy_from_slice(&levels);
        Ok(PlainPage {
            bytes: self.bytes,
            start,
            rows: self.rows,
            range: self.range,
        })
    }
}

/// A column's PLAIN page of one row group: its definition levels, then its values.
pub(super) struct PlainPage {
    bytes: Vec<u8>,
    /// Where the levels begin.
    start: usize,
    rows: usize,
    range: Option<(i128, i128)>,
}

impl PlainPage {
    /// The page's bytes, to be compressed.
    pub(super) fn bytes(&self) -> &[u8] {
        &self.bytes[self.start..]
    }

    /// The rows of the page.
    pub(super) fn rows(&self) -> usize {
        self.rows
    }

    /// The page's header: every row present, and the decimals' range (texts: no range, which
    /// reading them never needs).
    pub(super) fn header(&self, type_: &PrimitiveType) -> DataPageHeader {
        let statistics = match self.range {
            Some((least, most)) => FixedLenStatistics {
                primitive_type: type_.clone(),
                null_count: Some(0),
                distinct_count: None,
                max_value: Some(most.to_be_bytes().to_vec()),
                min_value: Some(least.to_be_bytes().to_vec()),
            }
            .serialize(),
            None => BinaryStatistics {
                primitive_type: type_.clone(),
                null_count: Some(0),
                distinct_count: None,
                max_value: None,
                min_value: None,
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
        let page = column.into_page().unwrap();
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
        let page = column.into_page().unwrap();
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
}
