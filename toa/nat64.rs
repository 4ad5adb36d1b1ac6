// SPDX-License-Identifier: GPL-2.0

//! The NAT64 lookup: behind a NAT64 balancer an IPv6 client reaches an IPv4 socket, whose
//! `getpeername()` cannot carry the client's address. Servers ask for it with
//! `getsockopt(fd, IPPROTO_IP, TOA_SO_GET_LOOKUP, &peer, &len)`, binary-compatible with DPVS's
//! toa and the servers patched for it (kernel-independent; host-tested).

use super::{option::Client, trusted::Addr};

/// The option name (DPVS's `TOA_BASE_CTL`).
pub(crate) const TOA_SO_GET_LOOKUP: i32 = 4096;

/// `struct toa_nat64_peer { struct in6_addr saddr; uint16_t port; }`: 16 + 2 bytes, padded to
/// the 4-byte alignment of `in6_addr`.
pub(crate) const PEER_LEN: usize = 20;

/// Why a lookup gets no address, as DPVS's toa answers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Another option name, a buffer under [`PEER_LEN`], no buffer; or a socket without a
    /// client address (`EINVAL`).
    Invalid,
    /// The socket has no peer (`ENOTCONN`).
    NotConnected,
    /// The socket has a client address, but not an IPv6 one on an IPv4 socket: `getpeername()`
    /// returns it (`EFAULT`, DPVS's answer).
    NotNat64,
}

/// The bytes of `struct toa_nat64_peer` for `addr` and `port` (host order; stored in network
/// order, as in the option), padding zeroed.
pub(crate) fn peer_bytes(addr: [u8; 16], port: u16) -> [u8; PEER_LEN] {
    let mut b = [0u8; PEER_LEN];
    b[..16].copy_from_slice(&addr);
    b[16..18].copy_from_slice(&port.to_be_bytes());
    b
}

/// Checks a lookup's arguments before the socket is looked at.
pub(crate) fn check_request(optname: i32, room: usize) -> Result<(), Refusal> {
    if optname != TOA_SO_GET_LOOKUP || room < PEER_LEN {
        return Err(Refusal::Invalid);
    }
    Ok(())
}

/// The answer for a socket: `connected` (it has a peer), the client address kept for it, if
/// any, and whether the socket is IPv6. Only an IPv6 client on an IPv4 socket is answered.
pub(crate) fn answer(
    connected: bool,
    client: Option<Client>,
    v6_socket: bool,
) -> Result<[u8; PEER_LEN], Refusal> {
    if !connected {
        return Err(Refusal::NotConnected);
    }
    match client {
        None => Err(Refusal::Invalid),
        Some(Client {
            addr: Addr::V6(a),
            port,
        }) if !v6_socket => Ok(peer_bytes(a, port)),
        Some(_) => Err(Refusal::NotNat64),
    }
}
