//! Seccomp filters from the `os/linux/seccomp-{retain,remove}-set`
//! isolators, compiled to classic BPF here (static stage1 binaries need no
//! libseccomp) and loaded with `seccomp(SECCOMP_SET_MODE_FILTER)`.
//!
//! rkt's rules (`stage1/init/common/seccomp.go`): without a seccomp
//! isolator the app gets `@rkt/default-whitelist`; a retain-set is a
//! whitelist, a remove-set a blacklist; `@appc.io/all` in a retain-set
//! turns filtering off; a set that expands to nothing (`@appc.io/empty`)
//! falls back to the default whitelist. A blocked call fails with the
//! isolator's `errno`, or kills the process with SIGSYS when there is none.
//! Only x86_64 is supported; calls made through another ABI (i386 `int
//! 0x80`, x32) are always blocked so a blacklist cannot be bypassed.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use abi::schema::IsolatorValue;
use libc::sock_filter;

use super::errno::ERRNOS;
use super::syscalls_x86_64::SYSCALLS;

/// Errors building or loading a seccomp filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("only one seccomp isolator (retain-set or remove-set) is allowed per app")]
    TooManyIsolators,
    #[error("unknown syscall {0:?} (not an x86_64 system call name; see syscalls(2))")]
    UnknownSyscall(String),
    #[error("unknown seccomp group {0:?}: use @rkt/default-whitelist, @rkt/default-blacklist, @docker/default-whitelist, @docker/default-blacklist, @appc.io/all or @appc.io/empty")]
    UnknownGroup(String),
    #[error("seccomp group {0:?} needs systemd's own tables, which this stage1 does not have; list the syscalls or use an @rkt/ or @docker/ group")]
    SystemdGroup(String),
    #[error("unknown errno {0:?}: use a name such as EPERM, ENOSYS or EACCES (see errno(3))")]
    UnknownErrno(String),
    #[error(
        "seccomp filter has {0} instructions, more than the kernel's 4096; use a shorter list"
    )]
    TooLong(usize),
    #[error(
        "loading the seccomp filter: {0} (unprivileged processes must set no_new_privs first)"
    )]
    Load(#[source] io::Error),
}

/// Docker's default whitelist as rkt carried it (rkt
/// `stage1/init/common/seccomp_wildcards.go`, from docker's
/// `profiles/seccomp/default.json`); `@rkt/default-whitelist` is the same
/// list. Names of other architectures (`chown32`, `_llseek`, …) are kept,
/// as there, and skipped on x86_64.
pub const DOCKER_DEFAULT_WHITELIST: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "alarm",
    "bind",
    "brk",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_getres",
    "clock_gettime",
    "clock_nanosleep",
    "close",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "memfd_create",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedsend",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "pause",
    "personality",
    "pipe",
    "pipe2",
    "poll",
    "ppoll",
    "prctl",
    "pread64",
    "preadv",
    "prlimit64",
    "pselect6",
    "pwrite64",
    "pwritev",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigreturn",
    "socket",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "syslog",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_settime",
    "timer_getoverrun",
    "timer_gettime",
    "timer_settime",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
    "arch_prctl",
    "modify_ldt",
    "chroot",
    "clone",
];

/// Calls added to Linux after rkt froze its list that a current libc uses
/// in place of the older calls the list has: glibc >= 2.35 registers `rseq`
/// in every process at startup, >= 2.34 tries `clone3` before `clone`,
/// `statx`, `faccessat2`, `close_range`, … back `stat`, `access`, `close`.
/// With the kill action an unlisted call is fatal (no ENOSYS fallback), so
/// `@rkt/default-whitelist` and `@docker/default-whitelist` include these,
/// as Docker's current profile does.
pub const MODERN_WHITELIST_ADDITIONS: &[&str] = &[
    "rseq",
    "clone3",
    "statx",
    "faccessat2",
    "close_range",
    "openat2",
    "pidfd_open",
    "pidfd_send_signal",
    "pidfd_getfd",
    "epoll_pwait2",
    "preadv2",
    "pwritev2",
    "membarrier",
    "io_pgetevents",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "fchmodat2",
    "futex_waitv",
];

/// Docker's default blacklist as rkt carried it (same source);
/// `@rkt/default-blacklist` is the same list.
pub const DOCKER_DEFAULT_BLACKLIST: &[&str] = &[
    "acct",
    "add_key",
    "adjtimex",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setns",
    "settimeofday",
    "stime",
    "swapon",
    "swapoff",
    "sysfs",
    "_sysctl",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
];

/// Calls every whitelist allows, so the stage1 can exec the app and the
/// app can exit at all (appc: "plus a minimal implementation whitelist";
/// systemd likewise always allowed these).
pub const MINIMAL_WHITELIST: &[&str] = &["execve", "exit", "exit_group", "rt_sigreturn"];

/// The names of a group, or `None` for a name that is not one.
/// `@appc.io/all` and `@appc.io/empty` are not lists; see [`seccomp_filter`].
pub fn group(name: &str) -> Option<Vec<&'static str>> {
    match name {
        "@rkt/default-whitelist" | "@docker/default-whitelist" => Some(default_whitelist()),
        "@rkt/default-blacklist" | "@docker/default-blacklist" => {
            Some(DOCKER_DEFAULT_BLACKLIST.to_vec())
        }
        _ => None,
    }
}

/// `@rkt/default-whitelist`: rkt's list plus [`MODERN_WHITELIST_ADDITIONS`].
fn default_whitelist() -> Vec<&'static str> {
    let mut v = DOCKER_DEFAULT_WHITELIST.to_vec();
    v.extend_from_slice(MODERN_WHITELIST_ADDITIONS);
    v
}

/// The x86_64 number of a system call.
pub fn syscall_number(name: &str) -> Option<i64> {
    SYSCALLS
        .binary_search_by(|(n, _)| n.cmp(&name))
        .ok()
        .map(|i| SYSCALLS[i].1)
}

/// The number of an errno name (`EPERM` → 1).
pub fn errno_number(name: &str) -> Option<u32> {
    ERRNOS
        .binary_search_by(|(n, _)| n.cmp(&name))
        .ok()
        .map(|i| ERRNOS[i].1)
}

/// Whether the listed calls are the only ones allowed or the ones denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterMode {
    Whitelist,
    Blacklist,
}

/// What happens to a blocked call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyAction {
    /// The call fails with this errno.
    Errno(u32),
    /// The process is killed with SIGSYS (rkt's default without `errno`).
    Kill,
}

/// A resolved filter: the calls by x86_64 number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompFilter {
    pub mode: FilterMode,
    /// Names resolved to numbers, sorted by name.
    pub syscalls: BTreeMap<String, i64>,
    pub deny: DenyAction,
}

impl SeccompFilter {
    /// Whether the filter lets `name` through.
    pub fn allows(&self, name: &str) -> bool {
        let listed = self.syscalls.contains_key(name);
        match self.mode {
            FilterMode::Whitelist => listed,
            FilterMode::Blacklist => !listed,
        }
    }

    /// Compiles the filter to BPF: the architecture check, then a
    /// balanced search tree over the sorted call numbers with short
    /// equality lists at its leaves. The kernel runs a filter over every
    /// call number when it is loaded (to cache the calls it always allows)
    /// and on every call the app makes; a linear list of the ~330 names of
    /// the default whitelist made both scan hundreds of instructions, the
    /// tree about fifteen.
    pub fn compile(&self) -> Result<Program, SeccompError> {
        let deny = match self.deny {
            DenyAction::Errno(e) => SECCOMP_RET_ERRNO | (e & SECCOMP_RET_DATA),
            DenyAction::Kill => SECCOMP_RET_KILL_PROCESS,
        };
        let (listed, unlisted) = match self.mode {
            FilterMode::Whitelist => (SECCOMP_RET_ALLOW, deny),
            FilterMode::Blacklist => (deny, SECCOMP_RET_ALLOW),
        };
        let mut numbers: Vec<u32> = self.syscalls.values().map(|nr| *nr as u32).collect();
        numbers.sort_unstable();
        numbers.dedup();
        let mut insns = vec![
            stmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA_ARCH_OFFSET),
            jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
            stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
            stmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA_NR_OFFSET),
            // x32 calls share AUDIT_ARCH_X86_64 but carry bit 30 in the
            // number, so a blacklist would miss them: always denied.
            jump(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 1),
            stmt(BPF_RET | BPF_K, deny),
        ];
        insns.extend(search_tree(&numbers, listed, unlisted));
        if insns.len() > BPF_MAXINSNS {
            return Err(SeccompError::TooLong(insns.len()));
        }
        Ok(Program(insns))
    }
}

/// At most this many numbers are compared one by one at a leaf.
const LEAF_SIZE: usize = 8;

/// BPF that returns `listed` when the loaded call number is one of the
/// sorted `numbers`, else `unlisted`.
fn search_tree(numbers: &[u32], listed: u32, unlisted: u32) -> Vec<sock_filter> {
    if numbers.len() <= LEAF_SIZE {
        // JEQ n1 … JEQ nk, RET unlisted, RET listed: each match jumps over
        // the comparisons after it and the RET unlisted.
        let mut out: Vec<sock_filter> = numbers
            .iter()
            .enumerate()
            .map(|(i, nr)| jump(BPF_JMP | BPF_JEQ | BPF_K, *nr, (numbers.len() - i) as u8, 0))
            .collect();
        out.push(stmt(BPF_RET | BPF_K, unlisted));
        out.push(stmt(BPF_RET | BPF_K, listed));
        return out;
    }
    let (low, high) = numbers.split_at(numbers.len() / 2);
    let pivot = high[0];
    let low = search_tree(low, listed, unlisted);
    let high = search_tree(high, listed, unlisted);
    let mut out = Vec::with_capacity(low.len() + high.len() + 2);
    match u8::try_from(low.len()) {
        Ok(skip) => out.push(jump(BPF_JMP | BPF_JGE | BPF_K, pivot, skip, 0)),
        Err(_) => {
            // Conditional jumps reach 255 instructions; JA reaches any.
            out.push(jump(BPF_JMP | BPF_JGE | BPF_K, pivot, 0, 1));
            out.push(stmt(BPF_JMP | BPF_JA, low.len() as u32));
        }
    }
    out.extend(low);
    out.extend(high);
    out
}

const BPF_LD: u16 = 0x00;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_JMP: u16 = 0x05;
const BPF_JA: u16 = 0x00;
const BPF_JEQ: u16 = 0x10;
const BPF_JGE: u16 = 0x30;
const BPF_K: u16 = 0x00;
const BPF_RET: u16 = 0x06;
const SECCOMP_DATA_NR_OFFSET: u32 = 0;
const SECCOMP_DATA_ARCH_OFFSET: u32 = 4;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_DATA: u32 = 0x0000_ffff;
const BPF_MAXINSNS: usize = 4096;

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// A compiled BPF program, ready for [`load`].
#[derive(Debug, Clone)]
pub struct Program(Vec<sock_filter>);

impl Program {
    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The app's filter by rkt's rules (module docs), or `None` when seccomp
/// is off: `@appc.io/all` in a retain-set, or `insecure`
/// (`--insecure-options=seccomp`).
pub fn seccomp_filter(
    isolators: &[IsolatorValue],
    insecure: bool,
) -> Result<Option<SeccompFilter>, SeccompError> {
    let mut found = None;
    for iso in isolators {
        let entry = match iso {
            IsolatorValue::SeccompRetainSet { set, errno } => (FilterMode::Whitelist, set, errno),
            IsolatorValue::SeccompRemoveSet { set, errno } => (FilterMode::Blacklist, set, errno),
            _ => continue,
        };
        if found.replace(entry).is_some() {
            return Err(SeccompError::TooManyIsolators);
        }
    }
    if insecure {
        return Ok(None);
    }
    let (mut mode, mut names, deny) = match found {
        None => (FilterMode::Whitelist, BTreeSet::new(), DenyAction::Kill),
        Some((mode, set, errno)) => {
            let deny = match errno {
                None => DenyAction::Kill,
                Some(name) => DenyAction::Errno(
                    errno_number(name).ok_or_else(|| SeccompError::UnknownErrno(name.clone()))?,
                ),
            };
            let mut names = BTreeSet::new();
            for item in set {
                match item.as_str() {
                    "@appc.io/all" if mode == FilterMode::Whitelist => return Ok(None),
                    "@appc.io/all" | "@appc.io/empty" => {}
                    g if g.starts_with("@systemd/") => {
                        return Err(SeccompError::SystemdGroup(g.to_string()))
                    }
                    g if g.starts_with('@') => {
                        let list = group(g).ok_or_else(|| SeccompError::UnknownGroup(g.into()))?;
                        // Group lists span architectures: keep the x86_64 calls.
                        names.extend(
                            list.iter()
                                .filter(|n| syscall_number(n).is_some())
                                .map(|n| n.to_string()),
                        );
                    }
                    name => {
                        if syscall_number(name).is_none() {
                            return Err(SeccompError::UnknownSyscall(name.to_string()));
                        }
                        names.insert(name.to_string());
                    }
                }
            }
            (mode, names, deny)
        }
    };
    if names.is_empty() {
        mode = FilterMode::Whitelist;
        names.extend(
            default_whitelist()
                .iter()
                .filter(|n| syscall_number(n).is_some())
                .map(|n| n.to_string()),
        );
    }
    if mode == FilterMode::Whitelist {
        names.extend(MINIMAL_WHITELIST.iter().map(|n| n.to_string()));
    }
    let syscalls = names
        .into_iter()
        .map(|n| {
            let nr = syscall_number(&n).expect("names were checked above");
            (n, nr)
        })
        .collect();
    Ok(Some(SeccompFilter {
        mode,
        syscalls,
        deny,
    }))
}

/// Loads `program` into the calling thread with
/// `seccomp(SECCOMP_SET_MODE_FILTER)`. Needs no_new_privs set or
/// CAP_SYS_ADMIN in the effective set. Unlike `seccompiler::apply_filter`
/// it does not set no_new_privs itself: rkt sets that only for non-root apps
/// or when asked.
pub fn load(program: &Program) -> Result<(), SeccompError> {
    let prog = libc::sock_fprog {
        len: u16::try_from(program.0.len()).map_err(|_| SeccompError::TooLong(program.0.len()))?,
        filter: program.0.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prog points at program.0, which outlives the call; the kernel
    // copies the instructions and keeps no pointer to them.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        return Err(SeccompError::Load(io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remove(set: &[&str], errno: Option<&str>) -> IsolatorValue {
        IsolatorValue::SeccompRemoveSet {
            set: set.iter().map(|s| s.to_string()).collect(),
            errno: errno.map(str::to_string),
        }
    }

    fn retain(set: &[&str], errno: Option<&str>) -> IsolatorValue {
        IsolatorValue::SeccompRetainSet {
            set: set.iter().map(|s| s.to_string()).collect(),
            errno: errno.map(str::to_string),
        }
    }

    #[test]
    fn tables() {
        assert_eq!(syscall_number("read"), Some(0));
        assert_eq!(syscall_number("mkdir"), Some(83));
        assert_eq!(syscall_number("getpid"), Some(39));
        assert_eq!(syscall_number("openat2"), Some(437));
        assert_eq!(syscall_number("fchmodat2"), Some(452));
        assert_eq!(syscall_number("chown32"), None);
        assert_eq!(errno_number("EPERM"), Some(1));
        assert_eq!(errno_number("ENOSYS"), Some(38));
        assert_eq!(errno_number("EACCES"), Some(13));
        assert_eq!(errno_number("EWOULDBLOCK"), Some(11));
        assert_eq!(errno_number("EBOGUS"), None);
        assert!(SYSCALLS.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(ERRNOS.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn default_is_rkt_whitelist_with_sigsys() {
        let f = seccomp_filter(&[], false).unwrap().unwrap();
        assert_eq!(f.mode, FilterMode::Whitelist);
        assert_eq!(f.deny, DenyAction::Kill);
        assert!(f.allows("read") && f.allows("clone") && f.allows("execve"));
        assert!(!f.allows("mount") && !f.allows("ptrace") && !f.allows("chown32"));
        assert!(f.allows("rseq") && f.allows("clone3") && f.allows("statx"));
        assert!(MODERN_WHITELIST_ADDITIONS
            .iter()
            .all(|n| syscall_number(n).is_some()));
        assert!(f.compile().unwrap().len() < BPF_MAXINSNS);
    }

    #[test]
    fn remove_set_is_blacklist() {
        let f = seccomp_filter(
            &[remove(
                &["mkdir", "@docker/default-blacklist"],
                Some("EPERM"),
            )],
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(f.mode, FilterMode::Blacklist);
        assert_eq!(f.deny, DenyAction::Errno(1));
        assert!(!f.allows("mkdir") && !f.allows("mount"));
        assert!(f.allows("getpid"));
        assert!(!f.syscalls.contains_key("vm86"), "not an x86_64 call");
    }

    #[test]
    fn wildcards() {
        assert_eq!(
            seccomp_filter(&[retain(&["@appc.io/all"], None)], false).unwrap(),
            None
        );
        let f = seccomp_filter(&[remove(&["@appc.io/empty"], Some("ENOSYS"))], false)
            .unwrap()
            .unwrap();
        assert_eq!(
            f.mode,
            FilterMode::Whitelist,
            "empty falls back to the default whitelist"
        );
        assert_eq!(f.deny, DenyAction::Errno(38));
        let f = seccomp_filter(&[retain(&["read", "write"], None)], false)
            .unwrap()
            .unwrap();
        assert!(f.allows("execve") && f.allows("exit_group") && !f.allows("open"));
        assert_eq!(seccomp_filter(&[], true).unwrap(), None);
    }

    /// Runs `program` the way the kernel does for the call `nr` made
    /// through the ABI `arch` (the instructions `compile` emits only).
    fn run(program: &Program, arch: u32, nr: u32) -> u32 {
        let mut pc = 0;
        let mut acc = 0;
        loop {
            let insn = program.0[pc];
            pc += 1;
            match insn.code {
                c if c == BPF_LD | BPF_W | BPF_ABS => {
                    acc = if insn.k == SECCOMP_DATA_ARCH_OFFSET {
                        arch
                    } else {
                        nr
                    }
                }
                c if c == BPF_JMP | BPF_JA => pc += insn.k as usize,
                c if c == BPF_JMP | BPF_JEQ | BPF_K || c == BPF_JMP | BPF_JGE | BPF_K => {
                    let taken = if c & 0xf0 == BPF_JEQ {
                        acc == insn.k
                    } else {
                        acc >= insn.k
                    };
                    pc += usize::from(if taken { insn.jt } else { insn.jf });
                }
                c if c == BPF_RET | BPF_K => return insn.k,
                c => panic!("unexpected instruction {c:#x}"),
            }
        }
    }

    /// The compiled tree gives every call number the verdict of the list,
    /// in both modes and with both deny actions; other ABIs are denied.
    #[test]
    fn compiled_filter_decides_like_the_list() {
        let filters = [
            seccomp_filter(&[], false).unwrap().unwrap(),
            seccomp_filter(
                &[remove(
                    &["@docker/default-blacklist", "mkdir"],
                    Some("EPERM"),
                )],
                false,
            )
            .unwrap()
            .unwrap(),
            seccomp_filter(
                &[retain(&["read", "write", "openat2"], Some("ENOSYS"))],
                false,
            )
            .unwrap()
            .unwrap(),
            seccomp_filter(&[remove(&["read"], None)], false)
                .unwrap()
                .unwrap(),
        ];
        for f in &filters {
            let program = f.compile().unwrap();
            let deny = match f.deny {
                DenyAction::Errno(e) => SECCOMP_RET_ERRNO | e,
                DenyAction::Kill => SECCOMP_RET_KILL_PROCESS,
            };
            let names: BTreeMap<i64, &str> =
                SYSCALLS.iter().map(|(name, nr)| (*nr, *name)).collect();
            for nr in 0..1024u32 {
                let expected = match names.get(&i64::from(nr)) {
                    Some(name) if f.allows(name) => SECCOMP_RET_ALLOW,
                    Some(_) => deny,
                    None if f.mode == FilterMode::Blacklist => SECCOMP_RET_ALLOW,
                    None => deny,
                };
                assert_eq!(
                    run(&program, AUDIT_ARCH_X86_64, nr),
                    expected,
                    "call {nr} in {f:?}"
                );
                assert_eq!(run(&program, AUDIT_ARCH_X86_64, nr | X32_SYSCALL_BIT), deny);
                assert_eq!(
                    run(&program, 0x4000_0003, nr),
                    SECCOMP_RET_KILL_PROCESS,
                    "i386"
                );
            }
        }
        let default = filters[0].compile().unwrap();
        assert!(default.len() < 500, "{} instructions", default.len());
    }

    /// A list long enough that a subtree is out of a conditional jump's
    /// reach: the `JA` form must decide like the list too.
    #[test]
    fn long_branches_take_the_ja_form() {
        let syscalls: BTreeMap<String, i64> = (0..900)
            .filter(|n| n % 3 != 0)
            .map(|n| (format!("call{n}"), n))
            .collect();
        let f = SeccompFilter {
            mode: FilterMode::Whitelist,
            syscalls,
            deny: DenyAction::Errno(1),
        };
        let program = f.compile().unwrap();
        assert!(
            program.0.iter().any(|i| i.code == BPF_JMP | BPF_JA),
            "no long jump in {} instructions",
            program.len()
        );
        for nr in 0..1024u32 {
            let expected = match nr < 900 && nr % 3 != 0 {
                true => SECCOMP_RET_ALLOW,
                false => SECCOMP_RET_ERRNO | 1,
            };
            assert_eq!(run(&program, AUDIT_ARCH_X86_64, nr), expected, "call {nr}");
        }
    }

    #[test]
    fn bad_input() {
        let e = seccomp_filter(&[remove(&["mkdirx"], None)], false).unwrap_err();
        assert!(e.to_string().contains("unknown syscall \"mkdirx\""), "{e}");
        let e = seccomp_filter(&[remove(&["@rkt/nope"], None)], false).unwrap_err();
        assert!(matches!(e, SeccompError::UnknownGroup(_)));
        let e = seccomp_filter(&[remove(&["@systemd/clock"], None)], false).unwrap_err();
        assert!(matches!(e, SeccompError::SystemdGroup(_)));
        let e = seccomp_filter(&[remove(&["mkdir"], Some("EFOO"))], false).unwrap_err();
        assert!(matches!(e, SeccompError::UnknownErrno(_)));
        let e = seccomp_filter(&[remove(&["mkdir"], None), retain(&["read"], None)], false)
            .unwrap_err();
        assert!(matches!(e, SeccompError::TooManyIsolators));
    }
}
