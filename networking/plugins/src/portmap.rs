//! The portmap plugin: forwards host ports to the container, as the
//! runtime asks through the `portMappings` capability (`runtimeConfig`),
//! chained after the plugin that gave the container its address.
//!
//! Unlike the reference, which threads per-container chains through shared
//! iptables chains, each attachment gets one nftables table of its own per
//! address family of the container, `ip cni-portmap-<hash of network and
//! container>` and its `ip6` twin ([`nft_forward`]), written in one `nft
//! -f` batch: ADD is that batch, DEL is dropping the tables. `snat`
//! (default on) adds the loopback masquerade and guard (IPv4).

use std::net::IpAddr;

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha512};

use crate::cni::{self, Args, Error, ERR_DECODING, ERR_INVALID_CONFIG};
use crate::nft_forward::{self, interface_name, PortRule};
use crate::types::{CniResult, Versioned};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Mapping {
    host_port: u16,
    container_port: u16,
    #[serde(default = "tcp")]
    protocol: String,
    #[serde(default, rename = "hostIP")]
    host_ip: String,
}

fn tcp() -> String {
    "tcp".into()
}

/// The parts of the config portmap reads.
struct Conf {
    mappings: Vec<Mapping>,
    snat: bool,
    prev: Option<CniResult>,
}

fn load(args: &Args) -> Result<Conf, Error> {
    let bad = |what: &str, e: serde_json::Error| {
        Error::new(ERR_DECODING, format!("failed to parse {what}: {e}"))
    };
    let mappings = match args.conf.pointer("/runtimeConfig/portMappings") {
        Some(v) => {
            Vec::<Mapping>::deserialize(v).map_err(|e| bad("runtimeConfig.portMappings", e))?
        }
        None => Vec::new(),
    };
    let prev = match args.conf.get("prevResult") {
        Some(v) if !v.is_null() => {
            Some(CniResult::deserialize(v).map_err(|e| bad("prevResult", e))?)
        }
        _ => None,
    };
    Ok(Conf {
        mappings,
        snat: args
            .conf
            .get("snat")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        prev,
    })
}

/// The attachment's table (network name and container id, hashed as the
/// reference names its chains).
fn table_name(args: &Args) -> String {
    let digest = Sha512::digest(format!("{}{}", args.name, args.container_id).as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("cni-portmap-{hex}")
}

/// The nftables table forwarding to `container` (mappings whose host IP
/// is of the other family are left to the other table, as the reference
/// does).
fn ruleset(
    table: &str,
    container: IpAddr,
    mappings: &[Mapping],
    snat: bool,
    host_if: Option<&str>,
) -> Result<String, Error> {
    let mut rules = Vec::new();
    for m in mappings {
        let protocol = match m.protocol.to_ascii_lowercase().as_str() {
            "tcp" => "tcp",
            "udp" => "udp",
            "sctp" => "sctp",
            other => {
                return Err(Error::new(
                    ERR_INVALID_CONFIG,
                    format!("unknown protocol {other:?} in portMappings; use tcp, udp or sctp"),
                ))
            }
        };
        // "0.0.0.0" and "::" are any address of their own family only.
        let host_ip = match m.host_ip.as_str() {
            "" => None,
            ip => Some(ip.parse::<IpAddr>().map_err(|_| {
                Error::new(
                    ERR_INVALID_CONFIG,
                    format!("invalid hostIP {ip:?} in portMappings"),
                )
            })?),
        };
        rules.push(PortRule {
            protocol,
            host_ip,
            host_port: m.host_port,
            container_port: m.container_port,
        });
    }
    let guard_if = host_if.filter(|_| snat);
    Ok(nft_forward::table(table, container, &rules, snat, guard_if))
}

/// Runs `nft ARGS` with `input` on stdin; its stderr on failure.
fn nft(args: &[&str], input: &str) -> Result<(), String> {
    crate::tool::run("nft", args, Some(input))
        .map(drop)
        .map_err(|e| e.detail())
}

pub struct Portmap;

impl cni::Plugin for Portmap {
    fn add(&self, args: &Args) -> Result<Versioned, Error> {
        let conf = load(args)?;
        let prev = conf.prev.ok_or_else(|| {
            Error::new(
                ERR_INVALID_CONFIG,
                "portmap must be chained after a plugin that gives the container an address (no prevResult)",
            )
        })?;
        if conf.mappings.is_empty() {
            return Ok(prev.versioned(&args.version));
        }
        // The container's first address of each family.
        let mut containers: Vec<IpAddr> = Vec::new();
        for ip in prev.ips.iter().map(|ip| ip.address.addr) {
            if !containers.iter().any(|c| c.is_ipv4() == ip.is_ipv4()) {
                containers.push(ip);
            }
        }
        if containers.is_empty() {
            return Err(Error::new(
                ERR_INVALID_CONFIG,
                "prevResult has no address to forward to",
            ));
        }
        let host_if = prev
            .interfaces
            .iter()
            .find(|i| i.sandbox.is_empty())
            .and_then(|i| interface_name(&i.name));
        let has_v4 = containers.iter().any(IpAddr::is_ipv4);
        if let (true, Some(iface), true) = (conf.snat, host_if, has_v4) {
            crate::sysctl::set(&format!("net/ipv4/conf/{iface}/route_localnet"), "1")
                .map_err(|e| Error::generic(format!("failed to enable route_localnet: {e}")))?;
        }
        let table = table_name(args);
        let mut batch = String::new();
        for container in containers {
            batch.push_str(&ruleset(
                &table,
                container,
                &conf.mappings,
                conf.snat,
                host_if,
            )?);
        }
        nft(&["-f", "-"], &batch)
            .map_err(|e| Error::generic(format!("failed to add the port forwarding rules: {e}")))?;
        Ok(prev.versioned(&args.version))
    }

    fn del(&self, args: &Args) -> Result<(), Error> {
        let table = table_name(args);
        for family in ["ip", "ip6"] {
            match nft(&["delete", "table", family, &table], "") {
                Ok(()) => {}
                // Nothing was forwarded, or DEL runs again.
                Err(e) if e.contains("No such file or directory") => {}
                Err(e) if e.starts_with("cannot run nft") => {}
                Err(e) => {
                    return Err(Error::generic(format!(
                        "failed to remove the port forwarding rules: {e}"
                    )))
                }
            }
        }
        Ok(())
    }

    fn check(&self, args: &Args) -> Result<(), Error> {
        let conf = load(args)?;
        if conf.mappings.is_empty() {
            return Ok(());
        }
        let families = conf.prev.iter().flat_map(|p| &p.ips).map(|ip| {
            if ip.address.addr.is_ipv4() {
                "ip"
            } else {
                "ip6"
            }
        });
        let table = table_name(args);
        let mut checked = Vec::new();
        for family in families {
            if !checked.contains(&family) {
                nft(&["list", "table", family, &table], "").map_err(|e| {
                    Error::generic(format!("the port forwarding rules are missing: {e}"))
                })?;
                checked.push(family);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(host_port: u16, container_port: u16, protocol: &str, host_ip: &str) -> Mapping {
        Mapping {
            host_port,
            container_port,
            protocol: protocol.into(),
            host_ip: host_ip.into(),
        }
    }

    #[test]
    fn one_table_with_dnat_masquerade_and_guard() {
        let m = [
            mapping(8080, 80, "tcp", ""),
            mapping(53, 5353, "UDP", "10.0.0.1"),
        ];
        let container = IpAddr::from([10, 88, 0, 2]);
        let r = ruleset("cni-portmap-x", container, &m, true, Some("veth1")).unwrap();
        assert!(r.starts_with("table ip cni-portmap-x {"), "{r}");
        assert!(
            r.contains("fib daddr type local tcp dport 8080 dnat to 10.88.0.2:80"),
            "{r}"
        );
        assert!(
            r.contains("ip daddr 10.0.0.1 udp dport 53 dnat to 10.88.0.2:5353"),
            "{r}"
        );
        assert!(r.contains("ip saddr 127.0.0.0/8 ip daddr 10.88.0.2 tcp dport 80 masquerade"));
        assert!(
            r.contains("iifname \"veth1\" ip daddr 127.0.0.0/8 drop"),
            "{r}"
        );
        let plain = ruleset("t", container, &m, false, Some("veth1")).unwrap();
        assert!(
            !plain.contains("masquerade") && !plain.contains("guard"),
            "{plain}"
        );
        // Any address of one family is not the other's.
        let any4 = [mapping(8080, 80, "tcp", "0.0.0.0")];
        let four = ruleset("t", container, &any4, true, None).unwrap();
        assert!(
            four.contains("fib daddr type local tcp dport 8080"),
            "{four}"
        );
        let six = ruleset("t", "fd00::2".parse().unwrap(), &any4, true, None).unwrap();
        assert!(!six.contains("dnat"), "{six}");
        // A host IP of the other family belongs to the other table.
        let v6 = [mapping(1, 2, "tcp", "fd00::1")];
        assert!(!ruleset("t", container, &v6, true, None)
            .unwrap()
            .contains("dnat"));
        let six = ruleset("t", "fd00::2".parse().unwrap(), &v6, true, None).unwrap();
        assert!(
            six.contains("ip6 daddr fd00::1 tcp dport 1 dnat to [fd00::2]:2"),
            "{six}"
        );
        for bad in [
            mapping(1, 2, "icmp", ""),
            mapping(1, 2, "tcp", "host; drop"),
        ] {
            assert!(ruleset("t", container, &[bad], true, None).is_err());
        }
        assert_eq!(interface_name("x\" drop"), None);
    }
}
