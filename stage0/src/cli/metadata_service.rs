//! `rkt metadata-service [--listen-port=PORT]`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use stage0::services::metadata::server::{serve, Listen};

use super::Context;

#[derive(Args, Debug)]
pub struct MetadataServiceArgs {
    /// TCP port the pods reach the service on (all IPv4 addresses); pods
    /// are told port 18112, so change it only behind a forward
    #[arg(long, value_name = "PORT", default_value_t = abi::metadata::PORT)]
    pub listen_port: u16,
}

pub fn run(_ctx: &Context, args: MetadataServiceArgs) -> Result<i32> {
    serve(&Listen {
        socket: PathBuf::from(abi::metadata::REGISTRATION_SOCKET),
        port: args.listen_port,
    })?;
    Ok(0)
}
