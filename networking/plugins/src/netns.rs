//! Network namespaces: open one by path and get a netlink socket inside it.
//!
//! The process switches into the namespace only long enough to create the
//! socket (setns, socket, setns back): a netlink socket keeps talking to the
//! namespace it was created in, so all later work runs from the host
//! namespace and nothing can leave the process stranded in the container's.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;

use crate::netlink::Socket;

/// statfs magic of nsfs (namespace files), and of procfs for /proc/PID/ns/net
/// on old kernels.
const NSFS_MAGIC: i64 = 0x6e73_6673;
const PROC_SUPER_MAGIC: i64 = 0x9fa0;

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("failed to open netns {path:?}: {source}")]
    Open { path: String, source: io::Error },
    #[error("{path:?} is not a valid network namespace")]
    NotNetns { path: String },
    #[error("failed to enter netns {path:?}: {source}")]
    Enter { path: String, source: io::Error },
    #[error("failed to open netlink socket in {path:?}: {source}")]
    Socket { path: String, source: io::Error },
}

impl NetnsError {
    /// Whether the namespace file is simply gone (DEL treats that as done).
    pub fn is_not_found(&self) -> bool {
        matches!(self, NetnsError::Open { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

pub struct NetNs {
    file: File,
    path: String,
}

fn setns(fd: RawFd) -> io::Result<()> {
    // SAFETY: setns on a descriptor we hold open; affects only this thread.
    if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl NetNs {
    pub fn open(path: &str) -> Result<NetNs, NetnsError> {
        let file = File::open(Path::new(path)).map_err(|source| NetnsError::Open {
            path: path.to_string(),
            source,
        })?;
        // SAFETY: fstatfs fills a plain struct for an open descriptor.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: st is a valid, writable statfs.
        let r = unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) };
        let magic = st.f_type as i64;
        if r != 0 || (magic != NSFS_MAGIC && magic != PROC_SUPER_MAGIC) {
            return Err(NetnsError::NotNetns {
                path: path.to_string(),
            });
        }
        Ok(NetNs {
            file,
            path: path.to_string(),
        })
    }

    /// The namespace this thread is in now.
    pub fn current() -> Result<NetNs, NetnsError> {
        NetNs::open("/proc/thread-self/ns/net")
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// A netlink socket operating inside this namespace.
    pub fn socket(&self) -> Result<Socket, NetnsError> {
        let here = NetNs::current()?;
        let enter = |ns: &NetNs| {
            setns(ns.fd()).map_err(|source| NetnsError::Enter {
                path: ns.path.clone(),
                source,
            })
        };
        enter(self)?;
        let sock = Socket::new();
        // Going back must not fail silently: the caller would otherwise act
        // on the container's namespace thinking it is the host's.
        enter(&here)?;
        sock.map_err(|source| NetnsError::Socket {
            path: self.path.clone(),
            source,
        })
    }
}
