//! An address with a prefix length ("172.30.1.5/24"), as CNI writes them.
//!
//! `std` has no CIDR type and the plugins need only a handful of operations
//! (network, broadcast, contains, +1), so a small type beats a dependency.
//! Addresses are handled as `u128` so IPv4 and IPv6 share the arithmetic.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid CIDR address: {0}")]
pub struct ParseError(pub String);

/// An IP address plus prefix length. The address may have host bits set
/// (an interface address), [`IpNet::network`] clears them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

/// Number of bits in an address of this family.
pub fn bits(addr: &IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

pub fn to_u128(addr: &IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u32::from(*a) as u128,
        IpAddr::V6(a) => u128::from(*a),
    }
}

/// Builds an address of the same family as `like` from an integer.
pub fn from_u128(like: &IpAddr, v: u128) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(v as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(v)),
    }
}

/// The next address, or None at the end of the address space.
pub fn next(addr: &IpAddr) -> Option<IpAddr> {
    let max = if bits(addr) == 32 {
        u32::MAX as u128
    } else {
        u128::MAX
    };
    let v = to_u128(addr);
    (v < max).then(|| from_u128(addr, v + 1))
}

/// Parses a plain address; also accepts "a.b.c.d/n" and keeps only the address,
/// because `args.cni.ips` and `CNI_ARGS IP=` are written both ways.
pub fn parse_ip_loose(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let a = s.split('/').next().unwrap_or(s);
    a.parse().ok()
}

impl IpNet {
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, ParseError> {
        if prefix > bits(&addr) {
            return Err(ParseError(format!("{addr}/{prefix}")));
        }
        Ok(IpNet { addr, prefix })
    }

    /// A host route/address: /32 or /128.
    pub fn host(addr: IpAddr) -> Self {
        IpNet {
            addr,
            prefix: bits(&addr),
        }
    }

    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    fn mask(&self) -> u128 {
        let b = bits(&self.addr) as u32;
        let all = if b == 32 { u32::MAX as u128 } else { u128::MAX };
        if self.prefix == 0 {
            0
        } else {
            (all >> (b - self.prefix as u32)) << (b - self.prefix as u32)
        }
    }

    /// The network address (host bits cleared).
    pub fn network_addr(&self) -> IpAddr {
        from_u128(&self.addr, to_u128(&self.addr) & self.mask())
    }

    /// This network with host bits cleared.
    pub fn network(&self) -> IpNet {
        IpNet {
            addr: self.network_addr(),
            prefix: self.prefix,
        }
    }

    /// The last address of the network (the IPv4 broadcast address).
    pub fn last_addr(&self) -> IpAddr {
        let b = bits(&self.addr);
        let all = if b == 32 { u32::MAX as u128 } else { u128::MAX };
        from_u128(
            &self.addr,
            (to_u128(&self.addr) & self.mask()) | (all & !self.mask()),
        )
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4()
            && (to_u128(ip) & self.mask()) == (to_u128(&self.addr) & self.mask())
    }

    /// Whether two networks share any address.
    pub fn overlaps(&self, other: &IpNet) -> bool {
        self.contains(&other.network_addr()) || other.contains(&self.network_addr())
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for IpNet {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseError(s.to_string());
        let (a, p) = s.split_once('/').ok_or_else(err)?;
        let addr: IpAddr = a.parse().map_err(|_| err())?;
        // Reject "+1", " 1" and the like that u8's parser would take.
        if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
            return Err(err());
        }
        let prefix: u8 = p.parse().map_err(|_| err())?;
        IpNet::new(addr, prefix).map_err(|_| err())
    }
}

impl Serialize for IpNet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> IpNet {
        s.parse().expect("test cidr")
    }

    #[test]
    fn parse_and_display() {
        assert_eq!(n("172.30.1.5/24").to_string(), "172.30.1.5/24");
        assert_eq!(n("fd00::1/64").to_string(), "fd00::1/64");
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("10.0.0.0".parse::<IpNet>().is_err());
        assert!("10.0.0.0/+1".parse::<IpNet>().is_err());
        assert!("fd00::/129".parse::<IpNet>().is_err());
    }

    #[test]
    fn network_and_last() {
        let x = n("172.30.1.5/24");
        assert_eq!(x.network().to_string(), "172.30.1.0/24");
        assert_eq!(x.last_addr().to_string(), "172.30.1.255");
        assert!(x.contains(&"172.30.1.200".parse().expect("ip")));
        assert!(!x.contains(&"172.30.2.1".parse().expect("ip")));
        assert_eq!(n("0.0.0.0/0").last_addr().to_string(), "255.255.255.255");
        assert_eq!(n("fd00::/120").last_addr().to_string(), "fd00::ff");
        assert!(n("10.0.0.0/8").overlaps(&n("10.1.0.0/16")));
        assert!(!n("10.0.0.0/16").overlaps(&n("10.1.0.0/16")));
    }

    #[test]
    fn next_addr() {
        let a: IpAddr = "10.0.0.255".parse().expect("ip");
        assert_eq!(next(&a).map(|x| x.to_string()), Some("10.0.1.0".into()));
        assert_eq!(next(&"255.255.255.255".parse().expect("ip")), None);
        assert_eq!(
            parse_ip_loose("10.1.2.3/24"),
            Some("10.1.2.3".parse().expect("ip"))
        );
    }
}
