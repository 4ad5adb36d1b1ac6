//! The reads, over rtnetlink: a device by name (`RTM_GETLINK`, with its counters), the class
//! dump (`RTM_GETTCLASS`, what `tc -s class show` prints) and the filter dump at one parent
//! (`RTM_GETTFILTER`, what `tc filter show` prints). netlink-sys is the socket,
//! netlink-packet-route the messages.
//!
//! A rate is only as good as the moment its counters were read is known: a netlink request
//! takes microseconds, where a `tc` process on a loaded machine can take half a second to run
//! and nobody can say when in that time it read them.

use crate::tc::{self, Class, ClientFilter, Dir, Link};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::tc::TcMessage;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;

const ENODEV: i32 = 19;

/// The messages of one datagram that answer request `seq`, in order. An error answer is the
/// error; `Ok(None)` at the end of a dump (`NLMSG_DONE`) or for an acknowledgement.
pub fn answers(mut buf: &[u8], seq: u32) -> io::Result<Vec<Option<RouteNetlinkMessage>>> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(buf)
            .map_err(|e| io::Error::other(format!("undecodable netlink message: {e}")))?;
        let len = m.header.length as usize;
        if len < 16 {
            return Err(io::Error::other("malformed netlink message"));
        }
        buf = buf.get((len + 3) & !3..).unwrap_or(&[]);
        if m.header.sequence_number != seq {
            continue;
        }
        match m.payload {
            NetlinkPayload::InnerMessage(r) => out.push(Some(r)),
            NetlinkPayload::Done(_) => out.push(None),
            NetlinkPayload::Error(e) => match e.code {
                Some(code) => return Err(io::Error::from_raw_os_error(-code.get())),
                None => out.push(None),
            },
            _ => {}
        }
    }
    Ok(out)
}

/// The device in a link answer: its index and counters.
pub fn device_of(answers: &[RouteNetlinkMessage]) -> io::Result<Option<(u32, Link)>> {
    for a in answers {
        if let RouteNetlinkMessage::NewLink(l) = a {
            let stats =
                tc::link(l).ok_or_else(|| io::Error::other("no statistics in the link message"))?;
            return Ok(Some((l.header.index, stats)));
        }
    }
    Ok(None)
}

/// The classes of a class dump.
pub fn classes_of(answers: &[RouteNetlinkMessage]) -> Vec<Class> {
    answers
        .iter()
        .filter_map(|a| match a {
            RouteNetlinkMessage::NewTrafficClass(m) => Some(tc::class(m)),
            _ => None,
        })
        .collect()
}

/// The address filters of a filter dump.
pub fn filters_of(answers: &[RouteNetlinkMessage], dir: Dir) -> Vec<ClientFilter> {
    answers
        .iter()
        .filter_map(|a| match a {
            RouteNetlinkMessage::NewTrafficFilter(m) => tc::client_filter(m, dir),
            _ => None,
        })
        .collect()
}

/// An rtnetlink socket.
pub struct Rtnl {
    sock: Socket,
    seq: u32,
}

impl Rtnl {
    pub fn open() -> io::Result<Rtnl> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Rtnl { sock, seq: 0 })
    }

    /// Send a request and collect the answers: until the end of a dump, else the first one.
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        dump: bool,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | if dump { NLM_F_DUMP } else { 0 };
        header.sequence_number = self.seq;
        let mut m = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        m.finalize();
        let mut buf = vec![0; m.buffer_len()];
        m.serialize(&mut buf);
        self.sock.send(&buf, 0)?;
        let mut out = Vec::new();
        loop {
            // A whole datagram, whatever its size (dump batches are up to 32 KB).
            let (buf, _) = self.sock.recv_from_full()?;
            for a in answers(&buf, self.seq)? {
                match a {
                    Some(r) => out.push(r),
                    None => return Ok(out),
                }
                if !dump {
                    return Ok(out);
                }
            }
        }
    }

    /// Device `name`: its index and counters; `None` if there is no such device.
    pub fn device(&mut self, name: &str) -> io::Result<Option<(u32, Link)>> {
        let mut req = LinkMessage::default();
        req.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::GetLink(req), false) {
            Err(e) if e.raw_os_error() == Some(ENODEV) => Ok(None),
            r => device_of(&r?),
        }
    }

    /// Every class of device `ifindex` with its counters.
    pub fn classes(&mut self, ifindex: u32) -> io::Result<Vec<Class>> {
        let req = TcMessage::with_index(ifindex as i32);
        Ok(classes_of(&self.request(
            RouteNetlinkMessage::GetTrafficClass(req),
            true,
        )?))
    }

    /// The address filters of device `ifindex` attached at `parent` (0: the root qdisc).
    pub fn filters(
        &mut self,
        ifindex: u32,
        parent: u32,
        dir: Dir,
    ) -> io::Result<Vec<ClientFilter>> {
        let mut req = TcMessage::with_index(ifindex as i32);
        req.header.parent = parent.into();
        let answers = self.request(RouteNetlinkMessage::GetTrafficFilter(req), true)?;
        Ok(filters_of(&answers, dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTM_NEWLINK: u16 = 16;
    const RTM_NEWTCLASS: u16 = 40;
    const TCA_STATS: u16 = 3;
    const TCA_STATS2: u16 = 7;
    const IFLA_STATS: u16 = 7;
    const IFLA_STATS64: u16 = 23;

    /// Wire bytes written out by hand, as the kernel lays them: the crate's own emitter is
    /// not the judge of its parser.
    fn attr(ty: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(payload);
        v.resize((v.len() + 3) & !3, 0);
        v
    }

    fn nlmsg(ty: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(&2u16.to_ne_bytes());
        v.extend_from_slice(&seq.to_ne_bytes());
        v.extend_from_slice(&0u32.to_ne_bytes());
        v.extend_from_slice(payload);
        v
    }

    fn tcmsg(handle: u32, parent: u32) -> Vec<u8> {
        let mut v = vec![0u8; 20];
        v[4..8].copy_from_slice(&7i32.to_ne_bytes());
        v[8..12].copy_from_slice(&handle.to_ne_bytes());
        v[12..16].copy_from_slice(&parent.to_ne_bytes());
        v
    }

    fn one_class(payload: &[u8]) -> Class {
        let a = answers(&nlmsg(RTM_NEWTCLASS, 1, payload), 1).unwrap();
        let a: Vec<_> = a.into_iter().flatten().collect();
        let c = classes_of(&a);
        assert_eq!(c.len(), 1);
        c[0].clone()
    }

    #[test]
    fn class_message() {
        // A class as htb dumps it: kind, options, stats2 with basic and queue, and the old
        // stats, which stats2 overrides.
        let mut basic = 129457u64.to_ne_bytes().to_vec();
        basic.extend_from_slice(&101u32.to_ne_bytes());
        basic.extend_from_slice(&[0; 4]);
        let mut queue = Vec::new();
        for v in [0u32, 0, 3, 0, 1] {
            queue.extend_from_slice(&v.to_ne_bytes());
        }
        let mut stats2 = attr(1, &basic);
        stats2.extend(attr(3, &queue));
        let mut old = 1u64.to_ne_bytes().to_vec();
        old.extend_from_slice(&[2, 0, 0, 0, 9, 0, 0, 0]);
        old.resize(40, 0);
        let mut m = tcmsg(0x0001_0020, 0x0001_0001);
        m.extend(attr(1, b"htb\0"));
        m.extend(attr(TCA_STATS2 | 0x8000, &stats2));
        m.extend(attr(TCA_STATS, &old));
        assert_eq!(
            one_class(&m),
            Class {
                handle: "1:20".into(),
                parent: Some("1:1".into()),
                bytes: 129457,
                packets: 101,
                drops: 3,
            }
        );
        // Packets past 2^32 come as TCA_STATS_PKT64.
        let mut stats2 = attr(1, &basic);
        stats2.extend(attr(8, &(5u64 << 32).to_ne_bytes()));
        let mut m = tcmsg(0x0001_0001, tc::TC_H_ROOT);
        m.extend(attr(1, b"htb\0"));
        m.extend(attr(TCA_STATS2, &stats2));
        let c = one_class(&m);
        assert_eq!((c.parent, c.packets), (None, 5u64 << 32));
        // Only the old stats.
        let mut m = tcmsg(0x0001_0001, tc::TC_H_ROOT);
        m.extend(attr(TCA_STATS, &old));
        let c = one_class(&m);
        assert_eq!((c.bytes, c.packets, c.drops), (1, 2, 9));
    }

    #[test]
    fn link_message() {
        let mut s64 = Vec::new();
        for v in [221u64, 220, 261981, 261900, 0, 0, 1, 2, 0, 0] {
            s64.extend_from_slice(&v.to_ne_bytes());
        }
        s64.resize(25 * 8, 0);
        let mut m = vec![0u8; 16];
        m[4..8].copy_from_slice(&5u32.to_ne_bytes());
        m.extend(attr(3, b"imq0\0"));
        m.extend(attr(IFLA_STATS64, &s64));
        let a: Vec<_> = answers(&nlmsg(RTM_NEWLINK, 3, &m), 3)
            .unwrap()
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(
            device_of(&a).unwrap(),
            Some((
                5,
                Link {
                    rx_packets: 221,
                    tx_packets: 220,
                    rx_bytes: 261981,
                    tx_bytes: 261900,
                    dropped: 3,
                }
            ))
        );
        // Only the 32-bit counters.
        let mut s32 = Vec::new();
        for v in [1u32, 2, 3, 4, 0, 0, 5, 0] {
            s32.extend_from_slice(&v.to_ne_bytes());
        }
        s32.resize(24 * 4, 0);
        let mut m = vec![0u8; 16];
        m.extend(attr(IFLA_STATS, &s32));
        let a: Vec<_> = answers(&nlmsg(RTM_NEWLINK, 3, &m), 3)
            .unwrap()
            .into_iter()
            .flatten()
            .collect();
        let (_, l) = device_of(&a).unwrap().unwrap();
        assert_eq!((l.rx_bytes, l.dropped), (3, 5));
        // No counters at all is an error.
        let a: Vec<_> = answers(&nlmsg(RTM_NEWLINK, 3, &[0; 16]), 3)
            .unwrap()
            .into_iter()
            .flatten()
            .collect();
        assert!(device_of(&a).is_err());
    }

    #[test]
    fn filter_messages() {
        // u32: `match ip dst 10.0.1.2/32 flowid 1:10`, priority 1, protocol ip.
        let mut m = tcmsg(0x0800_0800, 0x0001_0000);
        m[16..20].copy_from_slice(&(1u32 << 16 | u32::from(0x0800u16.to_be())).to_ne_bytes());
        m.extend(attr(1, b"u32\0"));
        let mut sel = vec![1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        sel.extend_from_slice(&0xffff_ffffu32.to_be_bytes());
        sel.extend_from_slice(&0x0a00_0102u32.to_be_bytes());
        sel.extend_from_slice(&16i32.to_ne_bytes());
        sel.extend_from_slice(&0i32.to_ne_bytes());
        let mut opts = attr(1, &0x0001_0010u32.to_ne_bytes());
        opts.extend(attr(5, &sel));
        m.extend(attr(2 | 0x8000, &opts));
        // flower: `dst_ip 10.0.1.0/24 classid 1:20`, protocol ip.
        let mut f = tcmsg(1, 0x0001_0000);
        f[16..20].copy_from_slice(&(2u32 << 16 | u32::from(0x0800u16.to_be())).to_ne_bytes());
        f.extend(attr(1, b"flower\0"));
        let mut opts = attr(1, &0x0001_0020u32.to_ne_bytes());
        opts.extend(attr(12, &[10, 0, 1, 0]));
        opts.extend(attr(13, &[255, 255, 255, 0]));
        f.extend(attr(2 | 0x8000, &opts));
        let mut b = nlmsg(44, 9, &m);
        b.extend(nlmsg(44, 9, &f));
        let a: Vec<_> = answers(&b, 9).unwrap().into_iter().flatten().collect();
        let got: Vec<String> = filters_of(&a, Dir::Dst)
            .iter()
            .map(|f| format!("{} {}", f.flowid, f.prefix))
            .collect();
        assert_eq!(got, ["1:10 10.0.1.2", "1:20 10.0.1.0/24"]);
        assert!(filters_of(&a, Dir::Src).is_empty());
    }

    #[test]
    fn errors_and_other_requests() {
        // NLMSG_ERROR with -ENODEV, after an answer to another request that is skipped.
        let mut err = (-19i32).to_ne_bytes().to_vec();
        err.extend(nlmsg(18, 4, &[]));
        let mut b = nlmsg(RTM_NEWLINK, 3, &[0; 16]);
        b.extend(nlmsg(2, 4, &err));
        let e = answers(&b, 4).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(19));
        // An acknowledgement and the end of a dump are `None`.
        let mut ack = 0i32.to_ne_bytes().to_vec();
        ack.extend(nlmsg(18, 4, &[]));
        let mut b = nlmsg(2, 4, &ack);
        b.extend(nlmsg(3, 4, &0i32.to_ne_bytes()));
        assert_eq!(answers(&b, 4).unwrap().len(), 2);
        assert!(answers(&b, 4).unwrap().iter().all(Option::is_none));
        // A message longer than the datagram is an error, not a panic.
        let mut b = nlmsg(RTM_NEWTCLASS, 1, &tcmsg(1, 2));
        b[0] = 200;
        assert!(answers(&b, 1).is_err());
    }

    #[test]
    fn loopback_live() {
        // The host's own lo: the socket works, the counters are there, a class dump of a
        // device without classes and a filter dump are empty, an absent device is `None`.
        let mut nl = Rtnl::open().unwrap();
        let Some((lo, _)) = nl.device("lo").unwrap() else {
            return;
        };
        assert!(lo > 0);
        nl.classes(lo).unwrap();
        nl.filters(lo, 0, Dir::Dst).unwrap();
        assert!(nl.device("no-such-dev0").unwrap().is_none());
        assert!(nl.classes(999_999).unwrap().is_empty());
    }
}
