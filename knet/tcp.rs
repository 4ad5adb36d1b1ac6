// SPDX-License-Identifier: GPL-2.0

//! Watching TCP connections from the side, without touching the protocol's ops: the request a
//! SYN creates (with the SYN) and its end, the child socket a handshake creates (with the
//! segment that completed it), the peer address that `getpeername()`/`accept()` report, and the
//! socket's destruction. Built on entry probes (ftrace callbacks) of
//! `tcp_v4_route_req`/`tcp_v6_route_req`,
//! `__reqsk_free`, `tcp_v4_syn_recv_sock`, `tcp_v6_syn_recv_sock`,
//! `inet_csk_complete_hashdance` and `inet_csk_reqsk_queue_add`, return probes of `inet_getname`
//! and `inet6_getname` (the only calls whose result is needed), and the `tcp_destroy_sock`
//! tracepoint.

use super::{
    probe::{
        EntryProbe, EntryProbeRegistration, Regs, RetProbe, RetProbeRegistration, SockTracepoint,
        SockTracepointRegistration, Watched,
    },
    stats::{NetNs, ProcStats},
    sys,
};
use core::{marker::PhantomData, ptr::NonNull};
use kernel::{bindings, ffi::c_int, prelude::*, sync::Arc};

/// Identity of a socket while it exists (its address; never dereferenced by users).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SockKey(usize);

impl SockKey {
    /// The key of socket `sk`.
    pub(super) fn of(sk: *const bindings::sock) -> Self {
        SockKey(sk as usize)
    }
}

/// Identity of a connection request (a SYN being answered) while it exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ReqKey(usize);

/// An IP address, network byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InetAddr {
    /// IPv4.
    V4([u8; 4]),
    /// IPv6 (possibly v4-mapped).
    V6([u8; 16]),
}

/// The segment that completed a handshake, as seen by the probe.
///
/// # Invariants
///
/// `skb` is the packet argument of the probed call whose handler made this value: live, and not
/// changed while that handler runs, which outlasts the value (`'a`).
pub(crate) struct Segment<'a> {
    skb: NonNull<bindings::sk_buff>,
    _life: PhantomData<&'a bindings::sk_buff>,
}

impl Segment<'_> {
    /// The segment's linear data from `offset` (from `skb->head`) up to its tail; `None` if the
    /// header is not set (`offset` is `u16::MAX`).
    fn linear_from(&self, offset: u16) -> Option<&[u8]> {
        if offset == u16::MAX {
            return None;
        }
        // SAFETY: by the type invariant `skb` is the live segment of the probed call, not changed
        // while the handler runs; `head..head + tail` is its linear data (`skb_tail_pointer`
        // with offsets, as on 64-bit).
        unsafe {
            let s = self.skb.as_ptr();
            let len = ((*s).tail as usize).checked_sub(offset.into())?;
            Some(core::slice::from_raw_parts(
                (*s).head.add(offset.into()),
                len,
            ))
        }
    }

    /// The TCP header, options included, as the segment's linear data holds it (empty if that
    /// holds no whole TCP header; with a bad data offset, the fixed 20 bytes). On the receive
    /// path TCP has pulled the header and its options into the linear data already. Read in
    /// place, not copied: the packet does not change while the handler runs.
    pub(crate) fn tcp_header(&self) -> &[u8] {
        // SAFETY: by the type invariant `skb` is a live packet, unchanged while we read it.
        let th = unsafe { super::skb::headers(self.skb.as_ptr()) }.transport_header;
        let Some(data) = self.linear_from(th).filter(|d| d.len() >= 20) else {
            return &[];
        };
        // Data offset: the header's length in 32-bit words, options included.
        let doff = usize::from(data[12] >> 4) * 4;
        let len = if doff < 20 || doff > data.len() {
            20
        } else {
            doff
        };
        // At most 60 bytes: the data offset is 4 bits of 32-bit words.
        &data[..len]
    }

    /// The segment's source address.
    pub(crate) fn source(&self) -> Option<InetAddr> {
        // SAFETY: by the type invariant `skb` is a live packet, unchanged while `self` lives.
        let h = unsafe { super::skb::headers(self.skb.as_ptr()) };
        let nh = self.linear_from(h.network_header)?;
        match u32::from(u16::from_be(h.protocol)) {
            // IPv4: the source address at bytes 12..16; IPv6: at 8..24.
            bindings::ETH_P_IP => Some(InetAddr::V4(nh.get(12..16)?.try_into().ok()?)),
            bindings::ETH_P_IPV6 => Some(InetAddr::V6(nh.get(8..24)?.try_into().ok()?)),
            _ => None,
        }
    }
}

/// The address a `getpeername()`/`accept()` call is about to return.
///
/// # Invariants
///
/// `uaddr` is the address buffer that the probed `inet_getname`/`inet6_getname` call filled in
/// and returned success for: live and writable while the return handler that made this value
/// runs (which outlasts it), and holding the sockaddr its family names.
pub(crate) struct PeerName<'a> {
    uaddr: NonNull<bindings::sockaddr>,
    _life: PhantomData<&'a mut bindings::sockaddr>,
}

impl PeerName<'_> {
    /// The address and port (host order) the kernel filled in.
    pub(crate) fn get(&self) -> Option<(InetAddr, u16)> {
        let sa = self.uaddr.as_ptr();
        // SAFETY: by the type invariant `uaddr` is the sockaddr the probed call just filled in
        // (for `getpeername()`/`accept()`, a `sockaddr_storage` in its caller's frame), live
        // during the return handler: its family says which sockaddr it holds.
        unsafe {
            match u32::from((*sa).sa_family) {
                bindings::AF_INET => {
                    let sin = &*sa.cast::<sys::sockaddr_in>();
                    let a = sin.sin_addr.s_addr.to_ne_bytes();
                    Some((InetAddr::V4(a), u16::from_be(sin.sin_port)))
                }
                bindings::AF_INET6 => {
                    let sin6 = &*sa.cast::<bindings::sockaddr_in6>();
                    let a = sin6.sin6_addr.in6_u.u6_addr8;
                    Some((InetAddr::V6(a), u16::from_be(sin6.sin6_port)))
                }
                _ => None,
            }
        }
    }

    /// Replaces address and port. An IPv4 address goes into an `AF_INET` sockaddr, or v4-mapped
    /// into an `AF_INET6` one; an IPv6 address only into `AF_INET6`. Returns whether it was
    /// written.
    pub(crate) fn set(&mut self, addr: InetAddr, port: u16) -> bool {
        let is_v6 = matches!(self.get(), Some((InetAddr::V6(_), _)));
        let a16 = match (addr, is_v6) {
            (InetAddr::V4(a), _) => {
                let mut m = [0u8; 16];
                m[10] = 0xff;
                m[11] = 0xff;
                m[12..].copy_from_slice(&a);
                m
            }
            (InetAddr::V6(a), true) => a,
            (InetAddr::V6(_), false) => return false,
        };
        let sa = self.uaddr.as_ptr();
        // SAFETY: by the type invariant `uaddr` is live, writable, and holds the sockaddr its
        // family names; only that sockaddr's fields are written and the family stays, so the
        // write stays within what the probed call wrote.
        unsafe {
            match u32::from((*sa).sa_family) {
                bindings::AF_INET => {
                    let sin = &mut *sa.cast::<sys::sockaddr_in>();
                    let mut v4 = [0u8; 4];
                    v4.copy_from_slice(&a16[12..]);
                    sin.sin_addr.s_addr = u32::from_ne_bytes(v4);
                    sin.sin_port = port.to_be();
                }
                bindings::AF_INET6 => {
                    let sin6 = &mut *sa.cast::<bindings::sockaddr_in6>();
                    sin6.sin6_addr.in6_u.u6_addr8 = a16;
                    sin6.sin6_port = port.to_be();
                }
                _ => return false,
            }
        }
        true
    }
}

/// What a module watching TCP connections does at each event. All methods run in atomic
/// context (softirq for the handshake events) and must not sleep.
///
/// Each event comes with the network namespace it happens in (`net`), for counters kept per
/// namespace.
pub(crate) trait TcpObserver: Send + Sync + 'static {
    /// A SYN created request `req`; `syn` is the SYN.
    fn request_created(&self, net: &NetNs<'_>, req: ReqKey, syn: &Segment<'_>);
    /// Request `req` is being freed (whether or not it became a socket).
    fn request_freed(&self, net: &NetNs<'_>, req: ReqKey);
    /// Segment `seg` completes the handshake of request `req`: the child socket is being
    /// created. May be called more than once for a request (CPUs racing on its final ACK, or a
    /// creation that failed); only one child is queued, and not always.
    fn completing(&self, net: &NetNs<'_>, req: ReqKey, seg: &Segment<'_>);
    /// `child`, created from request `req`, is being queued for `accept()`: before anyone can
    /// ask for its peer's name.
    fn child_queued(&self, net: &NetNs<'_>, child: SockKey, req: ReqKey);
    /// What `peer_name` needs to know of a socket, kept from the call's start to its return.
    type Peer: Copy;
    /// Whether `peer_of` may find anything at all (a cheap check on a hot path).
    fn wants_peer_names(&self) -> bool;
    /// `getpeername()`/`accept()` asks for TCP socket `sk`'s peer: what `peer_name` will need
    /// when the call returns, or `None` when it has nothing to change (the call then returns
    /// without the probe's return half, the costlier one).
    fn peer_of(&self, net: &NetNs<'_>, sk: SockKey) -> Option<Self::Peer>;
    /// That call, for which `peer_of` gave `peer`, is about to return `name`.
    fn peer_name(&self, net: &NetNs<'_>, sk: SockKey, peer: Self::Peer, name: &mut PeerName<'_>);
    /// Socket `sk` is being destroyed.
    fn destroyed(&self, net: &NetNs<'_>, sk: SockKey);
    /// Where missed probe hits are reported, if anywhere.
    fn stats(&self) -> Option<&ProcStats> {
        None
    }
}

/// The namespace of the socket or request socket `sk`, an argument of the probed call.
///
/// # Safety
///
/// `sk` is null or a socket or request socket that stays alive while the value is used (an
/// argument of the probed call, used during its handler).
unsafe fn net_of<'a>(sk: usize) -> NetNs<'a> {
    if sk == 0 {
        return NetNs::init();
    }
    // SAFETY: per the function's contract.
    unsafe { NetNs::of_sock(sk as *const bindings::sock) }
}

/// `V6`: the probe of `tcp_v6_syn_recv_sock`, which hands IPv4 segments (v4 clients of
/// dual-stack listeners) on to `tcp_v4_syn_recv_sock`, whose probe reports them.
///
/// An entry probe, not a return probe: the child is reported where it is queued for accept()
/// (see [`Hashdance`] and [`QueueAdd`]), so the costly function-graph return is not taken on
/// every handshake.
struct SynRecv<T, const V6: bool>(PhantomData<T>);

impl<T: TcpObserver, const V6: bool> EntryProbe for SynRecv<T, V6> {
    type Ctx = T;

    fn hit(ctx: &T, regs: &Regs) {
        // tcp_v{4,6}_syn_recv_sock(sk, skb, req, dst, req_unhash, own_req, ...)
        let Some(skb) = NonNull::new(regs.arg(1) as *mut bindings::sk_buff) else {
            return;
        };
        // INVARIANT: the skb argument of the probed call, live and unchanged while this handler
        // runs; `seg` does not outlive it.
        let seg = Segment {
            skb,
            _life: PhantomData,
        };
        if V6 && matches!(seg.source(), Some(InetAddr::V4(_))) {
            // Handed on to tcp_v4_syn_recv_sock, whose probe reports it.
            return;
        }
        // SAFETY: the listener argument of the probed call, alive during it.
        let net = unsafe { net_of(regs.arg(0)) };
        ctx.completing(&net, ReqKey(regs.arg(2)), &seg);
    }
}

/// The end of a normal handshake: `inet_csk_complete_hashdance` queues the child it is given
/// when `own_req` (this CPU's child won the request). It queues it with
/// `inet_csk_reqsk_queue_add`, but the compiler inlines that call there.
struct Hashdance<T>(PhantomData<T>);

impl<T: TcpObserver> EntryProbe for Hashdance<T> {
    type Ctx = T;

    fn hit(ctx: &T, regs: &Regs) {
        // inet_csk_complete_hashdance(sk, child, req, own_req)
        let child = regs.arg(1);
        if child != 0 && regs.arg(3) as u8 != 0 {
            // SAFETY: the child argument of the probed call, alive during it.
            let net = unsafe { net_of(child) };
            ctx.child_queued(&net, SockKey(child), ReqKey(regs.arg(2)));
        }
    }
}

/// The end of a syncookie or fast-open handshake, which queue the child they made with a
/// call of `inet_csk_reqsk_queue_add` (out of line). A child moving to another SO_REUSEPORT
/// listener when its own closes is queued here too, with a clone of its request: no request
/// the observer knows, so nothing is reported twice.
struct QueueAdd<T>(PhantomData<T>);

impl<T: TcpObserver> EntryProbe for QueueAdd<T> {
    type Ctx = T;

    fn hit(ctx: &T, regs: &Regs) {
        // inet_csk_reqsk_queue_add(sk, req, child)
        let child = regs.arg(2);
        if child != 0 {
            // SAFETY: the child argument of the probed call, alive during it.
            let net = unsafe { net_of(child) };
            ctx.child_queued(&net, SockKey(child), ReqKey(regs.arg(1)));
        }
    }
}

struct GetName<T>(PhantomData<T>);

impl<T: TcpObserver> RetProbe for GetName<T> {
    type Ctx = T;
    /// `sk` and `uaddr` of the call, and what the observer needs at its return.
    type Data = (usize, usize, T::Peer);

    fn entry(ctx: &T, regs: &Regs) -> Option<Self::Data> {
        // inet{,6}_getname(sock, uaddr, peer)
        if regs.arg(2) as c_int == 0 || !ctx.wants_peer_names() {
            return None;
        }
        let sock = regs.arg(0) as *const bindings::socket;
        // SAFETY: `sock` is the socket argument of the probed call, live during it.
        let sk = unsafe { sys::knet_socket_sk(sock) };
        // SAFETY: `sk` is that socket's sock (or NULL, which the shim handles).
        if !unsafe { sys::knet_sk_is_tcp(sk) } {
            return None;
        }
        // SAFETY: the socket of the probed call, whose caller holds it until the call returns.
        let net = unsafe { net_of(sk as usize) };
        let peer = ctx.peer_of(&net, SockKey(sk as usize))?;
        Some((sk as usize, regs.arg(1), peer))
    }

    fn exit(ctx: &T, regs: &Regs, (sk, uaddr, peer): Self::Data) {
        if (regs.ret() as c_int) < 0 {
            return;
        }
        let Some(uaddr) = NonNull::new(uaddr as *mut bindings::sockaddr) else {
            return;
        };
        // INVARIANT: the `uaddr` argument of this call, which returned success (checked above)
        // after filling it in; `name` does not outlive this handler.
        let mut name = PeerName {
            uaddr,
            _life: PhantomData,
        };
        // SAFETY: the socket of the probed call, whose caller holds it until the call returns.
        let net = unsafe { net_of(sk) };
        ctx.peer_name(&net, SockKey(sk), peer, &mut name);
    }
}

struct RouteReq<T>(PhantomData<T>);

impl<T: TcpObserver> EntryProbe for RouteReq<T> {
    type Ctx = T;

    fn hit(ctx: &T, regs: &Regs) {
        // tcp_v{4,6}_route_req(sk, skb, fl, req, ...): the SYN and its new request.
        let Some(skb) = NonNull::new(regs.arg(1) as *mut bindings::sk_buff) else {
            return;
        };
        // INVARIANT: the skb argument (the SYN) of the probed call, live and unchanged while this
        // handler runs; `seg` does not outlive it.
        let seg = Segment {
            skb,
            _life: PhantomData,
        };
        // SAFETY: the listener argument of the probed call, alive during it.
        let net = unsafe { net_of(regs.arg(0)) };
        ctx.request_created(&net, ReqKey(regs.arg(3)), &seg);
    }
}

struct ReqFree<T>(PhantomData<T>);

impl<T: TcpObserver> EntryProbe for ReqFree<T> {
    type Ctx = T;

    fn hit(ctx: &T, regs: &Regs) {
        // __reqsk_free(req)
        // SAFETY: the request argument of the probed call, alive until the call frees it.
        let net = unsafe { net_of(regs.arg(0)) };
        ctx.request_freed(&net, ReqKey(regs.arg(0)));
    }
}

/// The `tcp_destroy_sock` tracepoint, in `tcp_v4_destroy_sock` (which IPv6 sockets use too).
struct Destroy<T>(PhantomData<T>);

impl<T: TcpObserver> SockTracepoint for Destroy<T> {
    type Ctx = T;

    fn hit(ctx: &T, sk: usize) {
        // SAFETY: the socket of the tracepoint, being destroyed but still alive.
        let net = unsafe { net_of(sk) };
        ctx.destroyed(&net, SockKey(sk));
    }
}

/// The probes of a [`TcpObserver`], registered together: all or none.
///
/// # Invariants
///
/// Every counter of ours that `ctx.stats()` watches is that of a probe in [`Self::all`], still
/// registered: `drop` unwatches them all before the fields (the registrations) are dropped.
/// This holds only if [`TcpObserver::stats`] returns the same table every time.
pub(crate) struct TcpProbes<T: TcpObserver> {
    ctx: Arc<T>,
    // Dropped in this order: getname first, destruction last, so no entry outlives its socket.
    name4: RetProbeRegistration<GetName<T>>,
    name6: RetProbeRegistration<GetName<T>>,
    syn4: EntryProbeRegistration<SynRecv<T, false>>,
    syn6: EntryProbeRegistration<SynRecv<T, true>>,
    hashdance: EntryProbeRegistration<Hashdance<T>>,
    queue: EntryProbeRegistration<QueueAdd<T>>,
    route4: EntryProbeRegistration<RouteReq<T>>,
    route6: EntryProbeRegistration<RouteReq<T>>,
    req_free: EntryProbeRegistration<ReqFree<T>>,
    _destroy: SockTracepointRegistration<Destroy<T>>,
}

impl<T: TcpObserver> TcpProbes<T> {
    /// Registers the probes with `ctx` as their observer.
    pub(crate) fn new(ctx: Arc<T>) -> Result<Self> {
        let destroy = SockTracepointRegistration::new(c"tcp_destroy_sock", ctx.clone())?;
        let req_free = EntryProbeRegistration::new(c"__reqsk_free", ctx.clone())?;
        let route4 = EntryProbeRegistration::new(c"tcp_v4_route_req", ctx.clone())?;
        let route6 = EntryProbeRegistration::new(c"tcp_v6_route_req", ctx.clone())?;
        let queue = EntryProbeRegistration::new(c"inet_csk_reqsk_queue_add", ctx.clone())?;
        let hashdance = EntryProbeRegistration::new(c"inet_csk_complete_hashdance", ctx.clone())?;
        let syn4 = EntryProbeRegistration::new(c"tcp_v4_syn_recv_sock", ctx.clone())?;
        let syn6 = EntryProbeRegistration::new(c"tcp_v6_syn_recv_sock", ctx.clone())?;
        let name4 = RetProbeRegistration::new(c"inet_getname", ctx.clone())?;
        let name6 = RetProbeRegistration::new(c"inet6_getname", ctx.clone())?;
        let probes = Self {
            ctx,
            name4,
            name6,
            syn4,
            syn6,
            hashdance,
            queue,
            route4,
            route6,
            req_free,
            _destroy: destroy,
        };
        // INVARIANT: only the probes of `all` are watched; on an error `probes` is dropped,
        // unwatching those watched so far.
        if let Some(stats) = probes.ctx.stats() {
            for p in probes.all() {
                stats.watch(p)?;
            }
        }
        Ok(probes)
    }

    /// The probes that can miss hits (a tracepoint cannot).
    fn all(&self) -> [&dyn Watched; 9] {
        [
            &self.name4,
            &self.name6,
            &self.syn4,
            &self.syn6,
            &self.hashdance,
            &self.queue,
            &self.route4,
            &self.route6,
            &self.req_free,
        ]
    }

    /// Probe hits missed (recursion, or a full return stack for getname's return probes).
    pub(crate) fn missed(&self) -> i64 {
        self.all().iter().map(|p| p.missed()).sum()
    }
}

impl<T: TcpObserver> Drop for TcpProbes<T> {
    fn drop(&mut self) {
        // The statistics outlive the probes (the context owns them): stop reading the probes'
        // counters before the probes go. Unwatching one that was never watched (registration
        // stopped half-way) is a no-op.
        if let Some(stats) = self.ctx.stats() {
            for p in self.all() {
                stats.unwatch(p);
            }
        }
    }
}
