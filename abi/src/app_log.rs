//! The app output logs the ns stage1 keeps when a pod has no journal (the
//! host runs no journald), which `rkt logs` reads: `rkt/logs/<app>.log`
//! inside the stage1 rootfs, one entry per output line in the CRI log
//! format (`<RFC 3339 UTC time with nanoseconds> <stdout|stderr> F
//! <line>`), moved to `<app>.log.1` once past [`MAX_LOG_BYTES`] so an app
//! keeps at most twice that.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::calendar::{civil_from_days, days_from_civil};

/// Inside the stage1 rootfs.
pub const LOGS_DIR: &str = "rkt/logs";
/// Size at which an app's log is rotated.
pub const MAX_LOG_BYTES: u64 = 8 << 20;

/// The current log of app `app`, in [`LOGS_DIR`].
pub fn log_name(app: &str) -> String {
    format!("{app}.log")
}

/// The previous log of app `app`, in [`LOGS_DIR`].
pub fn rotated_name(app: &str) -> String {
    format!("{app}.log.1")
}

/// One entry: `line` without its newline.
pub fn format_entry(time: SystemTime, stderr: bool, line: &[u8]) -> Vec<u8> {
    let stream = if stderr { "stderr" } else { "stdout" };
    let mut out = format!("{} {stream} F ", rfc3339_nanos(time)).into_bytes();
    out.extend_from_slice(line);
    out.push(b'\n');
    out
}

/// An entry read back.
#[derive(Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Sorts as the time does (fixed width).
    pub time: &'a str,
    pub stream: &'a str,
    pub line: &'a str,
}

/// Parses one entry (a line of a log without its newline).
pub fn parse_entry(text: &str) -> Option<Entry<'_>> {
    let mut parts = text.splitn(4, ' ');
    let (time, stream, tag) = (parts.next()?, parts.next()?, parts.next()?);
    let line = parts.next().unwrap_or("");
    let known = matches!(stream, "stdout" | "stderr") && matches!(tag, "F" | "P");
    (known && time.len() == 30).then_some(Entry { time, stream, line })
}

/// `2026-12-05T18:00:00.123456789Z`.
pub fn rfc3339_nanos(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_nanos()
    )
}

/// Parses `YYYY-MM-DD[T| ]HH:MM:SS[.fraction][Z]` as UTC.
pub fn parse_time(text: &str) -> Option<SystemTime> {
    let text = text.strip_suffix('Z').unwrap_or(text);
    let (date, clock) = text.split_once(['T', ' '])?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (clock, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut c = clock.splitn(3, ':').map(|p| p.parse::<u64>().ok());
    let (hh, mm, ss) = (c.next()??, c.next()??, c.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let nanos = match fraction {
        "" => 0,
        f if f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{f:0<9}").parse::<u32>().ok()?
        }
        _ => return None,
    };
    let days = u64::try_from(days_from_civil(y, m as u32, day as u32)).ok()?;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_and_sort_as_text() {
        let t = UNIX_EPOCH + Duration::new(1_796_493_600, 123_456_789);
        let s = rfc3339_nanos(t);
        assert_eq!(s, "2026-12-05T18:00:00.123456789Z");
        assert_eq!(parse_time(&s), Some(t));
        assert_eq!(
            parse_time("2026-12-05 18:00:00"),
            Some(UNIX_EPOCH + Duration::from_secs(1_796_493_600))
        );
        assert_eq!(rfc3339_nanos(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_nanos(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert!(rfc3339_nanos(t) < rfc3339_nanos(t + Duration::from_nanos(1)));
        for bad in [
            "yesterday",
            "2026-13-01 00:00:00",
            "2026-12-05T25:00:00",
            "2026-12-05",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn entries_round_trip() {
        let t = UNIX_EPOCH + Duration::from_secs(1);
        let bytes = format_entry(t, true, b"it broke: a b");
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(
            text,
            "1970-01-01T00:00:01.000000000Z stderr F it broke: a b\n"
        );
        let e = parse_entry(text.trim_end_matches('\n')).unwrap();
        assert_eq!((e.stream, e.line), ("stderr", "it broke: a b"));
        assert_eq!(parse_entry("garbage"), None);
        let empty = String::from_utf8(format_entry(t, false, b"")).unwrap();
        assert_eq!(parse_entry(empty.trim_end_matches('\n')).unwrap().line, "");
    }
}
