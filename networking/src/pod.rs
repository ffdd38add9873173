//! A pod's networks from `run` to `gc`: its network namespace, ADD of each
//! selected network as `eth<i>`, and a record in the pod directory that gc
//! tears everything down from, even after a crash half-way:
//!
//! - `netns`: the namespace's bind-mount path, written before it exists;
//! - `net/<name>.conf`: a copy of each network's configuration (rkt's);
//! - `net-info.json`: rkt's list of `{netName, netConf, ifName, ip, …}`,
//!   an entry written before its ADD runs and completed after;
//! - `net/<name>.result.json`: the ADD result, DEL's `prevResult` (the
//!   CNI runtime's result cache).

use std::net::IpAddr;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use abi::net_info::NetInfo;
use abi::pod_dir;
use abi::stage1::NetCheckOutcome;
use nix::fcntl::{Flock, FlockArg};
use serde_json::{Map, Value};
use thiserror::Error;

use crate::chain::{self, ChainError, ValidAttachment};
use crate::conf::{self, ConfError, NetConf};
use crate::netns::{self, NetnsError};
use crate::plugin::{declares_capability, Attachment, PluginRunner};
use crate::portfwd::{self, Backend, Forward, PortError};
use crate::request::NetRequest;

#[derive(Debug, Error)]
pub enum PodNetError {
    #[error(transparent)]
    Conf(#[from] ConfError),
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("cannot write {path:?}: {source}")]
    Record {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path:?}: {problem}")]
    BadRecord { path: PathBuf, problem: String },
    #[error("{error}{}", cleanup_note(.cleanup))]
    Setup {
        error: Box<ChainError>,
        /// What the undo could not remove.
        cleanup: Vec<String>,
    },
    #[error("network teardown incomplete: {}", .0.join("; "))]
    Teardown(Vec<String>),
    #[error("CNI garbage collection incomplete: {}", .0.join("; "))]
    Gc(Vec<String>),
    /// Each entry names its network (and plugin).
    #[error("{}", .0.join("; "))]
    Check(Vec<String>),
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("--port needs a network with an address for the pod; none of its networks gave one")]
    NoForwardable,
}

fn cleanup_note(cleanup: &[String]) -> String {
    match cleanup.is_empty() {
        true => String::new(),
        false => format!(
            " (undoing the setup also failed: {}; `rkt gc` retries)",
            cleanup.join("; ")
        ),
    }
}

/// Inside a stage1 rootfs: its built-in networks (`default`,
/// `default-restricted`).
pub const STAGE1_NET_CONF_DIR: &str = "etc/rkt/net.d";
/// Inside a stage1 rootfs: the CNI plugins it ships.
pub const STAGE1_PLUGIN_DIR: &str = "usr/lib/rkt/plugins/net";
/// The host's directory of rkt plugins (rkt's search path).
const HOST_RKT_PLUGIN_DIR: &str = "/usr/lib/rkt/plugins/net";
/// How long one plugin may run; `RKT_NET_PLUGIN_TIMEOUT` (seconds)
/// overrides it.
const PLUGIN_TIMEOUT: Duration = Duration::from_secs(60);
pub const PLUGIN_TIMEOUT_ENV: &str = "RKT_NET_PLUGIN_TIMEOUT";

/// rkt's plugin search path: `<local-config>/net.d`, the host's
/// `/usr/lib/rkt/plugins/net`, the stage1's own plugins, then the
/// system's CNI directories.
pub fn plugin_runner(stage1_rootfs: &Path, local_config: &Path) -> PluginRunner {
    let timeout = match std::env::var(PLUGIN_TIMEOUT_ENV) {
        Err(_) => PLUGIN_TIMEOUT,
        Ok(s) => match s.trim().parse::<u64>() {
            Ok(secs) if secs > 0 => Duration::from_secs(secs),
            _ => {
                eprintln!(
                    "warning: ignoring {PLUGIN_TIMEOUT_ENV}={s:?} (a whole number of seconds above 0 is expected); plugins get {} s",
                    PLUGIN_TIMEOUT.as_secs()
                );
                PLUGIN_TIMEOUT
            }
        },
    };
    PluginRunner::new(
        vec![
            local_config.join("net.d"),
            PathBuf::from(HOST_RKT_PLUGIN_DIR),
            stage1_rootfs.join(STAGE1_PLUGIN_DIR),
        ],
        timeout,
    )
}

/// What a pod asks for and where things are.
#[derive(Debug, Clone)]
pub struct PodNetSpec {
    pub uuid: String,
    pub pod_dir: PathBuf,
    pub request: NetRequest,
    /// The stage1's built-in networks (`default`, `default-restricted`).
    pub builtin_conf_dir: PathBuf,
    /// `<local-config>/net.d`.
    pub user_conf_dir: PathBuf,
    pub runner: PluginRunner,
    /// `--port` forwards: given to the forwardable network's plugins as
    /// the `portMappings` capability when one declares it (a `portmap`
    /// in its chain); otherwise the caller forwards them itself.
    pub forwards: Vec<Forward>,
}

/// The pod's networks, set up.
#[derive(Debug)]
pub struct PodNetwork {
    pub netns: OwnedFd,
    pub netns_path: PathBuf,
    pub nets: Vec<NetInfo>,
    /// Each network's ADD result, in order (for DNS and the pod's
    /// addresses).
    pub results: Vec<Value>,
    /// Warnings about the configurations (overrides, duplicates).
    pub warnings: Vec<String>,
    /// Index of rkt's "forwardable" network: the first with IP masquerade,
    /// else the last.
    pub forwardable: Option<usize>,
    /// A plugin of the forwardable network took the `--port` forwards
    /// (`portMappings`); [`PodNetwork::forward_ports`] is then not needed.
    pub ports_in_chain: bool,
}

impl PodNetwork {
    /// The pod's address on the forwardable network and the host side of
    /// that network (the first interface of its result outside the pod).
    pub fn forwardable(&self) -> Option<(IpAddr, Option<String>)> {
        let i = self.forwardable?;
        let ip = self.nets.get(i)?.ip?;
        let host_if = self.results.get(i).and_then(|r| {
            r["interfaces"]
                .as_array()?
                .iter()
                .find(|iface| !matches!(iface["sandbox"].as_str(), Some(s) if !s.is_empty()))
                .and_then(|iface| iface["name"].as_str())
                .map(str::to_string)
        });
        Some((ip, host_if))
    }

    /// Where the pod reaches the host on its forwardable network (rkt's
    /// "host IP" for the metadata service): that network's gateway.
    pub fn forwardable_gateway(&self) -> Option<IpAddr> {
        first_gateway(self.results.get(self.forwardable?)?)
    }

    /// Forwards `forwards` to the pod's forwardable address (recorded
    /// first, so gc removes the rules whatever happens next).
    pub fn forward_ports(
        &self,
        pod_dir: &Path,
        uuid: &str,
        forwards: &[Forward],
    ) -> Result<(), PodNetError> {
        if forwards.is_empty() {
            return Ok(());
        }
        let (ip, host_if) = self.forwardable().ok_or(PodNetError::NoForwardable)?;
        let backend = Backend::detect();
        write_record(&pod_dir.join(FORWARDING), backend.name().as_bytes())?;
        portfwd::apply(backend, uuid, ip, host_if.as_deref(), forwards)?;
        Ok(())
    }
}

/// In the pod dir: which tool holds the pod's port forwarding rules.
const FORWARDING: &str = "net/forwarding";

/// The tool the pod's forwarding record names; `None` without a record
/// (no `--port`, or the rules went with the pod's end).
fn forwarding_backend(pod_dir: &Path) -> Result<Option<Backend>, PodNetError> {
    let Ok(tool) = std::fs::read_to_string(pod_dir.join(FORWARDING)) else {
        return Ok(None);
    };
    Backend::parse(&tool)
        .map(Some)
        .ok_or_else(|| PodNetError::BadRecord {
            path: pod_dir.join(FORWARDING),
            problem: format!("unknown tool {tool:?}"),
        })
}

/// Sets up the networks of `spec` (the caller checked it is neither
/// `host` nor `none`). `host_mounts` is the mount namespace the netns bind
/// must live in. On failure everything done is undone (DEL in reverse,
/// the namespace removed) before the error returns.
pub fn setup(
    spec: &PodNetSpec,
    host_mounts: Option<BorrowedFd<'_>>,
) -> Result<PodNetwork, PodNetError> {
    // No GC runs while this pod's attachments are being made.
    let _attaching = pods_lock(&spec.pod_dir, FlockArg::LockShared);
    let (nets, warnings) =
        conf::select(&spec.builtin_conf_dir, &spec.user_conf_dir, &spec.request)?;
    let netns_path = netns::pod_netns_path(&spec.uuid);
    write_record(
        &spec.pod_dir.join(pod_dir::NETNS),
        netns_path.to_string_lossy().as_bytes(),
    )?;
    let net_dir = spec.pod_dir.join(pod_dir::NET_DIR);
    std::fs::create_dir_all(&net_dir).map_err(|source| PodNetError::Record {
        path: net_dir.clone(),
        source,
    })?;
    let netns = netns::create(&netns_path, host_mounts)?;
    let mut done = PodNetwork {
        netns,
        netns_path,
        nets: Vec::new(),
        results: Vec::new(),
        warnings,
        forwardable: nets
            .iter()
            .position(NetConf::ip_masq)
            .or(nets.len().checked_sub(1)),
        ports_in_chain: false,
    };
    for (index, net) in nets.iter().enumerate() {
        let mut capability_args = Map::new();
        if Some(index) == done.forwardable
            && !spec.forwards.is_empty()
            && declares(net, PORT_MAPPINGS)
        {
            capability_args.insert(PORT_MAPPINGS.into(), port_mappings(&spec.forwards));
            done.ports_in_chain = true;
        }
        if let Err(e) = attach(spec, &mut done, index, net, capability_args) {
            let cleanup = match teardown(&spec.pod_dir, &spec.uuid, &spec.runner, host_mounts) {
                Ok(()) => Vec::new(),
                Err(PodNetError::Teardown(errors)) => errors,
                Err(other) => vec![other.to_string()],
            };
            return Err(match e {
                PodNetError::Setup { error, .. } => PodNetError::Setup { error, cleanup },
                other => other,
            });
        }
    }
    Ok(done)
}

/// ADD of network `index`, recorded before and after.
fn attach(
    spec: &PodNetSpec,
    done: &mut PodNetwork,
    index: usize,
    net: &NetConf,
    capability_args: Map<String, Value>,
) -> Result<(), PodNetError> {
    let conf_copy = Path::new(pod_dir::NET_DIR).join(format!("{}.conf", net.name));
    // The bytes that were parsed, not the file again: DEL must get what
    // ADD got even if the file changed in between.
    write_record(&spec.pod_dir.join(&conf_copy), &net.bytes)?;
    let args = spec.request.args(&net.name).map(str::to_string);
    done.nets.push(NetInfo {
        net_name: net.name.clone(),
        net_conf: conf_copy.to_string_lossy().into_owned(),
        plugin_path: spec
            .runner
            .find(&net.plugins[0].plugin_type)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
        if_name: format!("eth{index}"),
        args: args.clone().unwrap_or_default(),
        ..NetInfo::default()
    });
    if !capability_args.is_empty() {
        // DEL needs them again (portmap finds its rules by them).
        write_record(
            &spec.pod_dir.join(capabilities_path(&net.name)),
            &serde_json::to_vec(&capability_args).unwrap_or_default(),
        )?;
    }
    write_net_info(&spec.pod_dir, &done.nets)?;
    let attachment = Attachment {
        container_id: spec.uuid.clone(),
        netns: done.netns_path.clone(),
        ifname: format!("eth{index}"),
        args,
        capability_args,
    };
    let result = chain::add(&spec.runner, net, &attachment).map_err(|e| PodNetError::Setup {
        error: Box::new(e),
        cleanup: Vec::new(),
    })?;
    write_record(
        &spec.pod_dir.join(result_path(&net.name)),
        &serde_json::to_vec(&result).unwrap_or_default(),
    )?;
    if let Some((ip, prefix)) = first_address(&result) {
        let entry = done.nets.last_mut().expect("pushed above");
        entry.ip = Some(ip);
        entry.mask = Some(prefix_mask(ip, prefix));
    }
    write_net_info(&spec.pod_dir, &done.nets)?;
    done.results.push(result);
    Ok(())
}

/// Removes the pod's port forwarding rules, if it has any (the record
/// stays: removing again is harmless).
pub fn stop_forwarding(pod_dir: &Path, uuid: &str) -> Result<(), PodNetError> {
    let Some(backend) = forwarding_backend(pod_dir)? else {
        return Ok(());
    };
    portfwd::remove(backend, uuid)?;
    // Gone: gc, which runs this again, has nothing left to look for.
    match std::fs::remove_file(pod_dir.join(FORWARDING)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(PodNetError::Record {
            path: pod_dir.join(FORWARDING),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Runs DEL of every recorded network in reverse (with its cached
/// result), then removes the network namespace; every failure is
/// collected, and a pod without networks is fine. Safe to run again.
pub fn teardown(
    pod_dir: &Path,
    uuid: &str,
    runner: &PluginRunner,
    host_mounts: Option<BorrowedFd<'_>>,
) -> Result<(), PodNetError> {
    let Some(netns_path) = recorded_netns(pod_dir, uuid)? else {
        return Ok(());
    };
    let mut errors = Vec::new();
    if let Err(e) = stop_forwarding(pod_dir, uuid) {
        errors.push(e.to_string());
    }
    for (info, net) in recorded_nets(pod_dir, &mut errors).iter().rev() {
        let attachment = recorded_attachment(pod_dir, uuid, &netns_path, info, net);
        let cached = cached_result(pod_dir, &net.name);
        if let Err(e) = chain::del(runner, net, &attachment, cached.as_ref()) {
            errors.push(e.to_string());
        }
    }
    if let Err(e) = netns::remove(&netns_path, host_mounts) {
        errors.push(e.to_string());
    }
    match errors.is_empty() {
        true => Ok(()),
        false => Err(PodNetError::Teardown(errors)),
    }
}

/// CNI CHECK of every network the pod's records name, in ADD's order and
/// each with its cached ADD result: whether the pod's interfaces,
/// addresses and routes are still as ADD left them; then whether the
/// pod's `--port` rules are in place. Every network is checked and every
/// failure collected. A pod without networks (`host`, `none`) has
/// nothing to check.
pub fn check(
    pod_dir: &Path,
    uuid: &str,
    runner: &PluginRunner,
) -> Result<Vec<NetCheckOutcome>, PodNetError> {
    let Some(netns_path) = recorded_netns(pod_dir, uuid)? else {
        return Ok(Vec::new());
    };
    let mut errors = Vec::new();
    let mut checks = Vec::new();
    for (info, net) in recorded_nets(pod_dir, &mut errors) {
        // CHECK is never run before ADD: without its result there is
        // nothing to compare against.
        let Some(cached) = cached_result(pod_dir, &net.name) else {
            errors.push(format!(
                "network {:?}: no ADD result in {}; the pod's network setup did not finish",
                net.name,
                result_path(&net.name).display()
            ));
            continue;
        };
        let attachment = recorded_attachment(pod_dir, uuid, &netns_path, &info, &net);
        match chain::check(runner, &net, &attachment, &cached) {
            Ok(checked) => checks.push(NetCheckOutcome {
                net: net.name,
                checked,
            }),
            Err(e) => errors.push(e.to_string()),
        }
    }
    // The runtime's own part: the rules of `--port` (portmap's, when a
    // network chains it, were checked with that network).
    if let Some(backend) = forwarding_backend(pod_dir)? {
        if let Err(e) = portfwd::check(backend, uuid) {
            errors.push(e.to_string());
        }
    }
    match errors.is_empty() {
        true => Ok(checks),
        false => Err(PodNetError::Check(errors)),
    }
}

/// The pod's network namespace from its `netns` record; `None` when the
/// pod never had one (`host`, `none`, or setup did not get that far).
fn recorded_netns(pod_dir: &Path, uuid: &str) -> Result<Option<PathBuf>, PodNetError> {
    match std::fs::read_to_string(pod_dir.join(pod_dir::NETNS)) {
        // Only ever the path this pod's setup uses: the record is in a
        // directory gc must not trust to name what it unmounts.
        Ok(p) if Path::new(p.trim()) == netns::pod_netns_path(uuid) => {
            Ok(Some(PathBuf::from(p.trim())))
        }
        Ok(p) => Err(PodNetError::BadRecord {
            path: pod_dir.join(pod_dir::NETNS),
            problem: format!(
                "names {:?}, not this pod's network namespace; remove what it set up by hand",
                p.trim()
            ),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PodNetError::BadRecord {
            path: pod_dir.join(pod_dir::NETNS),
            problem: e.to_string(),
        }),
    }
}

/// The cached ADD result of network `net`, if it is there and readable.
fn cached_result(pod_dir: &Path, net: &str) -> Option<Value> {
    read_json_record(&pod_dir.join(result_path(net)))
}

/// A JSON record of the pod dir; `None` when missing or unreadable.
fn read_json_record<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

/// The attachment ADD made for a recorded network, with the capability
/// arguments it was given.
fn recorded_attachment(
    pod_dir: &Path,
    uuid: &str,
    netns_path: &Path,
    info: &NetInfo,
    net: &NetConf,
) -> Attachment {
    let capability_args: Map<String, Value> =
        read_json_record(&pod_dir.join(capabilities_path(&net.name))).unwrap_or_default();
    Attachment {
        container_id: uuid.to_string(),
        netns: netns_path.to_path_buf(),
        ifname: info.if_name.clone(),
        args: (!info.args.is_empty()).then(|| info.args.clone()),
        capability_args,
    }
}

/// The networks the pod's records name, each with the copy of its
/// configuration; what cannot be read is added to `errors`.
fn recorded_nets(pod_dir: &Path, errors: &mut Vec<String>) -> Vec<(NetInfo, NetConf)> {
    let nets = match std::fs::read(pod_dir.join(pod_dir::NET_INFO)) {
        Ok(bytes) => NetInfo::parse_list(&bytes).unwrap_or_else(|e| {
            errors.push(format!("{}: {e}", pod_dir::NET_INFO));
            Vec::new()
        }),
        Err(_) => Vec::new(),
    };
    nets.into_iter()
        .filter_map(|info| {
            let conf_path = pod_dir.join(&info.net_conf);
            match std::fs::read(&conf_path)
                .map_err(|e| e.to_string())
                .and_then(|b| NetConf::parse(&conf_path, &b).map_err(|e| e.to_string()))
            {
                Ok(net) => Some((info, net)),
                Err(e) => {
                    errors.push(format!("network {:?}: {e}", info.net_name));
                    None
                }
            }
        })
        .collect()
}

/// CNI GC (1.1.0) of the networks the pod in `pod_dir` was on, after its
/// own DEL: each plugin drops what it still holds for attachments that no
/// pod of this data directory (`<pods>/run/*`) records, such as the leases
/// and rules of pods whose DEL never ran. Only networks whose
/// configuration says 1.1.0 or later take part: that is the user's consent
/// to GC, and rkt's built-in networks (1.0.0) are shared by every data
/// directory on the host, whose pods this one cannot see. Returns the
/// networks collected.
pub fn collect_garbage(pod_dir: &Path, runner: &PluginRunner) -> Result<Vec<String>, PodNetError> {
    let mut errors = Vec::new();
    let nets: Vec<NetConf> = recorded_nets(pod_dir, &mut errors)
        .into_iter()
        .map(|(_, net)| net)
        .filter(chain::has_gc)
        .collect();
    if nets.is_empty() {
        return Ok(Vec::new());
    }
    // GC runs alone: not while a pod is being attached (its lease would
    // look like garbage between the listing and the GC). Busy now, it runs
    // at a later gc.
    let Some(_alone) = pods_lock(pod_dir, FlockArg::LockExclusiveNonblock) else {
        return Ok(Vec::new());
    };
    let own_uuid = pod_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let run_dir = pod_dir
        .parent()
        .and_then(Path::parent)
        .map(|pods| pods.join(pod_dir::RUN_STATE_DIR));
    let mut collected = Vec::new();
    for net in nets {
        // Unknown attachments would all count as garbage: no GC then.
        let valid = match &run_dir {
            Some(dir) => attachments_on(dir, &net.name, own_uuid.as_deref()),
            None => Err(format!("{pod_dir:?} is not in a pods directory")),
        };
        let collected_net = valid
            .map_err(|e| format!("network {:?}: no garbage collection: {e}", net.name))
            .and_then(|valid| chain::gc(runner, &net, &valid).map_err(|e| e.to_string()));
        match collected_net {
            Ok(()) => collected.push(net.name),
            Err(e) => errors.push(e),
        }
    }
    match errors.is_empty() {
        true => Ok(collected),
        false => Err(PodNetError::Gc(errors)),
    }
}

/// The pods directory's CNI lock (`<pods>/cni.lock`), taken as `how`;
/// `None` when it cannot be (busy, or no pods directory above `pod_dir`).
fn pods_lock(pod_dir: &Path, how: FlockArg) -> Option<Flock<std::fs::File>> {
    let pods = pod_dir.parent()?.parent()?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(pods.join(CNI_LOCK))
        .ok()?;
    Flock::lock(file, how).ok()
}

/// In the pods directory: held shared while a pod's networks are attached,
/// exclusively while GC runs.
const CNI_LOCK: &str = "cni.lock";

/// The attachments to network `name` that the pods in `run_dir` (but
/// `skip`) record.
fn attachments_on(
    run_dir: &Path,
    name: &str,
    skip: Option<&str>,
) -> Result<Vec<ValidAttachment>, String> {
    let entries =
        std::fs::read_dir(run_dir).map_err(|e| format!("cannot list {run_dir:?}: {e}"))?;
    let mut valid = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {run_dir:?}: {e}"))?;
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let uuid = entry.file_name().to_string_lossy().into_owned();
        if Some(uuid.as_str()) == skip {
            continue;
        }
        let path = entry.path().join(pod_dir::NET_INFO);
        let nets = match std::fs::read(&path) {
            Ok(bytes) => {
                NetInfo::parse_list(&bytes).map_err(|e| format!("cannot read {path:?}: {e}"))?
            }
            // A pod without networks (yet: its record comes before ADD).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("cannot read {path:?}: {e}")),
        };
        valid.extend(
            nets.into_iter()
                .filter(|n| n.net_name == name)
                .map(|n| ValidAttachment {
                    container_id: uuid.clone(),
                    ifname: n.if_name,
                }),
        );
    }
    Ok(valid)
}

/// The CNI capability that carries port forwards.
const PORT_MAPPINGS: &str = "portMappings";

/// Whether a plugin of `net` declares capability `cap`.
fn declares(net: &NetConf, cap: &str) -> bool {
    net.plugins.iter().any(|p| declares_capability(&p.raw, cap))
}

/// The forwards as CNI's `portMappings` capability argument.
fn port_mappings(forwards: &[Forward]) -> Value {
    Value::Array(
        forwards
            .iter()
            .map(|f| {
                let mut m = serde_json::json!({
                    "hostPort": f.host_port,
                    "containerPort": f.pod_port,
                    "protocol": f.protocol.as_str(),
                });
                if let Some(ip) = f.host_ip {
                    m["hostIP"] = Value::String(ip.to_string());
                }
                m
            })
            .collect(),
    )
}

fn capabilities_path(net: &str) -> PathBuf {
    Path::new(pod_dir::NET_DIR).join(format!("{net}.capabilities.json"))
}

fn result_path(net: &str) -> PathBuf {
    Path::new(pod_dir::NET_DIR).join(format!("{net}.result.json"))
}

fn write_net_info(pod_dir: &Path, nets: &[NetInfo]) -> Result<(), PodNetError> {
    write_record(
        &pod_dir.join(pod_dir::NET_INFO),
        &serde_json::to_vec(nets).unwrap_or_default(),
    )
}

/// Writes `bytes` to `path` atomically (a crash leaves the old or the new
/// content, never a torn record).
fn write_record(path: &Path, bytes: &[u8]) -> Result<(), PodNetError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| PodNetError::Record {
            path: path.to_path_buf(),
            source,
        })
}

/// The first address of a CNI result: `ips[].address` (0.3.0 and later)
/// or `ip4.ip` / `ip6.ip` (0.1.0, 0.2.0), as an address and prefix.
pub fn first_address(result: &Value) -> Option<(IpAddr, u8)> {
    let parse = |cidr: &str| -> Option<(IpAddr, u8)> {
        let (ip, prefix) = cidr.split_once('/')?;
        Some((ip.parse().ok()?, prefix.parse().ok()?))
    };
    let listed: Vec<(IpAddr, u8)> = result["ips"]
        .as_array()
        .map(|ips| {
            ips.iter()
                .filter_map(|ip| ip["address"].as_str().and_then(parse))
                .collect()
        })
        .unwrap_or_default();
    // IPv4 first (rkt shows it, and forwarding needs it), as listed.
    listed
        .iter()
        .find(|(ip, _)| ip.is_ipv4())
        .or(listed.first())
        .copied()
        .or_else(|| result["ip4"]["ip"].as_str().and_then(parse))
        .or_else(|| result["ip6"]["ip"].as_str().and_then(parse))
}

/// The gateway of a CNI result's first address that has one (IPv4
/// first), in every result layout: where the pod reaches the host.
pub fn first_gateway(result: &Value) -> Option<IpAddr> {
    let listed: Vec<IpAddr> = result["ips"]
        .as_array()
        .map(|ips| {
            ips.iter()
                .filter_map(|ip| ip["gateway"].as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    listed
        .iter()
        .find(|ip| ip.is_ipv4())
        .or(listed.first())
        .copied()
        .or_else(|| result["ip4"]["gateway"].as_str()?.parse().ok())
        .or_else(|| result["ip6"]["gateway"].as_str()?.parse().ok())
}

/// A prefix length as a netmask address (rkt writes `mask` that way).
fn prefix_mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(_) => {
            let bits = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            IpAddr::V4(bits.into())
        }
        IpAddr::V6(_) => {
            let bits = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            IpAddr::V6(bits.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_attachments_are_those_the_running_pods_record() {
        let pods = tempfile::tempdir().unwrap();
        let run = pods.path().join("run");
        let pod = |uuid: &str, info: &str| {
            std::fs::create_dir_all(run.join(uuid)).unwrap();
            if !info.is_empty() {
                std::fs::write(run.join(uuid).join(pod_dir::NET_INFO), info).unwrap();
            }
        };
        pod(
            "a",
            r#"[{"netName":"n","ifName":"eth0"},{"netName":"m","ifName":"eth1"}]"#,
        );
        pod("b", r#"[{"netName":"n","ifName":"eth1"}]"#);
        pod("c", "");
        pod("me", r#"[{"netName":"n","ifName":"eth0"}]"#);
        let mut valid = attachments_on(&run, "n", Some("me")).unwrap();
        valid.sort_by(|x, y| x.container_id.cmp(&y.container_id));
        assert_eq!(
            valid,
            [
                ValidAttachment {
                    container_id: "a".into(),
                    ifname: "eth0".into()
                },
                ValidAttachment {
                    container_id: "b".into(),
                    ifname: "eth1".into()
                },
            ]
        );
        // A record it cannot read: nothing is known, so nothing is valid
        // and GC must not run.
        pod("d", "not json");
        assert!(attachments_on(&run, "n", Some("me")).is_err());
        assert!(attachments_on(&pods.path().join("nope"), "n", None).is_err());
    }
    use serde_json::json;

    #[test]
    fn addresses_of_every_result_layout() {
        let v1 = json!({"cniVersion": "1.0.0", "ips": [{"address": "172.16.28.5/24"}]});
        let v01 = json!({"cniVersion": "0.1.0", "ip4": {"ip": "10.1.2.3/16"}});
        assert_eq!(
            first_address(&v1),
            Some(("172.16.28.5".parse().unwrap(), 24))
        );
        assert_eq!(first_address(&v01), Some(("10.1.2.3".parse().unwrap(), 16)));
        assert_eq!(first_address(&json!({})), None);
        let gw = json!({"ips": [{"address": "fd00::5/64", "gateway": "fd00::1"},
                                {"address": "10.0.0.5/24", "gateway": "10.0.0.1"}]});
        assert_eq!(first_gateway(&gw), Some("10.0.0.1".parse().unwrap()));
        let gw01 = json!({"ip4": {"ip": "10.1.2.3/16", "gateway": "10.1.0.1"}});
        assert_eq!(first_gateway(&gw01), Some("10.1.0.1".parse().unwrap()));
        assert_eq!(first_gateway(&v1), None);
        let dual = json!({"ips": [{"address": "fd00::5/64"}, {"address": "10.0.0.5/24"}]});
        assert_eq!(
            first_address(&dual),
            Some(("10.0.0.5".parse().unwrap(), 24))
        );
        assert_eq!(
            prefix_mask("1.2.3.4".parse().unwrap(), 24),
            "255.255.255.0".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            prefix_mask("1.2.3.4".parse().unwrap(), 0),
            "0.0.0.0".parse::<IpAddr>().unwrap()
        );
    }
}
