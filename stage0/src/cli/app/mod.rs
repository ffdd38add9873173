//! `rkt app …`: rkt's experimental mutable pods. `sandbox` starts a pod with
//! no apps; `add`, `start`, `stop` and `rm` change it while it runs through
//! the stage1's crossing entrypoints; `list` and `status` show its apps.
//!
//! Errors are printed here as `app <sub>: <problem>` (exit 254), so the
//! line names the subcommand, not just `app`.

mod add;
mod list;
mod mutable_pod;
mod rm;
mod sandbox;
mod start;
mod status;
mod stop;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::{one_line, Context, EXIT_FAILURE};

#[derive(Args, Debug)]
pub struct AppArgs {
    #[command(subcommand)]
    command: AppCommand,
}

// Parsed once per process; boxing the big variants buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum AppCommand {
    /// Start an empty mutable pod that apps are added to later
    Sandbox(sandbox::SandboxArgs),
    /// Add an app to a running mutable pod
    Add(add::AddArgs),
    /// Start an app added to a mutable pod
    Start(start::StartArgs),
    /// Stop an app of a mutable pod
    Stop(stop::StopArgs),
    /// Stop and remove an app from a mutable pod
    Rm(rm::RmArgs),
    /// List the apps of a mutable pod
    List(list::ListArgs),
    /// Show the status of one app of a mutable pod
    Status(status::StatusArgs),
}

impl AppCommand {
    fn name(&self) -> &'static str {
        match self {
            AppCommand::Sandbox(_) => "sandbox",
            AppCommand::Add(_) => "add",
            AppCommand::Start(_) => "start",
            AppCommand::Stop(_) => "stop",
            AppCommand::Rm(_) => "rm",
            AppCommand::List(_) => "list",
            AppCommand::Status(_) => "status",
        }
    }

    fn run(self, ctx: &Context) -> Result<i32> {
        match self {
            AppCommand::Sandbox(a) => sandbox::run(ctx, a),
            AppCommand::Add(a) => add::run(ctx, a),
            AppCommand::Start(a) => start::run(ctx, a),
            AppCommand::Stop(a) => stop::run(ctx, a),
            AppCommand::Rm(a) => rm::run(ctx, a),
            AppCommand::List(a) => list::run(ctx, a),
            AppCommand::Status(a) => status::run(ctx, a),
        }
    }
}

pub fn run(ctx: &Context, args: AppArgs) -> Result<i32> {
    let name = args.command.name();
    match args.command.run(ctx) {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("app {name}: {}", one_line(&e));
            Ok(EXIT_FAILURE)
        }
    }
}
