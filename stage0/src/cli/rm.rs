//! `rkt rm`: remove specific pods now (what gc would do, without waiting).

use anyhow::{bail, Result};
use clap::Args;
use stage0::pod::lifecycle::{
    ensure_superuser, read_uuid_file, DeleteOptions, Pod, PodError, PodState,
};
use stage0::pod::mounts::MountTable;

use super::Context;

#[derive(Args, Debug)]
pub struct RmArgs {
    /// read pod UUID from file instead of argument
    #[arg(long, value_name = "FILE")]
    uuid_file: Option<std::path::PathBuf>,
    /// pod UUIDs (or unique prefixes)
    uuids: Vec<String>,
}

pub fn run(ctx: &Context, args: RmArgs) -> Result<i32> {
    ensure_superuser()?;
    let mut failed = false;
    let uuids = match (&args.uuid_file, args.uuids.is_empty()) {
        (Some(f), true) => match read_uuid_file(f) {
            Ok(u) => vec![u],
            Err(e) => {
                eprintln!("rm: unable to resolve UUID from file: {e}");
                failed = true;
                Vec::new()
            }
        },
        (None, false) => args.uuids.clone(),
        _ => bail!("pass --uuid-file=FILE or one or more UUIDs"),
    };
    let opts = DeleteOptions {
        local_config: ctx.local_config.clone(),
        debug: ctx.debug,
    };
    for u in uuids {
        let pod = match Pod::load_prefix(&ctx.data_dir, &u) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("rm: cannot get pod: {e}");
                failed = true;
                continue;
            }
        };
        let uuid = pod.uuid().to_string();
        if remove(pod, &opts) {
            println!("{uuid:?}");
        } else {
            failed = true;
        }
    }
    if failed {
        eprintln!("rm: failed to remove one or more pods");
        return Ok(super::EXIT_FAILURE);
    }
    Ok(0)
}

fn remove(mut p: Pod, opts: &DeleteOptions) -> bool {
    let uuid = p.uuid().to_string();
    let moved = match p.state() {
        PodState::Running => {
            eprintln!("rm: pod {uuid:?} is currently running");
            return false;
        }
        PodState::Embryo | PodState::Preparing => {
            eprintln!("rm: pod {uuid:?} is currently being prepared");
            return false;
        }
        PodState::Deleting | PodState::ExitedDeleting => {
            eprintln!("rm: pod {uuid:?} is currently being deleted");
            return false;
        }
        PodState::AbortedPrepare => {
            eprintln!("rm: moving failed prepare {uuid:?} to garbage");
            p.to_garbage()
        }
        PodState::Prepared => {
            eprintln!("rm: moving expired prepared pod {uuid:?} to garbage");
            p.to_garbage()
        }
        PodState::Exited => p.to_exited_garbage(),
        PodState::ExitedGarbage | PodState::Garbage => Ok(()),
    };
    match moved {
        Ok(()) => {}
        Err(PodError::Gone(_)) => {
            if p.refresh().is_err() {
                eprintln!("rm: pod {uuid:?} disappeared");
                return false;
            }
        }
        Err(e) => {
            eprintln!("rm: rename error: {e}");
            return false;
        }
    }
    if let Err(e) = p.take_exclusive_lock() {
        eprintln!("rm: unable to acquire exclusive lock: {e}");
        return false;
    }
    let mounts = match MountTable::read() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("rm: {e}");
            return false;
        }
    };
    match p.delete(opts, &mounts) {
        Ok(warnings) => {
            for w in warnings {
                eprintln!("rm: {w}");
            }
            true
        }
        Err(e) => {
            eprintln!("rm: unable to remove pod {uuid:?}: {e}");
            false
        }
    }
}
