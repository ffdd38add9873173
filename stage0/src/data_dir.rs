//! The data directory's ownership. rkt's packages made it `root:rkt` with
//! mode 2750 (`tmpfiles.d/rkt.conf`), so that members of the `rkt` group can
//! list and inspect pods and images, and run the API service, without root.
//! When rkt creates the directory itself on a host that has that group, it
//! does the same; the setgid bit makes everything created below it inherit
//! the group, and the modes rkt uses below (0750 directories, 0640 files)
//! give the group read access. An existing directory is left as it is: its
//! layout is the administrator's.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::stat::Mode;
use nix::unistd::{chown, Group};

/// The group whose members may read the data directory.
pub const GROUP: &str = "rkt";

/// Creates `data_dir` (and its parents) if it does not exist, owned by group
/// [`GROUP`] with mode 2750 when the host has that group.
pub fn ensure(data_dir: &Path) -> io::Result<()> {
    match nix::unistd::mkdir(data_dir, Mode::from_bits_truncate(0o755)) {
        Ok(()) => {}
        Err(Errno::EEXIST) => return Ok(()),
        Err(Errno::ENOENT) => {
            if let Some(parent) = data_dir.parent() {
                std::fs::create_dir_all(parent)?;
            }
            match nix::unistd::mkdir(data_dir, Mode::from_bits_truncate(0o755)) {
                Ok(()) => {}
                Err(Errno::EEXIST) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        Err(e) => return Err(e.into()),
    }
    if let Some(group) = Group::from_name(GROUP).map_err(io::Error::from)? {
        chown(data_dir, None, Some(group.gid))?;
        std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o2750))?;
    }
    Ok(())
}

/// ext4's "top of directory hierarchies" flag (`chattr +T`).
const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;

/// Marks `dir` so ext4 places each new subdirectory in a block group of
/// its own choosing (Orlov) instead of next to `dir`. For the directories
/// below which rkt makes whole independent trees (pods, rendered images):
/// packed into one group, every new inode there makes ext4 without a
/// journal step over each inode freed in the last minute or so, which
/// after a `gc` of many pods doubled the time of `rkt run`. Best effort:
/// other filesystems refuse the ioctl, which changes nothing else.
pub fn set_topdir(dir: &Path) -> io::Result<()> {
    let dir = std::fs::File::open(dir)?;
    let flags = inode_flags(&dir)?;
    if flags & FS_TOPDIR_FL != 0 {
        return Ok(());
    }
    let flags = flags | FS_TOPDIR_FL;
    // SAFETY: an open file; the kernel reads one int from `flags`.
    if unsafe { libc::ioctl(dir.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether `dir` carries the flag [`set_topdir`] sets.
pub fn is_topdir(dir: &Path) -> io::Result<bool> {
    Ok(inode_flags(&std::fs::File::open(dir)?)? & FS_TOPDIR_FL != 0)
}

/// The file's inode flags (`lsattr`).
fn inode_flags(file: &std::fs::File) -> io::Result<libc::c_int> {
    let mut flags: libc::c_int = 0;
    // SAFETY: an open file; the kernel writes one int to `flags`.
    if unsafe { libc::ioctl(file.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_new_data_dir_takes_the_group_layout_when_the_group_exists() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/data");
        ensure(&dir).unwrap();
        let meta = std::fs::metadata(&dir).unwrap();
        match Group::from_name(GROUP).unwrap() {
            Some(g) => {
                assert_eq!(meta.gid(), g.gid.as_raw());
                assert_eq!(meta.mode() & 0o7777, 0o2750);
            }
            None => assert_eq!(meta.mode() & 0o2000, 0),
        }
    }

    #[test]
    fn an_existing_data_dir_is_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        ensure(tmp.path()).unwrap();
        let meta = std::fs::metadata(tmp.path()).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o711);
    }
}
