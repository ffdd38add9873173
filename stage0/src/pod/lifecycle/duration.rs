//! Go `time.ParseDuration` and rkt's bool-or-duration `--wait` values.

use std::time::Duration;

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid duration {value:?}: {reason} (use e.g. 30s, 5m, 1h30m)")]
pub struct DurationError {
    pub value: String,
    pub reason: &'static str,
}

fn err(value: &str, reason: &'static str) -> DurationError {
    DurationError {
        value: value.to_string(),
        reason,
    }
}

/// Parses a Go duration (`300ms`, `-1.5h`, `2h45m`, `0`) into signed nanoseconds.
pub fn parse_go_duration_nanos(s: &str) -> Result<i128, DurationError> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(err(s, "empty"));
    }
    let mut total: f64 = 0.0;
    let mut exact: i128 = 0;
    let mut all_exact = true;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_end];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(err(s, "expected a number"));
        }
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(err(s, "missing unit")),
            _ => return Err(err(s, "unknown unit")),
        };
        if num.contains('.') {
            all_exact = false;
        } else {
            let n: i128 = num.parse().map_err(|_| err(s, "number too large"))?;
            exact = exact
                .checked_add(n.checked_mul(scale).ok_or_else(|| err(s, "overflow"))?)
                .ok_or_else(|| err(s, "overflow"))?;
        }
        total += num
            .parse::<f64>()
            .map_err(|_| err(s, "expected a number"))?
            * scale as f64;
    }
    let nanos = if all_exact {
        exact
    } else {
        total.round() as i128
    };
    if nanos > i64::MAX as i128 {
        return Err(err(s, "overflow"));
    }
    Ok(if neg { -nanos } else { nanos })
}

/// A non-negative Go duration (gc's `--grace-period`, `--expire-prepared`).
pub fn parse_go_duration(s: &str) -> Result<Duration, DurationError> {
    let n = parse_go_duration_nanos(s)?;
    if n < 0 {
        return Err(err(s, "must not be negative"));
    }
    Ok(Duration::from_nanos(n as u64))
}

/// How long `status --wait` / `--wait-ready` waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    No,
    Forever,
    For(Duration),
}

/// rkt's rule: empty or a true bool = forever, false = no wait, else a
/// duration (negative = forever, zero = no wait).
pub fn parse_wait(s: &str) -> Result<Wait, DurationError> {
    match s {
        "" | "1" | "t" | "T" | "TRUE" | "true" | "True" => return Ok(Wait::Forever),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => return Ok(Wait::No),
        _ => {}
    }
    let n = parse_go_duration_nanos(s)?;
    Ok(match n {
        n if n < 0 => Wait::Forever,
        0 => Wait::No,
        n => Wait::For(Duration::from_nanos(n as u64)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let d = |s| parse_go_duration(s).unwrap();
        assert_eq!(d("30m"), Duration::from_secs(1800));
        assert_eq!(d("0s"), Duration::ZERO);
        assert_eq!(d("0"), Duration::ZERO);
        assert_eq!(d("24h"), Duration::from_secs(86400));
        assert_eq!(d("1h30m"), Duration::from_secs(5400));
        assert_eq!(d("1.5h"), Duration::from_secs(5400));
        assert_eq!(d("300ms"), Duration::from_millis(300));
        assert_eq!(d("2µs"), Duration::from_micros(2));
        assert_eq!(d("+5s"), Duration::from_secs(5));
        assert_eq!(parse_go_duration_nanos("-1.5s").unwrap(), -1_500_000_000);
        for bad in ["", "5", "h", "1x", "1..2s", "-", "1h-2m", "10 s"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_go_duration("-1s").is_err());
    }

    #[test]
    fn wait_values() {
        assert_eq!(parse_wait("true").unwrap(), Wait::Forever);
        assert_eq!(parse_wait("").unwrap(), Wait::Forever);
        assert_eq!(parse_wait("false").unwrap(), Wait::No);
        assert_eq!(parse_wait("0s").unwrap(), Wait::No);
        assert_eq!(parse_wait("-1s").unwrap(), Wait::Forever);
        assert_eq!(
            parse_wait("10s").unwrap(),
            Wait::For(Duration::from_secs(10))
        );
        assert!(parse_wait("soon").is_err());
    }
}
