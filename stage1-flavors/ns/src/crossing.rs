//! What the crossing entrypoints (`app/add`, `app/start`, `app/stop`,
//! `app/rm`) share: stage0 runs them on the host with cwd = the pod
//! directory, rkt's arguments and a replaced environment naming the pod's
//! PID 1 (reference/rkt.md §2.6); each turns into one request to the
//! supervisor, whose answer becomes the exit status.

use abi::stage1::AppArgs;
use anyhow::{bail, Context, Result};

use crate::control::{self, Request, Response};

/// The pod's PID 1 (host pid), set by stage0.
pub const ENTER_PID_ENV: &str = "RKT_STAGE1_ENTERPID";

/// The parsed arguments and the pod's PID 1.
pub fn args() -> Result<(AppArgs, i32)> {
    let args = AppArgs::parse(std::env::args().skip(1)).context("invalid arguments")?;
    let pid = std::env::var(ENTER_PID_ENV)
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|p| *p > 1);
    let Some(pid) = pid else {
        bail!("{ENTER_PID_ENV} must hold the pod's PID 1; run this through `rkt app`");
    };
    Ok((args, pid))
}

/// Sends a request that needs nothing but the app's name; the exit status.
pub fn simple(make: fn(String) -> Request) -> Result<i32> {
    let (args, pid) = args()?;
    let response = control::send(&control::socket_of(pid), &make(args.app))?;
    Ok(report(response))
}

/// Prints why a request failed; its exit status.
pub fn report(response: Response) -> i32 {
    if response.code != 0 && !response.message.is_empty() {
        eprintln!("{}", response.message);
    }
    response.code
}

/// Runs an entrypoint's body, exiting with its status (254 on an error of
/// the entrypoint itself, as every stage1 binary does).
pub fn main(body: impl FnOnce() -> Result<i32>) -> ! {
    match body() {
        Ok(code) => std::process::exit(code),
        Err(e) => crate::fail(format!("{e:#}")),
    }
}
