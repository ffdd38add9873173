//! What `enter` does once it is in the app's root, whatever the flavor got
//! it there (fly chroots, ns joins the app's namespaces): the working
//! directory, the credentials and the command, resolved inside that root.

use std::path::Path;

use nix::unistd::chdir;
use thiserror::Error;

use crate::paths::{resolve_exec, resolve_in_root, PathError};
use crate::pod::PodApp;
use crate::user::{self, Credentials, UserError};

/// What runs when stage0 passes no command.
pub const DEFAULT_COMMAND: &str = "/bin/sh";

#[derive(Debug, Error)]
pub enum EnterError {
    #[error("cannot chdir to /: {0}")]
    Chdir(nix::errno::Errno),
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("cannot resolve the user/group of app {app:?}: {source}")]
    User {
        app: String,
        #[source]
        source: UserError,
    },
}

/// The command to run in the app and as whom.
#[derive(Debug)]
pub struct EnterCommand {
    pub creds: Credentials,
    /// The executable, resolved in the app's root.
    pub path: String,
    pub argv: Vec<String>,
}

/// In the app's root (`/` is its rootfs): moves to its working directory
/// (`/` when that is gone) and resolves `command` (the default shell when
/// empty) through `search_path`, and the app's credentials.
pub fn prepare_in_root(
    app: &PodApp,
    command: &[String],
    search_path: &str,
) -> Result<EnterCommand, EnterError> {
    let slash = Path::new("/");
    let wd = resolve_in_root(slash, Path::new(app.working_directory()))?;
    if chdir(&wd).is_err() {
        chdir(slash).map_err(EnterError::Chdir)?;
    }
    let creds = user::resolve_credentials(slash, &app.app).map_err(|source| EnterError::User {
        app: app.name.clone(),
        source,
    })?;
    let argv = if command.is_empty() {
        vec![DEFAULT_COMMAND.to_string()]
    } else {
        command.to_vec()
    };
    let path = resolve_exec(slash, &argv[0], search_path)?;
    Ok(EnterCommand { creds, path, argv })
}
