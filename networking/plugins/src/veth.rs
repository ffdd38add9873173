//! veth pairs between the host and a container namespace.

use std::io;

use crate::netlink::{Link, Socket};
use crate::netns::NetNs;

#[derive(Debug, thiserror::Error)]
pub enum VethError {
    #[error("container veth name provided ({0}) already exists")]
    NameTaken(String),
    #[error("failed to create veth pair: {0}")]
    Create(io::Error),
    #[error("failed to find a free host veth name")]
    NoFreeName,
    #[error("failed to {what} {name}: {source}")]
    Link {
        what: &'static str,
        name: String,
        source: io::Error,
    },
    #[error("failed to get random bytes: {0}")]
    Random(io::Error),
}

/// "veth" + 8 hex digits, the reference's host-side naming.
pub fn random_name() -> Result<String, VethError> {
    let mut b = [0u8; 4];
    // SAFETY: getrandom writes at most b.len() bytes into b.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        return Err(VethError::Random(io::Error::last_os_error()));
    }
    Ok(format!(
        "veth{:02x}{:02x}{:02x}{:02x}",
        b[0], b[1], b[2], b[3]
    ))
}

/// Both ends after setup: host end in the host namespace, container end
/// (named `ifname`) in the container's; both up.
#[derive(Debug, Clone)]
pub struct VethPair {
    pub host: Link,
    pub cont: Link,
}

fn lookup(sock: &mut Socket, name: &str) -> Result<Link, VethError> {
    let not_found = || io::Error::from_raw_os_error(libc::ENODEV);
    sock.link_by_name(name)
        .and_then(|l| l.ok_or_else(not_found))
        .map_err(|source| VethError::Link {
            what: "look up",
            name: name.to_string(),
            source,
        })
}

/// Creates the pair from the host side, the peer going straight into the
/// container namespace under its final name (no rename, no move).
pub fn setup(
    host: &mut Socket,
    cont: &mut Socket,
    cont_ns: &NetNs,
    ifname: &str,
    mtu: Option<u32>,
) -> Result<VethPair, VethError> {
    let exists = |s: &mut Socket, n: &str| s.link_by_name(n).map(|l| l.is_some()).unwrap_or(false);
    if exists(cont, ifname) {
        return Err(VethError::NameTaken(ifname.to_string()));
    }
    let mut host_name = None;
    for _ in 0..10 {
        let name = random_name()?;
        if exists(host, &name) {
            continue;
        }
        match host.veth_add(&name, ifname, mtu, Some(cont_ns.fd())) {
            Ok(()) => {
                host_name = Some(name);
                break;
            }
            // Lost a race for the random name: pick another.
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) && !exists(cont, ifname) => continue,
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                return Err(VethError::NameTaken(ifname.to_string()))
            }
            Err(e) => return Err(VethError::Create(e)),
        }
    }
    let host_name = host_name.ok_or(VethError::NoFreeName)?;
    let pair = bring_up(host, cont, &host_name, ifname);
    if pair.is_err() {
        // Deleting one end removes both.
        if let Ok(Some(l)) = host.link_by_name(&host_name) {
            let _ = host.link_del(l.index);
        }
    }
    pair
}

fn bring_up(
    host: &mut Socket,
    cont: &mut Socket,
    host_name: &str,
    ifname: &str,
) -> Result<VethPair, VethError> {
    let up = |s: &mut Socket, l: &Link| {
        s.link_set_up(l.index, true)
            .map_err(|source| VethError::Link {
                what: "set up",
                name: l.name.clone(),
                source,
            })
    };
    let c = lookup(cont, ifname)?;
    up(cont, &c)?;
    let h = lookup(host, host_name)?;
    up(host, &h)?;
    Ok(VethPair {
        host: lookup(host, host_name)?,
        cont: lookup(cont, ifname)?,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn names() {
        let n = super::random_name().expect("name");
        assert_eq!(n.len(), 12);
        assert!(n.starts_with("veth"));
        assert!(n[4..].chars().all(|c| c.is_ascii_hexdigit()));
    }
}
