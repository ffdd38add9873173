//! Per-app isolator flags (`--memory`, `--cpu`, `--cpu-shares`,
//! `--caps-retain`, `--caps-remove`, `--seccomp`, `--oom-score-adj`) turned
//! into appc isolators that replace the image's of the same kind.

use abi::schema::{parse_quantity_bytes, parse_quantity_millis, Isolator, IsolatorValue};
use anyhow::{anyhow, bail, Context as _, Result};

use super::apps::AppFlags;

pub fn isolators_from_flags(f: &AppFlags) -> Result<Vec<Isolator>> {
    let mut values = Vec::new();
    if let Some(m) = &f.memory {
        let bytes = parse_quantity_bytes(m).with_context(|| format!("invalid --memory {m:?}"))?;
        values.push(IsolatorValue::ResourceMemory {
            request: Some(bytes),
            limit: Some(bytes),
        });
    }
    if let Some(c) = &f.cpu {
        let millis = parse_quantity_millis(c).with_context(|| format!("invalid --cpu {c:?}"))?;
        values.push(IsolatorValue::ResourceCpu {
            request: Some(millis),
            limit: Some(millis),
        });
    }
    if let Some(s) = &f.cpu_shares {
        let shares: u64 = s
            .parse()
            .map_err(|_| anyhow!("invalid --cpu-shares {s:?}: expected a number"))?;
        values.push(IsolatorValue::CpuShares(shares));
    }
    if let Some(o) = &f.oom_score_adj {
        let adj: i32 = o
            .parse()
            .map_err(|_| anyhow!("invalid --oom-score-adj {o:?}: expected -1000..1000"))?;
        values.push(IsolatorValue::OomScoreAdj(adj));
    }
    match (&f.caps_retain, &f.caps_remove) {
        (Some(_), Some(_)) => {
            bail!("--caps-retain and --caps-remove cannot both be given for one app")
        }
        (Some(r), None) => values.push(IsolatorValue::CapabilitiesRetainSet(cap_list(r)?)),
        (None, Some(r)) => values.push(IsolatorValue::CapabilitiesRemoveSet(cap_list(r)?)),
        (None, None) => {}
    }
    if let Some(s) = &f.seccomp {
        values.push(parse_seccomp(s)?);
    }
    values
        .iter()
        .map(|v| Isolator::from_typed(v).map_err(|e| anyhow!("{e}")))
        .collect()
}

fn cap_list(s: &str) -> Result<Vec<String>> {
    let caps: Vec<String> = s
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| {
            let up = c.to_ascii_uppercase();
            if up.starts_with("CAP_") {
                up
            } else {
                format!("CAP_{up}")
            }
        })
        .collect();
    if caps.is_empty() {
        bail!("empty capability list; name capabilities like CAP_NET_ADMIN");
    }
    Ok(caps)
}

/// `mode=retain|remove[,errno=EPERM],syscall,...`
fn parse_seccomp(s: &str) -> Result<IsolatorValue> {
    let mut mode = None;
    let mut errno = None;
    let mut set = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        match item.split_once('=') {
            Some(("mode", m)) => mode = Some(m.to_string()),
            Some(("errno", e)) => errno = Some(e.to_string()),
            Some((k, _)) => bail!("invalid --seccomp: unknown key {k:?}"),
            None => set.push(item.to_string()),
        }
    }
    if set.is_empty() {
        bail!("invalid --seccomp {s:?}: no syscalls given; use mode=retain|remove[,errno=E],syscall,...");
    }
    match mode.as_deref() {
        Some("retain") => Ok(IsolatorValue::SeccompRetainSet { set, errno }),
        Some("remove") => Ok(IsolatorValue::SeccompRemoveSet { set, errno }),
        _ => bail!("invalid --seccomp {s:?}: mode must be retain or remove"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_isolators() {
        let f = AppFlags {
            memory: Some("50M".into()),
            caps_retain: Some("net_admin,CAP_KILL".into()),
            seccomp: Some("mode=remove,errno=ENOSYS,reboot,mount".into()),
            ..Default::default()
        };
        let isos = isolators_from_flags(&f).unwrap();
        let names: Vec<&str> = isos.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "resource/memory",
                "os/linux/capabilities-retain-set",
                "os/linux/seccomp-remove-set"
            ]
        );
        let bad = AppFlags {
            caps_retain: Some("CAP_KILL".into()),
            caps_remove: Some("CAP_KILL".into()),
            ..Default::default()
        };
        assert!(isolators_from_flags(&bad).is_err());
        let bad = AppFlags {
            memory: Some("1K".into()),
            ..Default::default()
        };
        assert!(isolators_from_flags(&bad).is_err());
    }
}
