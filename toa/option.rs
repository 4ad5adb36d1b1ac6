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

use super::trusted::Addr;

/// The option kind balancers use for the client address.
pub(crate) const KIND_TOA: u8 = 254;
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
    /// Kind-254 options ignored: other lengths, or an unspecified address or zero port.
    pub(crate) ignored: u8,
    /// The option list (or the header itself) was malformed; options after the fault were not
    /// read.
    pub(crate) malformed: bool,
}

/// Scans a whole TCP header (base header plus options, as many bytes as are available, at most
/// 60). The data offset decides where the options end; a header shorter than its data offset
/// says is malformed.
pub(crate) fn scan_tcp_header(hdr: &[u8]) -> Scan {
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
    scan_options(&hdr[TCP_BASE_LEN..doff])
}

/// Scans the option bytes of a TCP header (after the 20-byte base header).
pub(crate) fn scan_options(opts: &[u8]) -> Scan {
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
        if kind == KIND_TOA {
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

/// Decodes one kind-254 option (kind and length bytes included); `None` for lengths other than
/// 8 and 20, an unspecified address or port 0, none of which a balancer sends.
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
