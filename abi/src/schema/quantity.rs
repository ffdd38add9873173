//! Kubernetes-style resource quantities (`50M`, `16Mi`, `500m`, `1e3`), as
//! used by the appc resource isolators and rkt's `--memory` / `--cpu` flags.
//!
//! Values are converted to integers in a base unit chosen by the caller
//! (bytes, or millicores for CPU); fractions of the unit round up, like
//! Kubernetes' `Value()` / `MilliValue()`. Only a lowercase `k` means kilo:
//! appc's Go code rejects `1K` although the spec prose lists it.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum QuantityError {
    #[error("empty quantity; give a number with an optional suffix such as 512Mi, 1G or 500m")]
    Empty,
    #[error("invalid quantity {0:?}: expected a number with an optional suffix (Ki Mi Gi Ti Pi Ei, n u m k M G T P E, or an exponent like e3)")]
    Syntax(String),
    #[error("invalid quantity suffix {suffix:?} in {input:?}: use one of Ki Mi Gi Ti Pi Ei, n u m k M G T P E or e<N> (kilo is a lowercase k)")]
    Suffix { input: String, suffix: String },
    #[error("negative quantity {0:?}: resource quantities must be zero or positive")]
    Negative(String),
    #[error("quantity {0:?} is too large; use a value below 2^64 base units")]
    Overflow(String),
}

/// Parses a quantity into bytes (or any unit-less count such as IOPS).
pub fn parse_quantity_bytes(s: &str) -> Result<u64, QuantityError> {
    parse_scaled(s, 1)
}

/// Parses a quantity into thousandths (`1` → 1000, `250m` → 250); used for
/// CPU millicores.
pub fn parse_quantity_millis(s: &str) -> Result<u64, QuantityError> {
    parse_scaled(s, 1000)
}

/// Canonical short string for a byte count: the largest binary or decimal
/// suffix that divides the value exactly (the shorter wins), else the plain
/// number. `format(parse(x)) == x` for canonical inputs such as `16Mi`, `50M`.
pub fn format_quantity_bytes(bytes: u64) -> String {
    if bytes == 0 {
        return "0".to_string();
    }
    let binary = best_suffix(bytes, &BINARY_SUFFIXES);
    let decimal = best_suffix(bytes, &DECIMAL_SUFFIXES);
    match (binary, decimal) {
        (Some(b), Some(d)) if b.len() < d.len() => b,
        (_, Some(d)) => d,
        (Some(b), None) => b,
        (None, None) => bytes.to_string(),
    }
}

/// Canonical string for a milli value: `1000` → `1`, `250` → `250m`.
pub fn format_quantity_millis(millis: u64) -> String {
    if millis.is_multiple_of(1000) {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

const BINARY_SUFFIXES: [(&str, u64); 6] = [
    ("Ei", 1 << 60),
    ("Pi", 1 << 50),
    ("Ti", 1 << 40),
    ("Gi", 1 << 30),
    ("Mi", 1 << 20),
    ("Ki", 1 << 10),
];

const DECIMAL_SUFFIXES: [(&str, u64); 6] = [
    ("E", 1_000_000_000_000_000_000),
    ("P", 1_000_000_000_000_000),
    ("T", 1_000_000_000_000),
    ("G", 1_000_000_000),
    ("M", 1_000_000),
    ("k", 1_000),
];

fn best_suffix(value: u64, table: &[(&str, u64)]) -> Option<String> {
    table
        .iter()
        .find(|(_, factor)| value.is_multiple_of(*factor))
        .map(|(suffix, factor)| format!("{}{suffix}", value / factor))
}

/// A parsed suffix: multiply by `2^binary_shift * 10^decimal_exp`.
struct Scale {
    binary_shift: u32,
    decimal_exp: i32,
}

fn parse_suffix(input: &str, suffix: &str) -> Result<Scale, QuantityError> {
    let binary = |shift| {
        Ok(Scale {
            binary_shift: shift,
            decimal_exp: 0,
        })
    };
    let decimal = |exp| {
        Ok(Scale {
            binary_shift: 0,
            decimal_exp: exp,
        })
    };
    match suffix {
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "" => decimal(0),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        _ => {
            let bad = || QuantityError::Suffix {
                input: input.to_string(),
                suffix: suffix.to_string(),
            };
            let exp = suffix.strip_prefix(['e', 'E']).ok_or_else(bad)?;
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            // Anything beyond this over- or underflows u64 anyway.
            let exp: i32 = exp
                .parse()
                .map_err(|_| QuantityError::Overflow(input.to_string()))?;
            if !(-60..=60).contains(&exp) {
                return Err(QuantityError::Overflow(input.to_string()));
            }
            decimal(exp)
        }
    }
}

fn parse_scaled(s: &str, unit: u128) -> Result<u64, QuantityError> {
    let input = s.trim();
    if input.is_empty() {
        return Err(QuantityError::Empty);
    }
    let (negative, rest) = match input.as_bytes()[0] {
        b'-' => (true, &input[1..]),
        b'+' => (false, &input[1..]),
        _ => (false, input),
    };
    let number_len = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_len);
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
        return Err(QuantityError::Syntax(input.to_string()));
    }
    let scale = parse_suffix(input, suffix)?;
    let overflow = || QuantityError::Overflow(input.to_string());

    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 38 {
        return Err(overflow());
    }
    let mantissa: u128 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| overflow())?
    };
    if mantissa == 0 {
        return Ok(0);
    }
    if negative {
        return Err(QuantityError::Negative(input.to_string()));
    }

    // value = mantissa * 2^shift * 10^exp * unit / 10^frac_digits, computed as
    // one exact fraction so that e.g. "0.5Gi" and "1.5" are not rounded early.
    let frac_digits = i32::try_from(frac_part.len()).map_err(|_| overflow())?;
    let exp = scale.decimal_exp - frac_digits;
    let mut numerator = mantissa
        .checked_mul(unit)
        .and_then(|n| n.checked_mul(1u128 << scale.binary_shift))
        .ok_or_else(overflow)?;
    let mut denominator: u128 = 1;
    if exp >= 0 {
        numerator = numerator
            .checked_mul(10u128.checked_pow(exp as u32).ok_or_else(overflow)?)
            .ok_or_else(overflow)?;
    } else {
        match 10u128.checked_pow(exp.unsigned_abs()) {
            Some(d) => denominator = d,
            // So small that it rounds up to one base unit.
            None => return Ok(1),
        }
    }
    let value = numerator.div_ceil(denominator);
    u64::try_from(value).map_err(|_| overflow())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes() {
        let cases = [
            ("0", 0),
            ("1", 1),
            ("50M", 50_000_000),
            ("16Mi", 16 << 20),
            ("1G", 1_000_000_000),
            ("1Gi", 1 << 30),
            ("1e3", 1000),
            ("1E3", 1000),
            ("2e+3", 2000),
            ("1k", 1000),
            ("1Ki", 1024),
            ("1.5Gi", 3 << 29),
            ("0.5", 1),
            ("+7", 7),
            ("1E", 1_000_000_000_000_000_000),
            ("12Ei", 12 << 60),
            ("1500m", 2),
            ("100e-2", 1),
            (" 3M ", 3_000_000),
        ];
        for (input, want) in cases {
            assert_eq!(parse_quantity_bytes(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn millis() {
        let cases = [
            ("500m", 500),
            ("1", 1000),
            ("0.25", 250),
            ("2.5", 2500),
            ("1e3", 1_000_000),
            ("1u", 1),
            ("0", 0),
        ];
        for (input, want) in cases {
            assert_eq!(parse_quantity_millis(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn rejects() {
        assert!(matches!(
            parse_quantity_bytes("1K"),
            Err(QuantityError::Suffix { .. })
        ));
        assert!(matches!(
            parse_quantity_bytes("1MB"),
            Err(QuantityError::Suffix { .. })
        ));
        assert!(matches!(
            parse_quantity_bytes("1e"),
            Err(QuantityError::Suffix { .. })
        ));
        assert_eq!(parse_quantity_bytes(""), Err(QuantityError::Empty));
        assert!(matches!(
            parse_quantity_bytes("M"),
            Err(QuantityError::Syntax(_))
        ));
        assert!(matches!(
            parse_quantity_bytes("1.2.3"),
            Err(QuantityError::Syntax(_))
        ));
        assert!(matches!(
            parse_quantity_bytes("-1M"),
            Err(QuantityError::Negative(_))
        ));
        assert!(matches!(
            parse_quantity_bytes("16Ei"),
            Err(QuantityError::Overflow(_))
        ));
        assert!(matches!(
            parse_quantity_millis("1e100"),
            Err(QuantityError::Overflow(_))
        ));
        assert_eq!(parse_quantity_bytes("-0"), Ok(0));
    }

    #[test]
    fn format_round_trips() {
        for s in ["0", "1", "50M", "16Mi", "1G", "1Ki", "1k", "999", "3Ei"] {
            let v = parse_quantity_bytes(s).unwrap();
            assert_eq!(format_quantity_bytes(v), s);
        }
        assert_eq!(format_quantity_bytes(1536), "1536");
        assert_eq!(format_quantity_bytes(1_048_576_000), "1000Mi");
        for s in ["500m", "1", "2", "1500m"] {
            let v = parse_quantity_millis(s).unwrap();
            assert_eq!(format_quantity_millis(v), s);
        }
    }
}
