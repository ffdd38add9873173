//! Attaching a pod to one network and detaching it (the CNI runtime's
//! duties for a plugin chain): ADD runs the plugins in order, each getting
//! the previous one's result as `prevResult`; a failing ADD is undone by a
//! DEL of the whole chain. DEL runs in reverse with the cached result, goes
//! on past failures and reports them all together (netavark's teardown).

#[cfg(test)]
use serde_json::Map;
use serde_json::Value;
use thiserror::Error;

use crate::conf::NetConf;
use crate::plugin::{plugin_input, Attachment, CniCommand, PluginError, PluginRunner};

#[derive(Debug, Error)]
pub enum ChainError {
    // `error` rather than `source`: the message carries it already, and
    // `{:#}` chains would repeat it.
    #[error("network {net:?}: {error}")]
    Add {
        net: String,
        error: Box<PluginError>,
        /// What undoing the partial ADD could not remove.
        cleanup: Vec<String>,
    },
    #[error("network {net:?}: teardown incomplete: {}", .errors.join("; "))]
    Del { net: String, errors: Vec<String> },
    #[error("network {net:?}: garbage collection incomplete: {}", .errors.join("; "))]
    Gc { net: String, errors: Vec<String> },
    #[error("network {net:?}: {error}")]
    Check {
        net: String,
        error: Box<PluginError>,
    },
}

/// An attachment GC must keep (`cni.dev/valid-attachments`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidAttachment {
    pub container_id: String,
    pub ifname: String,
}

/// The key of the valid attachments in a GC's input (CNI 1.1.0).
pub const VALID_ATTACHMENTS: &str = "cni.dev/valid-attachments";

/// Runs ADD of every plugin of `net`; the last plugin's result.
pub fn add(runner: &PluginRunner, net: &NetConf, att: &Attachment) -> Result<Value, ChainError> {
    let mut prev: Option<Value> = None;
    for index in 0..net.plugins.len() {
        let input = plugin_input(net, index, prev.as_ref(), &att.capability_args);
        match runner.invoke(
            &net.plugins[index].plugin_type,
            CniCommand::Add,
            Some(att),
            &input,
        ) {
            Ok(result) => prev = Some(result),
            Err(source) => {
                // The CNI spec: a failed ADD is followed by a DEL.
                let cleanup = match del(runner, net, att, prev.as_ref()) {
                    Ok(()) => Vec::new(),
                    Err(ChainError::Del { errors, .. }) => errors,
                    Err(other) => vec![other.to_string()],
                };
                return Err(ChainError::Add {
                    net: net.name.clone(),
                    error: Box::new(source),
                    cleanup,
                });
            }
        }
    }
    Ok(prev.unwrap_or(Value::Null))
}

/// Runs DEL of every plugin of `net` in reverse, with the cached ADD
/// result as `prevResult` when there is one; every failure is collected.
pub fn del(
    runner: &PluginRunner,
    net: &NetConf,
    att: &Attachment,
    cached: Option<&Value>,
) -> Result<(), ChainError> {
    let errors: Vec<String> = (0..net.plugins.len())
        .rev()
        .filter_map(|index| {
            let input = plugin_input(net, index, cached, &att.capability_args);
            runner
                .invoke(
                    &net.plugins[index].plugin_type,
                    CniCommand::Del,
                    Some(att),
                    &input,
                )
                .err()
                .map(|e| e.to_string())
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ChainError::Del {
            net: net.name.clone(),
            errors,
        })
    }
}

/// Whether `net`'s CNI version has GC (1.1.0 and later).
pub fn has_gc(net: &NetConf) -> bool {
    version_at_least(net, &[1, 1])
}

fn version_at_least(net: &NetConf, wanted: &[u32]) -> bool {
    let parts: Vec<u32> = net
        .cni_version
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .collect();
    parts.as_slice() >= wanted
}

/// Runs CHECK of every plugin of `net` in ADD's order, each with the
/// cached ADD result as `prevResult`; stops at the first plugin that
/// finds the attachment not as it left it. `Ok(false)` when the network
/// does not take CHECK: `disableCheck`, or a CNI version before 0.4.0.
pub fn check(
    runner: &PluginRunner,
    net: &NetConf,
    att: &Attachment,
    cached: &Value,
) -> Result<bool, ChainError> {
    if net.disable_check || !version_at_least(net, &[0, 4]) {
        return Ok(false);
    }
    for index in 0..net.plugins.len() {
        let input = plugin_input(net, index, Some(cached), &att.capability_args);
        runner
            .invoke(
                &net.plugins[index].plugin_type,
                CniCommand::Check,
                Some(att),
                &input,
            )
            .map_err(|e| ChainError::Check {
                net: net.name.clone(),
                error: Box::new(e),
            })?;
    }
    Ok(true)
}

/// Runs GC of every plugin of `net` (CNI 1.1.0): each removes what it
/// holds for attachments not in `valid`. Every failure is collected.
pub fn gc(
    runner: &PluginRunner,
    net: &NetConf,
    valid: &[ValidAttachment],
) -> Result<(), ChainError> {
    let valid: Vec<Value> = valid
        .iter()
        .map(|a| serde_json::json!({"containerID": a.container_id, "ifname": a.ifname}))
        .collect();
    let no_capabilities = serde_json::Map::new();
    let errors: Vec<String> = (0..net.plugins.len())
        .filter_map(|index| {
            let mut input = plugin_input(net, index, None, &no_capabilities);
            input[VALID_ATTACHMENTS] = Value::Array(valid.clone());
            runner
                .invoke(
                    &net.plugins[index].plugin_type,
                    CniCommand::Gc,
                    None,
                    &input,
                )
                .err()
                .map(|e| e.to_string())
        })
        .collect();
    match errors.is_empty() {
        true => Ok(()),
        false => Err(ChainError::Gc {
            net: net.name.clone(),
            errors,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;
    use std::time::Duration;

    use crate::test_netns::TestNetns as Netns;

    /// `eth0` in `ns` for a container named `name` and this test process.
    fn eth0_of(ns: &Netns, name: &str) -> Attachment {
        Attachment {
            container_id: format!("{name}-{}", std::process::id()),
            netns: ns.path(),
            ifname: "eth0".into(),
            args: None,
            capability_args: Map::new(),
        }
    }

    fn host_link_exists(name: &str) -> bool {
        Path::new("/sys/class/net").join(name).exists()
    }

    /// The reference ptp + host-local chain: ADD gives the pod an address
    /// and a veth on the host; DEL removes the veth and the lease.
    #[test]
    fn ptp_with_host_local_add_and_del() {
        let ns = Netns::new("ptp");
        let leases = tempfile::tempdir().unwrap();
        let conf = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": format!("chaintest{}", std::process::id()),
            "plugins": [{
                "type": "ptp",
                "ipam": {
                    "type": "host-local",
                    "subnet": "172.29.251.0/24",
                    "dataDir": leases.path(),
                },
            }],
        });
        let net = NetConf::parse(Path::new("t.conflist"), conf.to_string().as_bytes()).unwrap();
        let att = eth0_of(&ns, "chain");
        let runner = PluginRunner::new(Vec::new(), Duration::from_secs(10));
        let result = add(&runner, &net, &att).unwrap();
        let address = result["ips"][0]["address"].as_str().unwrap().to_string();
        assert!(address.starts_with("172.29.251."), "{result}");
        let host_veth = result["interfaces"][0]["name"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(host_link_exists(&host_veth), "{result}");
        let inside = Command::new("ip")
            .args(["-n", &ns.0, "-4", "addr", "show", "eth0"])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&inside.stdout).contains(&address),
            "{inside:?}"
        );
        let lease_dir = leases.path().join(&net.name);
        assert!(std::fs::read_dir(&lease_dir).unwrap().count() > 0);

        del(&runner, &net, &att, Some(&result)).unwrap();
        assert!(!host_link_exists(&host_veth), "the host veth is gone");
        let ip = address.split('/').next().unwrap();
        assert!(!lease_dir.join(ip).exists(), "the lease is released");
    }

    /// CHECK of ptp + host-local, Debian's and the project's: fine right
    /// after ADD, an error naming what is off once the pod's address is
    /// gone, and not run at all for `disableCheck` or a 0.3.1 network.
    #[test]
    fn check_finds_a_broken_attachment() {
        let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release");
        for (label, dirs, subnet) in [
            ("reference", Vec::new(), "172.29.253.0/24"),
            ("ours", vec![ours], "172.29.254.0/24"),
        ] {
            let ns = Netns::new(&format!("chk{label}"));
            let leases = tempfile::tempdir().unwrap();
            let conf = |version: &str, disable: bool| {
                serde_json::json!({
                    "cniVersion": version,
                    "name": format!("chk{label}{}", std::process::id()),
                    "disableCheck": disable,
                    "plugins": [{
                        "type": "ptp",
                        "ipam": {"type": "host-local", "subnet": subnet, "dataDir": leases.path()},
                    }],
                })
                .to_string()
            };
            let net =
                NetConf::parse(Path::new("c.conflist"), conf("1.0.0", false).as_bytes()).unwrap();
            let att = eth0_of(&ns, &format!("chk-{label}"));
            // Found first, so Debian's does not stand in for a missing one.
            for dir in &dirs {
                assert!(dir.join("ptp").exists(), "build the plugins first: {dir:?}");
            }
            let runner = PluginRunner::new(dirs, Duration::from_secs(10));
            let result = add(&runner, &net, &att).unwrap();
            assert!(check(&runner, &net, &att, &result).unwrap(), "{label}");

            let address = result["ips"][0]["address"].as_str().unwrap().to_string();
            let flushed = Command::new("ip")
                .args(["-n", &ns.0, "addr", "del", &address, "dev", "eth0"])
                .status()
                .unwrap();
            assert!(flushed.success());
            let e = check(&runner, &net, &att, &result).unwrap_err();
            assert!(matches!(e, ChainError::Check { .. }), "{label}: {e:?}");
            assert!(e.to_string().contains("ptp"), "{label}: {e}");

            for (version, disable) in [("1.0.0", true), ("0.3.1", false)] {
                let other =
                    NetConf::parse(Path::new("c.conflist"), conf(version, disable).as_bytes())
                        .unwrap();
                assert!(!check(&runner, &other, &att, &result).unwrap(), "{label}");
            }
            del(&runner, &net, &att, Some(&result)).unwrap();
        }
    }

    /// A failing plugin in the middle of a chain: the ADD error names it,
    /// and the plugins before it are undone.
    #[test]
    fn failed_add_is_undone() {
        let ns = Netns::new("undo");
        let leases = tempfile::tempdir().unwrap();
        let conf = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": format!("undotest{}", std::process::id()),
            "plugins": [
                {"type": "ptp", "ipam": {"type": "host-local", "subnet": "172.29.252.0/24", "dataDir": leases.path()}},
                // tuning refuses a sysctl outside net.*.
                {"type": "tuning", "sysctl": {"kernel.hostname": "x"}},
            ],
        });
        let net = NetConf::parse(Path::new("u.conflist"), conf.to_string().as_bytes()).unwrap();
        let att = eth0_of(&ns, "undo");
        let runner = PluginRunner::new(Vec::new(), Duration::from_secs(10));
        let e = add(&runner, &net, &att).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("tuning"), "{text}");
        let ChainError::Add { cleanup, .. } = &e else {
            panic!("{e:?}")
        };
        assert!(cleanup.is_empty(), "{cleanup:?}");
        let lease_dir = leases.path().join(&net.name);
        let leased = std::fs::read_dir(&lease_dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("172."))
                    .count()
            })
            .unwrap_or(0);
        assert_eq!(leased, 0, "host-local's lease was released by the DEL");
    }
}
