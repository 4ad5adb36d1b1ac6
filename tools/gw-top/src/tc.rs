//! Classes, the filters that lead clients to them (`tc -j filter show`, decoded here), and
//! device counters.

use crate::json::Value;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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

/// `tc -j -s class show dev DEV` as recorded in the VM, for the tests (gw-top reads the same
/// counters over netlink: `nl.rs`).
#[cfg(test)]
pub fn parse_classes(v: &Value) -> Result<Vec<Class>, String> {
    let list = v.as_array().ok_or("tc class output is not a JSON list")?;
    let mut out = Vec::new();
    for c in list {
        let Some(handle) = c.get("handle").and_then(Value::as_str) else {
            continue;
        };
        let stats = c.get("stats");
        let stat = |name| stats.and_then(|s| s.get(name)).and_then(Value::as_u64);
        out.push(Class {
            handle: handle.to_string(),
            parent: c.get("parent").and_then(Value::as_str).map(str::to_string),
            bytes: stat("bytes").unwrap_or(0),
            packets: stat("packets").unwrap_or(0),
            drops: stat("drops").unwrap_or(0),
        });
    }
    Ok(out)
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

/// `tc -j filter show dev DEV`: the filters that classify by the client's address (`dir`) into
/// a class. u32: keys at fixed offsets of the IPv4 header (src 12, dst 16) or the IPv6 header
/// (src 8..24, dst 24..40) as `match ip dst A/N` and `match ip6 dst A/N` make them, with other
/// keys (ports, protocol) allowed alongside; flower: `src_ip`/`dst_ip`. Filters that only link
/// to hash tables, match no address or a non-prefix mask are left out.
pub fn parse_filters(v: &Value, dir: Dir) -> Result<Vec<ClientFilter>, String> {
    let list = v.as_array().ok_or("tc filter output is not a JSON list")?;
    let mut out = Vec::new();
    for f in list {
        let Some(opts) = f.get("options") else {
            continue;
        };
        let proto = f.get("protocol").and_then(Value::as_str).unwrap_or("");
        let found = match f.get("kind").and_then(Value::as_str) {
            Some("u32") => u32_filter(opts, proto, dir),
            Some("flower") => flower_filter(opts, dir),
            _ => None,
        };
        if let Some(cf) = found {
            out.push(cf);
        }
    }
    Ok(out)
}

fn u32_filter(opts: &Value, proto: &str, dir: Dir) -> Option<ClientFilter> {
    let flowid = opts
        .get("flowid")
        .or_else(|| opts.get("classid"))
        .and_then(Value::as_str)?;
    // The address's place in the network header and its length.
    let (start, len) = match (proto, dir) {
        ("ip", Dir::Src) => (12, 4),
        ("ip", Dir::Dst) => (16, 4),
        ("ipv6", Dir::Src) => (8, 16),
        ("ipv6", Dir::Dst) => (24, 16),
        _ => return None,
    };
    let mut addr = [0u8; 16];
    let mut mask = [0u8; 16];
    let mut any = false;
    for key in opts.get_all("match") {
        // "nexthdr+" keys are relative to the transport header.
        if !key
            .get("offmask")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            continue;
        }
        let hex = |name| {
            key.get(name)
                .and_then(Value::as_str)
                .and_then(|h| u32::from_str_radix(h, 16).ok())
        };
        // Negative offsets (the link-layer header) are never the address.
        let (Some(off), Some(val), Some(m)) = (
            key.get("off").and_then(Value::as_u64),
            hex("value"),
            hex("mask"),
        ) else {
            continue;
        };
        for (i, (vb, mb)) in val
            .to_be_bytes()
            .into_iter()
            .zip(m.to_be_bytes())
            .enumerate()
        {
            let at = off + i as u64;
            if mb != 0 && at >= start && at < start + len {
                let j = (at - start) as usize;
                addr[j] |= vb & mb;
                mask[j] |= mb;
                any = true;
            }
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
        flowid: flowid.to_string(),
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

fn flower_filter(opts: &Value, dir: Dir) -> Option<ClientFilter> {
    let flowid = opts.get("classid").and_then(Value::as_str)?;
    let name = if dir == Dir::Src { "src_ip" } else { "dst_ip" };
    let text = opts.get("keys")?.get(name)?.as_str()?;
    let (a, l) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let addr: IpAddr = a.parse().ok()?;
    let full = if addr.is_ipv4() { 32 } else { 128 };
    let len = match l {
        None => full,
        Some(l) => match l.parse::<u8>() {
            Ok(n) if n <= full => n,
            // A netmask in dotted or colon form.
            _ => match l.parse::<IpAddr>().ok()? {
                IpAddr::V4(m) => prefix_len(&m.octets())?,
                IpAddr::V6(m) => prefix_len(&m.octets())?,
            },
        },
    };
    Some(ClientFilter {
        flowid: flowid.to_string(),
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

/// `ip -s -j link show dev DEV` as recorded in the VM, for the tests.
#[cfg(test)]
pub fn parse_link(v: &Value) -> Result<Link, String> {
    let dev = v
        .as_array()
        .and_then(|a| a.first())
        .ok_or("ip link output is not a JSON list with a device")?;
    let stats = dev
        .get("stats64")
        .or_else(|| dev.get("stats"))
        .ok_or("ip link output has no statistics (ip -s)")?;
    let n = |dir: &str, name: &str| {
        stats
            .get(dir)
            .and_then(|d| d.get(name))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    Ok(Link {
        rx_bytes: n("rx", "bytes"),
        rx_packets: n("rx", "packets"),
        tx_bytes: n("tx", "bytes"),
        tx_packets: n("tx", "packets"),
        dropped: n("rx", "dropped") + n("tx", "dropped"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    fn sample(name: &str) -> Value {
        let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
        parse(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

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

    #[test]
    fn classes_from_the_vm() {
        let c = parse_classes(&sample("class-imq0.json")).unwrap();
        assert_eq!(c.len(), 4);
        let c20 = c.iter().find(|c| c.handle == "1:20").unwrap();
        assert_eq!(c20.bytes, 129457);
        assert_eq!(c20.packets, 101);
        assert_eq!(c20.parent.as_deref(), Some("1:1"));
        let root = c.iter().find(|c| c.handle == "1:1").unwrap();
        assert_eq!(root.parent, None);
        // The same figures as the plain output recorded at the same moment.
        let txt = std::fs::read_to_string(format!(
            "{}/testdata/class-imq0.txt",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
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
        let f = parse_filters(&sample("filter-imq0.json"), Dir::Dst).unwrap();
        let want = [
            ("1:10", "10.0.1.2"),
            ("1:20", "10.0.1.3"),
            ("1:10", "2001:db8:1::2"),
            ("1:99", "10.0.1.0/24"),
        ];
        assert_eq!(pairs(&f), want.map(|(a, b)| (a.to_string(), b.to_string())));
        // Looking for sources on the download device finds nothing.
        assert!(parse_filters(&sample("filter-imq0.json"), Dir::Src)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn upload_filters_from_the_vm() {
        // imq1: ip src 10.0.1.2/32 -> 1:10, ip src 10.0.1.3/32 -> 1:20,
        // ip6 src 2001:db8:1::3/128 -> 1:20, ip src 10.0.1.2/32 + ip dport 80 -> 1:10.
        let f = parse_filters(&sample("filter-imq1.json"), Dir::Src).unwrap();
        let want = [
            ("1:10", "10.0.1.2"),
            ("1:20", "10.0.1.3"),
            ("1:20", "2001:db8:1::3"),
            ("1:10", "10.0.1.2"),
        ];
        assert_eq!(pairs(&f), want.map(|(a, b)| (a.to_string(), b.to_string())));
    }

    fn u32_json(proto: &str, keys: &[(&str, &str, u64, &str)]) -> Value {
        let keys: Vec<String> = keys
            .iter()
            .map(|(v, m, off, om)| {
                format!(r#""match":{{"value":"{v}","mask":"{m}","offmask":"{om}","off":{off}}}"#)
            })
            .collect();
        parse(&format!(
            r#"[{{"protocol":"{proto}","kind":"u32","options":{{"fh":"800::800","flowid":"1:5",{}}}}}]"#,
            keys.join(",")
        ))
        .unwrap()
    }

    #[test]
    fn u32_prefixes() {
        let one = |proto, keys: &[(&str, &str, u64, &str)], dir| {
            parse_filters(&u32_json(proto, keys), dir)
                .unwrap()
                .first()
                .map(|f| f.prefix)
        };
        assert_eq!(
            one("ip", &[("c0a80000", "ffff0000", 16, "")], Dir::Dst),
            Some(p("192.168.0.0/16"))
        );
        // Holes in the mask, a nexthdr-relative key, a key elsewhere: no address.
        assert_eq!(
            one("ip", &[("c0a80001", "ff00ffff", 16, "")], Dir::Dst),
            None
        );
        assert_eq!(
            one("ip", &[("c0a80001", "ffffffff", 16, "nexthdr+")], Dir::Dst),
            None
        );
        assert_eq!(one("ip", &[("6", "ff0000", 8, "")], Dir::Dst), None);
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
        let link = parse(r#"[{"protocol":"ip","kind":"u32","options":{"fh":"800::800","link":"2:","match":{"value":"a000102","mask":"ffffffff","offmask":"","off":16}}}]"#).unwrap();
        assert!(parse_filters(&link, Dir::Dst).unwrap().is_empty());
    }

    #[test]
    fn flower() {
        let v = parse(r#"[{"protocol":"ip","kind":"flower","options":{"handle":1,"classid":"1:7","keys":{"eth_type":"ipv4","dst_ip":"10.0.1.0/24","src_ip":"10.9.9.9"}}},
            {"protocol":"ipv6","kind":"flower","options":{"classid":"1:8","keys":{"dst_ip":"2001:db8::/ffff:ffff::"}}}]"#).unwrap();
        let f = parse_filters(&v, Dir::Dst).unwrap();
        assert_eq!(
            pairs(&f),
            [
                ("1:7".to_string(), "10.0.1.0/24".to_string()),
                ("1:8".to_string(), "2001:db8::/32".to_string())
            ]
        );
        let f = parse_filters(&v, Dir::Src).unwrap();
        assert_eq!(pairs(&f), [("1:7".to_string(), "10.9.9.9".to_string())]);
    }

    #[test]
    fn flower_from_the_vm() {
        // flower dst_ip 10.0.1.4 src_ip 10.9.0.0/16 classid 1:10,
        // flower dst_ip 2001:db8:5::/48 classid 1:20.
        let v = sample("filter-flower.json");
        let f = parse_filters(&v, Dir::Dst).unwrap();
        assert_eq!(
            pairs(&f),
            [
                ("1:10".to_string(), "10.0.1.4".to_string()),
                ("1:20".to_string(), "2001:db8:5::/48".to_string())
            ]
        );
        let f = parse_filters(&v, Dir::Src).unwrap();
        assert_eq!(pairs(&f), [("1:10".to_string(), "10.9.0.0/16".to_string())]);
    }

    #[test]
    fn link_from_the_vm() {
        let l = parse_link(&sample("link-imq0.json")).unwrap();
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
        assert!(parse_link(&parse("[]").unwrap()).is_err());
    }

    #[test]
    fn not_lists() {
        assert!(parse_classes(&parse("{}").unwrap()).is_err());
        assert!(parse_filters(&parse("3").unwrap(), Dir::Dst).is_err());
    }
}
