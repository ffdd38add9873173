//! The VM's network interfaces: for each interface CNI made in the pod's
//! network namespace, a tap device beside it, with every frame that comes
//! in on one sent out of the other (tc mirred, as Kata's "tcfilter" mode
//! does). The VM's NIC takes the interface's MAC, and the guest its
//! addresses and routes, so whatever plugin made the interface, the pod's
//! traffic flows as it would for the ns flavor.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use cni_plugins::netlink::{Socket, RT_TABLE_MAIN};
use thiserror::Error;

use crate::config::{GuestInterface, GuestRoute};

#[derive(Debug, Error)]
pub enum TapError {
    #[error("cannot enter the pod's network namespace: {0}")]
    Enter(io::Error),
    #[error("cannot create a tap device for {ifname} (is /dev/net/tun there?): {source}")]
    Create { ifname: String, source: io::Error },
    #[error("the pod's network namespace has no interface {0}")]
    Missing(String),
    #[error("cannot connect {ifname} to the VM's tap device: {source}")]
    Connect { ifname: String, source: io::Error },
    #[error("cannot read the addresses and routes of {ifname}: {source}")]
    Read { ifname: String, source: io::Error },
}

/// A tap device handed to QEMU (`-netdev tap,fd=`) and what the guest
/// configures its NIC with.
pub struct Tap {
    pub fd: OwnedFd,
    pub interface: GuestInterface,
}

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;

/// Makes a tap for each of `ifnames` in the network namespace `netns`.
pub fn attach(netns: BorrowedFd<'_>, ifnames: &[String]) -> Result<Vec<Tap>, TapError> {
    let netns = netns.as_raw_fd();
    // setns affects only the calling thread: a thread of its own enters
    // the pod's namespace and ends there.
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: setns on a descriptor the caller holds open; only this
            // thread changes namespace, and it ends after this closure.
            if unsafe { libc::setns(netns, libc::CLONE_NEWNET) } != 0 {
                return Err(TapError::Enter(io::Error::last_os_error()));
            }
            ifnames
                .iter()
                .enumerate()
                .map(|(i, ifname)| attach_one(ifname, &format!("tap{i}")))
                .collect()
        })
        .join()
        .unwrap_or_else(|_| Err(TapError::Enter(io::Error::other("the thread panicked"))))
    })
}

fn attach_one(ifname: &str, tap_name: &str) -> Result<Tap, TapError> {
    let create = |source| TapError::Create {
        ifname: ifname.to_string(),
        source,
    };
    let fd = open_tap(tap_name).map_err(create)?;
    let connect = |source| TapError::Connect {
        ifname: ifname.to_string(),
        source,
    };
    let mut nl = Socket::new().map_err(connect)?;
    let link = nl
        .link_by_name(ifname)
        .map_err(connect)?
        .ok_or_else(|| TapError::Missing(ifname.to_string()))?;
    let tap = nl
        .link_by_name(tap_name)
        .map_err(connect)?
        .ok_or_else(|| connect(io::Error::other(format!("{tap_name} vanished"))))?;
    nl.link_set_mtu(tap.index, link.mtu).map_err(connect)?;
    nl.link_set_up(tap.index, true).map_err(connect)?;
    nl.redirect_ingress(link.index, tap.index)
        .map_err(connect)?;
    nl.redirect_ingress(tap.index, link.index)
        .map_err(connect)?;
    let read = |source| TapError::Read {
        ifname: ifname.to_string(),
        source,
    };
    let addresses = nl
        .addrs(Some(link.index))
        .map_err(read)?
        .into_iter()
        .filter(|a| a.scope != cni_plugins::netlink::RT_SCOPE_LINK)
        .map(|a| a.net)
        .collect();
    let mut routes = Vec::new();
    for ipv4 in [true, false] {
        routes.extend(
            nl.routes(ipv4)
                .map_err(read)?
                .into_iter()
                .filter(|r| r.oif == link.index && r.table == RT_TABLE_MAIN as u32)
                .map(|r| GuestRoute {
                    dst: r.dst,
                    gateway: r.gw,
                    scope: r.scope,
                }),
        );
    }
    Ok(Tap {
        fd,
        interface: GuestInterface {
            name: ifname.to_string(),
            mac: link.mac_string(),
            mtu: link.mtu,
            addresses,
            routes,
        },
    })
}

/// Opens /dev/net/tun as a new tap device `name` (gone when the last
/// descriptor closes: QEMU's exit removes it).
fn open_tap(name: &str) -> io::Result<OwnedFd> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")?;
    // struct ifreq: the name, then the flags (a short) in the union.
    let mut ifr = [0u8; 40];
    ifr[..name.len()].copy_from_slice(name.as_bytes());
    ifr[16..18].copy_from_slice(&(IFF_TAP | IFF_NO_PI).to_ne_bytes());
    // SAFETY: TUNSETIFF reads (and updates) an ifreq-sized buffer we own.
    if unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, ifr.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file.into())
}
