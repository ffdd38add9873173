//! Registration of the pod with systemd-machined as machine `rkt-<uuid>`,
//! as rkt's nspawn stage1 did, so that `machinectl` lists the pod and
//! `journalctl -M rkt-<uuid>` reads its journal (machined opens the pod's
//! root through its leader, our PID 1, whose root is the stage1 rootfs).
//!
//! machined asks which unit the leader runs in from the leader's cgroup in
//! the hierarchy systemd tracks processes with: the pod cgroup's scope name
//! (`machine-rkt-<uuid>.scope`). On a hybrid host that is the `unified`
//! cgroup2 tree, where rkt's controllers are not: PID 1 then joins a scope
//! of that name there, and the apps it forks follow.

use std::path::{Path, PathBuf};

use nix::unistd::Pid;
use thiserror::Error;

use stage1_common::cgroups::{pod_cgroup_path, Layout, PodCgroup, CGROUP_ROOT};

use crate::dbus::{Arg, Connection, DbusError, Method};

const MACHINED: &str = "org.freedesktop.machine1";

#[derive(Debug, Error)]
pub enum MachineError {
    #[error("cannot register the pod with systemd-machined: {0}")]
    Register(#[source] DbusError),
    #[error("cannot unregister the pod from systemd-machined: {0}")]
    Unregister(#[source] DbusError),
    #[error("cannot put the pod's PID 1 in its scope {path:?}: {source}")]
    Scope {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot put the pod's PID 1 in its cgroup: {0}")]
    Cgroup(#[from] stage1_common::cgroups::CgroupError),
}

/// The machine name of pod `uuid`.
pub fn machine_name(uuid: &str) -> String {
    format!("rkt-{uuid}")
}

fn manager_call(member: &str) -> Method<'_> {
    Method {
        destination: MACHINED,
        path: "/org/freedesktop/machine1",
        interface: "org.freedesktop.machine1.Manager",
        member,
    }
}

/// machined is not on the bus (or the bus has no such name at all).
fn is_absent(e: &DbusError) -> bool {
    matches!(e, DbusError::Call { name, .. }
        if name == "org.freedesktop.DBus.Error.ServiceUnknown"
            || name == "org.freedesktop.DBus.Error.NameHasNoOwner")
}

/// The 128-bit id machined records: the pod UUID's bytes (rkt used the
/// UUID as the pod's machine id too).
pub fn machine_id(uuid: &str) -> Option<[u8; 16]> {
    let hex: String = uuid.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut id = [0u8; 16];
    for (i, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(id)
}

/// The cgroup2 scope machined looks at on a hybrid host, if this is one.
fn hybrid_scope(uuid: &str) -> Option<PathBuf> {
    let hybrid = Layout::detect().is_ok_and(|l| l == Layout::Hybrid);
    hybrid.then(|| {
        Path::new(CGROUP_ROOT)
            .join("unified")
            .join(pod_cgroup_path(uuid))
    })
}

/// A system bus exists, so machined may be on it: worth moving PID 1 into
/// its scope and trying to register.
pub fn machined_may_run() -> bool {
    Path::new(crate::dbus::SYSTEM_BUS).exists()
}

/// Moves the pod's PID 1 (`leader`, in the host's PID namespace) into the
/// cgroup machined reads its unit from (see the module docs).
pub fn join_scope(uuid: &str, leader: Pid, cgroup: &PodCgroup) -> Result<(), MachineError> {
    match hybrid_scope(uuid) {
        Some(scope) => std::fs::create_dir_all(&scope)
            .and_then(|()| std::fs::write(scope.join("cgroup.procs"), leader.to_string()))
            .map_err(|source| MachineError::Scope {
                path: scope.clone(),
                source,
            }),
        None => Ok(cgroup.join_supervisor(leader)?),
    }
}

/// Registers pod `uuid` with leader `leader` and root `root` when the host
/// runs machined; `Ok(false)` when it does not.
pub fn register(uuid: &str, leader: Pid, root: &Path) -> Result<bool, MachineError> {
    let Some(mut bus) = Connection::system().map_err(MachineError::Register)? else {
        return Ok(false);
    };
    let id = machine_id(uuid).unwrap_or_default();
    let name = machine_name(uuid);
    let root = root.to_string_lossy();
    let args = [
        Arg::Str(&name),
        Arg::Bytes(&id),
        Arg::Str("rkt"),
        Arg::Str("container"),
        Arg::U32(leader.as_raw() as u32),
        Arg::Str(&root),
    ];
    match bus.call(manager_call("RegisterMachine"), &args) {
        Ok(()) => Ok(true),
        Err(e) if is_absent(&e) => Ok(false),
        Err(e) => Err(MachineError::Register(e)),
    }
}

/// Unregisters pod `uuid` (a no-op when machined is absent or does not
/// know it) and removes the hybrid scope, whose processes are gone with
/// the pod.
pub fn unregister(uuid: &str) -> Result<(), MachineError> {
    let scope = hybrid_scope(uuid);
    if let Some(scope) = &scope {
        // Empty once PID 1 and its apps are gone; rmdir fails otherwise,
        // and the cgroup teardown kills what is left in the pod's cgroups.
        let _ = std::fs::remove_dir(scope);
    }
    let Some(mut bus) = Connection::system().map_err(MachineError::Unregister)? else {
        return Ok(());
    };
    match bus.call(
        manager_call("UnregisterMachine"),
        &[Arg::Str(&machine_name(uuid))],
    ) {
        Ok(()) => Ok(()),
        Err(e)
            if is_absent(&e)
                || matches!(&e, DbusError::Call { name, .. }
                    if name == "org.freedesktop.machine1.NoSuchMachine") =>
        {
            Ok(())
        }
        Err(e) => Err(MachineError::Unregister(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_id_is_the_uuid() {
        let id = machine_id("0123abcd-4567-89ef-0123-456789abcdef").unwrap();
        assert_eq!(id[0], 0x01);
        assert_eq!(id[15], 0xef);
        assert_eq!(machine_id("not-a-uuid"), None);
    }
}
