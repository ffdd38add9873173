//! Flags shared by `run`, `prepare` and `run-prepared`, and the check that the
//! chosen stage1 can honour every one of them.

use std::path::PathBuf;

use abi::stage1::{Feature, IpcMode};
use anyhow::{bail, Result};
use clap::Args;
use stage0::pod::dns::DnsFlags;
use stage0::pod::stage1::Stage1Image;

use super::apps::AppFlags;

// Image, app and pod-definition flags (`run` and `prepare`). Not a doc
// comment: clap would take it for the `about` of the commands that flatten
// it (their flags are built after their own `about`, see `cli::Command`).
#[derive(Args, Debug, Clone)]
pub struct PrepareFlags {
    /// URL to an image to use as stage1
    #[arg(long, value_name = "URL")]
    pub stage1_url: Option<String>,
    /// absolute or relative path to an image to use as stage1
    #[arg(long, value_name = "PATH")]
    pub stage1_path: Option<PathBuf>,
    /// name of an image to use as stage1
    #[arg(long, value_name = "NAME")]
    pub stage1_name: Option<String>,
    /// hash of an image to use as stage1
    #[arg(long, value_name = "HASH")]
    pub stage1_hash: Option<String>,
    /// a filename of an image in the stage1 images directory to use as stage1
    #[arg(long, value_name = "FILE")]
    pub stage1_from_dir: Option<String>,
    /// volumes to make available in the pod: NAME,kind=host,source=PATH[,readOnly=BOOL][,recursive=BOOL] or NAME,kind=empty[,mode=..][,uid=..][,gid=..]
    #[arg(long, value_name = "VOLUME")]
    pub volume: Vec<String>,
    /// ports to forward: NAME:[HOSTIP:]HOSTPORT
    #[arg(long, value_name = "PORT")]
    pub port: Vec<String>,
    /// an environment variable to set for apps: NAME=VALUE
    #[arg(long, value_name = "NAME=VALUE")]
    pub set_env: Vec<String>,
    /// a file with environment variables to set for apps (NAME=VALUE lines)
    #[arg(long, value_name = "FILE")]
    pub set_env_file: Option<String>,
    /// inherit all environment variables not set by apps
    #[arg(long)]
    pub inherit_env: bool,
    /// the path to the pod manifest; when given, images and app flags are not allowed
    #[arg(long, value_name = "FILE")]
    pub pod_manifest: Option<PathBuf>,
    /// when to fetch images: new (only if missing), update (always), never
    #[arg(long, value_name = "POLICY", default_value = "new")]
    pub pull_policy: String,
    /// deprecated: use --pull-policy=never
    #[arg(long, hide = true)]
    pub store_only: bool,
    /// deprecated: use --pull-policy=update
    #[arg(long, hide = true)]
    pub no_store: bool,
    /// run within user namespaces
    #[arg(long)]
    pub private_users: bool,
    /// disable the overlay filesystem
    #[arg(long)]
    pub no_overlay: bool,
    /// per-app flags given before the first image (only --mount is allowed there)
    #[command(flatten)]
    pub app: AppFlags,
    /// IMAGE [per-app flags] [-- args ---] ...
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "IMAGE"
    )]
    pub images: Vec<String>,
}

// Runtime flags (`run` and `run-prepared`); not a doc comment, as above.
#[derive(Args, Debug, Clone, Default)]
pub struct RuntimeFlags {
    /// networks to join: host, none, all, default, default-restricted or NAME[:CNI_ARGS], comma separated
    #[arg(long, num_args = 0..=1, default_missing_value = "default", require_equals = true, value_name = "NETS")]
    pub net: Vec<String>,
    /// name servers for the pod (IP addresses, or "host" or "none")
    #[arg(long, value_name = "IP")]
    pub dns: Vec<String>,
    /// DNS search domains for the pod
    #[arg(long, value_name = "DOMAIN")]
    pub dns_search: Vec<String>,
    /// DNS options for the pod
    #[arg(long, value_name = "OPT")]
    pub dns_opt: Vec<String>,
    /// DNS domain for the pod
    #[arg(long, value_name = "DOMAIN")]
    pub dns_domain: Option<String>,
    /// entries to add to the pod's /etc/hosts: IP=HOSTNAME, or "host"
    #[arg(long, value_name = "IP=HOST")]
    pub hosts_entry: Vec<String>,
    /// the pod's hostname (default rkt-<uuid>)
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// run the pod interactively (attach stdin and the terminal)
    #[arg(long)]
    pub interactive: bool,
    /// register the pod with the metadata service
    #[arg(long)]
    pub mds_register: bool,
    /// IPC namespace: auto, private or parent
    #[arg(long, value_name = "MODE")]
    pub ipc: Option<String>,
}

impl RuntimeFlags {
    pub fn dns_flags(&self) -> DnsFlags {
        DnsFlags {
            servers: self.dns.clone(),
            search: self.dns_search.clone(),
            options: self.dns_opt.clone(),
            domain: self.dns_domain.clone(),
            hosts_entries: self.hosts_entry.clone(),
        }
    }

    /// The `--net` value, or `None` when the user gave none.
    pub fn net_list(&self) -> Option<String> {
        (!self.net.is_empty()).then(|| self.net.join(","))
    }

    pub fn ipc_mode(&self) -> Result<Option<IpcMode>> {
        match &self.ipc {
            None => Ok(None),
            Some(s) => IpcMode::parse(s).map(Some).map_err(anyhow::Error::msg),
        }
    }

    /// rkt's validation of flags that contradict each other.
    pub fn validate(&self, ports: usize, apps: usize) -> Result<()> {
        let nets: Vec<&str> = self
            .net
            .iter()
            .flat_map(|n| n.split(','))
            .map(|n| n.split(':').next().unwrap_or(n))
            .collect();
        let only = |name: &str| nets.len() == 1 && nets[0] == name;
        if ports > 0 && (only("host") || only("none")) {
            bail!(
                "--port cannot be used with --net={}; forwarding needs a contained network",
                nets[0]
            );
        }
        if self.mds_register && only("none") {
            bail!("--mds-register cannot be used with --net=none; the pod could not reach the metadata service");
        }
        if self.interactive && apps > 1 {
            bail!("--interactive can only be used with exactly one app, the pod has {apps}");
        }
        self.dns_flags().plan()?;
        self.ipc_mode()?;
        Ok(())
    }
}

/// What the stage1 is asked to do that needs a declared feature.
#[derive(Debug, Default)]
pub struct Demands {
    pub apps: usize,
    pub net: Option<String>,
    pub ports: bool,
    pub volumes: bool,
    pub readonly_rootfs: bool,
    pub resource_isolators: bool,
    pub capabilities: bool,
    pub seccomp: bool,
    pub oom_score_adj: bool,
    pub private_users: bool,
}

impl Demands {
    pub fn add_app_flags(&mut self, f: &AppFlags) {
        self.readonly_rootfs |= f.readonly_rootfs == Some(true);
        self.resource_isolators |= f.memory.is_some() || f.cpu.is_some() || f.cpu_shares.is_some();
        self.capabilities |= f.caps_retain.is_some() || f.caps_remove.is_some();
        self.seccomp |= f.seccomp.is_some();
        self.oom_score_adj |= f.oom_score_adj.is_some();
    }
}

/// Refuses, naming the flavor, what the stage1 declares it cannot honour
/// (rkt's fly silently ignored these).
pub fn check_features(stage1: &Stage1Image, d: &Demands, rt: Option<&RuntimeFlags>) -> Result<()> {
    let mut wanted: Vec<(Feature, String)> = Vec::new();
    if d.apps > 1 {
        wanted.push((Feature::MultiApp, format!("{} apps in one pod", d.apps)));
    }
    if let Some(net) = &d.net {
        for n in net.split(',') {
            let name = n.split(':').next().unwrap_or(n);
            let f = match name {
                "host" => Feature::NetHost,
                "none" => Feature::NetNone,
                _ => Feature::NetContained,
            };
            wanted.push((f, format!("--net={n}")));
        }
    }
    let mut flag = |cond: bool, f: Feature| {
        if cond {
            wanted.push((f, f.describe().to_string()));
        }
    };
    flag(d.ports, Feature::PortForward);
    flag(d.volumes, Feature::Volumes);
    flag(d.readonly_rootfs, Feature::ReadonlyRootfs);
    flag(d.resource_isolators, Feature::ResourceIsolators);
    flag(d.capabilities, Feature::Capabilities);
    flag(d.seccomp, Feature::Seccomp);
    flag(d.oom_score_adj, Feature::OomScoreAdj);
    flag(d.private_users, Feature::PrivateUsers);
    if let Some(rt) = rt {
        let dns = rt.dns_flags();
        flag(dns.any_dns(), Feature::Dns);
        flag(!rt.hosts_entry.is_empty(), Feature::HostsEntry);
        flag(rt.hostname.is_some(), Feature::Hostname);
        flag(rt.interactive, Feature::Interactive);
        flag(rt.mds_register, Feature::MetadataService);
        match rt.ipc_mode()? {
            Some(IpcMode::Private) => flag(true, Feature::IpcPrivate),
            Some(IpcMode::Parent) => flag(true, Feature::IpcParent),
            _ => {}
        }
    }
    for (feature, what) in wanted {
        if !stage1.supports(feature) {
            bail!(
                "the {} stage1 ({}) cannot honour {what}; drop it or choose another stage1 with --stage1-name",
                stage1.flavor(),
                stage1.name()
            );
        }
    }
    // Only once the stage1 can register the pod at all is the service's
    // absence the news.
    if rt.is_some_and(|rt| rt.mds_register) {
        stage0::services::metadata::client::probe(std::path::Path::new(
            abi::metadata::REGISTRATION_SOCKET,
        ))?;
    }
    Ok(())
}

/// The `--net` value passed to stage1: the user's, else `default` when the
/// stage1 has contained networking, else `host` (fly).
pub fn effective_net(stage1: &Stage1Image, rt: &RuntimeFlags) -> String {
    match rt.net_list() {
        Some(n) => n,
        None if stage1.supports(Feature::NetContained) => "default".to_string(),
        None => "host".to_string(),
    }
}
