//! One nftables table that forwards host ports to a container, shared by
//! the `portmap` plugin and the stage1's own `--port` forwarding
//! (`networking::portfwd`): DNAT for traffic from elsewhere (prerouting)
//! and from the host itself (output), masquerade of 127.0.0.0/8 sources
//! so the container can answer the host's loopback connections, and a
//! guard dropping what arrives from the container's side for 127.0.0.0/8
//! (`route_localnet`, which the loopback case needs, would let it in).

use std::net::Ipv4Addr;

/// One forwarded port, already validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRule<'a> {
    /// `tcp`, `udp` or `sctp`.
    pub protocol: &'a str,
    /// Only traffic to this host address; any local one when unset.
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
}

/// The table `ip <name>`: one `nft -f` batch. `snat` adds the loopback
/// masquerade; `guard_if` (the host side of the container's network) the
/// loopback guard.
pub fn table(
    name: &str,
    container: Ipv4Addr,
    rules: &[PortRule<'_>],
    snat: bool,
    guard_if: Option<&str>,
) -> String {
    let mut dnat = String::new();
    let mut masq = String::new();
    for r in rules {
        let proto = r.protocol;
        let dst = match r.host_ip {
            Some(ip) => format!("ip daddr {ip}"),
            None => "fib daddr type local".to_string(),
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
                host_ip: Some(Ipv4Addr::new(10, 0, 0, 1)),
                host_port: 53,
                container_port: 5353,
            },
        ];
        let c = Ipv4Addr::new(10, 88, 0, 2);
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
        assert_eq!(interface_name("veth1a2b"), Some("veth1a2b"));
        for bad in ["", "..", "a/b", "x\" drop", "waytoolonginterfacename"] {
            assert_eq!(interface_name(bad), None, "{bad:?}");
        }
    }
}
