//! The plugin side of the CNI protocol: environment, stdin config, version
//! negotiation, and the result / error objects on stdout.
//!
//! Checks happen in the reference's order (`skel`): required environment
//! variables, then the config's `name`, then `cniVersion`, then the container
//! id and interface name, so the same bad input gives the same error code.

use std::io::{Read, Write};
use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use crate::types::Versioned;

/// Versions we answer VERSION with and accept in configs. 0.1.0/0.2.0 used a
/// different result layout (`ip4`/`ip6`), which nothing we ship produces.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];
pub const LATEST_VERSION: &str = "1.1.0";

// Error codes from the spec (SPEC.md "Error").
pub const ERR_INCOMPATIBLE_VERSION: u32 = 1;
pub const ERR_UNSUPPORTED_FIELD: u32 = 2;
pub const ERR_UNKNOWN_CONTAINER: u32 = 3;
pub const ERR_INVALID_ENV: u32 = 4;
pub const ERR_IO: u32 = 5;
pub const ERR_DECODING: u32 = 6;
pub const ERR_INVALID_CONFIG: u32 = 7;
pub const ERR_TRY_AGAIN: u32 = 11;
/// What the reference plugins use for every plugin-specific failure.
pub const ERR_GENERIC: u32 = 999;

/// A CNI error object. Every other error type in this crate converts into
/// one, so `?` works all the way up to [`run`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg}")]
pub struct Error {
    pub code: u32,
    pub msg: String,
    pub details: Option<String>,
}

impl Error {
    pub fn new(code: u32, msg: impl Into<String>) -> Self {
        Error {
            code,
            msg: msg.into(),
            details: None,
        }
    }

    pub fn generic(msg: impl Into<String>) -> Self {
        Error::new(ERR_GENERIC, msg)
    }

    pub fn with_details(mut self, d: impl Into<String>) -> Self {
        self.details = Some(d.into());
        self
    }

    /// Prefixes the message, like Go's `fmt.Errorf("...: %w", err)`.
    pub fn context(mut self, prefix: impl std::fmt::Display) -> Self {
        self.msg = format!("{prefix}: {}", self.msg);
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Version,
    Status,
    Gc,
}

impl Command {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "VERSION" => Command::Version,
            "STATUS" => Command::Status,
            "GC" => Command::Gc,
            _ => return None,
        })
    }
}

/// Everything a plugin is called with.
#[derive(Debug, Clone)]
pub struct Args {
    pub command: Command,
    pub container_id: String,
    /// Empty when not given (allowed for DEL).
    pub netns: String,
    pub ifname: String,
    /// Raw `CNI_ARGS` (`K=V;K=V`).
    pub args: String,
    pub path: Vec<PathBuf>,
    pub stdin: Vec<u8>,
    /// The parsed stdin config.
    pub conf: Value,
    /// The config's cniVersion (checked to be supported).
    pub version: String,
    /// The config's network name.
    pub name: String,
}

impl Args {
    /// A string field of the config, if present.
    pub fn conf_str(&self, key: &str) -> Option<&str> {
        self.conf.get(key).and_then(Value::as_str)
    }
}

/// One plugin. ADD returns the result to print; the others print nothing.
pub trait Plugin {
    fn add(&self, args: &Args) -> Result<Versioned, Error>;
    fn del(&self, args: &Args) -> Result<(), Error>;
    fn check(&self, args: &Args) -> Result<(), Error>;
    /// STATUS (1.1.0): the default says "ready".
    fn status(&self, _args: &Args) -> Result<(), Error> {
        Ok(())
    }
    /// GC (1.1.0): nothing to collect by default.
    fn gc(&self, _args: &Args) -> Result<(), Error> {
        Ok(())
    }
}

/// Writes JSON like the reference: indented by four spaces.
pub fn print_json<T: Serialize>(out: &mut impl Write, v: &T) {
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut *out, fmt);
    // A failed write to stdout leaves nothing useful to report it to.
    let _ = v.serialize(&mut ser);
    let _ = out.flush();
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorOut<'a> {
    cni_version: &'a str,
    code: u32,
    msg: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a str>,
}

/// What a command prints on success.
enum Output {
    Result(Versioned),
    Json(Value),
}

/// The plugin entry point: reads env and stdin, dispatches, prints the
/// result or the error object, and exits (0 or 1).
pub fn run(plugin: &dyn Plugin) -> ! {
    let env = |k: &str| std::env::var(k).ok();
    let mut stdin = Vec::new();
    let read = std::io::stdin().read_to_end(&mut stdin);
    let mut version_for_errors = LATEST_VERSION.to_string();
    let res = read
        .map_err(|e| Error::new(ERR_IO, format!("error reading from stdin: {e}")))
        .and_then(|_| {
            let args = parse_invocation(&env, stdin)?;
            version_for_errors = args.version.clone();
            dispatch(plugin, &args)
        });
    // One write for the whole document instead of one per token.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match res {
        Ok(Some(Output::Result(v))) => {
            print_json(&mut out, &v);
            std::process::exit(0)
        }
        Ok(Some(Output::Json(v))) => {
            // VERSION is printed on one line, as the reference does.
            let _ = serde_json::to_writer(&mut out, &v);
            let _ = out.flush();
            std::process::exit(0)
        }
        Ok(None) => std::process::exit(0),
        Err(e) => {
            let eo = ErrorOut {
                cni_version: &version_for_errors,
                code: e.code,
                msg: &e.msg,
                details: e.details.as_deref(),
            };
            print_json(&mut out, &eo);
            std::process::exit(1)
        }
    }
}

fn dispatch(plugin: &dyn Plugin, args: &Args) -> Result<Option<Output>, Error> {
    match args.command {
        Command::Version => Ok(Some(Output::Json(serde_json::json!({
            "cniVersion": LATEST_VERSION,
            "supportedVersions": SUPPORTED_VERSIONS,
        })))),
        Command::Add => plugin.add(args).map(|r| Some(Output::Result(r))),
        Command::Del => plugin.del(args).map(|_| None),
        Command::Check => plugin.check(args).map(|_| None),
        Command::Status => plugin.status(args).map(|_| None),
        Command::Gc => plugin.gc(args).map(|_| None),
    }
}

/// Builds [`Args`] from an environment lookup and the stdin bytes.
pub fn parse_invocation(
    env: &dyn Fn(&str) -> Option<String>,
    stdin: Vec<u8>,
) -> Result<Args, Error> {
    let get = |k: &str| env(k).unwrap_or_default();
    let cmd_s = get("CNI_COMMAND");
    if cmd_s.is_empty() {
        return Err(Error::new(
            ERR_INVALID_ENV,
            "required env variables [CNI_COMMAND] missing",
        ));
    }
    let command = Command::parse(&cmd_s)
        .ok_or_else(|| Error::new(ERR_INVALID_ENV, format!("unknown CNI_COMMAND: {cmd_s}")))?;

    // Which variables each command needs (skel's table).
    use Command::*;
    let needs: &[(&str, &[Command])] = &[
        ("CNI_CONTAINERID", &[Add, Del, Check]),
        ("CNI_NETNS", &[Add, Check]),
        ("CNI_IFNAME", &[Add, Del, Check]),
        ("CNI_PATH", &[Add, Del, Check, Gc, Status]),
    ];
    let missing: Vec<&str> = needs
        .iter()
        .filter(|(k, cmds)| cmds.contains(&command) && get(k).is_empty())
        .map(|(k, _)| *k)
        .collect();
    if !missing.is_empty() {
        return Err(Error::new(
            ERR_INVALID_ENV,
            format!("required env variables [{}] missing", missing.join(",")),
        ));
    }

    let mut args = Args {
        command,
        container_id: get("CNI_CONTAINERID"),
        netns: get("CNI_NETNS"),
        ifname: get("CNI_IFNAME"),
        args: get("CNI_ARGS"),
        path: std::env::split_paths(&get("CNI_PATH"))
            .filter(|p| !p.as_os_str().is_empty())
            .collect(),
        stdin,
        conf: Value::Null,
        version: LATEST_VERSION.to_string(),
        name: String::new(),
    };
    if command == Version {
        return Ok(args);
    }

    let conf: Value = serde_json::from_slice(&args.stdin).map_err(|e| {
        Error::new(
            ERR_DECODING,
            format!("error unmarshall network config: {e}"),
        )
    })?;
    if !conf.is_object() {
        return Err(Error::new(
            ERR_DECODING,
            "error unmarshall network config: not a JSON object",
        ));
    }
    args.name = conf
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if args.name.is_empty() {
        return Err(Error::new(ERR_INVALID_CONFIG, "missing network name"));
    }
    args.version = conf
        .get("cniVersion")
        .and_then(Value::as_str)
        .unwrap_or("0.1.0")
        .to_string();
    args.conf = conf;
    if !SUPPORTED_VERSIONS.contains(&args.version.as_str()) {
        let v = std::mem::replace(&mut args.version, LATEST_VERSION.to_string());
        return Err(
            Error::new(ERR_INCOMPATIBLE_VERSION, "incompatible CNI versions").with_details(
                format!("config is {v:?}, plugin supports {SUPPORTED_VERSIONS:?}"),
            ),
        );
    }
    // CHECK came with 0.4.0, GC and STATUS with 1.1.0.
    let (needs, name) = match command {
        Check => ("0.4.0", "CHECK"),
        Gc => ("1.1.0", "GC"),
        Status => ("1.1.0", "STATUS"),
        _ => ("0.0.0", ""),
    };
    if version_lt(&args.version, needs) {
        return Err(Error::new(
            ERR_INCOMPATIBLE_VERSION,
            format!("config version does not allow {name}"),
        ));
    }
    if matches!(command, Add | Del | Check) {
        validate_container_id(&args.container_id)?;
        validate_ifname(&args.ifname)?;
    }
    Ok(args)
}

/// Compares dotted versions numerically ("0.4.0" < "1.0.0").
fn version_lt(a: &str, b: &str) -> bool {
    let parse = |v: &str| -> Vec<u64> { v.split('.').map(|x| x.parse().unwrap_or(0)).collect() };
    parse(a) < parse(b)
}

/// The spec's container id rule: alphanumeric, then `[A-Za-z0-9_.-]`.
pub fn validate_container_id(id: &str) -> Result<(), Error> {
    let mut chars = id.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::new(ERR_INVALID_ENV, "invalid characters in containerID").with_details(id))
    }
}

/// Linux interface name rules (dev_valid_name), which also keep the name
/// safe to use in sysctl paths.
pub fn validate_ifname(name: &str) -> Result<(), Error> {
    let bad = |m: &str| Err(Error::new(ERR_INVALID_ENV, m.to_string()).with_details(name));
    if name.is_empty() {
        return bad("interface name is empty");
    }
    if name.len() > 15 {
        return bad("interface name is too long");
    }
    if name == "." || name == ".." {
        return bad("interface name is . or ..");
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return bad("interface name contains / or : or whitespace characters");
    }
    Ok(())
}

/// One entry of `cni.dev/valid-attachments` (GC, 1.1.0).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Attachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    #[serde(default)]
    pub ifname: String,
}

/// The attachments GC must keep; everything else of this network goes.
pub fn valid_attachments(args: &Args) -> Result<Vec<Attachment>, Error> {
    match args.conf.get("cni.dev/valid-attachments") {
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
            Error::new(
                ERR_DECODING,
                format!("failed to parse cni.dev/valid-attachments: {e}"),
            )
        }),
        None => Ok(Vec::new()),
    }
}

/// Parses `CNI_ARGS` (`K=V;K=V`). Keys outside `known` are an error unless
/// `IgnoreUnknown` is true, as in the reference.
pub fn parse_cni_args(raw: &str, known: &[&str]) -> Result<Vec<(String, String)>, Error> {
    let mut pairs = Vec::new();
    for item in raw.split(';').filter(|s| !s.is_empty()) {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| Error::generic(format!("ARGS: invalid pair {item:?}")))?;
        pairs.push((k.to_string(), v.to_string()));
    }
    let ignore = pairs.iter().any(|(k, v)| {
        k == "IgnoreUnknown" && matches!(v.to_ascii_lowercase().as_str(), "1" | "true")
    });
    let unknown: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k != "IgnoreUnknown" && !known.contains(&k.as_str()))
        .map(|(k, v)| format!("{:?}", format!("{k}={v}")))
        .collect();
    if !unknown.is_empty() && !ignore {
        return Err(Error::generic(format!(
            "ARGS: unknown args [{}]",
            unknown.join(" ")
        )));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn inv(vars: &[(&str, &str)], stdin: &str) -> Result<Args, Error> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse_invocation(&|k| m.get(k).cloned(), stdin.as_bytes().to_vec())
    }

    const FULL: &[(&str, &str)] = &[
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "c1"),
        ("CNI_NETNS", "/run/netns/x"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/opt/cni/bin:/usr/lib/cni"),
    ];

    #[test]
    fn env_checks() {
        let e = inv(&[("CNI_COMMAND", "ADD")], "{}").expect_err("missing");
        assert_eq!(e.code, ERR_INVALID_ENV);
        assert_eq!(
            e.msg,
            "required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH] missing"
        );
        let e = inv(&[("CNI_COMMAND", "NOPE")], "{}").expect_err("unknown");
        assert_eq!(e.code, ERR_INVALID_ENV);
        assert!(inv(&[("CNI_COMMAND", "VERSION")], "").is_ok());
    }

    #[test]
    fn config_checks() {
        assert_eq!(inv(FULL, "{bad").expect_err("json").code, ERR_DECODING);
        assert_eq!(
            inv(FULL, r#"{"cniVersion":"1.0.0"}"#)
                .expect_err("name")
                .code,
            ERR_INVALID_CONFIG
        );
        let e = inv(FULL, r#"{"cniVersion":"9.0.0","name":"n"}"#).expect_err("ver");
        assert_eq!(e.code, ERR_INCOMPATIBLE_VERSION);
        let a = inv(FULL, r#"{"cniVersion":"1.1.0","name":"n"}"#).expect("ok");
        assert_eq!(a.path.len(), 2);
        assert_eq!(a.version, "1.1.0");
    }

    #[test]
    fn commands_need_versions() {
        let mut env: Vec<(&str, &str)> = FULL.to_vec();
        env[0] = ("CNI_COMMAND", "CHECK");
        let e = inv(&env, r#"{"cniVersion":"0.3.1","name":"n"}"#).expect_err("check");
        assert_eq!(
            (e.code, e.msg.as_str()),
            (1, "config version does not allow CHECK")
        );
        assert!(inv(&env, r#"{"cniVersion":"0.4.0","name":"n"}"#).is_ok());
        env[0] = ("CNI_COMMAND", "GC");
        assert!(inv(&env, r#"{"cniVersion":"1.0.0","name":"n"}"#).is_err());
        assert!(inv(&env, r#"{"cniVersion":"1.1.0","name":"n"}"#).is_ok());
    }

    #[test]
    fn ids_and_names() {
        assert!(validate_container_id("abc-1.2_3").is_ok());
        assert!(validate_container_id("-abc").is_err());
        assert!(validate_container_id("a/b").is_err());
        assert!(validate_ifname("eth0").is_ok());
        assert!(validate_ifname("a/b").is_err());
        assert!(validate_ifname("0123456789abcdef").is_err());
    }

    #[test]
    fn cni_args() {
        assert!(parse_cni_args("IP=10.0.0.2;FOO=bar", &["IP"]).is_err());
        let e = parse_cni_args("FOO=bar", &["IP"]).expect_err("unknown");
        assert_eq!(e.msg, r#"ARGS: unknown args ["FOO=bar"]"#);
        let p = parse_cni_args("IgnoreUnknown=1;IP=10.0.0.2;FOO=bar", &["IP"]).expect("ok");
        assert!(p.contains(&("IP".into(), "10.0.0.2".into())));
        assert!(parse_cni_args("", &[]).expect("empty").is_empty());
    }
}
