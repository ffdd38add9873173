//! The text of a pod's `/etc/resolv.conf`, made the same way from rkt's
//! `--dns*` flags (stage0) and from a CNI result's `dns` (stage1).

/// `header` (a comment line and what follows it), then `search`,
/// `nameserver` lines, `options` and `domain`, each only when given.
pub fn render(
    header: &str,
    nameservers: &[String],
    search: &[String],
    options: &[String],
    domain: Option<&str>,
) -> String {
    let mut out = String::from(header);
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    for ns in nameservers {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    if let Some(d) = domain {
        out.push_str(&format!("domain {d}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_omissions() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            render("# h\n", &s(&["10.0.0.1", "10.0.0.2"]), &s(&["a.b", "c"]), &s(&["ndots:2"]), Some("a.b")),
            "# h\nsearch a.b c\nnameserver 10.0.0.1\nnameserver 10.0.0.2\noptions ndots:2\ndomain a.b\n"
        );
        assert_eq!(
            render("# h\n", &s(&["1.1.1.1"]), &[], &[], None),
            "# h\nnameserver 1.1.1.1\n"
        );
    }
}
