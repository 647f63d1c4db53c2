//! Kubernetes resource quantities (`2`, `500m`, `1.5`, `16Gi`, `1e3`) parsed exactly.
//!
//! Device-plugin GPU counts arrive as quantity strings. They are parsed into `Decimal` without
//! ever passing through a float, so `500m` is exactly one half and `1e3` exactly a thousand.

use rust_decimal::Decimal;

/// A quantity string that does not follow the Kubernetes grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Kubernetes quantity {value:?}: {reason}")]
pub struct QuantityError {
    /// The text as it was found in the object.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Parses a Kubernetes quantity into an exact decimal.
///
/// Grammar (from `k8s.io/apimachinery/pkg/api/resource`): an optionally signed decimal number
/// followed by a binary-SI suffix (`Ki`…`Ei`), a decimal-SI suffix (`n`, `u`, `m`, `k`, `M`…`E`)
/// or a decimal exponent (`e3`, `E-2`).
pub fn parse_quantity(text: &str) -> Result<Decimal, QuantityError> {
    let fail = |reason| QuantityError {
        value: text.to_string(),
        reason,
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(fail("it is empty"));
    }
    let number_end = trimmed
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || ((c == '+' || c == '-') && i == 0)))
        .map_or(trimmed.len(), |(i, _)| i);
    let (number, suffix) = trimmed.split_at(number_end);
    let digits = number.trim_start_matches(['+', '-']);
    if digits.is_empty() || digits == "." || digits.matches('.').count() > 1 {
        return Err(fail("it does not start with a number"));
    }
    let mut value: Decimal = number
        .parse()
        .map_err(|_| fail("the number has too many digits"))?;
    match suffix {
        "" => {}
        "n" | "u" | "m" => {
            let scale = match suffix {
                "n" => 9,
                "u" => 6,
                _ => 3,
            };
            value = value
                .checked_div(Decimal::from(10_i64.pow(scale)))
                .ok_or_else(|| fail("the value is out of range"))?;
        }
        "k" | "M" | "G" | "T" | "P" | "E" => {
            let power = "kMGTPE".find(suffix).unwrap_or(0) as u32 + 1;
            value = scale_by(value, Decimal::from(1000_i64), power)
                .ok_or_else(|| fail("the value is out of range"))?;
        }
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
            let power = "KMGTPE".find(&suffix[..1]).unwrap_or(0) as u32 + 1;
            value = scale_by(value, Decimal::from(1024_i64), power)
                .ok_or_else(|| fail("the value is out of range"))?;
        }
        _ => {
            let exponent = suffix.strip_prefix(['e', 'E']).ok_or_else(|| {
                fail("the suffix is not one of Ki Mi Gi Ti Pi Ei n u m k M G T P E or an exponent")
            })?;
            let exponent: i32 = exponent
                .parse()
                .map_err(|_| fail("the exponent is not an integer"))?;
            if exponent.unsigned_abs() > 27 {
                return Err(fail("the exponent is out of range"));
            }
            let factor = Decimal::from_i128_with_scale(10_i128.pow(exponent.unsigned_abs()), 0);
            value = if exponent >= 0 {
                value.checked_mul(factor)
            } else {
                value.checked_div(factor)
            }
            .ok_or_else(|| fail("the value is out of range"))?;
        }
    }
    Ok(value.normalize())
}

fn scale_by(value: Decimal, base: Decimal, power: u32) -> Option<Decimal> {
    (0..power).try_fold(value, |acc, _| acc.checked_mul(base))
}

#[cfg(test)]
mod test {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn parses_every_suffix_family_exactly() {
        assert_eq!(parse_quantity("2").unwrap(), dec!(2));
        assert_eq!(parse_quantity("500m").unwrap(), dec!(0.5));
        assert_eq!(parse_quantity("1.5").unwrap(), dec!(1.5));
        assert_eq!(parse_quantity("16Gi").unwrap(), dec!(17179869184));
        assert_eq!(parse_quantity("1e3").unwrap(), dec!(1000));
        assert_eq!(parse_quantity("25E-2").unwrap(), dec!(0.25));
        assert_eq!(parse_quantity("2k").unwrap(), dec!(2000));
        assert_eq!(parse_quantity("1Ki").unwrap(), dec!(1024));
        assert_eq!(parse_quantity("100u").unwrap(), dec!(0.0001));
        assert_eq!(parse_quantity("+3").unwrap(), dec!(3));
        assert_eq!(parse_quantity("-1").unwrap(), dec!(-1));
        assert_eq!(parse_quantity(".5").unwrap(), dec!(0.5));
    }

    #[test]
    fn names_the_bad_value() {
        let err = parse_quantity("2 GPUs").unwrap_err();
        assert_eq!(err.value, "2 GPUs");
        assert!(err.to_string().contains("\"2 GPUs\""), "{err}");
        assert!(parse_quantity("").is_err());
        assert!(parse_quantity("Gi").is_err());
        assert!(parse_quantity("1.2.3").is_err());
        assert!(parse_quantity("1ex").is_err());
        assert!(parse_quantity("1e99").is_err());
    }
}
