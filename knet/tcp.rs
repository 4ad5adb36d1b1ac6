// SPDX-License-Identifier: GPL-2.0

//! Watching TCP connections from the side, without touching the protocol's ops: the request a
//! SYN creates (with the SYN) and its end, the child socket a handshake creates (with the
//! segment that completed it), the peer address that `getpeername()`/`accept()` report, and the
//! socket's destruction. Built on kprobes of `tcp_v4_route_req`/`tcp_v6_route_req`,
//! `__reqsk_free`, `tcp_v4_syn_recv_sock`, `tcp_v6_syn_recv_sock`, `inet_getname`,
//! `inet6_getname` and `tcp_v4_destroy_sock` (which IPv6 TCP sockets use too).

use super::{
    probe::{EntryProbe, EntryProbeRegistration, Regs, RetProbe, RetProbeRegistration},
    stats::ProcStats,
    sys,
};
use core::{marker::PhantomData, ptr::NonNull};
use kernel::{bindings, ffi::c_int, prelude::*, sync::Arc};

/// Identity of a socket while it exists (its address; never dereferenced by users).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SockKey(usize);

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
pub(crate) struct Segment<'a> {
    skb: NonNull<bindings::sk_buff>,
    _life: PhantomData<&'a bindings::sk_buff>,
}

/// Largest TCP header.
pub(crate) const TCP_MAX_HEADER: usize = 60;

impl Segment<'_> {
    /// Copies the TCP header, options included, into `buf`; returns the copied part (empty if
    /// the segment has none).
    pub(crate) fn tcp_header<'b>(&self, buf: &'b mut [u8; TCP_MAX_HEADER]) -> &'b [u8] {
        // SAFETY: `skb` is the live segment being processed by the probed call; the shim bounds
        // the copy by `buf`'s size and by what the packet holds.
        let n = unsafe {
            sys::knet_skb_tcp_header(self.skb.as_ptr(), buf.as_mut_ptr(), buf.len() as u32)
        };
        &buf[..(n as usize).min(buf.len())]
    }

    /// The segment's source address.
    pub(crate) fn source(&self) -> Option<InetAddr> {
        let mut a = [0u8; 16];
        // SAFETY: as in `tcp_header`; the shim writes at most 16 bytes.
        match unsafe { sys::knet_skb_saddr(self.skb.as_ptr(), a.as_mut_ptr()) } {
            4 => Some(InetAddr::V4([a[0], a[1], a[2], a[3]])),
            6 => Some(InetAddr::V6(a)),
            _ => None,
        }
    }
}

/// The address a `getpeername()`/`accept()` call is about to return.
pub(crate) struct PeerName<'a> {
    uaddr: NonNull<bindings::sockaddr>,
    _life: PhantomData<&'a mut bindings::sockaddr>,
}

impl PeerName<'_> {
    /// The address and port (host order) the kernel filled in.
    pub(crate) fn get(&self) -> Option<(InetAddr, u16)> {
        let mut a = [0u8; 16];
        let mut port: bindings::__be16 = 0;
        // SAFETY: `uaddr` is the sockaddr the probed call just filled in, in its caller's frame
        // which is live during the return handler; the shim writes at most 16 bytes into `a`.
        let family =
            unsafe { sys::knet_sockaddr_get(self.uaddr.as_ptr(), a.as_mut_ptr(), &mut port) };
        let port = u16::from_be(port);
        match family {
            4 => Some((InetAddr::V4([a[0], a[1], a[2], a[3]]), port)),
            6 => Some((InetAddr::V6(a), port)),
            _ => None,
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
        // SAFETY: as in `get`; the shim keeps the sockaddr's family and size.
        unsafe { sys::knet_sockaddr_set(self.uaddr.as_ptr(), a16.as_ptr(), port.to_be()) };
        true
    }
}

/// What a module watching TCP connections does at each event. All methods run in atomic
/// context (softirq for `child_created`) and must not sleep.
pub(crate) trait TcpObserver: Send + Sync + 'static {
    /// What the observer learns from the segment completing a handshake, kept until the
    /// socket it creates exists.
    type Child: Copy;
    /// A SYN created request `req`; `syn` is the SYN.
    fn request_created(&self, req: ReqKey, syn: &Segment<'_>);
    /// Request `req` is being freed (whether or not it became a socket).
    fn request_freed(&self, req: ReqKey);
    /// A handshake is completing request `req` with segment `seg`: what to hand to
    /// `child_created` for the socket it creates, or `None` to skip it, which spares the return
    /// probe (the costly part) on connections of no interest.
    fn completing(&self, req: ReqKey, seg: &Segment<'_>) -> Option<Self::Child>;
    /// The handshake of request `req` created `child`; `note` is what `completing` returned.
    fn child_created(&self, child: SockKey, req: ReqKey, note: Self::Child);
    /// Whether `peer_name` has anything to do at all (a cheap check on a hot path).
    fn wants_peer_names(&self) -> bool;
    /// `getpeername()`/`accept()` on TCP socket `sk` is about to return `name`.
    fn peer_name(&self, sk: SockKey, name: &mut PeerName<'_>);
    /// Socket `sk` is being destroyed.
    fn destroyed(&self, sk: SockKey);
    /// Where missed probe hits are reported, if anywhere.
    fn stats(&self) -> Option<&ProcStats> {
        None
    }
}

/// `V6`: the probe of `tcp_v6_syn_recv_sock`, which hands IPv4 segments (v4 clients of
/// dual-stack listeners) on to `tcp_v4_syn_recv_sock`, whose probe reports them.
struct SynRecv<T, const V6: bool>(PhantomData<T>);

impl<T: TcpObserver, const V6: bool> RetProbe for SynRecv<T, V6> {
    type Ctx = T;
    /// `skb`, `req` and `own_req` of the call.
    /// The observer's note, `req` and `own_req` of the call.
    type Data = (T::Child, usize, usize);

    fn entry(ctx: &T, regs: &Regs) -> Option<(T::Child, usize, usize)> {
        // tcp_v{4,6}_syn_recv_sock(sk, skb, req, dst, req_unhash, own_req, ...)
        let (skb, req) = (regs.arg(1), regs.arg(2));
        let seg = Segment {
            skb: NonNull::new(skb as *mut bindings::sk_buff)?,
            _life: PhantomData,
        };
        if V6 && matches!(seg.source(), Some(InetAddr::V4(_))) {
            // Handed on to tcp_v4_syn_recv_sock, whose probe reports it.
            return None;
        }
        let note = ctx.completing(ReqKey(req), &seg)?;
        Some((note, req, regs.arg(5)))
    }

    fn exit(ctx: &T, regs: &Regs, (note, req, own_req): (T::Child, usize, usize)) {
        let child = regs.ret();
        if child == 0 || own_req == 0 {
            return;
        }
        // SAFETY: `own_req` is the `bool *` argument of this call, pointing into its caller's
        // frame, which is live while the call returns; read as a byte.
        if unsafe { (own_req as *const u8).read() } == 0 {
            // Another CPU's child won the race; this one is being discarded.
            return;
        }
        ctx.child_created(SockKey(child), ReqKey(req), note);
    }
}

struct GetName<T>(PhantomData<T>);

impl<T: TcpObserver> RetProbe for GetName<T> {
    type Ctx = T;
    /// `sk` and `uaddr` of the call.
    type Data = (usize, usize);

    fn entry(ctx: &T, regs: &Regs) -> Option<(usize, usize)> {
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
        Some((sk as usize, regs.arg(1)))
    }

    fn exit(ctx: &T, regs: &Regs, (sk, uaddr): (usize, usize)) {
        if (regs.ret() as c_int) < 0 {
            return;
        }
        let Some(uaddr) = NonNull::new(uaddr as *mut bindings::sockaddr) else {
            return;
        };
        let mut name = PeerName {
            uaddr,
            _life: PhantomData,
        };
        ctx.peer_name(SockKey(sk), &mut name);
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
        let seg = Segment {
            skb,
            _life: PhantomData,
        };
        ctx.request_created(ReqKey(regs.arg(3)), &seg);
    }
}

struct ReqFree<T>(PhantomData<T>);

impl<T: TcpObserver> EntryProbe for ReqFree<T> {
    type Ctx = T;

    fn hit(ctx: &T, regs: &Regs) {
        // __reqsk_free(req)
        ctx.request_freed(ReqKey(regs.arg(0)));
    }
}

struct Destroy<T>(PhantomData<T>);

impl<T: TcpObserver> EntryProbe for Destroy<T> {
    type Ctx = T;

    fn hit(ctx: &T, regs: &Regs) {
        // tcp_v4_destroy_sock(sk)
        ctx.destroyed(SockKey(regs.arg(0)));
    }
}

/// The probes of a [`TcpObserver`], registered together: all or none.
pub(crate) struct TcpProbes<T: TcpObserver> {
    ctx: Arc<T>,
    // Dropped in this order: getname first, destruction last, so no entry outlives its socket.
    name4: RetProbeRegistration<GetName<T>>,
    name6: RetProbeRegistration<GetName<T>>,
    syn4: RetProbeRegistration<SynRecv<T, false>>,
    syn6: RetProbeRegistration<SynRecv<T, true>>,
    _route4: EntryProbeRegistration<RouteReq<T>>,
    _route6: EntryProbeRegistration<RouteReq<T>>,
    _req_free: EntryProbeRegistration<ReqFree<T>>,
    _destroy: EntryProbeRegistration<Destroy<T>>,
}

impl<T: TcpObserver> TcpProbes<T> {
    /// Registers the probes with `ctx` as their observer.
    pub(crate) fn new(ctx: Arc<T>) -> Result<Self> {
        let destroy = EntryProbeRegistration::new(c"tcp_v4_destroy_sock", ctx.clone())?;
        let req_free = EntryProbeRegistration::new(c"__reqsk_free", ctx.clone())?;
        let route4 = EntryProbeRegistration::new(c"tcp_v4_route_req", ctx.clone())?;
        let route6 = EntryProbeRegistration::new(c"tcp_v6_route_req", ctx.clone())?;
        let syn4 = RetProbeRegistration::new(c"tcp_v4_syn_recv_sock", ctx.clone())?;
        let syn6 = RetProbeRegistration::new(c"tcp_v6_syn_recv_sock", ctx.clone())?;
        let name4 = RetProbeRegistration::new(c"inet_getname", ctx.clone())?;
        let name6 = RetProbeRegistration::new(c"inet6_getname", ctx.clone())?;
        let probes = Self {
            ctx,
            name4,
            name6,
            syn4,
            syn6,
            _route4: route4,
            _route6: route6,
            _req_free: req_free,
            _destroy: destroy,
        };
        if let Some(stats) = probes.ctx.stats() {
            stats.watch(&probes.name4)?;
            stats.watch(&probes.name6)?;
            stats.watch(&probes.syn4)?;
            stats.watch(&probes.syn6)?;
        }
        Ok(probes)
    }

    /// Calls the return probes missed (fprobe `nmissed`: recursion, or a full return stack).
    pub(crate) fn missed(&self) -> i64 {
        [
            self.name4.missed(),
            self.name6.missed(),
            self.syn4.missed(),
            self.syn6.missed(),
        ]
        .iter()
        .copied()
        .sum()
    }
}

impl<T: TcpObserver> Drop for TcpProbes<T> {
    fn drop(&mut self) {
        // The statistics outlive the probes (the context owns them): stop reading the probes'
        // counters before the probes go.
        if let Some(stats) = self.ctx.stats() {
            stats.unwatch(&self.name4);
            stats.unwatch(&self.name6);
            stats.unwatch(&self.syn4);
            stats.unwatch(&self.syn6);
        }
    }
}
