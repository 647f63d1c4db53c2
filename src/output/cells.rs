//! CSV cells written straight into a byte buffer: text quoted as RFC 4180 needs it (as the
//! `csv` crate's `QuoteStyle::Necessary` does) and spreadsheet-safe, decimals printed digit by
//! digit. What the FOCUS export writes a million rows of, without a `String` per cell.

use rust_decimal::Decimal;

use super::spreadsheet_safe;

/// Whether a cell must be quoted: it holds a comma, a quote or a line break (looked for a
/// vector register of bytes at a time).
fn needs_quotes(cell: &[u8]) -> bool {
    memchr::memchr3(b',', b'"', b'\n', cell).is_some() || memchr::memchr(b'\r', cell).is_some()
}

/// Appends `cell` as a CSV field: quoted (quotes doubled) where it must be, and a cell a
/// spreadsheet would read as a formula prefixed with `'`.
pub fn push_text(out: &mut Vec<u8>, cell: &str) {
    let cell = spreadsheet_safe(cell);
    let bytes = cell.as_bytes();
    if !needs_quotes(bytes) {
        out.extend_from_slice(bytes);
        return;
    }
    out.reserve(bytes.len() + 16);
    out.push(b'"');
    // A quote inside is doubled: each piece up to a quote, then the quote twice.
    let mut pieces = bytes.split(|&b| b == b'"');
    if let Some(first) = pieces.next() {
        out.extend_from_slice(first);
    }
    for piece in pieces {
        out.extend_from_slice(b"\"\"");
        out.extend_from_slice(piece);
    }
    out.push(b'"');
}

/// Appends `value` as its `Display` prints it: every place of its scale, `-` when negative.
pub fn push_decimal(out: &mut Vec<u8>, value: Decimal) {
    out.extend_from_slice(decimal_bytes(value, &mut [0; DECIMAL_TEXT]));
}

/// The longest text of a decimal: a sign, 29 digits, a point and a leading zero.
const DECIMAL_TEXT: usize = 32;

/// Appends `value` as `value.normalize()` prints it (no zeros closing its fraction, no point
/// closing its digits, no sign on zero).
pub fn push_normalized(out: &mut Vec<u8>, value: Decimal) {
    out.extend_from_slice(normalized_bytes(value, &mut [0; DECIMAL_TEXT]));
}

/// [`push_normalized`]'s bytes, written into `text`: [`decimal_bytes`] with the zeros that
/// close a fraction cut.
fn normalized_bytes(value: Decimal, text: &mut [u8; DECIMAL_TEXT]) -> &[u8] {
    if value.is_zero() {
        return b"0";
    }
    let mut printed = decimal_bytes(value, text);
    if value.scale() > 0 {
        while let [rest @ .., b'0'] = printed {
            printed = rest;
        }
        if let [rest @ .., b'.'] = printed {
            printed = rest;
        }
    }
    printed
}

/// `value` as its `Display` prints it, written into `text` (bytes, as a buffer takes them).
fn decimal_bytes(value: Decimal, text: &mut [u8; DECIMAL_TEXT]) -> &[u8] {
    const DIGITS: usize = 29;
    let scale = value.scale() as usize;
    // The mantissa's digits end at the end of `digits`, zeros before them. A mantissa past 64
    // bits is cut once into its last 19 digits and those before, each printed in 64 bits.
    let mut digits = [b'0'; DIGITS];
    let mantissa = value.mantissa().unsigned_abs();
    let first = match u64::try_from(mantissa) {
        Ok(small) => digits_ending_at(&mut digits, DIGITS, small),
        Err(_) => {
            const LOW: u128 = 10u128.pow(19);
            let high = mantissa / LOW;
            digits_ending_at(&mut digits, DIGITS, (mantissa - high * LOW) as u64);
            digits_ending_at(&mut digits, DIGITS - 19, high as u64)
        }
    };
    // At least one digit before the point: zeros up to the units' place.
    let first = first.min(DIGITS - scale - 1);
    let (whole, fraction) = digits[first..].split_at(DIGITS - first - scale);
    let mut length = 0;
    let mut put = |bytes: &[u8]| {
        text[length..length + bytes.len()].copy_from_slice(bytes);
        length += bytes.len();
    };
    if value.is_sign_negative() {
        put(b"-");
    }
    put(whole);
    if scale > 0 {
        put(b".");
        put(fraction);
    }
    &text[..length]
}

/// "00", "01", … "99": two digits printed at once.
const DIGIT_PAIRS: [u8; 200] = {
    let mut pairs = [0; 200];
    let mut n = 0;
    while n < 100 {
        pairs[2 * n] = b'0' + (n / 10) as u8;
        pairs[2 * n + 1] = b'0' + (n % 10) as u8;
        n += 1;
    }
    pairs
};

/// Writes the digits of `number` (none for 0) into `digits`, ending before `end`; returns where
/// they begin.
fn digits_ending_at(digits: &mut [u8], end: usize, mut number: u64) -> usize {
    let mut at = end;
    let mut pair = |at: &mut usize, two: u64| {
        *at -= 2;
        let two = two as usize;
        digits[*at..*at + 2].copy_from_slice(&DIGIT_PAIRS[2 * two..2 * two + 2]);
    };
    while number >= 100 {
        pair(&mut at, number % 100);
        number /= 100;
    }
    if number >= 10 {
        pair(&mut at, number);
    } else if number > 0 {
        at -= 1;
        digits[at] = b'0' + number as u8;
    }
    at
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rust_decimal::Decimal;

    use super::{push_decimal, push_normalized, push_text};

    fn text(write: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        write(&mut out);
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn decimals_print_every_place_of_their_scale_and_normalized_lose_only_closing_zeros() {
        for (mantissa, scale, printed, normalized) in [
            (0, 0, "0", "0"),
            (0, 2, "0.00", "0"),
            (5, 2, "0.05", "0.05"),
            (-5, 2, "-0.05", "-0.05"),
            (1230, 2, "12.30", "12.3"),
            (123, 5, "0.00123", "0.00123"),
            (7, 0, "7", "7"),
            (-120, 0, "-120", "-120"),
            (1000, 3, "1.000", "1"),
            (-25_000, 4, "-2.5000", "-2.5"),
            (101, 2, "1.01", "1.01"),
            (1_384_859_375_000, 13, "0.1384859375000", "0.1384859375"),
        ] {
            let value = Decimal::new(mantissa, scale);
            assert_eq!(text(|out| push_decimal(out, value)), printed);
            assert_eq!(text(|out| push_normalized(out, value)), normalized);
        }
        assert_eq!(
            text(|out| push_decimal(out, Decimal::MAX)),
            "79228162514264337593543950335"
        );
        let tenth = Decimal::from_i128_with_scale(10i128.pow(27), 28);
        assert_eq!(
            text(|out| push_decimal(out, tenth)),
            "0.1000000000000000000000000000"
        );
        assert_eq!(text(|out| push_normalized(out, tenth)), "0.1");
        // A negative zero prints as zero once normalized.
        let negative_zero = Decimal::from_parts(0, 0, 0, true, 3);
        assert_eq!(text(|out| push_normalized(out, negative_zero)), "0");
    }

    proptest! {
        #[test]
        fn decimals_print_as_display_does(lo in any::<u32>(), mid in any::<u32>(), hi in any::<u32>(), negative in any::<bool>(), scale in 0u32..=28) {
            let value = Decimal::from_parts(lo, mid, hi, negative, scale);
            prop_assert_eq!(text(|out| push_decimal(out, value)), value.to_string());
        }
    }

    proptest! {
        #[test]
        fn normalized_decimals_print_as_normalize_does(lo in any::<u32>(), mid in any::<u32>(), hi in any::<u32>(), negative in any::<bool>(), scale in 0u32..=28, zeros in 0u32..=9) {
            // Some with zeros closing the fraction, as an exact ratio divided out to 28 places.
            let value = Decimal::from_parts(lo, mid, hi, negative, scale);
            let padded = Decimal::from_i128_with_scale(i128::from(lo) * 10i128.pow(zeros), scale.max(zeros));
            for value in [value, padded, -padded] {
                prop_assert_eq!(text(|out| push_normalized(out, value)), value.normalize().to_string());
            }
        }
    }

    proptest! {
        /// FOCUS cells and the chargeback CSV (the `csv` crate) quote text alike.
        #[test]
        fn cells_are_quoted_as_the_csv_writer_quotes_them(cell in "[a-z ,\"\r\n=+@-]{0,24}") {
            let safe = super::spreadsheet_safe(&cell);
            let mut writer = ::csv::WriterBuilder::new()
                .terminator(::csv::Terminator::CRLF)
                .from_writer(Vec::new());
            writer.write_record([safe.as_ref(), "x"]).expect("written to memory");
            let by_csv = String::from_utf8(writer.into_inner().expect("flushed")).expect("UTF-8");
            prop_assert_eq!(text(|out| push_text(out, &cell)) + ",x\r\n", by_csv);
        }
    }

    #[test]
    fn cells_are_quoted_only_where_they_must_be_and_formulas_become_text() {
        for (cell, shown) in [
            ("pod-a", "pod-a"),
            ("", ""),
            ("a,b", "\"a,b\""),
            ("{\"k\":\"v\"}", "\"{\"\"k\"\":\"\"v\"\"}\""),
            ("line\nbreak", "\"line\nbreak\""),
            (
                "a long name, over eight bytes",
                "\"a long name, over eight bytes\"",
            ),
            ("twelve bytes\r", "\"twelve bytes\r\""),
            ("sixteen bytes ok", "sixteen bytes ok"),
            ("=SUM(A1)", "'=SUM(A1)"),
            ("-1.50", "-1.50"),
        ] {
            assert_eq!(text(|out| push_text(out, cell)), shown, "{cell:?}");
        }
    }
}
