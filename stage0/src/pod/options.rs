//! Parsers for the pod options given as strings on the command line:
//! `--volume`, `--mount`, `--port`, `--set-env`, `--set-env-file`.

use std::net::Ipv4Addr;
use std::path::Path;

use abi::schema::{AcName, ExposedPort, Mount, Port, Volume, VolumeKind};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum OptionError {
    #[error("invalid --volume {value:?}: {reason}; expected NAME,kind=host,source=PATH[,readOnly=BOOL][,recursive=BOOL] or NAME,kind=empty[,mode=0755][,uid=N][,gid=N]")]
    Volume { value: String, reason: String },
    #[error("invalid --mount {value:?}: {reason}; expected volume=NAME,target=PATH")]
    Mount { value: String, reason: String },
    #[error("invalid --port {value:?}: {reason}; expected NAME:[HOSTIP:]HOSTPORT")]
    Port { value: String, reason: String },
    #[error("invalid environment entry {value:?}: expected NAME=VALUE")]
    Env { value: String },
    #[error("cannot read --set-env-file {path}: {source}")]
    EnvFile {
        path: String,
        source: std::io::Error,
    },
    #[error("--set-env-file {path}, line {line}: {reason}")]
    EnvFileLine {
        path: String,
        line: usize,
        reason: String,
    },
}

/// Parses appc's volume string: `NAME,kind=host,source=/x,readOnly=true`.
pub fn parse_volume(value: &str) -> Result<Volume, OptionError> {
    let err = |reason: String| OptionError::Volume {
        value: value.to_string(),
        reason,
    };
    let mut parts = value.split(',');
    let name = parts.next().unwrap_or_default();
    let name = AcName::new(name).map_err(|e| err(e.to_string()))?;
    let mut kind = None;
    let mut vol = Volume {
        name,
        kind: VolumeKind::Empty,
        source: None,
        read_only: None,
        recursive: None,
        mode: None,
        uid: None,
        gid: None,
    };
    for part in parts {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| err(format!("{part:?} is not key=value")))?;
        let parse_bool = |v: &str| -> Result<bool, OptionError> {
            v.parse::<bool>()
                .map_err(|_| err(format!("{k}={v:?} is not true or false")))
        };
        let parse_id = |v: &str| -> Result<u32, OptionError> {
            v.parse::<u32>()
                .map_err(|_| err(format!("{k}={v:?} is not a number")))
        };
        match k {
            "kind" => {
                kind = Some(match v {
                    "host" => VolumeKind::Host,
                    "empty" => VolumeKind::Empty,
                    _ => return Err(err(format!("unknown kind {v:?}, use host or empty"))),
                })
            }
            "source" => vol.source = Some(v.to_string()),
            "readOnly" => vol.read_only = Some(parse_bool(v)?),
            "recursive" => vol.recursive = Some(parse_bool(v)?),
            "mode" => {
                u32::from_str_radix(v, 8).map_err(|_| err(format!("mode {v:?} is not octal")))?;
                vol.mode = Some(v.to_string())
            }
            "uid" => vol.uid = Some(parse_id(v)?),
            "gid" => vol.gid = Some(parse_id(v)?),
            _ => return Err(err(format!("unknown key {k:?}"))),
        }
    }
    vol.kind = kind.ok_or_else(|| err("missing kind".to_string()))?;
    match vol.kind {
        VolumeKind::Host => {
            let source = vol
                .source
                .as_deref()
                .ok_or_else(|| err("host volumes need source=PATH".to_string()))?;
            if !source.starts_with('/') {
                return Err(err(format!("source {source:?} must be an absolute path")));
            }
            if vol.mode.is_some() || vol.uid.is_some() || vol.gid.is_some() {
                return Err(err(
                    "mode, uid and gid are only for empty volumes".to_string()
                ));
            }
        }
        VolumeKind::Empty => {
            if vol.source.is_some() {
                return Err(err("empty volumes take no source".to_string()));
            }
            if vol.recursive.is_some() {
                return Err(err("recursive is only for host volumes".to_string()));
            }
        }
    }
    Ok(vol)
}

/// Checks that host volume sources exist, so a typo fails before anything is
/// prepared.
pub fn check_volume_sources(volumes: &[Volume]) -> Result<(), String> {
    for v in volumes {
        if let (VolumeKind::Host, Some(src)) = (v.kind, &v.source) {
            if std::fs::symlink_metadata(Path::new(src)).is_err() {
                return Err(format!(
                    "volume {:?}: source {src} does not exist; create it or fix --volume",
                    v.name.as_str()
                ));
            }
        }
    }
    Ok(())
}

/// Parses `volume=NAME,target=PATH`.
pub fn parse_mount(value: &str) -> Result<Mount, OptionError> {
    let err = |reason: String| OptionError::Mount {
        value: value.to_string(),
        reason,
    };
    let (mut volume, mut target) = (None, None);
    for part in value.split(',') {
        match part.split_once('=') {
            Some(("volume", v)) => volume = Some(v),
            Some(("target", t)) => target = Some(t),
            _ => return Err(err(format!("unexpected {part:?}"))),
        }
    }
    let volume = volume.ok_or_else(|| err("missing volume=".to_string()))?;
    let target = target.ok_or_else(|| err("missing target=".to_string()))?;
    if !target.starts_with('/') {
        return Err(err(format!("target {target:?} must be absolute")));
    }
    Ok(Mount {
        volume: AcName::new(volume).map_err(|e| err(e.to_string()))?,
        path: target.to_string(),
        app_volume: None,
    })
}

/// Parses `NAME:[HOSTIP:]HOSTPORT`.
pub fn parse_port(value: &str) -> Result<ExposedPort, OptionError> {
    let err = |reason: String| OptionError::Port {
        value: value.to_string(),
        reason,
    };
    let parts: Vec<&str> = value.split(':').collect();
    let (name, ip, port) = match parts.as_slice() {
        [name, port] => (*name, None, *port),
        [name, ip, port] => (*name, Some(*ip), *port),
        _ => return Err(err("wrong number of fields".to_string())),
    };
    let host_port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| err(format!("{port:?} is not a port number")))?;
    if let Some(ip) = ip {
        ip.parse::<Ipv4Addr>()
            .map_err(|_| err(format!("{ip:?} is not an IPv4 address")))?;
    }
    Ok(ExposedPort {
        name: AcName::new(name).map_err(|e| err(e.to_string()))?,
        host_port,
        host_ip: ip.map(str::to_string),
        pod_port: None,
    })
}

/// Parses a sandbox's `NAME:PROTO:PODPORT:HOSTIP:HOSTPORT` (rkt's `app
/// sandbox --port`): no app declares the port yet, so the flag says which
/// protocol and pod port it is. An empty HOSTIP means every address.
pub fn parse_sandbox_port(value: &str) -> Result<ExposedPort, OptionError> {
    let err = |reason: String| OptionError::Port {
        value: value.to_string(),
        reason,
    };
    let [name, proto, pod_port, ip, host_port] = value.split(':').collect::<Vec<_>>()[..] else {
        return Err(err(
            "expected NAME:PROTO:PODPORT:HOSTIP:HOSTPORT, e.g. http:tcp:80::8080".to_string(),
        ));
    };
    let number = |s: &str| {
        s.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| err(format!("{s:?} is not a port number")))
    };
    let protocol = proto.to_ascii_lowercase();
    if protocol != "tcp" && protocol != "udp" {
        return Err(err(format!("protocol {proto:?} is neither tcp nor udp")));
    }
    if !ip.is_empty() {
        ip.parse::<Ipv4Addr>()
            .map_err(|_| err(format!("{ip:?} is not an IPv4 address")))?;
    }
    let name = AcName::new(name).map_err(|e| err(e.to_string()))?;
    Ok(ExposedPort {
        pod_port: Some(Port {
            name: name.clone(),
            protocol,
            port: number(pod_port)?,
            count: 1,
            socket_activated: false,
        }),
        name,
        host_port: number(host_port)?,
        host_ip: (!ip.is_empty()).then(|| ip.to_string()),
    })
}

/// Parses `NAME=VALUE`.
pub fn parse_env_pair(value: &str) -> Result<(String, String), OptionError> {
    match value.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(OptionError::Env {
            value: value.to_string(),
        }),
    }
}

/// Reads a `--set-env-file`: `NAME=VALUE` lines, `#`/`;` comments, blank
/// lines ignored; a repeated name is an error (rkt).
pub fn read_env_file(path: &str) -> Result<Vec<(String, String)>, OptionError> {
    let text = std::fs::read_to_string(path).map_err(|source| OptionError::EnvFile {
        path: path.to_string(),
        source,
    })?;
    let mut out: Vec<(String, String)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let line_err = |reason: String| OptionError::EnvFileLine {
            path: path.to_string(),
            line: i + 1,
            reason,
        };
        let (k, v) = parse_env_pair(line).map_err(|e| line_err(e.to_string()))?;
        if out.iter().any(|(n, _)| *n == k) {
            return Err(line_err(format!("{k} is set twice")));
        }
        out.push((k, v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes() {
        let v = parse_volume("data,kind=host,source=/tmp,readOnly=true").unwrap();
        assert_eq!(v.kind, VolumeKind::Host);
        assert_eq!(v.read_only, Some(true));
        let e = parse_volume("data,kind=empty,mode=0700,uid=5").unwrap();
        assert_eq!(e.mode.as_deref(), Some("0700"));
        assert!(parse_volume("data,kind=host").is_err());
        assert!(parse_volume("data,kind=host,source=rel").is_err());
        assert!(parse_volume("Data,kind=empty").is_err());
        assert!(parse_volume("data,kind=empty,source=/x").is_err());
    }

    #[test]
    fn mounts_ports_env() {
        let m = parse_mount("volume=data,target=/var/data").unwrap();
        assert_eq!(m.path, "/var/data");
        assert!(parse_mount("volume=data").is_err());
        let p = parse_port("http:127.0.0.1:8080").unwrap();
        assert_eq!(p.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(parse_port("http:80").unwrap().host_port, 80);
        assert!(parse_port("http:x").is_err());
        assert_eq!(parse_env_pair("A=b=c").unwrap(), ("A".into(), "b=c".into()));
        assert!(parse_env_pair("=x").is_err());
    }

    #[test]
    fn sandbox_ports_carry_their_protocol_and_pod_port() {
        let p = parse_sandbox_port("web:TCP:80::8080").unwrap();
        assert_eq!(
            (p.name.as_str(), p.host_port, p.host_ip),
            ("web", 8080, None)
        );
        let pod = p.pod_port.unwrap();
        assert_eq!((pod.protocol.as_str(), pod.port), ("tcp", 80));
        let p = parse_sandbox_port("dns:udp:53:127.0.0.1:5353").unwrap();
        assert_eq!(p.host_ip.as_deref(), Some("127.0.0.1"));
        for bad in [
            "web:tcp:80:8080",
            "web:sctp:80::1",
            "web:tcp:0::1",
            "web:tcp:80:x:1",
        ] {
            assert!(parse_sandbox_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("env");
        std::fs::write(&f, "# c\n; c\nA=1\n\nB=two words\n").unwrap();
        let env = read_env_file(f.to_str().unwrap()).unwrap();
        assert_eq!(
            env,
            vec![("A".into(), "1".into()), ("B".into(), "two words".into())]
        );
        std::fs::write(&f, "A=1\nA=2\n").unwrap();
        assert!(read_env_file(f.to_str().unwrap()).is_err());
    }
}
