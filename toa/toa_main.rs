// SPDX-License-Identifier: GPL-2.0

//! toa: TCP Option Address.
//!
//! Behind an L4 load balancer in FULLNAT mode the peer of every connection is the balancer; the
//! balancer puts the client's address into the handshake as TCP option 254. This module reads it
//! from the segment that creates the connection's socket, keeps it in a table of its own keyed by
//! socket (never `sk_user_data`, so kTLS and sockmap keep working), and makes `getpeername()` and
//! `accept()` return it. It writes no kernel memory but the returned address: kprobes watch the
//! handshake, getname and socket destruction (see `knet::tcp`).

use core::sync::atomic::{AtomicUsize, Ordering};
use kernel::{
    prelude::*,
    rbtree::{RBTree, RBTreeNode},
    sync::Arc,
};

#[path = "../knet/knet.rs"]
mod knet;

mod nat64;
mod option;
mod trusted;

use knet::{
    errno::ENOTCONN,
    lock::{new_spinlock_irq, SpinLockIrq},
    sockopt::{GetSockopt, SockRef, SockoptOut, SockoptRegistration},
    stats::{NetNs, ProcStats},
    tcp::{InetAddr, PeerName, ReqKey, Segment, SockKey, TcpObserver, TcpProbes},
};
use option::{Client, Kinds};
use trusted::{Addr, Trusted};

module! {
    type: Toa,
    name: "toa",
    authors: ["rust-tc developers"],
    description: "TCP Option Address: real client addresses behind FULLNAT load balancers",
    license: "GPL",
    params: {
        max_entries: u32 {
            default: 262144,
            description: "Most connections with a client address kept at once (1 to 16777216)",
        },
    },
}

/// String parameters, declared in `toa_params.c`.
mod params {
    crate::knet::param::str_param!(pub(super) trusted);
    crate::knet::param::str_param!(pub(super) kinds);
}

/// The rows of `/proc/net/toa_stats`: the classic counters first, then ours. The last row is the
/// probes' missed hits, computed when read.
mod stat {
    pub(crate) const SYN_RECV_SOCK_TOA: usize = 0;
    pub(crate) const SYN_RECV_SOCK_NO_TOA: usize = 1;
    pub(crate) const GETNAME_TOA_OK: usize = 2;
    pub(crate) const GETNAME_TOA_MISMATCH: usize = 3;
    pub(crate) const GETNAME_TOA_BYPASS: usize = 4;
    pub(crate) const GETNAME_TOA_EMPTY: usize = 5;
    pub(crate) const SYN_RECV_SOCK_TOA_V6: usize = 6;
    pub(crate) const TOA_UNTRUSTED: usize = 7;
    pub(crate) const TOA_MALFORMED: usize = 8;
    pub(crate) const TOA_IGNORED: usize = 9;
    pub(crate) const TOA_MULTIPLE: usize = 10;
    pub(crate) const TABLE_ENTRIES: usize = 11;
    pub(crate) const TABLE_BYTES: usize = 12;
    pub(crate) const TABLE_FULL: usize = 13;
    pub(crate) const ALLOC_FAILED: usize = 14;
    pub(crate) const SYN_TOA: usize = 15;
    pub(crate) const NAT64_LOOKUP_OK: usize = 16;
    pub(crate) const NAT64_LOOKUP_EMPTY: usize = 17;

    pub(crate) const NAMES: [&kernel::str::CStr; 19] = [
        c"syn_recv_sock_toa",
        c"syn_recv_sock_no_toa",
        c"getname_toa_ok",
        c"getname_toa_mismatch",
        c"getname_toa_bypass",
        c"getname_toa_empty",
        c"syn_recv_sock_toa_v6",
        c"toa_untrusted",
        c"toa_malformed",
        c"toa_ignored",
        c"toa_multiple",
        c"table_entries",
        c"table_bytes",
        c"table_full",
        c"alloc_failed",
        c"syn_toa",
        c"nat64_lookup_ok",
        c"nat64_lookup_empty",
        c"probe_missed",
    ];
}

/// What is kept per connection: the client, and the balancer end the kernel knows, to check at
/// getname time that the socket is still the one the entry was made for.
#[derive(Clone, Copy)]
struct Entry {
    client: Client,
    balancer: Addr,
    balancer_port: u16,
    /// Made from a SYN's option: used only if the handshake ends from the same balancer end
    /// and without an option of its own.
    from_syn: bool,
}

impl Entry {
    fn balancer_end(&self) -> (Addr, u16) {
        (self.balancer, self.balancer_port)
    }
}

/// An entry is kept for a request until its child is queued for accept(), then for the child.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Req(ReqKey),
    Sock(SockKey),
}

/// Approximate memory of one entry: key, value and the tree node's links.
const ENTRY_BYTES: i64 =
    (core::mem::size_of::<(Key, Entry)>() + 3 * core::mem::size_of::<usize>()) as i64;

#[pin_data]
struct State {
    /// Sockets whose handshake carried a usable option, and requests whose SYN or final ACK
    /// did, until their child is queued or they go. One tree, so that an entry moves from its
    /// request to its socket without an allocation.
    #[pin]
    // Probe handlers run in process context, softirq and hard interrupt alike: interrupts
    // stay off while it is held. A lock class of its own, for lockdep.
    table: SpinLockIrq<RBTree<Key, Entry>>,
    /// Entries in the table.
    entries: AtomicUsize,
    /// Of those, entries of requests. An option in the final ACK (the usual place) makes one
    /// that moves to its child in the same softirq, so when a request is freed or a child is
    /// queued there is usually none, and the table is not searched. Changed under the table's
    /// lock, read without it where that is exact: a request is freed after its last reference
    /// is dropped (release, then acquire on the last), which is after the handler that added
    /// its entry; a child is queued right after its final ACK's handler, on the same CPU, and
    /// that handler took the table's lock if the table held anything.
    reqs: AtomicUsize,
    max_entries: usize,
    trusted: Trusted,
    /// The option kinds read.
    kinds: Kinds,
    stats: ProcStats,
}

/// A segment's source end (the balancer's, for a balanced connection): its source address, and
/// the source port from its TCP header `hdr`.
fn balancer_end(seg: &Segment<'_>, hdr: &[u8]) -> Option<(Addr, u16)> {
    match (seg.source(), hdr) {
        (Some(a), [p0, p1, ..]) => Some((addr(a), u16::from_be_bytes([*p0, *p1]))),
        _ => None,
    }
}

fn addr(a: InetAddr) -> Addr {
    match a {
        InetAddr::V4(a) => Addr::V4(a),
        InetAddr::V6(a) => Addr::V6(a),
    }
}

fn inet(a: Addr) -> InetAddr {
    match a {
        Addr::V4(a) => InetAddr::V4(a),
        Addr::V6(a) => InetAddr::V6(a),
    }
}

impl State {
    fn counted(&self, net: &NetNs<'_>, added: bool) {
        let (n, bytes) = if added {
            (1, ENTRY_BYTES)
        } else {
            (-1, -ENTRY_BYTES)
        };
        if added {
            self.entries.fetch_add(1, Ordering::Relaxed);
        } else {
            self.entries.fetch_sub(1, Ordering::Relaxed);
        }
        self.stats.add(net, stat::TABLE_ENTRIES, n);
        self.stats.add(net, stat::TABLE_BYTES, bytes);
    }

    fn is_empty(&self) -> bool {
        self.entries.load(Ordering::Relaxed) == 0
    }

    /// Whether the table may hold a request's entry (see `reqs`).
    fn has_requests(&self) -> bool {
        self.reqs.load(Ordering::Relaxed) != 0
    }

    /// A request's entry was added or removed: called under the table's lock.
    fn req_counted(&self, added: bool) {
        if added {
            self.reqs.fetch_add(1, Ordering::Relaxed);
        } else {
            self.reqs.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn forget(&self, net: &NetNs<'_>, key: Key) {
        let mut table = self.table.lock();
        let node = table.remove_node(&key);
        if node.is_some() && matches!(key, Key::Req(_)) {
            self.req_counted(false);
        }
        drop(table);
        if node.is_some() {
            self.counted(net, false);
        }
        // The node is freed here, after the lock.
    }

    /// Adds `node` under `key` (its key), replacing an entry under the same key.
    fn insert(&self, net: &NetNs<'_>, key: Key, node: RBTreeNode<Key, Entry>) {
        let mut table = self.table.lock();
        let replaced = table.insert(node);
        if replaced.is_none() && matches!(key, Key::Req(_)) {
            self.req_counted(true);
        }
        drop(table);
        if replaced.is_none() {
            self.counted(net, true);
        }
    }

    /// The entry a segment's option makes, if usable (what was wrong with it is counted).
    fn read(&self, net: &NetNs<'_>, seg: &Segment<'_>) -> Option<Entry> {
        let hdr = seg.tcp_header();
        self.entry_of(net, hdr, || balancer_end(seg, hdr))
    }

    /// The entry the options in `hdr` make, with the segment's source end `from()` as the
    /// balancer's: read only once an option is found (most segments carry none).
    fn entry_of(
        &self,
        net: &NetNs<'_>,
        hdr: &[u8],
        from: impl FnOnce() -> Option<(Addr, u16)>,
    ) -> Option<Entry> {
        let scan = option::scan_tcp_header(hdr, &self.kinds);
        if scan.malformed {
            self.stats.inc(net, stat::TOA_MALFORMED);
        }
        if scan.ignored > 0 {
            self.stats
                .add(net, stat::TOA_IGNORED, i64::from(scan.ignored));
        }
        let client = scan.client?;
        if scan.count > 1 {
            self.stats.inc(net, stat::TOA_MULTIPLE);
        }
        let (balancer, balancer_port) = from()?;
        if !self.trusted.allows(balancer) {
            self.stats.inc(net, stat::TOA_UNTRUSTED);
            return None;
        }
        Some(Entry {
            client,
            balancer,
            balancer_port,
            from_syn: false,
        })
    }

    /// Room for one more entry, allocated; `None` (counted) when full or out of memory.
    fn node(&self, net: &NetNs<'_>, key: Key, entry: Entry) -> Option<RBTreeNode<Key, Entry>> {
        if self.entries.load(Ordering::Relaxed) >= self.max_entries {
            self.stats.inc(net, stat::TABLE_FULL);
            return None;
        }
        let node = RBTreeNode::new(key, entry, GFP_ATOMIC).ok();
        if node.is_none() {
            self.stats.inc(net, stat::ALLOC_FAILED);
        }
        node
    }
}

impl TcpObserver for State {
    fn request_created(&self, net: &NetNs<'_>, req: ReqKey, syn: &Segment<'_>) {
        let Some(entry) = self.read(net, syn) else {
            return;
        };
        self.stats.inc(net, stat::SYN_TOA);
        let entry = Entry {
            from_syn: true,
            ..entry
        };
        if let Some(node) = self.node(net, Key::Req(req), entry) {
            self.insert(net, Key::Req(req), node);
        }
    }

    fn request_freed(&self, net: &NetNs<'_>, req: ReqKey) {
        if self.has_requests() {
            self.forget(net, Key::Req(req));
        }
    }

    fn completing(&self, net: &NetNs<'_>, req: ReqKey, seg: &Segment<'_>) {
        if let Some(entry) = self.read(net, seg) {
            // The segment completing the handshake has the last word.
            if let Some(node) = self.node(net, Key::Req(req), entry) {
                self.insert(net, Key::Req(req), node);
            }
            return;
        }
        // Else the SYN's option, if it came from the same balancer end.
        let from = || balancer_end(seg, seg.tcp_header());
        let adopted = !self.is_empty()
            && match self.table.lock().get_mut(&Key::Req(req)) {
                Some(e) if e.from_syn && Some(e.balancer_end()) == from() => {
                    e.from_syn = false;
                    true
                }
                Some(e) => !e.from_syn,
                None => false,
            };
        if !adopted {
            self.stats.inc(net, stat::SYN_RECV_SOCK_NO_TOA);
        }
    }

    fn child_queued(&self, net: &NetNs<'_>, child: SockKey, req: ReqKey) {
        if !self.has_requests() {
            return;
        }
        let mut table = self.table.lock();
        // One walk of the tree: the entry found is read, then taken out.
        let Some(found) = table.find_mut(&Key::Req(req)) else {
            return;
        };
        let entry = *found.get();
        let node = found.remove_node();
        self.req_counted(false);
        if entry.from_syn {
            // Its handshake ended from another end (counted in `completing`).
            drop(table);
            self.counted(net, false);
            return;
        }
        // The request's allocation becomes the socket's.
        let node = node.into_reservation().into_node(Key::Sock(child), entry);
        let replaced = table.insert(node);
        drop(table);
        if replaced.is_some() {
            // A socket at this address whose destruction went unseen.
            self.counted(net, false);
        }
        self.stats.inc(net, stat::SYN_RECV_SOCK_TOA);
        if matches!(entry.client.addr, Addr::V6(_)) {
            self.stats.inc(net, stat::SYN_RECV_SOCK_TOA_V6);
        }
    }

    /// The socket's entry, copied: looked up as the call starts, so that the many calls on
    /// sockets without one (while others have one) return without the probe's return half.
    /// The socket is held by the call, and only its creation gives it an entry: the copy is
    /// still what the table holds at the return, unless another call finds it stale meanwhile.
    type Peer = Entry;

    fn wants_peer_names(&self) -> bool {
        !self.is_empty()
    }

    fn peer_of(&self, net: &NetNs<'_>, sk: SockKey) -> Option<Entry> {
        let entry = self.table.lock().get(&Key::Sock(sk)).copied();
        if entry.is_none() {
            self.stats.inc(net, stat::GETNAME_TOA_EMPTY);
        }
        entry
    }

    fn peer_name(&self, net: &NetNs<'_>, sk: SockKey, e: Entry, name: &mut PeerName<'_>) {
        // The kernel's answer must still be the balancer the entry was made for; if not, the
        // socket is not the one it was made for (an address reused after a missed destroy).
        let current = name.get().map(|(a, p)| (addr(a).unmapped(), p));
        if current != Some((e.balancer.unmapped(), e.balancer_port)) {
            self.stats.inc(net, stat::GETNAME_TOA_MISMATCH);
            self.forget(net, Key::Sock(sk));
            return;
        }
        if name.set(inet(e.client.addr), e.client.port) {
            self.stats.inc(net, stat::GETNAME_TOA_OK);
        } else {
            // An IPv6 client on an IPv4 socket (NAT64): an AF_INET address cannot carry it.
            self.stats.inc(net, stat::GETNAME_TOA_BYPASS);
        }
    }

    fn destroyed(&self, net: &NetNs<'_>, sk: SockKey) {
        if !self.is_empty() {
            self.forget(net, Key::Sock(sk));
        }
    }

    fn stats(&self) -> Option<&ProcStats> {
        Some(&self.stats)
    }
}

/// The NAT64 lookup (see `nat64`): the IPv6 client of an IPv4 socket.
impl GetSockopt for State {
    fn get(&self, sk: &SockRef<'_>, optname: i32, out: &mut SockoptOut<'_>) -> Result {
        nat64::check_request(optname, out.room()).map_err(errno)?;
        let net = &sk.net();
        let peer = sk.peer();
        let mut client = None;
        if let (Some((a, port, _)), false) = (peer, self.is_empty()) {
            let entry = self.table.lock().get(&Key::Sock(sk.key())).copied();
            if let Some(e) = entry {
                // As at getname: the peer must still be the balancer end the entry was made for.
                if (addr(a).unmapped(), port) == (e.balancer.unmapped(), e.balancer_port) {
                    client = Some(e.client);
                } else {
                    self.stats.inc(net, stat::GETNAME_TOA_MISMATCH);
                    self.forget(net, Key::Sock(sk.key()));
                }
            }
        }
        let v6_socket = peer.is_some_and(|p| p.2);
        match nat64::answer(peer.is_some(), client, v6_socket) {
            Ok(bytes) => {
                out.write(&bytes)?;
                self.stats.inc(net, stat::NAT64_LOOKUP_OK);
                Ok(())
            }
            Err(r) => {
                if r == nat64::Refusal::Invalid {
                    self.stats.inc(net, stat::NAT64_LOOKUP_EMPTY);
                }
                Err(errno(r))
            }
        }
    }
}

fn errno(r: nat64::Refusal) -> Error {
    match r {
        nat64::Refusal::Invalid => EINVAL,
        nat64::Refusal::NotConnected => ENOTCONN,
        nat64::Refusal::NotNat64 => EFAULT,
    }
}

struct Toa {
    // Declared first, so dropped first: no lookup runs once the state goes.
    _nat64: Option<SockoptRegistration<State>>,
    // Then no handler runs once the state goes.
    probes: TcpProbes<State>,
    state: Arc<State>,
}

fn describe(e: trusted::Error) -> &'static str {
    match e {
        trusted::Error::BadEntry(_) => "an entry is not an IPv4/IPv6 address or prefix",
        trusted::Error::BadLength(_) => "a prefix length exceeds its address width",
        trusted::Error::TooMany => "more than 32 prefixes",
    }
}

/// Parses string parameter `name` (its bytes `raw`); a refusal is logged with the value and
/// why, and fails the load.
fn parse_param<T, E>(
    name: &str,
    raw: &[u8],
    parse: impl FnOnce(&[u8]) -> core::result::Result<T, E>,
    why: impl FnOnce(E) -> &'static str,
) -> Result<T> {
    parse(raw).map_err(|e| {
        let value = kernel::str::BStr::from_bytes(raw);
        pr_err!("TOA: {name}={value:?} refused: {}\n", why(e));
        EINVAL
    })
}

impl kernel::Module for Toa {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let trusted = parse_param("trusted", params::trusted(), Trusted::parse, describe)?;
        let kinds = parse_param("kinds", params::kinds(), Kinds::parse, |e| e.describe())?;
        let max_entries = knet::param::value(&module_parameters::max_entries);
        if !(1..=1 << 24).contains(&max_entries) {
            pr_err!("TOA: max_entries={max_entries} is out of range (1 to 16777216)\n");
            return Err(EINVAL);
        }
        let prefixes = trusted.prefixes().len();
        let state = Arc::pin_init(
            try_pin_init!(State {
                table <- new_spinlock_irq!(RBTree::new(), "toa_table"),
                entries: AtomicUsize::new(0),
                reqs: AtomicUsize::new(0),
                max_entries: max_entries as usize,
                trusted,
                kinds,
                stats: ProcStats::new(c"toa_stats", &stat::NAMES)?,
            }),
            GFP_KERNEL,
        )?;
        let probes = TcpProbes::new(state.clone())?;
        // Last: nothing may fail after it (see `SockoptRegistration`). Another module holding
        // the name (another TOA) leaves the lookup to it.
        let (first, last) = (nat64::TOA_SO_GET_LOOKUP, nat64::TOA_SO_GET_LOOKUP);
        let nat64 = match SockoptRegistration::new(module, first, last, state.clone()) {
            Ok(r) => Some(r),
            Err(e) => {
                pr_warn!(
                    "TOA: getsockopt {first} (TOA_SO_GET_LOOKUP) unavailable ({e:?}): no NAT64 lookup\n"
                );
                None
            }
        };
        let k = kinds.as_slice();
        if prefixes == 0 {
            pr_info!("TOA: toa loaded (options accepted from any peer; kinds {k:?})\n");
        } else {
            pr_info!("TOA: toa loaded (options accepted from {prefixes} trusted prefixes; kinds {k:?})\n");
        }
        Ok(Toa {
            _nat64: nat64,
            probes,
            state,
        })
    }
}

impl Drop for Toa {
    fn drop(&mut self) {
        let s = &self.state.stats;
        pr_info!(
            "TOA: toa unloaded ({} trusted prefixes; {} connections with TOA, {} left in the table, {} probe hits missed)\n",
            self.state.trusted.prefixes().len(),
            s.sum(stat::SYN_RECV_SOCK_TOA),
            s.sum(stat::TABLE_ENTRIES),
            self.probes.missed()
        );
    }
}
