//! What the `net/check` entrypoint reports on stdout: one line per network
//! of the pod, in ADD's order, `NETWORK ok` or `NETWORK skipped`.

/// One network's outcome of a `net/check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetCheckOutcome {
    pub net: String,
    /// `false`: the network does not take CHECK (`disableCheck`, or a CNI
    /// version before 0.4.0).
    pub checked: bool,
}

impl NetCheckOutcome {
    /// `ok` or `skipped`.
    pub fn word(&self) -> &'static str {
        match self.checked {
            true => "ok",
            false => "skipped",
        }
    }

    /// The entrypoint's stdout line, without the newline.
    pub fn to_line(&self) -> String {
        format!("{} {}", self.net, self.word())
    }

    /// Reads a line [`NetCheckOutcome::to_line`] wrote; `None` for
    /// anything else.
    pub fn parse_line(line: &str) -> Option<Self> {
        let (net, word) = line.split_once(' ')?;
        let checked = match word {
            "ok" => true,
            "skipped" => false,
            _ => return None,
        };
        (!net.is_empty()).then(|| NetCheckOutcome {
            net: net.to_string(),
            checked,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        for checked in [true, false] {
            let o = NetCheckOutcome {
                net: "default".into(),
                checked,
            };
            assert_eq!(NetCheckOutcome::parse_line(&o.to_line()), Some(o));
        }
        for bad in ["default", "default fine", " ok", "default ok extra"] {
            assert_eq!(NetCheckOutcome::parse_line(bad), None, "{bad}");
        }
    }
}
