//! Per-process settings of an app: `no_new_privs` and the OOM score.

use std::io::{self, Write};

/// Errors setting a process attribute.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("setting no_new_privs (prctl PR_SET_NO_NEW_PRIVS): {0}")]
    NoNewPrivs(#[source] io::Error),
    #[error("reading no_new_privs (prctl PR_GET_NO_NEW_PRIVS): {0}")]
    GetNoNewPrivs(#[source] io::Error),
    #[error("oom_score_adj {0} is outside -1000..=1000")]
    OomScoreRange(i32),
    #[error("writing {value} to /proc/self/oom_score_adj (lowering it needs CAP_SYS_RESOURCE): {source}")]
    OomScore {
        value: i32,
        #[source]
        source: io::Error,
    },
}

/// Sets no_new_privs on the calling thread (inherited across fork and
/// exec, never unset): exec can no longer grant privileges through setuid
/// bits or file capabilities, and seccomp filters load without
/// CAP_SYS_ADMIN.
pub fn set_no_new_privs() -> Result<(), ProcessError> {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes only integer arguments.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(ProcessError::NoNewPrivs(io::Error::last_os_error()));
    }
    Ok(())
}

/// Whether no_new_privs is set on the calling thread.
pub fn no_new_privs() -> Result<bool, ProcessError> {
    // SAFETY: PR_GET_NO_NEW_PRIVS takes only integer arguments and returns
    // the flag.
    let rc = unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) };
    if rc < 0 {
        return Err(ProcessError::GetNoNewPrivs(io::Error::last_os_error()));
    }
    Ok(rc == 1)
}

/// Writes the calling process's `oom_score_adj` (-1000..=1000; inherited
/// by children). Negative values need CAP_SYS_RESOURCE, so call this before
/// dropping privileges. Allocates nothing when it succeeds.
pub fn set_oom_score_adj(value: i32) -> Result<(), ProcessError> {
    if !(-1000..=1000).contains(&value) {
        return Err(ProcessError::OomScoreRange(value));
    }
    // Formatted on the stack: this runs between fork and exec.
    let mut buf = [0u8; 8];
    let mut cursor = io::Cursor::new(&mut buf[..]);
    write!(cursor, "{value}").expect("-1000..=1000 fits in 8 bytes");
    let len = cursor.position() as usize;
    std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/oom_score_adj")
        .and_then(|mut f| f.write_all(&buf[..len]))
        .map_err(|source| ProcessError::OomScore { value, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_range_checked_before_writing() {
        assert!(matches!(
            set_oom_score_adj(1001),
            Err(ProcessError::OomScoreRange(1001))
        ));
    }
}
