//! `$pod/runtime-config`: the run parameters stage1 saves when a pod starts
//! so that later entrypoints (app add, enter, gc) see the same settings.
//!
//! Keys are rkt's (`stage1/common/types/pod.go`, Go field names as JSON
//! keys). One deliberate difference: `NetList` holds the `--net` string
//! (`default`, `host`, `net1:IP=10.1.2.3,net2`); rkt's Go type had no JSON
//! form and wrote `{}`.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::stage1::{DnsConfMode, HostsMode, IpcMode, ResolvMode, RunArgs};

#[derive(Debug, Error)]
pub enum RuntimeConfigError {
    #[error("runtime-config is not valid JSON for this schema: {0}; the pod may come from an incompatible stage1")]
    Json(#[from] serde_json::Error),
    #[error("runtime-config field {field}: {reason}")]
    Field { field: &'static str, reason: String },
}

/// Insecure options given to `run` (`--insecure-options`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct InsecureOptions {
    #[serde(rename = "DisablePaths")]
    pub disable_paths: bool,
    #[serde(rename = "DisableCapabilities")]
    pub disable_capabilities: bool,
    #[serde(rename = "DisableSeccomp")]
    pub disable_seccomp: bool,
}

/// Runtime parameters of a pod that are not in the pod manifest.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RuntimeConfig {
    /// Base URL of the metadata service for this pod (no trailing slash);
    /// empty when the pod is not registered.
    #[serde(rename = "MetadataServiceURL")]
    pub metadata_service_url: String,
    /// `<shift>:<count>`, empty without user namespaces.
    #[serde(rename = "PrivateUsers")]
    pub private_users: String,
    #[serde(rename = "MDSToken")]
    pub mds_token: String,
    #[serde(rename = "Hostname")]
    pub hostname: String,
    #[serde(rename = "Debug")]
    pub debug: bool,
    #[serde(rename = "Mutable")]
    pub mutable: bool,
    /// `host`, `stage0`, `none` or `default`.
    #[serde(rename = "ResolvConfMode")]
    pub resolv_conf_mode: String,
    /// `host`, `stage0` or `default`.
    #[serde(rename = "EtcHostsMode")]
    pub etc_hosts_mode: String,
    /// The `--net` value (a non-string, as rkt wrote, reads as empty).
    #[serde(rename = "NetList", deserialize_with = "lenient_string")]
    pub net_list: String,
    #[serde(rename = "Interactive")]
    pub interactive: bool,
    #[serde(rename = "InsecureOptions")]
    pub insecure_options: InsecureOptions,
    /// `auto`, `private`, `parent`, or empty when not given.
    #[serde(rename = "IPCMode")]
    pub ipc_mode: String,
}

impl RuntimeConfig {
    /// The parameters of a `run` invocation; the MDS URL is filled in by the
    /// caller once networking is known.
    pub fn from_run_args(args: &RunArgs) -> Self {
        let resolv = match args.dns_conf_mode.resolv {
            ResolvMode::Host => "host",
            ResolvMode::Stage0 => "stage0",
            ResolvMode::None => "none",
            ResolvMode::Default => "default",
        };
        let hosts = match args.dns_conf_mode.hosts {
            HostsMode::Host => "host",
            HostsMode::Stage0 => "stage0",
            HostsMode::Default => "default",
        };
        RuntimeConfig {
            metadata_service_url: String::new(),
            private_users: args.private_users.clone().unwrap_or_default(),
            mds_token: args.mds_token.clone().unwrap_or_default(),
            hostname: args.hostname.clone().unwrap_or_default(),
            debug: args.debug,
            mutable: args.mutable,
            resolv_conf_mode: resolv.to_string(),
            etc_hosts_mode: hosts.to_string(),
            net_list: args.net.clone(),
            interactive: args.interactive,
            insecure_options: InsecureOptions {
                disable_paths: args.disable_paths,
                disable_capabilities: args.disable_capabilities,
                disable_seccomp: args.disable_seccomp,
            },
            ipc_mode: args.ipc.map(|m| m.as_str().to_string()).unwrap_or_default(),
        }
    }

    /// The DNS modes; empty strings mean `default`.
    pub fn dns_conf_mode(&self) -> Result<DnsConfMode, RuntimeConfigError> {
        let or_default = |s: &str| if s.is_empty() { "default" } else { s }.to_string();
        DnsConfMode::parse(&format!(
            "resolv={},hosts={}",
            or_default(&self.resolv_conf_mode),
            or_default(&self.etc_hosts_mode)
        ))
        .map_err(|reason| RuntimeConfigError::Field {
            field: "ResolvConfMode/EtcHostsMode",
            reason,
        })
    }

    /// The `--ipc` mode, if one was given.
    pub fn ipc(&self) -> Result<Option<IpcMode>, RuntimeConfigError> {
        if self.ipc_mode.is_empty() {
            return Ok(None);
        }
        IpcMode::parse(&self.ipc_mode)
            .map(Some)
            .map_err(|reason| RuntimeConfigError::Field {
                field: "IPCMode",
                reason,
            })
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, RuntimeConfigError> {
        Ok(serde_json::from_slice(bytes)?)
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain strings and bools into a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

fn lenient_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => s,
        _ => String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_from_run_args() {
        let args = RunArgs {
            net: "default,foo:IP=10.0.0.2".into(),
            mds_token: Some("0123456789abcdef0123456789abcdef".into()),
            hostname: Some("pod1".into()),
            dns_conf_mode: DnsConfMode {
                resolv: ResolvMode::Stage0,
                hosts: HostsMode::Default,
            },
            disable_seccomp: true,
            ipc: Some(IpcMode::Private),
            uuid: "u".into(),
            ..Default::default()
        };
        let rc = RuntimeConfig::from_run_args(&args);
        let json = String::from_utf8(rc.to_json()).unwrap();
        assert!(json.contains("\"MDSToken\":\"0123456789abcdef0123456789abcdef\""));
        assert!(json.contains("\"InsecureOptions\":{\"DisablePaths\":false,\"DisableCapabilities\":false,\"DisableSeccomp\":true}"));
        let back = RuntimeConfig::from_json(json.as_bytes()).unwrap();
        assert_eq!(back, rc);
        assert_eq!(back.dns_conf_mode().unwrap(), args.dns_conf_mode);
        assert_eq!(back.ipc().unwrap(), Some(IpcMode::Private));
    }

    #[test]
    fn reads_rkt_written_file() {
        // As rkt's Go wrote it: NetList as an object, unknown keys possible.
        let rkt = br#"{"MetadataServiceURL":"","PrivateUsers":"","MDSToken":"","Hostname":"rkt-1","Debug":false,"Mutable":false,"ResolvConfMode":"default","EtcHostsMode":"default","NetList":{},"Interactive":false,"InsecureOptions":{"DisablePaths":false,"DisableCapabilities":false,"DisableSeccomp":false},"IPCMode":"","Extra":1}"#;
        let rc = RuntimeConfig::from_json(rkt).unwrap();
        assert_eq!(rc.hostname, "rkt-1");
        assert!(rc.dns_conf_mode().unwrap().is_default());
        assert_eq!(rc.ipc().unwrap(), None);
        assert!(RuntimeConfig::from_json(b"{\"IPCMode\":\"bogus\"}")
            .unwrap()
            .ipc()
            .is_err());
    }
}
