// SPDX-License-Identifier: GPL-2.0

//! Netfilter: hooks in every network namespace, and resuming a hook chain after one of them.
//!
//! - [`PernetHooks`] registers one [`Hook`] at PREROUTING and POSTROUTING, IPv4 and IPv6, in
//!   every namespace (pernet init and exit), and unregisters it in `Drop`.
//! - A hook may keep a packet's hook state ([`SavedState`], holding references on the
//!   namespace and the socket) and later [`resume`] the chain right after itself, as
//!   `nf_reinject` does for NFQUEUE.

use super::{netdev::Device, skb::Skb, sys};
use core::{
    pin::Pin,
    ptr::{self, NonNull},
    sync::atomic::{AtomicPtr, Ordering},
};
use kernel::{bindings, ffi::c_void, prelude::*, sync::Arc, types::Opaque};

/// `NF_INET_PRE_ROUTING`.
pub(crate) const PRE_ROUTING: u8 = sys::nf_inet_hooks_NF_INET_PRE_ROUTING as u8;
/// `NF_INET_POST_ROUTING`.
pub(crate) const POST_ROUTING: u8 = sys::nf_inet_hooks_NF_INET_POST_ROUTING as u8;

/// Hook priorities of the IPv4 hooks (`NF_IP_PRI_*`); the IPv6 ones must be the same for the
/// hooks registered in both families to sit at the same place.
#[allow(
    dead_code,
    reason = "read by build-time checks, which the lint does not count"
)]
pub(crate) mod priority {
    use super::sys;
    /// `NF_IP_PRI_MANGLE`.
    pub(crate) const MANGLE: i32 = sys::nf_ip_hook_priorities_NF_IP_PRI_MANGLE;
    /// `NF_IP_PRI_NAT_DST`.
    pub(crate) const NAT_DST: i32 = sys::nf_ip_hook_priorities_NF_IP_PRI_NAT_DST;
    /// `NF_IP_PRI_NAT_SRC`.
    pub(crate) const NAT_SRC: i32 = sys::nf_ip_hook_priorities_NF_IP_PRI_NAT_SRC;
    /// `NF_IP_PRI_LAST`.
    pub(crate) const LAST: i32 = sys::nf_ip_hook_priorities_NF_IP_PRI_LAST;
    const _: () = {
        assert!(MANGLE == sys::nf_ip6_hook_priorities_NF_IP6_PRI_MANGLE);
        assert!(NAT_DST == sys::nf_ip6_hook_priorities_NF_IP6_PRI_NAT_DST);
        assert!(NAT_SRC == sys::nf_ip6_hook_priorities_NF_IP6_PRI_NAT_SRC);
        assert!(LAST == sys::nf_ip6_hook_priorities_NF_IP6_PRI_LAST);
    };
}

/// The current time in jiffies.
pub(crate) fn jiffies() -> usize {
    // SAFETY: `jiffies` is a kernel variable updated by the timer interrupt; a volatile read of
    // a naturally aligned word is what the C `jiffies` macro does.
    unsafe { ptr::read_volatile(&raw const bindings::jiffies) as usize }
}

/// `ms` milliseconds in jiffies.
pub(crate) fn msecs_to_jiffies(ms: u32) -> usize {
    kernel::time::msecs_to_jiffies(ms) as usize
}

/// A hook's verdict. `Stolen` only comes from [`HookPacket::queue_on`], which took the packet.
pub(crate) enum Verdict {
    /// The packet goes on through the chain.
    Accept,
    /// The hook took the packet.
    Stolen,
}

/// What runs at the hooks.
pub(crate) trait Hook: Send + Sync + 'static {
    /// Whether a packet whose control block holds `tag` at hook `hook` is one for [`Hook::hook`]
    /// (checked first, for every packet).
    fn wants(tag: (u32, u32), hook: u8) -> bool;

    /// Called for each packet at PREROUTING and POSTROUTING, under RCU, in softirq or with
    /// bottom halves off.
    fn hook(&self, pkt: HookPacket<'_>) -> Verdict;
}

/// A packet at one of our hooks: borrowed from the chain until the hook steals it.
pub(crate) struct HookPacket<'a> {
    skb: NonNull<bindings::sk_buff>,
    state: &'a sys::nf_hook_state,
    /// Our hook the packet is at (`resume` continues after it).
    ops: *const sys::nf_hook_ops,
}

impl<'a> HookPacket<'a> {
    /// The packet's identity while it lives (its address).
    pub(crate) fn id(&self) -> usize {
        self.skb.as_ptr() as usize
    }

    /// The identity of the packet's data buffer (see [`Skb::buffer_id`]).
    pub(crate) fn buffer_id(&self) -> usize {
        // SAFETY: the chain lends us the packet for the duration of the hook; `head` is only
        // read.
        unsafe { (*self.skb.as_ptr()).head as usize }
    }

    /// The namespace the packet is in (alive during the hook).
    pub(super) fn net_ptr(&self) -> *mut bindings::net {
        self.state.net
    }

    /// The tag in the packet's control block.
    pub(crate) fn tag(&self) -> (u32, u32) {
        // SAFETY: the chain lends us the packet for the duration of the hook.
        unsafe { super::skb::tag_of(self.skb.as_ptr()) }
    }

    /// Writes the tag in the packet's control block.
    pub(crate) fn set_tag(&mut self, magic: u32, val: u32) {
        // SAFETY: as in `tag`; the hook may write the control block of the packet it holds.
        unsafe { super::skb::set_tag_of(self.skb.as_ptr(), magic, val) }
    }

    /// The hook state, with references on the namespace and the socket; `None` if either is
    /// going away.
    pub(crate) fn save_state(&self) -> Option<SavedState> {
        let state = self.state;
        // SAFETY: `state.net` is the namespace the packet is in, alive during the hook.
        if unsafe { sys::knet_maybe_get_net(state.net) }.is_null() {
            return None;
        }
        // SAFETY: `state.sk`, if any, is a socket alive during the hook (the chain holds it).
        if !state.sk.is_null() && !unsafe { sys::knet_sock_hold_not_zero(state.sk) } {
            // SAFETY: the reference taken just above.
            unsafe { sys::knet_put_net(state.net) };
            return None;
        }
        // The devices are found again by index when the chain resumes: they may go meanwhile.
        // SAFETY: `in_`/`out`, if set, are devices alive during the hook.
        let (in_ifindex, out_ifindex) = unsafe { (ifindex_of(state.in_), ifindex_of(state.out)) };
        Some(SavedState {
            state: sys::nf_hook_state {
                in_: ptr::null_mut(),
                out: ptr::null_mut(),
                ..copy_state(state)
            },
            ops: self.ops,
            in_ifindex,
            out_ifindex,
        })
    }

    /// What of the packet the device's qdisc may change and the chain needs back.
    pub(crate) fn meta(&self) -> SkbMeta {
        let skb = self.skb.as_ptr();
        // SAFETY: the chain lends us the packet for the duration of the hook.
        let (s, h) = unsafe { (&*skb, super::skb::headers(skb)) };
        // SAFETY: the union members the stack uses: the device, the destructor (the other is
        // for TCP's own queues); both members of the time union are the same time.
        let (dev, destructor, tstamp) = unsafe {
            (
                s.__bindgen_anon_1.__bindgen_anon_1.__bindgen_anon_1.dev,
                s.__bindgen_anon_3.__bindgen_anon_1.destructor,
                s.__bindgen_anon_2.tstamp,
            )
        };
        let wmem_charged = !s.sk.is_null() && s.sk == self.state.sk && is_sock_wfree(destructor);
        SkbMeta {
            // SAFETY: the packet's device, if any, is alive during the hook. Mostly the one it
            // came in on (PREROUTING) or goes out of (POSTROUTING), whose index the saved state
            // keeps too: `resume` compares indexes.
            dev_ifindex: unsafe { ifindex_of(dev.cast()) },
            tstamp,
            tstamp_type: h.tstamp_type(),
            priority: h.priority,
            mac_header: h.mac_header,
            queue_mapping: s.queue_mapping,
            wmem_charged,
            cb: s.cb,
        }
    }

    /// The packet is a GSO packet that `dev`'s features do not take whole
    /// (`netif_needs_gso`): the stack would segment it before handing it to such a device.
    pub(crate) fn needs_gso(&self, dev: Device<'_>) -> bool {
        // Most packets are not GSO (`skb_is_gso`): answered here, without a call into C.
        // SAFETY: the chain lends us the packet for the duration of the hook; its shared info
        // lies at `head + end` (`skb_shinfo`, with offsets on 64-bit).
        let gso_size = unsafe {
            let s = self.skb.as_ptr();
            let shinfo = (*s)
                .head
                .add((*s).end as usize)
                .cast::<bindings::skb_shared_info>();
            (&raw const (*shinfo).gso_size).read()
        };
        // SAFETY: the packet is lent to us for the hook; `dev` is alive (its type's invariant).
        gso_size != 0 && unsafe { sys::knet_netif_needs_gso(self.skb.as_ptr(), dev.as_ptr()) }
    }

    /// Splits a GSO packet into its segments, with `dev`'s offloads (checksums left to the
    /// device that finally sends them, fragments shared), and hands each to `f` as a packet at
    /// this hook, with the control block the packet had here. A segment `f` does not steal
    /// (its verdict `Accept`) is dropped. The packet itself is then freed: the hook's verdict
    /// is `Stolen`. `Err` gives the packet back, untouched, if it cannot be segmented.
    pub(crate) fn segment(
        self,
        dev: Device<'_>,
        mut f: impl FnMut(HookPacket<'a>) -> Verdict,
    ) -> Result<Verdict, HookPacket<'a>> {
        let skb = self.skb.as_ptr();
        // SAFETY: the chain lends us the packet for the duration of the hook; `dev` is alive.
        // Segmenting writes the packet's GSO state into the control block, which the segments
        // copy: they get the control block back as it was.
        let (cb, mut next) = unsafe { ((*skb).cb, sys::knet_skb_gso_segment(skb, dev.as_ptr())) };
        if next.is_null() {
            return Err(self);
        }
        while let Some(seg) = NonNull::new(next) {
            // SAFETY: the segments are ours, a list through `next`; each is taken off it
            // (`skb_mark_not_on_list`) and gets the control block back.
            unsafe {
                let list = &mut (*seg.as_ptr()).__bindgen_anon_1.__bindgen_anon_1;
                next = list.next;
                list.next = ptr::null_mut();
                (*seg.as_ptr()).cb = cb;
            }
            let p = HookPacket {
                skb: seg,
                state: self.state,
                ops: self.ops,
            };
            if let Verdict::Accept = f(p) {
                // SAFETY: not stolen: still ours, freed as a drop.
                drop(unsafe { Skb::from_raw(seg) });
            }
        }
        // SAFETY: the packet is ours to steal; the segments hold what they need of it, and it
        // is not a drop (`consume_skb`).
        unsafe { bindings::consume_skb(skb) };
        Ok(Verdict::Stolen)
    }

    /// Queues the packet on `dev` (`dev_queue_xmit`), counted as received by the device.
    pub(crate) fn queue_on(self, dev: Device<'_>) -> Verdict {
        let skb = self.skb.as_ptr();
        let from_receive = self.state.hook == PRE_ROUTING;
        // SAFETY: the packet is ours to steal; `dev` is alive during the hook.
        unsafe {
            // Receive timestamps mean departure times to fq and friends: not on ingress. As
            // `skb_clear_tstamp`: a time of a known clock (tstamp_type) stays.
            if from_receive && super::skb::headers(skb).tstamp_type() == 0 {
                (*skb).__bindgen_anon_2.tstamp = 0;
            }
            // The device's qdisc owns it now, drops included. PREROUTING is called by the
            // receive path, with no lock held.
            super::netdev::queue_xmit(dev, skb, from_receive);
        }
        Verdict::Stolen
    }
}

/// The destructor is `sock_wfree` (the packet holds a share of its socket's send buffer).
fn is_sock_wfree(d: Option<unsafe extern "C" fn(*mut bindings::sk_buff)>) -> bool {
    // An exported C function: one address, the one the destructor was set from.
    d.is_some_and(|d| core::ptr::fn_addr_eq(d, sys::sock_wfree as unsafe extern "C" fn(_)))
}

/// A copy of a hook state (bindgen does not derive `Copy` for it).
fn copy_state(s: &sys::nf_hook_state) -> sys::nf_hook_state {
    sys::nf_hook_state {
        hook: s.hook,
        pf: s.pf,
        in_: s.in_,
        out: s.out,
        sk: s.sk,
        net: s.net,
        okfn: s.okfn,
    }
}

/// # Safety
///
/// `dev` is null or a device alive for the call.
unsafe fn ifindex_of(dev: *mut sys::net_device) -> i32 {
    if dev.is_null() {
        return 0;
    }
    // SAFETY: alive, per the function's contract.
    unsafe { (*dev).ifindex }
}

/// A packet's fields that its stay in a qdisc may change, and that the chain needs back.
#[derive(Clone)]
pub(crate) struct SkbMeta {
    dev_ifindex: i32,
    tstamp: i64,
    tstamp_type: u8,
    priority: u32,
    mac_header: u16,
    queue_mapping: u16,
    /// `skb->sk`'s send buffer was charged for the packet (`sock_wfree`).
    wmem_charged: bool,
    cb: [u8; 48],
}

/// A hook state kept while its packet is away, with references on its namespace and socket.
pub(crate) struct SavedState {
    /// `in_` and `out` are null: see the indexes.
    state: sys::nf_hook_state,
    ops: *const sys::nf_hook_ops,
    in_ifindex: i32,
    out_ifindex: i32,
}

// SAFETY: the references it holds may be put from any CPU; `ops` is only compared.
unsafe impl Send for SavedState {}

impl SavedState {
    /// A copy with references of its own (for a copy of the packet, which goes on through the
    /// chain by itself); `None` if the namespace or the socket is going away.
    pub(crate) fn try_clone(&self) -> Option<SavedState> {
        let state = &self.state;
        // SAFETY: `self` holds a reference on the namespace: alive.
        if unsafe { sys::knet_maybe_get_net(state.net) }.is_null() {
            return None;
        }
        // SAFETY: `self` holds a reference on the socket, if any: alive.
        if !state.sk.is_null() && !unsafe { sys::knet_sock_hold_not_zero(state.sk) } {
            // SAFETY: the reference taken just above.
            unsafe { sys::knet_put_net(state.net) };
            return None;
        }
        Some(SavedState {
            state: copy_state(state),
            ops: self.ops,
            in_ifindex: self.in_ifindex,
            out_ifindex: self.out_ifindex,
        })
    }
}

impl Drop for SavedState {
    fn drop(&mut self) {
        // SAFETY: the references taken in `save_state`, put once.
        unsafe {
            if !self.state.sk.is_null() {
                sys::sock_gen_put(self.state.sk);
            }
            sys::knet_put_net(self.state.net);
        }
    }
}

/// The hook chain of (`pf`, `hook`) in `net` now (`rcu_dereference`), or null.
///
/// # Safety
///
/// `net` is alive; the caller holds RCU for as long as it uses the chain.
unsafe fn hook_entries(net: *mut bindings::net, pf: u8, hook: u32) -> *mut sys::nf_hook_entries {
    // SAFETY: alive, per the function's contract; the arrays are only read.
    let nf = unsafe { &*sys::net_nf(net) };
    let chains: &[_] = match u32::from(pf) {
        sys::NFPROTO_IPV4 => &nf.hooks_ipv4,
        #[cfg(CONFIG_IPV6)]
        sys::NFPROTO_IPV6 => &nf.hooks_ipv6,
        _ => return ptr::null_mut(),
    };
    chains.get(hook as usize).map_or(ptr::null_mut(), |p| {
        // SAFETY: an RCU-published pointer, read once (READ_ONCE) as rcu_dereference does.
        unsafe { ptr::read_volatile(p) }.cast()
    })
}

/// The hook chain the packet left and the index after our hook in it, looked up now (hooks
/// may have come and gone meanwhile); `None` if our hook is gone. Under RCU.
fn chain(s: &SavedState) -> Option<(*mut sys::nf_hook_entries, u32)> {
    // SAFETY: `net` is referenced by `s`; the caller holds RCU.
    let hooks = unsafe { hook_entries(s.state.net, s.state.pf, s.state.hook.into()) };
    if hooks.is_null() {
        return None;
    }
    // SAFETY: a live chain, under RCU. Its ops array follows its `num_hook_entries` entries
    // (`nf_hook_entries_get_hook_ops`).
    let (n, ops) = unsafe {
        let n = (*hooks).num_hook_entries;
        let ops = (*hooks)
            .hooks
            .as_ptr()
            .add(n.into())
            .cast::<*const sys::nf_hook_ops>();
        (u32::from(n), ops)
    };
    (0..n)
        // SAFETY: `ops` has `n` entries.
        .find(|&i| unsafe { *ops.add(i as usize) } == s.ops)
        .map(|i| (hooks, i + 1))
}

/// Sends `skb` on through the chain it left at our hook, with the state and fields it had
/// there. `Err` if its namespace's chain, our hook, or one of its devices is gone: the packet
/// is dropped.
pub(crate) fn resume(skb: Skb, saved: &SavedState, meta: &SkbMeta) -> Result<(), ()> {
    let _rcu = kernel::sync::rcu::read_lock();
    let mut state = copy_state(&saved.state);
    let net = state.net;
    let find = |ifindex: i32| -> *mut sys::net_device {
        if ifindex == 0 {
            return ptr::null_mut();
        }
        // SAFETY: `net` is referenced by `saved`; RCU is held.
        unsafe { sys::dev_get_by_index_rcu(net, ifindex) }
    };
    state.in_ = find(saved.in_ifindex);
    state.out = find(saved.out_ifindex);
    // Mostly the device the packet came in on (PREROUTING) or goes out of (POSTROUTING).
    let dev = if meta.dev_ifindex == saved.in_ifindex {
        state.in_
    } else if meta.dev_ifindex == saved.out_ifindex {
        state.out
    } else {
        find(meta.dev_ifindex)
    };
    let hooks = chain(saved);
    let (Some((hooks, next)), false, false, false) = (
        hooks,
        dev.is_null(),
        saved.in_ifindex != 0 && state.in_.is_null(),
        saved.out_ifindex != 0 && state.out.is_null(),
    ) else {
        drop(skb);
        return Err(());
    };
    let skb = skb.into_raw();
    // SAFETY: we own `skb`; the devices were found under RCU, which is held until the chain
    // and `okfn` are done, as on the stack's own path (netif_receive_skb, ip_local_out: `okfn`
    // reads RCU-protected state such as routes).
    unsafe {
        let s = &mut *skb;
        s.cb = meta.cb;
        s.__bindgen_anon_1.__bindgen_anon_1.__bindgen_anon_1.dev = dev.cast();
        s.__bindgen_anon_2.tstamp = meta.tstamp;
        s.queue_mapping = meta.queue_mapping;
        let h = super::skb::headers_mut(skb);
        h.set_tstamp_type(meta.tstamp_type);
        h.priority = meta.priority;
        h.mac_header = meta.mac_header;
        recharge(skb, saved, meta.wmem_charged);
        let ret = sys::nf_hook_slow(skb, &mut state, hooks, next);
        if ret == 1 {
            if let Some(okfn) = state.okfn {
                okfn(state.net, state.sk, skb);
            }
        }
    }
    Ok(())
}

/// A qdisc may trade a packet's send-buffer charge for a plain socket reference: netem with a
/// delay does (`skb_orphan_partial`: `sock_wfree` becomes `sock_efree`). Behind a NIC that is
/// harmless. Behind imq the qdisc runs before IP fragmentation, whose fast path
/// (`ip_do_fragment`, `ip6_fragment`) makes the fragments of a packet with a socket `sock_wfree`
/// owners of their share of its charge, as if it still held it: the socket's wmem count then
/// underflows. So the charge goes back before the packet does. The saved state's own reference
/// keeps the socket alive across the swap.
///
/// # Safety
///
/// `skb` is owned by the caller.
unsafe fn recharge(skb: *mut bindings::sk_buff, saved: &SavedState, charged: bool) {
    // SAFETY: owned by the caller.
    let s = unsafe { &*skb };
    // SAFETY: the union member with the destructor.
    let destructor = unsafe { s.__bindgen_anon_3.__bindgen_anon_1.destructor };
    if charged && s.sk == saved.state.sk && !is_sock_wfree(destructor) {
        // SAFETY: the socket is referenced by `saved`; `skb` is owned.
        unsafe { sys::skb_set_owner_w(skb, saved.state.sk) };
    }
}

/// An empty hook (filled in before registration).
const fn zeroed_hook_ops() -> sys::nf_hook_ops {
    // SAFETY: all-zero is a valid `nf_hook_ops`: null pointers, no callback.
    unsafe { core::mem::zeroed() }
}

/// Hook registrations in every namespace; only one per module (pernet callbacks carry no
/// pointer of their own).
static PERNET: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());

/// A hook at PREROUTING and POSTROUTING, IPv4 and IPv6, in every network namespace.
pub(crate) struct PernetHooks<H: Hook> {
    inner: Pin<KBox<PernetInner>>,
    /// The hooks point to it.
    _handler: Arc<H>,
}

#[repr(C)]
struct PernetInner {
    ops: [Opaque<sys::nf_hook_ops>; 4],
    pernet: Opaque<sys::pernet_operations>,
}

// SAFETY: the tables are read by the kernel from any CPU; Rust never touches them after
// registration.
unsafe impl Send for PernetInner {}
// SAFETY: `&PernetInner` gives no access Rust uses after registration; the kernel reads the
// tables concurrently, which it does for every hook.
unsafe impl Sync for PernetInner {}

impl<H: Hook> PernetHooks<H> {
    /// Registers `handler` at PREROUTING (priority `pre`) and POSTROUTING (`post`).
    pub(crate) fn new(pre: i32, post: i32, handler: Arc<H>) -> Result<Self> {
        let inner = KBox::pin(
            PernetInner {
                ops: [const { Opaque::new(zeroed_hook_ops()) }; 4],
                // SAFETY: all-zero is a valid `pernet_operations` (no callbacks), filled in
                // below before the kernel sees it.
                pernet: Opaque::new(unsafe { core::mem::zeroed() }),
            },
            GFP_KERNEL,
        )?;
        let places = [
            (sys::NFPROTO_IPV4, PRE_ROUTING, pre),
            (sys::NFPROTO_IPV4, POST_ROUTING, post),
            (sys::NFPROTO_IPV6, PRE_ROUTING, pre),
            (sys::NFPROTO_IPV6, POST_ROUTING, post),
        ];
        for (o, (pf, hook, prio)) in inner.ops.iter().zip(places) {
            // SAFETY: not registered yet: ours to fill.
            let o = unsafe { &mut *o.get() };
            o.hook = Some(Self::hook_cb);
            // INVARIANT: the registration holds `handler` until the hooks are gone.
            o.priv_ = Arc::as_ptr(&handler).cast_mut().cast();
            o.pf = pf as u8;
            o.hooknum = hook.into();
            o.priority = prio;
        }
        // SAFETY: not registered yet: ours to fill.
        let p = unsafe { &mut *inner.pernet.get() };
        p.init = Some(Self::net_init);
        p.exit = Some(Self::net_exit);
        let raw = core::ptr::from_ref::<PernetInner>(&inner).cast_mut().cast();
        if PERNET
            .compare_exchange(ptr::null_mut(), raw, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return Err(EBUSY);
        }
        // SAFETY: the table is pinned and outlives the registration (unregistered in `drop`);
        // `PERNET` points to it for the callbacks.
        let err = unsafe { sys::register_pernet_subsys(inner.pernet.get()) };
        if err != 0 {
            PERNET.store(ptr::null_mut(), Ordering::Release);
            return Err(Error::from_errno(err));
        }
        Ok(PernetHooks {
            inner,
            _handler: handler,
        })
    }

    fn instance() -> *mut PernetInner {
        PERNET.load(Ordering::Acquire).cast()
    }

    /// # Safety
    ///
    /// Called by the pernet core with a namespace being set up, while we are registered.
    unsafe extern "C" fn net_init(net: *mut bindings::net) -> i32 {
        let inner = Self::instance();
        // SAFETY: `PERNET` is set while the pernet operations are registered.
        let ops = unsafe { (*inner).ops.as_ptr() };
        // SAFETY: `net` is being set up; the ops are pinned and valid until unregistered.
        unsafe { sys::nf_register_net_hooks(net, Opaque::cast_into(ops), 4) }
    }

    /// # Safety
    ///
    /// Called by the pernet core with a namespace going away (or at unregistration).
    unsafe extern "C" fn net_exit(net: *mut bindings::net) {
        let inner = Self::instance();
        // SAFETY: as in `net_init`.
        let ops = unsafe { (*inner).ops.as_ptr() };
        // SAFETY: registered in this namespace by `net_init`.
        unsafe { sys::nf_unregister_net_hooks(net, Opaque::cast_into(ops), 4) };
    }

    /// # Safety
    ///
    /// Called by netfilter for one of our hooks, under RCU, with a packet and its state.
    unsafe extern "C" fn hook_cb(
        priv_: *mut c_void,
        skb: *mut bindings::sk_buff,
        state: *const sys::nf_hook_state,
    ) -> u32 {
        // SAFETY: `state` is valid for the call; the chain lends us the packet.
        let (state, tag) = unsafe { (&*state, super::skb::tag_of(skb)) };
        if !H::wants(tag, state.hook) {
            return sys::NF_ACCEPT;
        }
        // SAFETY: `priv_` is the handler, which the registration keeps alive while the hooks
        // exist (see `new`).
        let handler = unsafe { &*priv_.cast::<H>() };
        let inner = Self::instance();
        let v6 = state.pf == sys::NFPROTO_IPV6 as u8;
        let post = state.hook == POST_ROUTING;
        let idx = usize::from(v6) * 2 + usize::from(post);
        // SAFETY: registered, so `PERNET` is set; `idx` < 4.
        let ops = unsafe { (*inner).ops[idx].get() };
        let Some(skb) = NonNull::new(skb) else {
            return sys::NF_ACCEPT;
        };
        match handler.hook(HookPacket {
            skb,
            state,
            ops: ops.cast_const(),
        }) {
            Verdict::Accept => sys::NF_ACCEPT,
            Verdict::Stolen => sys::NF_STOLEN,
        }
    }
}

impl<H: Hook> Drop for PernetHooks<H> {
    fn drop(&mut self) {
        // SAFETY: registered in `new`; this unregisters the hooks in every namespace (and waits
        // for the packets in them, `synchronize_net`).
        unsafe { sys::unregister_pernet_subsys(self.inner.pernet.get()) };
        PERNET.store(ptr::null_mut(), Ordering::Release);
    }
}
