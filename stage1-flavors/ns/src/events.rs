//! appc event handlers (appc.md §6.6): `pre-start` runs in the app's root
//! before the app, `post-stop` after it exits; both as root with the app's
//! environment (rkt's ExecStartPre / ExecStopPost).

use std::convert::Infallible;
use std::path::Path;

use abi::schema::App;
use nix::errno::Errno;
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid};
use thiserror::Error;

use stage1_common::paths::{resolve_exec, PathError};

use crate::signals::{self, BlockedSignals, SignalError};
use crate::{exec, fail, fork, EntryError};

pub const PRE_START: &str = "pre-start";
pub const POST_STOP: &str = "post-stop";

/// PATH when the app's environment has none (rkt's default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, Error)]
pub enum EventError {
    #[error("the {0} handler has an empty exec; give it a command")]
    EmptyExec(&'static str),
    #[error(transparent)]
    Path(#[from] PathError),
    #[error(transparent)]
    Signal(#[from] SignalError),
    #[error(transparent)]
    Entry(#[from] EntryError),
    #[error("cannot wait for the {name} handler: {errno}")]
    Wait { name: &'static str, errno: Errno },
}

/// The handlers of one app.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handlers {
    pub pre_start: Option<Vec<String>>,
    pub post_stop: Option<Vec<String>>,
}

impl Handlers {
    pub fn from_app(app: &App) -> Self {
        let find = |name: &str| {
            app.event_handlers
                .iter()
                .find(|h| h.name == name)
                .map(|h| h.exec.clone())
        };
        Handlers {
            pre_start: find(PRE_START),
            post_stop: find(POST_STOP),
        }
    }
}

/// Replaces the process with handler `name`, resolved in the current root
/// against the app's PATH; the caller is already in the app's root.
pub fn exec_handler(
    name: &'static str,
    argv: &[String],
    env: &[String],
    signals: &BlockedSignals,
) -> Result<Infallible, EventError> {
    let exec0 = argv
        .first()
        .filter(|a| !a.is_empty())
        .ok_or(EventError::EmptyExec(name))?;
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    let resolved = resolve_exec(Path::new("/"), exec0, path)?;
    signals.restore()?;
    Ok(exec(&resolved, argv, env)?)
}

/// Runs handler `name` in a child and waits for it: its exit code.
pub fn run_handler(
    name: &'static str,
    argv: &[String],
    env: &[String],
    signals: &BlockedSignals,
) -> Result<i32, EventError> {
    match fork()? {
        ForkResult::Child => {
            let err = match exec_handler(name, argv, env, signals) {
                Ok(never) => match never {},
                Err(e) => e,
            };
            fail(format!("{name} handler: {err}"))
        }
        ForkResult::Parent { child } => wait_exit(name, child),
    }
}

fn wait_exit(name: &'static str, child: Pid) -> Result<i32, EventError> {
    loop {
        match waitpid(child, None) {
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(EventError::Wait { name, errno }),
            Ok(st) => {
                if let Some(code) = signals::exit_code(st) {
                    return Ok(code);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::schema::EventHandler;

    #[test]
    fn finds_both_handlers_by_name() {
        let mut app = App::default();
        assert_eq!(Handlers::from_app(&app), Handlers::default());
        app.event_handlers = vec![
            EventHandler {
                name: POST_STOP.into(),
                exec: vec!["/bin/post".into()],
            },
            EventHandler {
                name: PRE_START.into(),
                exec: vec!["/bin/pre".into(), "x".into()],
            },
        ];
        let h = Handlers::from_app(&app);
        assert_eq!(h.pre_start, Some(vec!["/bin/pre".into(), "x".into()]));
        assert_eq!(h.post_stop, Some(vec!["/bin/post".into()]));
    }
}
