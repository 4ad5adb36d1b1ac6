//! The counters, read straight from rtnetlink: a class dump (`RTM_GETTCLASS`, what
//! `tc -s class show` prints) and a device's `IFLA_STATS64` (what `ip -s link` prints).
//!
//! A rate is only as good as the moment its counters were read is known: a netlink request
//! takes microseconds, where a `tc` process on a loaded machine can take half a second to run
//! and nobody can say when in that time it read them.

use crate::tc::{Class, Link};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWTCLASS: u16 = 40;
const RTM_GETTCLASS: u16 = 42;
const TCA_STATS: u16 = 3;
const TCA_STATS2: u16 = 7;
const TCA_STATS_BASIC: u16 = 1;
const TCA_STATS_QUEUE: u16 = 3;
const TCA_STATS_PKT64: u16 = 8;
const IFLA_STATS: u16 = 7;
const IFLA_STATS64: u16 = 23;
const TC_H_ROOT: u32 = 0xffff_ffff;
const NLMSG_HDRLEN: usize = 16;
/// `struct tcmsg`
const TCMSG_LEN: usize = 20;
/// `struct ifinfomsg`
const IFINFOMSG_LEN: usize = 16;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The attributes in `b`: (type without the nested/byte-order flags, payload).
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = u16_at(b, 0)? as usize;
        let ty = u16_at(b, 2)? & 0x3fff;
        if len < 4 || len > b.len() {
            return None;
        }
        let payload = &b[4..len];
        b = b.get(align4(len)..).unwrap_or(&[]);
        Some((ty, payload))
    })
}

/// A class handle as tc prints it: "1:10" (hex), "1:" for a major alone, "root".
pub fn handle_str(h: u32) -> String {
    let (maj, min) = (h >> 16, h & 0xffff);
    match h {
        TC_H_ROOT => "root".into(),
        0 => "none".into(),
        _ if maj == 0 => format!(":{min:x}"),
        _ if min == 0 => format!("{maj:x}:"),
        _ => format!("{maj:x}:{min:x}"),
    }
}

/// One `RTM_NEWTCLASS` message's payload (`struct tcmsg` and attributes).
pub fn parse_class(p: &[u8]) -> Option<Class> {
    let handle = u32_at(p, 8)?;
    let parent = u32_at(p, 12)?;
    let mut c = Class {
        handle: handle_str(handle),
        parent: (parent != TC_H_ROOT && parent != 0).then(|| handle_str(parent)),
        bytes: 0,
        packets: 0,
        drops: 0,
    };
    let mut have2 = false;
    for (ty, a) in attrs(p.get(TCMSG_LEN..)?) {
        match ty {
            TCA_STATS2 => {
                have2 = true;
                let mut pkt64 = None;
                for (ty, s) in attrs(a) {
                    match ty {
                        // struct gnet_stats_basic: u64 bytes, u32 packets
                        TCA_STATS_BASIC => {
                            c.bytes = u64_at(s, 0)?;
                            c.packets = u32_at(s, 8)? as u64;
                        }
                        TCA_STATS_PKT64 => pkt64 = u64_at(s, 0),
                        // struct gnet_stats_queue: qlen, backlog, drops, requeues, overlimits
                        TCA_STATS_QUEUE => c.drops = u32_at(s, 8)? as u64,
                        _ => {}
                    }
                }
                if let Some(n) = pkt64 {
                    c.packets = n;
                }
            }
            // struct tc_stats: u64 bytes, u32 packets, u32 drops, ...
            TCA_STATS if !have2 => {
                c.bytes = u64_at(a, 0)?;
                c.packets = u32_at(a, 8)? as u64;
                c.drops = u32_at(a, 12)? as u64;
            }
            _ => {}
        }
    }
    Some(c)
}

/// One `RTM_NEWLINK` message's payload: the device's 64-bit counters.
pub fn parse_link(p: &[u8]) -> Option<Link> {
    let mut stats32 = None;
    for (ty, a) in attrs(p.get(IFINFOMSG_LEN..)?) {
        // struct rtnl_link_stats64: rx_packets, tx_packets, rx_bytes, tx_bytes, rx_errors,
        // tx_errors, rx_dropped, tx_dropped, ...
        if ty == IFLA_STATS64 {
            let n = |i: usize| u64_at(a, i * 8);
            return Some(Link {
                rx_packets: n(0)?,
                tx_packets: n(1)?,
                rx_bytes: n(2)?,
                tx_bytes: n(3)?,
                dropped: n(6)? + n(7)?,
            });
        }
        if ty == IFLA_STATS {
            let n = |i: usize| u32_at(a, i * 4).map(u64::from);
            stats32 = Some(Link {
                rx_packets: n(0)?,
                tx_packets: n(1)?,
                rx_bytes: n(2)?,
                tx_bytes: n(3)?,
                dropped: n(6)? + n(7)?,
            });
        }
    }
    stats32
}

/// The index of device `name`, if there is one.
pub fn ifindex(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: a valid NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

/// An rtnetlink socket.
pub struct Rtnl {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl Rtnl {
    pub fn open() -> io::Result<Rtnl> {
        // SAFETY: plain socket(2); the descriptor is owned below.
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
        Ok(Rtnl {
            // SAFETY: a new descriptor nobody else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            seq: 0,
            buf: vec![0; 1 << 16],
        })
    }

    /// Send a request (`body` after the header) and collect the payloads of the replies of
    /// type `want`: until `NLMSG_DONE` for a dump, else the first one.
    fn request(&mut self, ty: u16, flags: u16, body: &[u8], want: u16) -> io::Result<Vec<Vec<u8>>> {
        self.seq = self.seq.wrapping_add(1);
        let mut msg = Vec::with_capacity(NLMSG_HDRLEN + body.len());
        msg.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&ty.to_ne_bytes());
        msg.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        // SAFETY: sockaddr_nl is plain data; all zeros is the kernel's address.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: msg and sa are valid for the lengths given.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let dump = flags & NLM_F_DUMP != 0;
        let mut out = Vec::new();
        loop {
            // SAFETY: buf is valid for its length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    libc::MSG_TRUNC,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let n = n as usize;
            if n > self.buf.len() {
                // Dump batches are at most 32 KB; a reply this large is not rtnetlink's.
                return Err(io::Error::other("netlink reply larger than 64 KB"));
            }
            let mut b = &self.buf[..n];
            while b.len() >= NLMSG_HDRLEN {
                let len = u32_at(b, 0).unwrap_or(0) as usize;
                let mty = u16_at(b, 4).unwrap_or(0);
                let seq = u32_at(b, 8).unwrap_or(0);
                if len < NLMSG_HDRLEN || len > b.len() {
                    return Err(io::Error::other("malformed netlink message"));
                }
                let payload = &b[NLMSG_HDRLEN..len];
                b = b.get(align4(len)..).unwrap_or(&[]);
                if seq != self.seq {
                    continue;
                }
                match mty {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let err = u32_at(payload, 0).unwrap_or(0) as i32;
                        if err != 0 {
                            return Err(io::Error::from_raw_os_error(-err));
                        }
                        if !dump {
                            return Ok(out);
                        }
                    }
                    t if t == want => {
                        out.push(payload.to_vec());
                        if !dump {
                            return Ok(out);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Every class of device `ifindex` with its counters.
    pub fn classes(&mut self, ifindex: u32) -> io::Result<Vec<Class>> {
        let mut tcm = [0u8; TCMSG_LEN];
        tcm[4..8].copy_from_slice(&(ifindex as i32).to_ne_bytes());
        let msgs = self.request(RTM_GETTCLASS, NLM_F_DUMP, &tcm, RTM_NEWTCLASS)?;
        Ok(msgs.iter().filter_map(|m| parse_class(m)).collect())
    }

    /// The counters of device `ifindex`.
    pub fn link(&mut self, ifindex: u32) -> io::Result<Link> {
        let mut ifi = [0u8; IFINFOMSG_LEN];
        ifi[4..8].copy_from_slice(&(ifindex as i32).to_ne_bytes());
        let msgs = self.request(RTM_GETLINK, 0, &ifi, RTM_NEWLINK)?;
        msgs.first()
            .and_then(|m| parse_link(m))
            .ok_or_else(|| io::Error::other("no statistics in the link message"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(ty: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(payload);
        v.resize(align4(v.len()), 0);
        v
    }

    fn tcmsg(handle: u32, parent: u32) -> Vec<u8> {
        let mut v = vec![0u8; TCMSG_LEN];
        v[4..8].copy_from_slice(&7i32.to_ne_bytes());
        v[8..12].copy_from_slice(&handle.to_ne_bytes());
        v[12..16].copy_from_slice(&parent.to_ne_bytes());
        v
    }

    #[test]
    fn handles() {
        assert_eq!(handle_str(0x0001_0010), "1:10");
        assert_eq!(handle_str(0x0001_0000), "1:");
        assert_eq!(handle_str(0xffff_fff1), "ffff:fff1");
        assert_eq!(handle_str(0x0000_0005), ":5");
        assert_eq!(handle_str(TC_H_ROOT), "root");
    }

    #[test]
    fn class_message() {
        // A class as htb dumps it: kind, options (skipped), stats2 with basic and queue, and
        // the old stats, which stats2 overrides.
        let mut basic = 129457u64.to_ne_bytes().to_vec();
        basic.extend_from_slice(&101u32.to_ne_bytes());
        basic.extend_from_slice(&[0; 4]);
        let mut queue = Vec::new();
        for v in [0u32, 0, 3, 0, 1] {
            queue.extend_from_slice(&v.to_ne_bytes());
        }
        let mut stats2 = attr(TCA_STATS_BASIC, &basic);
        stats2.extend(attr(TCA_STATS_QUEUE, &queue));
        stats2.extend(attr(5, &[1, 2, 3, 4, 5, 6, 7, 8]));
        let mut old = 1u64.to_ne_bytes().to_vec();
        old.extend_from_slice(&[2, 0, 0, 0, 9, 0, 0, 0]);
        let mut m = tcmsg(0x0001_0020, 0x0001_0001);
        m.extend(attr(1, b"htb\0"));
        m.extend(attr(2 | 0x8000, &attr(1, &[0; 8])));
        m.extend(attr(TCA_STATS2 | 0x8000, &stats2));
        m.extend(attr(TCA_STATS, &old));
        let c = parse_class(&m).unwrap();
        assert_eq!(
            c,
            Class {
                handle: "1:20".into(),
                parent: Some("1:1".into()),
                bytes: 129457,
                packets: 101,
                drops: 3,
            }
        );
        // Packets past 2^32 come as TCA_STATS_PKT64.
        let mut stats2 = attr(TCA_STATS_BASIC, &basic);
        stats2.extend(attr(TCA_STATS_PKT64, &(5u64 << 32).to_ne_bytes()));
        let mut m = tcmsg(0x0001_0001, TC_H_ROOT);
        m.extend(attr(TCA_STATS2, &stats2));
        let c = parse_class(&m).unwrap();
        assert_eq!((c.parent, c.packets), (None, 5u64 << 32));
        // Only the old stats.
        let mut m = tcmsg(0x0001_0001, TC_H_ROOT);
        m.extend(attr(TCA_STATS, &old));
        let c = parse_class(&m).unwrap();
        assert_eq!((c.bytes, c.packets, c.drops), (1, 2, 9));
        // Short or broken messages: nothing, or what could be read.
        assert!(parse_class(&[0; 10]).is_none());
        let mut m = tcmsg(0x0001_0001, TC_H_ROOT);
        m.extend_from_slice(&[200, 0, 7, 0, 1]);
        assert_eq!(parse_class(&m).unwrap().bytes, 0);
    }

    #[test]
    fn link_message() {
        let mut s64 = Vec::new();
        for v in [221u64, 220, 261981, 261900, 0, 0, 1, 2, 0, 0] {
            s64.extend_from_slice(&v.to_ne_bytes());
        }
        let mut m = vec![0u8; IFINFOMSG_LEN];
        m.extend(attr(3, b"imq0\0"));
        m.extend(attr(IFLA_STATS64, &s64));
        assert_eq!(
            parse_link(&m),
            Some(Link {
                rx_packets: 221,
                tx_packets: 220,
                rx_bytes: 261981,
                tx_bytes: 261900,
                dropped: 3,
            })
        );
        let mut m = vec![0u8; IFINFOMSG_LEN];
        m.extend(attr(
            IFLA_STATS,
            &[
                1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0,
                0, 0, 0, 0,
            ],
        ));
        assert_eq!(
            parse_link(&m).map(|l| (l.rx_bytes, l.dropped)),
            Some((3, 5))
        );
        assert_eq!(parse_link(&[0; 16]), None);
    }

    #[test]
    fn loopback_live() {
        // The host's own lo: the socket works and the counters are there.
        let Some(lo) = ifindex("lo") else { return };
        let mut nl = Rtnl::open().unwrap();
        nl.link(lo).unwrap();
        nl.classes(lo).unwrap();
        assert!(ifindex("no-such-dev0").is_none());
        assert!(nl.link(999_999).is_err());
    }
}
