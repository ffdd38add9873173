//! Who the process is and what it may do: ids, groups, capabilities,
//! seccomp, no_new_privs.

use std::fs;

pub fn print_user() {
    // SAFETY: the get*id calls take no arguments and cannot fail.
    let (uid, euid, gid, egid) = unsafe {
        (
            libc::getuid(),
            libc::geteuid(),
            libc::getgid(),
            libc::getegid(),
        )
    };
    println!("User: uid={uid} euid={euid} gid={gid} egid={egid}");
}

pub fn print_groups() -> Result<(), String> {
    let groups = supplementary_groups()?;
    let list: String = groups.iter().map(|g| format!(" {g}")).collect();
    println!("Groups:{list}");
    Ok(())
}

fn supplementary_groups() -> Result<Vec<libc::gid_t>, String> {
    // SAFETY: a zero size with a null list only asks for the count.
    let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    if n < 0 {
        return Err(format!("getgroups: {}", std::io::Error::last_os_error()));
    }
    let mut groups = vec![0; n as usize];
    // SAFETY: `groups` has room for exactly `n` entries.
    let n = unsafe { libc::getgroups(n, groups.as_mut_ptr()) };
    if n < 0 {
        return Err(format!("getgroups: {}", std::io::Error::last_os_error()));
    }
    groups.truncate(n as usize);
    Ok(groups)
}

/// Capability sets of process `pid` (0 = this process) from /proc.
pub fn print_caps(pid: u32) -> Result<(), String> {
    let path = if pid == 0 {
        "/proc/self/status".to_string()
    } else {
        format!("/proc/{pid}/status")
    };
    let status = fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
    for (key, label) in [
        ("CapEff", "effective"),
        ("CapPrm", "permitted"),
        ("CapBnd", "bounding"),
    ] {
        let value = status_field(&status, key).ok_or_else(|| format!("{path} has no {key}"))?;
        println!("Capability set: {label}: 0x{value}");
    }
    Ok(())
}

pub fn print_seccomp() -> Result<(), String> {
    let status = fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("reading /proc/self/status: {e}"))?;
    let mode = status_field(&status, "Seccomp")
        .ok_or("/proc/self/status has no Seccomp field (kernel without seccomp?)")?;
    println!("Seccomp: {mode}");
    Ok(())
}

pub fn print_no_new_privs() -> Result<(), String> {
    // SAFETY: PR_GET_NO_NEW_PRIVS takes no pointers; unused args must be 0.
    let v = unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) };
    if v < 0 {
        return Err(format!(
            "prctl(PR_GET_NO_NEW_PRIVS): {}",
            std::io::Error::last_os_error()
        ));
    }
    println!("no_new_privs: {v}");
    Ok(())
}

/// The value of `Key:\tvalue` in a /proc status file.
pub fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|r| r.strip_prefix(':'))
            .map(str::trim)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields() {
        let s = "Name:\tx\nCapEff:\t000001ffffffffff\nCapEffX:\t1\nSeccomp:\t2\n";
        assert_eq!(status_field(s, "CapEff"), Some("000001ffffffffff"));
        assert_eq!(status_field(s, "Seccomp"), Some("2"));
        assert_eq!(status_field(s, "CapBnd"), None);
    }
}
