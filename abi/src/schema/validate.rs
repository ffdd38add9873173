//! Small syntax checks shared by the manifest validators: SemVer, RFC 3339
//! timestamps, URLs, environment variable names, absolute paths.

use super::SchemaError;

/// A SemVer 2.0.0 version (`acVersion`). Numeric parts are parsed leniently
/// (leading zeros allowed) like coreos/go-semver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemVer {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub pre_release: Option<String>,
    pub metadata: Option<String>,
}

impl SemVer {
    pub fn parse(s: &str) -> Result<Self, SchemaError> {
        let bad = |why: &str| {
            SchemaError::Invalid(format!(
                "invalid version {s:?}: {why}; use MAJOR.MINOR.PATCH such as \"0.8.11\""
            ))
        };
        let (rest, metadata) = match s.split_once('+') {
            Some((r, m)) => (r, Some(m)),
            None => (s, None),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (rest, None),
        };
        let parts: Vec<&str> = core.split('.').collect();
        if parts.len() != 3 {
            return Err(bad("expected three dot-separated numbers"));
        }
        let num = |p: &str| -> Result<u64, SchemaError> {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("version parts must be numbers"));
            }
            p.parse().map_err(|_| bad("version number too large"))
        };
        let ident_ok = |x: &str| {
            x.split('.').all(|id| {
                !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
        };
        if let Some(p) = pre {
            if !ident_ok(p) {
                return Err(bad("bad pre-release part"));
            }
        }
        if let Some(m) = metadata {
            if !ident_ok(m) {
                return Err(bad("bad build metadata part"));
            }
        }
        Ok(SemVer {
            major: num(parts[0])?,
            minor: num(parts[1])?,
            patch: num(parts[2])?,
            pre_release: pre.map(str::to_string),
            metadata: metadata.map(str::to_string),
        })
    }

    pub fn is_zero(&self) -> bool {
        self.major == 0 && self.minor == 0 && self.patch == 0
    }
}

/// Checks an `acVersion` value: set, SemVer, not 0.0.0.
pub(crate) fn check_ac_version(v: &str) -> Result<(), SchemaError> {
    if v.is_empty() {
        return Err(SchemaError::Invalid(
            "acVersion must be set; use \"0.8.11\"".to_string(),
        ));
    }
    let ver = SemVer::parse(v).map_err(|e| SchemaError::Invalid(format!("acVersion: {e}")))?;
    if ver.is_zero() {
        return Err(SchemaError::Invalid(
            "acVersion must not be 0.0.0; use \"0.8.11\"".to_string(),
        ));
    }
    Ok(())
}

/// Checks `acKind` against the expected kind.
pub(crate) fn check_ac_kind(kind: &str, want: &str) -> Result<(), SchemaError> {
    if kind.is_empty() {
        return Err(SchemaError::Invalid(format!(
            "acKind must be set; use {want:?}"
        )));
    }
    if kind != want {
        return Err(SchemaError::Invalid(format!(
            "acKind is {kind:?} but must be {want:?}"
        )));
    }
    Ok(())
}

/// RFC 3339 with the `T` separator and optional fractional seconds, as Go's
/// `time.RFC3339` parser accepts it.
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(r)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let (Some(year), Some(month), Some(day), Some(hour), Some(min), Some(sec)) = (
        digits(0..4),
        digits(5..7),
        digits(8..10),
        digits(11..13),
        digits(14..16),
        digits(17..19),
    ) else {
        return false;
    };
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return false;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    if day == 0 || day > days_in_month || hour > 23 || min > 59 || sec > 59 {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    if rest == "Z" {
        return true;
    }
    let zb = rest.as_bytes();
    zb.len() == 6
        && (zb[0] == b'+' || zb[0] == b'-')
        && zb[3] == b':'
        && rest[1..3].parse::<u32>().is_ok_and(|h| h < 24)
        && rest[4..6].parse::<u32>().is_ok_and(|m| m < 60)
        && zb[1..3].iter().chain(&zb[4..6]).all(u8::is_ascii_digit)
}

/// An absolute `http://` or `https://` URL without control characters or
/// spaces (Go's `url.Parse` plus appc's scheme check).
pub fn is_http_url(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"));
    matches!(rest, Some(r) if !r.is_empty())
        && !s.bytes().any(|b| b.is_ascii_control() || b == b' ')
}

/// `^[A-Za-z_][A-Za-z_0-9.-]*$` (appc v0.8.11).
pub fn is_env_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

pub(crate) fn is_abs(path: &str) -> bool {
    path.starts_with('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver() {
        let v = SemVer::parse("0.8.11").unwrap();
        assert_eq!((v.major, v.minor, v.patch), (0, 8, 11));
        let v = SemVer::parse("1.0.0-rc.1+build.5").unwrap();
        assert_eq!(v.pre_release.as_deref(), Some("rc.1"));
        assert_eq!(v.metadata.as_deref(), Some("build.5"));
        for bad in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "a.b.c",
            "1.2.3-",
            "1.2.3-a..b",
            "v1.2.3",
        ] {
            assert!(SemVer::parse(bad).is_err(), "{bad}");
        }
        assert!(check_ac_version("0.0.0").is_err());
        assert!(check_ac_version("0.8.11").is_ok());
    }

    #[test]
    fn rfc3339() {
        for ok in [
            "2016-01-02T15:04:05Z",
            "2016-02-29T00:00:00.123456789+01:00",
            "1999-12-31T23:59:59-08:00",
        ] {
            assert!(is_rfc3339(ok), "{ok}");
        }
        for bad in [
            "2016-01-02 15:04:05Z",
            "2015-02-29T00:00:00Z",
            "2016-13-01T00:00:00Z",
            "2016-01-02T15:04:05",
            "2016-01-02T15:04:05.Z",
            "2016-01-02T15:04:05+0100",
            "2016-01-02T24:00:00Z",
            "2016-1-2T15:04:05Z",
            "",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }

    #[test]
    fn urls_and_env() {
        assert!(is_http_url("https://coreos.com/rkt"));
        assert!(is_http_url("HTTP://example.com"));
        assert!(!is_http_url("ftp://example.com"));
        assert!(!is_http_url("https://"));
        assert!(!is_http_url("https://exa mple.com"));
        assert!(is_env_name("PATH"));
        assert!(is_env_name("_a.b-c9"));
        assert!(!is_env_name("9A"));
        assert!(!is_env_name("A=B"));
        assert!(!is_env_name(""));
    }
}
