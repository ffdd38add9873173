//! What ptp and bridge share: IPAM addresses and routes on the container
//! interface, masquerading, and the DEL-side cleanup.

use std::net::IpAddr;

use crate::cni::{self, Args, Error};
use crate::ipam::exec as ipam;
use crate::ipnet::IpNet;
use crate::iptables;
use crate::netlink::{RouteSpec, Socket};
use crate::netns::NetNs;
use crate::types::{CniResult, IpConfig, Route};

impl From<crate::veth::VethError> for Error {
    fn from(e: crate::veth::VethError) -> Self {
        Error::generic(e.to_string())
    }
}

impl From<iptables::IptError> for Error {
    fn from(e: iptables::IptError) -> Self {
        Error::generic(e.to_string())
    }
}

/// Maps a netlink failure to a CNI error with context.
pub fn nl(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::generic(format!("{what}: {e}"))
}

/// The first gateway of each family among the IPAM addresses; routes
/// without their own `gw` use it.
pub fn default_gateways(ips: &[IpConfig]) -> (Option<IpAddr>, Option<IpAddr>) {
    let v4 = ips
        .iter()
        .filter(|i| i.address.is_ipv4())
        .find_map(|i| i.gateway);
    let v6 = ips
        .iter()
        .filter(|i| !i.address.is_ipv4())
        .find_map(|i| i.gateway);
    (v4, v6)
}

fn route_spec(r: &Route, oif: u32, gw: Option<IpAddr>) -> RouteSpec {
    let mut s = RouteSpec::new(r.dst, oif);
    s.gw = gw;
    s.priority = r.priority;
    if let Some(t) = r.table {
        s.table = t;
    }
    if let Some(sc) = r.scope {
        s.scope = sc;
    }
    s
}

/// The reference's ConfigureIface: every IPAM address on the link, then
/// every IPAM route (without `gw`, via the address family's gateway).
pub fn configure_iface(
    sock: &mut Socket,
    ifname: &str,
    idx: u32,
    res: &CniResult,
) -> Result<(), Error> {
    for ip in &res.ips {
        sock.addr_add(idx, &ip.address).map_err(nl(format!(
            "failed to add IP addr {} to {ifname:?}",
            ip.address
        )))?;
    }
    let (gw4, gw6) = default_gateways(&res.ips);
    for r in &res.routes {
        let gw = r.gw.or(if r.dst.is_ipv4() { gw4 } else { gw6 });
        sock.route_add(&route_spec(r, idx, gw)).map_err(nl(format!(
            "failed to add route '{} via {} dev {ifname}'",
            r.dst,
            gw.map(|g| g.to_string()).unwrap_or_default()
        )))?;
    }
    Ok(())
}

/// Masquerades the result's addresses (per family) under the reference's
/// chain and comment.
pub fn masq_setup(args: &Args, ips: &[IpConfig]) -> Result<(), Error> {
    let chain = iptables::chain_name(&args.name, &args.container_id);
    let comment = iptables::comment(&args.name, &args.container_id);
    for fam in [true, false] {
        let nets: Vec<IpNet> = ips
            .iter()
            .filter(|i| i.address.is_ipv4() == fam)
            .map(|i| i.address)
            .collect();
        iptables::setup_masq(&nets, &chain, &comment)?;
    }
    Ok(())
}

/// Removes the attachment's masquerade rules, found by chain name, so it
/// works without knowing the addresses. With the cached result only its
/// address families are looked at: each is one run of iptables (or
/// ip6tables) listing the whole nat table.
pub fn masq_teardown(args: &Args, prev_result: Option<&serde_json::Value>) -> Result<(), Error> {
    let chain = iptables::chain_name(&args.name, &args.container_id);
    let (v4, v6) = prev_result
        .and_then(address_families)
        .unwrap_or((true, true));
    if v4 {
        iptables::teardown_masq(&chain, true)?;
    }
    if v6 {
        iptables::teardown_masq(&chain, false)?;
    }
    Ok(())
}

/// Whether a CNI result has IPv4 and IPv6 addresses; `None` when it lists
/// none (or cannot be read), so the caller looks at both.
fn address_families(result: &serde_json::Value) -> Option<(bool, bool)> {
    let addrs: Vec<IpNet> = result
        .get("ips")?
        .as_array()?
        .iter()
        .filter_map(|ip| ip.get("address")?.as_str()?.parse().ok())
        .collect();
    if addrs.is_empty() {
        return None;
    }
    let v4 = addrs.iter().any(|a| a.is_ipv4());
    Some((v4, addrs.iter().any(|a| !a.is_ipv4())))
}

/// DEL of a veth plugin: the link is deleted on a thread of its own while
/// `rest` (IPAM release, rules) runs, since deleting a link waits for the
/// kernel's RCU grace periods (25-30 ms here) and the rule tools take as
/// long. Both always run; `rest`'s error comes first.
pub fn del_veth_alongside(
    args: &Args,
    prev_result: Option<&serde_json::Value>,
    rest: impl FnOnce() -> Result<(), Error>,
) -> Result<(), Error> {
    std::thread::scope(|scope| {
        let link = scope.spawn(|| del_veth_attachment(args, prev_result));
        let rest = rest();
        let link = link
            .join()
            .unwrap_or_else(|_| Err(Error::generic("deleting the veth failed: panic")));
        rest.and(link)
    })
}

/// Deletes the container end (which takes the host end with it).
/// Ok(false) when there was no such link.
fn del_container_link(ns: &NetNs, ifname: &str) -> Result<bool, Error> {
    let mut sock = ns.socket()?;
    let Some(l) = sock
        .link_by_name(ifname)
        .map_err(nl(format!("failed to look up {ifname}")))?
    else {
        return Ok(false);
    };
    match sock.link_del(l.index) {
        Err(e) if e.raw_os_error() != Some(libc::ENODEV) => {
            Err(Error::generic(format!("failed to delete {ifname}: {e}")))
        }
        _ => Ok(true),
    }
}

/// DEL of a veth attachment: the container end when the namespace is
/// still there, else the host end the cached result names.
pub fn del_veth_attachment(
    args: &Args,
    prev_result: Option<&serde_json::Value>,
) -> Result<(), Error> {
    let removed = if args.netns.is_empty() {
        false
    } else {
        match NetNs::open(&args.netns) {
            Ok(ns) => del_container_link(&ns, &args.ifname)?,
            Err(e) if e.is_not_found() => false,
            Err(e) => return Err(e.into()),
        }
    };
    if !removed {
        del_host_veth_from_prev(prev_result)?;
    }
    Ok(())
}

/// GC (1.1.0) of a plugin that delegates IPAM and masquerades: the IPAM
/// plugin collects its leases, and masquerade rules of containers no
/// longer attached go.
pub fn gc(args: &Args) -> Result<(), Error> {
    let t = ipam::ipam_type(args)?;
    if !t.is_empty() {
        ipam::exec(&t, "GC", args)?;
    }
    let valid = cni::valid_attachments(args)?;
    let keep: Vec<&str> = valid.iter().map(|a| a.container_id.as_str()).collect();
    iptables::gc_masq(&args.name, &keep)?;
    Ok(())
}

/// STATUS (1.1.0): ready when the IPAM plugin is.
pub fn status(args: &Args) -> Result<(), Error> {
    let t = ipam::ipam_type(args)?;
    if !t.is_empty() {
        ipam::exec(&t, "STATUS", args)?;
    }
    Ok(())
}

/// When the namespace is gone (or no longer reachable by its path) its veth
/// may outlive it for a while — the kernel tears namespaces down
/// asynchronously, and a namespace kept alive elsewhere keeps its veths. The
/// runtime's cached result (prevResult, 0.4.0+) names the host end, so
/// remove that if it is still there and still a veth with the same MAC.
fn del_host_veth_from_prev(prev_result: Option<&serde_json::Value>) -> Result<(), Error> {
    let Some(prev) = prev_result.and_then(|p| serde_json::from_value::<CniResult>(p.clone()).ok())
    else {
        return Ok(());
    };
    let mut host = Socket::new().map_err(nl("failed to open netlink socket".into()))?;
    for i in prev
        .interfaces
        .iter()
        .filter(|i| i.sandbox.is_empty() && i.name.starts_with("veth"))
    {
        if let Ok(Some(l)) = host.link_by_name(&i.name) {
            if l.kind.as_deref() == Some("veth") && (i.mac.is_empty() || i.mac == l.mac_string()) {
                let _ = host.link_del(l.index);
            }
        }
    }
    Ok(())
}

/// CHECK of the container side against the cached result: the interface is
/// there, is a veth with the recorded MAC, and has the recorded addresses;
/// the recorded routes exist.
pub fn check_container(
    args: &Args,
    ns: &NetNs,
    prev: &serde_json::Value,
    plugin: &str,
) -> Result<(), Error> {
    let prev: CniResult = serde_json::from_value(prev.clone()).map_err(|e| {
        Error::new(
            crate::cni::ERR_DECODING,
            format!("failed to parse prevResult: {e}"),
        )
    })?;
    let idx_in_prev = prev
        .interfaces
        .iter()
        .position(|i| i.name == args.ifname && i.sandbox == args.netns)
        .ok_or_else(|| {
            Error::generic(format!(
                "Sandbox in prevResult  doesn't match configured netns: {}",
                args.netns
            ))
        })?;
    let want = &prev.interfaces[idx_in_prev];
    let mut sock = ns.socket()?;
    let link = sock
        .link_by_name(&args.ifname)
        .map_err(nl(format!("failed to look up {}", args.ifname)))?
        .ok_or_else(|| {
            Error::generic(format!(
                "{plugin}: Container Interface name in prevResult: {} not found",
                args.ifname
            ))
        })?;
    if link.kind.as_deref() != Some("veth") {
        return Err(Error::generic(format!(
            "Error: Container interface {} not of type veth/p2p",
            link.name
        )));
    }
    if !want.mac.is_empty() && want.mac != link.mac_string() {
        return Err(Error::generic(format!(
            "{plugin}: Interface {} Mac {} doesn't match container Mac: {}",
            want.name,
            want.mac,
            link.mac_string()
        )));
    }
    let addrs = sock
        .addrs(Some(link.index))
        .map_err(nl("failed to list addresses".into()))?;
    for ip in prev.ips.iter().filter(|i| i.interface == Some(idx_in_prev)) {
        if !addrs.iter().any(|a| a.net == ip.address) {
            return Err(Error::generic(format!(
                "Failed to match addr {} on interface {}",
                ip.address, args.ifname
            )));
        }
    }
    for r in &prev.routes {
        let routes = sock
            .routes(r.dst.is_ipv4())
            .map_err(nl("failed to list routes".into()))?;
        if !routes
            .iter()
            .any(|x| x.dst == r.dst.network() && (r.gw.is_none() || x.gw == r.gw))
        {
            return Err(Error::generic(format!(
                "Failed to find route {} in the container",
                r.dst
            )));
        }
    }
    Ok(())
}
