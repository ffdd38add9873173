//! One nftables table that forwards host ports to a container, shared by
//! the `portmap` plugin and the stage1's own `--port` forwarding
//! (`networking::portfwd`): DNAT for traffic from elsewhere (prerouting)
//! and from the host itself (output), masquerade of 127.0.0.0/8 sources
//! so the container can answer the host's loopback connections, and a
//! guard dropping what arrives from the container's side for 127.0.0.0/8
//! (`route_localnet`, which the loopback case needs, would let it in).
//!
//! An IPv6 container gets an `ip6` table with the DNAT rules only: ::1
//! cannot be forwarded (IPv6 has no `route_localnet`), as in the
//! reference portmap.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One forwarded port, already validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRule<'a> {
    /// `tcp`, `udp` or `sctp`.
    pub protocol: &'a str,
    /// Only traffic to this host address; any local one when unset.
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_port: u16,
}

/// The table `ip <name>` (`ip6 <name>` for an IPv6 container): one `nft
/// -f` batch with the rules of the container's address family. `snat`
/// adds the loopback masquerade; `guard_if` (the host side of the
/// container's network) the loopback guard (IPv4 only).
pub fn table(
    name: &str,
    container: IpAddr,
    rules: &[PortRule<'_>],
    snat: bool,
    guard_if: Option<&str>,
) -> String {
    let same_family = |r: &&PortRule<'_>| {
        r.host_ip
            .is_none_or(|ip| ip.is_ipv4() == container.is_ipv4())
    };
    let rules: Vec<&PortRule<'_>> = rules.iter().filter(same_family).collect();
    match container {
        IpAddr::V4(v4) => table_v4(name, v4, &rules, snat, guard_if),
        IpAddr::V6(v6) => table_v6(name, v6, &rules),
    }
}

fn table_v6(name: &str, container: Ipv6Addr, rules: &[&PortRule<'_>]) -> String {
    let mut prerouting = String::new();
    let mut output = String::new();
    for r in rules {
        let proto = r.protocol;
        let dst = match r.host_ip {
            Some(ip) if !ip.is_unspecified() => format!("ip6 daddr {ip}"),
            _ => "fib daddr type local".to_string(),
        };
        let rule = format!(
            "{dst} {proto} dport {} dnat to [{container}]:{}\n",
            r.host_port, r.container_port
        );
        prerouting.push_str(&format!("    {rule}"));
        output.push_str(&format!("    ip6 daddr != ::1 {rule}"));
    }
    format!(
        "table ip6 {name} {{\n\
         \x20 chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n{prerouting}  }}\n\
         \x20 chain output {{\n    type nat hook output priority -100; policy accept;\n{output}  }}\n\
         }}\n"
    )
}

fn table_v4(
    name: &str,
    container: Ipv4Addr,
    rules: &[&PortRule<'_>],
    snat: bool,
    guard_if: Option<&str>,
) -> String {
    let mut dnat = String::new();
    let mut masq = String::new();
    for r in rules {
        let proto = r.protocol;
        let dst = match r.host_ip {
            Some(ip) if !ip.is_unspecified() => format!("ip daddr {ip}"),
            _ => "fib daddr type local".to_string(),
        };
        dnat.push_str(&format!(
            "    {dst} {proto} dport {} dnat to {container}:{}\n",
            r.host_port, r.container_port
        ));
        if snat {
            masq.push_str(&format!(
                "    ip saddr 127.0.0.0/8 ip daddr {container} {proto} dport {} masquerade\n",
                r.container_port
            ));
        }
    }
    let guard = guard_if.map_or(String::new(), |iface| {
        format!(
            "  chain guard {{\n    type filter hook prerouting priority -150; policy accept;\n\
             \x20   iifname \"{iface}\" ip daddr 127.0.0.0/8 drop\n  }}\n"
        )
    });
    format!(
        "table ip {name} {{\n\
         \x20 chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n{dnat}  }}\n\
         \x20 chain output {{\n    type nat hook output priority -100; policy accept;\n{dnat}  }}\n\
         \x20 chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n{masq}  }}\n\
         {guard}}}\n"
    )
}

/// An interface name as the kernel allows it (it goes into rule text and
/// a /proc path), or nothing.
pub fn interface_name(name: &str) -> Option<&str> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    ok.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dnat_masquerade_and_guard() {
        let rules = [
            PortRule {
                protocol: "tcp",
                host_ip: None,
                host_port: 8080,
                container_port: 80,
            },
            PortRule {
                protocol: "udp",
                host_ip: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
                host_port: 53,
                container_port: 5353,
            },
        ];
        let c = IpAddr::V4(Ipv4Addr::new(10, 88, 0, 2));
        let t = table("x", c, &rules, true, Some("veth1"));
        assert!(t.starts_with("table ip x {"), "{t}");
        assert!(
            t.contains("fib daddr type local tcp dport 8080 dnat to 10.88.0.2:80"),
            "{t}"
        );
        assert!(
            t.contains("ip daddr 10.0.0.1 udp dport 53 dnat to 10.88.0.2:5353"),
            "{t}"
        );
        assert!(t.contains("ip saddr 127.0.0.0/8 ip daddr 10.88.0.2 tcp dport 80 masquerade"));
        assert!(
            t.contains("iifname \"veth1\" ip daddr 127.0.0.0/8 drop"),
            "{t}"
        );
        let plain = table("x", c, &rules, false, None);
        assert!(
            !plain.contains("masquerade") && !plain.contains("guard"),
            "{plain}"
        );
        // IPv6: DNAT only, never for ::1, and only the rules of its family.
        let v6 = table("x", "fd00::2".parse().unwrap(), &rules, true, Some("veth1"));
        assert!(v6.starts_with("table ip6 x {"), "{v6}");
        assert!(
            v6.contains("    fib daddr type local tcp dport 8080 dnat to [fd00::2]:80"),
            "{v6}"
        );
        assert!(
            v6.contains("ip6 daddr != ::1 fib daddr type local tcp dport 8080"),
            "{v6}"
        );
        assert!(!v6.contains("10.0.0.1") && !v6.contains("masquerade") && !v6.contains("guard"));
        assert_eq!(interface_name("veth1a2b"), Some("veth1a2b"));
        for bad in ["", "..", "a/b", "x\" drop", "waytoolonginterfacename"] {
            assert_eq!(interface_name(bad), None, "{bad:?}");
        }
    }
}
