// SPDX-License-Identifier: GPL-2.0

//! The `trusted` parameter: which peers may supply a TOA option (kernel-independent;
//! host-tested).
//!
//! A comma-separated list of IPv4 and IPv6 prefixes (`10.0.0.0/8,2001:db8::/32`); a bare address
//! means a single host. An empty list trusts every peer, as the classic TOA modules do. A v4-mapped
//! IPv6 peer (`::ffff:a.b.c.d`, a v4 client of a dual-stack listener) is matched against the IPv4
//! prefixes.

/// Most prefixes the list may hold (a load balancer pool, not a routing table).
pub(crate) const MAX_PREFIXES: usize = 32;

/// An IP address in network byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Addr {
    /// IPv4.
    V4([u8; 4]),
    /// IPv6.
    V6([u8; 16]),
}

impl Addr {
    /// The IPv4 address inside a v4-mapped IPv6 address, or the address itself.
    pub(crate) fn unmapped(self) -> Addr {
        match self {
            Addr::V6(a) if a[..10] == [0; 10] && a[10] == 0xff && a[11] == 0xff => {
                Addr::V4([a[12], a[13], a[14], a[15]])
            }
            other => other,
        }
    }
}

/// One prefix of the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Prefix {
    /// Network address (host bits zeroed).
    pub(crate) addr: Addr,
    /// Prefix length in bits.
    pub(crate) len: u8,
}

impl Prefix {
    fn contains(&self, addr: Addr) -> bool {
        match (self.addr, addr) {
            (Addr::V4(net), Addr::V4(a)) => prefix_eq(&net, &a, self.len),
            (Addr::V6(net), Addr::V6(a)) => prefix_eq(&net, &a, self.len),
            _ => false,
        }
    }
}

/// Why a `trusted` list was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Error {
    /// Entry number `.0` (from 1) is not an address or prefix.
    BadEntry(usize),
    /// Entry number `.0` has a prefix length beyond its address family's width.
    BadLength(usize),
    /// More than [`MAX_PREFIXES`] entries.
    TooMany,
}

/// A parsed `trusted` list.
#[derive(Clone, Debug)]
pub(crate) struct Trusted {
    prefixes: [Prefix; MAX_PREFIXES],
    count: usize,
}

impl Trusted {
    /// Parses a comma-separated list; spaces around entries are ignored, empty entries skipped.
    pub(crate) fn parse(s: &[u8]) -> Result<Trusted, Error> {
        let none = Prefix {
            addr: Addr::V4([0; 4]),
            len: 0,
        };
        let mut t = Trusted {
            prefixes: [none; MAX_PREFIXES],
            count: 0,
        };
        for (i, entry) in s.split(|&c| c == b',').enumerate() {
            let entry = entry.trim_ascii();
            if entry.is_empty() {
                continue;
            }
            let p = parse_prefix(entry, i + 1)?;
            if t.count == MAX_PREFIXES {
                return Err(Error::TooMany);
            }
            t.prefixes[t.count] = p;
            t.count += 1;
        }
        Ok(t)
    }

    /// The parsed prefixes.
    pub(crate) fn prefixes(&self) -> &[Prefix] {
        &self.prefixes[..self.count]
    }

    /// Whether the list is empty, i.e. every peer is trusted.
    pub(crate) fn trusts_all(&self) -> bool {
        self.count == 0
    }

    /// Whether `peer` may supply the option.
    pub(crate) fn allows(&self, peer: Addr) -> bool {
        if self.trusts_all() {
            return true;
        }
        let peer = peer.unmapped();
        self.prefixes().iter().any(|p| p.contains(peer))
    }
}

fn prefix_eq(net: &[u8], a: &[u8], len: u8) -> bool {
    let full = usize::from(len / 8);
    let rest = len % 8;
    if net[..full] != a[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    net[full] & mask == a[full] & mask
}

fn parse_prefix(entry: &[u8], index: usize) -> Result<Prefix, Error> {
    let (addr_part, len_part) = match entry.iter().position(|&c| c == b'/') {
        Some(i) => (&entry[..i], Some(&entry[i + 1..])),
        None => (entry, None),
    };
    let addr = parse_addr(addr_part).ok_or(Error::BadEntry(index))?;
    let width = match addr {
        Addr::V4(_) => 32,
        Addr::V6(_) => 128,
    };
    let len = match len_part {
        None => width,
        Some(l) => {
            let n = parse_dec(l, 3).ok_or(Error::BadEntry(index))?;
            if n > u32::from(width) {
                return Err(Error::BadLength(index));
            }
            n as u8
        }
    };
    // Zero the host bits so matching compares networks only.
    let addr = match addr {
        Addr::V4(mut a) => {
            mask_host_bits(&mut a, len);
            Addr::V4(a)
        }
        Addr::V6(mut a) => {
            mask_host_bits(&mut a, len);
            Addr::V6(a)
        }
    };
    Ok(Prefix { addr, len })
}

fn mask_host_bits(a: &mut [u8], len: u8) {
    for (i, byte) in a.iter_mut().enumerate() {
        let bit = i * 8;
        let keep = usize::from(len).saturating_sub(bit).min(8);
        *byte &= if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
    }
}

/// Parses a decimal number of at most `max_digits` digits.
fn parse_dec(s: &[u8], max_digits: usize) -> Option<u32> {
    if s.is_empty() || s.len() > max_digits {
        return None;
    }
    let mut n = 0u32;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(c - b'0');
    }
    Some(n)
}

/// Parses an IPv4 (dotted quad) or IPv6 (RFC 4291 text, `::` and embedded IPv4) address.
pub(crate) fn parse_addr(s: &[u8]) -> Option<Addr> {
    if s.contains(&b':') {
        parse_v6(s).map(Addr::V6)
    } else {
        parse_v4(s).map(Addr::V4)
    }
}

fn parse_v4(s: &[u8]) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut n = 0;
    for part in s.split(|&c| c == b'.') {
        if n == 4 {
            return None;
        }
        let v = parse_dec(part, 3)?;
        out[n] = u8::try_from(v).ok()?;
        n += 1;
    }
    (n == 4).then_some(out)
}

fn parse_hex16(s: &[u8]) -> Option<u16> {
    if s.is_empty() || s.len() > 4 {
        return None;
    }
    let mut n = 0u16;
    for &c in s {
        let d = (c as char).to_digit(16)?;
        n = (n << 4) | d as u16;
    }
    Some(n)
}

/// Parses groups of one side of `::` into `out`; returns how many 16-bit groups were written.
fn parse_v6_groups(s: &[u8], out: &mut [u16; 8], allow_v4_tail: bool) -> Option<usize> {
    if s.is_empty() {
        return Some(0);
    }
    let mut n = 0;
    let mut parts = s.split(|&c| c == b':').peekable();
    while let Some(part) = parts.next() {
        let last = parts.peek().is_none();
        if last && allow_v4_tail && part.contains(&b'.') {
            let v4 = parse_v4(part)?;
            if n + 2 > 8 {
                return None;
            }
            out[n] = u16::from_be_bytes([v4[0], v4[1]]);
            out[n + 1] = u16::from_be_bytes([v4[2], v4[3]]);
            n += 2;
        } else {
            if n == 8 {
                return None;
            }
            out[n] = parse_hex16(part)?;
            n += 1;
        }
    }
    Some(n)
}

fn parse_v6(s: &[u8]) -> Option<[u8; 16]> {
    let mut groups = [0u16; 8];
    let gap = s.windows(2).position(|w| w == b"::");
    match gap {
        None => {
            if parse_v6_groups(s, &mut groups, true)? != 8 {
                return None;
            }
        }
        Some(i) => {
            let (head, tail) = (&s[..i], &s[i + 2..]);
            if tail.windows(2).any(|w| w == b"::") {
                return None;
            }
            let mut h = [0u16; 8];
            let mut t = [0u16; 8];
            let nh = parse_v6_groups(head, &mut h, false)?;
            let nt = parse_v6_groups(tail, &mut t, true)?;
            // "::" stands for at least one zero group.
            if nh + nt > 7 {
                return None;
            }
            groups[..nh].copy_from_slice(&h[..nh]);
            groups[8 - nt..].copy_from_slice(&t[..nt]);
        }
    }
    let mut out = [0u8; 16];
    for (i, g) in groups.iter().enumerate() {
        out[2 * i..2 * i + 2].copy_from_slice(&g.to_be_bytes());
    }
    Some(out)
}
