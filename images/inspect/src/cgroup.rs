//! Resource limits of the process's own cgroup, on cgroup v1 or v2.
//!
//! The cgroup directory is found from /proc/self/cgroup plus the mount's
//! root in /proc/self/mountinfo, so it works both on the host and inside a
//! pod where only the pod's subtree is mounted.

use std::fs;
use std::path::PathBuf;

pub fn print_memory_limit() -> Result<(), String> {
    let limit = match v1_dir("memory")? {
        Some(dir) => read(dir.join("memory.limit_in_bytes"))?,
        None => read(v2_dir()?.join("memory.max"))?,
    };
    println!("Memory Limit: {limit}");
    Ok(())
}

/// Quota in milli-cores, or `max` when unlimited.
pub fn print_cpu_quota() -> Result<(), String> {
    let (quota, period) = match v1_dir("cpu")? {
        Some(dir) => (
            read(dir.join("cpu.cfs_quota_us"))?,
            read(dir.join("cpu.cfs_period_us"))?,
        ),
        None => {
            let max = read(v2_dir()?.join("cpu.max"))?;
            let mut parts = max.split_whitespace();
            let quota = parts.next().unwrap_or("max").to_string();
            (quota, parts.next().unwrap_or("100000").to_string())
        }
    };
    if quota == "max" || quota == "-1" {
        println!("CPU Quota: max");
        return Ok(());
    }
    let quota: u64 = number(&quota)?;
    let period: u64 = number(&period)?;
    if period == 0 {
        return Err("cgroup CPU period is 0".to_string());
    }
    println!("CPU Quota: {}", quota * 1000 / period);
    Ok(())
}

/// v1 `cpu.shares`; on v2 `cpu.weight` converted back to shares the way
/// systemd/runc map shares to weights.
pub fn print_cpu_shares() -> Result<(), String> {
    let shares: u64 = match v1_dir("cpu")? {
        Some(dir) => number(&read(dir.join("cpu.shares"))?)?,
        None => {
            let weight: u64 = number(&read(v2_dir()?.join("cpu.weight"))?)?;
            2 + (weight.max(1) - 1) * 262_142 / 9_999
        }
    };
    println!("CPU Shares: {shares}");
    Ok(())
}

fn read(path: PathBuf) -> Result<String, String> {
    fs::read_to_string(&path)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("reading {}: {e}", path.display()))
}

fn number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse()
        .map_err(|_| format!("unexpected cgroup value {s:?}"))
}

/// A cgroup mount: where it is, which subtree it shows, its super options.
struct CgroupMount {
    root: String,
    mount_point: String,
    fstype: String,
    super_opts: String,
}

fn mounts() -> Result<Vec<CgroupMount>, String> {
    let info = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
    Ok(info.lines().filter_map(parse_mountinfo_line).collect())
}

fn parse_mountinfo_line(line: &str) -> Option<CgroupMount> {
    let (left, right) = line.split_once(" - ")?;
    let left: Vec<&str> = left.split(' ').collect();
    let mut right = right.split(' ');
    let fstype = right.next()?;
    let _source = right.next()?;
    let super_opts = right.next().unwrap_or("");
    if fstype != "cgroup" && fstype != "cgroup2" {
        return None;
    }
    Some(CgroupMount {
        root: unescape(left.get(3)?),
        mount_point: unescape(left.get(4)?),
        fstype: fstype.to_string(),
        super_opts: super_opts.to_string(),
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        if let (b'\\', Some(d)) = (b[i], octal) {
            out.push(d.iter().fold(0u8, |v, c| v.wrapping_mul(8) + (c - b'0')));
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// (controllers, path) of each line of /proc/self/cgroup.
fn own_cgroups() -> Result<Vec<(String, String)>, String> {
    let text = fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("reading /proc/self/cgroup: {e}"))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let _id = parts.next()?;
            Some((parts.next()?.to_string(), parts.next()?.to_string()))
        })
        .collect())
}

/// The directory of our cgroup in the v1 hierarchy holding `controller`,
/// or None when that controller is not on a v1 hierarchy.
fn v1_dir(controller: &str) -> Result<Option<PathBuf>, String> {
    let has = |list: &str| list.split(',').any(|c| c == controller);
    let Some((_, path)) = own_cgroups()?.into_iter().find(|(c, _)| has(c)) else {
        return Ok(None);
    };
    let mounts = mounts()?;
    let Some(m) = mounts
        .iter()
        .find(|m| m.fstype == "cgroup" && has(&m.super_opts))
    else {
        return Err(format!(
            "the {controller} cgroup hierarchy is not mounted (no cgroup mount in /proc/self/mountinfo)"
        ));
    };
    Ok(Some(join(m, &path)))
}

fn v2_dir() -> Result<PathBuf, String> {
    let path = own_cgroups()?
        .into_iter()
        .find(|(c, _)| c.is_empty())
        .map(|(_, p)| p)
        .ok_or("no cgroup v2 entry in /proc/self/cgroup and no v1 hierarchy for the controller")?;
    let mounts = mounts()?;
    let m = mounts
        .iter()
        .find(|m| m.fstype == "cgroup2")
        .ok_or("cgroup2 is not mounted (no cgroup2 in /proc/self/mountinfo)")?;
    Ok(join(m, &path))
}

/// Our cgroup's directory under mount `m`; when the mount shows only a
/// subtree that does not contain our path (a pod's view), its top.
fn join(m: &CgroupMount, path: &str) -> PathBuf {
    let root = m.root.trim_end_matches('/');
    let rel = path
        .strip_prefix(root)
        .filter(|r| r.is_empty() || r.starts_with('/'))
        .unwrap_or("");
    let dir = PathBuf::from(format!("{}{}", m.mount_point, rel));
    if dir.exists() {
        dir
    } else {
        PathBuf::from(&m.mount_point)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines() {
        let l = "35 25 0:30 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory";
        let m = parse_mountinfo_line(l).unwrap();
        assert_eq!(m.mount_point, "/sys/fs/cgroup/memory");
        assert_eq!(m.super_opts, "rw,memory");
        let l = "35 25 0:30 /a\\040b /x shared:1 - cgroup2 cgroup2 rw";
        let m = parse_mountinfo_line(l).unwrap();
        assert_eq!(m.root, "/a b");
        assert!(parse_mountinfo_line("1 2 0:1 / / rw - ext4 /dev/sda rw").is_none());
    }

    #[test]
    fn join_strips_mount_root() {
        let m = CgroupMount {
            root: "/".into(),
            mount_point: "/proc".into(),
            fstype: "cgroup".into(),
            super_opts: String::new(),
        };
        assert_eq!(join(&m, "/self"), PathBuf::from("/proc/self"));
        assert_eq!(join(&m, "/no-such-dir"), PathBuf::from("/proc"));
    }
}
