//! Where the metadata service is, for stage0 (which registers pods) and
//! stage1 (which tells the apps): rkt's fixed socket and port.

use std::net::IpAddr;

/// The registration socket (root only).
pub const REGISTRATION_SOCKET: &str = "/run/rkt/metadata-svc.sock";
/// The TCP port apps reach the service on (all IPv4 addresses).
pub const PORT: u16 = 18112;

/// `AC_METADATA_URL` for a pod that reaches the host at `host`: no
/// trailing slash, apps append `/acMetadata/v1/...`.
pub fn app_url(host: IpAddr, token: &str) -> String {
    match host {
        IpAddr::V4(ip) => format!("http://{ip}:{PORT}/{token}"),
        IpAddr::V6(ip) => format!("http://[{ip}]:{PORT}/{token}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let v4: IpAddr = "172.16.28.1".parse().unwrap();
        assert_eq!(app_url(v4, "ab12"), "http://172.16.28.1:18112/ab12");
        let v6: IpAddr = "fd00::1".parse().unwrap();
        assert_eq!(app_url(v6, "ab12"), "http://[fd00::1]:18112/ab12");
    }
}
