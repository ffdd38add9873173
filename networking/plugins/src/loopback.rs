//! The loopback plugin: brings `lo` up in the container namespace on ADD and
//! down on DEL. The result lists `lo` and its addresses, as the reference's.

use crate::cni::{self, Args, Error};
use crate::netlink::Socket;
use crate::netns::{NetNs, NetnsError};
use crate::types::{CniResult, Interface, IpConfig, Versioned};

impl From<NetnsError> for Error {
    fn from(e: NetnsError) -> Self {
        Error::generic(e.to_string())
    }
}

fn nl_err(what: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::generic(format!("{what}: {e}"))
}

fn lo_index(sock: &mut Socket) -> Result<u32, Error> {
    Ok(sock
        .link_by_name("lo")
        .map_err(nl_err("failed to look up lo"))?
        .ok_or_else(|| Error::generic("failed to find lo"))?
        .index)
}

pub struct Loopback;

impl cni::Plugin for Loopback {
    fn add(&self, args: &Args) -> Result<Versioned, Error> {
        let ns = NetNs::open(&args.netns)?;
        let mut sock = ns.socket()?;
        let idx = lo_index(&mut sock)?;
        sock.link_set_up(idx, true)
            .map_err(nl_err("failed to set lo up"))?;
        let link = sock
            .link_by_index(idx)
            .map_err(nl_err("failed to look up lo"))?
            .ok_or_else(|| Error::generic("lo vanished"))?;
        // The kernel puts 127.0.0.1/8 and ::1 on lo when it comes up.
        let mut addrs = sock
            .addrs(Some(idx))
            .map_err(nl_err("failed to list lo addresses"))?;
        addrs.sort_by_key(|a| !a.net.is_ipv4());
        let result = CniResult {
            interfaces: vec![Interface {
                name: link.name.clone(),
                mac: link.mac_string(),
                mtu: None,
                sandbox: args.netns.clone(),
            }],
            ips: addrs
                .into_iter()
                .map(|a| IpConfig {
                    interface: Some(0),
                    address: a.net,
                    gateway: None,
                })
                .collect(),
            ..Default::default()
        };
        Ok(result.versioned(&args.version))
    }

    fn del(&self, args: &Args) -> Result<(), Error> {
        if args.netns.is_empty() {
            return Ok(());
        }
        // DEL must succeed when the namespace is already gone.
        let ns = match NetNs::open(&args.netns) {
            Ok(ns) => ns,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut sock = ns.socket()?;
        let idx = lo_index(&mut sock)?;
        sock.link_set_up(idx, false)
            .map_err(nl_err("failed to set lo down"))?;
        Ok(())
    }

    fn check(&self, args: &Args) -> Result<(), Error> {
        let ns = NetNs::open(&args.netns)?;
        let mut sock = ns.socket()?;
        let idx = lo_index(&mut sock)?;
        let up = sock
            .link_by_index(idx)
            .map_err(nl_err("failed to look up lo"))?
            .is_some_and(|l| l.is_up());
        if !up {
            return Err(Error::generic("loopback interface is down"));
        }
        Ok(())
    }
}
