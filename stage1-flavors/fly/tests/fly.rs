//! Runs the real fly entrypoints against pod directories built by hand, as
//! stage0 would prepare them (needs root: mounts, chroot, setuid).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
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
    assert_eq!((pid, pgid), (child_pid, child_pid));
    let s1 = pod.dir().join("stage1/rootfs");
    assert!(s1.join("rkt/status/app-started").is_file());
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
fn enter_and_stop_a_running_app() {
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

    let (child, lock) = pod.spawn_run(&[]);
    let pid = pod.wait_for_pid();
    drop(lock);
    // The app holds the pod lock (inherited across exec).
    let probe = File::open(pod.dir()).unwrap();
    assert!(probe.try_lock().is_err(), "pod lock not held by the app");

    let out = pod.entrypoint(
        env!("CARGO_BIN_EXE_fly-enter"),
        &[
            &format!("--pid={pid}"),
            "--appname=app",
            "--",
            "/bin/busybox",
            "sh",
            "-c",
            "busybox cat /marker /vol/file; busybox id -u; echo $FOO",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "inside-the-app\nvol-content\n1000\nfrom-app\n"
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

    let out = pod.entrypoint(env!("CARGO_BIN_EXE_fly-stop"), &[UUID]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGTERM));
    // The app is gone, so is the lock.
    probe.try_lock().unwrap();
    pod.assert_no_mounts();

    // gc has nothing to undo and succeeds.
    let out = pod.entrypoint(env!("CARGO_BIN_EXE_fly-gc"), &[UUID]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
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
