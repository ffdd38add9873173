//! `--insecure-options`: a comma list of security checks to skip.

use std::fmt;

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("unknown insecure option {0:?}; valid options are none, image, tls, ondisk, http, pubkey, capabilities, paths, seccomp, all-fetch, all-run, all")]
pub struct InsecureOptionsError(pub String);

/// The set of security checks the user asked to skip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InsecureOptions {
    /// Skip image signature verification.
    pub image: bool,
    /// Accept any TLS certificate.
    pub tls: bool,
    /// Kept for compatibility; does nothing (as in rkt).
    pub ondisk: bool,
    /// Allow plain HTTP for images, signatures and keys.
    pub http: bool,
    /// Allow fetching public keys over plain http (`rkt trust`).
    pub pubkey: bool,
    /// Give apps all capabilities.
    pub capabilities: bool,
    /// Do not hide or write-protect sensitive /proc and /sys paths.
    pub paths: bool,
    /// Disable seccomp filtering.
    pub seccomp: bool,
}

impl InsecureOptions {
    pub fn parse(list: &str) -> Result<Self, InsecureOptionsError> {
        let mut o = InsecureOptions::default();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item {
                "none" => {}
                "image" => o.image = true,
                "tls" => o.tls = true,
                "ondisk" => o.ondisk = true,
                "http" => o.http = true,
                "pubkey" => o.pubkey = true,
                "capabilities" => o.capabilities = true,
                "paths" => o.paths = true,
                "seccomp" => o.seccomp = true,
                "all-fetch" => o.set_all_fetch(),
                "all-run" => o.set_all_run(),
                "all" => {
                    o.set_all_fetch();
                    o.set_all_run();
                }
                other => return Err(InsecureOptionsError(other.to_string())),
            }
        }
        Ok(o)
    }

    fn set_all_fetch(&mut self) {
        self.image = true;
        self.tls = true;
        self.http = true;
        self.pubkey = true;
    }

    fn set_all_run(&mut self) {
        self.capabilities = true;
        self.paths = true;
        self.seccomp = true;
    }
}

impl fmt::Display for InsecureOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [
            (self.image, "image"),
            (self.tls, "tls"),
            (self.ondisk, "ondisk"),
            (self.http, "http"),
            (self.pubkey, "pubkey"),
            (self.capabilities, "capabilities"),
            (self.paths, "paths"),
            (self.seccomp, "seccomp"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect();
        if names.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&names.join(","))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_groups_and_rejects_unknown() {
        let o = InsecureOptions::parse("image,all-run").unwrap();
        assert!(o.image && o.capabilities && o.paths && o.seccomp && !o.tls);
        assert_eq!(
            InsecureOptions::parse("none").unwrap(),
            InsecureOptions::default()
        );
        let all = InsecureOptions::parse("all").unwrap();
        assert!(all.pubkey && all.http && all.seccomp);
        assert!(InsecureOptions::parse("image,bogus").is_err());
    }
}
