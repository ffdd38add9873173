//! Port forwarding (`--port=NAME:[HOSTIP:]HOSTPORT`): host ports DNATed to
//! the app's named port on the pod's "forwardable" network (rkt's rule:
//! the first network with IP masquerade, else the last), reachable from
//! other hosts and from the host itself, 127.0.0.1 included (rkt #2283).
//!
//! All of a pod's rules go in one batch into a table of its own,
//! `ip rkt-<uuid>` (nftables), so teardown is deleting that table; where
//! `nft` is missing, chains `RKT-<uuid8>-DNAT` / `-SNAT` in iptables' nat
//! table, applied with one `iptables-restore --noflush`. The host ports
//! are bound (not listened on) by `run` for the pod's life, so neither a
//! host service nor another pod can hold them at the same time.

use std::net::{IpAddr, Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};

use abi::schema::{ExposedPort, Port};
use cni_plugins::nft_forward::{self, interface_name, PortRule};
use cni_plugins::{sysctl, tool};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum PortError {
    #[error("port {0:?} given to --port is not declared by any app of the pod")]
    Unknown(String),
    #[error("port {0:?} is declared by more than one app; rename one of them")]
    Ambiguous(String),
    #[error("port {name:?} has protocol {protocol:?}; only tcp and udp can be forwarded")]
    Protocol { name: String, protocol: String },
    #[error("host port {port}/{protocol} is forwarded twice; give each --port its own host port")]
    Twice { port: u16, protocol: &'static str },
    #[error("invalid host IP {0:?} in --port; give an IPv4 address of this host")]
    HostIp(String),
    #[error("host port {addr}/{protocol} is already in use ({error}); pick another host port or stop what holds it")]
    InUse {
        addr: SocketAddrV4,
        protocol: &'static str,
        error: std::io::Error,
    },
    #[error("port forwarding needs an IPv4 address on the pod's network, it has {0}")]
    NotIpv4(IpAddr),
    #[error("cannot apply the port forwarding rules with {tool}: {detail}")]
    Apply { tool: &'static str, detail: String },
    #[error("the pod's --port forwarding rules ({rules}) are gone: {detail}")]
    Missing { rules: String, detail: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// One forwarded port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub protocol: Protocol,
    /// Only traffic to this host address is forwarded; any local one
    /// when unset.
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub pod_port: u16,
}

/// The forwards of the pod manifest's `ports`, each resolved against the
/// apps' declared ports (`apps`: every app's `ports`).
pub fn resolve(exposed: &[ExposedPort], apps: &[&[Port]]) -> Result<Vec<Forward>, PortError> {
    let mut out: Vec<Forward> = Vec::new();
    for e in exposed {
        let name = e.name.as_str();
        // A sandbox's port names its protocol and pod port itself (rkt's
        // `app sandbox --port`): its apps come later.
        let port = match &e.pod_port {
            Some(port) => port,
            None => {
                let mut declared = apps
                    .iter()
                    .flat_map(|ports| ports.iter())
                    .filter(|p| p.name.as_str() == name);
                let port = declared
                    .next()
                    .ok_or_else(|| PortError::Unknown(name.to_string()))?;
                if declared.next().is_some() {
                    return Err(PortError::Ambiguous(name.to_string()));
                }
                port
            }
        };
        let protocol = match port.protocol.to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            other => {
                return Err(PortError::Protocol {
                    name: name.to_string(),
                    protocol: other.to_string(),
                })
            }
        };
        let host_ip = match e.host_ip.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(
                s.parse::<Ipv4Addr>()
                    .map_err(|_| PortError::HostIp(s.to_string()))?,
            ),
        };
        if out
            .iter()
            .any(|f| f.host_port == e.host_port && f.protocol == protocol)
        {
            return Err(PortError::Twice {
                port: e.host_port,
                protocol: protocol.as_str(),
            });
        }
        out.push(Forward {
            protocol,
            host_ip,
            host_port: e.host_port,
            pod_port: port.port,
        });
    }
    Ok(out)
}

/// Host sockets holding the forwarded ports for the pod's life.
#[derive(Debug)]
pub enum Reservation {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

/// Binds every forwarded host port; the first one in use is an error.
pub fn reserve(forwards: &[Forward]) -> Result<Vec<Reservation>, PortError> {
    forwards
        .iter()
        .map(|f| {
            let addr = SocketAddrV4::new(f.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED), f.host_port);
            let in_use = |error| PortError::InUse {
                addr,
                protocol: f.protocol.as_str(),
                error,
            };
            match f.protocol {
                // std's TcpListener listens; a bound socket that does not
                // accept would queue connections the DNAT never sends it,
                // so the backlog is harmless.
                Protocol::Tcp => TcpListener::bind(addr)
                    .map(Reservation::Tcp)
                    .map_err(in_use),
                Protocol::Udp => UdpSocket::bind(addr).map(Reservation::Udp).map_err(in_use),
            }
        })
        .collect()
}

fn table_name(uuid: &str) -> String {
    format!("rkt-{uuid}")
}

/// The pod's nftables table: DNAT in prerouting (traffic from elsewhere)
/// and output (the host's own, 127.0.0.1 included), and masquerade of
/// loopback-sourced connections so the pod can answer them.
pub fn nft_ruleset(
    uuid: &str,
    pod_ip: Ipv4Addr,
    forwards: &[Forward],
    guard_if: Option<&str>,
) -> String {
    let rules: Vec<PortRule<'_>> = forwards
        .iter()
        .map(|f| PortRule {
            protocol: f.protocol.as_str(),
            host_ip: f.host_ip.map(IpAddr::V4),
            host_port: f.host_port,
            container_port: f.pod_port,
        })
        .collect();
    nft_forward::table(
        &table_name(uuid),
        IpAddr::V4(pod_ip),
        &rules,
        true,
        guard_if,
    )
}

/// The iptables-restore input for hosts without `nft`: the pod's chains,
/// filled, and jumps to them from the built-in chains.
pub fn iptables_rules(
    uuid: &str,
    pod_ip: Ipv4Addr,
    forwards: &[Forward],
    guard_if: Option<&str>,
) -> String {
    let (dnat, snat) = (iptables_chain(uuid, "DNAT"), iptables_chain(uuid, "SNAT"));
    let mut out = format!("*nat\n:{dnat} - [0:0]\n:{snat} - [0:0]\n");
    for f in forwards {
        let proto = f.protocol.as_str();
        let dst = match f.host_ip {
            Some(ip) => format!("-d {ip}/32"),
            None => "-m addrtype --dst-type LOCAL".to_string(),
        };
        out.push_str(&format!(
            "-A {dnat} {dst} -p {proto} -m {proto} --dport {} -j DNAT --to-destination {pod_ip}:{}\n",
            f.host_port, f.pod_port
        ));
        out.push_str(&format!(
            "-A {snat} -s 127.0.0.0/8 -d {pod_ip}/32 -p {proto} -m {proto} --dport {} -j MASQUERADE\n",
            f.pod_port
        ));
    }
    out.push_str(&format!(
        "-A PREROUTING -j {dnat}\n-A OUTPUT -j {dnat}\n-A POSTROUTING -j {snat}\nCOMMIT\n"
    ));
    if let Some(iface) = guard_if {
        // See nft_ruleset: nothing from the pod's side to loopback.
        let guard = iptables_chain(uuid, "GUARD");
        out.push_str(&format!(
            "*raw\n:{guard} - [0:0]\n-A {guard} -i {iface} -d 127.0.0.0/8 -j DROP\n\
             -A PREROUTING -j {guard}\nCOMMIT\n"
        ));
    }
    out
}

/// The pod's iptables chain for `role` (`DNAT`, `SNAT`, `GUARD`).
fn iptables_chain(uuid: &str, role: &str) -> String {
    let short: String = uuid.chars().filter(|c| *c != '-').take(8).collect();
    format!("RKT-{short}-{role}")
}

/// Which tool holds a pod's rules (recorded, so teardown uses the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Nft,
    Iptables,
}

impl Backend {
    /// nftables where `nft` is installed, iptables otherwise.
    pub fn detect() -> Backend {
        match tool::find_bin("nft").is_ok() {
            true => Backend::Nft,
            false => Backend::Iptables,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Nft => "nft",
            Backend::Iptables => "iptables",
        }
    }

    pub fn parse(s: &str) -> Option<Backend> {
        match s.trim() {
            "nft" => Some(Backend::Nft),
            "iptables" => Some(Backend::Iptables),
            _ => None,
        }
    }
}

/// Installs the pod's rules in one batch; `host_if` (the host side of the
/// forwardable network) gets `route_localnet`, which forwarding
/// 127.0.0.1 needs.
pub fn apply(
    backend: Backend,
    uuid: &str,
    pod_ip: IpAddr,
    host_if: Option<&str>,
    forwards: &[Forward],
) -> Result<(), PortError> {
    let IpAddr::V4(pod_ip) = pod_ip else {
        return Err(PortError::NotIpv4(pod_ip));
    };
    let guard_if = host_if.and_then(interface_name);
    if let Some(iface) = guard_if {
        let knob = format!("net/ipv4/conf/{iface}/route_localnet");
        sysctl::set(&knob, "1").map_err(|e| PortError::Apply {
            tool: "sysctl",
            detail: format!("{knob}: {e}"),
        })?;
    }
    match backend {
        Backend::Nft => run_with_input(
            "nft",
            &["-f", "-"],
            &nft_ruleset(uuid, pod_ip, forwards, guard_if),
        ),
        Backend::Iptables => run_with_input(
            "iptables-restore",
            &["--noflush", "--wait"],
            &iptables_rules(uuid, pod_ip, forwards, guard_if),
        ),
    }
}

/// Removes the pod's rules; rules already gone are fine.
pub fn remove(backend: Backend, uuid: &str) -> Result<(), PortError> {
    match backend {
        Backend::Nft => {
            let table = table_name(uuid);
            match run_with_input("nft", &["delete", "table", "ip", &table], "") {
                // Already gone (gc after `run` removed it, or twice).
                Err(PortError::Apply { detail, .. })
                    if detail.contains("No such file or directory") =>
                {
                    Ok(())
                }
                other => other,
            }
        }
        Backend::Iptables => {
            let (dnat, snat) = (iptables_chain(uuid, "DNAT"), iptables_chain(uuid, "SNAT"));
            let guard = iptables_chain(uuid, "GUARD");
            let mut errors = Vec::new();
            let jumps = [
                ("nat", "PREROUTING", &dnat),
                ("nat", "OUTPUT", &dnat),
                ("nat", "POSTROUTING", &snat),
                ("raw", "PREROUTING", &guard),
            ];
            for (table, from, to) in jumps {
                // Every copy of the jump, then the chain.
                while iptables(&["-t", table, "-D", from, "-j", to]).is_ok() {}
            }
            for (table, chain) in [("nat", &dnat), ("nat", &snat), ("raw", &guard)] {
                let present = iptables(&["-t", table, "-L", chain, "-n"]).is_ok();
                if present {
                    for args in [["-t", table, "-F", chain], ["-t", table, "-X", chain]] {
                        if let Err(e) = iptables(&args) {
                            errors.push(e);
                        }
                    }
                }
            }
            match errors.is_empty() {
                true => Ok(()),
                false => Err(PortError::Apply {
                    tool: "iptables",
                    detail: errors.join("; "),
                }),
            }
        }
    }
}

/// Whether the pod's rules are still in place (its table, or its DNAT
/// chain and the jumps to it): CHECK's counterpart for `--port`.
pub fn check(backend: Backend, uuid: &str) -> Result<(), PortError> {
    let missing = |rules: String, detail: String| PortError::Missing { rules, detail };
    match backend {
        Backend::Nft => {
            let table = table_name(uuid);
            tool::run("nft", &["list", "table", "ip", &table], None)
                .map(drop)
                .map_err(|e| missing(format!("nft table ip {table}"), e.detail()))
        }
        Backend::Iptables => {
            let dnat = iptables_chain(uuid, "DNAT");
            let rules = format!("iptables nat chain {dnat}");
            iptables(&["-t", "nat", "-L", &dnat, "-n"])
                .map_err(|detail| missing(rules.clone(), detail))?;
            for from in ["PREROUTING", "OUTPUT"] {
                iptables(&["-t", "nat", "-C", from, "-j", &dnat])
                    .map_err(|detail| missing(format!("{rules}, jumped to from {from}"), detail))?;
            }
            Ok(())
        }
    }
}

fn iptables(args: &[&str]) -> Result<(), String> {
    let mut all = vec!["--wait"];
    all.extend_from_slice(args);
    tool::run("iptables", &all, None)
        .map(drop)
        .map_err(|e| e.detail())
}

fn run_with_input(tool: &'static str, args: &[&str], input: &str) -> Result<(), PortError> {
    tool::run(tool, args, Some(input))
        .map(drop)
        .map_err(|e| PortError::Apply {
            tool,
            detail: e.detail(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::schema::AcName;

    fn port(name: &str, protocol: &str, number: u16) -> Port {
        serde_json::from_value(
            serde_json::json!({"name": name, "protocol": protocol, "port": number}),
        )
        .unwrap()
    }

    fn exposed(name: &str, host_port: u16, host_ip: Option<&str>) -> ExposedPort {
        ExposedPort {
            name: AcName::new(name).unwrap(),
            host_port,
            host_ip: host_ip.map(str::to_string),
            pod_port: None,
        }
    }

    #[test]
    fn resolution_follows_rkts_rules() {
        let web = [port("http", "tcp", 80), port("dns", "udp", 53)];
        let other = [port("admin", "tcp", 9000), port("dupe", "tcp", 1)];
        let dupe = [port("dupe", "tcp", 2)];
        let apps: [&[Port]; 3] = [&web, &other, &dupe];
        let got = resolve(
            &[
                exposed("http", 8080, None),
                exposed("dns", 5353, Some("127.0.0.1")),
            ],
            &apps,
        )
        .unwrap();
        assert_eq!(
            got,
            [
                Forward {
                    protocol: Protocol::Tcp,
                    host_ip: None,
                    host_port: 8080,
                    pod_port: 80
                },
                Forward {
                    protocol: Protocol::Udp,
                    host_ip: Some(Ipv4Addr::LOCALHOST),
                    host_port: 5353,
                    pod_port: 53
                },
            ]
        );
        let err = |e: &[ExposedPort]| resolve(e, &apps).unwrap_err().to_string();
        assert!(err(&[exposed("nope", 1, None)]).contains("not declared"));
        assert!(err(&[exposed("dupe", 1, None)]).contains("more than one app"));
        assert!(err(&[exposed("http", 81, None), exposed("admin", 81, None)]).contains("twice"));
        assert!(err(&[exposed("http", 81, Some("host"))]).contains("invalid host IP"));
    }

    #[test]
    fn one_table_per_pod() {
        let f = [
            Forward {
                protocol: Protocol::Tcp,
                host_ip: None,
                host_port: 8080,
                pod_port: 80,
            },
            Forward {
                protocol: Protocol::Udp,
                host_ip: Some(Ipv4Addr::new(10, 0, 0, 1)),
                host_port: 53,
                pod_port: 5353,
            },
        ];
        let rules = nft_ruleset("u-1", Ipv4Addr::new(172, 16, 28, 2), &f, Some("veth1"));
        assert!(rules.starts_with("table ip rkt-u-1 {"), "{rules}");
        assert!(
            rules.contains("fib daddr type local tcp dport 8080 dnat to 172.16.28.2:80"),
            "{rules}"
        );
        assert!(
            rules.contains("ip daddr 10.0.0.1 udp dport 53 dnat to 172.16.28.2:5353"),
            "{rules}"
        );
        assert!(rules.contains("ip saddr 127.0.0.0/8 ip daddr 172.16.28.2 tcp dport 80 masquerade"));
        assert!(
            rules.contains("iifname \"veth1\" ip daddr 127.0.0.0/8 drop"),
            "{rules}"
        );
        assert!(!nft_ruleset("u-1", Ipv4Addr::LOCALHOST, &f, None).contains("guard"));
        assert_eq!(interface_name("veth1a2b"), Some("veth1a2b"));
        for bad in ["", "..", "a/b", "x\" drop", "waytoolonginterfacename"] {
            assert_eq!(interface_name(bad), None, "{bad:?}");
        }
        let ipt = iptables_rules(
            "0123abcd-ffff",
            Ipv4Addr::new(172, 16, 28, 2),
            &f,
            Some("veth1"),
        );
        assert!(ipt.contains(":RKT-0123abcd-DNAT - [0:0]"), "{ipt}");
        assert!(ipt.contains("-A OUTPUT -j RKT-0123abcd-DNAT"), "{ipt}");
        assert!(ipt.trim_end().ends_with("COMMIT"), "{ipt}");
        assert!(
            ipt.contains("-A RKT-0123abcd-GUARD -i veth1 -d 127.0.0.0/8 -j DROP"),
            "{ipt}"
        );
    }

    #[test]
    fn a_held_port_is_reported_in_use() {
        let holder = TcpListener::bind("127.0.0.1:0").unwrap();
        let taken = holder.local_addr().unwrap().port();
        let f = [Forward {
            protocol: Protocol::Tcp,
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_port: taken,
            pod_port: 80,
        }];
        let e = reserve(&f).unwrap_err().to_string();
        assert!(
            e.contains(&format!("127.0.0.1:{taken}/tcp is already in use")),
            "{e}"
        );
    }
}

#[cfg(test)]
mod iptables_tests {
    use super::*;
    use crate::test_netns::TestNetns;
    use nix::sched::{setns, CloneFlags};
    use std::process::Command;

    fn rules(table: &str) -> String {
        let out = Command::new("iptables")
            .args(["-t", table, "-S"])
            .output()
            .expect("iptables");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The fallback for hosts without nft, for real in a network namespace
    /// of its own: every chain and jump apply() adds, remove() takes away.
    #[test]
    fn iptables_backend_applies_and_removes_everything() {
        let ns = TestNetns::new("ipt");
        let netns = std::fs::File::open(ns.path()).unwrap();
        let uuid = format!("{:08x}-test", std::process::id());
        let f = [Forward {
            protocol: Protocol::Tcp,
            host_ip: None,
            host_port: 8080,
            pod_port: 80,
        }];
        std::thread::scope(|s| {
            s.spawn(|| {
                // Commands started from this thread run in its namespace.
                setns(&netns, CloneFlags::CLONE_NEWNET).unwrap();
                let pod: IpAddr = "10.9.0.2".parse().unwrap();
                apply(Backend::Iptables, &uuid, pod, Some("lo"), &f).unwrap();
                let nat = rules("nat");
                assert!(nat.contains("--to-destination 10.9.0.2:80"), "{nat}");
                assert!(nat.contains("-A OUTPUT -j RKT-"), "{nat}");
                let raw = rules("raw");
                assert!(
                    raw.contains("-d 127.0.0.0/8 -i lo -j DROP")
                        && raw.contains("-A PREROUTING -j RKT-"),
                    "{raw}"
                );
                remove(Backend::Iptables, &uuid).unwrap();
                assert!(!rules("nat").contains("RKT-"), "{}", rules("nat"));
                assert!(!rules("raw").contains("RKT-"), "{}", rules("raw"));
                remove(Backend::Iptables, &uuid).unwrap();
            })
            .join()
            .unwrap()
        });
    }
}
