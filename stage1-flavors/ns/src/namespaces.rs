//! The pod's namespaces: which ones `--net` and `--ipc` ask for, the
//! loopback of a fresh network namespace, and the hostname.

use std::os::fd::{FromRawFd, OwnedFd};

use abi::stage1::{IdRange, IpcMode};
use networking::request::NetRequest;
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::{setgroups, setresgid, setresuid, ForkResult, Gid, Pid, Uid};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum NamespaceError {
    #[error("cannot create the pod's namespaces: {0}")]
    Clone(Errno),
    #[error("cannot write {path}: {source}")]
    IdMap {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot {step} in the pod's user namespace: {0}", errno)]
    Credentials { step: &'static str, errno: Errno },
    #[error(
        "cannot bring up the loopback interface of the pod's network namespace ({step}): {errno}"
    )]
    Loopback { step: &'static str, errno: Errno },
}

/// The pod's network, from `--net`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetMode {
    /// The host's network namespace.
    Host,
    /// A new network namespace with only `lo`, up.
    None,
    /// A network namespace of its own, set up by CNI plugins before the
    /// pod starts (kept by a bind mount until gc).
    Cni,
}

impl NetMode {
    /// What the parsed `--net` request asks for.
    pub fn of(request: &NetRequest) -> Self {
        match request {
            NetRequest::Host => NetMode::Host,
            NetRequest::None => NetMode::None,
            NetRequest::All | NetRequest::Named(_) => NetMode::Cni,
        }
    }
}

/// The namespaces `run` creates for the pod: the PID namespace is entered
/// by its first child, the supervisor, which makes its mount namespace
/// itself (it pivots into the stage1 rootfs, which `run` must not follow).
pub fn pod_namespaces(net: NetMode, ipc: Option<IpcMode>) -> CloneFlags {
    let mut flags = CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWPID;
    if ipc != Some(IpcMode::Parent) {
        flags |= CloneFlags::CLONE_NEWIPC;
    }
    // A CNI network namespace exists already: `run` joins it before the
    // clone, and the pod inherits it.
    if net == NetMode::None {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    flags
}

/// clone(2) without a new stack: fork(2) whose child starts in the new
/// namespaces `flags`. With `CLONE_NEWUSER` the user namespace is made
/// first and owns the others, so the child's root (once mapped) may set
/// the hostname, mount /proc and /sys and bring up loopback.
pub fn clone_into(flags: CloneFlags) -> Result<ForkResult, NamespaceError> {
    let raw = flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: clone(2) with a NULL stack behaves as fork(2): the child runs
    // on a copy of this stack. `run` is single-threaded, so no lock can be
    // held by a thread that does not exist in the child.
    let pid = unsafe { libc::syscall(libc::SYS_clone, raw, 0usize, 0usize, 0usize, 0usize) };
    match pid {
        -1 => Err(NamespaceError::Clone(Errno::last())),
        0 => Ok(ForkResult::Child),
        pid => Ok(ForkResult::Parent {
            child: Pid::from_raw(pid as i32),
        }),
    }
}

/// Maps the pod's ids `0..count` to the host's `shift..shift+count` in the
/// user namespace of `child` (written by the host's root).
pub fn write_id_maps(child: Pid, users: IdRange) -> Result<(), NamespaceError> {
    let map = format!("0 {} {}\n", users.shift, users.count);
    for file in ["uid_map", "gid_map"] {
        let path = format!("/proc/{child}/{file}");
        std::fs::write(&path, &map).map_err(|source| NamespaceError::IdMap { path, source })?;
    }
    Ok(())
}

/// Becomes root of the (mapped) user namespace: uid and gid 0, no
/// supplementary groups; the capabilities in it stay.
pub fn become_root() -> Result<(), NamespaceError> {
    let err = |step| move |errno| NamespaceError::Credentials { step, errno };
    setgroups(&[]).map_err(err("setgroups"))?;
    let root_gid = Gid::from_raw(0);
    setresgid(root_gid, root_gid, root_gid).map_err(err("setresgid"))?;
    let root_uid = Uid::from_raw(0);
    setresuid(root_uid, root_uid, root_uid).map_err(err("setresuid"))
}

/// rkt's default hostname for a pod.
pub fn default_hostname(uuid: &str) -> String {
    format!("rkt-{uuid}")
}

/// The pod's hostname: `--hostname`, else rkt's default.
pub fn pod_hostname(args: &abi::stage1::RunArgs) -> String {
    args.hostname
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| default_hostname(&args.uuid))
}

/// Sets `IFF_UP` on `lo` in the current network namespace.
pub fn loopback_up() -> Result<(), NamespaceError> {
    let err = |step| move |errno| NamespaceError::Loopback { step, errno };
    // SAFETY: socket(2) with constant arguments; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(err("socket")(Errno::last()));
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain old data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    use std::os::fd::AsRawFd;
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags of `req`, a
    // valid ifreq that outlives the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(err("SIOCGIFFLAGS")(Errno::last()));
    }
    // SAFETY: the kernel filled the flags member of the union above.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    if flags & libc::IFF_UP as libc::c_short != 0 {
        // Already up (by `run`, where the pod's root may not change it).
        return Ok(());
    }
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: as above; SIOCSIFFLAGS only reads `req`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(err("SIOCSIFFLAGS")(Errno::last()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_values() {
        let mode = |s: &str| NetMode::of(&NetRequest::parse(s).unwrap());
        assert_eq!(mode("host"), NetMode::Host);
        assert_eq!(mode("none"), NetMode::None);
        for cni in ["default", "mynet:IP=10.0.0.2", "default,mynet", "all"] {
            assert_eq!(mode(cni), NetMode::Cni, "{cni}");
        }
    }

    #[test]
    fn namespaces_per_mode() {
        let f = pod_namespaces(NetMode::Host, None);
        assert!(f.contains(CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWPID));
        assert!(!f.contains(CloneFlags::CLONE_NEWNET));
        let f = pod_namespaces(NetMode::None, Some(IpcMode::Parent));
        assert!(f.contains(CloneFlags::CLONE_NEWNET));
        assert!(!f.contains(CloneFlags::CLONE_NEWIPC));
        assert!(pod_namespaces(NetMode::Host, Some(IpcMode::Private))
            .contains(CloneFlags::CLONE_NEWIPC));
        // The CNI namespace is joined, not made, by the clone.
        assert!(!pod_namespaces(NetMode::Cni, None).contains(CloneFlags::CLONE_NEWNET));
    }

    #[test]
    fn hostname() {
        assert_eq!(default_hostname("ab-cd"), "rkt-ab-cd");
    }
}
