//! `macspoofchk` of the bridge plugin: frames a container sends into the
//! bridge must carry its interface's MAC address; others are dropped before
//! the bridge sees them. One nftables table per attachment (family bridge,
//! hook prerouting), so removing it is deleting that table; the reference
//! keeps its chains in a shared `bridge nat` table instead.

use sha2::{Digest, Sha256};

use crate::cni::Error;
use crate::tool;

/// The table of one attachment: `cni-spoofchk-<hash of container ID and
/// interface>`.
pub fn table_name(container_id: &str, ifname: &str) -> String {
    let hash = Sha256::digest(format!("{container_id}\n{ifname}").as_bytes());
    let hex: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("cni-spoofchk-{hex}")
}

/// Drops frames from `host_veth` (the container's port) whose source MAC
/// is not `mac`.
pub fn setup(container_id: &str, ifname: &str, host_veth: &str, mac: &str) -> Result<(), Error> {
    let table = table_name(container_id, ifname);
    let script = format!(
        "table bridge {table} {{\n\
         \tchain prerouting {{\n\
         \t\ttype filter hook prerouting priority -300; policy accept;\n\
         \t\tiifname \"{host_veth}\" ether saddr != {mac} drop comment \"macspoofchk-{container_id}-{ifname}\"\n\
         \t}}\n\
         }}\n"
    );
    tool::run("nft", &["-f", "-"], Some(&script))
        .map(drop)
        .map_err(|e| {
            Error::generic(format!(
                "failed to set up the MAC spoof check: {}",
                e.detail()
            ))
        })
}

/// Removes the attachment's table; a missing one is already gone.
pub fn teardown(container_id: &str, ifname: &str) -> Result<(), Error> {
    let table = table_name(container_id, ifname);
    match tool::run("nft", &["delete", "table", "bridge", &table], None) {
        Ok(_) => Ok(()),
        Err(e) if e.detail().contains("No such file") => Ok(()),
        Err(e) => Err(Error::generic(format!(
            "failed to remove the MAC spoof check: {}",
            e.detail()
        ))),
    }
}
