//! Inserting the TOA option into a TCP segment the way a FULLNAT balancer does (pure; tested on
//! the host against the toa module's own parser).
//!
//! The option carries the segment's own source address and port (the balancer sees the packet
//! before its source NAT), and goes right after the TCP base header, as LVS and DPVS put it.
//! IPv4: kind 254, length 8; IPv6: kind 254, length 20. Lengths and checksums are fixed up.

/// Which segments get the option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// The client's SYN.
    Syn,
    /// The segments after the SYN (ACK set, no SYN or RST): the handshake's final ACK, as LVS
    /// and DPVS do, and what follows it before the server has seen it (data overtaking the ACK
    /// on the way completes the handshake instead, so it must carry the option too).
    Ack,
    /// Both.
    Both,
}

impl Place {
    fn wants(self, flags: u8) -> bool {
        const SYN: u8 = 0x02;
        const RST: u8 = 0x04;
        const ACK: u8 = 0x10;
        let syn = flags & (SYN | ACK | RST) == SYN;
        let ack = flags & (SYN | ACK | RST) == ACK;
        match self {
            Place::Syn => syn,
            Place::Ack => ack,
            Place::Both => syn || ack,
        }
    }
}

/// What to insert: the real option, or a broken one (for testing what the server does with it).
/// Broken options go after the segment's own options, so that the kernel still sees those.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// The option as a balancer sends it, right after the base header.
    Good,
    /// Kind 254 with length 7: not a TOA layout.
    BadLen,
    /// Kind 254 claiming 8 bytes where only 4 remain in the header.
    Truncated,
    /// Kind 254 with length 0, in the last 4 bytes of the header (with 5 or more bytes left,
    /// the kernel drops the segment itself: its TCP-AO/MD5 option walk rejects it).
    ZeroLen,
    /// A forged option (192.0.2.99:9; the short IPv4 form, so that two fit beside the
    /// timestamps even for IPv6) followed by the real one.
    Repeated,
    /// Fuzzing (`random:SEED`): each segment a fresh mix of options, well-formed and broken
    /// (see [`random_options`]); [`Variant::next`] moves the state on between segments.
    Random(u64),
    /// `kind:K`: the good option with kind K instead of 254 (Akamai's 253, Tencent's 200...).
    Kind(u8),
    /// `pair:K`: a forged option of kind 254 (as [`Variant::Repeated`]'s) followed by the real
    /// one with kind K: two kinds in one segment.
    Pair(u8),
    /// `nat64`: what a NAT64 balancer sends an IPv4 server for an IPv6 client: the IPv6 form
    /// (length 20). The test client is IPv4, so its address goes in the well-known NAT64
    /// prefix 64:ff9b::/96 (RFC 6052) as the IPv6 client the translator would have seen.
    Nat64,
}

/// Forged clients of [`Variant::Random`]: 192.0.2.0/24 and 2001:db8:ff::/48 with any port, so
/// that a test can tell an address taken from a forged option from garbage.
pub const FORGED_V4: [u8; 3] = [192, 0, 2];
/// See [`FORGED_V4`].
pub const FORGED_V6: [u8; 6] = [0x20, 0x01, 0x0d, 0xb8, 0x00, 0xff];

/// xorshift64*: the fuzzer's generator (no state beyond the variant's, reproducible by seed).
fn next_u64(s: &mut u64) -> u64 {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    s.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// Up to 20 bytes of options for a client at `port`/`addr`, and whether they go after the
/// segment's own: NOP and EOL, TOA options with the real client, a forged one or a wrong
/// length, the standard kinds (MSS, SACK, timestamps, MD5, TCP-AO, MPTCP) with right and wrong
/// lengths, unknown kinds and raw bytes.
pub fn random_options(state: u64, port: [u8; 2], addr: &[u8]) -> (Vec<u8>, bool) {
    let mut s = state | 1;
    let mut r = |n: u64| next_u64(&mut s) % n;
    let mut o = Vec::new();
    for _ in 0..1 + r(4) {
        match r(13) {
            0 => o.push(1),
            1 => o.push(0),
            2 => {
                o.extend_from_slice(&[TOA_KIND, (4 + addr.len()) as u8]);
                o.extend_from_slice(&port);
                o.extend_from_slice(addr);
            }
            3 => {
                // A forged client of either family, whatever the segment's: an IPv6 one on an
                // IPv4 connection is what a NAT64 balancer sends.
                let p = (r(65536) as u16).to_be_bytes();
                if r(2) == 0 {
                    o.extend_from_slice(&[TOA_KIND, 8, p[0], p[1]]);
                    o.extend_from_slice(&FORGED_V4);
                    o.push(r(256) as u8);
                } else {
                    o.extend_from_slice(&[TOA_KIND, 20, p[0], p[1]]);
                    o.extend_from_slice(&FORGED_V6);
                    o.extend((0..10).map(|_| r(256) as u8));
                }
            }
            4 => {
                let len = r(24) as u8;
                o.extend_from_slice(&[TOA_KIND, len]);
                o.extend((2..len.max(2)).map(|_| r(256) as u8));
            }
            5 => {
                let len = r(12) as u8;
                o.extend_from_slice(&[r(256) as u8, len]);
                o.extend((2..len.max(2)).map(|_| r(256) as u8));
            }
            6 => o.extend_from_slice(&[2, 4, r(256) as u8, r(256) as u8]),
            7 => o.extend_from_slice(&[4, 2]),
            8 => {
                o.extend_from_slice(&[8, 10]);
                o.extend((0..8).map(|_| r(256) as u8));
            }
            9 => {
                o.extend_from_slice(&[19, 18]);
                o.extend((0..16).map(|_| r(256) as u8));
            }
            10 => {
                let len = [4u8, 16, 3][r(3) as usize];
                o.extend_from_slice(&[29, len]);
                o.extend((2..len).map(|_| r(256) as u8));
            }
            11 => {
                let len = [4u8, 12, 2][r(3) as usize];
                o.extend_from_slice(&[30, len]);
                o.extend((2..len).map(|_| r(256) as u8));
            }
            _ => o.extend((0..1 + r(8)).map(|_| r(256) as u8)),
        }
    }
    o.truncate(20);
    while o.len() % 4 != 0 {
        o.push(if r(4) == 0 { r(256) as u8 } else { 1 });
    }
    (o, r(2) == 0)
}

impl Variant {
    /// Parses a `--variant` argument.
    pub fn parse(s: &str) -> Option<Variant> {
        Some(match s {
            "good" => Variant::Good,
            "bad-len" => Variant::BadLen,
            "truncated" => Variant::Truncated,
            "zero-len" => Variant::ZeroLen,
            "repeated" => Variant::Repeated,
            "nat64" => Variant::Nat64,
            _ if s.starts_with("kind:") => Variant::Kind(s["kind:".len()..].parse().ok()?),
            _ if s.starts_with("pair:") => Variant::Pair(s["pair:".len()..].parse().ok()?),
            _ => Variant::Random(s.strip_prefix("random:")?.parse().ok()?),
        })
    }

    /// The variant for the next segment: a new state for [`Variant::Random`], else the same.
    pub fn next(self) -> Variant {
        match self {
            Variant::Random(mut s) => {
                next_u64(&mut s);
                Variant::Random(s)
            }
            v => v,
        }
    }

    /// The bytes to insert for a client at `port`/`addr` (4 or 16 bytes), and whether they go
    /// after the existing options rather than before them.
    fn bytes(self, port: [u8; 2], addr: &[u8]) -> (Vec<u8>, bool) {
        let good = |port: [u8; 2], addr: &[u8]| {
            let mut o = vec![TOA_KIND, (4 + addr.len()) as u8];
            o.extend_from_slice(&port);
            o.extend_from_slice(addr);
            o
        };
        match self {
            Variant::Good => (good(port, addr), false),
            Variant::BadLen => {
                let mut o = vec![TOA_KIND, 7, port[0], port[1], addr[0], addr[1], addr[2]];
                o.push(1);
                (o, true)
            }
            Variant::Truncated => (vec![1, 1, 1, 1, TOA_KIND, 8, port[0], port[1]], true),
            Variant::ZeroLen => (vec![1, 1, 1, 1, TOA_KIND, 0, 0, 0], true),
            Variant::Repeated => {
                let mut o = good([0, 9], &[192, 0, 2, 99]);
                o.extend(good(port, addr));
                (o, false)
            }
            Variant::Random(s) => random_options(s, port, addr),
            Variant::Kind(k) => {
                let mut o = good(port, addr);
                o[0] = k;
                (o, false)
            }
            Variant::Pair(k) => {
                let mut o = good([0, 9], &[192, 0, 2, 99]);
                let mut real = good(port, addr);
                real[0] = k;
                o.extend(real);
                (o, false)
            }
            Variant::Nat64 => match addr {
                &[a, b, c, d] => (
                    good(
                        port,
                        &[0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, a, b, c, d],
                    ),
                    false,
                ),
                _ => (good(port, addr), false),
            },
        }
    }
}

/// Largest packet the balancer sends on (the test links' MTU): a segment that would grow past
/// it is passed on unchanged.
pub const MTU: usize = 1500;

/// Why a packet was passed on unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// Not a segment of the kind asked for.
    NotWanted,
    /// Not an unfragmented TCP segment over IPv4, or over IPv6 without extension headers.
    NotTcp,
    /// Shorter than its headers say.
    Truncated,
    /// No room for the option: the TCP header would exceed 60 bytes or the packet the MTU.
    NoRoom,
}

const TOA_KIND: u8 = 254;

/// Returns the packet with the option (as `variant` says) inserted, if it is a segment `place`
/// asks for.
// The binary uses `insert_toa_shown`; the host tests read this one back with toa's parser.
#[allow(dead_code)]
pub fn insert_toa(pkt: &[u8], place: Place, variant: Variant) -> Result<Vec<u8>, Skip> {
    insert_toa_shown(pkt, place, variant).map(|(p, _)| p)
}

/// [`insert_toa`], also returning the new segment's whole option area (what the server's
/// parser reads: inserted options may run on into the segment's own).
pub fn insert_toa_shown(
    pkt: &[u8],
    place: Place,
    variant: Variant,
) -> Result<(Vec<u8>, Vec<u8>), Skip> {
    match pkt.first().map(|b| b >> 4) {
        Some(4) => insert_v4(pkt, place, variant),
        Some(6) => insert_v6(pkt, place, variant),
        _ => Err(Skip::NotTcp),
    }
}

fn insert_v4(pkt: &[u8], place: Place, variant: Variant) -> Result<(Vec<u8>, Vec<u8>), Skip> {
    if pkt.len() < 20 {
        return Err(Skip::Truncated);
    }
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    let frag = u16::from_be_bytes([pkt[6], pkt[7]]);
    if pkt[9] != 6 || frag & 0x3fff != 0 {
        return Err(Skip::NotTcp);
    }
    if ihl < 20 || total < ihl + 20 || total > pkt.len() {
        return Err(Skip::Truncated);
    }
    let pkt = &pkt[..total];
    // The client: the segment's source port and address.
    let (opt, at_end) = variant.bytes([pkt[ihl], pkt[ihl + 1]], &pkt[12..16]);
    let mut out = splice(pkt, ihl, &opt, at_end, place)?;
    let new_total = u16::try_from(out.len()).map_err(|_| Skip::NoRoom)?;
    out[2..4].copy_from_slice(&new_total.to_be_bytes());
    out[10..12].copy_from_slice(&[0, 0]);
    let c = checksum(&[&out[..ihl]]);
    out[10..12].copy_from_slice(&c.to_be_bytes());
    let tcp_len = (out.len() - ihl) as u32;
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&out[12..20]);
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&(tcp_len as u16).to_be_bytes());
    fix_tcp_checksum(&mut out, ihl, &pseudo);
    let opts = options_of(&out, ihl);
    Ok((out, opts))
}

/// The option area of the TCP header at `tcp` in a packet `splice` made (so well-formed).
fn options_of(pkt: &[u8], tcp: usize) -> Vec<u8> {
    let doff = usize::from(pkt[tcp + 12] >> 4) * 4;
    pkt[tcp + 20..tcp + doff].to_vec()
}

fn insert_v6(pkt: &[u8], place: Place, variant: Variant) -> Result<(Vec<u8>, Vec<u8>), Skip> {
    if pkt.len() < 40 {
        return Err(Skip::Truncated);
    }
    if pkt[6] != 6 {
        return Err(Skip::NotTcp);
    }
    let plen = usize::from(u16::from_be_bytes([pkt[4], pkt[5]]));
    if plen < 20 || 40 + plen > pkt.len() {
        return Err(Skip::Truncated);
    }
    let pkt = &pkt[..40 + plen];
    let (opt, at_end) = variant.bytes([pkt[40], pkt[41]], &pkt[8..24]);
    let mut out = splice(pkt, 40, &opt, at_end, place)?;
    let new_plen = u16::try_from(out.len() - 40).map_err(|_| Skip::NoRoom)?;
    out[4..6].copy_from_slice(&new_plen.to_be_bytes());
    let mut pseudo = Vec::with_capacity(40);
    pseudo.extend_from_slice(&out[8..40]);
    pseudo.extend_from_slice(&u32::from(new_plen).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 6]);
    fix_tcp_checksum(&mut out, 40, &pseudo);
    let opts = options_of(&out, 40);
    Ok((out, opts))
}

/// Copies `pkt` with `opt` inserted after the TCP base header at `tcp` (or, `at_end`, after the
/// existing options), data offset raised, if the segment is one `place` asks for.
fn splice(pkt: &[u8], tcp: usize, opt: &[u8], at_end: bool, place: Place) -> Result<Vec<u8>, Skip> {
    let doff = usize::from(pkt[tcp + 12] >> 4) * 4;
    if doff < 20 || tcp + doff > pkt.len() {
        return Err(Skip::Truncated);
    }
    if !place.wants(pkt[tcp + 13]) {
        return Err(Skip::NotWanted);
    }
    if doff + opt.len() > 60 || !opt.len().is_multiple_of(4) || pkt.len() + opt.len() > MTU {
        return Err(Skip::NoRoom);
    }
    let at = if at_end { tcp + doff } else { tcp + 20 };
    let mut out = Vec::with_capacity(pkt.len() + opt.len());
    out.extend_from_slice(&pkt[..at]);
    out.extend_from_slice(opt);
    out.extend_from_slice(&pkt[at..]);
    let new_doff = ((doff + opt.len()) / 4) as u8;
    out[tcp + 12] = (new_doff << 4) | (out[tcp + 12] & 0x0f);
    Ok(out)
}

fn fix_tcp_checksum(out: &mut [u8], tcp: usize, pseudo: &[u8]) {
    out[tcp + 16..tcp + 18].copy_from_slice(&[0, 0]);
    let c = checksum(&[pseudo, &out[tcp..]]);
    out[tcp + 16..tcp + 18].copy_from_slice(&c.to_be_bytes());
}

/// The Internet checksum (RFC 1071) over the concatenation of `parts` (each of even length but
/// the last).
pub fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    for part in parts {
        let mut chunks = part.chunks_exact(2);
        for c in &mut chunks {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [last] = chunks.remainder() {
            sum += u32::from(*last) << 8;
        }
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
