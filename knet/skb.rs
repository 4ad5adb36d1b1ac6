// SPDX-License-Identifier: GPL-2.0

//! Owned packets, handed on exactly once; what a qdisc (`knet_qdisc`) and the divert
//! (`knet_divert`) read and write of them.

#[cfg(any(knet_qdisc, knet_divert, knet_xt))]
use super::sys;
#[cfg(any(knet_qdisc, knet_divert))]
use core::ptr::NonNull;
use kernel::bindings;

// `qdisc_skb_cb` lies at the start of `skb->cb` (48 bytes), which its alignment allows.
#[cfg(knet_qdisc)]
const _: () = {
    assert!(core::mem::offset_of!(bindings::sk_buff, cb) % align_of::<sys::qdisc_skb_cb>() == 0);
    assert!(size_of::<sys::qdisc_skb_cb>() <= 48);
};

/// A packet owned by the holder: it must be enqueued, returned from a dequeue, or dropped.
///
/// Dropping an `Skb` frees the packet (`kfree_skb`); the packet path hands packets on instead,
/// or drops them through [`ToFree`] so they are freed after the qdisc lock is released.
///
/// # Invariants
///
/// `self.0` points to a live `sk_buff` of which this value owns one reference (handed on by
/// [`Skb::into_raw`], or put on drop).
#[cfg(any(knet_qdisc, knet_divert))]
#[must_use = "a packet must be queued, returned or dropped"]
pub(crate) struct Skb(NonNull<bindings::sk_buff>);

#[cfg(any(knet_qdisc, knet_divert))]
// SAFETY: by the type invariant the value owns its reference to the packet, and an owned skb may
// be handed to another CPU; the kernel does so all the time.
unsafe impl Send for Skb {}

#[cfg(any(knet_qdisc, knet_divert))]
impl Skb {
    /// Takes ownership of `skb`.
    ///
    /// # Safety
    ///
    /// `skb` is a valid packet whose reference the caller owns and hands over.
    pub(super) unsafe fn from_raw(skb: NonNull<bindings::sk_buff>) -> Skb {
        // INVARIANT: the caller hands over its reference to a live skb.
        Skb(skb)
    }

    /// Gives up ownership.
    pub(super) fn into_raw(self) -> *mut bindings::sk_buff {
        let p = self.0.as_ptr();
        core::mem::forget(self);
        p
    }

    #[cfg(knet_qdisc)]
    pub(super) fn as_ptr(&self) -> *mut bindings::sk_buff {
        self.0.as_ptr()
    }

    /// Length the packet scheduler charges: a GSO packet counts whole, with the headers of
    /// every segment (`qdisc_pkt_len`).
    #[cfg(knet_qdisc)]
    pub(crate) fn pkt_len(&self) -> u32 {
        // SAFETY: by the type invariant `self.0` is a live skb we own; `qdisc_skb_cb(skb)` is
        // the start of `cb` (8-byte aligned), its `pkt_len` set by the core before enqueue.
        unsafe {
            let cb = (&raw const (*self.0.as_ptr()).cb).cast::<sys::qdisc_skb_cb>();
            (&raw const (*cb).pkt_len).read()
        }
    }

    /// `skb->priority` (for HTB: a class id, or the qdisc's handle for the direct queue).
    #[cfg(knet_qdisc)]
    pub(crate) fn priority(&self) -> u32 {
        // SAFETY: by the type invariant `self.0` is a live skb we own; the header fields are the
        // union member they are declared in.
        unsafe {
            self.0
                .as_ref()
                .__bindgen_anon_4
                .__bindgen_anon_1
                .as_ref()
                .priority
        }
    }
}

#[cfg(knet_divert)]
impl Skb {
    /// The packet's identity while it lives (its address).
    pub(crate) fn id(&self) -> usize {
        self.0.as_ptr() as usize
    }

    /// The identity of the packet's data buffer (`head`), which its clones share and which
    /// cannot be freed, nor reused for another packet, while any of them holds it.
    pub(crate) fn buffer_id(&self) -> usize {
        // SAFETY: by the type invariant a live skb we own; `head` is only read.
        unsafe { (*self.0.as_ptr()).head as usize }
    }

    /// The tag in bytes 40..47 of the control block (see [`tag_of`]).
    pub(crate) fn tag(&self) -> (u32, u32) {
        // SAFETY: by the type invariant `self.0` is a live skb we own, so we may read it.
        unsafe { tag_of(self.0.as_ptr()) }
    }
}

#[cfg(any(knet_qdisc, knet_divert))]
impl Drop for Skb {
    fn drop(&mut self) {
        // SAFETY: by the type invariant `self` owns one reference to a live skb, put here and not
        // used after. `kfree_skb`: a drop, seen by the `kfree_skb` tracepoint.
        unsafe {
            bindings::sk_skb_reason_drop(
                core::ptr::null_mut(),
                self.0.as_ptr(),
                bindings::skb_drop_reason_SKB_DROP_REASON_NOT_SPECIFIED,
            )
        };
    }
}

/// Packets queued without a qdisc of their own (HTB's direct queue); freed on drop.
///
/// # Invariants
///
/// `head` is null or the first of `qlen` live packets, each owned by the queue (one reference),
/// linked through their `next` field; the last one's `next` is null and `tail` points to it.
/// `head` and `tail` are both null when `qlen` is 0.
#[cfg(any(knet_qdisc, knet_divert))]
pub(crate) struct SkbQueue {
    head: *mut bindings::sk_buff,
    tail: *mut bindings::sk_buff,
    qlen: u32,
}

/// The `next` link of a queued packet.
///
/// # Safety
///
/// `skb` is a valid packet owned by the queue (or being handed to it).
#[cfg(any(knet_qdisc, knet_divert))]
unsafe fn next_of(skb: *mut bindings::sk_buff) -> *mut *mut bindings::sk_buff {
    // SAFETY: per the function's contract; `next` is the list member of the union, the one a
    // packet outside the stack's lists may use.
    unsafe { &raw mut (*skb).__bindgen_anon_1.__bindgen_anon_1.next }
}

#[cfg(any(knet_qdisc, knet_divert))]
// SAFETY: by the type invariant the queue owns its packets (one reference each), and owned
// packets may move between CPUs.
unsafe impl Send for SkbQueue {}

#[cfg(any(knet_qdisc, knet_divert))]
impl SkbQueue {
    /// An empty queue.
    pub(crate) const fn new() -> Self {
        // INVARIANT: empty: both ends null, no packet counted.
        SkbQueue {
            head: core::ptr::null_mut(),
            tail: core::ptr::null_mut(),
            qlen: 0,
        }
    }

    /// Packets queued.
    pub(crate) fn len(&self) -> u32 {
        self.qlen
    }

    /// Appends `skb`.
    pub(crate) fn push(&mut self, skb: Skb) {
        let skb = skb.into_raw();
        // SAFETY: `skb` is a live packet whose reference `Skb::into_raw` handed to the queue; by
        // the type invariant a non-null `tail` is the last packet the queue owns. Both `next`
        // links are the queue's to write, and each packet is linked once.
        unsafe {
            *next_of(skb) = core::ptr::null_mut();
            if self.tail.is_null() {
                self.head = skb;
            } else {
                *next_of(self.tail) = skb;
            }
        }
        // INVARIANT: `skb` is now linked last, its `next` null, and counted in `qlen`.
        self.tail = skb;
        self.qlen += 1;
    }

    /// Takes the first packet.
    pub(crate) fn pop(&mut self) -> Option<Skb> {
        let skb = NonNull::new(self.head)?;
        // INVARIANT: `head` moves to the next packet (`tail` is cleared with the last one) and
        // `qlen` stops counting the one taken.
        // SAFETY: by the type invariant a non-null `head` is a live packet the queue owns, whose
        // `next` is the following packet or null; unlinked, its reference goes to the `Skb`.
        unsafe {
            self.head = *next_of(skb.as_ptr());
            *next_of(skb.as_ptr()) = core::ptr::null_mut();
            if self.head.is_null() {
                self.tail = core::ptr::null_mut();
            }
            self.qlen -= 1;
            Some(Skb::from_raw(skb))
        }
    }

    /// Forgets the packets (whoever called owns them now).
    fn clear(&mut self) {
        // INVARIANT: an empty queue; the caller has freed or taken over the packets.
        self.head = core::ptr::null_mut();
        self.tail = core::ptr::null_mut();
        self.qlen = 0;
    }

    /// Frees every packet, counted as dropped for `reason` (the `kfree_skb` tracepoint sees
    /// each).
    pub(crate) fn purge_reason(&mut self, reason: bindings::skb_drop_reason) {
        // SAFETY: by the type invariant the queue owns the packets, linked through `next` and
        // ending in null: a list `kfree_skb_list_reason` frees whole (not rtnl_kfree_skbs: the
        // caller may hold the qdisc lock, not RTNL).
        unsafe { bindings::kfree_skb_list_reason(self.head, reason) };
        // Field by field: assigning a new queue would drop this one, freeing the list again.
        self.clear();
    }

    /// Frees every packet.
    pub(crate) fn purge(&mut self) {
        self.purge_reason(bindings::skb_drop_reason_SKB_DROP_REASON_NOT_SPECIFIED);
    }

    /// Moves every packet of `other` to the end of this queue.
    #[cfg(knet_divert)]
    pub(crate) fn append(&mut self, other: &mut SkbQueue) {
        if other.head.is_null() {
            return;
        }
        if self.tail.is_null() {
            self.head = other.head;
        } else {
            // SAFETY: by the type invariant our non-null `tail` is the last packet this queue
            // owns; `other`'s packets become ours.
            unsafe { *next_of(self.tail) = other.head };
        }
        // INVARIANT: `other`'s list, whose last packet is its `tail` (with a null `next`), now
        // follows ours, and `qlen` counts both.
        self.tail = other.tail;
        self.qlen += other.qlen;
        // Its packets are ours now: emptied, not dropped.
        other.clear();
    }
}

#[cfg(any(knet_qdisc, knet_divert))]
impl Drop for SkbQueue {
    fn drop(&mut self) {
        self.purge();
    }
}

/// Where a tag sits in `skb->cb`: bytes 40..47, after everything the packet scheduler keeps
/// there (checked at build time in `net_helpers.c`).
#[cfg(any(knet_divert, knet_xt))]
const TAG_OFF: usize = sys::KNET_SKB_CB_FREE_OFF as usize;

/// The tag (two native-endian words) in the control block of `skb`.
///
/// # Safety
///
/// `skb` is a valid packet the caller may read.
#[cfg(knet_divert)]
pub(crate) unsafe fn tag_of(skb: *const bindings::sk_buff) -> (u32, u32) {
    // SAFETY: per the function's contract; the tag lies inside `cb` (build-time check).
    let cb = unsafe { &(*skb).cb };
    let word = |at: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&cb[at..at + 4]);
        u32::from_ne_bytes(b)
    };
    (word(TAG_OFF), word(TAG_OFF + 4))
}

/// Writes the tag in the control block of `skb`.
///
/// # Safety
///
/// `skb` is a valid packet the caller may write (held by it, or lent to it by the chain).
#[cfg(any(knet_divert, knet_xt))]
pub(crate) unsafe fn set_tag_of(skb: *mut bindings::sk_buff, magic: u32, val: u32) {
    // SAFETY: per the function's contract.
    let cb = unsafe { &mut (*skb).cb };
    cb[TAG_OFF..TAG_OFF + 4].copy_from_slice(&magic.to_ne_bytes());
    cb[TAG_OFF + 4..TAG_OFF + 8].copy_from_slice(&val.to_ne_bytes());
}

/// The packet's header fields (`priority`, `mac_header`, the timestamp type...).
///
/// # Safety
///
/// `skb` is a valid packet the caller may read, for `'a`.
#[cfg(any(knet_divert, knet_probe))]
pub(crate) unsafe fn headers<'a>(
    skb: *const bindings::sk_buff,
) -> &'a bindings::sk_buff__bindgen_ty_4__bindgen_ty_1 {
    // SAFETY: per the function's contract; the anonymous struct is the union member the
    // fields are declared in (the other is the same struct group, `headers`).
    unsafe { (*skb).__bindgen_anon_4.__bindgen_anon_1.as_ref() }
}

/// As [`headers`], for writing.
///
/// # Safety
///
/// `skb` is a valid packet the caller owns, for `'a`.
#[cfg(knet_divert)]
pub(crate) unsafe fn headers_mut<'a>(
    skb: *mut bindings::sk_buff,
) -> &'a mut bindings::sk_buff__bindgen_ty_4__bindgen_ty_1 {
    // SAFETY: per the function's contract (the caller owns `skb` for `'a`, so nothing else
    // accesses it); the anonymous struct is the union member the fields are declared in.
    unsafe { (*skb).__bindgen_anon_4.__bindgen_anon_1.as_mut() }
}

/// The list of packets an enqueue drops, freed by the core once the qdisc lock is released.
///
/// # Invariants
///
/// `list` is the `to_free` list and `sch` the qdisc of the enqueue in progress, which outlasts
/// this value (made by `Adapter::enqueue_cb` for the call).
#[cfg(knet_qdisc)]
pub(crate) struct ToFree<'a> {
    list: *mut *mut bindings::sk_buff,
    sch: *mut sys::Qdisc,
    _p: core::marker::PhantomData<&'a mut ()>,
}

#[cfg(knet_qdisc)]
impl ToFree<'_> {
    /// # Safety
    ///
    /// `list` is the `to_free` argument of the enqueue of `sch` in progress.
    pub(super) unsafe fn new(list: *mut *mut bindings::sk_buff, sch: *mut sys::Qdisc) -> Self {
        // INVARIANT: the caller passes the `to_free` list and qdisc of the enqueue in progress.
        ToFree {
            list,
            sch,
            _p: core::marker::PhantomData,
        }
    }

    /// Drops `skb`, counting it in the qdisc's drops.
    pub(crate) fn drop_counted(&mut self, skb: Skb) -> Xmit {
        // SAFETY: by the type invariant `list` and `sch` belong to the enqueue in progress; the
        // skb's reference (`Skb` invariant) is handed over.
        unsafe { sys::knet_skb_drop(skb.into_raw(), self.sch, self.list) };
        Xmit::DROP
    }

    /// Frees `skb` without counting a drop (a filter action took or dropped it), returning
    /// `ret` for the caller to pass on.
    pub(crate) fn discard(&mut self, skb: Skb, ret: Xmit) -> Xmit {
        // SAFETY: by the type invariant `list` is the `to_free` list of the enqueue in progress;
        // the skb's reference (`Skb` invariant) is handed over to it.
        unsafe { sys::knet_skb_discard(skb.into_raw(), self.list) };
        ret
    }

    pub(super) fn as_raw(&mut self) -> *mut *mut bindings::sk_buff {
        self.list
    }
}

/// The result of an enqueue (`NET_XMIT_*`, possibly with `__NET_XMIT_STOLEN/BYPASS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg(knet_qdisc)]
pub(crate) struct Xmit(pub(super) i32);

#[cfg(knet_qdisc)]
impl Xmit {
    /// Queued.
    pub(crate) const SUCCESS: Xmit = Xmit(sys::KNET_NET_XMIT_SUCCESS as i32);
    /// Dropped.
    pub(crate) const DROP: Xmit = Xmit(sys::KNET_NET_XMIT_DROP as i32);
    /// Consumed by a classifier action (stolen, queued elsewhere): not a drop of ours.
    pub(crate) const STOLEN: Xmit =
        Xmit((sys::KNET_NET_XMIT_SUCCESS | sys::KNET_NET_XMIT_STOLEN) as i32);
    /// Dropped by a classifier action (`TC_ACT_SHOT`).
    pub(crate) const BYPASS: Xmit =
        Xmit((sys::KNET_NET_XMIT_SUCCESS | sys::KNET_NET_XMIT_BYPASS) as i32);

    /// The packet was queued.
    pub(crate) fn is_success(self) -> bool {
        self.0 == Self::SUCCESS.0
    }

    /// The packet was lost and the caller should count a drop (`net_xmit_drop_count`).
    pub(crate) fn counts_as_drop(self) -> bool {
        // SAFETY: a pure function of its argument.
        unsafe { sys::knet_net_xmit_drop_count(self.0) }
    }
}
