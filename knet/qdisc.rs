// SPDX-License-Identifier: GPL-2.0

//! Qdisc kinds in Rust: a `#[vtable]` trait, `Adapter<T>` trampolines, a `Registration` that
//! unregisters in `Drop`.
//!
//! The ops tables (`Qdisc_ops`, `Qdisc_class_ops`) are built here and registered with
//! `register_qdisc`; every qdisc of the kind keeps its watchdog, a work item and the pointer to its
//! Rust state in its private area ([`Priv`]). C (`knet/qdisc.c`) is left for the scheduler's static
//! inlines and the offsets of the fields the packet path reads. Each callback gets the qdisc's
//! state (`&T::Data`) and a context token saying which lock is held: [`Locked`] (the root qdisc
//! lock: enqueue, dequeue, reset, qlen_notify) or [`Control`] (RTNL: configuration and dumps).
//! State the packet path mutates sits in a [`QdiscCell`], borrowed with proof of the root lock;
//! control code gets that proof from [`Control::tree_lock`]. The cell's borrow flag turns the
//! scheduler's re-entrant callbacks (a child's dequeue reporting an empty queue through
//! `qlen_notify` into the parent) into a visible `None` instead of two mutable references.
//!
//! Classes are identified to the core by a cookie: the address of the module's pinned class
//! object ([`ClassPtr`]), handed back to the class callbacks as `&T::Class`.

use super::{netlink::*, qdisc_parts::*, skb::*, sys};
use core::{
    cell::{Cell, UnsafeCell},
    marker::PhantomData,
    mem::size_of,
    ops::{Deref, DerefMut},
    pin::Pin,
    ptr::NonNull,
    sync::atomic::{AtomicBool, AtomicU32, Ordering},
};
use kernel::{
    bindings,
    error::to_result as to_c_result,
    ffi::{c_int, c_ulong, c_void},
    prelude::*,
    str::CStrExt,
    types::Opaque,
};

/// `TC_H_MAJ`: the major (qdisc) part of a handle.
pub(crate) fn tc_h_maj(h: u32) -> u32 {
    h & bindings::TC_H_MAJ_MASK
}

/// `TC_H_MIN`: the minor (class) part of a handle.
pub(crate) fn tc_h_min(h: u32) -> u32 {
    h & bindings::TC_H_MIN_MASK
}

/// `TC_H_ROOT`: the parent id of a class attached to the qdisc itself.
pub(crate) const TC_H_ROOT: u32 = bindings::TC_H_ROOT;

/// `TCA_OPTIONS`: a qdisc's or class's own attributes in a dump.
pub(crate) const TCA_OPTIONS: u16 = sys::KNET_TCA_OPTIONS as u16;

/// The qdisc a callback runs for, while its root lock is held (packet path, or a tree lock).
///
/// # Invariants
///
/// `sch` is a live qdisc of a knet kind whose `init_cb` has run, and its root lock is held on
/// this CPU for `'a`.
pub(crate) struct Locked<'a> {
    sch: *mut sys::Qdisc,
    _p: PhantomData<&'a ()>,
}

/// The qdisc a configuration or dump callback runs for: RTNL is held, the root lock is not.
///
/// # Invariants
///
/// `sch` is a live qdisc of a knet kind, attached to a device queue, whose `init_cb` has set up
/// its private area; RTNL is held for `'a`, and the root lock only through a [`TreeLock`] made
/// from this value.
pub(crate) struct Control<'a> {
    sch: *mut sys::Qdisc,
    _p: PhantomData<&'a ()>,
}

/// The qdisc a class lookup (`find`) runs for. The core calls it under RTNL for
/// configuration and also from `qdisc_tree_reduce_backlog` on the packet path, with the root
/// lock held and possibly in softirq: all that is known is that one of the two is held. So this
/// token reads a [`SharedCell`] and nothing more; it cannot take the tree lock (a self-deadlock
/// from the packet path) or stand in for [`Control`] where a callback may sleep.
///
/// # Invariants
///
/// RTNL, or the root lock of the qdisc being looked up, is held for `'a`.
pub(crate) struct Lookup<'a> {
    // Not Send or Sync, like the other tokens: it stands for a lock held on this CPU.
    _p: PhantomData<&'a *mut ()>,
}

/// Proof that the root lock of the qdisc is held.
pub(crate) trait RootLock: private::Sealed {
    /// The qdisc.
    fn qdisc(&self) -> *mut sys::Qdisc;
}

mod private {
    pub(crate) trait Sealed {}
}

impl private::Sealed for Locked<'_> {}
impl RootLock for Locked<'_> {
    fn qdisc(&self) -> *mut sys::Qdisc {
        self.sch
    }
}

/// The root lock, taken by control code ([`Control::tree_lock`]); released on drop.
///
/// # Invariants
///
/// `sch` is a live qdisc whose root lock this value holds (taken by `sch_tree_lock`, under
/// RTNL, which stays held for `'a`), until drop.
pub(crate) struct TreeLock<'a> {
    sch: *mut sys::Qdisc,
    _p: PhantomData<&'a ()>,
}

impl private::Sealed for TreeLock<'_> {}
impl RootLock for TreeLock<'_> {
    fn qdisc(&self) -> *mut sys::Qdisc {
        self.sch
    }
}

impl Drop for TreeLock<'_> {
    fn drop(&mut self) {
        // SAFETY: by the type invariant we hold the root lock of `sch`, taken by
        // `sch_tree_lock`; it is released once, here.
        unsafe { sys::knet_qdisc_tree_unlock(self.sch) };
    }
}

impl Locked<'_> {
    /// Counts a packet queued in this qdisc (queue length and backlog).
    pub(crate) fn count_enqueue(&self, len: u32) {
        // SAFETY: by the type invariant `sch` is live and its root lock, which guards the
        // counters, is held.
        unsafe { sys::knet_qdisc_count_enqueue(self.sch, len) };
    }

    /// Counts a packet leaving this qdisc (bytes/packets sent, queue length, backlog).
    pub(crate) fn count_dequeue(&self, skb: &Skb) {
        // SAFETY: by the type invariant `sch` is live and its root lock, which guards the
        // counters, is held; `skb` is live (`Skb` invariant).
        unsafe { sys::knet_qdisc_count_dequeue(self.sch, skb.as_ptr()) };
    }

    /// Counts a packet of `len` bytes (`qdisc_pkt_len`) and `segs` packets (GSO segments) that
    /// a child gave as leaving this qdisc: what [`Self::count_dequeue`] counts, without a call
    /// into C on the packet path.
    #[inline]
    pub(crate) fn count_dequeued(&self, len: u32, segs: u32) {
        let s = self.sch;
        // SAFETY: by the type invariant `sch` is live and its root lock is held: this is the
        // counters' only writer. Places, not references: readers may load them meanwhile.
        unsafe {
            add_u64_stats(&raw mut (*s).bstats.bytes, u64::from(len));
            add_u64_stats(&raw mut (*s).bstats.packets, u64::from(segs));
            let backlog = &raw mut (*s).qstats.backlog;
            backlog.write(backlog.read().wrapping_sub(len));
            let qlen = &raw mut (*s).q.qlen;
            qlen.write(qlen.read().wrapping_sub(1));
        }
    }

    /// Counts a drop in this qdisc's statistics.
    pub(crate) fn count_drop(&self) {
        // SAFETY: by the type invariant `sch` is live and its root lock, which guards the
        // statistics, is held.
        unsafe { sys::knet_qdisc_count_drop(self.sch) };
    }

    /// Counts `n` overlimits (classes throttled) in this qdisc's statistics.
    pub(crate) fn count_overlimits(&self, n: u32) {
        if n != 0 {
            // SAFETY: by the type invariant `sch` is live and its root lock, which guards the
            // statistics, is held.
            unsafe { sys::knet_qdisc_count_overlimits(self.sch, n) };
        }
    }

    /// Packets in this qdisc.
    pub(crate) fn qlen(&self) -> u32 {
        // SAFETY: by the type invariant `sch` is live and its root lock, which guards `q.qlen`,
        // is held.
        unsafe { (&raw const (*self.sch).q.qlen).read() }
    }

    /// Runs the qdisc again at `at_ns` (monotonic ns): the hrtimer watchdog.
    pub(crate) fn schedule_at(&self, at_ns: u64) {
        // SAFETY: by the type invariant `init_cb` has run for the live `sch`, so the watchdog is
        // set up (`Priv` invariant), and the root lock is held, as
        // `qdisc_watchdog_schedule_ns` requires.
        unsafe {
            let p = priv_of(self.sch);
            sys::qdisc_watchdog_schedule_range_ns((*p).watchdog.get(), at_ns, 0)
        };
    }

    /// Runs the qdisc again as soon as possible, from process context: for work that is due
    /// already (sch_htb's `schedule_work`), where a watchdog armed for now would fire at once
    /// from interrupt context and, if the qdisc still found nothing to send, again and again.
    pub(crate) fn schedule_soon(&self) {
        // SAFETY: by the type invariant `init_cb` has run for the live `sch`, so the work item
        // is set up, and `destroy_cb` cancels it before the qdisc goes (`Priv` invariant).
        unsafe { sys::knet_schedule_work((*priv_of(self.sch)).work.get()) };
    }
}

impl<'a> Control<'a> {
    /// Takes the root lock (`sch_tree_lock`), shutting out the packet path until dropped.
    pub(crate) fn tree_lock(&self) -> TreeLock<'_> {
        // SAFETY: by the type invariant `sch` is live and RTNL is held, as `sch_tree_lock`
        // requires.
        unsafe { sys::knet_qdisc_tree_lock(self.sch) };
        // INVARIANT: the root lock was just taken; the `TreeLock` borrows `self`, so RTNL stays
        // held while it lives.
        TreeLock {
            sch: self.sch,
            _p: PhantomData,
        }
    }

    /// The device's `txqueuelen` (HTB's default for the direct queue).
    pub(crate) fn tx_queue_len(&self) -> u32 {
        // SAFETY: by the type invariant `sch` is live and attached to a device queue (for its
        // whole life); RTNL is held.
        unsafe { sys::knet_qdisc_tx_queue_len(self.sch) }
    }

    pub(super) fn raw(&self) -> *mut sys::Qdisc {
        self.sch
    }
}

/// Calls that work in either context.
pub(crate) trait QdiscInfo {
    /// The qdisc's handle (`major:0`).
    fn handle(&self) -> u32;
}

impl QdiscInfo for Locked<'_> {
    fn handle(&self) -> u32 {
        // SAFETY: by the type invariant `sch` is live; the handle is set before init and never
        // changes.
        unsafe { (&raw const (*self.sch).handle).read() }
    }
}

impl QdiscInfo for Control<'_> {
    fn handle(&self) -> u32 {
        // SAFETY: by the type invariant `sch` is live for the token's lifetime; its handle is
        // set at creation and never changes.
        unsafe { (&raw const (*self.sch).handle).read() }
    }
}

/// Monotonic time in nanoseconds (`ktime_get_ns`), the scheduler's clock.
///
/// Calls the exported `ktime_get` directly: `ktime_get_ns` is an inline wrapper of it, and a
/// shim would add a call per dequeue.
pub(crate) fn now_ns() -> u64 {
    // SAFETY: `ktime_get` has no preconditions; it may be called in any context.
    let ns = unsafe { bindings::ktime_get() };
    // The monotonic clock starts at boot: never negative.
    ns as u64
}

/// State of one qdisc that the packet path mutates: borrowed only under the root lock.
///
/// # Invariants
///
/// `data` is accessed only through a [`CellGuard`], and `busy` is true while one exists. Each
/// guard is made with a root lock held, assumed to be that of the qdisc whose state holds the
/// cell: `borrow` cannot check it, so a cell reachable from two qdiscs (a static, an `Arc`
/// shared between their states) could be borrowed on two CPUs at once.
pub(crate) struct QdiscCell<S> {
    busy: Cell<bool>,
    data: UnsafeCell<S>,
}

// SAFETY: every access to `data` needs a `RootLock` proof, i.e. the qdisc's root lock, held by
// one CPU at a time; `busy` catches a re-entrant borrow on that CPU. The cell belongs to one
// qdisc's state, so the lock proven is the one guarding it.
unsafe impl<S: Send> Sync for QdiscCell<S> {}
// SAFETY: moving the cell moves `S`.
unsafe impl<S: Send> Send for QdiscCell<S> {}

impl<S> QdiscCell<S> {
    /// A cell around `s`.
    pub(crate) const fn new(s: S) -> Self {
        QdiscCell {
            busy: Cell::new(false),
            data: UnsafeCell::new(s),
        }
    }

    /// Mutable access while the root lock is held; `None` if this CPU is already inside a
    /// borrow (a callback re-entered from a call the borrower made).
    pub(crate) fn borrow<'a>(&'a self, _lock: &'a impl RootLock) -> Option<CellGuard<'a, S>> {
        if self.busy.replace(true) {
            return None;
        }
        // INVARIANT: `busy` was false, so no other guard exists (other CPUs are shut out by the
        // root lock); now set, it turns away any other borrow until the guard drops.
        Some(CellGuard { cell: self })
    }
}

/// A borrow of a [`QdiscCell`].
///
/// # Invariants
///
/// This is the only guard of `cell`: it set `busy`, which it clears on drop, with the root lock
/// held for `'a`.
pub(crate) struct CellGuard<'a, S> {
    cell: &'a QdiscCell<S>,
}

impl<S> Deref for CellGuard<'_, S> {
    type Target = S;
    fn deref(&self) -> &S {
        // SAFETY: by the type invariant this guard is the cell's only borrow, made with the root
        // lock held, and `&self` borrows the guard.
        unsafe { &*self.cell.data.get() }
    }
}

impl<S> DerefMut for CellGuard<'_, S> {
    fn deref_mut(&mut self) -> &mut S {
        // SAFETY: by the type invariant this guard is the cell's only borrow, made with the root
        // lock held, and `&mut self` borrows the guard exclusively.
        unsafe { &mut *self.cell.data.get() }
    }
}

impl<S> Drop for CellGuard<'_, S> {
    fn drop(&mut self) {
        // INVARIANT: this guard is going: a new one may be made.
        self.cell.busy.set(false);
    }
}

/// Proof of either lock that guards a [`SharedCell`] for reading: RTNL ([`Control`]) or the
/// root lock ([`Locked`], [`TreeLock`]).
pub(crate) trait EitherLock: private::Sealed {
    /// Whether the holder also holds RTNL, and so may take a write borrow while reading: such
    /// reads are counted, and a write waits for none of them to be outstanding.
    const RTNL: bool;
}
impl EitherLock for Locked<'_> {
    const RTNL: bool = false;
}
impl EitherLock for TreeLock<'_> {
    const RTNL: bool = true;
}
impl private::Sealed for Control<'_> {}
impl EitherLock for Control<'_> {
    const RTNL: bool = true;
}
impl private::Sealed for Lookup<'_> {}
impl EitherLock for Lookup<'_> {
    const RTNL: bool = false;
}

/// State read in any context (a class index the core's `find` consults from inside
/// `qdisc_tree_reduce_backlog`, under the root lock, as well as under RTNL), written only
/// with both RTNL and the root lock held, so a writer excludes every reader on other CPUs.
///
/// # Invariants
///
/// `data` is written only through a [`SharedCellGuard`], made with RTNL and a root lock held,
/// and `writing` is true while one exists. Readers hold RTNL or a root lock; as with
/// [`QdiscCell`], the root lock is assumed (not checked) to be that of the qdisc whose state
/// holds the cell. `rtnl_readers` counts the outstanding [`SharedRef`]s made with a token that
/// implies RTNL (only the RTNL holder changes it); a write guard is made only when it is 0, so
/// a read borrow of the same callback never overlaps a write borrow.
pub(crate) struct SharedCell<S> {
    writing: AtomicBool,
    rtnl_readers: AtomicU32,
    data: UnsafeCell<S>,
}

// SAFETY: readers on several CPUs only share `&S` (hence `S: Sync`); a writer holds RTNL and
// the root lock, which shut out readers on other CPUs, `writing` turns away a reader that
// re-enters on the writer's own CPU, and `rtnl_readers` a writer while its own callback still
// holds a read borrow.
unsafe impl<S: Send + Sync> Sync for SharedCell<S> {}
// SAFETY: moving the cell moves `S`.
unsafe impl<S: Send> Send for SharedCell<S> {}

impl<S> SharedCell<S> {
    /// A cell around `s`.
    pub(crate) const fn new(s: S) -> Self {
        SharedCell {
            writing: AtomicBool::new(false),
            rtnl_readers: AtomicU32::new(0),
            data: UnsafeCell::new(s),
        }
    }

    /// Shared access under either lock; `None` while this CPU is writing.
    pub(crate) fn read<'a, L: EitherLock>(&'a self, _lock: &'a L) -> Option<SharedRef<'a, S>> {
        if self.writing.load(Ordering::Acquire) {
            return None;
        }
        if L::RTNL {
            self.rtnl_readers.fetch_add(1, Ordering::Relaxed);
        }
        // INVARIANT: counted if made under RTNL; no writer runs (see the `Sync` impl).
        Some(SharedRef {
            cell: self,
            counted: L::RTNL,
        })
    }

    /// Exclusive access, with RTNL and the root lock held; `None` if already writing.
    pub(crate) fn write<'a>(
        &'a self,
        _rtnl: &'a Control<'_>,
        _lock: &'a TreeLock<'_>,
    ) -> Option<SharedCellGuard<'a, S>> {
        if self.writing.swap(true, Ordering::Acquire) {
            return None;
        }
        if self.rtnl_readers.load(Ordering::Relaxed) != 0 {
            // A read borrow of this callback is still out.
            self.writing.store(false, Ordering::Release);
            return None;
        }
        // INVARIANT: `writing` was false, so no other write guard exists (RTNL also excludes
        // one), and no read borrow made under RTNL is out (readers under the root lock alone
        // run on other CPUs, shut out by the root lock we hold); now set, `writing` turns away
        // readers on this CPU until the guard drops.
        Some(SharedCellGuard { cell: self })
    }
}

/// A read borrow of a [`SharedCell`].
///
/// # Invariants
///
/// No write borrow of `cell` exists while this one does: it was made while `writing` was
/// false, and if `counted` it is counted in `rtnl_readers`, which keeps a write borrow from
/// being made until it drops; if not counted, its holder holds no RTNL and cannot make one.
pub(crate) struct SharedRef<'a, S> {
    cell: &'a SharedCell<S>,
    counted: bool,
}

impl<S> Deref for SharedRef<'_, S> {
    type Target = S;
    fn deref(&self) -> &S {
        // SAFETY: by the type invariant no write borrow exists while `self` does.
        unsafe { &*self.cell.data.get() }
    }
}

impl<S> Drop for SharedRef<'_, S> {
    fn drop(&mut self) {
        if self.counted {
            self.cell.rtnl_readers.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// A write borrow of a [`SharedCell`].
///
/// # Invariants
///
/// This is the only write borrow of `cell`: it set `writing`, which it clears on drop, with RTNL
/// and the root lock held for `'a`.
pub(crate) struct SharedCellGuard<'a, S> {
    cell: &'a SharedCell<S>,
}

impl<S> Deref for SharedCellGuard<'_, S> {
    type Target = S;
    fn deref(&self) -> &S {
        // SAFETY: by the type invariant this is the cell's only write borrow; its locks shut out
        // readers on other CPUs and `writing` turns away new ones on this CPU.
        unsafe { &*self.cell.data.get() }
    }
}

impl<S> DerefMut for SharedCellGuard<'_, S> {
    fn deref_mut(&mut self) -> &mut S {
        // SAFETY: by the type invariant this is the cell's only write borrow; its locks shut out
        // readers on other CPUs, `writing` turns away new ones on this CPU, and `&mut self`
        // borrows the guard exclusively.
        unsafe { &mut *self.cell.data.get() }
    }
}

impl<S> Drop for SharedCellGuard<'_, S> {
    fn drop(&mut self) {
        // INVARIANT: this guard is going: readers and a new writer may come.
        self.cell.writing.store(false, Ordering::Release);
    }
}

/// The cookie by which the core names a class: the address of the module's pinned class.
///
/// # Invariants
///
/// `self.0` is the address of a pinned `C` (made by [`ClassPtr::of`]), which stays there until
/// dropped. A `ClassPtr` does not keep the class alive: the module must keep it while the core
/// may use the cookie.
pub(crate) struct ClassPtr<C>(NonNull<C>);

impl<C> Clone for ClassPtr<C> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<C> Copy for ClassPtr<C> {}

// SAFETY: a cookie is only an address handed to the core; the class it names is `Sync`.
unsafe impl<C: Sync> Send for ClassPtr<C> {}
// SAFETY: sharing a cookie shares only an address; the class it names is `Sync`.
unsafe impl<C: Sync> Sync for ClassPtr<C> {}

impl<C> ClassPtr<C> {
    /// The cookie of `class`, which stays where it is until dropped (pinned).
    pub(crate) fn of(class: Pin<&C>) -> Self {
        // INVARIANT: `class` is pinned: it does not move until dropped.
        ClassPtr(NonNull::from(class.get_ref()))
    }

    pub(super) fn cookie(self) -> c_ulong {
        self.0.as_ptr() as c_ulong
    }
}

/// The optional attributes of a class change (`TCA_RATE`: the rate estimator's settings).
///
/// # Invariants
///
/// `self.0` is the (non-null) `TCA_RATE` attribute of the netlink request being handled, valid
/// while its callback runs.
pub(crate) struct RateAttr(pub(super) *mut bindings::nlattr);

/// A qdisc kind.
#[vtable]
pub(crate) trait QdiscOps: Sized + 'static {
    /// State of one qdisc.
    type Data: Send + Sync;
    /// A class (classful kinds); the core refers to it by [`ClassPtr`].
    type Class: Send + Sync;
    /// The kind's name (`tc qdisc add ... <ID>`), at most 15 bytes.
    const ID: &'static CStr;

    /// A new qdisc with options `opt` (the payload of `TCA_OPTIONS`, if given).
    fn init(
        sch: &Control<'_>,
        opt: Option<&[u8]>,
        extack: &mut ExtAck<'_>,
    ) -> Result<Pin<KBox<Self::Data>>>;
    /// A packet for the qdisc.
    fn enqueue(data: &Self::Data, sch: &Locked<'_>, skb: Skb, to_free: &mut ToFree<'_>) -> Xmit;
    /// The next packet to send, if one may go now.
    fn dequeue(data: &Self::Data, sch: &Locked<'_>) -> Option<Skb>;
    /// Drop all packets and activity (the device went down, or the qdisc is replaced).
    fn reset(data: &Self::Data, sch: &Locked<'_>);
    /// Tear down before the state is dropped: callbacks may still come (filters unbinding).
    fn destroy(data: &Self::Data, sch: &Control<'_>);
    /// `tc qdisc change`.
    fn change(
        _data: &Self::Data,
        _sch: &Control<'_>,
        _opt: Option<&[u8]>,
        _extack: &mut ExtAck<'_>,
    ) -> Result {
        build_error!(kernel::error::VTABLE_DEFAULT_ERROR)
    }
    /// The qdisc's options, for `tc qdisc show`.
    fn dump(data: &Self::Data, sch: &Control<'_>, msg: &mut NlMsg<'_>) -> Result;

    /// Replaces the leaf qdisc of `cl` with `new` (a default one if `None`); returns the old.
    /// `new` is a reference of the module's own: on a refusal it is simply dropped (the core
    /// keeps and puts its own).
    fn graft(
        _data: &Self::Data,
        _sch: &Control<'_>,
        _cl: &Self::Class,
        _new: Option<Child>,
        _extack: &mut ExtAck<'_>,
    ) -> Result<Option<Child>> {
        build_error!(kernel::error::VTABLE_DEFAULT_ERROR)
    }
    /// The leaf qdisc of `cl`.
    fn leaf(_data: &Self::Data, _sch: &Control<'_>, _cl: &Self::Class) -> Option<QdiscId> {
        build_error!(kernel::error::VTABLE_DEFAULT_ERROR)
    }
    /// The leaf qdisc of `cl` became empty (also re-entrantly, from inside our own calls).
    fn qlen_notify(_data: &Self::Data, _sch: &Locked<'_>, _cl: &Self::Class) {
        build_error!(kernel::error::VTABLE_DEFAULT_ERROR)
    }
    /// The class with id `classid`; called under RTNL or, from the packet path, under the
    /// root lock only (see [`Lookup`]).
    fn find(_data: &Self::Data, _sch: &Lookup<'_>, _classid: u32) -> Option<ClassPtr<Self::Class>> {
        build_error!(kernel::error::VTABLE_DEFAULT_ERROR)
    }
    /// `tc class add/change`: `cl` is the class to change, or `None` to create `classid`
    /// under `parentid`; returns the class.
    #[allow(clippy::too_many_arguments)]
    fn change_class(
        _data: &Self::Data,
        _sch: &Control<'_>,
        _classid: u32,
        _parentid: u32,
        _cl: Option<&Self::Class>,
        _opt: Option<&[u8]>,
        _rate: Option<RateAttr>,
        _extack: &mut ExtAck<'_>,
    ) -> Result<ClassPtr<Self::Class>> {
        build_error!(kernel::error::VTABLE_DEFAULT_ERROR)
    }
    /// `tc class del`: returns the class, freed by the caller once `cl` is out of use.
    fn delete_class(
        _data: &Self::Data,
        _sch: &Control<'_>,
        _cl: &Self::Class,
        _extack: &mut ExtAck<'_>,
    ) -> Result<Option<Pin<KBox<Self::Class>>>> {
        build_error!(kernel::error::VTABLE_DEFAULT_ERROR)
    }
    /// Reports every class to `walker`.
    fn walk(_data: &Self::Data, _sch: &Control<'_>, _walker: &mut Walker<'_, Self::Class>) {
        build_error!(kernel::error::VTABLE_DEFAULT_ERROR)
    }
    /// The filter block of `cl`, or of the qdisc if `None`.
    fn tcf_block(
        _data: &Self::Data,
        _sch: &Control<'_>,
        _cl: Option<&Self::Class>,
        _extack: &mut ExtAck<'_>,
    ) -> Option<BlockId> {
        build_error!(kernel::error::VTABLE_DEFAULT_ERROR)
    }
    /// A filter under `parent` (None: the qdisc) now points at `classid`: returns that class
    /// and holds it (it cannot be deleted until `unbind_tcf`). The core holds the tree lock.
    fn bind_tcf(
        _data: &Self::Data,
        _sch: &Locked<'_>,
        _parent: Option<&Self::Class>,
        _classid: u32,
    ) -> Option<ClassPtr<Self::Class>> {
        build_error!(kernel::error::VTABLE_DEFAULT_ERROR)
    }
    /// Releases what `bind_tcf` held.
    fn unbind_tcf(_data: &Self::Data, _cl: &Self::Class) {
        build_error!(kernel::error::VTABLE_DEFAULT_ERROR)
    }
    /// The class's options, for `tc class show`.
    fn dump_class(
        _data: &Self::Data,
        _sch: &Control<'_>,
        _cl: &Self::Class,
        _msg: &mut NlMsg<'_>,
        _hdr: &mut ClassHeader<'_>,
    ) -> Result {
        build_error!(kernel::error::VTABLE_DEFAULT_ERROR)
    }
    /// The class's statistics, for `tc -s class show`.
    fn dump_class_stats(
        _data: &Self::Data,
        _sch: &Control<'_>,
        _cl: &Self::Class,
        _d: &mut StatsDump<'_>,
    ) -> Result {
        build_error!(kernel::error::VTABLE_DEFAULT_ERROR)
    }
}

/// Adds `v` to the 64-bit counter `p`, as `u64_stats_add` does on 64-bit: one writer; readers
/// (dumps, rate estimators) load it whole without the writer's lock, so the store is a single
/// aligned 64-bit one.
///
/// # Safety
///
/// `p` is a live counter, and the caller holds the lock that makes it the only writer.
pub(super) unsafe fn add_u64_stats(p: *mut bindings::u64_stats_t, v: u64) {
    // SAFETY: the caller's guarantees; the counter is a plain u64 on 64-bit (checked below).
    unsafe {
        let p = p.cast::<u64>();
        p.write_volatile(p.read_volatile().wrapping_add(v));
    }
}
const _: () = assert!(size_of::<bindings::u64_stats_t>() == size_of::<u64>());

/// What every qdisc of a knet kind keeps in its private area (`qdisc_priv`).
///
/// # Invariants
///
/// Set up by `init_cb` before anything else can use it (the core zeroes the area before):
/// `watchdog` and `work` are initialised and `sch` is the qdisc whose private area this is,
/// whether or not init succeeds; `destroy_cb` cancels both before the qdisc goes. `state` is
/// null or the leaked `Pin<KBox<T::Data>>` of a successful init (`T` the kind whose ops run
/// this qdisc), until `destroy_cb` drops it and sets it back to null.
#[repr(C)]
struct Priv {
    watchdog: Opaque<sys::qdisc_watchdog>,
    /// Runs the qdisc again soon from process context (sch_htb's `work`).
    work: Opaque<bindings::work_struct>,
    /// The qdisc, for the work item.
    sch: *mut sys::Qdisc,
    state: *mut c_void,
}

/// The private area of `sch`.
///
/// # Safety
///
/// `sch` is a live qdisc of a knet kind.
unsafe fn priv_of(sch: *mut sys::Qdisc) -> *mut Priv {
    // SAFETY: `privdata` is the qdisc's private area of `priv_size` (`size_of::<Priv>()`)
    // bytes, cache-line aligned; `sch` is live (the caller's).
    unsafe { (&raw mut (*sch).privdata).cast::<Priv>() }
}

/// The Rust state pointer a qdisc of a knet kind keeps in its private area.
///
/// # Safety
///
/// `sch` is a live qdisc of a knet kind.
unsafe fn state_ptr(sch: *mut sys::Qdisc) -> *mut c_void {
    // SAFETY: `sch` is live (the caller's guarantee), so its private area is a `Priv`; `state`
    // is written only by `init_cb` and `destroy_cb` (under RTNL, before and after any packet
    // path call, `Priv` invariant).
    unsafe { (*priv_of(sch)).state }
}

/// The C-callable trampolines of a [`QdiscOps`] kind.
struct Adapter<T: QdiscOps>(PhantomData<T>);

impl<T: QdiscOps> Adapter<T> {
    /// # Safety
    ///
    /// `sch` is a qdisc of this kind whose init succeeded and whose destroy has not finished.
    unsafe fn data<'a>(sch: *mut sys::Qdisc) -> &'a T::Data {
        // SAFETY: by the `Priv` invariant `state` is the leaked `Pin<KBox<T::Data>>` stored by
        // `init_cb` until `destroy_cb` drops it; the caller guarantees that window.
        unsafe { &*state_ptr(sch).cast::<T::Data>() }
    }

    /// # Safety
    ///
    /// `cl` is 0 or a cookie this kind returned for a class that still exists.
    unsafe fn class<'a>(cl: c_ulong) -> Option<&'a T::Class> {
        // SAFETY: cookies are addresses of pinned `T::Class` objects (`ClassPtr` invariant);
        // the core only passes back cookies it got from this kind (find, change_class,
        // bind_tcf). That the class is still alive rests on the `QdiscOps` implementation
        // (deletion refused while filters hold a class): not enforced by the types.
        unsafe { (cl as *const T::Class).as_ref() }
    }

    fn locked<'a>(sch: *mut sys::Qdisc) -> Locked<'a> {
        // INVARIANT: called only by the trampolines below that the core calls with the root
        // lock held on a qdisc of this kind whose `init_cb` ran (see their SAFETY comments).
        Locked {
            sch,
            _p: PhantomData,
        }
    }

    fn control<'a>(sch: *mut sys::Qdisc) -> Control<'a> {
        // INVARIANT: called only by the trampolines below that the core calls under RTNL,
        // without the root lock, on a qdisc of this kind (in `init_cb`, once its private area
        // is set up).
        Control {
            sch,
            _p: PhantomData,
        }
    }

    fn payload<'a>(nla: *mut bindings::nlattr) -> Option<&'a [u8]> {
        if nla.is_null() {
            return None;
        }
        // SAFETY: `nla` is an attribute of the netlink request being handled, validated by the
        // core as lying within the message; its payload stays valid for the callback.
        unsafe {
            let len = usize::try_from(sys::knet_nla_len(nla)).unwrap_or(0);
            let data = sys::knet_nla_data(nla).cast::<u8>();
            Some(core::slice::from_raw_parts(data, len))
        }
    }

    /// # Safety
    ///
    /// Called only by the packet scheduler core through the ops table, as its `enqueue`
    /// callback, with that callback's arguments and locking.
    unsafe extern "C" fn enqueue_cb(
        skb: *mut bindings::sk_buff,
        sch: *mut sys::Qdisc,
        to_free: *mut *mut bindings::sk_buff,
    ) -> c_int {
        // SAFETY: the core calls enqueue with the root lock held, a valid skb it hands over,
        // and its to_free list, on an initialised qdisc of this kind.
        unsafe {
            let Some(skb) = NonNull::new(skb) else {
                return Xmit::DROP.0;
            };
            let mut to_free = ToFree::new(to_free, sch);
            T::enqueue(
                Self::data(sch),
                &Self::locked(sch),
                Skb::from_raw(skb),
                &mut to_free,
            )
            .0
        }
    }

    /// # Safety
    ///
    /// Called only by the packet scheduler core through the ops table, as its `dequeue`
    /// callback, with that callback's arguments and locking.
    unsafe extern "C" fn dequeue_cb(sch: *mut sys::Qdisc) -> *mut bindings::sk_buff {
        // SAFETY: the core calls dequeue with the root lock held on an initialised qdisc.
        let skb = unsafe { T::dequeue(Self::data(sch), &Self::locked(sch)) };
        skb.map_or(core::ptr::null_mut(), Skb::into_raw)
    }

    /// # Safety
    ///
    /// Called only by the packet scheduler core through the ops table, as its `init`
    /// callback, with that callback's arguments and locking.
    unsafe extern "C" fn init_cb(
        sch: *mut sys::Qdisc,
        opt: *mut bindings::nlattr,
        extack: *mut bindings::netlink_ext_ack,
    ) -> c_int {
        // SAFETY: `sch` is being initialised, its private area zeroed. The core calls destroy
        // even when init fails, so what destroy tears down is set up first.
        let p = unsafe {
            let p = priv_of(sch);
            sys::qdisc_watchdog_init((*p).watchdog.get(), sch);
            bindings::init_work_with_key(
                (*p).work.get(),
                Some(work_cb),
                false,
                c"knet_qdisc_work".as_char_ptr(),
                kernel::static_lock_class!().as_ptr(),
            );
            // INVARIANT: watchdog, work item and `sch` set up, whatever init returns.
            (*p).sch = sch;
            p
        };
        // SAFETY: init runs under RTNL with the request's extack.
        let mut extack = unsafe { ExtAck::from_raw(extack) };
        match T::init(&Self::control(sch), Self::payload(opt), &mut extack) {
            Ok(b) => {
                // INVARIANT: `state` is the leaked state of this successful init.
                // SAFETY: the box is never moved: it is turned back into a `Pin<KBox>` and
                // dropped in place by `destroy_cb`.
                unsafe { (*p).state = KBox::into_raw(Pin::into_inner_unchecked(b)).cast() };
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called only by the packet scheduler core through the ops table, as its `reset`
    /// callback, with that callback's arguments and locking.
    unsafe extern "C" fn reset_cb(sch: *mut sys::Qdisc) {
        // SAFETY: reset runs with the root lock held; the state is used only if init succeeded;
        // the watchdog was set up by `init_cb`.
        unsafe {
            if !state_ptr(sch).is_null() {
                T::reset(Self::data(sch), &Self::locked(sch));
            }
            sys::qdisc_watchdog_cancel((*priv_of(sch)).watchdog.get());
        }
    }

    /// # Safety
    ///
    /// Called only by the packet scheduler core through the ops table, as its `destroy`
    /// callback, with that callback's arguments and locking.
    unsafe extern "C" fn destroy_cb(sch: *mut sys::Qdisc) {
        let ctl = Self::control(sch);
        // SAFETY: destroy runs under RTNL, once, after `init_cb` (which set up the watchdog and
        // the work item whatever it returned); nothing runs the qdisc any more.
        unsafe {
            let p = priv_of(sch);
            bindings::cancel_work_sync((*p).work.get());
            sys::qdisc_watchdog_cancel((*p).watchdog.get());
            if (*p).state.is_null() {
                return;
            }
            T::destroy(Self::data(sch), &ctl);
            // The pointer came from `KBox::into_raw` in `init_cb` (`Priv` invariant); it is
            // dropped once, here. INVARIANT: `state` is set back to null below.
            drop(Pin::new_unchecked(KBox::from_raw(
                (*p).state.cast::<T::Data>(),
            )));
            (*p).state = core::ptr::null_mut();
        }
    }

    /// # Safety
    ///
    /// Called only by the packet scheduler core through the ops table, as its `change`
    /// callback, with that callback's arguments and locking.
    unsafe extern "C" fn change_cb(
        sch: *mut sys::Qdisc,
        opt: *mut bindings::nlattr,
        extack: *mut bindings::netlink_ext_ack,
    ) -> c_int {
        // SAFETY: under RTNL, on an initialised qdisc, with the request's extack and options.
        let r = unsafe {
            let mut extack = ExtAck::from_raw(extack);
            T::change(
                Self::data(sch),
                &Self::control(sch),
                Self::payload(opt),
                &mut extack,
            )
        };
        to_c(r)
    }

    /// # Safety
    ///
    /// Called only by the packet scheduler core through the ops table, as its `dump`
    /// callback, with that callback's arguments and locking.
    unsafe extern "C" fn dump_cb(sch: *mut sys::Qdisc, skb: *mut bindings::sk_buff) -> c_int {
        // SAFETY: under RTNL, on an initialised qdisc, with the dump's message.
        let r = unsafe {
            let mut msg = NlMsg::from_raw(skb);
            T::dump(Self::data(sch), &Self::control(sch), &mut msg)
        };
        // The core expects the message length on success; it only tests for < 0.
        to_c(r)
    }

    /// # Safety
    ///
    /// Called only by the packet scheduler core through the ops table, as its `graft`
    /// callback, with that callback's arguments and locking.
    unsafe extern "C" fn graft_cb(
        sch: *mut sys::Qdisc,
        cl: c_ulong,
        new: *mut sys::Qdisc,
        old: *mut *mut sys::Qdisc,
        extack: *mut bindings::netlink_ext_ack,
    ) -> c_int {
        // SAFETY: under RTNL; `cl` is a live class cookie; `new` is NULL or a qdisc whose
        // reference the core hands over only if graft succeeds (on failure `qdisc_graft`'s
        // caller puts it itself); the old leaf's reference goes back through `old`.
        unsafe {
            let Some(class) = Self::class(cl) else {
                return EINVAL.to_errno();
            };
            let mut extack = ExtAck::from_raw(extack);
            let core_ref = NonNull::new(new);
            // The module gets a reference of its own, which it keeps on success and drops on
            // any refusal: an implementation cannot put the core's reference by returning an
            // error after dropping `new` (a refcount underflow, and a use after free).
            let new = core_ref.map(|q| {
                sys::knet_qdisc_child_get(q.as_ptr());
                Child::from_raw(q)
            });
            match T::graft(
                Self::data(sch),
                &Self::control(sch),
                class,
                new,
                &mut extack,
            ) {
                Ok(prev) => {
                    // Success hands the core's reference over: the module holds its own.
                    drop(core_ref.map(|q| Child::from_raw(q)));
                    *old = prev.map_or(core::ptr::null_mut(), Child::into_raw);
                    0
                }
                Err(e) => e.to_errno(),
            }
        }
    }

    /// # Safety
    ///
    /// Called only by the packet scheduler core through the ops table, as its `leaf`
    /// callback, with that callback's arguments and locking.
    unsafe extern "C" fn leaf_cb(sch: *mut sys::Qdisc, cl: c_ulong) -> *mut sys::Qdisc {
        // SAFETY: under RTNL, with a live class cookie.
        unsafe {
            match Self::class(cl) {
                Some(class) => T::leaf(Self::data(sch), &Self::control(sch), class)
                    .map_or(core::ptr::null_mut(), |q| q.0.as_ptr()),
                None => core::ptr::null_mut(),
            }
        }
    }

    /// # Safety
    ///
    /// Called only by the packet scheduler core through the ops table, as its `qlen_notify`
    /// callback, with that callback's arguments and locking.
    unsafe extern "C" fn qlen_notify_cb(sch: *mut sys::Qdisc, cl: c_ulong) {
        // SAFETY: `qdisc_tree_reduce_backlog` calls this with the root lock held, with a live
        // class cookie.
        unsafe {
            if let Some(class) = Self::class(cl) {
                T::qlen_notify(Self::data(sch), &Self::locked(sch), class);
            }
        }
    }

    /// # Safety
    ///
    /// Called only by the packet scheduler core through the ops table, as its `find`
    /// callback, with that callback's arguments and locking.
    unsafe extern "C" fn find_cb(sch: *mut sys::Qdisc, classid: u32) -> c_ulong {
        // INVARIANT: the core calls `find` under RTNL or (from `qdisc_tree_reduce_backlog`)
        // the root lock: what `Lookup` promises.
        let lookup = Lookup { _p: PhantomData };
        // SAFETY: called by the core on an initialised qdisc.
        let c = unsafe { T::find(Self::data(sch), &lookup, classid) };
        c.map_or(0, ClassPtr::cookie)
    }

    /// # Safety
    ///
    /// Called only by the packet scheduler core through the ops table, as its `cl_change`
    /// callback, with that callback's arguments and locking.
    unsafe extern "C" fn cl_change_cb(
        sch: *mut sys::Qdisc,
        classid: u32,
        parentid: u32,
        tca: *mut *mut bindings::nlattr,
        arg: *mut c_ulong,
        extack: *mut bindings::netlink_ext_ack,
    ) -> c_int {
        // SAFETY: under RTNL; `tca` is the request's attribute table (TCA_MAX + 1 entries),
        // `*arg` 0 or a live class cookie, written back with the class changed or made.
        unsafe {
            let mut extack = ExtAck::from_raw(extack);
            let opt = Self::payload(*tca.add(sys::KNET_TCA_OPTIONS as usize));
            let rate = *tca.add(sys::KNET_TCA_RATE as usize);
            let rate = if rate.is_null() {
                None
            } else {
                // INVARIANT: the request's non-null `TCA_RATE` attribute, valid for this call.
                Some(RateAttr(rate))
            };
            match T::change_class(
                Self::data(sch),
                &Self::control(sch),
                classid,
                parentid,
                Self::class(*arg),
                opt,
                rate,
                &mut extack,
            ) {
                Ok(c) => {
                    *arg = c.cookie();
                    0
                }
                Err(e) => e.to_errno(),
            }
        }
    }

    /// # Safety
    ///
    /// Called only by the packet scheduler core through the ops table, as its `cl_delete`
    /// callback, with that callback's arguments and locking.
    unsafe extern "C" fn cl_delete_cb(
        sch: *mut sys::Qdisc,
        cl: c_ulong,
        extack: *mut bindings::netlink_ext_ack,
    ) -> c_int {
        // SAFETY: under RTNL with a live class cookie and the request's extack.
        unsafe {
            let Some(class) = Self::class(cl) else {
                return EINVAL.to_errno();
            };
            let mut extack = ExtAck::from_raw(extack);
            let r = T::delete_class(Self::data(sch), &Self::control(sch), class, &mut extack);
            // `class` is not used past this point: the box may go.
            match r {
                Ok(removed) => {
                    drop(removed);
                    0
                }
                Err(e) => e.to_errno(),
            }
        }
    }

    /// # Safety
    ///
    /// Called only by the packet scheduler core through the ops table, as its `walk`
    /// callback, with that callback's arguments and locking.
    unsafe extern "C" fn walk_cb(sch: *mut sys::Qdisc, w: *mut sys::qdisc_walker) {
        // INVARIANT: the qdisc and walker of this `walk` call, which outlasts `walker`.
        let mut walker = Walker {
            sch,
            w,
            _p: PhantomData,
        };
        // SAFETY: under RTNL on an initialised qdisc, with the core's walker.
        unsafe { T::walk(Self::data(sch), &Self::control(sch), &mut walker) };
    }

    /// # Safety
    ///
    /// Called only by the packet scheduler core through the ops table, as its `tcf_block`
    /// callback, with that callback's arguments and locking.
    unsafe extern "C" fn tcf_block_cb(
        sch: *mut sys::Qdisc,
        cl: c_ulong,
        extack: *mut bindings::netlink_ext_ack,
    ) -> *mut sys::tcf_block {
        // SAFETY: under RTNL; `cl` is 0 (the qdisc) or a live class cookie.
        unsafe {
            let mut extack = ExtAck::from_raw(extack);
            T::tcf_block(
                Self::data(sch),
                &Self::control(sch),
                Self::class(cl),
                &mut extack,
            )
            .map_or(core::ptr::null_mut(), |b| b.0)
        }
    }

    /// # Safety
    ///
    /// Called only by the packet scheduler core through the ops table, as its `bind_tcf`
    /// callback, with that callback's arguments and locking.
    unsafe extern "C" fn bind_tcf_cb(
        sch: *mut sys::Qdisc,
        parent: c_ulong,
        classid: u32,
    ) -> c_ulong {
        // SAFETY: under RTNL and the tree lock (tcf_bind_filter); `parent` is 0 or a live
        // class cookie.
        let c = unsafe {
            T::bind_tcf(
                Self::data(sch),
                &Self::locked(sch),
                Self::class(parent),
                classid,
            )
        };
        c.map_or(0, ClassPtr::cookie)
    }

    /// # Safety
    ///
    /// Called only by the packet scheduler core through the ops table, as its `unbind_tcf`
    /// callback, with that callback's arguments and locking.
    unsafe extern "C" fn unbind_tcf_cb(sch: *mut sys::Qdisc, cl: c_ulong) {
        // SAFETY: `cl` was returned by `bind_tcf_cb` and is held, so the class is alive.
        unsafe {
            if let Some(class) = Self::class(cl) {
                T::unbind_tcf(Self::data(sch), class);
            }
        }
    }

    /// # Safety
    ///
    /// Called only by the packet scheduler core through the ops table, as its `cl_dump`
    /// callback, with that callback's arguments and locking.
    unsafe extern "C" fn cl_dump_cb(
        sch: *mut sys::Qdisc,
        cl: c_ulong,
        skb: *mut bindings::sk_buff,
        tcm: *mut sys::tcmsg,
    ) -> c_int {
        // SAFETY: under RTNL with a live class cookie, the dump's message and its header.
        unsafe {
            let Some(class) = Self::class(cl) else {
                return EINVAL.to_errno();
            };
            let mut msg = NlMsg::from_raw(skb);
            let mut hdr = ClassHeader::from_raw(tcm);
            match T::dump_class(
                Self::data(sch),
                &Self::control(sch),
                class,
                &mut msg,
                &mut hdr,
            ) {
                Ok(()) => 0,
                Err(_) => -1,
            }
        }
    }

    /// # Safety
    ///
    /// Called only by the packet scheduler core through the ops table, as its `cl_dump_stats`
    /// callback, with that callback's arguments and locking.
    unsafe extern "C" fn cl_dump_stats_cb(
        sch: *mut sys::Qdisc,
        cl: c_ulong,
        d: *mut sys::gnet_dump,
    ) -> c_int {
        // SAFETY: under RTNL with a live class cookie and the core's stats dump.
        unsafe {
            let Some(class) = Self::class(cl) else {
                return EINVAL.to_errno();
            };
            let mut d = StatsDump::from_raw(d);
            match T::dump_class_stats(Self::data(sch), &Self::control(sch), class, &mut d) {
                Ok(()) => 0,
                Err(_) => -1,
            }
        }
    }

    /// Fills the kind's ops tables.
    fn fill(ops: &mut sys::Qdisc_ops, cl_ops: &mut sys::Qdisc_class_ops) {
        ops.priv_size = core::mem::size_of::<Priv>() as c_int;
        ops.enqueue = Some(Self::enqueue_cb);
        ops.dequeue = Some(Self::dequeue_cb);
        ops.peek = Some(sys::knet_qdisc_peek_dequeued);
        ops.init = Some(Self::init_cb);
        ops.reset = Some(Self::reset_cb);
        ops.destroy = Some(Self::destroy_cb);
        if T::HAS_CHANGE {
            ops.change = Some(Self::change_cb);
        }
        ops.dump = Some(Self::dump_cb);
        if T::HAS_FIND {
            cl_ops.graft = Some(Self::graft_cb);
            cl_ops.leaf = Some(Self::leaf_cb);
            cl_ops.qlen_notify = Some(Self::qlen_notify_cb);
            cl_ops.find = Some(Self::find_cb);
            cl_ops.change = Some(Self::cl_change_cb);
            cl_ops.delete = Some(Self::cl_delete_cb);
            cl_ops.walk = Some(Self::walk_cb);
            cl_ops.tcf_block = Some(Self::tcf_block_cb);
            cl_ops.bind_tcf = Some(Self::bind_tcf_cb);
            cl_ops.unbind_tcf = Some(Self::unbind_tcf_cb);
            cl_ops.dump = Some(Self::cl_dump_cb);
            cl_ops.dump_stats = Some(Self::cl_dump_stats_cb);
        }
    }
}

/// The work item of a qdisc (`Locked::schedule_soon`): runs its root qdisc again.
///
/// # Safety
///
/// Called by the workqueue with the work item of a knet qdisc's `Priv`, which `destroy_cb`
/// cancels (and waits for) before the qdisc goes.
unsafe extern "C" fn work_cb(work: *mut bindings::work_struct) {
    let _rcu = kernel::sync::rcu::read_lock();
    // SAFETY: `work` is the `work` field of a live `Priv` (repr(C)); by the `Priv` invariant
    // its `sch` was set in `init_cb` before the work item could be queued, and `destroy_cb`
    // cancels the work before the qdisc goes; RCU is held, as `qdisc_root` requires.
    unsafe {
        let p = work
            .cast::<u8>()
            .sub(core::mem::offset_of!(Priv, work))
            .cast::<Priv>();
        sys::knet_qdisc_schedule_root((*p).sch);
    }
}

fn to_c(r: Result) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// The ops tables of a kind, which the core points to while it is registered.
///
/// # Invariants
///
/// Filled in by [`Registration::new`] before `register_qdisc` and not written by Rust after;
/// registered (the core points to `ops`, and `ops.cl_ops` to `cl_ops`) until the owning
/// [`Registration`] is dropped: hence pinned.
#[repr(C)]
struct KindTables {
    ops: Opaque<sys::Qdisc_ops>,
    cl_ops: Opaque<sys::Qdisc_class_ops>,
}

// SAFETY: read by the kernel from any CPU; by the type invariant Rust does not touch the tables
// after registration.
unsafe impl Send for KindTables {}
// SAFETY: `&KindTables` gives Rust no access; the kernel only reads them.
unsafe impl Sync for KindTables {}

/// An empty table (filled in before registration).
const fn zeroed<U>() -> U {
    // SAFETY: used for `Qdisc_ops` and `Qdisc_class_ops` only, where all-zero bytes are null
    // pointers and absent callbacks.
    unsafe { core::mem::zeroed() }
}

/// A registered qdisc kind; unregistered on drop.
///
/// # Invariants
///
/// `tables` hold `Adapter<T>`'s callbacks and are registered with `register_qdisc` from `new`
/// until drop.
pub(crate) struct Registration<T: QdiscOps> {
    tables: Pin<KBox<KindTables>>,
    _p: PhantomData<T>,
}

impl<T: QdiscOps> Registration<T> {
    /// Registers kind `T::ID`, owned by `module` (which then cannot unload while a qdisc of
    /// this kind exists).
    pub(crate) fn new(module: &'static ThisModule) -> Result<Self> {
        let tables = KBox::pin(
            KindTables {
                ops: Opaque::new(zeroed()),
                cl_ops: Opaque::new(zeroed()),
            },
            GFP_KERNEL,
        )?;
        // SAFETY: not registered yet: ours to fill.
        let (ops, cl_ops) = unsafe { (&mut *tables.ops.get(), &mut *tables.cl_ops.get()) };
        let id = T::ID.to_bytes();
        if id.len() >= ops.id.len() {
            return Err(EINVAL);
        }
        ops.id[..id.len()].copy_from_slice(id);
        Adapter::<T>::fill(ops, cl_ops);
        if T::HAS_FIND {
            ops.cl_ops = tables.cl_ops.get();
        }
        ops.owner = module.as_ptr();
        // SAFETY: the tables are pinned and stay registered until `drop`.
        to_c_result(unsafe { sys::register_qdisc(tables.ops.get()) })?;
        // INVARIANT: filled with `Adapter<T>`'s callbacks and registered just above.
        Ok(Registration {
            tables,
            _p: PhantomData,
        })
    }
}

impl<T: QdiscOps> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the tables are registered. The module reference held by
        // every qdisc of the kind means none exists any more when the module (and this) goes
        // away; this assumes the registration lives until the module is unloaded.
        unsafe { sys::unregister_qdisc(self.tables.ops.get()) };
    }
}
