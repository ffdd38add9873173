//! The pod's own journal, as rkt's stage1 kept one: on a host that runs
//! systemd-journald, `run` starts the host's journald binary for the pod,
//! writing to `$pod/journald/log/journal/<pod machine id>/`, which the pod's
//! root shows at `/var/log/journal` (rkt's place for it). machined opens
//! that root through the pod's PID 1, so `journalctl -M rkt-<uuid> [-t app]`
//! reads it, as rkt documented; the files stay until `gc`.
//!
//! That journald runs on the host side in mount and UTS namespaces of its
//! own, where `/run`, `/var/log`, `/etc/machine-id` and `/etc/systemd` are
//! the pod's (its `journald.conf`, also the last drop-in: no kernel
//! messages, no audit, no forwarding, a size cap) and the hostname is the pod's, so its entries
//! carry it. It dies with `run`.
//!
//! machined forgets the pod when it ends. As rkt did, when the host keeps
//! a persistent journal (`/var/log/journal` exists) the pod's journal
//! directory is linked in there under the pod's machine id, so the host's
//! `journalctl -m _MACHINE_ID=<id>` still finds an exited pod's output
//! while the pod stays in `run` (the link names that directory: once `gc`
//! marks the pod garbage it dangles); `gc` removes the link.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use thiserror::Error;

use abi::pod_dir::{JOURNALD_DIR, JOURNAL_FILES};
use nix::mount::MsFlags;
use stage1_common::journal::{Journal, HOST_SOCKET};

use crate::machine::machine_id;
use stage1_common::mount as mnt;

/// Where Debian (and merged-/usr distributions) keep journald.
const JOURNALD_BINARIES: [&str; 2] = [
    "/lib/systemd/systemd-journald",
    "/usr/lib/systemd/systemd-journald",
];

/// How long journald may take to create its socket before the pod goes
/// on without a journal.
const START_TIMEOUT: Duration = Duration::from_secs(5);
/// How long journald may take to flush and exit when the pod ends.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// The host's persistent journal, where the pod's journal is linked.
const HOST_JOURNAL: &str = "/var/log/journal";

/// Below the stage1 rootfs: the pod journald's syslog socket, which the
/// pod's PID 1 shows as `/dev/log` (and so do its apps).
pub const POD_SYSLOG_SOCKET: &str = "var/log/dev-log";

/// The pod journald's settings: the pod's output only, kept in the pod
/// directory, capped in size.
const JOURNALD_CONF: &str = "\
# Written by rkt's ns stage1 for the pod's own journald.
[Journal]
Storage=persistent
SystemMaxUse=64M
SystemMaxFileSize=8M
ReadKMsg=no
Audit=no
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
";

#[derive(Debug, Error)]
pub enum PodJournalError {
    #[error("cannot prepare the pod's journal in {path:?}: {source}")]
    Prepare {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0:?} is not a pod UUID; the pod's journal is named after it")]
    Uuid(String),
    #[error("cannot start the pod's journald ({binary}) in namespaces of its own: {source}")]
    Spawn {
        binary: &'static str,
        #[source]
        source: io::Error,
    },
    #[error(
        "the pod's journald exited before it was ready ({status}); its messages are in {log:?}"
    )]
    Exited {
        status: std::process::ExitStatus,
        log: PathBuf,
    },
    #[error("the pod's journald did not create its socket within {0:?}")]
    Timeout(Duration),
    #[error("cannot show the pod's journal in its root: {0}")]
    Bind(#[source] stage1_common::mount::MountError),
    #[error("cannot link the pod's journal into the host's as {path:?}: {source}")]
    Link {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn prepare(path: &Path, r: io::Result<()>) -> Result<(), PodJournalError> {
    r.map_err(|source| PodJournalError::Prepare {
        path: path.to_path_buf(),
        source,
    })
}

/// A running journald of the pod.
pub struct PodJournal {
    child: Child,
    socket_dir: PathBuf,
    journal_root: PathBuf,
    /// journald's own messages.
    log: PathBuf,
}

/// The host runs journald: its socket answers.
pub fn host_runs_journald() -> bool {
    UnixDatagram::unbound().is_ok_and(|s| s.connect(HOST_SOCKET).is_ok())
}

/// The pod's machine id as journald writes it: the UUID's 32 hex digits
/// (rkt's choice too); `None` for what is not a UUID.
pub fn pod_machine_id(uuid: &str) -> Option<String> {
    machine_id(uuid).map(|id| id.iter().map(|b| format!("{b:02x}")).collect())
}

/// Below the pod directory: what journald sees as `/var/log/journal`.
pub fn journal_root(pod_dir: &Path) -> PathBuf {
    pod_dir.join(JOURNAL_FILES)
}

impl PodJournal {
    /// Starts the pod's journald when the host runs one; `Ok(None)` when
    /// it does not. Does not wait for it: see [`PodJournal::connect`].
    pub fn start(
        pod_dir: &Path,
        uuid: &str,
        hostname: &str,
    ) -> Result<Option<Self>, PodJournalError> {
        let Some(binary) = JOURNALD_BINARIES
            .into_iter()
            .find(|b| Path::new(b).exists())
        else {
            return Ok(None);
        };
        if !host_runs_journald() {
            return Ok(None);
        }
        // It names files here and a link in the host's journal directory.
        let Some(id) = pod_machine_id(uuid) else {
            return Err(PodJournalError::Uuid(uuid.to_string()));
        };
        let base = pod_dir.join(JOURNALD_DIR);
        let run = base.join("run");
        let var_log = base.join("log");
        let etc_systemd = base.join("systemd");
        let machine_id = base.join("machine-id");
        let socket_dir = run.join("systemd/journal");
        prepare(&socket_dir, std::fs::create_dir_all(&socket_dir))?;
        // Straight to /var/log/journal: nothing will ask for the flush from
        // /run that a booting system's journald waits for.
        let flushed = socket_dir.join("flushed");
        prepare(&flushed, std::fs::write(&flushed, ""))?;
        let journal_root = journal_root(pod_dir);
        let journal = journal_root.join(&id);
        prepare(&journal, std::fs::create_dir_all(&journal))?;
        if let Err(e) = link_into_host(&journal, &id) {
            // Only the host's view of an exited pod's journal is lost.
            eprintln!("stage1: {e}");
        }
        prepare(&etc_systemd, std::fs::create_dir_all(&etc_systemd))?;
        let conf = etc_systemd.join("journald.conf");
        prepare(&conf, std::fs::write(&conf, JOURNALD_CONF))?;
        // Also as the last drop-in of the pod's /run: the host's vendor
        // drop-ins (/usr/lib/systemd/journald.conf.d) would otherwise
        // override the main file.
        let drop_in_dir = run.join("systemd/journald.conf.d");
        prepare(&drop_in_dir, std::fs::create_dir_all(&drop_in_dir))?;
        let drop_in = drop_in_dir.join("zz-rkt-pod.conf");
        prepare(&drop_in, std::fs::write(&drop_in, JOURNALD_CONF))?;
        prepare(&machine_id, std::fs::write(&machine_id, format!("{id}\n")))?;

        // Everything the child needs is built here: only syscalls run
        // between fork and exec.
        // `/run` last: the other sources (the pod directory, the target of
        // a host's /etc/machine-id link) may be below the host's /run.
        let binds = [
            (cstr(&var_log), c"/var/log".to_owned()),
            (cstr(&machine_id), c"/etc/machine-id".to_owned()),
            (cstr(&etc_systemd), c"/etc/systemd".to_owned()),
            (cstr(&run), c"/run".to_owned()),
        ];
        let hostname = hostname.as_bytes().to_vec();
        // journald's own messages (why it stopped, say) go to this file,
        // not to the host's kernel log; nothing of `run`'s environment
        // (NOTIFY_SOCKET, LISTEN_FDS, ...) reaches it.
        let log = base.join("journald.log");
        let log_file = std::fs::File::create(&log).map_err(|source| PodJournalError::Prepare {
            path: log.clone(),
            source,
        })?;
        let parent = std::process::id() as libc::pid_t;
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("SYSTEMD_LOG_TARGET", "console")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        // SAFETY: the closure only makes system calls on data prepared
        // before the fork.
        unsafe {
            command.pre_exec(move || isolate(&binds, &hostname, parent));
        }
        let child = command
            .spawn()
            .map_err(|source| PodJournalError::Spawn { binary, source })?;
        Ok(Some(PodJournal {
            child,
            socket_dir,
            journal_root,
            log,
        }))
    }

    /// Shows the journal at `/var/log/journal` of the pod's root, and its
    /// syslog socket at [`POD_SYSLOG_SOCKET`] (in the calling process's
    /// mount namespace, which PID 1 inherits).
    pub fn bind_into(&self, stage1_rootfs: &Path) -> Result<(), PodJournalError> {
        let target = stage1_rootfs.join("var/log/journal");
        prepare(&target, std::fs::create_dir_all(&target))?;
        // Read-only: the host's root (journald, journalctl) writes and
        // parses these files; the pod may only read them.
        mnt::bind(&self.journal_root, &target, false).map_err(PodJournalError::Bind)?;
        mnt::remount_bind(
            &target,
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        )
        .map_err(PodJournalError::Bind)?;
        let syslog = self.socket_dir.join("dev-log");
        let target = stage1_rootfs.join(POD_SYSLOG_SOCKET);
        prepare(&target, std::fs::File::create(&target).map(drop))?;
        if let Err(e) = mnt::bind(&syslog, &target, false) {
            // An empty file would show as /dev/log.
            let _ = std::fs::remove_file(&target);
            return Err(PodJournalError::Bind(e));
        }
        Ok(())
    }

    /// Waits for journald's socket and connects the pod's output to it.
    /// On failure journald is stopped and the pod runs without a journal.
    pub fn connect(&mut self, uuid: &str) -> Result<Journal, PodJournalError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let socket = self.socket_dir.join("socket");
        // journald makes its syslog socket too; /dev/log needs both.
        let syslog = self.socket_dir.join("dev-log");
        loop {
            if socket.exists() && syslog.exists() {
                // Through the directory's descriptor: the pod directory's
                // path may be longer than a socket address allows.
                let dir = std::fs::File::open(&self.socket_dir).map_err(|source| {
                    PodJournalError::Prepare {
                        path: self.socket_dir.clone(),
                        source,
                    }
                })?;
                let short = PathBuf::from(format!(
                    "/proc/self/fd/{}/socket",
                    std::os::fd::AsRawFd::as_raw_fd(&dir)
                ));
                if let Some(journal) = Journal::connect(&short, uuid) {
                    return Ok(journal);
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(PodJournalError::Exited {
                    status,
                    log: self.log.clone(),
                });
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(PodJournalError::Timeout(START_TIMEOUT));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Asks journald to flush and exit, and waits for it (bounded).
    pub fn stop(&mut self) {
        let pid = Pid::from_raw(self.child.id() as i32);
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PodJournal {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `/var/log/journal/<pod machine id>` → the pod's journal directory,
/// when the host keeps a persistent journal.
fn link_into_host(journal: &Path, id: &str) -> Result<(), PodJournalError> {
    if !Path::new(HOST_JOURNAL).is_dir() {
        return Ok(());
    }
    let link = Path::new(HOST_JOURNAL).join(id);
    let target = std::path::absolute(journal).unwrap_or_else(|_| journal.to_path_buf());
    match std::os::unix::fs::symlink(&target, &link) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && is_link_to(&link, &target) => Ok(()),
        Err(source) => Err(PodJournalError::Link { path: link, source }),
    }
}

fn is_link_to(link: &Path, target: &Path) -> bool {
    std::fs::read_link(link).is_ok_and(|t| t == target)
}

/// Removes the host's link to the pod's journal (for `gc`). The pod has
/// moved since (`run` → `exited-garbage` → `garbage`), so the link is
/// recognised by what it ends with; a link to anything else stays.
pub fn unlink_from_host(uuid: &str) -> Result<(), PodJournalError> {
    // What is not a UUID never got a link.
    let Some(id) = pod_machine_id(uuid) else {
        return Ok(());
    };
    let link = Path::new(HOST_JOURNAL).join(&id);
    let ours = Path::new(uuid).join(JOURNAL_FILES).join(&id);
    if !std::fs::read_link(&link).is_ok_and(|t| t.ends_with(&ours)) {
        return Ok(());
    }
    std::fs::remove_file(&link).map_err(|source| PodJournalError::Link { path: link, source })
}

fn cstr(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap_or_default()
}

/// In the forked child: journald's own mount and UTS namespaces, the
/// pod's files bound over the host's, death with `run`.
fn isolate(binds: &[(CString, CString)], hostname: &[u8], parent: libc::pid_t) -> io::Result<()> {
    let check = |r: libc::c_int| {
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    // SAFETY: plain system calls on valid NUL-terminated strings.
    unsafe {
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM))?;
        // `run` died before the prctl: nobody would stop this journald.
        if libc::getppid() != parent {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        check(libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWUTS))?;
        check(libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ))?;
        for (source, target) in binds {
            check(libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            ))?;
        }
        check(libc::sethostname(hostname.as_ptr().cast(), hostname.len()))?;
    }
    Ok(())
}
