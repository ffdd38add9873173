//! CNI result types and their per-version JSON layouts.
//!
//! Internally one result type is used; [`CniResult::to_json`] writes it in the
//! layout of the requested `cniVersion`: 0.3.x/0.4.0 carry `"version"` in each
//! IP entry, 1.x do not. Deserialisation accepts all of those layouts, since
//! a delegated IPAM plugin answers in the config's version.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::ipnet::IpNet;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sandbox: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IpConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
    pub address: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    pub dst: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
    // The 1.1.0 additions; passed through untouched when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advmss: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<u8>,
}

impl Route {
    pub fn new(dst: IpNet, gw: Option<IpAddr>) -> Self {
        Route {
            dst,
            gw,
            mtu: None,
            advmss: None,
            priority: None,
            table: None,
            scope: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    pub fn is_empty(&self) -> bool {
        self == &Dns::default()
    }
}

/// A plugin result (ADD output, `prevResult`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct CniResult {
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    #[serde(default)]
    pub ips: Vec<IpConfig>,
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub dns: Dns,
}

/// One IP entry as written: `version` only before 1.0.0.
#[derive(Serialize)]
struct IpOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interface: Option<usize>,
    address: &'a IpNet,
    #[serde(skip_serializing_if = "Option::is_none")]
    gateway: Option<&'a IpAddr>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResultOut<'a> {
    cni_version: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    interfaces: &'a [Interface],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ips: Vec<IpOut<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    routes: &'a [Route],
    // The reference always writes "dns", as {} when empty.
    dns: &'a Dns,
}

/// Whether `v` uses the pre-1.0 result layout (IP entries carry "version").
pub fn is_legacy(v: &str) -> bool {
    v.starts_with("0.")
}

/// A result together with the version whose layout it is written in; this
/// is what ADD prints. Serialising a struct (not a `Value`) keeps the
/// reference's key order (`cniVersion`, `interfaces`, `ips`, `routes`, `dns`).
#[derive(Debug, Clone)]
pub struct Versioned {
    pub version: String,
    pub result: CniResult,
}

impl Serialize for Versioned {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let version = self.version.as_str();
        let legacy = is_legacy(version);
        let ips = self
            .result
            .ips
            .iter()
            .map(|ip| IpOut {
                version: legacy.then_some(if ip.address.is_ipv4() { "4" } else { "6" }),
                interface: ip.interface,
                address: &ip.address,
                gateway: ip.gateway.as_ref(),
            })
            .collect();
        // mtu on interfaces is 1.1.0 only.
        let stripped: Vec<Interface>;
        let interfaces = if version == "1.1.0" {
            &self.result.interfaces[..]
        } else {
            stripped = self
                .result
                .interfaces
                .iter()
                .cloned()
                .map(|mut i| {
                    i.mtu = None;
                    i
                })
                .collect();
            &stripped[..]
        };
        ResultOut {
            cni_version: version,
            interfaces,
            ips,
            routes: &self.result.routes,
            dns: &self.result.dns,
        }
        .serialize(s)
    }
}

impl CniResult {
    pub fn versioned(self, version: &str) -> Versioned {
        Versioned {
            version: version.to_string(),
            result: self,
        }
    }

    /// The JSON value of [`Versioned`] (key order not kept; for tests and
    /// inspection).
    pub fn to_json(&self, version: &str) -> serde_json::Value {
        serde_json::to_value(self.clone().versioned(version)).unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CniResult {
        CniResult {
            interfaces: vec![Interface {
                name: "eth0".into(),
                mac: "aa:bb:cc:dd:ee:ff".into(),
                mtu: Some(1400),
                sandbox: "/run/netns/x".into(),
            }],
            ips: vec![IpConfig {
                interface: Some(0),
                address: "10.1.0.2/24".parse().expect("net"),
                gateway: Some("10.1.0.1".parse().expect("ip")),
            }],
            routes: vec![Route::new("0.0.0.0/0".parse().expect("net"), None)],
            dns: Dns::default(),
        }
    }

    #[test]
    fn layouts() {
        let r = sample();
        let v1 = r.to_json("1.0.0");
        assert_eq!(v1["cniVersion"], "1.0.0");
        assert!(v1["ips"][0].get("version").is_none());
        assert!(v1["interfaces"][0].get("mtu").is_none());
        assert_eq!(v1["dns"], serde_json::json!({}));
        let v04 = r.to_json("0.4.0");
        assert_eq!(v04["ips"][0]["version"], "4");
        assert_eq!(r.to_json("1.1.0")["interfaces"][0]["mtu"], 1400);
    }

    #[test]
    fn roundtrip_from_legacy() {
        let r = sample();
        let back: CniResult = serde_json::from_value(r.to_json("0.4.0")).expect("parse");
        assert_eq!(back.ips, r.ips);
        assert_eq!(back.routes, r.routes);
    }
}
