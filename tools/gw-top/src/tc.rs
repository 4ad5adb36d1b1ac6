//! What gw-top takes from rtnetlink's answers: classes and their counters, the filters that
//! lead clients to them, and device counters. netlink-packet-route parses the messages; this
//! file only picks the fields, and is what both the live reads (`nl.rs`) and the tests use.

use netlink_packet_core::{DefaultNla, Nla};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::tc::{
    TcAttribute, TcFilterFlowerOption, TcFilterU32Option, TcMessage, TcOption, TcStats2,
};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const TC_H_ROOT: u32 = 0xffff_ffff;
/// `TCA_STATS_PKT64`: packets past 2^32, which the crate leaves undecoded.
const TCA_STATS_PKT64: u16 = 8;
/// `TCA_FLOWER_CLASSID`: netlink-packet-route 0.34 writes it but parses it as an unknown
/// attribute (its decoding is commented out there).
const TCA_FLOWER_CLASSID: u16 = 1;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;

/// One class and its counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Class {
    /// "1:10"
    pub handle: String,
    pub parent: Option<String>,
    pub bytes: u64,
    pub packets: u64,
    pub drops: u64,
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

/// The first `N` bytes of an attribute the crate left undecoded.
fn nla_bytes<const N: usize>(n: &DefaultNla) -> Option<[u8; N]> {
    let mut v = vec![0u8; n.value_len()];
    n.emit_value(&mut v);
    v.get(..N)?.try_into().ok()
}

fn nla_u32(n: &DefaultNla) -> Option<u32> {
    nla_bytes(n).map(u32::from_ne_bytes)
}

/// A class message (`RTM_NEWTCLASS`). The counters of `TCA_STATS2` win over the old
/// `TCA_STATS`, which has only 32-bit packets.
pub fn class(m: &TcMessage) -> Class {
    let handle = u32::from(m.header.handle);
    let parent = u32::from(m.header.parent);
    let mut c = Class {
        handle: handle_str(handle),
        parent: (parent != TC_H_ROOT && parent != 0).then(|| handle_str(parent)),
        bytes: 0,
        packets: 0,
        drops: 0,
    };
    let mut old = None;
    let mut have2 = false;
    for a in &m.attributes {
        match a {
            TcAttribute::Stats2(list) => {
                have2 = true;
                let mut pkt64 = None;
                for s in list {
                    match s {
                        TcStats2::Basic(b) => {
                            c.bytes = b.bytes;
                            c.packets = b.packets.into();
                        }
                        TcStats2::Queue(q) => c.drops = q.drops.into(),
                        TcStats2::Other(n) if n.kind() == TCA_STATS_PKT64 => {
                            pkt64 = nla_bytes(n).map(u64::from_ne_bytes)
                        }
                        _ => {}
                    }
                }
                if let Some(n) = pkt64 {
                    c.packets = n;
                }
            }
            TcAttribute::Stats(s) => old = Some(*s),
            _ => {}
        }
    }
    if let (false, Some(s)) = (have2, old) {
        c.bytes = s.bytes;
        c.packets = s.packets.into();
        c.drops = s.drops.into();
    }
    c
}

/// Which address of a packet names the client: the destination on the download device, the
/// source on the upload device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Src,
    Dst,
}

/// An address with a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.len == full {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.len)
        }
    }
}

/// A filter that sends a client's packets to a class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFilter {
    pub flowid: String,
    pub prefix: Prefix,
}

/// A filter message (`RTM_NEWTFILTER`) that classifies by the client's address (`dir`) into a
/// class. u32: keys at fixed offsets of the IPv4 header (src 12, dst 16) or the IPv6 header
/// (src 8..24, dst 24..40) as `match ip dst A/N` and `match ip6 dst A/N` make them, with other
/// keys (ports, protocol) allowed alongside; flower: its source or destination address keys.
/// Hash table heads, links to hash tables, filters with no address or a non-prefix mask: `None`.
pub fn client_filter(m: &TcMessage, dir: Dir) -> Option<ClientFilter> {
    // tcm_info: the priority above, the protocol (network byte order) below.
    let proto = u16::from_be((m.header.info & 0xffff) as u16);
    let mut kind = "";
    let mut opts: &[TcOption] = &[];
    for a in &m.attributes {
        match a {
            TcAttribute::Kind(k) => kind = k,
            TcAttribute::Options(o) => opts = o,
            _ => {}
        }
    }
    match kind {
        "u32" => u32_filter(opts, proto, dir),
        "flower" => flower_filter(opts, dir),
        _ => None,
    }
}

fn u32_filter(opts: &[TcOption], proto: u16, dir: Dir) -> Option<ClientFilter> {
    // The address's place in the network header and its length.
    let (start, len) = match (proto, dir) {
        (ETH_P_IP, Dir::Src) => (12, 4),
        (ETH_P_IP, Dir::Dst) => (16, 4),
        (ETH_P_IPV6, Dir::Src) => (8, 16),
        (ETH_P_IPV6, Dir::Dst) => (24, 16),
        _ => return None,
    };
    let mut flowid = None;
    let mut addr = [0u8; 16];
    let mut mask = [0u8; 16];
    let mut any = false;
    for o in opts {
        match o {
            TcOption::U32(TcFilterU32Option::ClassId(h)) => flowid = Some(handle_str((*h).into())),
            TcOption::U32(TcFilterU32Option::Selector(sel)) => {
                for key in &sel.keys {
                    // Keys relative to the transport header (nexthdr+) and negative offsets
                    // (the link-layer header) are never the address.
                    let Ok(off) = u32::try_from(key.off) else {
                        continue;
                    };
                    if key.offmask != 0 {
                        continue;
                    }
                    let bytes = key
                        .val
                        .to_be_bytes()
                        .into_iter()
                        .zip(key.mask.to_be_bytes());
                    for (i, (vb, mb)) in bytes.enumerate() {
                        let at = off + i as u32;
                        if mb != 0 && at >= start && at < start + len {
                            let j = (at - start) as usize;
                            addr[j] |= vb & mb;
                            mask[j] |= mb;
                            any = true;
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if !any {
        return None;
    }
    let plen = prefix_len(&mask[..len as usize])?;
    let addr = if len == 4 {
        IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(addr))
    };
    Some(ClientFilter {
        flowid: flowid?,
        prefix: Prefix { addr, len: plen },
    })
}

/// The length of a contiguous netmask; `None` if it has holes.
fn prefix_len(mask: &[u8]) -> Option<u8> {
    let mut n = 0u32;
    let mut ended = false;
    for &b in mask {
        if ended && b != 0 {
            return None;
        }
        if b != 0xff {
            if b.leading_ones() + b.trailing_zeros() != 8 {
                return None;
            }
            ended = true;
        }
        n += b.leading_ones();
    }
    Some(n as u8)
}

fn flower_filter(opts: &[TcOption], dir: Dir) -> Option<ClientFilter> {
    let mut flowid = None;
    let (mut addr, mut mask) = (None, None);
    for o in opts {
        let TcOption::Flower(f) = o else { continue };
        match (f, dir) {
            (TcFilterFlowerOption::ClassId(h), _) => flowid = Some(handle_str(*h)),
            (TcFilterFlowerOption::Other(n), _) if n.kind() == TCA_FLOWER_CLASSID => {
                flowid = nla_u32(n).map(handle_str)
            }
            (TcFilterFlowerOption::Ipv4Src(a), Dir::Src)
            | (TcFilterFlowerOption::Ipv4Dst(a), Dir::Dst) => addr = Some(IpAddr::V4(*a)),
            (TcFilterFlowerOption::Ipv6Src(a), Dir::Src)
            | (TcFilterFlowerOption::Ipv6Dst(a), Dir::Dst) => addr = Some(IpAddr::V6(*a)),
            (TcFilterFlowerOption::Ipv4SrcMask(m), Dir::Src)
            | (TcFilterFlowerOption::Ipv4DstMask(m), Dir::Dst) => {
                mask = Some(prefix_len(&m.octets()))
            }
            (TcFilterFlowerOption::Ipv6SrcMask(m), Dir::Src)
            | (TcFilterFlowerOption::Ipv6DstMask(m), Dir::Dst) => {
                mask = Some(prefix_len(&m.octets()))
            }
            _ => {}
        }
    }
    let addr = addr?;
    let len = match mask {
        Some(l) => l?,
        None if addr.is_ipv4() => 32,
        None => 128,
    };
    Some(ClientFilter {
        flowid: flowid?,
        prefix: Prefix { addr, len },
    })
}

/// A device's counters (`ip -s link show dev DEV`). On an imq device rx counts what entered
/// the qdisc and tx what left it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Link {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub dropped: u64,
}

/// A link message (`RTM_NEWLINK`): the 64-bit counters, else the 32-bit ones.
pub fn link(m: &LinkMessage) -> Option<Link> {
    let mut stats32 = None;
    for a in &m.attributes {
        match a {
            LinkAttribute::Stats64(s) => {
                return Some(Link {
                    rx_bytes: s.rx_bytes,
                    rx_packets: s.rx_packets,
                    tx_bytes: s.tx_bytes,
                    tx_packets: s.tx_packets,
                    dropped: s.rx_dropped + s.tx_dropped,
                })
            }
            LinkAttribute::Stats(s) => {
                stats32 = Some(Link {
                    rx_bytes: s.rx_bytes.into(),
                    rx_packets: s.rx_packets.into(),
                    tx_bytes: s.tx_bytes.into(),
                    tx_packets: s.tx_packets.into(),
                    dropped: u64::from(s.rx_dropped) + u64::from(s.tx_dropped),
                })
            }
            _ => {}
        }
    }
    stats32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn p(s: &str) -> Prefix {
        let (a, l) = s.split_once('/').unwrap();
        Prefix {
            addr: a.parse().unwrap(),
            len: l.parse().unwrap(),
        }
    }

    fn pairs(fs: &[ClientFilter]) -> Vec<(String, String)> {
        fs.iter()
            .map(|f| (f.flowid.clone(), f.prefix.to_string()))
            .collect()
    }

    fn want(w: &[(&str, &str)]) -> Vec<(String, String)> {
        w.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
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
    fn classes_from_the_vm() {
        let c = fixtures::classes("class-imq0.json");
        assert_eq!(c.len(), 4);
        let c20 = c.iter().find(|c| c.handle == "1:20").unwrap();
        assert_eq!(c20.bytes, 129457);
        assert_eq!(c20.packets, 101);
        assert_eq!(c20.parent.as_deref(), Some("1:1"));
        let root = c.iter().find(|c| c.handle == "1:1").unwrap();
        assert_eq!(root.parent, None);
        // The same figures as the plain output recorded at the same moment.
        let txt = fixtures::text("class-imq0.txt");
        for cl in &c {
            let want = format!(
                " Sent {} bytes {} pkt (dropped {},",
                cl.bytes, cl.packets, cl.drops
            );
            assert!(txt.contains(&want), "{want}");
        }
    }

    #[test]
    fn download_filters_from_the_vm() {
        // imq0: ip dst 10.0.1.2/32 -> 1:10, ip dst 10.0.1.3/32 -> 1:20,
        // ip6 dst 2001:db8:1::2/128 -> 1:10, ip dst 10.0.1.0/24 -> 1:99.
        let f = fixtures::filters("filter-imq0.json", Dir::Dst);
        let w = [
            ("1:10", "10.0.1.2"),
            ("1:20", "10.0.1.3"),
            ("1:10", "2001:db8:1::2"),
            ("1:99", "10.0.1.0/24"),
        ];
        assert_eq!(pairs(&f), want(&w));
        // Looking for sources on the download device finds nothing.
        assert!(fixtures::filters("filter-imq0.json", Dir::Src).is_empty());
    }

    #[test]
    fn upload_filters_from_the_vm() {
        // imq1: ip src 10.0.1.2/32 -> 1:10, ip src 10.0.1.3/32 -> 1:20,
        // ip6 src 2001:db8:1::3/128 -> 1:20, ip src 10.0.1.2/32 + ip dport 80 -> 1:10.
        let f = fixtures::filters("filter-imq1.json", Dir::Src);
        let w = [
            ("1:10", "10.0.1.2"),
            ("1:20", "10.0.1.3"),
            ("1:20", "2001:db8:1::3"),
            ("1:10", "10.0.1.2"),
        ];
        assert_eq!(pairs(&f), want(&w));
    }

    fn u32_json(proto: &str, keys: &[(&str, &str, i32, &str)]) -> String {
        let keys: Vec<String> = keys
            .iter()
            .map(|(v, m, off, om)| {
                format!(r#""match":{{"value":"{v}","mask":"{m}","offmask":"{om}","off":{off}}}"#)
            })
            .collect();
        format!(
            r#"[{{"protocol":"{proto}","kind":"u32","options":{{"fh":"800::800","flowid":"1:5",{}}}}}]"#,
            keys.join(",")
        )
    }

    #[test]
    fn u32_prefixes() {
        let one = |proto, keys: &[(&str, &str, i32, &str)], dir| {
            fixtures::filters_json(&u32_json(proto, keys), dir)
                .first()
                .map(|f| f.prefix)
        };
        assert_eq!(
            one("ip", &[("c0a80000", "ffff0000", 16, "")], Dir::Dst),
            Some(p("192.168.0.0/16"))
        );
        // Holes in the mask, a nexthdr-relative key, a key elsewhere, a link-layer offset:
        // no address.
        assert_eq!(
            one("ip", &[("c0a80001", "ff00ffff", 16, "")], Dir::Dst),
            None
        );
        assert_eq!(
            one("ip", &[("c0a80001", "ffffffff", 16, "nexthdr+")], Dir::Dst),
            None
        );
        assert_eq!(one("ip", &[("6", "ff0000", 8, "")], Dir::Dst), None);
        assert_eq!(
            one("ip", &[("c0a80001", "ffffffff", -4, "")], Dir::Dst),
            None
        );
        // An IPv6 /64: two words of the destination.
        assert_eq!(
            one(
                "ipv6",
                &[
                    ("20010db8", "ffffffff", 24, ""),
                    ("10000", "ffffffff", 28, "")
                ],
                Dir::Dst
            ),
            Some(p("2001:db8:1::/64"))
        );
        // A /56 ends inside a word.
        assert_eq!(
            one(
                "ipv6",
                &[
                    ("20010db8", "ffffffff", 8, ""),
                    ("120000", "ffffff00", 12, "")
                ],
                Dir::Src
            ),
            Some(p("2001:db8:12::/56"))
        );
        // Unknown protocols are not decoded.
        assert_eq!(
            one("all", &[("a000102", "ffffffff", 16, "")], Dir::Dst),
            None
        );
        // A link to a hash table has no flowid.
        let link = r#"[{"protocol":"ip","kind":"u32","options":{"fh":"800::800","link":"2:","match":{"value":"a000102","mask":"ffffffff","offmask":"","off":16}}}]"#;
        assert!(fixtures::filters_json(link, Dir::Dst).is_empty());
    }

    #[test]
    fn flower() {
        let v = r#"[{"protocol":"ip","kind":"flower","options":{"handle":1,"classid":"1:7","keys":{"eth_type":"ipv4","dst_ip":"10.0.1.0/24","src_ip":"10.9.9.9"}}},
            {"protocol":"ipv6","kind":"flower","options":{"classid":"1:8","keys":{"dst_ip":"2001:db8::/32"}}}]"#;
        let f = fixtures::filters_json(v, Dir::Dst);
        assert_eq!(
            pairs(&f),
            want(&[("1:7", "10.0.1.0/24"), ("1:8", "2001:db8::/32")])
        );
        let f = fixtures::filters_json(v, Dir::Src);
        assert_eq!(pairs(&f), want(&[("1:7", "10.9.9.9")]));
    }

    #[test]
    fn flower_from_the_vm() {
        // flower dst_ip 10.0.1.4 src_ip 10.9.0.0/16 classid 1:10,
        // flower dst_ip 2001:db8:5::/48 classid 1:20.
        let f = fixtures::filters("filter-flower.json", Dir::Dst);
        assert_eq!(
            pairs(&f),
            want(&[("1:10", "10.0.1.4"), ("1:20", "2001:db8:5::/48")])
        );
        let f = fixtures::filters("filter-flower.json", Dir::Src);
        assert_eq!(pairs(&f), want(&[("1:10", "10.9.0.0/16")]));
    }

    #[test]
    fn link_from_the_vm() {
        let l = fixtures::link("link-imq0.json");
        assert_eq!(
            l,
            Link {
                rx_bytes: 261981,
                rx_packets: 221,
                tx_bytes: 261981,
                tx_packets: 221,
                dropped: 0
            }
        );
    }

    /// The kernel's answers recorded in imq-gw-top, against what tc and ip printed at the same
    /// moment (traffic over, counters still).
    #[test]
    fn kernel_bytes_from_the_vm() {
        use netlink_packet_route::RouteNetlinkMessage;
        use serde_json::Value;
        for dev in ["imq0", "imq1"] {
            let json = |kind: &str| -> Vec<Value> {
                serde_json::from_str(&fixtures::text(&format!("nl-{kind}-{dev}.json"))).unwrap()
            };
            let mut got =
                crate::nl::classes_of(&fixtures::recorded(&format!("nl-class-{dev}.bin")));
            let mut tc: Vec<Class> = json("class")
                .iter()
                .map(|c| Class {
                    handle: c["handle"].as_str().unwrap().into(),
                    parent: c["parent"].as_str().map(Into::into),
                    bytes: c["stats"]["bytes"].as_u64().unwrap(),
                    packets: c["stats"]["packets"].as_u64().unwrap(),
                    drops: c["stats"]["drops"].as_u64().unwrap(),
                })
                .collect();
            got.sort_by(|a, b| a.handle.cmp(&b.handle));
            tc.sort_by(|a, b| a.handle.cmp(&b.handle));
            assert_eq!(got.len(), 4, "{dev}");
            assert_eq!(got, tc, "{dev}");

            let link = crate::nl::device_of(&fixtures::recorded(&format!("nl-link-{dev}.bin")))
                .unwrap()
                .unwrap();
            let ip = &json("link")[0];
            let n = |d: &str, k: &str| ip["stats64"][d][k].as_u64().unwrap();
            assert_eq!(link.0 as u64, ip["ifindex"].as_u64().unwrap());
            assert_eq!(
                link.1,
                Link {
                    rx_bytes: n("rx", "bytes"),
                    rx_packets: n("rx", "packets"),
                    tx_bytes: n("tx", "bytes"),
                    tx_packets: n("tx", "packets"),
                    dropped: n("rx", "dropped") + n("tx", "dropped"),
                }
            );

            // The filters of the test's setup: each client's IPv4 and IPv6 address to its
            // class, destinations on imq0, sources on imq1; tc saw as many.
            let answers = fixtures::recorded(&format!("nl-filter-{dev}.bin"));
            let dir = if dev == "imq0" { Dir::Dst } else { Dir::Src };
            let w = [
                ("1:10", "10.0.1.2"),
                ("1:20", "10.0.3.2"),
                ("1:10", "2001:db8:1::2"),
                ("1:20", "2001:db8:3::2"),
            ];
            assert_eq!(
                pairs(&crate::nl::filters_of(&answers, dir)),
                want(&w),
                "{dev}"
            );
            let other = if dir == Dir::Dst { Dir::Src } else { Dir::Dst };
            assert!(crate::nl::filters_of(&answers, other).is_empty());
            let filters = answers
                .iter()
                .filter(|a| matches!(a, RouteNetlinkMessage::NewTrafficFilter(_)))
                .count();
            assert_eq!(filters, json("filter").len(), "{dev}");
        }
    }
}
