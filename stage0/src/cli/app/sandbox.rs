//! `rkt app sandbox`: prepare a mutable pod with no apps and run its stage1
//! in the foreground (`--mutable`) until `rkt stop`, like `rkt run`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use stage0::pod::lifecycle::ensure_superuser;
use stage0::pod::options::{parse_env_pair, parse_sandbox_port};

use crate::cli::apps::AppFlags;
use crate::cli::launch::launch;
use crate::cli::pod_flags::{PrepareFlags, RuntimeFlags};
use crate::cli::prepare_pod::{prepare_sandbox, SandboxOptions};
use crate::cli::Context;

#[derive(Args, Debug)]
pub struct SandboxArgs {
    /// write the pod's UUID to this file as soon as the pod exists
    #[arg(long, value_name = "FILE")]
    uuid_file_save: Option<PathBuf>,
    /// networks to join: host, none, all, default, default-restricted or NAME[:CNI_ARGS], comma separated
    #[arg(long, num_args = 0..=1, default_missing_value = "default", require_equals = true, value_name = "NETS")]
    net: Vec<String>,
    /// disable the overlay filesystem
    #[arg(long)]
    no_overlay: bool,
    /// name servers for the pod (IP addresses, or "host" or "none")
    #[arg(long, value_name = "IP")]
    dns: Vec<String>,
    /// DNS search domains for the pod
    #[arg(long, value_name = "DOMAIN")]
    dns_search: Vec<String>,
    /// DNS options for the pod
    #[arg(long, value_name = "OPT")]
    dns_opt: Vec<String>,
    /// DNS domain for the pod
    #[arg(long, value_name = "DOMAIN")]
    dns_domain: Option<String>,
    /// entries to add to the pod's /etc/hosts: IP=HOSTNAME, or "host"
    #[arg(long, value_name = "IP=HOST")]
    hosts_entry: Vec<String>,
    /// the pod's hostname (default rkt-<uuid>)
    #[arg(long, value_name = "NAME")]
    hostname: Option<String>,
    /// ports to expose on the host: NAME:PROTO:PODPORT:HOSTIP:HOSTPORT
    #[arg(long, value_name = "PORT")]
    port: Vec<String>,
    /// set a pod annotation: NAME=VALUE
    #[arg(long, value_name = "NAME=VALUE")]
    annotation: Vec<String>,
    /// set a pod user annotation: NAME=VALUE
    #[arg(long, value_name = "NAME=VALUE")]
    user_annotation: Vec<String>,
    /// set a pod user label: NAME=VALUE
    #[arg(long, value_name = "NAME=VALUE")]
    user_label: Vec<String>,
    /// URL to an image to use as stage1
    #[arg(long, value_name = "URL")]
    stage1_url: Option<String>,
    /// absolute or relative path to an image to use as stage1
    #[arg(long, value_name = "PATH")]
    stage1_path: Option<PathBuf>,
    /// name of an image to use as stage1
    #[arg(long, value_name = "NAME")]
    stage1_name: Option<String>,
    /// hash of an image to use as stage1
    #[arg(long, value_name = "HASH")]
    stage1_hash: Option<String>,
    /// a filename of an image in the stage1 images directory to use as stage1
    #[arg(long, value_name = "FILE")]
    stage1_from_dir: Option<String>,
}

impl SandboxArgs {
    fn prepare_flags(&self) -> PrepareFlags {
        PrepareFlags {
            stage1_url: self.stage1_url.clone(),
            stage1_path: self.stage1_path.clone(),
            stage1_name: self.stage1_name.clone(),
            stage1_hash: self.stage1_hash.clone(),
            stage1_from_dir: self.stage1_from_dir.clone(),
            volume: Vec::new(),
            port: Vec::new(),
            set_env: Vec::new(),
            set_env_file: None,
            inherit_env: false,
            pod_manifest: None,
            pull_policy: "new".to_string(),
            store_only: false,
            no_store: false,
            private_users: false,
            no_overlay: self.no_overlay,
            app: AppFlags::default(),
            images: Vec::new(),
        }
    }

    fn runtime_flags(&self) -> RuntimeFlags {
        RuntimeFlags {
            net: self.net.clone(),
            dns: self.dns.clone(),
            dns_search: self.dns_search.clone(),
            dns_opt: self.dns_opt.clone(),
            dns_domain: self.dns_domain.clone(),
            hosts_entry: self.hosts_entry.clone(),
            hostname: self.hostname.clone(),
            ..Default::default()
        }
    }

    fn sandbox_options(&self) -> Result<SandboxOptions> {
        let pairs = |list: &[String]| -> Result<Vec<(String, String)>> {
            list.iter()
                .map(|p| parse_env_pair(p).map_err(anyhow::Error::from))
                .collect()
        };
        let map = |list: &[String]| -> Result<BTreeMap<String, String>> {
            Ok(pairs(list)?.into_iter().collect())
        };
        Ok(SandboxOptions {
            ports: self
                .port
                .iter()
                .map(|p| parse_sandbox_port(p))
                .collect::<Result<_, _>>()?,
            annotations: pairs(&self.annotation)?,
            user_annotations: map(&self.user_annotation)?,
            user_labels: map(&self.user_label)?,
        })
    }
}

pub fn run(ctx: &Context, args: SandboxArgs) -> Result<i32> {
    ensure_superuser()?;
    let runtime = args.runtime_flags();
    let options = args.sandbox_options()?;
    let mut prepared = prepare_sandbox(
        ctx,
        &args.prepare_flags(),
        &runtime,
        args.uuid_file_save.as_deref(),
        &options,
    )?;
    prepared.pod.to_run()?;
    let pod = &prepared.pod;

    // `rkt run`'s launch; the manifest's mutable annotation adds `--mutable`.
    launch(ctx, pod, &prepared.stage1, &prepared.manifest, &runtime)
}
