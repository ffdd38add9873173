//! Runs the real fly entrypoints against pod directories built by hand, as
//! stage0 would prepare them (needs root: mounts, chroot, setuid).

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use stage1_common::mount::{has_mounts_under, mounts_under, unmount_all_under};

const UUID: &str = "6e9fd9e5-0bd4-4a0e-9bd5-8e3b0c0f3c39";

/// A pod directory in a tempdir. Dropping it unmounts anything left below
/// before the tempdir is removed (never rm -rf through a mount).
struct TestPod {
    base: tempfile::TempDir,
}

impl TestPod {
    fn new(app: Value, volumes: Value, mounts: Value) -> Self {
        let pod = TestPod {
            base: tempfile::tempdir().unwrap(),
        };
        let app_dir = pod.dir().join("stage1/rootfs/opt/stage2/app");
        let rootfs = app_dir.join("rootfs");
        for d in ["bin", "etc", "work", "real", "home/user1"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        // Absolute link: must be resolved inside the rootfs, not on the host.
        symlink("/bin/busybox", rootfs.join("bin/sh")).unwrap();
        symlink("/real", rootfs.join("link")).unwrap();
        std::fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nuser1:x:1000:1001::/home/user1:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\ngrp1:x:1001:user1\n").unwrap();
        std::fs::write(rootfs.join("marker"), "inside-the-app\n").unwrap();
        let image = json!({
            "acKind": "ImageManifest", "acVersion": "0.8.11", "name": "example.com/app",
            "labels": [{"name": "os", "value": "linux"}, {"name": "arch", "value": "amd64"}],
        });
        std::fs::write(app_dir.join("manifest"), image.to_string()).unwrap();
        std::fs::create_dir_all(pod.dir().join("appsinfo/app")).unwrap();
        std::fs::write(pod.dir().join("appsinfo/app/manifest"), image.to_string()).unwrap();
        pod.write_manifest(
            json!([{
                "name": "app",
                "image": {"id": "sha512-0123", "name": "example.com/app"},
                "app": app,
                "mounts": mounts,
            }]),
            volumes,
        );
        pod
    }

    fn write_manifest(&self, apps: Value, volumes: Value) {
        let manifest = json!({
            "acKind": "PodManifest", "acVersion": "0.8.11",
            "apps": apps, "volumes": volumes,
        });
        std::fs::write(self.dir().join("pod"), manifest.to_string()).unwrap();
    }

    fn base(&self) -> &Path {
        self.base.path()
    }

    fn dir(&self) -> PathBuf {
        self.base.path().join("pod")
    }

    fn rootfs(&self) -> PathBuf {
        self.dir().join("stage1/rootfs/opt/stage2/app/rootfs")
    }

    /// Starts fly-run as stage0 does: cwd = pod, pod dir flocked, fd in
    /// RKT_LOCK_FD. Returns the child and the test's copy of the lock fd.
    fn spawn_run(&self, extra: &[&str]) -> (Child, File) {
        self.spawn_run_with(extra, |_| {})
    }

    /// Moves the stage1 rootfs out of the pod (to `base/s1`) and starts
    /// fly-run the way stage0 starts overlay pods: in a new mount namespace
    /// where it is mounted back at `stage1/rootfs`. From the host, that
    /// directory is then empty.
    fn spawn_run_private_stage1(&self) -> (Child, File) {
        let s1 = self.private_stage1();
        let target = self.dir().join("stage1/rootfs");
        std::fs::rename(&target, &s1).unwrap();
        std::fs::create_dir(&target).unwrap();
        let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).unwrap();
        let (src, dst, slash) = (c(&s1), c(&target), c(Path::new("/")));
        self.spawn_run_with(&[], move |cmd| {
            // SAFETY: only unshare(2) and mount(2) on strings allocated
            // before the fork, which is async-signal-safe.
            unsafe {
                cmd.pre_exec(move || {
                    let none = std::ptr::null();
                    if libc::unshare(libc::CLONE_NEWNS) != 0
                        || libc::mount(
                            none,
                            slash.as_ptr(),
                            none,
                            libc::MS_REC | libc::MS_PRIVATE,
                            std::ptr::null(),
                        ) != 0
                        || libc::mount(
                            src.as_ptr(),
                            dst.as_ptr(),
                            none,
                            libc::MS_BIND | libc::MS_REC,
                            std::ptr::null(),
                        ) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        })
    }

    /// Where [`TestPod::spawn_run_private_stage1`] keeps the stage1 rootfs.
    fn private_stage1(&self) -> PathBuf {
        self.base().join("s1")
    }

    fn spawn_run_with(&self, extra: &[&str], setup: impl FnOnce(&mut Command)) -> (Child, File) {
        let lock = File::open(self.dir()).unwrap();
        lock.lock().unwrap();
        let fd = lock.as_raw_fd();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fly-run"));
        cmd.args(["--net=default", "--local-config=/etc/rkt"])
            .args(extra)
            .arg(UUID)
            .current_dir(self.dir())
            .env("RKT_LOCK_FD", fd.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: only an fcntl(2) between fork and exec, which is
        // async-signal-safe; clearing CLOEXEC here (not in the parent) keeps
        // other tests' children from inheriting this pod's lock.
        unsafe {
            cmd.pre_exec(move || {
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        setup(&mut cmd);
        (cmd.spawn().unwrap(), lock)
    }

    fn run(&self, extra: &[&str]) -> Output {
        let (child, _lock) = self.spawn_run(extra);
        child.wait_with_output().unwrap()
    }

    fn entrypoint(&self, bin: &str, args: &[&str]) -> Output {
        Command::new(bin)
            .args(args)
            .current_dir(self.dir())
            .output()
            .unwrap()
    }

    fn wait_for_pid(&self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(s) = std::fs::read_to_string(self.dir().join("pid")) {
                return s.trim().parse().unwrap();
            }
            assert!(Instant::now() < deadline, "fly-run never wrote pid");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_for_file(&self, path: &Path) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !path.exists() {
            assert!(Instant::now() < deadline, "{path:?} never appeared");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn exit_status(&self, stage1_rootfs: &Path) -> Option<String> {
        std::fs::read_to_string(stage1_rootfs.join("rkt/status/app")).ok()
    }

    fn assert_no_mounts(&self) {
        let left = mounts_under(self.base(), true).unwrap();
        assert!(left.is_empty(), "mounts leaked into the host: {left:?}");
    }
}

impl Drop for TestPod {
    fn drop(&mut self) {
        if has_mounts_under(self.base()).unwrap_or(true) {
            unmount_all_under(self.base()).expect("cannot unmount test pod; not removing it");
        }
    }
}

fn app(exec: &[&str]) -> Value {
    json!({"exec": exec, "user": "0", "group": "0"})
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn exit_code_output_and_pid_files() {
    let pod = TestPod::new(
        app(&["/bin/busybox", "sh", "-c", "echo hi; exit 3"]),
        json!([]),
        json!([]),
    );
    let (child, _lock) = pod.spawn_run(&[]);
    let child_pid = child.id() as i32;
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hi\n");
    let pid: i32 = std::fs::read_to_string(pod.dir().join("pid"))
        .unwrap()
        .parse()
        .unwrap();
    let pgid: i32 = std::fs::read_to_string(pod.dir().join("pgid"))
        .unwrap()
        .parse()
        .unwrap();
    // pid names the app, a child of the waiter, leading its own group.
    assert_ne!(pid, child_pid);
    assert_eq!(pgid, pid);
    let s1 = pod.dir().join("stage1/rootfs");
    assert!(s1.join("rkt/status/app-started").is_file());
    assert_eq!(pod.exit_status(&s1).as_deref(), Some("3"));
    let env = std::fs::read_to_string(s1.join("rkt/env/app")).unwrap();
    assert!(env.contains("AC_APP_NAME=app\n"), "{env}");
    // stage0's side of the mtab rule, done here too.
    assert_eq!(
        std::fs::read_link(pod.rootfs().join("etc/mtab")).unwrap(),
        PathBuf::from("../proc/self/mounts")
    );
    // Default hosts mode: a stub since the image has none.
    assert!(std::fs::read_to_string(pod.rootfs().join("etc/hosts"))
        .unwrap()
        .contains("127.0.0.1 localhost"));
    pod.assert_no_mounts();
}

#[test]
fn user_env_and_working_dir() {
    let pod = TestPod::new(
        json!({
            // A bare name, found through PATH and an absolute symlink in the rootfs.
            "exec": ["sh", "-c", "busybox id -u; busybox id -g; busybox id -G; busybox pwd; busybox env"],
            "user": "user1", "group": "grp1", "supplementaryGIDs": [5, 6],
            "workingDirectory": "/work",
            "environment": [{"name": "FOO", "value": "bar"}, {"name": "PATH", "value": "/bin"}],
        }),
        json!([]),
        json!([]),
    );
    let out = pod.run(&[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        &lines[..4],
        ["1000", "1001", "1001 5 6", "/work"],
        "{stdout}"
    );
    for var in [
        "FOO=bar",
        "PATH=/bin",
        "HOME=/root",
        "USER=root",
        "LOGNAME=root",
        "SHELL=/bin/sh",
        "AC_APP_NAME=app",
    ] {
        assert!(lines.contains(&var), "{var} missing from {stdout}");
    }
    assert!(!stdout.contains("RKT_LOCK_FD"), "{stdout}");
    pod.assert_no_mounts();
}

#[test]
fn default_env_path() {
    let pod = TestPod::new(app(&["/bin/busybox", "env"]), json!([]), json!([]));
    let out = pod.run(&[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stdout)
        .lines()
        .any(|l| l == "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
}

#[test]
fn volumes_host_rw_ro_file_empty_and_symlinked_target() {
    let pod = TestPod::new(app(&["/bin/busybox", "true"]), json!([]), json!([]));
    let host = |p: &str| pod.base().join(p);
    std::fs::create_dir_all(host("rw")).unwrap();
    std::fs::create_dir_all(host("ro")).unwrap();
    std::fs::create_dir_all(host("sym")).unwrap();
    std::fs::write(host("ro/file"), "ro-content\n").unwrap();
    std::fs::write(host("sym/seen"), "").unwrap();
    std::fs::write(host("conf"), "conf-content\n").unwrap();
    let s = |p: &str| host(p).display().to_string();
    pod.write_manifest(
        json!([{
            "name": "app",
            "image": {"id": "sha512-0123"},
            "app": {
                "exec": ["/bin/busybox", "sh", "-c", "\
                    busybox echo data > /rw/new && \
                    (busybox touch /ro/x 2>/dev/null && echo ro-writable || echo ro-ok) && \
                    busybox cat /ro/file && busybox cat /etc/myconf && \
                    busybox echo e > /empty/f && busybox ls -ld /empty && \
                    busybox ls /link/vol"],
                "user": "0", "group": "0",
                "mountPoints": [{"name": "empty", "path": "/empty"}],
            },
            "mounts": [
                {"volume": "rw", "path": "/rw"},
                {"volume": "ro", "path": "/ro"},
                {"volume": "conf", "path": "/etc/myconf"},
                {"volume": "sym", "path": "/link/vol"},
            ],
        }]),
        json!([
            {"name": "rw", "kind": "host", "source": s("rw")},
            {"name": "ro", "kind": "host", "source": s("ro"), "readOnly": true},
            {"name": "conf", "kind": "host", "source": s("conf"), "readOnly": true},
            {"name": "sym", "kind": "host", "source": s("sym")},
            {"name": "empty", "kind": "empty", "mode": "0770", "uid": 12, "gid": 34},
        ]),
    );
    let out = pod.run(&[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("ro-ok"), "{stdout}");
    assert!(stdout.contains("ro-content"), "{stdout}");
    assert!(stdout.contains("conf-content"), "{stdout}");
    assert!(stdout.contains("drwxrwx---    2 12       34"), "{stdout}");
    assert!(stdout.contains("seen"), "{stdout}");
    assert_eq!(std::fs::read_to_string(host("rw/new")).unwrap(), "data\n");
    assert_eq!(
        std::fs::read_to_string(pod.dir().join("sharedVolumes/empty/f")).unwrap(),
        "e\n"
    );
    // The symlinked target was created inside the rootfs, not on the host.
    assert!(pod.rootfs().join("real/vol").is_dir());
    assert!(!Path::new("/real/vol").exists());
    pod.assert_no_mounts();
}

#[test]
fn enter_and_stop_a_running_app_with_a_private_stage1_rootfs() {
    let pod = TestPod::new(
        json!({
            "exec": ["/bin/busybox", "sleep", "100"],
            "user": "user1", "group": "grp1",
            "environment": [{"name": "FOO", "value": "from-app"}],
        }),
        json!([{"name": "rw", "kind": "host", "source": "/PLACEHOLDER"}]),
        json!([{"volume": "rw", "path": "/vol"}]),
    );
    std::fs::create_dir(pod.base().join("vol")).unwrap();
    std::fs::write(pod.base().join("vol/file"), "vol-content\n").unwrap();
    let manifest = std::fs::read_to_string(pod.dir().join("pod"))
        .unwrap()
        .replace(
            "/PLACEHOLDER",
            &pod.base().join("vol").display().to_string(),
        );
    std::fs::write(pod.dir().join("pod"), manifest).unwrap();

    // Like an overlay pod: the stage1 rootfs is mounted only in the pod's
    // mount namespace, so enter, stop and gc (run from the host's) see an
    // empty stage1/rootfs.
    let (child, lock) = pod.spawn_run_private_stage1();
    let pid = pod.wait_for_pid();
    drop(lock);
    let s1 = pod.private_stage1();
    assert_eq!(
        std::fs::read_dir(pod.dir().join("stage1/rootfs"))
            .unwrap()
            .count(),
        0
    );
    // The waiter holds the pod lock, the app does not have it.
    let probe = File::open(pod.dir()).unwrap();
    assert!(probe.try_lock().is_err(), "pod lock not held by the waiter");
    let pod_dir = std::fs::canonicalize(pod.dir()).unwrap();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let target = std::fs::read_link(fd.unwrap().path()).unwrap();
        assert_ne!(target, pod_dir, "the app inherited the pod lock fd");
    }
    // Proves enter reads run's env file (not a recomputed environment).
    let env_file = s1.join("rkt/env/app");
    let mut env = std::fs::read_to_string(&env_file).unwrap();
    assert!(env.contains("AC_APP_NAME=app\n"), "{env}");
    env.push_str("EXTRA=from-env-file\n");
    std::fs::write(&env_file, env).unwrap();

    let out = pod.entrypoint(
        env!("CARGO_BIN_EXE_fly-enter"),
        &[
            &format!("--pid={pid}"),
            "--appname=app",
            "--",
            "/bin/busybox",
            "sh",
            "-c",
            "busybox cat /marker /vol/file; busybox id -u; echo $FOO $AC_APP_NAME $EXTRA",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "inside-the-app\nvol-content\n1000\nfrom-app app from-env-file\n"
    );
    // The command's exit code is enter's.
    let out = pod.entrypoint(
        env!("CARGO_BIN_EXE_fly-enter"),
        &[
            &format!("--pid={pid}"),
            "--appname=app",
            "--",
            "sh",
            "-c",
            "exit 7",
        ],
    );
    assert_eq!(out.status.code(), Some(7), "stderr: {}", text(&out.stderr));
    assert_eq!(pod.exit_status(&s1), None);

    let out = pod.entrypoint(env!("CARGO_BIN_EXE_fly-stop"), &[UUID]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let out = child.wait_with_output().unwrap();
    // SIGTERM killed the app; the waiter reports it as a shell would.
    assert_eq!(
        out.status.code(),
        Some(143),
        "stderr: {}",
        text(&out.stderr)
    );
    assert_eq!(pod.exit_status(&s1).as_deref(), Some("143"));
    // The app and the waiter are gone, so is the lock.
    probe.try_lock().unwrap();
    pod.assert_no_mounts();

    // gc has nothing to undo and succeeds with the stage1 rootfs empty, and
    // with it missing altogether.
    let out = pod.entrypoint(env!("CARGO_BIN_EXE_fly-gc"), &[UUID]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    std::fs::remove_dir(pod.dir().join("stage1/rootfs")).unwrap();
    let out = pod.entrypoint(env!("CARGO_BIN_EXE_fly-gc"), &["--debug", UUID]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
}

#[test]
fn waiter_forwards_signals_to_the_app() {
    // A trap that proves SIGUSR1 reached the app and decides the exit code.
    let pod = TestPod::new(
        app(&[
            "/bin/busybox",
            "sh",
            "-c",
            "trap 'echo got-usr1; kill $!; exit 5' USR1; busybox sleep 100 & busybox touch /ready; wait",
        ]),
        json!([]),
        json!([]),
    );
    let (child, lock) = pod.spawn_run(&[]);
    pod.wait_for_file(&pod.rootfs().join("ready"));
    let waiter = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(waiter, nix::sys::signal::Signal::SIGUSR1).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(5), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "got-usr1\n");
    let s1 = pod.dir().join("stage1/rootfs");
    assert_eq!(pod.exit_status(&s1).as_deref(), Some("5"));
    drop(lock);

    // SIGTERM to the waiter ends an app that does not handle it.
    std::fs::remove_file(s1.join("rkt/status/app")).unwrap();
    std::fs::remove_file(pod.dir().join("pid")).unwrap();
    pod.write_manifest(
        json!([{"name": "app", "image": {"id": "sha512-0123"},
                "app": app(&["/bin/busybox", "sleep", "100"])}]),
        json!([]),
    );
    let (child, _lock) = pod.spawn_run(&[]);
    pod.wait_for_pid();
    let waiter = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(waiter, nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(143),
        "stderr: {}",
        text(&out.stderr)
    );
    assert_eq!(pod.exit_status(&s1).as_deref(), Some("143"));
    pod.assert_no_mounts();
}

/// Starts fly-run on a new pty as the session leader (as under `script`),
/// types a line and returns what the terminal showed, or fails after 10s.
fn run_on_pty(pod: &TestPod, input: &str, expect: &str) -> (String, std::process::ExitStatus) {
    let (mut master, slave) = {
        let (mut m, mut s) = (0, 0);
        // SAFETY: openpty writes two fds into the provided ints; no names
        // or termios are passed.
        let rc = unsafe {
            libc::openpty(
                &mut m,
                &mut s,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both fds were just opened and are owned by nobody else.
        unsafe { (File::from_raw_fd(m), File::from_raw_fd(s)) }
    };
    let slave_fd = slave.as_raw_fd();
    let (mut child, lock) = pod.spawn_run_with(&[], move |cmd| {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: setsid, ioctl and dup2 only, all async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() == -1
                    || libc::ioctl(slave_fd, libc::TIOCSCTTY, 0) == -1
                    || libc::dup2(slave_fd, 0) == -1
                    || libc::dup2(slave_fd, 1) == -1
                    || libc::dup2(slave_fd, 2) == -1
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    drop(slave);
    drop(lock);
    let mut reader = master.try_clone().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // EIO once the last slave fd is closed.
        while let Ok(n @ 1..) = reader.read(&mut buf) {
            if tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    pod.wait_for_pid();
    master.write_all(input.as_bytes()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while !text(&seen).contains(expect) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => seen.extend(chunk),
            Err(_) => {
                let _ = child.kill();
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pod.wait_for_pid()),
                    nix::sys::signal::Signal::SIGKILL,
                );
                panic!(
                    "{expect:?} never appeared on the terminal: {:?}",
                    text(&seen)
                );
            }
        }
    }
    (text(&seen), child.wait().unwrap())
}

#[test]
fn interactive_app_owns_the_terminal() {
    let pod = TestPod::new(
        app(&[
            "/bin/busybox",
            "sh",
            "-c",
            "read line; echo got:$line; exit 4",
        ]),
        json!([]),
        json!([]),
    );
    let (seen, status) = run_on_pty(&pod, "hello\n", "got:hello");
    assert_eq!(status.code(), Some(4), "terminal: {seen}");
    let s1 = pod.dir().join("stage1/rootfs");
    assert_eq!(pod.exit_status(&s1).as_deref(), Some("4"));
    pod.assert_no_mounts();
}

#[test]
fn stage1_errors_exit_254_with_a_message() {
    let pod = TestPod::new(app(&["/bin/busybox", "true"]), json!([]), json!([]));
    let check = |extra: &[&str], needle: &str| {
        let out = pod.run(extra);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(254), "stderr: {stderr}");
        assert!(stderr.starts_with("stage1: "), "{stderr}");
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    };
    check(&["--net=none"], "--net=host");
    check(&["--net=mynet"], "--net=host");

    pod.write_manifest(
        json!([{"name": "app", "image": {"id": "sha512-0123"}, "app": app(&["/bin/nope"])}]),
        json!([]),
    );
    check(&[], "/bin/nope");

    pod.write_manifest(
        json!([{"name": "app", "image": {"id": "sha512-0123"},
                "app": {"exec": ["/bin/busybox", "true"], "user": "nobody", "group": "0"}}]),
        json!([]),
    );
    check(&[], "nobody");

    pod.write_manifest(
        json!([{"name": "app", "image": {"id": "sha512-0123"},
                "app": app(&["/bin/busybox", "true"]),
                "mounts": [{"volume": "v", "path": "/v"}]}]),
        json!([{"name": "v", "kind": "host", "source": "/nonexistent/fly-test-source"}]),
    );
    check(&[], "does not exist");

    pod.write_manifest(
        json!([
            {"name": "app", "image": {"id": "sha512-0123"}, "app": app(&["/bin/busybox", "true"])},
            {"name": "app2", "image": {"id": "sha512-0123"}, "app": app(&["/bin/busybox", "true"])},
        ]),
        json!([]),
    );
    std::fs::create_dir_all(pod.dir().join("appsinfo/app2")).unwrap();
    std::fs::copy(
        pod.dir().join("appsinfo/app/manifest"),
        pod.dir().join("appsinfo/app2/manifest"),
    )
    .unwrap();
    check(&[], "exactly one app");
    pod.assert_no_mounts();
}

#[test]
fn read_only_rootfs() {
    let pod = TestPod::new(
        app(&[
            "/bin/busybox",
            "sh",
            "-c",
            "busybox touch /x 2>/dev/null && echo rw || echo ro; busybox touch /tmp/ok && echo tmp-ok",
        ]),
        json!([]),
        json!([]),
    );
    let mut manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(pod.dir().join("pod")).unwrap()).unwrap();
    manifest["apps"][0]["readOnlyRootFS"] = json!(true);
    std::fs::write(pod.dir().join("pod"), manifest.to_string()).unwrap();
    let out = pod.run(&[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ro\ntmp-ok\n");
    pod.assert_no_mounts();
}

#[test]
fn stop_without_pid_files_fails_cleanly() {
    let pod = TestPod::new(app(&["/bin/busybox", "true"]), json!([]), json!([]));
    let out = pod.entrypoint(env!("CARGO_BIN_EXE_fly-stop"), &["--force", UUID]);
    assert_eq!(out.status.code(), Some(254));
    assert!(text(&out.stderr).contains("is the pod running"));
    // The rootfs is still a plain, executable-bit-preserving copy.
    let mode = std::fs::metadata(pod.rootfs().join("bin/busybox"))
        .unwrap()
        .permissions()
        .mode();
    assert_ne!(mode & 0o111, 0);
}
