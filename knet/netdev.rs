// SPDX-License-Identifier: GPL-2.0

//! Virtual layer-3 devices whose transmit hands each packet to a [`TxHandler`].
//!
//! A [`DeviceSet`] registers an rtnl link kind (so `ip -d link` names it) and its devices;
//! dropping it unregisters the kind, which deletes every device of the kind, in every
//! namespace. The packet path finds the set's devices by number in a [`DeviceTable`], and
//! devices that `ip link add NAME type KIND` made, in any namespace, by name (`KIND` and the
//! number, in the packet's namespace first). The `net_device_ops` table is built here; its
//! trampolines reach the handler through the device's private area, which holds a pointer to
//! the device's [`DevQueue`] (the set's own, or one the device owns).
//!
//! The device's xmit hands a packet to the handler at once where its caller holds no lock
//! (a qdisc run our receive-path hook started; see [`Inline`]), else queues it for a tasklet,
//! which does so with no lock held. The handler sends packets on through the stack, which may
//! come back to the same device; the devices take no transmit lock (`lltx`).

use super::{
    netfilter::HookPacket,
    percpu::PerCpuCounters,
    skb::{Skb, SkbQueue},
    sys,
};
use core::{
    cell::UnsafeCell,
    marker::PhantomData,
    pin::Pin,
    ptr::{self, NonNull},
    sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering},
};
use kernel::{
    bindings,
    error::to_result,
    ffi::c_void,
    prelude::*,
    str::CStrExt,
    sync::{new_spinlock, Arc, SpinLock},
    types::Opaque,
};

/// A device, valid for `'a`.
#[derive(Clone, Copy)]
pub(crate) struct Device<'a> {
    raw: NonNull<sys::net_device>,
    _p: PhantomData<&'a ()>,
}

impl Device<'_> {
    /// # Safety
    ///
    /// `raw` is null or a device that stays valid for the returned lifetime.
    pub(crate) unsafe fn from_raw<'a>(raw: *mut sys::net_device) -> Option<Device<'a>> {
        Some(Device {
            raw: NonNull::new(raw)?,
            _p: PhantomData,
        })
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::net_device {
        self.raw.as_ptr()
    }

    /// The device is up (`netif_running`: bit `__LINK_STATE_START` of its state, read here
    /// rather than through a call for every packet the hook diverts).
    pub(crate) fn running(&self) -> bool {
        // SAFETY: valid (type invariant). The state word changes by atomic bit operations: it
        // is read once, whole, as `test_bit` does.
        let state = unsafe { ptr::read_volatile(&raw const (*self.raw.as_ptr()).state) };
        state & (1 << sys::netdev_state_t___LINK_STATE_START) != 0
    }

    /// Counts a packet the device dropped on transmit (`ip -s link`).
    pub(crate) fn count_tx_dropped(&self) {
        // SAFETY: valid (type invariant).
        unsafe { sys::knet_dev_stats_tx_dropped(self.raw.as_ptr().cast()) }
    }
}

/// Which of a device's per-CPU counters a packet goes to.
#[derive(Clone, Copy)]
pub(crate) enum Dir {
    Rx,
    Tx,
}

/// Counts a packet of `len` bytes in `dev`'s per-CPU counters (`tstats`, which the core sums
/// for `ip -s link`), as `dev_sw_netstats_rx_add`/`_tx_add` do. On x86-64 two `gs`-relative
/// adds: the counters are `local64_t`, plain adds to this CPU's copy with no sequence count on
/// 64-bit; elsewhere the C helper.
///
/// # Safety
///
/// `dev` is one of our devices (`setup_cb` asks for `tstats`, which the core allocates at
/// registration and frees with the device), alive for the call.
#[inline(always)]
pub(crate) unsafe fn count_packet(dev: *mut sys::net_device, dir: Dir, len: u32) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::mem::offset_of;
        type S = sys::pcpu_sw_netstats;
        const W: usize = size_of::<i64>();
        const _: () =
            assert!(offset_of!(S, rx_packets) % W == 0 && offset_of!(S, rx_bytes) % W == 0);
        const _: () =
            assert!(offset_of!(S, tx_packets) % W == 0 && offset_of!(S, tx_bytes) % W == 0);
        let (packets, bytes) = match dir {
            Dir::Rx => (offset_of!(S, rx_packets) / W, offset_of!(S, rx_bytes) / W),
            Dir::Tx => (offset_of!(S, tx_packets) / W, offset_of!(S, tx_bytes) / W),
        };
        // SAFETY: per the function's contract `tstats` is the device's live per-CPU area of
        // `pcpu_sw_netstats`, whose counters are 64-bit words at the indexes computed above.
        unsafe {
            let tstats = (*dev).__bindgen_anon_2.tstats.cast();
            super::percpu::this_cpu_add(tstats, packets, 1);
            super::percpu::this_cpu_add(tstats, bytes, i64::from(len));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: per the function's contract.
    unsafe {
        match dir {
            Dir::Rx => sys::knet_dev_stats_rx(dev.cast(), len),
            Dir::Tx => sys::knet_dev_stats_tx(dev.cast(), len),
        }
    }
}

/// The devices of a set by number, for the packet path.
///
/// # Invariants
///
/// A non-null entry is a registered device of the set: the entry is cleared in `ndo_uninit`,
/// before unregistration waits for an RCU grace period and frees the device.
pub(crate) struct DeviceTable {
    devs: KVec<AtomicPtr<sys::net_device>>,
}

impl DeviceTable {
    /// A table of `n` devices, none registered yet.
    pub(crate) fn new(n: u32) -> Result<Arc<Self>> {
        let mut devs = KVec::with_capacity(n as usize, GFP_KERNEL)?;
        for _ in 0..n {
            devs.push(AtomicPtr::new(ptr::null_mut()), GFP_KERNEL)?;
        }
        Ok(Arc::new(DeviceTable { devs }, GFP_KERNEL)?)
    }

    /// Device `index`, if it exists, for a netfilter hook (which runs under RCU), valid while
    /// the hook runs: the packet's namespace's `KIND<index>` if `ip link add` made one there,
    /// else the set's.
    pub(crate) fn get_at_hook<'a>(&self, index: u32, pkt: &HookPacket<'a>) -> Option<Device<'a>> {
        if USER_DEVICES.load(Ordering::Relaxed) > 0 {
            // SAFETY: the packet's namespace is alive during the hook, which holds RCU.
            if let Some(d) = unsafe { by_name(pkt.net_ptr(), index) } {
                return Some(d);
            }
        }
        let p = self.devs.get(index as usize)?.load(Ordering::Acquire);
        // SAFETY: a non-null entry is a registered device (type invariant), which is freed only
        // after an RCU grace period; hooks run under RCU for the packet's lifetime `'a`.
        unsafe { Device::from_raw(p) }
    }

    fn set(&self, index: u32, dev: *mut sys::net_device) {
        if let Some(slot) = self.devs.get(index as usize) {
            slot.store(dev, Ordering::Release);
        }
    }
}

/// Devices `ip link add` made, in any namespace (the packet path looks them up by name only
/// while there are some).
static USER_DEVICES: AtomicU32 = AtomicU32::new(0);

/// The registered link kind (a [`LinkInner`], whose first field the ops are), if any.
static LINK: AtomicPtr<LinkInner> = AtomicPtr::new(ptr::null_mut());

/// Device `KIND<index>` of namespace `net`, if it is one of ours.
///
/// # Safety
///
/// `net` is alive and the caller holds RCU for the returned lifetime.
unsafe fn by_name<'a>(net: *mut bindings::net, index: u32) -> Option<Device<'a>> {
    let link = LINK.load(Ordering::Acquire);
    if link.is_null() {
        return None;
    }
    // SAFETY: set while the kind is registered: the pinned `LinkInner` of the live set.
    let ops = unsafe { (*link).ops.get() };
    // SAFETY: the kind's name is a static string.
    let kind = unsafe { CStr::from_char_ptr((*ops).kind) }.to_bytes();
    let mut name = [0u8; 16];
    let digits = decimal(index, &mut name[kind.len().min(4)..]);
    if kind.len() > 4 || kind.len() + digits >= name.len() {
        return None;
    }
    name[..kind.len()].copy_from_slice(kind);
    // SAFETY: `net` is alive (the caller's); `name` is NUL-terminated (zeroed beyond the digits).
    let dev = unsafe { sys::dev_get_by_name_rcu(net, name.as_ptr().cast()) };
    // SAFETY: a device found under RCU stays valid while the caller holds it.
    let d = unsafe { Device::from_raw(dev)? };
    // SAFETY: `dev` is a device found under the RCU the caller holds; its ops pointer is
    // only compared.
    (unsafe { (*dev).rtnl_link_ops } == ops.cast_const()).then_some(d)
}

/// Writes `n` in decimal at the start of `out`; returns how many digits.
fn decimal(mut n: u32, out: &mut [u8]) -> usize {
    let mut digits = [0u8; 10];
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for (i, d) in digits[..len].iter().rev().enumerate() {
        if let Some(o) = out.get_mut(i) {
            *o = *d;
        }
    }
    len
}

/// Where the devices' packets go.
pub(crate) trait TxHandler: Send + Sync + 'static {
    /// A packet the device's qdisc released (bottom halves off, no lock of ours held).
    fn reinject(&self, skb: Skb, dev: &Device<'_>);
}

/// The handler's function, reached from the non-generic trampolines.
type ReinjectFn = unsafe fn(*const c_void, Skb, &Device<'_>);

/// # Safety
///
/// `h` is the `H` of a live `DeviceSet<H>`.
unsafe fn reinject<H: TxHandler>(h: *const c_void, skb: Skb, dev: &Device<'_>) {
    // SAFETY: per the function's contract.
    unsafe { &*h.cast::<H>() }.reinject(skb, dev)
}

/// Packets a transmit queue's tasklet queue holds before the device's queue is stopped.
const RQ_MAX: u32 = 64;
/// Packets handed on per tasklet run before yielding.
const BUDGET: u32 = 64;
/// The index of the per-CPU word of [`Inline`].
const INLINE_OK: usize = 0;

/// Whether a qdisc run of one of our devices on this CPU may hand packets on at once, from its
/// xmit (1), or must leave them to the queue's tasklet (0), per CPU.
///
/// Handing a packet on sends it through the rest of the netfilter chain and the stack (routing,
/// forwarding, local delivery) right there, from inside whatever called `dev_queue_xmit` on
/// our device. That is only safe where the caller holds no lock the packet's way on could take
/// again: a TCP socket sends from under its socket lock (`bh_lock_sock`), and a packet it sent
/// that our hook diverts at POSTROUTING may start a qdisc run that releases a packet on its way
/// to that same socket's receive path, which takes that lock: a deadlock. So only our
/// receive-path hook (PREROUTING: called by the stack's receive path, with no lock held and
/// bottom halves off) opens this, for the `dev_queue_xmit` it calls; xmit closes it again while
/// a packet goes on, so that whatever that packet's way queues on one of our devices goes to the
/// tasklet. Everything else (packets a POSTROUTING hook diverts, qdisc runs from the qdisc's
/// watchdog, the stack's own packets) takes the tasklet, which runs with no lock held.
struct Inline(PerCpuCounters<1>);

/// Both are called with bottom halves off (a hook of the receive path, checked; xmit), so the
/// word read and written is this CPU's throughout, and no other context on this CPU touches it
/// in between (xmit and the hooks that set it never run in hard interrupts: no netpoll).
impl Inline {
    fn get(&self) -> bool {
        self.0.this_cpu(INLINE_OK) != 0
    }

    /// Sets this CPU's word to `on` and returns what it was.
    fn set(&self, on: bool) -> bool {
        let was = self.get();
        self.0.add(INLINE_OK, i64::from(on) - i64::from(was));
        was
    }
}

/// One transmit queue's way from the device's xmit to its tasklet, which hands the packets on
/// when xmit cannot (see [`Inline`]), on the CPU that queued them. A flow always maps to the
/// same transmit queue, whose qdisc runs serialise its xmits, and a tasklet never runs on two
/// CPUs at once; xmit hands a packet on at once only while the tasklet has nothing of this
/// queue left to hand on: so a flow stays in order.
#[pin_data(PinnedDrop)]
#[repr(C)]
struct TxQueue {
    /// First: the tasklet callback finds the queue from it.
    tasklet: Opaque<bindings::tasklet_struct>,
    /// From xmit to the tasklet. The devices take no transmit lock (`lltx`): this lock, held
    /// only to add or take packets, never while one goes on.
    #[pin]
    rq: SpinLock<SkbQueue>,
    /// Being handed on, tasklet only.
    tq: UnsafeCell<SkbQueue>,
    /// The tasklet is scheduled or running: set under `rq`'s lock by whoever queues on an
    /// idle tasklet, cleared under it by the tasklet once `rq` and `tq` are empty and the last
    /// of its packets has gone on.
    pending: AtomicBool,
    /// Its number among the device's transmit queues.
    index: u16,
    /// INVARIANT: the `DevQueue` that owns this queue, pinned, outliving it.
    owner: *const DevQueue,
}

// SAFETY: `rq` is a lock; `tq` is used by the tasklet only, or once it was killed; `owner` is
// only read.
unsafe impl Send for TxQueue {}
// SAFETY: `&TxQueue` reaches `rq` only through its lock and `tq` only from the tasklet (which
// never runs on two CPUs at once); the flag is atomic.
unsafe impl Sync for TxQueue {}

#[pinned_drop]
impl PinnedDrop for TxQueue {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: set up in `DevQueue::new`; killed already if its device was unregistered
        // (harmless).
        unsafe { bindings::tasklet_kill(self.tasklet.get()) };
    }
}

/// One device's transmit queues and where their packets go.
struct DevQueue {
    dev: AtomicPtr<sys::net_device>,
    index: u32,
    /// The set's table (its own devices), or none (a device `ip link add` made).
    table: Option<Arc<DeviceTable>>,
    /// INVARIANT: the handler of the set, which outlives the queue.
    handler: *const c_void,
    reinject: ReinjectFn,
    /// INVARIANT: the set's, which outlives the queue.
    inline: *const Inline,
    /// One per transmit queue of the device, in order.
    txqs: KVec<Pin<KBox<TxQueue>>>,
}

// SAFETY: the handler is `Sync`; the rest is atomics or set before the device registers.
unsafe impl Send for DevQueue {}
// SAFETY: as for `Send`; the transmit queues are `Sync`.
unsafe impl Sync for DevQueue {}

impl DevQueue {
    /// The queues of a device with `ntx` transmit queues.
    fn new(
        index: u32,
        table: Option<Arc<DeviceTable>>,
        link: &LinkInner,
        ntx: u32,
    ) -> Result<Pin<KBox<Self>>> {
        let mut q = KBox::pin(
            DevQueue {
                dev: AtomicPtr::new(ptr::null_mut()),
                index,
                table,
                handler: link.handler,
                reinject: link.reinject,
                // INVARIANT: the set outlives its devices' queues (see `DeviceSet`).
                inline: &link.inline,
                txqs: KVec::with_capacity(ntx as usize, GFP_KERNEL)?,
            },
            GFP_KERNEL,
        )?;
        let owner: *const DevQueue = &*q;
        for i in 0..ntx {
            let index = u16::try_from(i).map_err(|_| EINVAL)?;
            let t = KBox::pin_init(
                try_pin_init!(TxQueue {
                    // SAFETY: all-zero is an unused tasklet, set up below before use.
                    tasklet: Opaque::new(unsafe { core::mem::zeroed() }),
                    rq <- new_spinlock!(SkbQueue::new(), "knet_txq_rq"),
                    tq: UnsafeCell::new(SkbQueue::new()),
                    pending: AtomicBool::new(false),
                    index,
                    // INVARIANT: the pinned owner, which drops its queues before it goes.
                    owner,
                }),
                GFP_KERNEL,
            )?;
            // SAFETY: pinned, not shared yet.
            unsafe { bindings::tasklet_setup(t.tasklet.get(), Some(tasklet_cb)) };
            // SAFETY: `txqs` is not structurally pinned (the queues are boxed themselves); the
            // owner itself is not moved.
            unsafe { Pin::get_unchecked_mut(q.as_mut()) }
                .txqs
                .push(t, GFP_KERNEL)?;
        }
        Ok(q)
    }
}

/// The queues of `dev`.
///
/// # Safety
///
/// `dev` is one of our devices (its private area holds the pointer), alive for the call.
unsafe fn queue_of<'a>(dev: *mut sys::net_device) -> &'a DevQueue {
    // SAFETY: our devices' private area holds a pointer to their pinned queues, which outlive
    // them (the set drops the queues after unregistering the devices).
    unsafe { &**priv_of(dev) }
}

/// Queues `skb` on `dev` (`dev_queue_xmit`), counted as received by the device; the device's
/// qdisc owns it then, drops included. `from_receive`: the caller is a hook of the stack's
/// receive path, which holds no lock, so that a qdisc run this call starts may hand packets on
/// at once (see [`Inline`]).
///
/// # Safety
///
/// `skb` is ours to give (a packet a hook steals); `dev` is alive for the call.
pub(crate) unsafe fn queue_xmit(dev: Device<'_>, skb: *mut bindings::sk_buff, from_receive: bool) {
    let d = dev.as_ptr();
    // SAFETY: per the function's contract; our devices' private area holds their queues.
    let (q, len) = unsafe { (queue_of(d), (*skb).len) };
    // SAFETY: per the function's contract.
    unsafe {
        count_packet(d, Dir::Rx, len);
        (*skb)
            .__bindgen_anon_1
            .__bindgen_anon_1
            .__bindgen_anon_1
            .dev = d.cast();
    }
    // Per-CPU state is ours only with bottom halves off (the receive path's case; checked, as
    // a hook has no say in how it is called).
    // SAFETY: no argument.
    if from_receive && unsafe { sys::knet_in_softirq() } {
        // SAFETY: the set outlives its devices' queues (type invariant).
        let inline = unsafe { &*q.inline };
        let was = inline.set(true);
        // SAFETY: per the function's contract.
        unsafe { sys::__dev_queue_xmit(skb, ptr::null_mut()) };
        inline.set(was);
    } else {
        // SAFETY: per the function's contract.
        unsafe { sys::__dev_queue_xmit(skb, ptr::null_mut()) };
    }
}

/// # Safety
///
/// Called by the kernel for one of our devices (from its qdisc, bottom halves off), with a
/// packet we own.
unsafe extern "C" fn xmit_cb(
    skb: *mut bindings::sk_buff,
    dev: *mut sys::net_device,
) -> sys::netdev_tx_t {
    // SAFETY: per the function's contract.
    let (q, mapping, len) = unsafe { (queue_of(dev), (*skb).queue_mapping, (*skb).len) };
    // SAFETY: the packet is ours, one reference, handed over.
    let skb = unsafe { Skb::from_raw(NonNull::new_unchecked(skb)) };
    // The core caps the mapping to the device's queues.
    let Some(t) = q.txqs.get(usize::from(mapping)) else {
        // SAFETY: our device, alive for the call.
        unsafe { sys::knet_dev_stats_tx_dropped(dev.cast()) };
        drop(skb);
        return sys::netdev_tx_NETDEV_TX_OK;
    };
    // SAFETY: our device, alive for the call (its per-CPU counters with it).
    unsafe { count_packet(dev, Dir::Tx, len) };
    // SAFETY: the set outlives its devices' queues (type invariant).
    let inline = unsafe { &*q.inline };
    // Acquire: the tasklet's last packet went on before it cleared the flag.
    if inline.get() && !t.pending.load(Ordering::Acquire) {
        inline.set(false);
        // SAFETY: our device, alive for the call; the handler outlives it (type invariant).
        unsafe {
            let d = Device::from_raw(dev).unwrap_unchecked();
            (q.reinject)(q.handler, skb, &d);
        }
        inline.set(true);
        return sys::netdev_tx_NETDEV_TX_OK;
    }
    let mut rq = t.rq.lock();
    rq.push(skb);
    if rq.len() >= RQ_MAX {
        // SAFETY: our device; `index` is one of its queues.
        unsafe { sys::knet_netif_stop_subqueue(dev.cast(), t.index) };
    }
    if !t.pending.load(Ordering::Relaxed) {
        t.pending.store(true, Ordering::Relaxed);
        // SAFETY: set up in `DevQueue::new`.
        unsafe { sys::knet_tasklet_schedule(t.tasklet.get()) };
    }
    drop(rq);
    sys::netdev_tx_NETDEV_TX_OK
}

/// # Safety
///
/// Called by the kernel for one of our devices with more than one transmit queue.
unsafe extern "C" fn select_queue_cb(
    dev: *mut sys::net_device,
    skb: *mut bindings::sk_buff,
    _sb_dev: *mut sys::net_device,
) -> u16 {
    // By flow hash alone (not the socket's or the receive queue's mapping, which belong to
    // other devices): a flow always takes the same queue.
    // SAFETY: per the function's contract.
    let (hash, n) = unsafe { (sys::knet_skb_get_hash(skb), (*dev).real_num_tx_queues) };
    // `reciprocal_scale`: the hash spread over the queues without a division.
    ((u64::from(hash) * u64::from(n)) >> 32) as u16
}

/// # Safety
///
/// Called by the tasklet core with the tasklet of a `TxQueue`.
unsafe extern "C" fn tasklet_cb(tl: *mut bindings::tasklet_struct) {
    // SAFETY: the tasklet is the first field of a `repr(C)` `TxQueue`, pinned.
    let t = unsafe { &*tl.cast::<TxQueue>() };
    // SAFETY: the owner outlives its queues (type invariant).
    let q = unsafe { &*t.owner };
    let dev = q.dev.load(Ordering::Acquire);
    let resched = || {
        // SAFETY: set up in `DevQueue::new`.
        unsafe { sys::knet_tasklet_schedule(t.tasklet.get()) };
    };
    // SAFETY: the device is alive while its tasklets can run (`uninit_cb` kills them before
    // the device goes).
    let Some(d) = (unsafe { Device::from_raw(dev) }) else {
        return;
    };
    // SAFETY: `tq` is the tasklet's own. No borrow of it is held across `reinject`, which may
    // send a packet back to this device (whose xmit takes `rq`'s lock, not `tq`).
    unsafe {
        if (*t.tq.get()).len() == 0 {
            (*t.tq.get()).append(&mut t.rq.lock());
        }
        for _ in 0..BUDGET {
            let Some(skb) = (*t.tq.get()).pop() else {
                break;
            };
            (q.reinject)(q.handler, skb, &d);
        }
        if (*t.tq.get()).len() != 0 {
            return resched();
        }
    }
    let rq = t.rq.lock();
    if rq.len() != 0 {
        drop(rq);
        return resched();
    }
    // Release: the packets went on before xmit may hand its own on at once.
    t.pending.store(false, Ordering::Release);
    // SAFETY: our device, alive (above); `index` is one of its queues.
    unsafe {
        if sys::knet_netif_subqueue_stopped(dev.cast(), t.index) {
            sys::knet_netif_wake_subqueue(dev.cast(), t.index);
        }
    }
    drop(rq);
}

/// # Safety
///
/// Called by the kernel for one of our devices.
unsafe extern "C" fn open_cb(dev: *mut sys::net_device) -> i32 {
    // SAFETY: per the function's contract.
    unsafe { sys::knet_netif_tx_start_all_queues(dev.cast()) };
    0
}

/// # Safety
///
/// Called by the kernel for one of our devices.
unsafe extern "C" fn stop_cb(dev: *mut sys::net_device) -> i32 {
    // SAFETY: per the function's contract.
    unsafe { sys::knet_netif_tx_stop_all_queues(dev.cast()) };
    0
}

/// Unregistration (the set dropped, or `ip link del`): forget the device, drop what it still
/// holds.
///
/// # Safety
///
/// Called by the kernel for one of our devices, under RTNL.
unsafe extern "C" fn uninit_cb(dev: *mut sys::net_device) {
    // SAFETY: per the function's contract.
    let q = unsafe { queue_of(dev) };
    q.dev.store(ptr::null_mut(), Ordering::Release);
    // INVARIANT: out of the table before the grace period that precedes the free.
    if let Some(table) = &q.table {
        table.set(q.index, ptr::null_mut());
    }
    for t in q.txqs.iter() {
        // SAFETY: set up in `DevQueue::new`; the queues are no longer reached by xmit (the
        // device is down and being unregistered) or by their tasklet (killed first).
        // `kfree_skb` (a drop), so that whoever watches drops sees them.
        unsafe {
            bindings::tasklet_kill(t.tasklet.get());
            let reason = bindings::skb_drop_reason_SKB_DROP_REASON_DEV_READY;
            // `rq`'s lock is taken in softirq (xmit, the tasklet): here, in process context,
            // only with bottom halves off (lockdep: inconsistent IN-SOFTIRQ-W usage).
            sys::knet_local_bh_disable();
            t.rq.lock().purge_reason(reason);
            sys::knet_local_bh_enable();
            (*t.tq.get()).purge_reason(reason);
        }
    }
}

/// A `net_device_ops` table (a plain table of function pointers the kernel reads).
struct NetdevOps(sys::net_device_ops);
// SAFETY: immutable, read by the kernel from any CPU.
unsafe impl Sync for NetdevOps {}

static NETDEV_OPS: NetdevOps = NetdevOps({
    // SAFETY: all-zero is a table without callbacks.
    let mut o: sys::net_device_ops = unsafe { core::mem::zeroed() };
    o.ndo_open = Some(open_cb);
    o.ndo_stop = Some(stop_cb);
    o.ndo_start_xmit = Some(xmit_cb);
    o.ndo_uninit = Some(uninit_cb);
    o.ndo_select_queue = Some(select_queue_cb);
    o
});

/// The private area of one of our devices: the pointer to its queue (`netdev_priv`).
///
/// # Safety
///
/// `dev` is a device allocated with `DeviceSet`'s private size, alive for the call.
unsafe fn priv_of(dev: *mut sys::net_device) -> *mut *const DevQueue {
    // SAFETY: per the function's contract; the area follows the struct, aligned for a pointer.
    unsafe { ptr::addr_of_mut!((*dev).priv_).cast() }
}

/// # Safety
///
/// Called by `alloc_netdev_mqs` with a device being allocated, not yet visible to anyone else.
unsafe extern "C" fn setup_cb(dev: *mut sys::net_device) {
    // SAFETY: the device is ours alone until it is registered; the table is static.
    let d = unsafe { &mut *dev };
    d.netdev_ops = &NETDEV_OPS.0;
    // Packets arrive at layer 3, as the original IMQ's devices took them.
    d.type_ = sys::ARPHRD_VOID as u16;
    d.mtu = 16000;
    d.min_mtu = 0;
    d.max_mtu = 0;
    d.hard_header_len = 0;
    d.addr_len = 0;
    d.tx_queue_len = 1000;
    d.flags = bindings::net_device_flags_IFF_NOARP;
    // GSO off by default: the hook then queues a GSO packet as its segments, so that the
    // qdisc's limits and drops count real packets; `ethtool -K imqN tso on` (and the other GSO
    // features) lets such packets through whole, as IFB does, for less CPU per byte.
    // SAFETY: constants defined in the C part.
    let (l3, gso) = unsafe { (sys::knet_l3_features, sys::knet_l3_gso_features) };
    d.features |= l3;
    d.hw_features |= l3 | gso;
    d.hw_enc_features |= l3 | gso;
    // No transmit lock (`lltx`): xmit may send the packet on through the stack (see `Inline`),
    // which must not run under a lock of ours; xmit guards its own queue. No netpoll, whose
    // xmit runs with interrupts off.
    // Not shareable on transmit; dst kept (netif_keep_dst): the chain resumes with it.
    // SAFETY: `struct_group(priv_flags_fast, ...)`: both members of the union are the same
    // fields (one anonymous, one named); the allocation zeroed them.
    let pf = unsafe { &mut d.__bindgen_anon_1.__bindgen_anon_1 };
    pf.set_priv_flags(
        (pf.priv_flags()
            & !((sys::netdev_priv_flags_IFF_TX_SKB_SHARING
                | sys::netdev_priv_flags_IFF_XMIT_DST_RELEASE
                | sys::netdev_priv_flags_IFF_XMIT_DST_RELEASE_PERM)
                as kernel::ffi::c_ulong))
            | sys::netdev_priv_flags_IFF_DISABLE_NETPOLL as kernel::ffi::c_ulong,
    );
    pf.set_lltx(1);
    // Packets of every namespace come here; the device stays where the module made it.
    d.set_netns_immutable(1);
    d.needs_free_netdev = true;
    // SAFETY: the device is being set up.
    unsafe {
        sys::netif_set_tso_max_size(dev, sys::GSO_MAX_SIZE);
        sys::knet_netdev_use_tstats(dev.cast());
    }
}

/// How many transmit queues a kind's devices have.
#[derive(Clone, Copy)]
pub(crate) struct QueueLimits {
    /// The set's own devices', and the default of `ip link add` without `numtxqueues`.
    pub(crate) default: u32,
    /// The most `ip link add` may ask for.
    pub(crate) max: u32,
    /// The extack message refusing more, or none.
    pub(crate) out_of_range: &'static CStr,
}

/// The registered kind's limits (one kind per module).
static DEFAULT_TXQS: AtomicU32 = AtomicU32::new(1);
static MAX_TXQS: AtomicU32 = AtomicU32::new(1);
static TXQS_MSG: AtomicPtr<kernel::ffi::c_char> = AtomicPtr::new(ptr::null_mut());

/// Sets an extack message, if there is one.
///
/// # Safety
///
/// `extack` is null or valid for the call; `msg` is null (nothing set) or a static string.
unsafe fn set_msg(extack: *mut bindings::netlink_ext_ack, msg: *const kernel::ffi::c_char) {
    if !extack.is_null() && !msg.is_null() {
        // SAFETY: per the function's contract; the message is static.
        unsafe { (*extack)._msg = msg };
    }
}

/// # Safety
///
/// Called by rtnetlink for `ip link add ... type KIND`, with `tb` the link attributes parsed by
/// the core's policy (indexed by `IFLA_*`).
unsafe extern "C" fn validate_cb(
    tb: *mut *mut bindings::nlattr,
    data: *mut *mut bindings::nlattr,
    extack: *mut bindings::netlink_ext_ack,
) -> i32 {
    if !data.is_null() {
        // SAFETY: per the function's contract.
        unsafe { set_msg(extack, c"these devices take no options".as_char_ptr()) };
        return EINVAL.to_errno();
    }
    // SAFETY: `tb` has an entry per IFLA_* attribute (the caller's array).
    let ntx = unsafe { *tb.add(sys::IFLA_NUM_TX_QUEUES as usize) };
    if !ntx.is_null() {
        // SAFETY: the core's policy checked that the attribute holds a u32, right after its
        // 4-byte header.
        let n = unsafe { ntx.cast::<u8>().add(4).cast::<u32>().read_unaligned() };
        if n == 0 || n > MAX_TXQS.load(Ordering::Relaxed) {
            // SAFETY: per the function's contract; the message is the registered kind's static
            // one (or null).
            unsafe { set_msg(extack, TXQS_MSG.load(Ordering::Relaxed)) };
            return EINVAL.to_errno();
        }
    }
    0
}

/// The transmit queues of a device `ip link add` makes without `numtxqueues`.
extern "C" fn get_num_tx_queues_cb() -> u32 {
    DEFAULT_TXQS.load(Ordering::Relaxed)
}

/// # Safety
///
/// Called by rtnetlink, under RTNL, for `ip link add NAME type KIND` with `dev` allocated by
/// the core with the kind's setup and private size, not registered yet, while the kind is
/// registered.
unsafe extern "C" fn newlink_cb(
    dev: *mut sys::net_device,
    _params: *mut sys::rtnl_newlink_params,
    _extack: *mut bindings::netlink_ext_ack,
) -> i32 {
    // SAFETY: the kind is registered (the caller's), so `LINK` is its live `LinkInner`.
    let link = unsafe { &*LINK.load(Ordering::Acquire) };
    // SAFETY: allocated by the core with the queues of `numtxqueues` or our default.
    let ntx = unsafe { (*dev).num_tx_queues };
    let q = match DevQueue::new(u32::MAX, None, link, ntx) {
        Ok(q) => q,
        Err(e) => return e.to_errno(),
    };
    // The device owns its queue: freed by `user_destructor_cb` once the device is gone.
    // SAFETY: the queue is not moved out of the box again (only freed whole).
    let qp = KBox::into_raw(unsafe { Pin::into_inner_unchecked(q) });
    // SAFETY: a fresh device with room for the pointer in its private area (the kind's size).
    unsafe {
        *priv_of(dev) = qp;
        (*qp).dev.store(dev, Ordering::Release);
    }
    // SAFETY: RTNL is held (the caller's).
    let err = unsafe { sys::register_netdevice(dev) };
    if err != 0 {
        // SAFETY: not registered: the queue is ours again (the core frees the device).
        unsafe {
            (*qp).dev.store(ptr::null_mut(), Ordering::Release);
            drop(Pin::new_unchecked(KBox::from_raw(qp)));
        }
        return err;
    }
    // Set only now: a failed registration never calls it.
    // SAFETY: registered, RTNL held: the field is read when the device is freed.
    unsafe { (*dev).priv_destructor = Some(user_destructor_cb) };
    USER_DEVICES.fetch_add(1, Ordering::Relaxed);
    0
}

/// # Safety
///
/// Called when a device `newlink_cb` made is freed (after its unregistration and an RCU grace
/// period; its tasklet was killed in `uninit_cb`).
unsafe extern "C" fn user_destructor_cb(dev: *mut sys::net_device) {
    // SAFETY: the device's own queue, leaked in `newlink_cb`, freed once, here.
    unsafe {
        drop(Pin::new_unchecked(KBox::from_raw(
            (*priv_of(dev)).cast_mut(),
        )))
    };
    USER_DEVICES.fetch_sub(1, Ordering::Relaxed);
}

/// # Safety
///
/// Called by rtnetlink, under RTNL, for `ip link del` of one of our devices.
unsafe extern "C" fn dellink_cb(dev: *mut sys::net_device, head: *mut bindings::list_head) {
    // SAFETY: per the function's contract.
    unsafe { sys::unregister_netdevice_queue(dev, head) };
}

/// The kind's table and what `newlink_cb` needs to make a device's queue.
#[repr(C)]
struct LinkInner {
    /// First: `LINK` points to the whole.
    ops: Opaque<sys::rtnl_link_ops>,
    handler: *const c_void,
    reinject: ReinjectFn,
    /// Its devices' queues point to it.
    inline: Inline,
}

/// A link kind and its devices.
pub(crate) struct DeviceSet<H: TxHandler> {
    link: Pin<KBox<LinkInner>>,
    link_registered: bool,
    queues: KVec<Pin<KBox<DevQueue>>>,
    /// The queues point to it.
    _handler: Arc<H>,
}

// SAFETY: `LinkInner` is the kernel's table, read by it from any CPU; Rust only reads `kind`.
unsafe impl Send for LinkInner {}
// SAFETY: `&LinkInner` gives Rust no access after registration; the kernel only reads it.
unsafe impl Sync for LinkInner {}

impl<H: TxHandler> DeviceSet<H> {
    /// Registers link kind `kind` and one device per entry of `table`, named from `name_fmt`
    /// (e.g. `imq%d`), with the transmit queues of `limits`, whose packets go to `handler`.
    pub(crate) fn new(
        name_fmt: &'static CStr,
        kind: &'static CStr,
        limits: QueueLimits,
        table: &Arc<DeviceTable>,
        handler: Arc<H>,
    ) -> Result<Self> {
        let txqs = limits.default;
        if txqs == 0 || txqs > limits.max || limits.max > u32::from(u16::MAX) {
            return Err(EINVAL);
        }
        let n = table.devs.len();
        let h = Arc::as_ptr(&handler).cast::<c_void>();
        let link = KBox::pin(
            LinkInner {
                // SAFETY: all-zero is a link kind without callbacks, filled in below.
                ops: Opaque::new(unsafe { core::mem::zeroed() }),
                // INVARIANT: the set holds the handler until the kind and its devices are gone.
                handler: h,
                reinject: reinject::<H>,
                inline: Inline(PerCpuCounters::new()?),
            },
            GFP_KERNEL,
        )?;
        // SAFETY: not registered yet: ours to fill.
        let o = unsafe { &mut *link.ops.get() };
        o.kind = kind.as_char_ptr();
        o.priv_size = core::mem::size_of::<*const DevQueue>();
        o.setup = Some(setup_cb);
        o.validate = Some(validate_cb);
        o.newlink = Some(newlink_cb);
        o.dellink = Some(dellink_cb);
        o.get_num_tx_queues = Some(get_num_tx_queues_cb);
        let mut set = DeviceSet {
            link,
            link_registered: false,
            queues: KVec::with_capacity(n, GFP_KERNEL)?,
            _handler: handler,
        };
        // One kind per module: `newlink_cb` and the packet path find it here.
        let raw = ptr::from_ref::<LinkInner>(&set.link).cast_mut();
        if LINK
            .compare_exchange(ptr::null_mut(), raw, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return Err(EBUSY);
        }
        DEFAULT_TXQS.store(txqs, Ordering::Relaxed);
        MAX_TXQS.store(limits.max, Ordering::Relaxed);
        TXQS_MSG.store(
            limits.out_of_range.as_char_ptr().cast_mut(),
            Ordering::Relaxed,
        );
        // SAFETY: pinned, unregistered in `drop`.
        if let Err(e) = to_result(unsafe { sys::rtnl_link_register(set.link.ops.get()) }) {
            LINK.store(ptr::null_mut(), Ordering::Release);
            return Err(e);
        }
        set.link_registered = true;
        for i in 0..n as u32 {
            let q = DevQueue::new(i, Some(table.clone()), &set.link, txqs)?;
            // SAFETY: `name_fmt` is a static NUL-terminated string; `setup_cb` fills the rest.
            let dev = unsafe {
                sys::alloc_netdev_mqs(
                    core::mem::size_of::<*const DevQueue>() as i32,
                    name_fmt.as_char_ptr(),
                    sys::NET_NAME_ENUM as u8,
                    Some(setup_cb),
                    txqs,
                    1,
                )
            };
            if dev.is_null() {
                return Err(ENOMEM);
            }
            let qp: *const DevQueue = &*q;
            // SAFETY: a fresh device with room for the pointer in its private area; the queue
            // is pinned and outlives the device (dropped after the kind is unregistered).
            let err = unsafe {
                *priv_of(dev) = qp;
                (*dev).rtnl_link_ops = set.link.ops.get();
                q.dev.store(dev.cast(), Ordering::Release);
                sys::rtnl_lock();
                let err = sys::register_netdevice(dev);
                sys::rtnl_unlock();
                if err != 0 {
                    q.dev.store(ptr::null_mut(), Ordering::Release);
                    sys::free_netdev(dev);
                }
                err
            };
            set.queues.push(q, GFP_KERNEL)?;
            to_result(err)?;
            // INVARIANT: registered; cleared again in `uninit_cb`.
            table.set(i, dev.cast());
        }
        Ok(set)
    }
}

impl<H: TxHandler> Drop for DeviceSet<H> {
    fn drop(&mut self) {
        if self.link_registered {
            // SAFETY: registered in `new`; deletes every device of the kind in every namespace
            // (their `uninit` runs, and the destructor of those `ip link add` made), waiting
            // for RCU readers of them.
            unsafe { sys::rtnl_link_unregister(self.link.ops.get()) };
            LINK.store(ptr::null_mut(), Ordering::Release);
        }
        // The queues go after their devices (field order does the rest).
    }
}
