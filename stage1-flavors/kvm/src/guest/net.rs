//! The guest's network interfaces, configured as the host's CNI networks
//! left the pod's interfaces: same names, MACs, MTUs, addresses and routes.

use std::io;

use cni_plugins::netlink::{RouteSpec, Socket, RT_SCOPE_UNIVERSE, RT_TABLE_MAIN};
use thiserror::Error;

use crate::config::GuestInterface;

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
    for iface in interfaces {
        let link = links
            .iter()
            .find(|l| l.mac_string().eq_ignore_ascii_case(&iface.mac))
            .ok_or_else(|| NetError::NoNic {
                name: iface.name.clone(),
                mac: iface.mac.clone(),
            })?;
        let step = |step: &str| {
            let name = iface.name.clone();
            let step = step.to_string();
            move |source| NetError::Configure { name, step, source }
        };
        if link.name != iface.name {
            nl.link_set_name(link.index, &iface.name)
                .map_err(step("rename"))?;
        }
        nl.link_set_mtu(link.index, iface.mtu)
            .map_err(step("mtu"))?;
        nl.link_set_up(link.index, true).map_err(step("up"))?;
        for addr in &iface.addresses {
            ignore_existing(nl.addr_add(link.index, addr))
                .map_err(step(&format!("address {addr}")))?;
        }
        // Routes to the link first: a gateway must be reachable when its
        // route is added.
        let mut routes = iface.routes.clone();
        routes.sort_by_key(|r| std::cmp::Reverse(r.scope));
        for route in routes {
            let mut spec = RouteSpec::new(route.dst, link.index);
            spec.gw = route.gateway;
            spec.scope = route.scope;
            spec.table = RT_TABLE_MAIN as u32;
            if route.gateway.is_some() {
                spec.scope = RT_SCOPE_UNIVERSE;
            }
            ignore_existing(nl.route_add(&spec))
                .map_err(step(&format!("route to {}", route.dst)))?;
        }
    }
    Ok(())
}

/// Adding what the kernel already made (a prefix route) is fine.
fn ignore_existing(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        r => r,
    }
}
