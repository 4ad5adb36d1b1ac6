//! Test fixtures, decoded by the code gw-top runs on the live socket (`nl::answers`,
//! `nl::*_of`, `tc.rs`): the kernel's own answers recorded by imq-gw-top (testdata/nl-*.bin),
//! and older recordings of what `tc -j -s class show`, `tc -j filter show` and
//! `ip -s -j link show` printed in the VM (testdata/*.json, with flower, prefix and port filters
//! the recording lacks), turned back into the rtnetlink datagrams the kernel sent.

use crate::nl;
use crate::tc::{Class, ClientFilter, Dir, Link, TC_H_ROOT};
use netlink_packet_core::{DoneMessage, NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::link::{LinkAttribute, LinkMessage, Stats64};
use netlink_packet_route::tc::{
    TcAttribute, TcFilterFlowerOption, TcFilterU32Option, TcMessage, TcOption, TcStats, TcStats2,
    TcStatsBasic, TcStatsQueue, TcU32Key, TcU32Selector,
};
use netlink_packet_route::RouteNetlinkMessage;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::net::IpAddr;

const SEQ: u32 = 7;

pub fn text(name: &str) -> String {
    let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// One datagram holding `msgs`, then the end of the dump: the bytes a socket would read.
pub fn datagram(msgs: Vec<RouteNetlinkMessage>) -> Vec<u8> {
    let mut out = Vec::new();
    let payloads = msgs
        .into_iter()
        .map(NetlinkPayload::from)
        .chain([NetlinkPayload::Done(DoneMessage::default())]);
    for p in payloads {
        let mut h = NetlinkHeader::default();
        h.sequence_number = SEQ;
        let mut m = NetlinkMessage::new(h, p);
        m.finalize();
        let mut b = vec![0; m.buffer_len()];
        m.serialize(&mut b);
        out.extend(b);
    }
    out
}

/// A datagram as gw-top decodes it.
pub fn answers(bytes: &[u8]) -> Vec<RouteNetlinkMessage> {
    nl::answers(bytes, SEQ)
        .unwrap()
        .into_iter()
        .flatten()
        .collect()
}

fn handle(s: &str) -> u32 {
    let (maj, min) = s.split_once(':').unwrap();
    let min = if min.is_empty() {
        0
    } else {
        u32::from_str_radix(min, 16).unwrap()
    };
    u32::from_str_radix(maj, 16).unwrap() << 16 | min
}

/// `class-DEV.json` as a class dump, decoded.
pub fn classes(name: &str) -> Vec<Class> {
    let v: Vec<Value> = serde_json::from_str(&text(name)).unwrap();
    let msgs = v.iter().map(|c| {
        let mut m = TcMessage::with_index(2);
        m.header.handle = handle(c["handle"].as_str().unwrap()).into();
        m.header.parent = c["parent"].as_str().map_or(TC_H_ROOT, handle).into();
        let n = |k: &str| c["stats"][k].as_u64().unwrap_or(0);
        let mut basic = TcStatsBasic::default();
        basic.bytes = n("bytes");
        basic.packets = n("packets") as u32;
        let mut queue = TcStatsQueue::default();
        queue.drops = n("drops") as u32;
        // The kernel sends the old TCA_STATS after TCA_STATS2, with the same counters.
        let mut old = TcStats::default();
        (old.bytes, old.packets, old.drops) = (basic.bytes, basic.packets, queue.drops);
        m.attributes = vec![
            TcAttribute::Kind(c["class"].as_str().unwrap().into()),
            TcAttribute::Stats2(vec![TcStats2::Basic(basic), TcStats2::Queue(queue)]),
            TcAttribute::Stats(old),
        ];
        RouteNetlinkMessage::NewTrafficClass(m)
    });
    nl::classes_of(&answers(&datagram(msgs.collect())))
}

/// `link-DEV.json` as a link answer, decoded.
pub fn link(name: &str) -> Link {
    let v: Vec<Value> = serde_json::from_str(&text(name)).unwrap();
    let d = &v[0];
    let n = |dir: &str, k: &str| d["stats64"][dir][k].as_u64().unwrap();
    let mut s = Stats64::default();
    (s.rx_bytes, s.rx_packets, s.rx_dropped) =
        (n("rx", "bytes"), n("rx", "packets"), n("rx", "dropped"));
    (s.tx_bytes, s.tx_packets, s.tx_dropped) =
        (n("tx", "bytes"), n("tx", "packets"), n("tx", "dropped"));
    let mut m = LinkMessage::default();
    m.header.index = d["ifindex"].as_u64().unwrap() as u32;
    m.attributes = vec![
        LinkAttribute::IfName(d["ifname"].as_str().unwrap().into()),
        LinkAttribute::Stats64(s),
    ];
    let got = nl::device_of(&answers(&datagram(vec![RouteNetlinkMessage::NewLink(m)])));
    got.unwrap().unwrap().1
}

/// One filter as `tc -j filter show` prints it.
#[derive(Deserialize)]
struct Filter {
    protocol: String,
    #[serde(default)]
    pref: u16,
    kind: String,
    options: Option<Options>,
}

/// A filter's options. u32 repeats the key "match" once per key, so they are collected by
/// hand rather than into a map.
#[derive(Default)]
struct Options {
    classid: Option<String>,
    link: Option<String>,
    divisor: Option<u32>,
    matches: Vec<Match>,
    keys: HashMap<String, Value>,
}

#[derive(Deserialize)]
struct Match {
    value: String,
    mask: String,
    offmask: String,
    off: i32,
}

impl<'de> Deserialize<'de> for Options {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Options;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("filter options")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Options, A::Error> {
                let mut o = Options::default();
                while let Some(k) = m.next_key::<String>()? {
                    match k.as_str() {
                        "flowid" | "classid" => o.classid = Some(m.next_value()?),
                        "link" => o.link = Some(m.next_value()?),
                        "ht_divisor" => o.divisor = Some(m.next_value()?),
                        "match" => o.matches.push(m.next_value()?),
                        "keys" => o.keys = m.next_value()?,
                        _ => {
                            m.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(o)
            }
        }
        d.deserialize_map(V)
    }
}

fn ethertype(p: &str) -> u16 {
    match p {
        "ip" => 0x0800,
        "ipv6" => 0x86dd,
        "all" => 0x0003,
        _ => panic!("protocol {p}"),
    }
}

fn u32_options(o: &Options) -> Vec<TcOption> {
    let mut out = Vec::new();
    if let Some(c) = &o.classid {
        out.push(TcFilterU32Option::ClassId(handle(c).into()));
    }
    if let Some(l) = &o.link {
        out.push(TcFilterU32Option::Link(handle(l)));
    }
    if let Some(d) = o.divisor {
        out.push(TcFilterU32Option::Divisor(d));
    }
    if !o.matches.is_empty() {
        let mut sel = TcU32Selector::default();
        for k in &o.matches {
            let mut key = TcU32Key::default();
            key.val = u32::from_str_radix(&k.value, 16).unwrap();
            key.mask = u32::from_str_radix(&k.mask, 16).unwrap();
            key.off = k.off;
            // tc prints "nexthdr+" for any offmask; its value is not kept.
            key.offmask = if k.offmask.is_empty() { 0 } else { 0xff00 };
            sel.keys.push(key);
        }
        sel.nkeys = sel.keys.len() as u8;
        out.push(TcFilterU32Option::Selector(sel));
    }
    out.into_iter().map(TcOption::U32).collect()
}

/// "10.9.0.0/16" as an address and its netmask.
fn addr_mask(s: &str) -> (IpAddr, IpAddr) {
    let (a, len) = s.split_once('/').unwrap_or((s, ""));
    let a: IpAddr = a.parse().unwrap();
    let bits = if a.is_ipv4() { 32 } else { 128 };
    let len: u32 = len.parse().unwrap_or(bits);
    let m = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    let mask = if a.is_ipv4() {
        IpAddr::V4(((m >> 96) as u32).into())
    } else {
        IpAddr::V6(m.into())
    };
    (a, mask)
}

fn flower_options(o: &Options) -> Vec<TcOption> {
    let mut out = Vec::new();
    if let Some(c) = &o.classid {
        out.push(TcFilterFlowerOption::ClassId(handle(c)));
    }
    for (k, src) in [("src_ip", true), ("dst_ip", false)] {
        let Some(s) = o.keys.get(k).and_then(Value::as_str) else {
            continue;
        };
        use TcFilterFlowerOption as F;
        match (addr_mask(s), src) {
            ((IpAddr::V4(a), IpAddr::V4(m)), true) => {
                out.extend([F::Ipv4Src(a), F::Ipv4SrcMask(m)])
            }
            ((IpAddr::V4(a), IpAddr::V4(m)), false) => {
                out.extend([F::Ipv4Dst(a), F::Ipv4DstMask(m)])
            }
            ((IpAddr::V6(a), IpAddr::V6(m)), true) => {
                out.extend([F::Ipv6Src(a), F::Ipv6SrcMask(m)])
            }
            ((IpAddr::V6(a), IpAddr::V6(m)), false) => {
                out.extend([F::Ipv6Dst(a), F::Ipv6DstMask(m)])
            }
            _ => unreachable!(),
        }
    }
    out.into_iter().map(TcOption::Flower).collect()
}

/// `tc -j filter show` output (a file of testdata/ or inline) as a filter dump, decoded.
pub fn filters_json(json: &str, dir: Dir) -> Vec<ClientFilter> {
    let v: Vec<Filter> = serde_json::from_str(json).unwrap();
    let msgs = v.iter().map(|f| {
        let mut m = TcMessage::with_index(2);
        m.header.info = u32::from(f.pref) << 16 | u32::from(ethertype(&f.protocol).to_be());
        m.attributes.push(TcAttribute::Kind(f.kind.clone()));
        if let Some(o) = &f.options {
            let opts = match f.kind.as_str() {
                "u32" => u32_options(o),
                "flower" => flower_options(o),
                k => panic!("filter kind {k}"),
            };
            m.attributes.push(TcAttribute::Options(opts));
        }
        RouteNetlinkMessage::NewTrafficFilter(m)
    });
    nl::filters_of(&answers(&datagram(msgs.collect())), dir)
}

pub fn filters(name: &str, dir: Dir) -> Vec<ClientFilter> {
    filters_json(&text(name), dir)
}

/// `nl-KIND-DEV.bin`: what the kernel answered a request (sequence number 1) in
/// imq-gw-top, the datagrams as read from the socket, decoded as gw-top decodes them.
pub fn recorded(name: &str) -> Vec<RouteNetlinkMessage> {
    let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    nl::answers(&bytes, 1)
        .unwrap()
        .into_iter()
        .flatten()
        .collect()
}
