//! Interfaces and a minimal HTTP/1.0 client and server over TCP.

use std::ffi::CStr;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

/// Body the server answers every request with.
const SERVE_BODY: &str = "inspect\n";
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// `Interface: <name> <ipv4>/<prefix>` per address; `Interface: <name>` for
/// interfaces without IPv4.
pub fn print_ifaces() -> Result<(), String> {
    for (name, addrs) in interfaces()? {
        if addrs.is_empty() {
            println!("Interface: {name}");
        }
        for (ip, prefix) in addrs {
            println!("Interface: {name} {ip}/{prefix}");
        }
    }
    Ok(())
}

type Iface = (String, Vec<(Ipv4Addr, u32)>);

fn interfaces() -> Result<Vec<Iface>, String> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(format!("getifaddrs: {}", io::Error::last_os_error()));
    }
    let mut out: Vec<Iface> = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, alive
        // until freeifaddrs; its name is a NUL-terminated string.
        let ifa = unsafe { &*cur };
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        let idx = match out.iter().position(|(n, _)| *n == name) {
            Some(i) => i,
            None => {
                out.push((name, Vec::new()));
                out.len() - 1
            }
        };
        // SAFETY: for AF_INET entries addr and netmask point at sockaddr_in.
        if let Some(ip) = unsafe { ipv4(ifa.ifa_addr) } {
            let prefix = unsafe { ipv4(ifa.ifa_netmask) }.map_or(32, |m| u32::from(m).count_ones());
            out[idx].1.push((ip, prefix));
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// # Safety
/// `sa` must be null or point at a sockaddr valid for its family's size.
unsafe fn ipv4(sa: *const libc::sockaddr) -> Option<Ipv4Addr> {
    // SAFETY: the caller guarantees `sa` is null or valid.
    let family = unsafe { sa.as_ref() }?.sa_family;
    if i32::from(family) != libc::AF_INET {
        return None;
    }
    // SAFETY: an AF_INET sockaddr is a sockaddr_in.
    let sin = unsafe { &*(sa as *const libc::sockaddr_in) };
    Some(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
}

/// The body of a 200 answer to a GET of `url` (`http://host[:port]/path`).
pub fn fetch_http(url: &str) -> Result<String, String> {
    let (host, port, path) = parse_url(url)?;
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("resolving {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    let io_err = |e: io::Error| format!("talking to {addr}: {e}");
    s.set_read_timeout(Some(IO_TIMEOUT)).map_err(io_err)?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").map_err(io_err)?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).map_err(io_err)?;
    let resp = String::from_utf8_lossy(&resp);
    let (head, body) = resp
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{url}: malformed HTTP response"))?;
    let status = head.lines().next().unwrap_or("");
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("{url}: {status}"));
    }
    Ok(body.to_string())
}

/// Prints the app's annotation `name` as the metadata service tells it
/// (`$AC_METADATA_URL`, `$AC_APP_NAME`), as rkt's inspect did.
pub fn print_app_annotation(name: &str) -> Result<(), String> {
    let base = std::env::var("AC_METADATA_URL")
        .map_err(|_| "AC_METADATA_URL is not set: run the pod with --mds-register".to_string())?;
    let app = std::env::var("AC_APP_NAME").map_err(|_| "AC_APP_NAME is not set".to_string())?;
    let value = fetch_http(&format!(
        "{base}/acMetadata/v1/apps/{app}/annotations/{name}"
    ))?;
    println!("Annotation {name}={value}");
    Ok(())
}

/// GETs `url` and prints the body (with a final newline).
pub fn get_http(url: &str) -> Result<(), String> {
    let body = fetch_http(url)?;
    print!("{body}");
    if !body.ends_with('\n') {
        println!();
    }
    Ok(())
}

fn parse_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url:?} is not an http:// URL"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
            h,
            p.parse()
                .map_err(|_| format!("bad port {p:?} in {url:?}"))?,
        ),
        _ => (hostport, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("no host in {url:?}"));
    }
    Ok((host.to_string(), port, path.to_string()))
}

/// Answers every request on `addr` with [`SERVE_BODY`] until `timeout`.
/// Sends every datagram that arrives on `addr` back to its sender, for
/// `timeout`.
pub fn serve_udp_echo(addr: &str, timeout: Duration) -> Result<(), String> {
    let socket = UdpSocket::bind(addr).map_err(|e| format!("binding udp {addr}: {e}"))?;
    println!("serve-udp-echo: listening on {addr}");
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 2048];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .map_err(|e| format!("udp {addr}: {e}"))?;
        if let Ok((n, peer)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&buf[..n], peer);
        }
    }
    Ok(())
}

pub fn serve_http(addr: &str, timeout: Duration) -> Result<(), String> {
    let listener = TcpListener::bind(addr).map_err(|e| format!("listening on {addr}: {e}"))?;
    let local: SocketAddr = listener
        .local_addr()
        .map_err(|e| format!("listening on {addr}: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("listening on {addr}: {e}"))?;
    println!("serve-http: listening on {local}");
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match listener.accept() {
            // A client that misbehaves only loses its own answer.
            Ok((conn, _)) => {
                let _ = answer(conn);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(format!("accepting on {local}: {e}")),
        }
    }
    Ok(())
}

fn answer(mut conn: TcpStream) -> io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 16 * 1024 {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        req.extend_from_slice(&buf[..n]);
    }
    write!(
        conn,
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{SERVE_BODY}",
        SERVE_BODY.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("http://127.0.0.1:8080/x/y").unwrap(),
            ("127.0.0.1".into(), 8080, "/x/y".into())
        );
        assert_eq!(
            parse_url("http://example").unwrap(),
            ("example".into(), 80, "/".into())
        );
        assert_eq!(parse_url("http://[::1]:81/").unwrap().0, "::1");
        assert!(parse_url("https://x").is_err());
        assert!(parse_url("http://x:port/").is_err());
    }

    #[test]
    fn loopback_is_listed() {
        let ifaces = interfaces().unwrap();
        let lo = ifaces.iter().find(|(n, _)| n == "lo").unwrap();
        assert!(lo.1.contains(&(Ipv4Addr::LOCALHOST, 8)));
    }

    #[test]
    fn serve_and_get() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let server =
            std::thread::spawn(move || serve_http(&addr.to_string(), Duration::from_secs(2)));
        std::thread::sleep(Duration::from_millis(200));
        get_http(&format!("http://{addr}/")).unwrap();
        server.join().unwrap().unwrap();
    }
}
