// SPDX-License-Identifier: GPL-2.0

//! What a classful qdisc is built from: child qdiscs, a packet queue of its own, filter blocks,
//! and per-class counters with a rate estimator.

use super::{
    errno::ENOBUFS,
    netlink::{ExtAck, StatsDump},
    qdisc::{add_u64_stats, Control, Locked, RateAttr, RootLock, TreeLock},
    skb::{Skb, ToFree, Xmit},
    sys,
};
use core::{marker::PhantomData, ptr::NonNull};
use kernel::{error::code::EMSGSIZE, error::to_result, prelude::*, types::Opaque};

/// A child qdisc (a class's leaf), holding one reference to it.
///
/// Dropping it releases the reference (`qdisc_put`), which may destroy the qdisc: drop children
/// in control context (RTNL held, root lock not held), never in the packet path.
///
/// # Invariants
///
/// `self.0` points to a live qdisc of which this value owns one reference (handed on by
/// [`Child::into_raw`], or put on drop).
pub(crate) struct Child(NonNull<sys::Qdisc>);

// SAFETY: a qdisc reference may be released from any CPU; the qdisc is used under its root lock.
unsafe impl Send for Child {}
// SAFETY: `&self` methods need a lock proof or only read immutable fields.
unsafe impl Sync for Child {}

/// Names a qdisc for the core (a class's leaf, `tc qdisc show`), without access to it.
///
/// # Invariants
///
/// `self.0` is the address of the qdisc of the [`Child`] that made this ([`Child::id`]). It holds
/// no reference: it names a live qdisc only while that child (or another reference) is held.
#[derive(Clone, Copy)]
pub(crate) struct QdiscId(pub(super) NonNull<sys::Qdisc>);

/// Names a filter block for the core.
///
/// # Invariants
///
/// `self.0` is null or the block of the [`Filters`] that made this ([`Filters::block`]). It holds
/// no reference: it names a live block only while that `Filters` has not been put.
#[derive(Clone, Copy)]
pub(crate) struct BlockId(pub(super) *mut sys::tcf_block);

impl Child {
    /// # Safety
    ///
    /// `q` is a qdisc whose reference the caller hands over.
    pub(super) unsafe fn from_raw(q: NonNull<sys::Qdisc>) -> Child {
        // INVARIANT: the caller hands over its reference to the live qdisc `q`.
        Child(q)
    }

    pub(super) fn into_raw(self) -> *mut sys::Qdisc {
        let p = self.0.as_ptr();
        core::mem::forget(self);
        p
    }

    /// A new `pfifo` child of `sch`, with parent `classid` (invisible in dumps until
    /// [`Child::publish`]).
    pub(crate) fn new_pfifo(
        sch: &Control<'_>,
        classid: u32,
        extack: &mut ExtAck<'_>,
    ) -> Result<Child> {
        // SAFETY: RTNL is held (`Control`); `sch` is attached to a device queue.
        let q = unsafe { sys::knet_qdisc_create_pfifo(sch.raw(), classid, extack.as_ptr()) };
        // INVARIANT: `qdisc_create_dflt` returns NULL or a new qdisc with one reference, ours.
        NonNull::new(q).map(Child).ok_or(ENOBUFS)
    }

    /// Makes the child visible to `tc qdisc show` (`qdisc_hash_add`).
    pub(crate) fn publish(&self, _sch: &Control<'_>) {
        // SAFETY: RTNL is held (`Control`); by the type invariant `self.0` is a live qdisc.
        unsafe { sys::qdisc_hash_add(self.0.as_ptr(), true) };
    }

    /// The core's name for this qdisc.
    pub(crate) fn id(&self) -> QdiscId {
        // INVARIANT: the address of our qdisc.
        QdiscId(self.0)
    }

    /// The child's handle.
    pub(crate) fn handle(&self) -> u32 {
        // SAFETY: by the type invariant `self.0` is a live qdisc; its handle never changes.
        unsafe { sys::knet_qdisc_child_handle(self.0.as_ptr()) }
    }

    /// Queues `skb` in the child and, if the child took it, counts it in `sch` as
    /// [`Locked::count_enqueue`] does, in one call into C. (Calling the child's `enqueue`
    /// from Rust and counting here measured slower: 0.5% of the packet rate.)
    pub(crate) fn enqueue_counted(
        &self,
        sch: &Locked<'_>,
        skb: Skb,
        to_free: &mut ToFree<'_>,
    ) -> Xmit {
        // SAFETY: the root lock, which also guards children and `sch`'s counters, is held
        // (`Locked`); by the type invariant `self.0` is a live qdisc; the skb's reference (`Skb`
        // invariant) is handed over.
        Xmit(unsafe {
            sys::knet_qdisc_child_enqueue_counted(
                skb.into_raw(),
                self.0.as_ptr(),
                to_free.as_raw(),
                sch.qdisc(),
            )
        })
    }

    /// The child's next packet, if it has one to send now, with its length and the child's
    /// queue length after it.
    pub(crate) fn dequeue(&self, _sch: &Locked<'_>) -> Dequeued {
        let (mut len, mut segs, mut qlen) = (0, 0, 0);
        // SAFETY: the root lock is held (`Locked`); by the type invariant `self.0` is a live
        // qdisc; a returned skb is handed over to us; the shim writes the three counts.
        let skb = unsafe {
            sys::knet_qdisc_child_dequeue(self.0.as_ptr(), &mut len, &mut segs, &mut qlen)
        };
        // SAFETY: a non-NULL skb from the child's dequeue is ours to own.
        let skb = NonNull::new(skb).map(|s| unsafe { Skb::from_raw(s) });
        Dequeued {
            skb,
            len,
            segs,
            qlen_after: qlen,
        }
    }

    /// Drops everything queued in the child, telling the ancestors (`qdisc_purge_queue`).
    pub(crate) fn purge(&self, _lock: &TreeLock<'_>) {
        // SAFETY: the tree lock is held, as qdisc_purge_queue requires; by the type invariant
        // `self.0` is a live qdisc.
        unsafe { sys::knet_qdisc_child_purge(self.0.as_ptr()) };
    }

    /// Resets the child (its parent is being reset).
    pub(crate) fn reset(&self, _lock: &Locked<'_>) {
        // SAFETY: the root lock is held, as qdisc_reset requires; by the type invariant `self.0`
        // is a live qdisc.
        unsafe { sys::qdisc_reset(self.0.as_ptr()) };
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // SAFETY: by the type invariant we own one reference to a live qdisc, put here once; the
        // owner drops children in control context (see the type's documentation).
        unsafe { sys::qdisc_put(self.0.as_ptr()) };
    }
}

/// Where a filter sent a packet.
pub(crate) enum Classified {
    /// No filter matched.
    NoMatch,
    /// A filter chose the class with this id (also set when the filter holds the class).
    Class(u32),
    /// An action took the packet (stolen, queued elsewhere, trapped): not ours any more.
    Consumed,
    /// An action dropped the packet (`TC_ACT_SHOT`).
    Shot,
}

/// A filter block with its chain, attached to a qdisc or a class; released on drop (control
/// context).
///
/// # Invariants
///
/// `raw` was initialised by `tcf_block_get` in [`Filters::new`]: `block` is the block this value
/// holds, until [`Filters::put`] puts it and sets it to null; `chain` is the RCU head of the
/// block's chain 0 (null without filters, and once put), which the block updates through a
/// pointer to it: hence pinned.
#[pin_data(PinnedDrop)]
pub(crate) struct Filters {
    #[pin]
    raw: Opaque<sys::knet_filters>,
}

// SAFETY: the block is used under RTNL and, for classification, under RCU (BH) by any CPU.
unsafe impl Send for Filters {}
// SAFETY: `&Filters` classifies under RCU (BH), which the block supports from any CPU; changes
// need `&mut` or RTNL.
unsafe impl Sync for Filters {}

impl Filters {
    /// A block for `sch` (`tcf_block_get`).
    pub(crate) fn new(sch: &Control<'_>, extack: &mut ExtAck<'_>) -> impl PinInit<Self, Error> {
        let (q, ext) = (sch.raw(), extack.as_ptr());
        try_pin_init!(Self {
            // INVARIANT: on success `tcf_block_get` filled in `block` and keeps `chain` up to
            // date through its address, which stays put (pinned).
            // SAFETY: the struct is zeroed first, then initialised in place by tcf_block_get;
            // the initialiser runs right away in the caller's control context (RTNL held,
            // `q` and `ext` valid); the block stays pinned until put.
            raw <- Opaque::try_ffi_init(move |p: *mut sys::knet_filters| unsafe {
                core::ptr::write_bytes(p, 0, 1);
                to_result(sys::tcf_block_get(
                    &raw mut (*p).block,
                    &raw mut (*p).chain,
                    q,
                    ext,
                ))
            }),
        }? Error)
    }

    /// The core's name for the block.
    pub(crate) fn block(&self) -> BlockId {
        // SAFETY: by the type invariant `raw` was initialised by `new`; reading the block
        // pointer is harmless.
        BlockId(unsafe { (*self.raw.get()).block })
    }

    /// Runs the filters on `skb`.
    pub(crate) fn classify(&self, _sch: &Locked<'_>, skb: &Skb) -> Classified {
        // SAFETY: by the type invariant `raw` is this block's live `knet_filters`, pinned; its
        // chain pointer is read once, as
        // READ_ONCE would, and only compared with NULL: most trees have no filters on most
        // classes, and this spares them a call per packet.
        let chain = unsafe { core::ptr::addr_of!((*self.raw.get()).chain).read_volatile() };
        if chain.is_null() {
            return Classified::NoMatch;
        }
        let mut classid = 0u32;
        // SAFETY: the packet path holds the root lock and runs with BH off (RCU-BH read side),
        // as tcf_classify requires; `skb` is live (`Skb` invariant); by the type invariant
        // `raw` is initialised and its `chain` maintained by the block.
        let r = unsafe { sys::knet_filters_classify(skb.as_ptr(), self.raw.get(), &mut classid) };
        match r {
            r if r < 0 => Classified::NoMatch,
            r if r == kernel::bindings::TC_ACT_SHOT as i32 => Classified::Shot,
            r if r == kernel::bindings::TC_ACT_STOLEN as i32
                || r == kernel::bindings::TC_ACT_QUEUED as i32
                || r == kernel::bindings::TC_ACT_TRAP as i32 =>
            {
                Classified::Consumed
            }
            _ => Classified::Class(classid),
        }
    }

    /// Releases the block now (filters go away and unbind their classes); idempotent.
    pub(crate) fn put(&self, _sch: &Control<'_>) {
        // SAFETY: RTNL is held (the token says so).
        unsafe { self.put_raw() };
    }

    /// # Safety
    ///
    /// RTNL is held.
    unsafe fn put_raw(&self) {
        // INVARIANT: `block` is null once put.
        // SAFETY: by the type invariant `raw` was initialised by `new` and a non-null `block` is
        // the block we hold: put under RTNL (the caller's guarantee), then cleared so that it is
        // put once.
        unsafe {
            let f = self.raw.get();
            if !(*f).block.is_null() {
                sys::tcf_block_put((*f).block);
                (*f).block = core::ptr::null_mut();
            }
        }
    }
}

#[pinned_drop]
impl PinnedDrop for Filters {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: owners drop filters in control context, under RTNL (documented on the type).
        unsafe { self.put_raw() };
    }
}

/// What [`Child::dequeue`] gave.
pub(crate) struct Dequeued {
    /// The packet, if any.
    pub(crate) skb: Option<Skb>,
    /// Its length as the qdisc layer counts it (`qdisc_pkt_len`), 0 without a packet.
    pub(crate) len: u32,
    /// The packets it counts as in statistics (its GSO segments, else 1), 0 without one.
    pub(crate) segs: u32,
    /// Packets left in the child.
    pub(crate) qlen_after: u32,
}

/// Byte and packet counters of a class, with an optional rate estimator; the estimator is
/// killed on drop.
///
/// # Invariants
///
/// `raw` was initialised by `knet_class_stats_init` in [`ClassStats::new`]; its `rate_est` is
/// null or an estimator that reads `bstats` in place (hence pinned), killed on drop.
#[pin_data(PinnedDrop)]
pub(crate) struct ClassStats {
    #[pin]
    raw: Opaque<sys::knet_class_stats>,
    _p: PhantomData<()>,
}

// SAFETY: counters are updated under the root lock; the estimator timer reads them with the
// seqcount the kernel uses for that.
unsafe impl Send for ClassStats {}
// SAFETY: through `&ClassStats` the counters are only read (dumps, under RTNL, with the
// kernel's seqcount) or updated with proof of the root lock.
unsafe impl Sync for ClassStats {}

impl ClassStats {
    /// Zero counters, no estimator.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // INVARIANT: initialised in place, without an estimator; pinned from here on.
            // SAFETY: initialised in place; pinned from here on (the estimator points at it).
            raw <- Opaque::ffi_init(|p| unsafe { sys::knet_class_stats_init(p) }),
            _p: PhantomData,
        })
    }

    /// Counts a packet of `len` bytes and `segs` packets (a [`Dequeued`]'s) as sent by this
    /// class, in Rust: no call into C per packet. The qdisc counts it separately
    /// ([`Locked::count_dequeued`]).
    #[inline]
    pub(crate) fn add_sent(&self, _sch: &Locked<'_>, len: u32, segs: u32) {
        let c = self.raw.get();
        // SAFETY: by the type invariant the counters are initialised; the root lock of the qdisc
        // (`Locked`), held, serialises their writers; the estimator's timer only reads them.
        unsafe {
            add_u64_stats(&raw mut (*c).bstats.bytes, u64::from(len));
            add_u64_stats(&raw mut (*c).bstats.packets, u64::from(segs));
        }
    }

    /// Starts or replaces the estimator with `rate`'s settings, or the default (4 s / 16 s).
    pub(crate) fn set_estimator(
        &self,
        _sch: &Control<'_>,
        rate: Option<&RateAttr>,
        replace: bool,
    ) -> Result {
        let nla = rate.map_or(core::ptr::null_mut(), |r| r.0);
        // SAFETY: RTNL is held (`Control`); by the type invariant `raw` is initialised and pinned,
        // so the estimator may keep pointing at its counters; `nla` is NULL or the request's
        // TCA_RATE attribute (`RateAttr` invariant).
        to_result(unsafe { sys::knet_class_stats_estimator(self.raw.get(), nla, replace) })
    }

    /// Dumps counters, the estimated rate, the queue of `leaf`, `drops`, `overlimits` and the
    /// kind's own `xstats`.
    pub(crate) fn dump(
        &self,
        d: &mut StatsDump<'_>,
        leaf: Option<&Child>,
        drops: u32,
        overlimits: u32,
        xstats: &[u8],
    ) -> Result {
        let leaf = leaf.map_or(core::ptr::null_mut(), |c| c.0.as_ptr());
        // SAFETY: `d.0` is the dump in progress (`StatsDump` invariant); by the type invariant
        // `raw` is initialised; `leaf` is NULL or a live qdisc (`Child` invariant); `xstats` is
        // valid for its length.
        let r = unsafe {
            sys::knet_class_stats_dump(
                d.0,
                self.raw.get(),
                leaf,
                drops,
                overlimits,
                xstats.as_ptr().cast(),
                xstats.len() as i32,
            )
        };
        if r < 0 {
            Err(EMSGSIZE)
        } else {
            Ok(())
        }
    }
}

#[pinned_drop]
impl PinnedDrop for ClassStats {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: by the type invariant `raw` is initialised and `rate_est` is null or the
        // estimator reading these counters; it is stopped here, before they go.
        unsafe { sys::gen_kill_estimator(&raw mut (*self.raw.get()).rate_est) };
    }
}
