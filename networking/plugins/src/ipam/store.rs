//! host-local's on-disk lease store, in the reference's format so either
//! implementation can take over the other's leases:
//!
//! * `<dataDir>/<network>/` holds one file per leased IP, named by the IP,
//!   containing `<containerID>\r\n<ifname>`;
//! * `last_reserved_ip.<rangeSetIndex>` holds the last IP handed out from
//!   that range set (round-robin allocation resumes after it);
//! * `lock` is flock'ed exclusively for the whole operation, which
//!   serialises concurrent plugin runs on the same network.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const LAST_IP_PREFIX: &str = "last_reserved_ip.";
const LINE_BREAK: &str = "\r\n";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to create data dir {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("failed to lock {path}: {source}")]
    Lock { path: PathBuf, source: io::Error },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

/// An open, locked lease directory. The lock is released when dropped
/// (closing the file drops the flock).
pub struct Store {
    dir: PathBuf,
    _lock: File,
}

/// One lease as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub ip: IpAddr,
    pub container_id: String,
    pub ifname: String,
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

impl Store {
    /// Opens (creating if needed) `<data_dir>/<network>` and takes its lock.
    pub fn open(data_dir: &Path, network: &str) -> Result<Self, StoreError> {
        let dir = data_dir.join(network);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&dir)
            .map_err(|source| StoreError::CreateDir {
                path: dir.clone(),
                source,
            })?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o750)
            .open(&lock_path)
            .map_err(|source| StoreError::Lock {
                path: lock_path.clone(),
                source,
            })?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(StoreError::Lock {
                path: lock_path,
                source: io::Error::last_os_error(),
            });
        }
        Ok(Store { dir, _lock: lock })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records `ip` for (id, ifname). Ok(false) when it is already taken.
    pub fn reserve(
        &self,
        id: &str,
        ifname: &str,
        ip: IpAddr,
        range_set: usize,
    ) -> Result<bool, StoreError> {
        let path = self.dir.join(ip.to_string());
        let mut f = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(io_err("failed to create lease", &path)(e)),
        };
        let content = format!("{}{LINE_BREAK}{ifname}", id.trim());
        if let Err(e) = f.write_all(content.as_bytes()) {
            // Leave no half-written lease behind.
            let _ = fs::remove_file(&path);
            return Err(io_err("failed to write lease", &path)(e));
        }
        let last = self.dir.join(format!("{LAST_IP_PREFIX}{range_set}"));
        fs::write(&last, ip.to_string()).map_err(io_err("failed to write", &last))?;
        Ok(true)
    }

    /// The last IP handed out from range set `range_set`, if recorded.
    pub fn last_reserved(&self, range_set: usize) -> Option<IpAddr> {
        let s = fs::read_to_string(self.dir.join(format!("{LAST_IP_PREFIX}{range_set}"))).ok()?;
        s.trim().parse().ok()
    }

    /// All leases in the directory. Files that are not leases (the lock, the
    /// last-reserved markers, anything unparsable) are skipped.
    pub fn leases(&self) -> Result<Vec<Lease>, StoreError> {
        let mut out = Vec::new();
        let rd = fs::read_dir(&self.dir).map_err(io_err("failed to read", &self.dir))?;
        for ent in rd.flatten() {
            let name = ent.file_name();
            let Some(ip) = name.to_str().and_then(|n| n.parse::<IpAddr>().ok()) else {
                continue;
            };
            let Ok(content) = fs::read_to_string(ent.path()) else {
                continue;
            };
            // Old reference versions wrote only the container id.
            let (id, ifname) = match content.split_once(LINE_BREAK) {
                Some((id, ifn)) => (id.trim(), ifn.trim()),
                None => (content.trim(), ""),
            };
            out.push(Lease {
                ip,
                container_id: id.to_string(),
                ifname: ifname.to_string(),
            });
        }
        out.sort_by_key(|l| crate::ipnet::to_u128(&l.ip));
        Ok(out)
    }

    /// IPs leased to (id, ifname).
    pub fn get_by_id(&self, id: &str, ifname: &str) -> Result<Vec<IpAddr>, StoreError> {
        Ok(self
            .leases()?
            .into_iter()
            .filter(|l| l.container_id == id.trim() && l.ifname == ifname)
            .map(|l| l.ip)
            .collect())
    }

    /// Removes one lease file; a missing file is fine (idempotent DEL).
    pub fn release(&self, ip: IpAddr) -> Result<(), StoreError> {
        let path = self.dir.join(ip.to_string());
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("failed to remove lease", &path)(e)),
        }
    }

    /// Releases every lease of (id, ifname).
    pub fn release_by_id(&self, id: &str, ifname: &str) -> Result<(), StoreError> {
        for ip in self.get_by_id(id, ifname)? {
            self.release(ip)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cni-store-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn reserve_release() {
        let d = tmpdir("rr");
        let s = Store::open(&d, "net").expect("open");
        let ip: IpAddr = "10.0.0.5".parse().expect("ip");
        assert!(s.reserve("c1", "eth0", ip, 0).expect("reserve"));
        assert!(!s.reserve("c2", "eth0", ip, 0).expect("reserve again"));
        assert_eq!(
            fs::read_to_string(d.join("net/10.0.0.5")).expect("read"),
            "c1\r\neth0"
        );
        assert_eq!(s.last_reserved(0), Some(ip));
        assert_eq!(s.get_by_id("c1", "eth0").expect("get"), vec![ip]);
        assert!(s.get_by_id("c1", "eth1").expect("get").is_empty());
        s.release_by_id("c1", "eth0").expect("release");
        s.release_by_id("c1", "eth0").expect("release twice");
        assert!(s.leases().expect("leases").is_empty());
        drop(s);
        let _ = fs::remove_dir_all(&d);
    }
}
