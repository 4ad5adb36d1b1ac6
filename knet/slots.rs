// SPDX-License-Identifier: GPL-2.0

//! A table of entries named by small ids, shared by every CPU without a lock.
//!
//! Entries live in the table's own slots (no allocation per entry: with the kernel's
//! `init_on_alloc`, zeroing a fresh allocation for every packet cost imq 5% of its packet
//! rate). A slot is free, being filled, full, held, or taken; whoever moves it from full to held
//! (by compare-and-swap) may look inside until it makes it full again or taken, and whoever
//! makes it taken owns the entry until it frees the slot. A lookup holds first and checks after
//! (the entry's key or age), so it never takes what is not its own; a hold lasts a few
//! instructions with local interrupts off, and a lookup that meets one waits for it to end: an
//! owner always finds its entry unless someone really took it. Slot memory is never freed while the
//! table lives, so a race can at worst make a lookup hold and give back another's entry, never
//! read freed memory. Each slot also keeps its entry's key and age where a reader can peek at
//! them without holding it, so that copies of a packet (whose tag names their original's slot)
//! and the age sweep rarely hold what is not theirs.
//!
//! Slots come in chunks of about a page, allocated as the table fills (atomic context), up to
//! `CHUNKS` chunks. A cursor shared by the CPUs hands out slots in turn: packets leave queues
//! roughly in the order they entered, so the slots it reaches are mostly free again.

use super::irq::without_interrupts;
use core::{
    cell::UnsafeCell,
    marker::PhantomData,
    mem::MaybeUninit,
    ops::Deref,
    ptr,
    sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering},
};
use kernel::prelude::*;

/// What the table needs to know of an entry.
pub(crate) trait Keyed {
    /// The key a lookup must present (for the divert: the packet's address).
    fn key(&self) -> usize;
    /// When the entry was made (jiffies).
    fn born(&self) -> usize;
}

/// Chunks at most.
const CHUNKS: usize = 8192;
/// Slots tried from the cursor before growing the table.
const TRIES: usize = 8;

/// Slot states.
const FREE: u32 = 0;
const FILLING: u32 = 1;
const FULL: u32 = 2;
const TAKEN: u32 = 3;
/// Held for a moment, by a lookup checking the entry or by [`SlotTable::lend`]: others wait
/// for it to be full (or taken) again.
const HELD: u32 = 4;

/// One slot of a [`SlotTable`].
///
/// # Invariants
///
/// `entry` is initialised while `state` is `FULL`, `HELD` or `TAKEN`, and while `FILLING` once
/// `insert` has written it; otherwise it is uninitialised. Only whoever moved `state` to
/// `FILLING` or `HELD` (by compare-and-swap from `FREE` or `FULL`), and then to `TAKEN`,
/// accesses `entry`, until it stores `FULL` or `FREE` (release).
struct Slot<T> {
    state: AtomicU32,
    /// The entry's key and birth, for peeking: written before the slot becomes full.
    key: AtomicUsize,
    born: AtomicUsize,
    /// Initialised while the state is full, held or taken; owned by whoever made it filling,
    /// held or taken.
    entry: UnsafeCell<MaybeUninit<T>>,
}

impl<T> Slot<T> {
    fn free() -> Slot<T> {
        // INVARIANT: free, with an uninitialised entry.
        Slot {
            state: AtomicU32::new(FREE),
            key: AtomicUsize::new(0),
            born: AtomicUsize::new(0),
            entry: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// Moves the slot from `from` to `to`; true if it was `from`.
    fn swap_state(&self, from: u32, to: u32) -> bool {
        self.state
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }
}

/// An entry taken out of the table: owned until dropped (which frees the slot) or put back.
///
/// # Invariants
///
/// `slot` is `TAKEN`, moved there by whoever held it (see [`SlotTable::hold`]) and then made
/// this value: its entry is initialised and only this value accesses it.
pub(crate) struct Taken<'a, T: Keyed> {
    slot: &'a Slot<T>,
}

impl<T: Keyed> Deref for Taken<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: by the type invariant the slot is taken by us, so its entry is initialised and
        // ours alone.
        unsafe { (*self.slot.entry.get()).assume_init_ref() }
    }
}

impl<T: Keyed> Drop for Taken<'_, T> {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the slot is taken by us: its entry is initialised and
        // dropped once, here, before the slot is freed for others.
        unsafe { (*self.slot.entry.get()).assume_init_drop() };
        // INVARIANT: the entry was dropped: the slot is free, its entry uninitialised.
        self.slot.state.store(FREE, Ordering::Release);
    }
}

/// The table (see the module documentation).
///
/// # Invariants
///
/// `chunks` has `CHUNKS` entries. A non-null entry points to a chunk of `CHUNK` initialised
/// slots from `KVec::into_raw_parts` (length and capacity `CHUNK`), stored once by `grow`
/// (release) and freed only in `drop`. `chunks[..nchunks]` are non-null, and `nchunks >= 1`
/// once `new` has returned.
pub(crate) struct SlotTable<T: Keyed> {
    chunks: KVVec<AtomicPtr<Slot<T>>>,
    /// Chunks published: `chunks[..nchunks]` are all non-null.
    nchunks: AtomicUsize,
    cursor: AtomicUsize,
    _p: PhantomData<T>,
}

// SAFETY: entries move between CPUs only with ownership of their slot (`T: Send`, see the
// `Slot` invariants); the slots' states and peeks are atomics.
unsafe impl<T: Keyed + Send> Send for SlotTable<T> {}
// SAFETY: `&self` methods hand out an entry only to the one caller that took its slot (a
// `Taken`, which is neither `Send` nor `Sync`), never a shared reference to an entry someone
// else may own (`Slot` invariants).
unsafe impl<T: Keyed + Send> Sync for SlotTable<T> {}

impl<T: Keyed> SlotTable<T> {
    /// Slots per chunk: about a page.
    const CHUNK: usize = {
        let s = core::mem::size_of::<Slot<T>>();
        if s >= 4096 {
            1
        } else {
            4096 / s
        }
    };

    /// An empty table with one chunk.
    pub(crate) fn new() -> Result<Self> {
        let mut chunks = KVVec::with_capacity(CHUNKS, GFP_KERNEL)?;
        for _ in 0..CHUNKS {
            chunks.push(AtomicPtr::new(ptr::null_mut()), GFP_KERNEL)?;
        }
        // INVARIANT: `CHUNKS` null entries, none published yet; `grow` below publishes the first
        // or `new` fails.
        let t = SlotTable {
            chunks,
            nchunks: AtomicUsize::new(0),
            cursor: AtomicUsize::new(0),
            _p: PhantomData,
        };
        t.grow(GFP_KERNEL).ok_or(ENOMEM)?;
        Ok(t)
    }

    /// Publishes one more chunk; returns its index, `None` if full or out of memory.
    fn grow(&self, flags: kernel::alloc::Flags) -> Option<usize> {
        let n = self.nchunks.load(Ordering::Acquire);
        if n >= CHUNKS {
            return None;
        }
        let mut v = KVec::with_capacity(Self::CHUNK, flags).ok()?;
        for _ in 0..Self::CHUNK {
            v.push(Slot::<T>::free(), flags).ok()?;
        }
        // `with_capacity` on an empty vector allocates exactly `CHUNK`, all pushed above.
        let (p, _len, _cap) = v.into_raw_parts();
        // INVARIANT: a chunk of `CHUNK` free slots, stored only where the entry was still null
        // (never replacing a published chunk).
        if self.chunks[n]
            .compare_exchange(ptr::null_mut(), p, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // Another CPU grew the table first: its chunk serves.
            // SAFETY: `p` came from `into_raw_parts` above with length and capacity `CHUNK`,
            // and was never shared.
            drop(unsafe { KVec::from_raw_parts(p, Self::CHUNK, Self::CHUNK) });
        }
        // Published in order: whoever stored chunk `n` (or saw it stored) moves the count on.
        // INVARIANT: `chunks[n]` is non-null (ours, or the one that beat us) before the count
        // passes it.
        let _ = self
            .nchunks
            .compare_exchange(n, n + 1, Ordering::AcqRel, Ordering::Relaxed);
        Some(n)
    }

    /// Slot `id`, if its chunk is published.
    fn slot(&self, id: usize) -> Option<&Slot<T>> {
        let c = self.chunks.get(id / Self::CHUNK)?.load(Ordering::Acquire);
        if c.is_null() {
            return None;
        }
        // SAFETY: by the type invariant a non-null chunk holds `CHUNK` initialised slots and is
        // freed only in `drop`, so it outlives `&self`; `id % CHUNK` is in bounds.
        Some(unsafe { &*c.add(id % Self::CHUNK) })
    }

    /// Claims a slot first, then makes the entry right into it (`make`), and returns its id.
    /// `None` if the table is full (or cannot grow; `make` is then not called) or `make` gives
    /// nothing (the slot is free again). The entry is made once its slot is known, so that the
    /// divert's (its packet's fields, ~160 bytes) need not be held across the slot search;
    /// the compiler still stages part of it on the stack.
    #[inline(always)]
    pub(crate) fn insert_with(&self, make: impl FnOnce() -> Option<T>) -> Option<u32> {
        let (id, slot) = self.claim()?;
        let Some(e) = make() else {
            // INVARIANT: nothing was written: free again, with an uninitialised entry.
            slot.state.store(FREE, Ordering::Release);
            return None;
        };
        slot.key.store(e.key(), Ordering::Relaxed);
        slot.born.store(e.born(), Ordering::Relaxed);
        // SAFETY: `claim` moved the slot from `FREE` to `FILLING`, so by the `Slot` invariants
        // it is ours alone and its entry uninitialised.
        unsafe { (*slot.entry.get()).write(e) };
        // INVARIANT: the entry is initialised before the release store makes it `FULL`.
        slot.state.store(FULL, Ordering::Release);
        Some(id)
    }

    /// A free slot, moved to `FILLING` (ours alone), and its id; `None` if the table is full
    /// and cannot grow.
    fn claim(&self) -> Option<(u32, &Slot<T>)> {
        loop {
            let total = self.nchunks.load(Ordering::Acquire) * Self::CHUNK;
            for _ in 0..TRIES {
                let id = self.cursor.fetch_add(1, Ordering::Relaxed) % total;
                let Some(slot) = self.slot(id) else {
                    continue;
                };
                if slot.state.load(Ordering::Relaxed) != FREE || !slot.swap_state(FREE, FILLING) {
                    continue;
                }
                return Some((id as u32, slot));
            }
            // Every slot tried is taken: the table is nearly full. One more chunk, then the
            // cursor starts there.
            let n = self.grow(GFP_ATOMIC)?;
            self.cursor.store(n * Self::CHUNK, Ordering::Relaxed);
        }
    }

    /// Holds the slot if it is full and `peek` accepts the key and birth it shows, waiting out
    /// another's hold; false if it holds no entry (free, filling, taken) or `peek` refuses.
    /// A holder must end its hold within a few instructions, without sleeping, waiting or
    /// being interrupted (local interrupts off: see [`without_interrupts`]): others, in any
    /// context, spin on it, and a spinner that interrupted the holder on its own CPU, or
    /// preempted it, would spin forever.
    fn hold(slot: &Slot<T>, peek: impl Fn(usize, usize) -> bool) -> bool {
        loop {
            let state = slot.state.load(Ordering::Acquire);
            if state == HELD {
                core::hint::spin_loop();
                continue;
            }
            if state != FULL {
                return false;
            }
            // Read after the state (acquire): what `insert` stored for this entry or a later one.
            if !peek(
                slot.key.load(Ordering::Relaxed),
                slot.born.load(Ordering::Relaxed),
            ) {
                return false;
            }
            // Held by another, or taken, since the load: look again.
            if slot.swap_state(FULL, HELD) {
                return true;
            }
        }
    }

    /// Takes the slot's entry if `peek` accepts the key and birth the slot shows for it and
    /// `check` accepts the entry itself (the peek may have read a later entry's key).
    fn take_slot<'a>(
        slot: &'a Slot<T>,
        peek: impl Fn(usize, usize) -> bool,
        check: impl FnOnce(&T) -> bool,
    ) -> Option<Taken<'a, T>> {
        // Not interrupted while it holds the slot: see `hold`.
        without_interrupts(|| {
            if !Self::hold(slot, peek) {
                return None;
            }
            // SAFETY: `hold` moved the slot from `FULL` to `HELD` (acquire): its entry is
            // initialised and no one else accesses it until we store another state.
            if check(unsafe { (*slot.entry.get()).assume_init_ref() }) {
                // INVARIANT: held by us, now taken by the `Taken` made here. Others only read
                // the state (and then leave the entry alone): nothing to publish.
                slot.state.store(TAKEN, Ordering::Relaxed);
                Some(Taken { slot })
            } else {
                // Not ours: the entry, unchanged, goes back (release).
                slot.state.store(FULL, Ordering::Release);
                None
            }
        })
    }

    /// Takes entry `id` out if its key is `key`.
    pub(crate) fn take(&self, id: u32, key: usize) -> Option<Taken<'_, T>> {
        let slot = self.slot(id as usize)?;
        Self::take_slot(slot, |k, _| k == key, |e| e.key() == key)
    }

    /// Lends entry `id`, whoever's it is, to `f` (run with local interrupts off, as lookups of
    /// the slot spin until it is back: it must not sleep, wait, lock or allocate) and gives it
    /// back; `None` if the slot holds no entry now
    /// (free or taken).
    pub(crate) fn lend<R>(&self, id: u32, f: impl FnOnce(&T) -> R) -> Option<R> {
        let slot = self.slot(id as usize)?;
        // Not interrupted while it holds the slot: see `hold`.
        without_interrupts(|| {
            if !Self::hold(slot, |_, _| true) {
                return None;
            }
            // SAFETY: `hold` moved the slot from `FULL` to `HELD` (acquire): its entry is
            // initialised and no one else accesses it until we store `FULL`.
            let r = f(unsafe { (*slot.entry.get()).assume_init_ref() });
            // INVARIANT: the entry, unchanged, goes back: `FULL` (release).
            slot.state.store(FULL, Ordering::Release);
            Some(r)
        })
    }

    /// Takes out every entry born more than `age` jiffies before `now` and gives it to `f`.
    pub(crate) fn take_older(&self, now: usize, age: usize, mut f: impl FnMut(Taken<'_, T>)) {
        let old = |born: usize| now.wrapping_sub(born) as isize > age as isize;
        let total = self.nchunks.load(Ordering::Acquire) * Self::CHUNK;
        for id in 0..total {
            if let Some(e) = self
                .slot(id)
                .and_then(|s| Self::take_slot(s, |_, born| old(born), |e| old(e.born())))
            {
                f(e);
            }
        }
    }

    /// Takes out every entry and gives it to `f`.
    pub(crate) fn take_all(&self, mut f: impl FnMut(Taken<'_, T>)) {
        let total = self.nchunks.load(Ordering::Acquire) * Self::CHUNK;
        for id in 0..total {
            if let Some(e) = self
                .slot(id)
                .and_then(|s| Self::take_slot(s, |_, _| true, |_| true))
            {
                f(e);
            }
        }
    }
}

impl<T: Keyed> Drop for SlotTable<T> {
    fn drop(&mut self) {
        self.take_all(|e| drop(e));
        for c in self.chunks.iter() {
            let p = c.load(Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: by the type invariant a non-null chunk came from `into_raw_parts` with
                // length and capacity `CHUNK`, and is freed only here; no one else uses the table
                // (`&mut self`: no `Taken` or `insert` is alive), so after `take_all` no slot
                // holds an entry (dropping a `Slot` does not drop its entry anyway).
                drop(unsafe { KVec::from_raw_parts(p, Self::CHUNK, Self::CHUNK) });
            }
        }
    }
}
