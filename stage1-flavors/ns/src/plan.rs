//! Planning an app before it starts: credentials, exec path, environment,
//! volumes, isolators and event handlers resolved against its rootfs, so a
//! bad app fails before anything runs. `run` plans the pod's apps on the
//! host; the supervisor plans apps added to a mutable pod inside it.

use std::path::{Path, PathBuf};

use abi::schema::{IsolatorValue, SchemaError, Volume};
use abi::stage1::RunArgs;
use thiserror::Error;

use stage1_common::cgroups::Resources;
use stage1_common::env::{self, EnvError};
use stage1_common::isolators::{AppSecurity, Insecure, IsolatorError};
use stage1_common::paths::{path_inside, resolve_exec, resolve_in_root, PathError};
use stage1_common::pod::PodApp;
use stage1_common::user::{self, UserError};
use stage1_common::volumes::{self, VolumeError};

use crate::events::Handlers;
use crate::rootfs::AppRoot;
use crate::supervisor::AppLaunch;

#[derive(Debug, Error)]
pub enum PlanError {
    #[error("app {0:?} has no exec; pass --exec or use an image whose app has one")]
    NoExec(String),
    #[error("app rootfs {0:?} is missing; the pod was not prepared correctly")]
    NoRootfs(PathBuf),
    #[error("cannot resolve the user/group of app {app:?}: {source}")]
    User {
        app: String,
        #[source]
        source: UserError,
    },
    #[error("app {app:?}: {source}")]
    Path {
        app: String,
        #[source]
        source: PathError,
    },
    #[error(transparent)]
    Volume(#[from] VolumeError),
    #[error("invalid isolator in app {app:?}: {source}")]
    Isolator {
        app: String,
        #[source]
        source: SchemaError,
    },
    #[error("invalid isolators in app {app:?}: {source}")]
    Security {
        app: String,
        #[source]
        source: IsolatorError,
    },
    #[error(transparent)]
    Env(#[from] EnvError),
}

/// Where the pod is, as the planning process sees it.
#[derive(Debug, Clone)]
pub struct PodPaths {
    pub pod_dir: PathBuf,
    pub stage1_rootfs: PathBuf,
}

/// Plans `app` of a pod with `volumes`, run with `args`; writes the app's
/// env file (for `enter`). `console` is the terminal of an interactive pod.
pub fn plan_app(
    paths: &PodPaths,
    volumes: &[Volume],
    app: &PodApp,
    args: &RunArgs,
    console: Option<PathBuf>,
) -> Result<AppLaunch, PlanError> {
    let name = &app.name;
    if app.app.exec.first().is_none_or(String::is_empty) {
        return Err(PlanError::NoExec(name.clone()));
    }
    let rootfs = &app.rootfs;
    if !rootfs.is_dir() {
        return Err(PlanError::NoRootfs(rootfs.clone()));
    }
    let path_err = |source| PlanError::Path {
        app: name.clone(),
        source,
    };
    let creds = user::resolve_credentials(rootfs, &app.app).map_err(|source| PlanError::User {
        app: name.clone(),
        source,
    })?;
    let environment = env::compose(name, &app.app, None);
    let exec_path =
        resolve_exec(rootfs, &app.app.exec[0], environment.search_path()).map_err(path_err)?;
    let mounts = volumes::plan_mounts(volumes, app)?;
    let wd = app.working_directory();
    // Checked by the app's chdir: it may be a volume mounted later.
    let workdir = path_inside(
        rootfs,
        &resolve_in_root(rootfs, Path::new(wd)).map_err(path_err)?,
    );
    let isolators = typed_isolators(app)?;
    let insecure = Insecure {
        capabilities: args.disable_capabilities,
        seccomp: args.disable_seccomp,
    };
    let security = AppSecurity::new(&isolators, creds.uid, insecure).map_err(|source| {
        PlanError::Security {
            app: name.clone(),
            source,
        }
    })?;
    environment.write_file(&env::env_file_path(&paths.stage1_rootfs, name))?;
    crate::debug(
        args.debug,
        format!("app {name:?} exec {exec_path:?} as {creds:?}"),
    );
    Ok(AppLaunch {
        name: name.clone(),
        root: AppRoot {
            pod_dir: paths.pod_dir.clone(),
            stage1_rootfs: paths.stage1_rootfs.clone(),
            rootfs: rootfs.clone(),
            mounts,
            dns: args.dns_conf_mode,
            read_only: app.runtime.read_only_root_fs,
            console,
            protect_paths: !args.disable_paths,
        },
        exec_path,
        argv: app.app.exec.clone(),
        env: environment.to_strings(),
        creds,
        workdir,
        security,
        resources: resources(&isolators),
        handlers: Handlers::from_app(&app.app),
        interactive: args.interactive,
    })
}

/// Tells a planned app where the metadata service is (`AC_METADATA_URL`,
/// known once the pod's network is up), in its env file too (for `enter`).
pub fn set_metadata_url(
    app: &mut AppLaunch,
    stage1_rootfs: &Path,
    url: &str,
) -> Result<(), PlanError> {
    // The planned environment, which its env file holds too.
    let mut environment = env::Environment::new();
    for (name, value) in app.env.iter().filter_map(|v| v.split_once('=')) {
        environment.set(name, value);
    }
    environment.set("AC_METADATA_URL", url);
    environment.write_file(&env::env_file_path(stage1_rootfs, &app.name))?;
    app.env = environment.to_strings();
    Ok(())
}

/// The cgroup limits `app` will get (from its resource isolators).
pub fn app_resources(app: &PodApp) -> Result<Resources, PlanError> {
    Ok(resources(&typed_isolators(app)?))
}

/// The app's isolators, each parsed by its name.
fn typed_isolators(app: &PodApp) -> Result<Vec<IsolatorValue>, PlanError> {
    app.app
        .isolators
        .iter()
        .map(|i| i.typed())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| PlanError::Isolator {
            app: app.name.clone(),
            source,
        })
}

/// The app's cgroup limits from its resource isolators.
fn resources(isolators: &[IsolatorValue]) -> Resources {
    let mut r = Resources::default();
    for iso in isolators {
        match iso {
            IsolatorValue::ResourceMemory { limit, .. } => r.memory_bytes = *limit,
            IsolatorValue::ResourceCpu { limit, .. } => r.cpu_millis = *limit,
            IsolatorValue::CpuShares(n) => r.cpu_shares = Some(*n),
            _ => {}
        }
    }
    r
}
