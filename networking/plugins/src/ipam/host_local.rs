//! The host-local IPAM plugin: allocates addresses from configured ranges and
//! records leases in a directory on the host ([`super::store`]).
//!
//! Allocation follows the reference: one address per range set, handed out
//! round-robin starting after the set's last reserved address, skipping the
//! gateway; a specific address can be requested through `CNI_ARGS` `IP=`,
//! `args.cni.ips` or `runtimeConfig.ips`.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

use super::store::{Store, StoreError};
use crate::cni::{self, Args, Error, ERR_DECODING, ERR_GENERIC, ERR_INVALID_CONFIG};
use crate::ipnet::{self, IpNet};
use crate::types::{CniResult, Dns, IpConfig, Route, Versioned};

pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/networks";

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::generic(e.to_string())
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RangeConf {
    #[serde(default)]
    pub subnet: String,
    pub range_start: Option<String>,
    pub range_end: Option<String>,
    pub gateway: Option<String>,
}

/// The `ipam` object of the network config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpamConf {
    #[serde(default)]
    pub ranges: Vec<Vec<RangeConf>>,
    // The legacy single-range form.
    pub subnet: Option<String>,
    pub range_start: Option<String>,
    pub range_end: Option<String>,
    pub gateway: Option<String>,
    #[serde(default)]
    pub routes: Vec<Route>,
    pub data_dir: Option<String>,
    pub resolv_conf: Option<String>,
}

/// A validated range: `start..=end` inside `subnet`, never handing out
/// `gateway`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub subnet: IpNet,
    pub start: IpAddr,
    pub end: IpAddr,
    pub gateway: IpAddr,
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

fn parse_ip(what: &str, s: &str) -> Result<IpAddr, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("invalid {what} {s:?}"))
}

impl Range {
    /// Fills in defaults and checks the range, with the reference's rules:
    /// start defaults to network+1, end to the last address (IPv4: before the
    /// broadcast), gateway to network+1.
    pub fn from_conf(c: &RangeConf) -> Result<Range, String> {
        if c.subnet.is_empty() {
            return Err("missing subnet".into());
        }
        let subnet: IpNet = c
            .subnet
            .parse()
            .map_err(|e: ipnet::ParseError| e.to_string())?;
        let bits = ipnet::bits(&subnet.addr);
        if subnet.prefix > bits - 2 {
            return Err(format!("Network {subnet} too small to allocate from"));
        }
        if subnet.addr != subnet.network_addr() {
            return Err(format!(
                "Network has host bits set. For a subnet mask of length {} the network address is {}",
                subnet.prefix,
                subnet.network_addr()
            ));
        }
        let first = ipnet::next(&subnet.addr).ok_or("subnet has no addresses")?;
        let mut last = subnet.last_addr();
        if subnet.is_ipv4() {
            last = ipnet::from_u128(&last, ipnet::to_u128(&last) - 1);
        }
        let in_net = |what: &str, ip: IpAddr| -> Result<IpAddr, String> {
            if subnet.contains(&ip) {
                Ok(ip)
            } else {
                Err(format!("{what} {ip} not in network {subnet}"))
            }
        };
        let start = match &c.range_start {
            Some(s) => in_net("RangeStart", parse_ip("rangeStart", s)?)?,
            None => first,
        };
        let end = match &c.range_end {
            Some(s) => in_net("RangeEnd", parse_ip("rangeEnd", s)?)?,
            None => last,
        };
        if ipnet::to_u128(&start) > ipnet::to_u128(&end) {
            return Err(format!("RangeStart {start} is after RangeEnd {end}"));
        }
        let gateway = match &c.gateway {
            Some(s) => parse_ip("gateway", s)?,
            None => first,
        };
        if gateway.is_ipv4() != subnet.is_ipv4() {
            return Err(format!(
                "gateway {gateway} is not of the subnet's address family"
            ));
        }
        Ok(Range {
            subnet,
            start,
            end,
            gateway,
        })
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        let v = ipnet::to_u128(ip);
        self.subnet.contains(ip)
            && v >= ipnet::to_u128(&self.start)
            && v <= ipnet::to_u128(&self.end)
    }

    fn size(&self) -> u128 {
        ipnet::to_u128(&self.end) - ipnet::to_u128(&self.start) + 1
    }

    fn nth(&self, i: u128) -> IpAddr {
        ipnet::from_u128(&self.start, ipnet::to_u128(&self.start) + i)
    }
}

/// One set of ranges; one address is allocated per set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeSet(pub Vec<Range>);

impl std::fmt::Display for RangeSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|r| r.to_string()).collect();
        f.write_str(&parts.join(","))
    }
}

impl RangeSet {
    pub fn from_conf(c: &[RangeConf]) -> Result<RangeSet, String> {
        if c.is_empty() {
            return Err("empty range set".into());
        }
        let ranges = c
            .iter()
            .map(Range::from_conf)
            .collect::<Result<Vec<_>, _>>()?;
        for (i, a) in ranges.iter().enumerate() {
            if a.subnet.is_ipv4() != ranges[0].subnet.is_ipv4() {
                return Err("mixed address families".into());
            }
            for b in &ranges[i + 1..] {
                let (a0, a1) = (ipnet::to_u128(&a.start), ipnet::to_u128(&a.end));
                let (b0, b1) = (ipnet::to_u128(&b.start), ipnet::to_u128(&b.end));
                if a.subnet.is_ipv4() == b.subnet.is_ipv4() && a0 <= b1 && b0 <= a1 {
                    return Err(format!("subnets {a} and {b} overlap"));
                }
            }
        }
        Ok(RangeSet(ranges))
    }

    pub fn range_for(&self, ip: &IpAddr) -> Option<&Range> {
        self.0.iter().find(|r| r.contains(ip))
    }

    fn overlaps(&self, other: &RangeSet) -> bool {
        self.0
            .iter()
            .any(|a| other.0.iter().any(|b| a.subnet.overlaps(&b.subnet)))
    }
}

/// The whole host-local configuration after validation.
#[derive(Debug, Clone)]
pub struct Config {
    pub network: String,
    pub range_sets: Vec<RangeSet>,
    pub routes: Vec<Route>,
    pub data_dir: PathBuf,
    pub resolv_conf: Option<PathBuf>,
    pub requested: Vec<IpAddr>,
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, v: &Value) -> Result<T, Error> {
    serde_json::from_value(v.clone())
        .map_err(|e| Error::new(ERR_DECODING, format!("failed to parse {what}: {e}")))
}

/// Reads the config from the invocation (stdin conf plus CNI_ARGS).
pub fn load_config(args: &Args) -> Result<Config, Error> {
    let ipam_v = args
        .conf
        .get("ipam")
        .ok_or_else(|| Error::generic("IPAM config missing 'ipam' key"))?;
    let ipam: IpamConf = decode("ipam config", ipam_v)?;

    // The network name becomes a directory name: keep it inside dataDir.
    if args.name.contains('/') || args.name == "." || args.name == ".." {
        return Err(Error::new(
            ERR_INVALID_CONFIG,
            format!("invalid network name {:?}", args.name),
        ));
    }

    let mut raw_sets: Vec<Vec<RangeConf>> = Vec::new();
    if let Some(subnet) = &ipam.subnet {
        raw_sets.push(vec![RangeConf {
            subnet: subnet.clone(),
            range_start: ipam.range_start.clone(),
            range_end: ipam.range_end.clone(),
            gateway: ipam.gateway.clone(),
        }]);
    }
    raw_sets.extend(ipam.ranges.iter().cloned());
    // The `ipRanges` capability replaces the configured ranges.
    if let Some(rc) = args.conf.pointer("/runtimeConfig/ipRanges") {
        let rt: Vec<Vec<RangeConf>> = decode("runtimeConfig.ipRanges", rc)?;
        if !rt.is_empty() {
            raw_sets = rt;
        }
    }
    if raw_sets.is_empty() {
        return Err(Error::generic("no IP ranges specified"));
    }
    let mut range_sets: Vec<RangeSet> = Vec::new();
    for (i, rs) in raw_sets.iter().enumerate() {
        let set = RangeSet::from_conf(rs)
            .map_err(|e| Error::generic(format!("invalid range set {i}: {e}")))?;
        if let Some(j) = range_sets.iter().position(|o| o.overlaps(&set)) {
            return Err(Error::generic(format!("range set {i} overlaps with {j}")));
        }
        range_sets.push(set);
    }

    Ok(Config {
        network: args.name.clone(),
        range_sets,
        routes: ipam.routes,
        data_dir: PathBuf::from(ipam.data_dir.as_deref().unwrap_or(DEFAULT_DATA_DIR)),
        resolv_conf: ipam.resolv_conf.map(PathBuf::from),
        requested: requested_ips(args)?,
    })
}

/// Addresses asked for by `CNI_ARGS` `IP=` (comma separated), then
/// `args.cni.ips`, then `runtimeConfig.ips`.
fn requested_ips(args: &Args) -> Result<Vec<IpAddr>, Error> {
    let mut out = Vec::new();
    let mut add = |s: &str, from: &str| -> Result<(), Error> {
        let ip = ipnet::parse_ip_loose(s)
            .ok_or_else(|| Error::generic(format!("invalid IP {s:?} in {from}")))?;
        if !out.contains(&ip) {
            out.push(ip);
        }
        Ok(())
    };
    for (k, v) in cni::parse_cni_args(&args.args, &["IP"])? {
        if k == "IP" {
            for s in v.split(',').filter(|s| !s.is_empty()) {
                add(s, "CNI_ARGS")?;
            }
        }
    }
    for ptr in ["/args/cni/ips", "/runtimeConfig/ips"] {
        if let Some(v) = args.conf.pointer(ptr) {
            let ips: Vec<String> = decode(ptr, v)?;
            for s in &ips {
                add(s, ptr)?;
            }
        }
    }
    Ok(out)
}

/// Picks and reserves one address from `set`.
fn allocate_one(
    store: &Store,
    idx: usize,
    set: &RangeSet,
    id: &str,
    ifname: &str,
    requested: Option<IpAddr>,
) -> Result<IpConfig, String> {
    let conf_for = |r: &Range, ip: IpAddr| IpConfig {
        interface: None,
        address: IpNet {
            addr: ip,
            prefix: r.subnet.prefix,
        },
        gateway: Some(r.gateway),
    };
    if let Some(ip) = requested {
        let r = set
            .range_for(&ip)
            .ok_or_else(|| format!("{ip} not in range set {set}"))?;
        if ip == r.gateway {
            return Err(format!("requested ip {ip} is subnet's gateway"));
        }
        if !store
            .reserve(id, ifname, ip, idx)
            .map_err(|e| e.to_string())?
        {
            return Err(format!(
                "requested IP address {ip} is not available in range set {set}"
            ));
        }
        return Ok(conf_for(r, ip));
    }

    // The spec forbids a second address for the same attachment.
    for ip in store.get_by_id(id, ifname).map_err(|e| e.to_string())? {
        if set.range_for(&ip).is_some() {
            return Err(format!(
                "{ip} has been allocated to {id}, duplicate allocation is not allowed"
            ));
        }
    }

    // Flatten the set into positions 0..total; resume after the last reserved
    // address when it is still inside the set, else start at position 0.
    let sizes: Vec<u128> = set.0.iter().map(Range::size).collect();
    let total: u128 = sizes.iter().fold(0u128, |a, s| a.saturating_add(*s));
    let position_of = |ip: &IpAddr| -> Option<u128> {
        let mut base = 0u128;
        for (r, s) in set.0.iter().zip(&sizes) {
            if r.contains(ip) {
                return Some(base + ipnet::to_u128(ip) - ipnet::to_u128(&r.start));
            }
            base = base.saturating_add(*s);
        }
        None
    };
    let at = |mut pos: u128| -> (&Range, IpAddr) {
        for (r, s) in set.0.iter().zip(&sizes) {
            if pos < *s {
                return (r, r.nth(pos));
            }
            pos -= s;
        }
        // pos < total always; the first range is a safe answer otherwise.
        (&set.0[0], set.0[0].start)
    };
    let first = match store.last_reserved(idx).and_then(|ip| position_of(&ip)) {
        Some(p) => (p + 1) % total,
        None => 0,
    };
    let mut i = 0u128;
    while i < total {
        let (r, ip) = at((first + i) % total);
        i += 1;
        if ip == r.gateway {
            continue;
        }
        if store
            .reserve(id, ifname, ip, idx)
            .map_err(|e| e.to_string())?
        {
            return Ok(conf_for(r, ip));
        }
    }
    Err(format!("no IP addresses available in range set: {set}"))
}

/// Parses a resolv.conf into the result's DNS section.
pub fn parse_resolv_conf(text: &str) -> Dns {
    let mut dns = Dns::default();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let mut f = line.split_whitespace();
        match f.next() {
            Some("nameserver") => dns.nameservers.extend(f.next().map(str::to_string)),
            Some("domain") => dns.domain = f.next().unwrap_or_default().to_string(),
            Some("search") => dns.search = f.map(str::to_string).collect(),
            Some("options") => dns.options.extend(f.map(str::to_string)),
            _ => {}
        }
    }
    dns
}

pub struct HostLocal;

impl HostLocal {
    /// ADD as a library call; returns the result before version formatting.
    pub fn allocate(&self, args: &Args) -> Result<CniResult, Error> {
        let cfg = load_config(args)?;
        let dns = match &cfg.resolv_conf {
            Some(p) => parse_resolv_conf(&std::fs::read_to_string(p).map_err(|e| {
                Error::generic(format!("error reading resolvConf {}: {e}", p.display()))
            })?),
            None => Dns::default(),
        };
        let store = Store::open(&cfg.data_dir, &cfg.network)?;
        let mut requested = cfg.requested.clone();
        let mut ips: Vec<IpConfig> = Vec::new();
        let mut failure: Option<Error> = None;
        for (idx, set) in cfg.range_sets.iter().enumerate() {
            let want = requested
                .iter()
                .position(|ip| set.range_for(ip).is_some())
                .map(|p| requested.remove(p));
            match allocate_one(&store, idx, set, &args.container_id, &args.ifname, want) {
                Ok(c) => ips.push(c),
                Err(e) => {
                    failure = Some(Error::generic(format!(
                        "failed to allocate for range {idx}: {e}"
                    )));
                    break;
                }
            }
        }
        if failure.is_none() && !requested.is_empty() {
            let list: Vec<String> = requested.iter().map(|i| i.to_string()).collect();
            failure = Some(Error::generic(format!(
                "failed to allocate all requested IPs: {}",
                list.join(",")
            )));
        }
        if let Some(e) = failure {
            // Leave nothing behind: undo this call's reservations.
            for c in &ips {
                let _ = store.release(c.address.addr);
            }
            return Err(e);
        }
        Ok(CniResult {
            interfaces: Vec::new(),
            ips,
            routes: cfg.routes,
            dns,
        })
    }
}

impl cni::Plugin for HostLocal {
    fn add(&self, args: &Args) -> Result<Versioned, Error> {
        Ok(self.allocate(args)?.versioned(&args.version))
    }

    fn del(&self, args: &Args) -> Result<(), Error> {
        let cfg = load_config(args)?;
        let store = Store::open(&cfg.data_dir, &cfg.network)?;
        store.release_by_id(&args.container_id, &args.ifname)?;
        Ok(())
    }

    fn check(&self, args: &Args) -> Result<(), Error> {
        let cfg = load_config(args)?;
        let store = Store::open(&cfg.data_dir, &cfg.network)?;
        let ips = store.get_by_id(&args.container_id, &args.ifname)?;
        if ips.is_empty() {
            return Err(Error::new(
                ERR_GENERIC,
                format!(
                    "host-local: Failed to find address added by container {}",
                    args.container_id
                ),
            ));
        }
        Ok(())
    }

    /// Removes leases whose attachment is not in `cni.dev/valid-attachments`.
    fn gc(&self, args: &Args) -> Result<(), Error> {
        let valid = cni::valid_attachments(args)?;
        let cfg = load_config(args)?;
        let store = Store::open(&cfg.data_dir, &cfg.network)?;
        for lease in store.leases()? {
            let keep = valid.iter().any(|a| {
                a.container_id == lease.container_id
                    && (a.ifname == lease.ifname || lease.ifname.is_empty())
            });
            if !keep {
                store.release(lease.ip)?;
            }
        }
        Ok(())
    }

    /// Ready when the lease directory can be opened and locked.
    fn status(&self, args: &Args) -> Result<(), Error> {
        let cfg = load_config(args)?;
        Store::open(&cfg.data_dir, &cfg.network)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rc(subnet: &str, s: Option<&str>, e: Option<&str>) -> RangeConf {
        RangeConf {
            subnet: subnet.into(),
            range_start: s.map(Into::into),
            range_end: e.map(Into::into),
            gateway: None,
        }
    }

    #[test]
    fn range_defaults() {
        let r = Range::from_conf(&rc("10.9.0.0/24", None, None)).expect("range");
        assert_eq!(r.to_string(), "10.9.0.1-10.9.0.254");
        assert_eq!(r.gateway.to_string(), "10.9.0.1");
        let r6 = Range::from_conf(&rc("fd00::/120", None, None)).expect("range6");
        assert_eq!(r6.to_string(), "fd00::1-fd00::ff");
    }

    #[test]
    fn range_errors() {
        assert!(Range::from_conf(&rc("10.9.0.1/24", None, None))
            .expect_err("host bits")
            .contains("host bits"));
        assert!(Range::from_conf(&rc("10.9.0.0/31", None, None))
            .expect_err("small")
            .contains("too small"));
        assert!(Range::from_conf(&rc("10.9.0.0/24", Some("10.8.0.1"), None))
            .expect_err("out")
            .contains("not in network"));
        assert!(Range::from_conf(&rc("10.9.0.0/33", None, None))
            .expect_err("cidr")
            .contains("invalid CIDR"));
        assert!(RangeSet::from_conf(&[
            rc("10.9.0.0/24", None, None),
            rc("10.9.0.0/25", None, None)
        ])
        .is_err());
        assert!(
            RangeSet::from_conf(&[rc("10.9.0.0/24", None, None), rc("fd00::/64", None, None)])
                .is_err()
        );
    }

    #[test]
    fn round_robin_and_exhaustion() {
        let d = std::env::temp_dir().join(format!("cni-hl-rr-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let store = Store::open(&d, "n").expect("store");
        let set = RangeSet::from_conf(&[rc("10.9.0.0/24", Some("10.9.0.1"), Some("10.9.0.3"))])
            .expect("set");
        let a = allocate_one(&store, 0, &set, "c1", "eth0", None).expect("a");
        // .1 is the gateway and is skipped.
        assert_eq!(a.address.to_string(), "10.9.0.2/24");
        assert!(allocate_one(&store, 0, &set, "c1", "eth0", None)
            .expect_err("dup")
            .contains("duplicate"));
        let b = allocate_one(&store, 0, &set, "c2", "eth0", None).expect("b");
        assert_eq!(b.address.to_string(), "10.9.0.3/24");
        let e = allocate_one(&store, 0, &set, "c3", "eth0", None).expect_err("full");
        assert_eq!(
            e,
            "no IP addresses available in range set: 10.9.0.1-10.9.0.3"
        );
        store.release_by_id("c1", "eth0").expect("rel");
        // Round robin wraps around to the freed address.
        let c = allocate_one(&store, 0, &set, "c3", "eth0", None).expect("c");
        assert_eq!(c.address.to_string(), "10.9.0.2/24");
        let e = allocate_one(
            &store,
            0,
            &set,
            "c4",
            "eth0",
            Some("10.9.0.3".parse().expect("ip")),
        )
        .expect_err("taken");
        assert!(e.contains("not available"));
        drop(store);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn resolv_conf() {
        let d = parse_resolv_conf(
            "# c\nnameserver 1.1.1.1\nnameserver 8.8.8.8\nsearch a b\noptions ndots:5\ndomain x\n",
        );
        assert_eq!(d.nameservers, vec!["1.1.1.1", "8.8.8.8"]);
        assert_eq!(d.search, vec!["a", "b"]);
        assert_eq!(d.options, vec!["ndots:5"]);
        assert_eq!(d.domain, "x");
    }
}
