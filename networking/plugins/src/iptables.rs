//! IP masquerading with the `iptables` binaries, in the reference's layout:
//! a per-attachment chain `CNI-<first 24 hex of sha512(network+containerID)>`
//! in the nat table holding "ACCEPT to the container's own network" and
//! "MASQUERADE everything but multicast", jumped to from POSTROUTING for the
//! container's address; every rule carries the comment
//! `name: "<network>" id: "<containerID>"`.
//!
//! Changes go through one `iptables-restore --noflush` run, so ADD pays for
//! one exec instead of one per rule and a failure applies nothing.

use sha2::{Digest, Sha512};

use crate::ipnet::IpNet;
pub use crate::tool::ToolError as IptError;
use crate::tool::{find_bin, run};

/// The reference's chain name for an attachment.
pub fn chain_name(network: &str, container_id: &str) -> String {
    let digest = Sha512::digest(format!("{network}{container_id}").as_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("CNI-{hex}")
}

/// Go's `%q` for the ASCII strings CNI allows in names and ids.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub fn comment(network: &str, container_id: &str) -> String {
    format!("name: {} id: {}", go_quote(network), go_quote(container_id))
}

/// Quotes a comment for an iptables-restore line, as `iptables -S` prints it.
fn restore_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn tools(ipv4: bool) -> (&'static str, &'static str) {
    if ipv4 {
        ("iptables", "iptables-restore")
    } else {
        ("ip6tables", "ip6tables-restore")
    }
}

/// Applies `lines` (a `*nat` section, without its COMMIT) in one
/// `iptables-restore --noflush`: all of it or nothing.
fn restore(ipv4: bool, mut lines: Vec<String>) -> Result<(), IptError> {
    lines.push("COMMIT".into());
    run(
        tools(ipv4).1,
        &["-w", "--noflush"],
        Some(&(lines.join("\n") + "\n")),
    )
    .map(drop)
}

/// The current nat table in `-S` form.
fn nat_rules(ipv4: bool) -> Result<String, IptError> {
    run(tools(ipv4).0, &["-w", "-t", "nat", "-S"], None)
}

/// Whether a `-S` line jumps to `chain`.
fn jumps_to(line: &str, chain: &str) -> bool {
    let t: Vec<&str> = line.split_whitespace().collect();
    t.windows(2).any(|w| w[0] == "-j" && w[1] == chain)
}

/// Masquerades traffic from the container addresses `ips` (all of one
/// family) leaving their networks.
pub fn setup_masq(ips: &[IpNet], chain: &str, comment: &str) -> Result<(), IptError> {
    let Some(first) = ips.first() else {
        return Ok(());
    };
    let ipv4 = first.is_ipv4();
    let multicast = if ipv4 { "224.0.0.0/4" } else { "ff00::/8" };
    let c = restore_quote(comment);
    // One exec, no read of the table first: declaring the chain creates it
    // or, in --noflush mode, empties it, so its rules are never doubled.
    // The jump from POSTROUTING is only doubled by a repeated ADD, and
    // teardown removes every jump to the chain.
    let mut lines = vec!["*nat".to_string(), format!(":{chain} - [0:0]")];
    for ip in ips {
        let rule = format!(
            "-A {chain} -d {} -m comment --comment {c} -j ACCEPT",
            ip.network()
        );
        if !lines.contains(&rule) {
            lines.push(rule);
        }
    }
    lines.push(format!(
        "-A {chain} ! -d {multicast} -m comment --comment {c} -j MASQUERADE"
    ));
    for ip in ips {
        lines.push(format!(
            "-A POSTROUTING -s {} -m comment --comment {c} -j {chain}",
            IpNet::host(ip.addr)
        ));
    }
    restore(ipv4, lines)
}

/// Removes everything [`setup_masq`] added for `chain`, found by the jump to
/// the chain, so no address is needed (DEL after the netns is gone).
/// Nothing to remove is success.
pub fn teardown_masq(chain: &str, ipv4: bool) -> Result<(), IptError> {
    if find_bin(tools(ipv4).0).is_err() {
        return Ok(());
    }
    let existing = nat_rules(ipv4)?;
    let mut lines = vec!["*nat".to_string()];
    for l in existing.lines() {
        if let Some(rest) = l.strip_prefix("-A ") {
            if !rest.starts_with(chain) && jumps_to(l, chain) {
                lines.push(format!("-D {rest}"));
            }
        }
    }
    if existing.lines().any(|l| l == format!("-N {chain}")) {
        lines.push(format!("-F {chain}"));
        lines.push(format!("-X {chain}"));
    }
    if lines.len() == 1 {
        return Ok(());
    }
    restore(ipv4, lines)
}

/// The container ids that have masquerade rules for `network` (read from
/// the rule comments).
fn ids_with_rules(rules: &str, network: &str) -> Vec<String> {
    let prefix = restore_quote(&comment(network, ""));
    // `"name: \"net\" id: \"` — the quoted comment up to the id.
    let prefix = &prefix[..prefix.len() - 3];
    let mut ids: Vec<String> = rules
        .lines()
        .filter_map(|l| {
            let rest = &l[l.find(prefix)? + prefix.len()..];
            Some(rest[..rest.find("\\\"")?].to_string())
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// GC: removes the masquerade rules of `network` whose container id is not
/// in `keep`.
pub fn gc_masq(network: &str, keep: &[&str]) -> Result<(), IptError> {
    for ipv4 in [true, false] {
        if find_bin(tools(ipv4).0).is_err() {
            continue;
        }
        let rules = nat_rules(ipv4)?;
        for id in ids_with_rules(&rules, network) {
            if !keep.contains(&id.as_str()) {
                teardown_masq(&chain_name(network, &id), ipv4)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_like_the_reference() {
        // Observed from the reference ptp: network "refptp", id "ctr1".
        assert_eq!(chain_name("refptp", "ctr1"), "CNI-7306507826f35138135bcdff");
        assert_eq!(comment("refptp", "ctr1"), r#"name: "refptp" id: "ctr1""#);
        assert_eq!(
            restore_quote(&comment("n", "c")),
            r#""name: \"n\" id: \"c\"""#
        );
    }

    #[test]
    fn ids_from_comments() {
        let rules = "-A POSTROUTING -s 10.0.0.2/32 -m comment --comment \"name: \\\"n1\\\" id: \\\"c1\\\"\" -j CNI-a\n\
                     -A CNI-a ! -d 224.0.0.0/4 -m comment --comment \"name: \\\"n1\\\" id: \\\"c1\\\"\" -j MASQUERADE\n\
                     -A POSTROUTING -s 10.0.0.3/32 -m comment --comment \"name: \\\"n2\\\" id: \\\"c2\\\"\" -j CNI-b\n";
        assert_eq!(ids_with_rules(rules, "n1"), vec!["c1"]);
        assert_eq!(ids_with_rules(rules, "n2"), vec!["c2"]);
        assert!(ids_with_rules(rules, "n").is_empty());
    }

    #[test]
    fn jump_detection() {
        let l = r#"-A POSTROUTING -s 10.0.0.2/32 -m comment --comment "x" -j CNI-abc"#;
        assert!(jumps_to(l, "CNI-abc"));
        assert!(!jumps_to(l, "CNI-ab"));
    }
}
