//! Names of the files in a pod directory (`$dir/pods/<state>/<uuid>`), shared by
//! stage0 and every stage1 (reference: rkt's pod-dir layout).

/// The state directory of running pods (and of exited ones not yet marked
/// for gc) under `$dir/pods`: a stage1's gc finds the pod's siblings there.
pub const RUN_STATE_DIR: &str = "run";

/// appc pod manifest written by stage0.
pub const POD_MANIFEST: &str = "pod";
/// Empty file whose mtime is the pod's creation time.
pub const POD_CREATED: &str = "pod-created";
/// Lock file serialising mutations of the pod manifest (app add/rm).
pub const POD_LOCK: &str = "pod.lck";
/// Directory holding the stage1 image: `manifest` and `rootfs/`.
pub const STAGE1_DIR: &str = "stage1";
/// The stage1 image manifest copied at prepare time.
pub const STAGE1_MANIFEST: &str = "stage1/manifest";
/// The stage1 rootfs (copy or overlay mount point).
pub const STAGE1_ROOTFS: &str = "stage1/rootfs";
/// Tree-store id of the stage1 image.
pub const STAGE1_TREE_STORE_ID: &str = "stage1TreeStoreID";
/// Per-app directory of stage0 metadata: `appsinfo/<app>/{manifest,treeStoreID}`.
pub const APPS_INFO_DIR: &str = "appsinfo";
/// Overlay upper/work dirs: `overlay/<treeStoreID>/{upper,work}/<app>`.
pub const OVERLAY_DIR: &str = "overlay";
/// Marker: the pod was prepared with overlayfs.
pub const OVERLAY_PREPARED: &str = "overlay-prepared";
/// `<shift>:<count>` of the pod's user namespace.
pub const PRIVATE_USERS_PREPARED: &str = "private-users-prepared";
/// Marker: the pod registered with the metadata service.
pub const MDS_REGISTERED: &str = "mds-registered";
/// Runtime parameters saved by stage1 (JSON).
pub const RUNTIME_CONFIG: &str = "runtime-config";
/// Pid of the pod's PID 1 (written by stage1).
pub const PID: &str = "pid";
/// Pid of the parent whose only child is the pod's PID 1.
pub const PPID: &str = "ppid";
/// Process group of the pod (fly).
pub const PGID: &str = "pgid";
/// Pod cgroup path relative to the hierarchy root.
pub const SUBCGROUP: &str = "subcgroup";
/// Path of the bind-mounted network namespace.
pub const NETNS: &str = "netns";
/// Copies of the active CNI configurations.
pub const NET_DIR: &str = "net";
/// Array of `{netName, netConf, pluginPath, ifName, ip, args, mask}`.
pub const NET_INFO: &str = "net-info.json";
/// Backing directories of `empty` volumes.
pub const SHARED_VOLUMES: &str = "sharedVolumes";
/// The pod's own journald (ns stage1, on hosts that run journald): its
/// `run/` and the journal files in `log/journal/<pod machine id>/`, outside
/// the stage1 rootfs so that they stay readable when no overlay is mounted.
pub const JOURNALD_DIR: &str = "journald";
/// The pod journal's files (`<pod machine id>/system.journal` below it):
/// journald's `/var/log/journal`, the pod root's too.
pub const JOURNAL_FILES: &str = "journald/log/journal";

/// Inside the stage1 rootfs: where app `<app>` lives (`opt/stage2/<app>`).
pub fn app_dir(app: &str) -> String {
    format!("opt/stage2/{app}")
}

/// Inside the stage1 rootfs: the app's rendered rootfs.
pub fn app_rootfs(app: &str) -> String {
    format!("opt/stage2/{app}/rootfs")
}

/// Inside the stage1 rootfs: status directory holding `<app>` exit codes and
/// `<app>-created` / `<app>-started` markers.
pub const STATUS_DIR: &str = "rkt/status";
/// Inside the stage1 rootfs: per-app environment files `rkt/env/<app>`.
pub const ENV_DIR: &str = "rkt/env";
/// Inside the stage1 rootfs: symlink to `ready` once the supervisor is ready.
pub const SUPERVISOR_STATUS: &str = "rkt/supervisor-status";
/// Inside the stage1 rootfs: resolv.conf written by stage0 (dns mode `stage0`).
pub const RKT_RESOLV_CONF: &str = "etc/rkt-resolv.conf";
/// Inside the stage1 rootfs: hosts file written by stage0 (hosts mode `stage0`).
pub const RKT_HOSTS: &str = "etc/rkt-hosts";
