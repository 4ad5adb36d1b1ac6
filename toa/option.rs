// SPDX-License-Identifier: GPL-2.0

//! The TOA option in a TCP header (kernel-independent; host-tested and fuzzed).
//!
//! Kind 254, length 8: port then IPv4 address; length 20: port then IPv6 address; all in network
//! byte order. The walk follows `tcp_parse_options`: EOL ends the list, NOP is one byte, every
//! other option needs a length byte of at least 2 that fits in what is left, else the rest is
//! malformed and nothing after it is trusted. A kind-254 option of another length (RFC 6994
//! experiments share the kind) is skipped and counted. When a packet carries several TOA
//! options, as after a chain of balancers that each insert theirs right after the base header,
//! the last one (the one nearest the client) wins; the count is reported.
//!
//! Some balancers use another kind for the same layout (Akamai 253, Tencent and UCloud 200):
//! the kinds read are a [`Kinds`] set, 254 alone by default.

use super::trusted::Addr;

/// The option kind balancers use for the client address.
pub(crate) const KIND_TOA: u8 = 254;
/// Most option kinds read at once.
pub(crate) const MAX_KINDS: usize = 4;

/// The option kinds read as a client address (the module's `kinds` parameter): 1 to
/// [`MAX_KINDS`] of them, none a kind the stack itself uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Kinds {
    list: [u8; MAX_KINDS],
    len: usize,
}

/// Why a `kinds` list was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KindsError {
    /// No kind given.
    Empty,
    /// More than [`MAX_KINDS`].
    TooMany,
    /// Not a number from 0 to 255.
    NotAKind,
    /// A kind the stack uses: 0-8 (EOL, NOP, MSS, window scale, SACK, timestamps) or 28-30
    /// (user timeout, TCP-AO, MPTCP).
    Reserved(u8),
    /// Given twice.
    Repeated(u8),
}

impl KindsError {
    /// The message for the load-time refusal.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            KindsError::Empty => "no option kind given",
            KindsError::TooMany => "more than 4 option kinds",
            KindsError::NotAKind => "an entry is not an option kind (0 to 255)",
            KindsError::Reserved(_) => {
                "a kind the stack itself uses (0-8: EOL, NOP, MSS, window scale, SACK, \
                 timestamps; 28-30: user timeout, TCP-AO, MPTCP)"
            }
            KindsError::Repeated(_) => "a kind is given twice",
        }
    }
}

impl Kinds {
    /// Kind 254 alone (the classic TOA; the parameter's default, which the module parses).
    #[allow(
        dead_code,
        reason = "the module parses its parameter; the host tests use this"
    )]
    pub(crate) const DEFAULT: Kinds = Kinds {
        list: [KIND_TOA, 0, 0, 0],
        len: 1,
    };

    /// Parses a comma-separated list of kinds, e.g. `254,253`.
    pub(crate) fn parse(s: &[u8]) -> Result<Kinds, KindsError> {
        let mut k = Kinds {
            list: [0; MAX_KINDS],
            len: 0,
        };
        for item in s.split(|&b| b == b',') {
            let item = item.trim_ascii();
            if item.is_empty() {
                continue;
            }
            if item.len() > 3 || !item.iter().all(u8::is_ascii_digit) {
                return Err(KindsError::NotAKind);
            }
            let v = item
                .iter()
                .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
            let kind = u8::try_from(v).map_err(|_| KindsError::NotAKind)?;
            if kind <= 8 || (28..=30).contains(&kind) {
                return Err(KindsError::Reserved(kind));
            }
            if k.contains(kind) {
                return Err(KindsError::Repeated(kind));
            }
            if k.len == MAX_KINDS {
                return Err(KindsError::TooMany);
            }
            k.list[k.len] = kind;
            k.len += 1;
        }
        if k.len == 0 {
            return Err(KindsError::Empty);
        }
        Ok(k)
    }

    /// Whether `kind` is read.
    pub(crate) fn contains(&self, kind: u8) -> bool {
        self.list[..self.len].contains(&kind)
    }

    /// The kinds, in the order given.
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.list[..self.len]
    }
}
/// Option length carrying an IPv4 client.
pub(crate) const LEN_V4: u8 = 8;
/// Option length carrying an IPv6 client.
pub(crate) const LEN_V6: u8 = 20;

const KIND_EOL: u8 = 0;
const KIND_NOP: u8 = 1;
/// Size of the TCP header without options.
pub(crate) const TCP_BASE_LEN: usize = 20;
/// Largest TCP header (data offset 15).
pub(crate) const TCP_MAX_LEN: usize = 60;

/// A client address and port as the balancer reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Client {
    /// Client address.
    pub(crate) addr: Addr,
    /// Client port, host byte order.
    pub(crate) port: u16,
}

/// What one TCP header held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Scan {
    /// The client of the last well-formed TOA option, if any.
    pub(crate) client: Option<Client>,
    /// Well-formed TOA options seen.
    pub(crate) count: u8,
    /// Options of a kind read ignored: other lengths, or an unspecified address or zero port.
    pub(crate) ignored: u8,
    /// The option list (or the header itself) was malformed; options after the fault were not
    /// read.
    pub(crate) malformed: bool,
}

/// Scans a whole TCP header (base header plus options, as many bytes as are available, at most
/// 60) for options of `kinds`. The data offset decides where the options end; a header shorter
/// than its data offset says is malformed.
pub(crate) fn scan_tcp_header(hdr: &[u8], kinds: &Kinds) -> Scan {
    let hdr = &hdr[..hdr.len().min(TCP_MAX_LEN)];
    if hdr.len() < TCP_BASE_LEN {
        return Scan {
            malformed: true,
            ..Scan::default()
        };
    }
    let doff = usize::from(hdr[12] >> 4) * 4;
    if doff < TCP_BASE_LEN || doff > hdr.len() {
        return Scan {
            malformed: true,
            ..Scan::default()
        };
    }
    scan_options(&hdr[TCP_BASE_LEN..doff], kinds)
}

/// Scans the option bytes of a TCP header (after the 20-byte base header) for options of
/// `kinds`.
pub(crate) fn scan_options(opts: &[u8], kinds: &Kinds) -> Scan {
    let mut scan = Scan::default();
    let mut rest = opts;
    while let Some((&kind, after_kind)) = rest.split_first() {
        match kind {
            KIND_EOL => break,
            KIND_NOP => {
                rest = after_kind;
                continue;
            }
            _ => {}
        }
        let Some(&len) = after_kind.first() else {
            scan.malformed = true;
            break;
        };
        let len = usize::from(len);
        if len < 2 || len > rest.len() {
            scan.malformed = true;
            break;
        }
        let (opt, tail) = rest.split_at(len);
        if kinds.contains(kind) {
            match decode(opt) {
                Some(client) => {
                    scan.client = Some(client);
                    scan.count = scan.count.saturating_add(1);
                }
                None => scan.ignored = scan.ignored.saturating_add(1),
            }
        }
        rest = tail;
    }
    scan
}

/// Decodes one TOA option (kind and length bytes included); `None` for lengths other than 8 and
/// 20, an unspecified address or port 0, none of which a balancer sends.
fn decode(opt: &[u8]) -> Option<Client> {
    let addr = match *opt {
        [_, LEN_V4, _, _, a0, a1, a2, a3] => Addr::V4([a0, a1, a2, a3]),
        [_, LEN_V6, _, _, ref a @ ..] if a.len() == 16 => {
            let mut v6 = [0u8; 16];
            v6.copy_from_slice(a);
            Addr::V6(v6)
        }
        _ => return None,
    };
    let port = u16::from_be_bytes([opt[2], opt[3]]);
    let unspecified = match addr {
        Addr::V4(a) => a == [0; 4],
        Addr::V6(a) => a == [0; 16],
    };
    (port != 0 && !unspecified).then_some(Client { addr, port })
}
