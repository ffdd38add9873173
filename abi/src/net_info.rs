//! `$pod/net-info.json`: what stage1 networking set up, one entry per
//! network, read back by `rkt list/status` and by gc for teardown.
//! Keys as rkt's `networking/netinfo`: `netName`, `netConf`, `pluginPath`,
//! `ifName`, `ip`, `args`, `mask`.

use std::net::IpAddr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetInfo {
    #[serde(default)]
    pub net_name: String,
    /// Path of the network's conf file (copied under `$pod/net/`).
    #[serde(default)]
    pub net_conf: String,
    /// The CNI plugin that set the network up.
    #[serde(default)]
    pub plugin_path: String,
    #[serde(default)]
    pub if_name: String,
    /// The pod's address on this network (Go writes `""` when unset).
    #[serde(default, with = "go_ip")]
    pub ip: Option<IpAddr>,
    /// The `CNI_ARGS` given with `--net=name:ARGS`.
    #[serde(default)]
    pub args: String,
    /// Netmask written as an address (`255.255.255.0`), as rkt does.
    #[serde(default, with = "go_ip")]
    pub mask: Option<IpAddr>,
}

impl NetInfo {
    /// Parses the file's content (a JSON array; `null` reads as empty).
    pub fn parse_list(bytes: &[u8]) -> Result<Vec<NetInfo>, serde_json::Error> {
        Ok(serde_json::from_slice::<Option<Vec<NetInfo>>>(bytes)?.unwrap_or_default())
    }

    /// Prefix length of `mask` (`255.255.255.0` → 24), if it is contiguous.
    pub fn prefix_len(&self) -> Option<u8> {
        let bits: u128 = match self.mask? {
            IpAddr::V4(m) => u128::from(u32::from(m)) << 96,
            IpAddr::V6(m) => u128::from(m),
        };
        let len = bits.leading_ones();
        (bits.checked_shl(len).unwrap_or(0) == 0).then_some(len as u8)
    }

    /// `rkt list`'s NETWORKS entry: `name:ip4=1.2.3.4` (or `ip6=`).
    pub fn list_entry(&self) -> String {
        match self.ip {
            Some(IpAddr::V4(ip)) => format!("{}:ip4={ip}", self.net_name),
            Some(IpAddr::V6(ip)) => format!("{}:ip6={ip}", self.net_name),
            None => self.net_name.clone(),
        }
    }
}

/// Go's `net.IP` text form: an address string, `""` for none.
mod go_ip {
    use super::*;

    pub fn serialize<S: Serializer>(ip: &Option<IpAddr>, s: S) -> Result<S::Ok, S::Error> {
        match ip {
            Some(ip) => s.collect_str(ip),
            None => s.serialize_str(""),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpAddr>, D::Error> {
        match Option::<String>::deserialize(d)?.as_deref() {
            None | Some("") => Ok(None),
            Some(s) => s.parse().map(Some).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let json = br#"[{"netName":"default","netConf":"net/99-default.conf","pluginPath":"/usr/lib/rkt/plugins/net/ptp","ifName":"eth0","ip":"172.16.28.2","args":"","mask":"255.255.255.0"},{"netName":"v6","netConf":"","ifName":"eth1","ip":"","args":"IP=1","mask":null}]"#;
        let list = NetInfo::parse_list(json).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].prefix_len(), Some(24));
        assert_eq!(list[0].list_entry(), "default:ip4=172.16.28.2");
        assert_eq!(list[1].ip, None);
        assert_eq!(list[1].prefix_len(), None);
        let out = serde_json::to_string(&list).unwrap();
        assert!(out.contains("\"ip\":\"172.16.28.2\""), "{out}");
        assert!(out.contains("\"mask\":\"\""), "{out}");
        assert_eq!(NetInfo::parse_list(out.as_bytes()).unwrap(), list);
        assert!(NetInfo::parse_list(b"null").unwrap().is_empty());
        assert!(NetInfo::parse_list(br#"[{"ip":"nope"}]"#).is_err());
    }
}
