//! Path protection (rkt's default, off with `--insecure-options=paths`):
//! kernel knobs under the app's /proc are read-only and files that leak
//! host details (kernel memory, symbols, keys, firmware) are hidden.

use std::path::Path;

use nix::mount::MsFlags;

use stage1_common::mount as mnt;

use super::RootfsError;

/// Below /proc: read-only, so the app cannot tune the host's kernel
/// (`sys` covers core_pattern, modprobe, panic_on_oom) or trigger sysrq.
pub const PROC_READ_ONLY: [&str; 5] = ["bus", "fs", "irq", "sys", "sysrq-trigger"];

/// Below /proc: hidden (files read as /dev/null, directories are empty).
pub const PROC_HIDDEN: [&str; 9] = [
    "kcore",
    "kallsyms",
    "config.gz",
    "keys",
    "timer_list",
    "sched_debug",
    "latency_stats",
    "acpi",
    "scsi",
];

/// Below /sys: hidden. /sys/fs stays visible: the app's cgroups are there.
pub const SYS_HIDDEN: [&str; 4] = ["firmware", "hypervisor", "module", "power"];

/// Applies the protection to the app's `proc` and `sys` (host paths of the
/// freshly mounted filesystems); `null` is the app's /dev/null, bound over
/// hidden files. Paths this kernel does not have are skipped.
pub fn protect(proc: &Path, sys: &Path, null: &Path) -> Result<(), RootfsError> {
    for name in PROC_READ_ONLY {
        let path = proc.join(name);
        if path.symlink_metadata().is_ok() {
            read_only(&path)?;
        }
    }
    let hidden = PROC_HIDDEN
        .iter()
        .map(|n| proc.join(n))
        .chain(SYS_HIDDEN.iter().map(|n| sys.join(n)));
    for path in hidden {
        match path.symlink_metadata() {
            Ok(meta) if meta.is_dir() => hide_dir(&path)?,
            Ok(_) => mnt::bind(null, &path, false)?,
            Err(_) => {}
        }
    }
    Ok(())
}

fn read_only(path: &Path) -> Result<(), RootfsError> {
    mnt::bind(path, path, false)?;
    mnt::remount_readonly(path, false)?;
    Ok(())
}

/// An empty read-only tmpfs over `dir`.
fn hide_dir(dir: &Path) -> Result<(), RootfsError> {
    let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mnt::mount_tmpfs(dir, flags, "size=4k,mode=0555")?;
    Ok(())
}
