//! `--private-users=<shift>:<count>`: the host ids a pod's ids `0..count`
//! map to (rkt's scheme; stage0 records it in `private-users-prepared`).

use std::fmt;

/// Ids in a pod's range, as rkt uses.
pub const ID_RANGE_COUNT: u32 = 65536;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub shift: u32,
    pub count: u32,
}

impl IdRange {
    pub fn parse(s: &str) -> Option<Self> {
        let (shift, count) = s.trim().split_once(':')?;
        let range = IdRange {
            shift: shift.parse().ok()?,
            count: count.parse().ok()?,
        };
        (range.count > 0 && range.shift.checked_add(range.count).is_some()).then_some(range)
    }

    /// `id` shifted into the range; ids beyond it keep their value (they
    /// stay unmapped inside, as with rkt).
    pub fn shifted(&self, id: u32) -> u32 {
        if id < self.count {
            id + self.shift
        } else {
            id
        }
    }

    /// The inverse of [`IdRange::shifted`].
    pub fn unshifted(&self, id: u32) -> u32 {
        if (self.shift..self.shift + self.count).contains(&id) {
            id - self.shift
        } else {
            id
        }
    }
}

impl fmt::Display for IdRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.shift, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifting_both_ways() {
        let r = IdRange {
            shift: 65536 * 3,
            count: ID_RANGE_COUNT,
        };
        assert_eq!(IdRange::parse(&r.to_string()), Some(r));
        assert_eq!(r.shifted(0), 196608);
        assert_eq!(r.shifted(70000), 70000);
        assert_eq!(r.unshifted(196608 + 5), 5);
        assert_eq!(r.unshifted(5), 5);
        for bad in ["x", "1:", ":2", "4294967295:2", "5:0"] {
            assert_eq!(IdRange::parse(bad), None, "{bad}");
        }
    }
}
