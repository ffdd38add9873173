//! The few sysctls the plugins touch, through /proc/sys.

use std::io;

/// Turns on forwarding for the families in use (ptp and bridge route
/// container traffic through the host, as the reference does).
pub fn enable_forwarding(ipv4: bool, ipv6: bool) -> io::Result<()> {
    if ipv4 {
        set("net/ipv4/ip_forward", "1")?;
    }
    if ipv6 {
        set("net/ipv6/conf/all/forwarding", "1")?;
    }
    Ok(())
}

/// Writes a value unless it is already set (keeps read-only /proc/sys fine
/// when nothing needs changing).
pub fn set(key: &str, value: &str) -> io::Result<()> {
    let path = format!("/proc/sys/{key}");
    if std::fs::read_to_string(&path)
        .map(|v| v.trim() == value)
        .unwrap_or(false)
    {
        return Ok(());
    }
    std::fs::write(&path, value)
}
