//! A small synchronous rtnetlink client: just the link, address and route
//! operations the plugins need, over a raw `NETLINK_ROUTE` socket.
//!
//! Raw messages instead of netlink-packet-route: the handful of messages is
//! short to build by hand, keeps the binaries free of async runtimes and
//! version churn, and links statically. A socket is bound to the network
//! namespace it was created in, which is how the plugins talk to a container
//! namespace without moving the process there (see [`crate::netns`]).

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::ipnet::IpNet;

// Message types and flags (linux/netlink.h, linux/rtnetlink.h).
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_GETROUTE: u16 = 26;
const RTM_NEWQDISC: u16 = 36;
const RTM_NEWTFILTER: u16 = 44;

// Attributes.
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_TXQLEN: u16 = 13;
const IFLA_PROTINFO: u16 = 12;
const IFLA_LINKINFO: u16 = 18;
const IFLA_BRPORT_MODE: u16 = 4;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFLA_BR_VLAN_FILTERING: u16 = 7;
const IFLA_AF_SPEC: u16 = 26;
const IFLA_BRIDGE_FLAGS: u16 = 0;
const IFLA_BRIDGE_VLAN_INFO: u16 = 2;
const BRIDGE_FLAGS_MASTER: u16 = 1;
const BRIDGE_VLAN_INFO_PVID: u16 = 1 << 1;
const BRIDGE_VLAN_INFO_UNTAGGED: u16 = 1 << 2;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_F_NODAD: u8 = 0x02;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_PREFSRC: u16 = 7;
const RTA_TABLE: u16 = 15;
const NLA_F_NESTED: u16 = 0x8000;
// Traffic control (linux/rtnetlink.h, pkt_sched.h, pkt_cls.h,
// tc_act/tc_mirred.h).
const TCA_KIND: u16 = 1;
const TCA_OPTIONS: u16 = 2;
const TC_H_INGRESS: u32 = 0xFFFF_FFF1;
const INGRESS_HANDLE: u32 = 0xFFFF_0000;
const TCA_U32_SEL: u16 = 5;
const TCA_U32_ACT: u16 = 7;
const TC_U32_TERMINAL: u8 = 1;
const TCA_ACT_KIND: u16 = 1;
const TCA_ACT_OPTIONS: u16 = 2;
const TCA_MIRRED_PARMS: u16 = 2;
const TC_ACT_STOLEN: i32 = 4;
const TCA_EGRESS_REDIR: i32 = 1;
const ETH_P_ALL: u16 = 0x0003;
const TCMSG_LEN: usize = 20;

pub const IFF_UP: u32 = 0x1;
pub const IFF_PROMISC: u32 = 0x100;
pub const RT_SCOPE_UNIVERSE: u8 = 0;
pub const RT_SCOPE_LINK: u8 = 253;
pub const RT_SCOPE_HOST: u8 = 254;
pub const RT_SCOPE_NOWHERE: u8 = 255;
pub const RT_TABLE_MAIN: u8 = 254;
pub const RTPROT_BOOT: u8 = 3;
const RTN_UNICAST: u8 = 1;

const HDR_LEN: usize = 16;
const IFINFO_LEN: usize = 16;
const IFADDR_LEN: usize = 8;
const RTMSG_LEN: usize = 12;

fn align(n: usize) -> usize {
    (n + 3) & !3
}

fn family(a: &IpAddr) -> u8 {
    match a {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    }
}

fn ip_bytes(a: &IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

fn ip_from(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
        _ => None,
    }
}

/// A request being built: header, fixed part, attributes.
struct Msg {
    buf: Vec<u8>,
}

impl Msg {
    fn new(ty: u16, flags: u16, fixed: &[u8]) -> Msg {
        let mut buf = vec![0u8; HDR_LEN];
        buf[4..6].copy_from_slice(&ty.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        buf.extend_from_slice(fixed);
        buf.resize(align(buf.len()), 0);
        Msg { buf }
    }

    fn attr(&mut self, ty: u16, data: &[u8]) -> &mut Self {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(align(self.buf.len()), 0);
        self
    }

    fn attr_str(&mut self, ty: u16, s: &str) -> &mut Self {
        let mut d = s.as_bytes().to_vec();
        d.push(0);
        self.attr(ty, &d)
    }

    fn attr_u32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.attr(ty, &v.to_ne_bytes())
    }

    /// Opens a nested attribute; close it with [`Msg::end_nest`].
    fn nest(&mut self, ty: u16) -> usize {
        let at = self.buf.len();
        self.attr(ty | NLA_F_NESTED, &[]);
        at
    }

    fn end_nest(&mut self, at: usize) {
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// Appends raw bytes (a fixed header inside a nest).
    fn raw(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        self.buf.resize(align(self.buf.len()), 0);
    }

    fn finish(mut self, seq: u32) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

fn tcmsg(index: u32, handle: u32, parent: u32, info: u32) -> [u8; TCMSG_LEN] {
    let mut b = [0u8; TCMSG_LEN];
    b[0] = libc::AF_UNSPEC as u8;
    b[4..8].copy_from_slice(&(index as i32).to_ne_bytes());
    b[8..12].copy_from_slice(&handle.to_ne_bytes());
    b[12..16].copy_from_slice(&parent.to_ne_bytes());
    b[16..20].copy_from_slice(&info.to_ne_bytes());
    b
}

fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; IFINFO_LEN] {
    let mut b = [0u8; IFINFO_LEN];
    b[0] = libc::AF_UNSPEC as u8;
    b[4..8].copy_from_slice(&(index as i32).to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

/// Iterates the attributes in `b` as (type without flags, payload).
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let ty = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            return None;
        }
        let data = &b[4..len];
        b = &b[align(len).min(b.len())..];
        Some((ty, data))
    })
}

fn u32_of(d: &[u8]) -> u32 {
    d.get(..4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map(u32::from_ne_bytes)
        .unwrap_or(0)
}

fn cstr(d: &[u8]) -> String {
    let end = d.iter().position(|&c| c == 0).unwrap_or(d.len());
    String::from_utf8_lossy(&d[..end]).into_owned()
}

/// A link as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub flags: u32,
    pub mtu: u32,
    pub mac: Vec<u8>,
    pub kind: Option<String>,
    pub master: Option<u32>,
}

impl Link {
    /// The MAC as CNI writes it (lower-case, colon separated).
    pub fn mac_string(&self) -> String {
        let parts: Vec<String> = self.mac.iter().map(|b| format!("{b:02x}")).collect();
        parts.join(":")
    }

    pub fn is_up(&self) -> bool {
        self.flags & IFF_UP != 0
    }

    fn parse(p: &[u8]) -> Option<Link> {
        if p.len() < IFINFO_LEN {
            return None;
        }
        let index = u32_of(&p[4..8]);
        let flags = u32_of(&p[8..12]);
        let mut l = Link {
            index,
            name: String::new(),
            flags,
            mtu: 0,
            mac: Vec::new(),
            kind: None,
            master: None,
        };
        for (ty, d) in attrs(&p[IFINFO_LEN..]) {
            match ty {
                IFLA_IFNAME => l.name = cstr(d),
                IFLA_MTU => l.mtu = u32_of(d),
                IFLA_ADDRESS => l.mac = d.to_vec(),
                IFLA_MASTER => l.master = Some(u32_of(d)),
                IFLA_LINKINFO => {
                    for (t, v) in attrs(d) {
                        if t == IFLA_INFO_KIND {
                            l.kind = Some(cstr(v));
                        }
                    }
                }
                _ => {}
            }
        }
        Some(l)
    }
}

/// An address on a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    pub index: u32,
    pub net: IpNet,
    pub scope: u8,
}

/// A route; used both to request and to report routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub dst: IpNet,
    pub gw: Option<IpAddr>,
    pub oif: u32,
    pub src: Option<IpAddr>,
    pub scope: u8,
    pub table: u32,
    pub priority: Option<u32>,
}

impl RouteSpec {
    pub fn new(dst: IpNet, oif: u32) -> RouteSpec {
        RouteSpec {
            dst: dst.network(),
            gw: None,
            oif,
            src: None,
            scope: RT_SCOPE_UNIVERSE,
            table: RT_TABLE_MAIN as u32,
            priority: None,
        }
    }
}

/// A NETLINK_ROUTE socket bound to the namespace it was created in.
pub struct Socket {
    fd: OwnedFd,
    seq: u32,
}

impl Socket {
    pub fn new() -> io::Result<Socket> {
        // SAFETY: plain socket(2) call; the fd is owned right away.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_nl is plain data; all-zero is a valid value.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: sa is a valid sockaddr_nl of the given size.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sa as *const libc::sockaddr_nl as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Socket { fd, seq: 0 })
    }

    /// Sends one request and collects the reply payloads (for dumps: every
    /// message until NLMSG_DONE; otherwise until the ACK). A negative errno
    /// in an NLMSG_ERROR becomes the returned error.
    fn request(&mut self, msg: Msg) -> io::Result<Vec<Vec<u8>>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let dump = u16::from_ne_bytes([msg.buf[6], msg.buf[7]]) & NLM_F_DUMP == NLM_F_DUMP;
        let buf = msg.finish(seq);
        // SAFETY: buf is a valid, initialised buffer of buf.len() bytes.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut out = Vec::new();
        let mut rbuf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: rbuf is a writable buffer of rbuf.len() bytes.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), rbuf.as_mut_ptr().cast(), rbuf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let mut b = &rbuf[..n as usize];
            while b.len() >= HDR_LEN {
                let len = u32_of(&b[0..4]) as usize;
                let ty = u16::from_ne_bytes([b[4], b[5]]);
                let mseq = u32_of(&b[8..12]);
                if len < HDR_LEN || len > b.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "truncated netlink message",
                    ));
                }
                let payload = &b[HDR_LEN..len];
                b = &b[align(len).min(b.len())..];
                if mseq != seq {
                    continue;
                }
                match ty {
                    NLMSG_ERROR => {
                        let err = u32_of(payload) as i32;
                        if err != 0 {
                            return Err(io::Error::from_raw_os_error(-err));
                        }
                        return Ok(out);
                    }
                    NLMSG_DONE => return Ok(out),
                    _ => {
                        out.push(payload.to_vec());
                        if !dump {
                            // A GET without DUMP answers with one message
                            // (errors come as NLMSG_ERROR instead).
                            return Ok(out);
                        }
                    }
                }
            }
        }
    }

    /// Looks a link up by name; Ok(None) when it does not exist.
    pub fn link_by_name(&mut self, name: &str) -> io::Result<Option<Link>> {
        let mut m = Msg::new(RTM_GETLINK, 0, &ifinfomsg(0, 0, 0));
        m.attr_str(IFLA_IFNAME, name);
        match self.request(m) {
            Ok(v) => Ok(v.first().and_then(|p| Link::parse(p))),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn link_by_index(&mut self, index: u32) -> io::Result<Option<Link>> {
        let m = Msg::new(RTM_GETLINK, 0, &ifinfomsg(index, 0, 0));
        match self.request(m) {
            Ok(v) => Ok(v.first().and_then(|p| Link::parse(p))),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        let m = Msg::new(RTM_GETLINK, NLM_F_DUMP, &ifinfomsg(0, 0, 0));
        Ok(self
            .request(m)?
            .iter()
            .filter_map(|p| Link::parse(p))
            .collect())
    }

    pub fn link_set_up(&mut self, index: u32, up: bool) -> io::Result<()> {
        let flags = if up { IFF_UP } else { 0 };
        let m = Msg::new(RTM_NEWLINK, NLM_F_ACK, &ifinfomsg(index, flags, IFF_UP));
        self.request(m).map(drop)
    }

    pub fn link_set_promisc(&mut self, index: u32, on: bool) -> io::Result<()> {
        let flags = if on { IFF_PROMISC } else { 0 };
        let m = Msg::new(
            RTM_NEWLINK,
            NLM_F_ACK,
            &ifinfomsg(index, flags, IFF_PROMISC),
        );
        self.request(m).map(drop)
    }

    /// Hairpin mode of a bridge port (traffic may go back out the port it
    /// came in on), set through the bridge's protinfo like `ip link set
    /// ... type bridge_slave hairpin on`.
    pub fn link_set_hairpin(&mut self, index: u32, on: bool) -> io::Result<()> {
        let mut fixed = ifinfomsg(index, 0, 0);
        fixed[0] = libc::AF_BRIDGE as u8;
        let mut m = Msg::new(RTM_SETLINK, NLM_F_ACK, &fixed);
        let n = m.nest(IFLA_PROTINFO);
        m.attr(IFLA_BRPORT_MODE, &[u8::from(on)]);
        m.end_nest(n);
        self.request(m).map(drop)
    }

    pub fn link_set_mac(&mut self, index: u32, mac: &[u8]) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_ACK, &ifinfomsg(index, 0, 0));
        m.attr(IFLA_ADDRESS, mac);
        self.request(m).map(drop)
    }

    pub fn link_set_mtu(&mut self, index: u32, mtu: u32) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_ACK, &ifinfomsg(index, 0, 0));
        m.attr_u32(IFLA_MTU, mtu);
        self.request(m).map(drop)
    }

    /// Renames a link (it must be down).
    pub fn link_set_name(&mut self, index: u32, name: &str) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_ACK, &ifinfomsg(index, 0, 0));
        m.attr_str(IFLA_IFNAME, name);
        self.request(m).map(drop)
    }

    pub fn link_set_master(&mut self, index: u32, master: u32) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_ACK, &ifinfomsg(index, 0, 0));
        m.attr_u32(IFLA_MASTER, master);
        self.request(m).map(drop)
    }

    pub fn link_del(&mut self, index: u32) -> io::Result<()> {
        let m = Msg::new(RTM_DELLINK, NLM_F_ACK, &ifinfomsg(index, 0, 0));
        self.request(m).map(drop)
    }

    /// Creates a bridge, with VLAN filtering on when `vlan_filtering`.
    pub fn bridge_add(
        &mut self,
        name: &str,
        mtu: Option<u32>,
        vlan_filtering: bool,
    ) -> io::Result<()> {
        let mut m = new_link_msg(name, mtu);
        let li = m.nest(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "bridge");
        if vlan_filtering {
            let data = m.nest(IFLA_INFO_DATA);
            m.attr(IFLA_BR_VLAN_FILTERING, &[1]);
            m.end_nest(data);
        }
        m.end_nest(li);
        self.request(m).map(drop)
    }

    /// Makes bridge port `index` a member of VLAN `vid`, its PVID and
    /// untagged on egress (an access port), like `bridge vlan add dev PORT
    /// vid VID pvid untagged master`.
    pub fn bridge_vlan_add_access(&mut self, index: u32, vid: u16) -> io::Result<()> {
        let mut fixed = ifinfomsg(index, 0, 0);
        fixed[0] = libc::AF_BRIDGE as u8;
        let mut m = Msg::new(RTM_SETLINK, NLM_F_ACK, &fixed);
        let spec = m.nest(IFLA_AF_SPEC);
        m.attr(IFLA_BRIDGE_FLAGS, &BRIDGE_FLAGS_MASTER.to_ne_bytes());
        let mut info = [0u8; 4];
        info[..2]
            .copy_from_slice(&(BRIDGE_VLAN_INFO_PVID | BRIDGE_VLAN_INFO_UNTAGGED).to_ne_bytes());
        info[2..].copy_from_slice(&vid.to_ne_bytes());
        m.attr(IFLA_BRIDGE_VLAN_INFO, &info);
        m.end_nest(spec);
        self.request(m).map(drop)
    }

    /// Sends every frame that arrives on link `from` out of link `to`, as
    /// `tc qdisc add dev FROM ingress` and `tc filter add dev FROM parent
    /// ffff: u32 match u32 0 0 action mirred egress redirect dev TO` do
    /// (u32: the classifier every kernel config has).
    pub fn redirect_ingress(&mut self, from: u32, to: u32) -> io::Result<()> {
        let mut q = Msg::new(
            RTM_NEWQDISC,
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            &tcmsg(from, INGRESS_HANDLE, TC_H_INGRESS, 0),
        );
        q.attr_str(TCA_KIND, "ingress");
        match self.request(q) {
            // A chained plugin may have added one already.
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            r => r.map(drop)?,
        }
        let protocol = u32::from(ETH_P_ALL.to_be());
        let mut f = Msg::new(
            RTM_NEWTFILTER,
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            &tcmsg(from, 0, INGRESS_HANDLE, (1 << 16) | protocol),
        );
        f.attr_str(TCA_KIND, "u32");
        let options = f.nest(TCA_OPTIONS);
        // tc_u32_sel with one all-zero key (matches everything), terminal.
        let mut sel = [0u8; 32];
        sel[0] = TC_U32_TERMINAL;
        sel[2] = 1;
        f.attr(TCA_U32_SEL, &sel);
        let actions = f.nest(TCA_U32_ACT);
        let first = f.nest(1);
        f.attr_str(TCA_ACT_KIND, "mirred");
        let act_options = f.nest(TCA_ACT_OPTIONS);
        // tc_mirred: tc_gen (index, capab, action, refcnt, bindcnt),
        // eaction, ifindex.
        let mut parms = [0u8; 28];
        parms[8..12].copy_from_slice(&TC_ACT_STOLEN.to_ne_bytes());
        parms[20..24].copy_from_slice(&TCA_EGRESS_REDIR.to_ne_bytes());
        parms[24..28].copy_from_slice(&to.to_ne_bytes());
        f.attr(TCA_MIRRED_PARMS, &parms);
        f.end_nest(act_options);
        f.end_nest(first);
        f.end_nest(actions);
        f.end_nest(options);
        self.request(f).map(drop)
    }

    /// Creates a veth pair: `name` here, `peer` in the namespace `peer_ns`
    /// (an open netns fd) or here when None.
    pub fn veth_add(
        &mut self,
        name: &str,
        peer: &str,
        mtu: Option<u32>,
        peer_ns: Option<RawFd>,
    ) -> io::Result<()> {
        let mut m = new_link_msg(name, mtu);
        // veths are queueless; a zero txqlen is what the reference sets too.
        m.attr_u32(IFLA_TXQLEN, 0);
        let li = m.nest(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "veth");
        let data = m.nest(IFLA_INFO_DATA);
        let p = m.nest(VETH_INFO_PEER);
        m.raw(&ifinfomsg(0, 0, 0));
        m.attr_str(IFLA_IFNAME, peer);
        if let Some(mtu) = mtu {
            m.attr_u32(IFLA_MTU, mtu);
        }
        m.attr_u32(IFLA_TXQLEN, 0);
        if let Some(fd) = peer_ns {
            m.attr_u32(IFLA_NET_NS_FD, fd as u32);
        }
        m.end_nest(p);
        m.end_nest(data);
        m.end_nest(li);
        self.request(m).map(drop)
    }

    /// Adds an address; IPv4 addresses get the broadcast address the way
    /// `ip addr add ... brd +` (and the reference's netlink library) do.
    /// IPv6 addresses skip duplicate address detection: IPAM already made
    /// them unique, and a tentative address cannot be a route's source,
    /// which the reference works around by waiting (seconds) for DAD.
    pub fn addr_add(&mut self, index: u32, net: &IpNet) -> io::Result<()> {
        let mut fixed = [0u8; IFADDR_LEN];
        fixed[0] = family(&net.addr);
        fixed[1] = net.prefix;
        if !net.is_ipv4() {
            fixed[2] = IFA_F_NODAD;
        }
        fixed[4..8].copy_from_slice(&index.to_ne_bytes());
        let mut m = Msg::new(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, &fixed);
        let b = ip_bytes(&net.addr);
        m.attr(IFA_LOCAL, &b);
        m.attr(IFA_ADDRESS, &b);
        if net.is_ipv4() && net.prefix < 31 {
            m.attr(IFA_BROADCAST, &ip_bytes(&net.last_addr()));
        }
        self.request(m).map(drop)
    }

    pub fn addr_del(&mut self, index: u32, net: &IpNet) -> io::Result<()> {
        let mut fixed = [0u8; IFADDR_LEN];
        fixed[0] = family(&net.addr);
        fixed[1] = net.prefix;
        fixed[4..8].copy_from_slice(&index.to_ne_bytes());
        let mut m = Msg::new(RTM_DELADDR, NLM_F_ACK, &fixed);
        m.attr(IFA_LOCAL, &ip_bytes(&net.addr));
        self.request(m).map(drop)
    }

    /// Addresses, optionally only those of one link.
    pub fn addrs(&mut self, index: Option<u32>) -> io::Result<Vec<Addr>> {
        let m = Msg::new(RTM_GETADDR, NLM_F_DUMP, &[0u8; IFADDR_LEN]);
        let mut out = Vec::new();
        for p in self.request(m)? {
            if p.len() < IFADDR_LEN {
                continue;
            }
            let (prefix, scope, idx) = (p[1], p[3], u32_of(&p[4..8]));
            if index.is_some_and(|i| i != idx) {
                continue;
            }
            let mut local = None;
            let mut address = None;
            for (ty, d) in attrs(&p[IFADDR_LEN..]) {
                match ty {
                    IFA_LOCAL => local = ip_from(d),
                    IFA_ADDRESS => address = ip_from(d),
                    _ => {}
                }
            }
            if let Some(a) = local.or(address) {
                if let Ok(net) = IpNet::new(a, prefix) {
                    out.push(Addr {
                        index: idx,
                        net,
                        scope,
                    });
                }
            }
        }
        Ok(out)
    }

    fn route_msg(&self, ty: u16, flags: u16, r: &RouteSpec) -> Msg {
        let mut fixed = [0u8; RTMSG_LEN];
        fixed[0] = family(&r.dst.addr);
        fixed[1] = r.dst.prefix;
        fixed[4] = if r.table < 256 { r.table as u8 } else { 0 };
        fixed[5] = if ty == RTM_NEWROUTE { RTPROT_BOOT } else { 0 };
        fixed[6] = r.scope;
        fixed[7] = RTN_UNICAST;
        let mut m = Msg::new(ty, flags, &fixed);
        if r.dst.prefix > 0 {
            m.attr(RTA_DST, &ip_bytes(&r.dst.network_addr()));
        }
        if let Some(gw) = r.gw {
            m.attr(RTA_GATEWAY, &ip_bytes(&gw));
        }
        if let Some(src) = r.src {
            m.attr(RTA_PREFSRC, &ip_bytes(&src));
        }
        if r.oif != 0 {
            m.attr_u32(RTA_OIF, r.oif);
        }
        if let Some(p) = r.priority {
            m.attr_u32(RTA_PRIORITY, p);
        }
        if r.table >= 256 {
            m.attr_u32(RTA_TABLE, r.table);
        }
        m
    }

    pub fn route_add(&mut self, r: &RouteSpec) -> io::Result<()> {
        let m = self.route_msg(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, r);
        self.request(m).map(drop)
    }

    /// Deletes a route; scope RT_SCOPE_NOWHERE matches any scope.
    pub fn route_del(&mut self, r: &RouteSpec) -> io::Result<()> {
        let m = self.route_msg(RTM_DELROUTE, NLM_F_ACK, r);
        self.request(m).map(drop)
    }

    /// Unicast routes of one family in all tables.
    pub fn routes(&mut self, ipv4: bool) -> io::Result<Vec<RouteSpec>> {
        let mut fixed = [0u8; RTMSG_LEN];
        fixed[0] = if ipv4 {
            libc::AF_INET as u8
        } else {
            libc::AF_INET6 as u8
        };
        let m = Msg::new(RTM_GETROUTE, NLM_F_DUMP, &fixed);
        let mut out = Vec::new();
        for p in self.request(m)? {
            if p.len() < RTMSG_LEN || p[7] != RTN_UNICAST {
                continue;
            }
            let unspecified: IpAddr = if ipv4 {
                IpAddr::from([0u8; 4])
            } else {
                IpAddr::from([0u8; 16])
            };
            let mut r = RouteSpec {
                dst: IpNet {
                    addr: unspecified,
                    prefix: p[1],
                },
                gw: None,
                oif: 0,
                src: None,
                scope: p[6],
                table: p[4] as u32,
                priority: None,
            };
            for (ty, d) in attrs(&p[RTMSG_LEN..]) {
                match ty {
                    RTA_DST => {
                        if let Some(a) = ip_from(d) {
                            r.dst.addr = a;
                        }
                    }
                    RTA_GATEWAY => r.gw = ip_from(d),
                    RTA_PREFSRC => r.src = ip_from(d),
                    RTA_OIF => r.oif = u32_of(d),
                    RTA_PRIORITY => r.priority = Some(u32_of(d)),
                    RTA_TABLE => r.table = u32_of(d),
                    _ => {}
                }
            }
            out.push(r);
        }
        Ok(out)
    }
}

/// RTM_NEWLINK creating link `name` (failing if it exists), with `mtu`.
fn new_link_msg(name: &str, mtu: Option<u32>) -> Msg {
    let mut m = Msg::new(
        RTM_NEWLINK,
        NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        &ifinfomsg(0, 0, 0),
    );
    m.attr_str(IFLA_IFNAME, name);
    if let Some(mtu) = mtu {
        m.attr_u32(IFLA_MTU, mtu);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_layout() {
        let mut m = Msg::new(RTM_GETLINK, 0, &ifinfomsg(7, 0, 0));
        m.attr_str(IFLA_IFNAME, "eth0");
        let b = m.finish(42);
        // header + ifinfomsg + (4 + "eth0\0" padded to 8)
        assert_eq!(b.len(), HDR_LEN + IFINFO_LEN + 12);
        assert_eq!(u32_of(&b[0..4]) as usize, b.len());
        assert_eq!(u32_of(&b[8..12]), 42);
        let a: Vec<_> = attrs(&b[HDR_LEN + IFINFO_LEN..]).collect();
        assert_eq!(a, vec![(IFLA_IFNAME, &b"eth0\0"[..])]);
    }

    #[test]
    fn nested_lengths() {
        let mut m = Msg::new(RTM_NEWLINK, 0, &ifinfomsg(0, 0, 0));
        let n = m.nest(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "veth");
        m.end_nest(n);
        let b = m.finish(1);
        let outer: Vec<_> = attrs(&b[HDR_LEN + IFINFO_LEN..]).collect();
        assert_eq!(outer.len(), 1);
        assert_eq!(outer[0].0, IFLA_LINKINFO);
        let inner: Vec<_> = attrs(outer[0].1).collect();
        assert_eq!(inner, vec![(IFLA_INFO_KIND, &b"veth\0"[..])]);
    }

    #[test]
    fn lo_in_this_namespace() {
        // Reading works unprivileged; skip quietly where netlink is absent.
        let Ok(mut s) = Socket::new() else { return };
        let lo = s.link_by_name("lo").expect("query").expect("lo exists");
        assert_eq!(lo.index, 1);
        assert!(s.link_by_name("nonexistent0").expect("query").is_none());
    }
}
