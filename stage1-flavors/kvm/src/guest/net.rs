//! The guest's network interfaces, configured as the host's CNI networks
//! left the pod's interfaces: same names, MACs, MTUs, addresses and routes.

use std::io;

use cni_plugins::netlink::{RouteSpec, Socket, RT_SCOPE_UNIVERSE, RT_TABLE_MAIN};
use thiserror::Error;

use crate::config::{GuestInterface, GuestRoute};

#[derive(Debug, Error)]
pub enum NetError {
    #[error("cannot configure the guest's network: {0}")]
    Netlink(#[from] io::Error),
    #[error("the VM has no NIC with MAC {mac} (for {name})")]
    NoNic { name: String, mac: String },
    #[error("cannot configure {name} in the guest ({step}): {source}")]
    Configure {
        name: String,
        step: String,
        source: io::Error,
    },
}

/// Brings loopback up and configures every interface.
pub fn configure(interfaces: &[GuestInterface]) -> Result<(), NetError> {
    let mut nl = Socket::new()?;
    if let Some(lo) = nl.link_by_name("lo")? {
        nl.link_set_up(lo.index, true)?;
    }
    let links = nl.links()?;
    let mut found = Vec::new();
    for iface in interfaces {
        let link = links
            .iter()
            .find(|l| l.mac_string().eq_ignore_ascii_case(&iface.mac))
            .ok_or_else(|| NetError::NoNic {
                name: iface.name.clone(),
                mac: iface.mac.clone(),
            })?;
        found.push(link.index);
    }
    // Through names of their own first: the kernel may have named the
    // NICs in another order than the host's interfaces.
    for (i, (&index, iface)) in found.iter().zip(interfaces).enumerate() {
        nl.link_set_name(index, &format!("rktnic{i}"))
            .map_err(step(iface, "rename"))?;
    }
    for (&index, iface) in found.iter().zip(interfaces) {
        nl.link_set_name(index, &iface.name)
            .map_err(step(iface, "rename"))?;
        nl.link_set_mtu(index, iface.mtu)
            .map_err(step(iface, "mtu"))?;
        nl.link_set_up(index, true).map_err(step(iface, "up"))?;
        for addr in &iface.addresses {
            nl.addr_add(index, addr)
                .map_err(step(iface, &format!("address {addr}")))?;
        }
        set_routes(&mut nl, index, iface)?;
    }
    Ok(())
}

fn step<'a>(iface: &'a GuestInterface, step: &'a str) -> impl FnOnce(io::Error) -> NetError + 'a {
    move |source| NetError::Configure {
        name: iface.name.clone(),
        step: step.to_string(),
        source,
    }
}

/// The link's routes become exactly the host's: routes the kernel made
/// for the addresses go unless the host had them too (ptp replaces the
/// on-link prefix route by one through the gateway, which pod-to-pod
/// traffic needs), then the missing ones are added, links first.
fn set_routes(nl: &mut Socket, index: u32, iface: &GuestInterface) -> Result<(), NetError> {
    let same = |r: &RouteSpec, g: &GuestRoute| r.dst == g.dst && r.gw == g.gateway;
    let mut current = Vec::new();
    for ipv4 in [true, false] {
        current.extend(
            nl.routes(ipv4)
                .map_err(step(iface, "routes"))?
                .into_iter()
                .filter(|r| r.oif == index && r.table == RT_TABLE_MAIN as u32),
        );
    }
    for route in &current {
        if !iface.routes.iter().any(|g| same(route, g)) {
            nl.route_del(route)
                .map_err(step(iface, &format!("route to {}", route.dst)))?;
        }
    }
    let mut wanted: Vec<&GuestRoute> = iface
        .routes
        .iter()
        .filter(|g| !current.iter().any(|r| same(r, g)))
        .collect();
    // A gateway must be reachable when its route is added.
    wanted.sort_by_key(|r| std::cmp::Reverse(r.scope));
    for route in wanted {
        let mut spec = RouteSpec::new(route.dst, index);
        spec.gw = route.gateway;
        spec.scope = match route.gateway {
            Some(_) => RT_SCOPE_UNIVERSE,
            None => route.scope,
        };
        match nl.route_add(&spec) {
            // The kernel made the same one meanwhile (IPv6 link-local).
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            r => r.map_err(step(iface, &format!("route to {}", route.dst)))?,
        }
    }
    Ok(())
}
