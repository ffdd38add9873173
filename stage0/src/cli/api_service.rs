//! `rkt api-service [--listen=ADDR]`.

use anyhow::Result;
use clap::Args;
use stage0::services::api::proto::GlobalFlags;
use stage0::services::api::server::{serve, Config};

use super::Context;

#[derive(Args, Debug)]
pub struct ApiServiceArgs {
    /// address to listen on (host:port; default localhost:15441); not with
    /// systemd socket activation, which passes the sockets
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

pub fn run(ctx: &Context, args: ApiServiceArgs) -> Result<i32> {
    serve(Config {
        data_dir: ctx.data_dir.clone(),
        global_flags: GlobalFlags {
            dir: ctx.data_dir.display().to_string(),
            system_config_dir: ctx.system_config.display().to_string(),
            local_config_dir: ctx.local_config.display().to_string(),
            user_config_dir: ctx
                .user_config
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            insecure_flags: ctx.insecure.to_string(),
            trust_keys_from_https: ctx.trust_keys_from_https,
        },
        listen: args.listen,
    })?;
    Ok(0)
}
