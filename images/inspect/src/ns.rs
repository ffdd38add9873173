//! Namespaces and the hostname.

use std::fs;

/// `NetNS: net:[4026531992]` and friends, from /proc/self/ns/<kind>.
pub fn print_ns(kind: &str) -> Result<(), String> {
    let label = match kind {
        "net" => "NetNS",
        "ipc" => "IPCNS",
        "mnt" => "MountNS",
        "pid" => "PIDNS",
        "uts" => "UTSNS",
        other => return Err(format!("unknown namespace kind {other:?}")),
    };
    let path = format!("/proc/self/ns/{kind}");
    let target = fs::read_link(&path).map_err(|e| format!("reading link {path}: {e}"))?;
    println!("{label}: {}", target.display());
    Ok(())
}

pub fn print_hostname() -> Result<(), String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its full length; gethostname
    // NUL-terminates when the name fits, and we also cap at the length.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return Err(format!("gethostname: {}", std::io::Error::last_os_error()));
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    println!("Hostname: {}", String::from_utf8_lossy(&buf[..end]));
    Ok(())
}
