//! The bridge plugin: a host bridge (created on first use) with one veth
//! port per container; addresses from a delegated IPAM plugin, or none
//! (layer 2 only) when `ipam` has no type.
//!
//! `isGateway` puts each IPAM gateway on the bridge with the subnet's prefix
//! (so the host routes the subnet) and turns on forwarding;
//! `isDefaultGateway` also adds a default route via it. `hairpinMode` lets a
//! container reach itself through the host (e.g. via a port mapping);
//! `promiscMode` puts the bridge in promiscuous mode instead; the two are
//! exclusive, as in the reference. The container interface's MAC comes
//! from the `mac` capability, `args.cni.mac` or `MAC=` in CNI_ARGS.
//! `macspoofchk` drops frames from the container with another source MAC.

use serde::Deserialize;

use crate::attach::{self, masq_setup, masq_teardown, nl};
use crate::cni::{self, Args, Error, ERR_DECODING};
use crate::ipam::exec as ipam;
use crate::ipnet::IpNet;
use crate::netlink::{Link, Socket};
use crate::netns::NetNs;
use crate::spoofcheck;
use crate::sysctl;
use crate::types::{CniResult, Dns, Interface, Route, Versioned};
use crate::veth;

pub const DEFAULT_BRIDGE: &str = "cni0";

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BridgeConf {
    #[serde(default)]
    bridge: String,
    #[serde(default)]
    is_gateway: bool,
    #[serde(default)]
    is_default_gateway: bool,
    #[serde(default)]
    force_address: bool,
    #[serde(default)]
    ip_masq: bool,
    #[serde(default)]
    mtu: u32,
    #[serde(default)]
    hairpin_mode: bool,
    #[serde(default)]
    promisc_mode: bool,
    /// The VLAN every container port is an access port of (0: none).
    #[serde(default)]
    vlan: i64,
    /// Drop frames from the container whose source MAC is not its own.
    #[serde(default)]
    macspoofchk: bool,
    /// Refused when set: see `load`.
    #[serde(default)]
    enabledad: bool,
    #[serde(default)]
    vlan_trunk: Option<serde_json::Value>,
    #[serde(default)]
    dns: Dns,
    prev_result: Option<serde_json::Value>,
    #[serde(default)]
    args: MacArgs,
    #[serde(default)]
    runtime_config: MacRuntimeConfig,
    /// The container interface's MAC: `runtimeConfig.mac` (the `mac`
    /// capability), else `args.cni.mac`, else `MAC=` in CNI_ARGS (the
    /// reference's order).
    #[serde(skip)]
    mac: Option<[u8; 6]>,
}

#[derive(Debug, Default, Deserialize)]
struct MacArgs {
    #[serde(default)]
    cni: MacRuntimeConfig,
}

#[derive(Debug, Default, Deserialize)]
struct MacRuntimeConfig {
    #[serde(default)]
    mac: String,
}

/// `aa:bb:cc:dd:ee:ff` (or with `-`), as Go's net.ParseMAC for 6 bytes.
fn parse_mac(text: &str) -> Result<[u8; 6], Error> {
    let invalid = || Error::generic(format!("address {text}: invalid MAC address"));
    let separator = match text.as_bytes().get(2) {
        Some(b':') => ':',
        Some(b'-') => '-',
        _ => return Err(invalid()),
    };
    let octets: Vec<&str> = text.split(separator).collect();
    if octets.len() != 6 {
        return Err(invalid());
    }
    let mut mac = [0u8; 6];
    for (byte, octet) in mac.iter_mut().zip(octets) {
        if octet.len() != 2 || !octet.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid());
        }
        *byte = u8::from_str_radix(octet, 16).map_err(|_| invalid())?;
    }
    Ok(mac)
}

fn load(args: &Args) -> Result<BridgeConf, Error> {
    let mut c: BridgeConf = serde_json::from_value(args.conf.clone())
        .map_err(|e| Error::new(ERR_DECODING, format!("failed to load netconf: {e}")))?;
    if c.bridge.is_empty() {
        c.bridge = DEFAULT_BRIDGE.to_string();
    }
    cni::validate_ifname(&c.bridge).map_err(|e| e.context("invalid bridge name"))?;
    if c.is_default_gateway {
        c.is_gateway = true;
    }
    let mut mac = String::new();
    for (k, v) in cni::parse_cni_args(&args.args, &["MAC"])? {
        if k == "MAC" {
            mac = v;
        }
    }
    for from_conf in [&c.args.cni.mac, &c.runtime_config.mac] {
        if !from_conf.is_empty() {
            mac = from_conf.clone();
        }
    }
    if !mac.is_empty() {
        c.mac = Some(parse_mac(&mac)?);
    }
    if !(0..=4094).contains(&c.vlan) {
        return Err(Error::generic(format!(
            "invalid VLAN ID {} (must be between 0 and 4094)",
            c.vlan
        )));
    }
    // Parsed so that they are refused, not ignored.
    if c.enabledad {
        return Err(Error::generic(
            "enabledad is not supported: this plugin adds IPv6 addresses without duplicate address detection (IPAM made them unique); remove enabledad",
        ));
    }
    if c.vlan_trunk.is_some() {
        return Err(Error::generic(
            "vlanTrunk is not supported (nor by the reference plugins 1.1.1); use vlan for an access port",
        ));
    }
    if c.hairpin_mode && c.promisc_mode {
        return Err(Error::generic(
            "cannot set hairpin mode and promiscuous mode at the same time.",
        ));
    }
    Ok(c)
}

/// Finds or creates the bridge and brings it up.
fn ensure_bridge(sock: &mut Socket, conf: &BridgeConf) -> Result<Link, Error> {
    let name = &conf.bridge;
    let lookup = |sock: &mut Socket| {
        sock.link_by_name(name)
            .map_err(nl(format!("failed to look up {name:?}")))
    };
    let link = match lookup(sock)? {
        Some(l) => l,
        None => {
            let mtu = (conf.mtu > 0).then_some(conf.mtu);
            // VLAN filtering is set when the bridge is made, as the
            // reference does; an existing bridge is used as it is.
            match sock.bridge_add(name, mtu, conf.vlan != 0) {
                // Another ADD created it first: use theirs.
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                Err(e) => return Err(Error::generic(format!("could not add {name:?}: {e}"))),
                Ok(()) => {}
            }
            lookup(sock)?.ok_or_else(|| {
                Error::generic(format!("could not find {name:?} after creating it"))
            })?
        }
    };
    if link.kind.as_deref() != Some("bridge") {
        return Err(Error::generic(format!(
            "{name:?} already exists but is not a bridge"
        )));
    }
    if conf.promisc_mode {
        sock.link_set_promisc(link.index, true)
            .map_err(nl(format!("could not set promiscuous mode on {name:?}")))?;
    }
    sock.link_set_up(link.index, true)
        .map_err(nl(format!("failed to set {name:?} up")))?;
    Ok(link)
}

/// Puts `gw` on the bridge unless it is there already. Another address of the
/// same subnet is an error, or is replaced with `forceAddress`.
fn ensure_addr(sock: &mut Socket, br: &Link, gw: IpNet, force: bool) -> Result<(), Error> {
    let addrs = sock.addrs(Some(br.index)).map_err(nl(format!(
        "could not get list of IP addresses on {}",
        br.name
    )))?;
    for a in addrs.iter().filter(|a| a.net.is_ipv4() == gw.is_ipv4()) {
        if a.net == gw {
            return Ok(());
        }
        if a.net.network() == gw.network() || a.net.contains(&gw.addr) || gw.contains(&a.net.addr) {
            if !force {
                return Err(Error::generic(format!(
                    "{:?} already has an IP address different from {gw}",
                    br.name
                )));
            }
            sock.addr_del(br.index, &a.net).map_err(nl(format!(
                "could not remove IP address {} from {:?}",
                a.net, br.name
            )))?;
        }
    }
    sock.addr_add(br.index, &gw).map_err(nl(format!(
        "could not add IP address {gw} to {:?}",
        br.name
    )))?;
    // Pin the bridge's MAC (as the reference does): otherwise the bridge
    // takes the lowest port MAC, and its gateway's MAC changes as
    // containers come and go, leaving stale neighbour entries behind.
    if !br.mac.is_empty() {
        sock.link_set_mac(br.index, &br.mac)
            .map_err(nl(format!("could not set bridge's mac on {:?}", br.name)))?;
    }
    Ok(())
}

/// The gateway interface of VLAN `vid` on bridge `br`: a veth pair in the
/// host's namespace, `<bridge>.<vid>` on one end and an access port of the
/// VLAN on the other (the reference's layout). Made once, then reused.
fn ensure_vlan_interface(sock: &mut Socket, br: &Link, vid: u16) -> Result<Link, Error> {
    let name = format!("{}.{vid}", br.name);
    let find = |sock: &mut Socket, n: &str| {
        sock.link_by_name(n)
            .map_err(nl(format!("failed to find interface {n:?}")))
    };
    if let Some(link) = find(sock, &name)? {
        return Ok(link);
    }
    cni::validate_ifname(&name).map_err(|e| e.context("invalid vlan gateway name"))?;
    let port = veth::random_name().map_err(|e| Error::generic(e.to_string()))?;
    sock.veth_add(&name, &port, Some(br.mtu).filter(|m| *m > 0), None)
        .map_err(nl(format!("faild to create vlan gateway {name:?}")))?;
    let made = (|| {
        let port = find(sock, &port)?
            .ok_or_else(|| Error::generic(format!("failed to lookup {port:?}")))?;
        sock.link_set_master(port.index, br.index)
            .map_err(nl(format!(
                "failed to connect {:?} to bridge {}",
                port.name, br.name
            )))?;
        sock.bridge_vlan_add_access(port.index, vid)
            .map_err(nl(format!(
                "failed to setup vlan tag on interface {:?}",
                port.name
            )))?;
        let gateway = find(sock, &name)?
            .ok_or_else(|| Error::generic(format!("failed to lookup {name:?}")))?;
        for link in [&port, &gateway] {
            sock.link_set_up(link.index, true)
                .map_err(nl(format!("failed to up {:?}", link.name)))?;
        }
        Ok(gateway)
    })();
    if made.is_err() {
        if let Ok(Some(link)) = sock.link_by_name(&name) {
            let _ = sock.link_del(link.index);
        }
    }
    made
}

pub struct Bridge;

impl Bridge {
    fn add_inner(
        &self,
        args: &Args,
        conf: &BridgeConf,
        host: &mut Socket,
        ipam_res: Option<CniResult>,
    ) -> Result<CniResult, Error> {
        let br = ensure_bridge(host, conf)?;
        let ns = NetNs::open(&args.netns).map_err(|e| Error::generic(e.to_string()))?;
        let mut cont = ns.socket()?;
        let mtu = (conf.mtu > 0).then_some(conf.mtu);
        let mut pair = veth::setup(host, &mut cont, &ns, &args.ifname, mtu)?;
        if let Some(mac) = conf.mac {
            let set = cont
                .link_set_mac(pair.cont.index, &mac)
                .map_err(nl(format!("failed to set {:?}'s MAC", args.ifname)))
                .and_then(|()| {
                    cont.link_by_index(pair.cont.index)
                        .map_err(nl(format!("failed to look up {:?}", args.ifname)))
                });
            match set {
                Ok(Some(link)) => pair.cont = link,
                Ok(None) => {}
                Err(e) => {
                    let _ = host.link_del(pair.host.index);
                    return Err(e);
                }
            }
        }

        let mut vlan_gateway: Option<Link> = None;
        let configured = (|| {
            host.link_set_master(pair.host.index, br.index)
                .map_err(nl(format!(
                    "failed to connect {:?} to bridge {}",
                    pair.host.name, br.name
                )))?;
            if conf.hairpin_mode {
                host.link_set_hairpin(pair.host.index, true)
                    .map_err(nl(format!(
                        "failed to setup hairpin mode for {}",
                        pair.host.name
                    )))?;
            }
            if conf.macspoofchk {
                spoofcheck::setup(
                    &args.container_id,
                    &args.ifname,
                    &pair.host.name,
                    &pair.cont.mac_string(),
                )?;
            }
            if conf.vlan != 0 {
                host.bridge_vlan_add_access(pair.host.index, conf.vlan as u16)
                    .map_err(nl(format!(
                        "failed to setup vlan tag on interface {:?}",
                        pair.host.name
                    )))?;
            }
            let Some(mut res) = ipam_res else {
                return Ok(CniResult::default());
            };
            if res.ips.is_empty() {
                return Err(Error::generic("IPAM plugin returned missing IP config"));
            }
            for ip in &mut res.ips {
                ip.interface = Some(2);
            }
            if conf.is_default_gateway {
                let (gw4, gw6) = attach::default_gateways(&res.ips);
                for (gw, dflt) in [(gw4, "0.0.0.0/0"), (gw6, "::/0")] {
                    let Some(gw) = gw else { continue };
                    let dst: IpNet = dflt.parse().map_err(|e| Error::generic(format!("{e}")))?;
                    if !res.routes.iter().any(|r| r.dst == dst) {
                        res.routes.push(Route::new(dst, Some(gw)));
                    }
                }
            }
            attach::configure_iface(&mut cont, &args.ifname, pair.cont.index, &res)?;
            if conf.is_gateway {
                for ip in &res.ips {
                    if let Some(gw) = ip.gateway {
                        let net = IpNet::new(gw, ip.address.prefix)
                            .map_err(|e| Error::generic(e.to_string()))?;
                        // On a VLAN the gateway is an interface of that
                        // VLAN, `<bridge>.<vlan>`, not the bridge.
                        let target = match conf.vlan {
                            0 => br.clone(),
                            vid => match &vlan_gateway {
                                Some(link) => link.clone(),
                                None => {
                                    let link = ensure_vlan_interface(host, &br, vid as u16)?;
                                    vlan_gateway = Some(link.clone());
                                    link
                                }
                            },
                        };
                        ensure_addr(host, &target, net, conf.force_address)?;
                    }
                }
                let v4 = res.ips.iter().any(|i| i.address.is_ipv4());
                let v6 = res.ips.iter().any(|i| !i.address.is_ipv4());
                sysctl::enable_forwarding(v4, v6)
                    .map_err(|e| Error::generic(format!("failed to enable forwarding: {e}")))?;
            }
            if conf.ip_masq {
                masq_setup(args, &res.ips)?;
            }
            Ok::<CniResult, Error>(res)
        })();
        let mut res = match configured {
            Ok(r) => r,
            Err(e) => {
                let _ = host.link_del(pair.host.index);
                if conf.ip_masq {
                    let _ = masq_teardown(args, None);
                }
                if conf.macspoofchk {
                    let _ = spoofcheck::teardown(&args.container_id, &args.ifname);
                }
                return Err(e);
            }
        };
        // The bridge's MAC can change as ports join: report it as it is now.
        let br_now = host.link_by_index(br.index).ok().flatten().unwrap_or(br);
        let host_now = host
            .link_by_index(pair.host.index)
            .ok()
            .flatten()
            .unwrap_or(pair.host);
        res.interfaces = vec![
            Interface {
                name: br_now.name.clone(),
                mac: br_now.mac_string(),
                ..Default::default()
            },
            Interface {
                name: host_now.name.clone(),
                mac: host_now.mac_string(),
                ..Default::default()
            },
            Interface {
                name: pair.cont.name.clone(),
                mac: pair.cont.mac_string(),
                mtu: None,
                sandbox: args.netns.clone(),
            },
        ];
        if let Some(vlan) = vlan_gateway {
            let now = host
                .link_by_index(vlan.index)
                .ok()
                .flatten()
                .unwrap_or(vlan);
            res.interfaces.push(Interface {
                name: now.name.clone(),
                mac: now.mac_string(),
                ..Default::default()
            });
        }
        if !conf.dns.is_empty() {
            res.dns = conf.dns.clone();
        }
        Ok(res)
    }
}

/// Whether `ipam` names a plugin (otherwise the attachment is layer 2 only).
fn is_layer3(args: &Args) -> Result<Option<String>, Error> {
    let t = ipam::ipam_type(args)?;
    Ok((!t.is_empty()).then_some(t))
}

impl cni::Plugin for Bridge {
    fn add(&self, args: &Args) -> Result<Versioned, Error> {
        let conf = load(args)?;
        let mut host = Socket::new().map_err(nl("failed to open netlink socket".into()))?;
        let ipam_type = is_layer3(args)?;
        let ipam_res = match &ipam_type {
            Some(t) => Some(
                ipam::exec(t, "ADD", args)?
                    .ok_or_else(|| Error::generic("IPAM plugin returned no result"))?,
            ),
            None => None,
        };
        match self.add_inner(args, &conf, &mut host, ipam_res) {
            Ok(r) => Ok(r.versioned(&args.version)),
            Err(e) => {
                if let Some(t) = &ipam_type {
                    let _ = ipam::exec(t, "DEL", args);
                }
                Err(e)
            }
        }
    }

    fn del(&self, args: &Args) -> Result<(), Error> {
        let conf = load(args)?;
        let prev = conf.prev_result.as_ref();
        // The bridge stays: other containers may use it (as the reference).
        attach::del_veth_alongside(args, prev, || {
            if let Some(t) = is_layer3(args)? {
                ipam::exec(&t, "DEL", args)?;
            }
            if conf.ip_masq {
                masq_teardown(args, prev)?;
            }
            if conf.macspoofchk {
                spoofcheck::teardown(&args.container_id, &args.ifname)?;
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
        if let Some(t) = is_layer3(args)? {
            ipam::exec(&t, "CHECK", args)?;
        }
        let prev = conf
            .prev_result
            .as_ref()
            .ok_or_else(|| Error::generic("bridge: Required prevResult missing"))?;
        let mut host = Socket::new().map_err(nl("failed to open netlink socket".into()))?;
        host.link_by_name(&conf.bridge)
            .map_err(nl(format!("failed to look up {:?}", conf.bridge)))?
            .filter(|l| l.kind.as_deref() == Some("bridge"))
            .ok_or_else(|| Error::generic(format!("bridge {} not found", conf.bridge)))?;
        attach::check_container(args, &ns, prev, "bridge")
    }
}

#[cfg(test)]
mod tests {
    use super::parse_mac;

    #[test]
    fn macs_are_parsed_as_go_does_for_six_bytes() {
        assert_eq!(
            parse_mac("0a:58:AC:1e:00:42").unwrap(),
            [0x0a, 0x58, 0xac, 0x1e, 0x00, 0x42]
        );
        assert_eq!(parse_mac("0a-58-ac-1e-00-42").unwrap()[5], 0x42);
        for bad in [
            "0a:58:ac:1e:00",
            "+a:58:ac:1e:00:42",
            "0a:58-ac:1e:00:42",
            "0a:58:ac:1e:00:4",
            "zz:58:ac:1e:00:42",
        ] {
            assert!(parse_mac(bad).is_err(), "{bad}");
        }
    }
}
