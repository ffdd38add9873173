//! Output helpers shared by the listing commands: Go-tabwriter-style tables and
//! the humanized times and sizes rkt prints.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A table written like Go's `tabwriter` with rkt's settings (minwidth 0,
/// tabwidth 8, padding 1, pad character `\t`): each column is padded with tabs
/// to a multiple of 8 wide enough for its widest cell plus one.
#[derive(Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    pub fn render(&self) -> String {
        const TAB: usize = 8;
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0usize; columns];
        for row in &self.rows {
            // The last cell of a row is not a column: tabwriter leaves it unpadded.
            for (i, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let widths: Vec<usize> = widths
            .into_iter()
            .map(|w| (w + 1).div_ceil(TAB) * TAB)
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                out.push_str(cell);
                if i + 1 < row.len() {
                    let len = cell.chars().count();
                    let tabs = (widths[i] - len).div_ceil(TAB).max(1);
                    out.extend(std::iter::repeat_n('\t', tabs));
                }
            }
            out.push('\n');
        }
        out
    }
}

/// "3 minutes ago", as go-humanize's `Time` prints it.
pub fn humanize_since(t: SystemTime, now: SystemTime) -> String {
    let (d, suffix) = match now.duration_since(t) {
        Ok(d) => (d, "ago"),
        Err(e) => (e.duration(), "from now"),
    };
    let secs = d.as_secs();
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    const WEEK: u64 = 7 * DAY;
    const MONTH: u64 = 30 * DAY;
    const YEAR: u64 = 12 * MONTH;
    let plural = |n: u64, unit: &str| {
        if n == 1 {
            format!("1 {unit} {suffix}")
        } else {
            format!("{n} {unit}s {suffix}")
        }
    };
    match secs {
        0 => "now".to_string(),
        s if s < MINUTE => plural(s, "second"),
        s if s < 2 * MINUTE => format!("1 minute {suffix}"),
        s if s < HOUR => plural(s / MINUTE, "minute"),
        s if s < 2 * HOUR => format!("1 hour {suffix}"),
        s if s < DAY => plural(s / HOUR, "hour"),
        s if s < 2 * DAY => format!("1 day {suffix}"),
        s if s < WEEK => plural(s / DAY, "day"),
        s if s < 2 * WEEK => format!("1 week {suffix}"),
        s if s < MONTH => plural(s / WEEK, "week"),
        s if s < 2 * MONTH => format!("1 month {suffix}"),
        s if s < YEAR => plural(s / MONTH, "month"),
        s if s < 2 * YEAR => format!("1 year {suffix}"),
        s => plural(s / YEAR, "year"),
    }
}

/// Bytes in IEC units, as go-humanize's `IBytes` prints them ("79 MiB").
pub fn humanize_bytes(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 10 {
        return format!("{n} B");
    }
    let exp = ((n as f64).ln() / 1024f64.ln()).floor() as usize;
    let exp = exp.min(UNITS.len() - 1);
    let val = (n as f64 / 1024f64.powi(exp as i32) * 10.0 + 0.5).floor() / 10.0;
    if val < 10.0 {
        format!("{val:.1} {}", UNITS[exp])
    } else {
        format!("{val:.0} {}", UNITS[exp])
    }
}

/// Go layout `2006-01-02 15:04:05.999 -0700 MST` in UTC, rkt's `--full` time format.
pub fn full_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs() as i64;
    let (y, mo, da) = abi::calendar::civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    let (h, mi, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // .999 prints up to three fractional digits with trailing zeros removed.
    let millis = d.subsec_millis();
    let frac = if millis == 0 {
        String::new()
    } else {
        format!(".{millis:03}").trim_end_matches('0').to_string()
    };
    format!("{y:04}-{mo:02}-{da:02} {h:02}:{mi:02}:{s:02}{frac} +0000 UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_columns_with_tabs() {
        let mut t = Table::new();
        t.row(["UUID", "APP", "STATE"]);
        t.row(["0123456789", "a", "running"]);
        assert_eq!(t.render(), "UUID\t\tAPP\tSTATE\n0123456789\ta\trunning\n");
    }

    #[test]
    fn humanized_values() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(humanize_since(now, now), "now");
        assert_eq!(
            humanize_since(now - Duration::from_secs(150), now),
            "2 minutes ago"
        );
        assert_eq!(humanize_bytes(82_854_982), "79 MiB");
        assert_eq!(humanize_bytes(1536), "1.5 KiB");
        assert_eq!(
            full_time(UNIX_EPOCH + Duration::from_millis(1_500)),
            "1970-01-01 00:00:01.5 +0000 UTC"
        );
    }
}
