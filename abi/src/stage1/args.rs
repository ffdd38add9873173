//! Typed arguments of the run / enter / gc / stop / app entrypoints: builders
//! for stage0 (`to_argv`, gated by interface version) and parsers for stage1.
//!
//! Parsing accepts Go `flag` forms: `--name=value`, `--name value`, `--bool`,
//! `--bool=true|false`, single or double dash.

use std::fmt;

use thiserror::Error;

use super::InterfaceVersion;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ArgsError {
    #[error("unknown flag {0:?}")]
    UnknownFlag(String),
    #[error("flag {0} needs a value")]
    MissingValue(String),
    #[error("invalid value {value:?} for {flag}: {reason}")]
    InvalidValue {
        flag: String,
        value: String,
        reason: String,
    },
    #[error("expected exactly one pod UUID argument, got {0:?}")]
    Positional(Vec<String>),
}

/// resolv.conf handling inside the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResolvMode {
    /// Bind the host's /etc/resolv.conf.
    Host,
    /// stage0 wrote `etc/rkt-resolv.conf`.
    Stage0,
    /// Leave the app's file alone.
    None,
    /// Write one only if a CNI plugin returned DNS.
    #[default]
    Default,
}

/// /etc/hosts handling inside the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostsMode {
    Host,
    Stage0,
    #[default]
    Default,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DnsConfMode {
    pub resolv: ResolvMode,
    pub hosts: HostsMode,
}

impl DnsConfMode {
    pub fn is_default(&self) -> bool {
        *self == DnsConfMode::default()
    }

    /// Parses a `--dns-conf-mode` value (`resolv=<m>,hosts=<m>`, either part optional).
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut mode = DnsConfMode::default();
        for part in value.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not key=value"))?;
            match k {
                "resolv" => {
                    mode.resolv = match v {
                        "host" => ResolvMode::Host,
                        "stage0" => ResolvMode::Stage0,
                        "none" => ResolvMode::None,
                        "default" => ResolvMode::Default,
                        _ => return Err(format!("unknown resolv mode {v:?}")),
                    }
                }
                "hosts" => {
                    mode.hosts = match v {
                        "host" => HostsMode::Host,
                        "stage0" => HostsMode::Stage0,
                        "default" => HostsMode::Default,
                        _ => return Err(format!("unknown hosts mode {v:?}")),
                    }
                }
                _ => return Err(format!("unknown key {k:?}")),
            }
        }
        Ok(mode)
    }
}

impl fmt::Display for DnsConfMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let resolv = match self.resolv {
            ResolvMode::Host => "host",
            ResolvMode::Stage0 => "stage0",
            ResolvMode::None => "none",
            ResolvMode::Default => "default",
        };
        let hosts = match self.hosts {
            HostsMode::Host => "host",
            HostsMode::Stage0 => "stage0",
            HostsMode::Default => "default",
        };
        write!(f, "resolv={resolv},hosts={hosts}")
    }
}

/// `--ipc` mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpcMode {
    Auto,
    Private,
    Parent,
}

impl IpcMode {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "auto" | "" => Ok(IpcMode::Auto),
            "private" => Ok(IpcMode::Private),
            "parent" => Ok(IpcMode::Parent),
            _ => Err(format!(
                "unknown ipc mode {s:?}; use auto, private or parent"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IpcMode::Auto => "auto",
            IpcMode::Private => "private",
            IpcMode::Parent => "parent",
        }
    }
}

/// Arguments of the `run` entrypoint.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunArgs {
    pub debug: bool,
    /// Comma list as given by the user (`default` when unspecified).
    pub net: String,
    pub interactive: bool,
    /// `<shift>:<count>`.
    pub private_users: Option<String>,
    pub mds_token: Option<String>,
    pub local_config: String,
    pub hostname: Option<String>,
    pub dns_conf_mode: DnsConfMode,
    pub disable_capabilities: bool,
    pub disable_paths: bool,
    pub disable_seccomp: bool,
    pub mutable: bool,
    pub ipc: Option<IpcMode>,
    pub uuid: String,
}

impl RunArgs {
    /// The argv (without argv[0]) for a stage1 of `version`, plus a warning for
    /// each flag that version does not know (dropped, as rkt does).
    pub fn to_argv(&self, version: InterfaceVersion) -> (Vec<String>, Vec<String>) {
        let mut argv = Vec::new();
        let mut warnings = Vec::new();
        if self.debug {
            argv.push("--debug".to_string());
        }
        argv.push(format!("--net={}", self.net));
        if self.interactive {
            argv.push("--interactive".to_string());
        }
        if let Some(pu) = &self.private_users {
            argv.push(format!("--private-users={pu}"));
        }
        if let Some(t) = &self.mds_token {
            argv.push(format!("--mds-token={t}"));
        }
        argv.push(format!("--local-config={}", self.local_config));
        if let Some(h) = &self.hostname {
            if version.supports_hostname() {
                argv.push(format!("--hostname={h}"));
            } else {
                warnings.push(unsupported("--hostname", version));
            }
        }
        if !self.dns_conf_mode.is_default() {
            if version.supports_dns_conf_mode() {
                argv.push(format!("--dns-conf-mode={}", self.dns_conf_mode));
            } else {
                warnings.push(unsupported("--dns-conf-mode", version));
            }
        }
        for (set, flag) in [
            (
                self.disable_capabilities,
                "--disable-capabilities-restriction",
            ),
            (self.disable_paths, "--disable-paths"),
            (self.disable_seccomp, "--disable-seccomp"),
        ] {
            if set {
                if version.supports_insecure_options() {
                    argv.push(flag.to_string());
                } else {
                    warnings.push(unsupported(flag, version));
                }
            }
        }
        if self.mutable {
            // stage0 refuses mutable pods on stage1s without app entrypoints
            // before getting here; the version gate mirrors rkt.
            if version.supports_mutable() {
                argv.push("--mutable".to_string());
            } else {
                warnings.push(unsupported("--mutable", version));
            }
        }
        if let Some(ipc) = self.ipc {
            if version.supports_ipc() {
                argv.push(format!("--ipc={}", ipc.as_str()));
            } else {
                warnings.push(unsupported("--ipc", version));
            }
        }
        argv.push(self.uuid.clone());
        (argv, warnings)
    }

    /// Parses the argv (without argv[0]) a stage1 `run` entrypoint received.
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Self, ArgsError> {
        let mut out = RunArgs {
            net: "default".to_string(),
            local_config: "/etc/rkt".to_string(),
            ..Default::default()
        };
        let positional = parse_flags(args, &RUN_FLAGS, |flag, value| {
            match flag {
                "debug" => out.debug = parse_bool(flag, value)?,
                "net" => out.net = value.to_string(),
                "interactive" => out.interactive = parse_bool(flag, value)?,
                "private-users" => out.private_users = non_empty(value),
                "mds-token" => out.mds_token = non_empty(value),
                "local-config" => out.local_config = value.to_string(),
                "hostname" => out.hostname = non_empty(value),
                "dns-conf-mode" => {
                    out.dns_conf_mode =
                        DnsConfMode::parse(value).map_err(|reason| invalid(flag, value, reason))?
                }
                "disable-capabilities-restriction" => {
                    out.disable_capabilities = parse_bool(flag, value)?
                }
                "disable-paths" => out.disable_paths = parse_bool(flag, value)?,
                "disable-seccomp" => out.disable_seccomp = parse_bool(flag, value)?,
                "mutable" => out.mutable = parse_bool(flag, value)?,
                "ipc" => {
                    out.ipc = Some(IpcMode::parse(value).map_err(|r| invalid(flag, value, r))?)
                }
                _ => unreachable!("flag table and match disagree on {flag}"),
            }
            Ok(())
        })?;
        out.uuid = single_positional(positional)?;
        Ok(out)
    }
}

const RUN_FLAGS: [(&str, bool); 13] = [
    ("debug", true),
    ("net", false),
    ("interactive", true),
    ("private-users", false),
    ("mds-token", false),
    ("local-config", false),
    ("hostname", false),
    ("dns-conf-mode", false),
    ("disable-capabilities-restriction", true),
    ("disable-paths", true),
    ("disable-seccomp", true),
    ("mutable", true),
    ("ipc", false),
];

/// Arguments of the `enter` entrypoint: `--pid=N --appname=A -- CMD ARGS…`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnterArgs {
    pub pid: i32,
    pub app_name: String,
    pub command: Vec<String>,
}

impl EnterArgs {
    pub fn to_argv(&self) -> Vec<String> {
        let mut argv = vec![
            format!("--pid={}", self.pid),
            format!("--appname={}", self.app_name),
            "--".to_string(),
        ];
        argv.extend(self.command.iter().cloned());
        argv
    }

    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Self, ArgsError> {
        let mut out = EnterArgs::default();
        let mut pid = None;
        let command = parse_flags(
            args,
            &[("pid", false), ("appname", false)],
            |flag, value| {
                match flag {
                    "pid" => {
                        pid = Some(
                            value
                                .parse::<i32>()
                                .map_err(|e| invalid(flag, value, e.to_string()))?,
                        )
                    }
                    _ => out.app_name = value.to_string(),
                }
                Ok(())
            },
        )?;
        out.pid = pid.ok_or_else(|| ArgsError::MissingValue("--pid".to_string()))?;
        out.command = command;
        Ok(out)
    }
}

/// Arguments of the `gc` entrypoint: `[--debug] [--local-config DIR] UUID`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GcArgs {
    pub debug: bool,
    pub local_config: Option<String>,
    pub uuid: String,
}

impl GcArgs {
    pub fn to_argv(&self, version: InterfaceVersion) -> Vec<String> {
        let mut argv = Vec::new();
        if self.debug {
            argv.push("--debug".to_string());
        }
        if let (Some(dir), true) = (&self.local_config, version.supports_gc_local_config()) {
            // Two argv items, as rkt passes it.
            argv.push("--local-config".to_string());
            argv.push(dir.clone());
        }
        argv.push(self.uuid.clone());
        argv
    }

    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Self, ArgsError> {
        let mut out = GcArgs::default();
        let positional = parse_flags(
            args,
            &[("debug", true), ("local-config", false)],
            |flag, value| {
                match flag {
                    "debug" => out.debug = parse_bool(flag, value)?,
                    _ => out.local_config = Some(value.to_string()),
                }
                Ok(())
            },
        )?;
        out.uuid = single_positional(positional)?;
        Ok(out)
    }
}

/// Arguments of the `net/check` entrypoint: gc's.
pub type NetCheckArgs = GcArgs;

/// Arguments of the `stop` entrypoint: `[--force] UUID`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StopArgs {
    pub force: bool,
    pub uuid: String,
}

impl StopArgs {
    pub fn to_argv(&self) -> Vec<String> {
        let mut argv = Vec::new();
        if self.force {
            argv.push("--force".to_string());
        }
        argv.push(self.uuid.clone());
        argv
    }

    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Self, ArgsError> {
        let mut out = StopArgs::default();
        let positional = parse_flags(args, &[("force", true)], |flag, value| {
            out.force = parse_bool(flag, value)?;
            Ok(())
        })?;
        out.uuid = single_positional(positional)?;
        Ok(out)
    }
}

/// Arguments of the crossing entrypoints `app/add` (with `uuid`) and
/// `app/start`, `app/stop`, `app/rm` (without).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppArgs {
    pub debug: bool,
    pub uuid: Option<String>,
    pub app: String,
}

impl AppArgs {
    pub fn to_argv(&self) -> Vec<String> {
        let mut argv = vec![format!("--debug={}", self.debug)];
        if let Some(uuid) = &self.uuid {
            argv.push(format!("--uuid={uuid}"));
        }
        argv.push(format!("--app={}", self.app));
        argv
    }

    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Self, ArgsError> {
        let mut out = AppArgs::default();
        let positional = parse_flags(
            args,
            &[("debug", true), ("uuid", false), ("app", false)],
            |flag, value| {
                match flag {
                    "debug" => out.debug = parse_bool(flag, value)?,
                    "uuid" => out.uuid = Some(value.to_string()),
                    _ => out.app = value.to_string(),
                }
                Ok(())
            },
        )?;
        if !positional.is_empty() {
            return Err(ArgsError::Positional(positional));
        }
        if out.app.is_empty() {
            return Err(ArgsError::MissingValue("--app".to_string()));
        }
        Ok(out)
    }
}

fn unsupported(flag: &str, version: InterfaceVersion) -> String {
    format!(
        "warning: {flag} is not supported by stage1 interface version {}, ignoring it",
        version.0
    )
}

fn invalid(flag: &str, value: &str, reason: impl Into<String>) -> ArgsError {
    ArgsError::InvalidValue {
        flag: format!("--{flag}"),
        value: value.to_string(),
        reason: reason.into(),
    }
}

fn non_empty(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_string())
}

fn parse_bool(flag: &str, value: &str) -> Result<bool, ArgsError> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(invalid(flag, value, "not a boolean")),
    }
}

fn single_positional(mut positional: Vec<String>) -> Result<String, ArgsError> {
    if positional.len() == 1 {
        Ok(positional.remove(0))
    } else {
        Err(ArgsError::Positional(positional))
    }
}

/// Walks Go-style flags. `table` lists (name, is_bool). Calls `set` for each
/// flag (bools get "true" when bare). Returns the positional arguments: those
/// after `--`, or from the first non-flag on.
fn parse_flags<I, F>(args: I, table: &[(&str, bool)], mut set: F) -> Result<Vec<String>, ArgsError>
where
    I: IntoIterator<Item = String>,
    F: FnMut(&str, &str) -> Result<(), ArgsError>,
{
    let mut iter = args.into_iter();
    let mut positional = Vec::new();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            positional.extend(iter);
            break;
        }
        let Some(stripped) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            positional.push(arg);
            positional.extend(iter);
            break;
        };
        if stripped.is_empty() {
            positional.push(arg);
            positional.extend(iter);
            break;
        }
        let (name, inline) = match stripped.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (stripped, None),
        };
        let &(name, is_bool) = table
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| ArgsError::UnknownFlag(arg.clone()))?;
        let value = match (inline, is_bool) {
            (Some(v), _) => v,
            (None, true) => "true".to_string(),
            (None, false) => iter
                .next()
                .ok_or_else(|| ArgsError::MissingValue(format!("--{name}")))?,
        };
        set(name, &value)?;
    }
    Ok(positional)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn run_args_round_trip_at_current_version() {
        let args = RunArgs {
            debug: true,
            net: "default,foo:IP=1.2.3.4".into(),
            local_config: "/etc/rkt".into(),
            hostname: Some("h".into()),
            dns_conf_mode: DnsConfMode {
                resolv: ResolvMode::Stage0,
                hosts: HostsMode::Default,
            },
            disable_seccomp: true,
            ipc: Some(IpcMode::Parent),
            uuid: "uuid".into(),
            ..Default::default()
        };
        let (argv, warnings) = args.to_argv(InterfaceVersion::CURRENT);
        assert!(warnings.is_empty());
        assert_eq!(RunArgs::parse(argv).unwrap(), args);
    }

    #[test]
    fn run_args_drop_newer_flags_for_old_stage1() {
        let args = RunArgs {
            net: "host".into(),
            local_config: "/etc/rkt".into(),
            hostname: Some("h".into()),
            ipc: Some(IpcMode::Private),
            uuid: "u".into(),
            ..Default::default()
        };
        let (argv, warnings) = args.to_argv(InterfaceVersion(1));
        assert_eq!(
            argv,
            strings(&["--net=host", "--local-config=/etc/rkt", "u"])
        );
        assert_eq!(warnings.len(), 2);
        assert!(warnings[0].contains("--hostname"));
    }

    #[test]
    fn go_style_flag_forms_are_accepted() {
        let a = RunArgs::parse(strings(&[
            "-debug=false",
            "--net",
            "none",
            "--interactive",
            "u",
        ]))
        .unwrap();
        assert!(!a.debug && a.interactive);
        assert_eq!(a.net, "none");
        assert!(RunArgs::parse(strings(&["--bogus", "u"])).is_err());
        assert!(RunArgs::parse(strings(&["u", "v"])).is_err());
    }

    #[test]
    fn gc_local_config_is_two_items_and_gated() {
        let gc = GcArgs {
            debug: false,
            local_config: Some("/etc/rkt".into()),
            uuid: "u".into(),
        };
        assert_eq!(
            gc.to_argv(InterfaceVersion(5)),
            strings(&["--local-config", "/etc/rkt", "u"])
        );
        assert_eq!(gc.to_argv(InterfaceVersion(4)), strings(&["u"]));
        assert_eq!(GcArgs::parse(gc.to_argv(InterfaceVersion(5))).unwrap(), gc);
    }

    #[test]
    fn enter_keeps_command_after_double_dash() {
        let e = EnterArgs {
            pid: 42,
            app_name: "app".into(),
            command: strings(&["/bin/sh", "-c", "--x"]),
        };
        assert_eq!(EnterArgs::parse(e.to_argv()).unwrap(), e);
    }

    #[test]
    fn stop_and_app_args_round_trip() {
        let s = StopArgs {
            force: true,
            uuid: "u".into(),
        };
        assert_eq!(StopArgs::parse(s.to_argv()).unwrap(), s);
        let a = AppArgs {
            debug: false,
            uuid: Some("u".into()),
            app: "x".into(),
        };
        assert_eq!(AppArgs::parse(a.to_argv()).unwrap(), a);
    }
}
