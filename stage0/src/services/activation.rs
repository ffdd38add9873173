//! systemd socket activation (`sd_listen_fds`): the listening sockets a
//! service was started with, from descriptor 3.

use std::os::fd::RawFd;

/// The first descriptor systemd passes.
pub const LISTEN_FDS_START: RawFd = 3;

/// How many sockets systemd passed to this process (`LISTEN_FDS`, when
/// `LISTEN_PID` is absent or names this process); `None` without
/// activation.
pub fn listen_fds() -> Result<Option<i32>, String> {
    let Ok(fds) = std::env::var("LISTEN_FDS") else {
        return Ok(None);
    };
    if let Ok(pid) = std::env::var("LISTEN_PID") {
        if pid.trim() != std::process::id().to_string() {
            return Ok(None);
        }
    }
    match fds.trim().parse::<i32>() {
        Ok(n) if n >= 1 => Ok(Some(n)),
        Ok(_) => Err("LISTEN_FDS is 0: systemd passed no socket".into()),
        Err(_) => Err(format!("LISTEN_FDS={fds:?} is not a number")),
    }
}
