//! Linux capabilities of an app: the set rkt computes from the
//! `os/linux/capabilities-{retain,remove}-set` isolators, and applying it to
//! the current process before it execs the app.
//!
//! rkt gave the set to systemd as `CapabilityBoundingSet=`, so the set is the
//! app's bounding set. What the app ends up holding follows from execve:
//! a root app gets permitted = effective = the set (the kernel grants root
//! its bounding set at exec); a non-root app holds nothing (changing uid away
//! from 0 clears permitted and effective) and can never gain more than the
//! set through setuid or file-capability binaries. Inheritable and ambient
//! sets are cleared so nothing outside the set survives exec
//! (CVE-2022-24769 is why runtimes stopped filling inheritable).

use std::fmt;
use std::io;

use abi::schema::IsolatorValue;

/// Errors computing or applying a capability set.
#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    #[error(
        "unknown capability {0:?}: use a Linux name such as CAP_NET_ADMIN (see capabilities(7))"
    )]
    UnknownCapability(String),
    #[error("capability retain and remove sets cannot both be given for one app; keep only one")]
    RetainAndRemove,
    #[error("dropping {cap} from the bounding set (needs CAP_SETPCAP): {source}")]
    BoundingDrop {
        cap: Capability,
        #[source]
        source: io::Error,
    },
    #[error("clearing the ambient capability set: {0}")]
    AmbientClear(#[source] io::Error),
    #[error("{op} of the current process: {source}")]
    CapSet {
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

/// Capability names by number (capabilities(7), `linux/capability.h`).
const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// rkt's (and appc's) default bounding set when an app has no capability
/// isolator.
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_AUDIT_WRITE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_KILL",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETUID",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETFCAP",
    "CAP_SYS_CHROOT",
];

/// One Linux capability, by kernel number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Capability(u8);

impl Capability {
    /// The kernel's number of this capability.
    pub fn number(self) -> u8 {
        self.0
    }

    /// Parses `CAP_NET_ADMIN`; case-insensitive, the `CAP_` prefix may be
    /// left out (`net_admin`), as systemd accepted.
    pub fn parse(name: &str) -> Result<Capability, CapsError> {
        let upper = name.trim().to_ascii_uppercase();
        let full = if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        };
        NAMES
            .iter()
            .position(|n| *n == full)
            .map(|i| Capability(i as u8))
            .ok_or_else(|| CapsError::UnknownCapability(name.to_string()))
    }

    /// The `CAP_…` name.
    pub fn name(self) -> &'static str {
        NAMES[usize::from(self.0)]
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of capabilities as the kernel's 64-bit mask (the layout of the
/// `Cap*` lines of `/proc/<pid>/status`). [`CapabilitySet::all`] also
/// covers capabilities newer than this table, so "all" keeps everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CapabilitySet(u64);

impl CapabilitySet {
    pub fn empty() -> CapabilitySet {
        CapabilitySet(0)
    }

    /// Every capability, including ones this code does not know by name.
    pub fn all() -> CapabilitySet {
        CapabilitySet(u64::MAX)
    }

    /// rkt's default set of 14.
    pub fn default_set() -> CapabilitySet {
        CapabilitySet::parse_names(DEFAULT_CAPABILITIES).expect("default names are known")
    }

    pub fn from_mask(mask: u64) -> CapabilitySet {
        CapabilitySet(mask)
    }

    /// The mask as in `/proc/<pid>/status`.
    pub fn mask(self) -> u64 {
        self.0
    }

    pub fn is_all(self) -> bool {
        self.0 == u64::MAX
    }

    pub fn contains(self, cap: Capability) -> bool {
        self.0 & (1 << cap.0) != 0
    }

    pub fn insert(&mut self, cap: Capability) {
        self.0 |= 1 << cap.0;
    }

    pub fn remove(&mut self, cap: Capability) {
        self.0 &= !(1 << cap.0);
    }

    /// Parses a list of capability names.
    pub fn parse_names<I, S>(names: I) -> Result<CapabilitySet, CapsError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = CapabilitySet::empty();
        for n in names {
            set.insert(Capability::parse(n.as_ref())?);
        }
        Ok(set)
    }

    /// The known capabilities in the set, by number.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        (0..NAMES.len() as u8)
            .map(Capability)
            .filter(move |c| self.contains(*c))
    }

    /// The `CAP_…` names in the set, by number.
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Capability::name).collect()
    }
}

/// The app's capability set by rkt's rules: no capability isolator gives
/// the default 14; retain-sets (several are allowed; their union is kept)
/// give exactly those; remove-sets give the default minus those (removing
/// one outside the default is a no-op). `insecure` is
/// `--insecure-options=capabilities`: every capability.
pub fn capability_set(
    isolators: &[IsolatorValue],
    insecure: bool,
) -> Result<CapabilitySet, CapsError> {
    let mut retain: Option<CapabilitySet> = None;
    let mut remove: Option<CapabilitySet> = None;
    for iso in isolators {
        match iso {
            IsolatorValue::CapabilitiesRetainSet(names) => {
                let set = CapabilitySet::parse_names(names)?;
                let acc = retain.get_or_insert(CapabilitySet::empty());
                acc.0 |= set.0;
            }
            IsolatorValue::CapabilitiesRemoveSet(names) => {
                let set = CapabilitySet::parse_names(names)?;
                let acc = remove.get_or_insert(CapabilitySet::empty());
                acc.0 |= set.0;
            }
            _ => {}
        }
    }
    if insecure {
        return Ok(CapabilitySet::all());
    }
    match (retain, remove) {
        (Some(_), Some(_)) => Err(CapsError::RetainAndRemove),
        (Some(set), None) => Ok(set),
        (None, Some(set)) => Ok(CapabilitySet(CapabilitySet::default_set().0 & !set.0)),
        (None, None) => Ok(CapabilitySet::default_set()),
    }
}

/// Restricts the current process to `set` before it execs the app: drops
/// every other capability the kernel knows from the bounding set and clears
/// the inheritable and ambient sets. Call it while still root with
/// CAP_SETPCAP, before changing uid/gid; permitted and effective are left
/// alone so the rest of the setup (setuid, seccomp) can still run, and exec
/// then grants a root app exactly `set` (see the module docs).
/// `CapabilitySet::all()` changes nothing. Allocates nothing when it
/// succeeds, so it is safe between fork and exec.
pub fn apply_bounding(set: CapabilitySet) -> Result<(), CapsError> {
    if set.is_all() {
        return Ok(());
    }
    // PR_CAPBSET_READ fails past the kernel's last capability, which is how
    // the loop learns it without reading /proc (and allocating).
    for n in 0..64u8 {
        let cap = Capability(n);
        match bounding_has(cap) {
            None => break,
            Some(true) if !set.contains(cap) => {
                bounding_drop(cap).map_err(|source| CapsError::BoundingDrop { cap, source })?;
            }
            Some(_) => {}
        }
    }
    ambient_clear_all().map_err(CapsError::AmbientClear)?;
    let mut state = capget().map_err(|source| CapsError::CapSet {
        op: "capget",
        source,
    })?;
    state.inheritable = 0;
    capset(state).map_err(|source| CapsError::CapSet {
        op: "clearing the inheritable set",
        source,
    })
}

/// Limits permitted and effective to `set` now, for code that needs the
/// app's capabilities before exec (exec itself grants a root app its
/// bounding set). Without no_new_privs, load seccomp before this: loading a
/// filter needs CAP_SYS_ADMIN then.
pub fn limit_current(set: CapabilitySet) -> Result<(), CapsError> {
    let mut state = capget().map_err(|source| CapsError::CapSet {
        op: "capget",
        source,
    })?;
    state.permitted &= set.0;
    state.effective &= set.0;
    state.inheritable &= set.0;
    capset(state).map_err(|source| CapsError::CapSet {
        op: "capset",
        source,
    })
}

/// Whether `cap` is in the bounding set; `None` when the kernel does not
/// know `cap`.
fn bounding_has(cap: Capability) -> Option<bool> {
    // SAFETY: PR_CAPBSET_READ only reads the calling thread's bounding set;
    // all arguments are plain integers.
    let rc = unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap.0), 0, 0, 0) };
    (rc >= 0).then_some(rc == 1)
}

fn bounding_drop(cap: Capability) -> io::Result<()> {
    // SAFETY: PR_CAPBSET_DROP takes a capability number; no memory is passed.
    let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap.0), 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn ambient_clear_all() -> io::Result<()> {
    // SAFETY: PR_CAP_AMBIENT_CLEAR_ALL takes only integer arguments.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The three 64-bit sets of the calling thread.
#[derive(Debug, Clone, Copy)]
struct CapState {
    effective: u64,
    permitted: u64,
    inheritable: u64,
}

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`; version 3 uses two of them (low and
/// high 32 bits).
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

fn capget() -> io::Result<CapState> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and data are valid, properly laid out (repr(C)) and
    // data has the two elements version 3 writes.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok(CapState {
        effective: join(data[0].effective, data[1].effective),
        permitted: join(data[0].permitted, data[1].permitted),
        inheritable: join(data[0].inheritable, data[1].inheritable),
    })
}

fn capset(state: CapState) -> io::Result<()> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let split = |v: u64| (v as u32, (v >> 32) as u32);
    let (e0, e1) = split(state.effective);
    let (p0, p1) = split(state.permitted);
    let (i0, i1) = split(state.inheritable);
    let data = [
        CapData {
            effective: e0,
            permitted: p0,
            inheritable: i0,
        },
        CapData {
            effective: e1,
            permitted: p1,
            inheritable: i1,
        },
    ];
    // SAFETY: header and data are valid repr(C) values; the kernel only
    // reads data (two elements for version 3).
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (i, name) in NAMES.iter().enumerate() {
            let cap = Capability::parse(name).unwrap();
            assert_eq!(usize::from(cap.number()), i);
            assert_eq!(cap.name(), *name);
        }
        assert_eq!(Capability::parse("CAP_BPF").unwrap().number(), 39);
        assert_eq!(Capability::parse("perfmon").unwrap().number(), 38);
        assert_eq!(
            Capability::parse("cap_checkpoint_restore")
                .unwrap()
                .number(),
            40
        );
        let err = Capability::parse("CAP_FLY").unwrap_err();
        assert!(err.to_string().contains("unknown capability \"CAP_FLY\""));
    }

    #[test]
    fn default_set_is_rkts() {
        let set = CapabilitySet::default_set();
        assert_eq!(set.names().len(), 14);
        // The bits of the 14 defaults, as docker/runc print them.
        assert_eq!(set.mask(), 0xa80425fb);
    }

    #[test]
    fn set_rules() {
        let set = capability_set(&[], false).unwrap();
        assert_eq!(set, CapabilitySet::default_set());

        let retain = IsolatorValue::CapabilitiesRetainSet(vec!["CAP_NET_ADMIN".into()]);
        let retain2 = IsolatorValue::CapabilitiesRetainSet(vec!["CAP_KILL".into()]);
        let set = capability_set(&[retain.clone(), retain2], false).unwrap();
        assert_eq!(set.names(), ["CAP_KILL", "CAP_NET_ADMIN"]);

        let remove =
            IsolatorValue::CapabilitiesRemoveSet(vec!["CAP_CHOWN".into(), "CAP_SYS_ADMIN".into()]);
        let set = capability_set(std::slice::from_ref(&remove), false).unwrap();
        assert_eq!(set.names().len(), 13);
        assert!(!set.contains(Capability::parse("CAP_CHOWN").unwrap()));

        assert!(matches!(
            capability_set(&[retain.clone(), remove], false),
            Err(CapsError::RetainAndRemove)
        ));
        assert!(capability_set(&[retain], true).unwrap().is_all());
        let bad = IsolatorValue::CapabilitiesRetainSet(vec!["CAP_NOPE".into()]);
        assert!(matches!(
            capability_set(&[bad], false),
            Err(CapsError::UnknownCapability(_))
        ));
    }
}
