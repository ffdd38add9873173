//! Global flags and the per-invocation context every command receives.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Args;
use stage0::config::{Config, InsecureOptions};

/// rkt's persistent flags; accepted before or after the subcommand.
#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// rkt data directory
    #[arg(long, global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// system configuration directory
    #[arg(
        long,
        global = true,
        default_value = "/usr/lib/rkt",
        value_name = "DIR"
    )]
    pub system_config: PathBuf,
    /// local configuration directory
    #[arg(long, global = true, default_value = "/etc/rkt", value_name = "DIR")]
    pub local_config: PathBuf,
    /// user configuration directory
    #[arg(long, global = true, value_name = "DIR")]
    pub user_config: Option<PathBuf>,
    /// comma-separated list of security features to disable: none, image, tls,
    /// ondisk, http, pubkey, capabilities, paths, seccomp, all-fetch, all-run, all
    #[arg(long, global = true, default_value = "none", value_name = "OPTS")]
    pub insecure_options: String,
    /// automatically trust gpg keys fetched from https
    #[arg(long, global = true)]
    pub trust_keys_from_https: bool,
    /// print out more debug information to stderr
    #[arg(long, global = true)]
    pub debug: bool,
    /// write a CPU profile to this file
    #[arg(long, global = true, hide = true, value_name = "FILE")]
    pub cpuprofile: Option<PathBuf>,
    /// write a memory profile to this file
    #[arg(long, global = true, hide = true, value_name = "FILE")]
    pub memprofile: Option<PathBuf>,
}

/// What every command needs: resolved directories and options.
#[derive(Debug)]
pub struct Context {
    pub data_dir: PathBuf,
    pub system_config: PathBuf,
    pub local_config: PathBuf,
    pub user_config: Option<PathBuf>,
    pub insecure: InsecureOptions,
    pub debug: bool,
    /// Trust the keys a name's discovery offers over https when none are
    /// trusted for it yet.
    pub trust_keys_from_https: bool,
    config: Config,
}

/// rkt's default data directory.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/rkt";

impl Context {
    pub fn new(g: GlobalArgs) -> Result<Self> {
        let insecure = InsecureOptions::parse(&g.insecure_options)?;
        let user_config = g.user_config.filter(|p| !p.as_os_str().is_empty());
        let mut dirs: Vec<&std::path::Path> = vec![&g.system_config, &g.local_config];
        if let Some(u) = &user_config {
            dirs.push(u);
        }
        let config = Config::load(&dirs)?;
        // --dir wins over paths.d's `data`, which wins over the default.
        let data_dir = match (g.dir, &config.paths.data) {
            (Some(d), _) => absolute(d)?,
            (None, Some(d)) => absolute(d.clone())?,
            (None, None) => PathBuf::from(DEFAULT_DATA_DIR),
        };
        Ok(Context {
            data_dir,
            system_config: g.system_config,
            local_config: g.local_config,
            user_config,
            insecure,
            debug: g.debug,
            trust_keys_from_https: g.trust_keys_from_https,
            config,
        })
    }

    /// The keys trusted to sign images (system and local config dirs).
    pub fn keystore(&self) -> stage0::trust::Keystore {
        stage0::trust::Keystore::new(&self.system_config, &self.local_config)
    }

    /// A fetcher into `store` with the global options: insecure options,
    /// the keystore, `--trust-keys-from-https`, `auth.d`'s credentials.
    pub fn fetcher<'a>(
        &self,
        store: &'a stage0::store::Store,
        policy: stage0::fetch::PullPolicy,
    ) -> Result<stage0::fetch::Fetcher<'a>> {
        let auth = stage0::fetch::AuthHeaders::from_config(&self.config.auth)
            .map_err(anyhow::Error::msg)?;
        Ok(
            stage0::fetch::Fetcher::new(store, self.insecure, policy, self.debug)
                .with_keystore(self.keystore())
                .with_trust_keys_from_https(self.trust_keys_from_https)
                .with_auth(auth)
                .with_docker_auth(self.config.docker_auth.clone()),
        )
    }

    /// The merged system/local/user configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

fn absolute(p: PathBuf) -> Result<PathBuf> {
    let abs = if p.is_absolute() {
        p
    } else {
        std::env::current_dir()
            .context("cannot read the current directory")?
            .join(p)
    };
    // rkt resolves symlinks of an existing data dir so pod paths are stable.
    Ok(abs.canonicalize().unwrap_or(abs))
}
