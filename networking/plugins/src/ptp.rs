//! The ptp plugin: a veth pair per container, routed through the host end
//! (no bridge), addresses from a delegated IPAM plugin.
//!
//! Addressing follows the reference so routes look the same inside the
//! container: the IPAM address keeps its prefix, but the kernel's connected
//! route for it is replaced by "gateway/32 dev eth0 scope link" plus
//! "subnet via gateway", so every packet — even to neighbours — goes through
//! the host. The host end gets the gateway as a /32 and a host route to the
//! container address.

use serde::Deserialize;

use crate::attach::{self, masq_setup, masq_teardown, nl};
use crate::cni::{self, Args, Error, ERR_DECODING};
use crate::ipam::exec as ipam;
use crate::ipnet::IpNet;
use crate::netlink::{self, RouteSpec, Socket};
use crate::netns::NetNs;
use crate::sysctl;
use crate::types::{CniResult, Dns, Interface, Versioned};
use crate::veth;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PtpConf {
    #[serde(default)]
    ip_masq: bool,
    #[serde(default)]
    mtu: u32,
    #[serde(default)]
    dns: Dns,
    prev_result: Option<serde_json::Value>,
}

fn load(args: &Args) -> Result<PtpConf, Error> {
    serde_json::from_value(args.conf.clone())
        .map_err(|e| Error::new(ERR_DECODING, format!("failed to load netconf: {e}")))
}

/// Addresses and routes inside the container (see the module comment).
fn configure_container(
    sock: &mut Socket,
    ifname: &str,
    idx: u32,
    res: &CniResult,
) -> Result<(), Error> {
    attach::configure_iface(sock, ifname, idx, res)?;
    for ip in &res.ips {
        let gw = ip.gateway.ok_or_else(|| {
            Error::generic(format!("IPAM result for {} has no gateway", ip.address))
        })?;
        let mut connected = RouteSpec::new(ip.address.network(), idx);
        connected.scope = netlink::RT_SCOPE_NOWHERE;
        sock.route_del(&connected).map_err(nl(format!(
            "failed to delete route {}",
            ip.address.network()
        )))?;
        let mut to_gw = RouteSpec::new(IpNet::host(gw), idx);
        to_gw.scope = netlink::RT_SCOPE_LINK;
        to_gw.src = Some(ip.address.addr);
        let mut via_gw = RouteSpec::new(ip.address.network(), idx);
        via_gw.gw = Some(gw);
        via_gw.src = Some(ip.address.addr);
        for r in [to_gw, via_gw] {
            sock.route_add(&r)
                .map_err(nl(format!("failed to add route {}", r.dst)))?;
        }
    }
    Ok(())
}

/// Gateway /32 on the host end, plus a host route to each container address.
fn configure_host(sock: &mut Socket, name: &str, idx: u32, res: &CniResult) -> Result<(), Error> {
    for ip in &res.ips {
        if let Some(gw) = ip.gateway {
            sock.addr_add(idx, &IpNet::host(gw))
                .map_err(nl(format!("failed to add IP addr {gw} to veth {name}")))?;
        }
        let mut r = RouteSpec::new(IpNet::host(ip.address.addr), idx);
        r.scope = netlink::RT_SCOPE_HOST;
        match sock.route_add(&r) {
            Err(e) if e.raw_os_error() != Some(libc::EEXIST) => {
                return Err(Error::generic(format!("failed to add route on host: {e}")))
            }
            _ => {}
        }
    }
    Ok(())
}

pub struct Ptp;

impl Ptp {
    /// Everything after IPAM; on error the caller releases the IPAM lease and
    /// this function has removed what it created.
    fn add_links(
        &self,
        args: &Args,
        conf: &PtpConf,
        mut res: CniResult,
    ) -> Result<CniResult, Error> {
        if res.ips.is_empty() {
            return Err(Error::generic("IPAM plugin returned missing IP config"));
        }
        let v4 = res.ips.iter().any(|i| i.address.is_ipv4());
        let v6 = res.ips.iter().any(|i| !i.address.is_ipv4());
        sysctl::enable_forwarding(v4, v6)
            .map_err(|e| Error::generic(format!("Could not enable IP forwarding: {e}")))?;

        let ns = NetNs::open(&args.netns).map_err(|e| Error::generic(e.to_string()))?;
        let mut host = Socket::new().map_err(nl("failed to open netlink socket".into()))?;
        let mut cont = ns.socket()?;
        let mtu = (conf.mtu > 0).then_some(conf.mtu);
        let pair = veth::setup(&mut host, &mut cont, &ns, &args.ifname, mtu)?;

        let configured = (|| {
            for ip in &mut res.ips {
                ip.interface = Some(1);
            }
            configure_container(&mut cont, &args.ifname, pair.cont.index, &res)?;
            configure_host(&mut host, &pair.host.name, pair.host.index, &res)?;
            if conf.ip_masq {
                masq_setup(args, &res.ips)?;
            }
            Ok::<(), Error>(())
        })();
        if let Err(e) = configured {
            let _ = host.link_del(pair.host.index);
            if conf.ip_masq {
                let _ = masq_teardown(args, None);
            }
            return Err(e);
        }

        res.interfaces = vec![
            Interface {
                name: pair.host.name.clone(),
                mac: pair.host.mac_string(),
                mtu: None,
                sandbox: String::new(),
            },
            Interface {
                name: pair.cont.name.clone(),
                mac: pair.cont.mac_string(),
                mtu: None,
                sandbox: args.netns.clone(),
            },
        ];
        // Only DNS settings given to ptp itself replace the IPAM plugin's.
        if !conf.dns.is_empty() {
            res.dns = conf.dns.clone();
        }
        Ok(res)
    }
}

impl cni::Plugin for Ptp {
    fn add(&self, args: &Args) -> Result<Versioned, Error> {
        let conf = load(args)?;
        let ipam_type = ipam::ipam_type(args)?;
        let res = ipam::exec(&ipam_type, "ADD", args)?
            .ok_or_else(|| Error::generic("IPAM plugin returned no result"))?;
        match self.add_links(args, &conf, res) {
            Ok(r) => Ok(r.versioned(&args.version)),
            Err(e) => {
                // Do not leak the address.
                let _ = ipam::exec(&ipam_type, "DEL", args);
                Err(e)
            }
        }
    }

    fn del(&self, args: &Args) -> Result<(), Error> {
        let conf = load(args)?;
        let prev = conf.prev_result.as_ref();
        attach::del_veth_alongside(args, prev, || {
            ipam::exec(&ipam::ipam_type(args)?, "DEL", args)?;
            // The rules are found by chain name, so they go even when the
            // namespace (and with it the addresses) is already gone.
            if conf.ip_masq {
                masq_teardown(args, prev)?;
            }
            Ok(())
        })
    }

    fn gc(&self, args: &Args) -> Result<(), Error> {
        attach::gc(args)
    }

    fn status(&self, args: &Args) -> Result<(), Error> {
        attach::status(args)
    }

    fn check(&self, args: &Args) -> Result<(), Error> {
        let conf = load(args)?;
        let ns = NetNs::open(&args.netns).map_err(|e| Error::generic(e.to_string()))?;
        ipam::exec(&ipam::ipam_type(args)?, "CHECK", args)?;
        let prev = conf
            .prev_result
            .ok_or_else(|| Error::generic("ptp: Required prevResult missing"))?;
        attach::check_container(args, &ns, &prev, "ptp")
    }
}
