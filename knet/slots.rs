// SPDX-License-Identifier: GPL-2.0

//! A table of owned entries named by small ids, shared by every CPU without a lock.
//!
//! Whoever takes an entry out of its slot owns it, and only an owner ever looks inside an entry:
//! a lookup takes first and checks after (the entry's key), putting back what was not its own.
//! So an entry is never read after it was freed, whatever the races, and entries need no RCU
//! or type-safe cache. Each slot also keeps its entry's key and age where a reader can peek at
//! them without taking it, so that copies of a packet (whose tag names their original's slot) and
//! the age sweep rarely take what they would have to put back: while an entry is out, its owner's
//! own lookup would find the slot empty.
//!
//! Slots come in chunks of one page, allocated as the table fills (atomic context; never freed
//! before the table), up to `CHUNK * CHUNKS` entries (163,840). A cursor shared by the CPUs hands out slots in turn:
//! packets leave queues roughly in the order they entered, so the slots it reaches are mostly
//! free again.

use core::{
    marker::PhantomData,
    ptr::{self, NonNull},
    sync::atomic::{AtomicPtr, AtomicUsize, Ordering},
};
use kernel::prelude::*;

/// What the table needs to know of an entry.
pub(crate) trait Keyed {
    /// The key a lookup must present (for the divert: the packet's address).
    fn key(&self) -> usize;
    /// When the entry was made (jiffies).
    fn born(&self) -> usize;
}

/// Slots per chunk: a chunk fills about one page.
const CHUNK: usize = 160;
/// Chunks at most.
const CHUNKS: usize = 1024;
/// Slots tried from the cursor before growing the table.
const TRIES: usize = 8;

struct Slot<T> {
    /// The entry (owned by the table), null when free, [`reserved`] while being filled.
    entry: AtomicPtr<T>,
    /// The entry's key and birth, for peeking: written before the entry is published.
    key: AtomicUsize,
    born: AtomicUsize,
}

impl<T> Slot<T> {
    fn free() -> Slot<T> {
        Slot {
            entry: AtomicPtr::new(ptr::null_mut()),
            key: AtomicUsize::new(0),
            born: AtomicUsize::new(0),
        }
    }
}

/// The marker of a slot being filled: never the address of an entry (entries are boxed, and
/// no allocation sits at the dangling address).
fn reserved<T>() -> *mut T {
    NonNull::dangling().as_ptr()
}

/// What a lookup found.
pub(crate) enum Taken<T> {
    /// The entry with the key: the caller owns it now.
    Found(KBox<T>),
    /// Nothing with that key.
    Absent,
    /// Another entry, taken in a race and not put back (its slot was given out meanwhile): the
    /// caller owns it and must release it as expired.
    Displaced(KBox<T>),
}

/// The table (see the module documentation).
pub(crate) struct SlotTable<T: Keyed> {
    chunks: KBox<[AtomicPtr<Slot<T>>; CHUNKS]>,
    /// Chunks published: `chunks[..nchunks]` are all non-null.
    nchunks: AtomicUsize,
    cursor: AtomicUsize,
    _p: PhantomData<T>,
}

// SAFETY: entries move between CPUs only as owned boxes (`T: Send`); the slots are atomics.
unsafe impl<T: Keyed + Send> Send for SlotTable<T> {}
// SAFETY: `&self` methods hand out owned entries only, never shared references, and change
// the slots by atomic operations only.
unsafe impl<T: Keyed + Send> Sync for SlotTable<T> {}

impl<T: Keyed> SlotTable<T> {
    /// An empty table with one chunk.
    pub(crate) fn new() -> Result<Self> {
        let mut chunks = KBox::<[AtomicPtr<Slot<T>>; CHUNKS]>::new_uninit(GFP_KERNEL)?;
        // SAFETY: all-zero bytes are null `AtomicPtr`s; the box is ours and now initialised
        // (built in place: the array is too big for the stack).
        let chunks = unsafe {
            ptr::write_bytes(chunks.as_mut_ptr(), 0, 1);
            chunks.assume_init()
        };
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
        let mut v = KVec::with_capacity(CHUNK, flags).ok()?;
        for _ in 0..CHUNK {
            v.push(Slot::<T>::free(), flags).ok()?;
        }
        let (p, _len, _cap) = v.into_raw_parts();
        if self.chunks[n]
            .compare_exchange(ptr::null_mut(), p, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // Another CPU grew the table first: its chunk serves.
            // SAFETY: `p`, CHUNK and CHUNK come from `into_raw_parts` above, never shared.
            drop(unsafe { KVec::from_raw_parts(p, CHUNK, CHUNK) });
        }
        // Published in order: whoever stored chunk `n` (or saw it stored) moves the count on.
        let _ = self
            .nchunks
            .compare_exchange(n, n + 1, Ordering::AcqRel, Ordering::Relaxed);
        Some(n)
    }

    /// Slot `id`, if its chunk is published.
    fn slot(&self, id: usize) -> Option<&Slot<T>> {
        let c = self.chunks.get(id / CHUNK)?.load(Ordering::Acquire);
        if c.is_null() {
            return None;
        }
        // SAFETY: a published chunk holds CHUNK initialised slots and lives as long as `self`.
        Some(unsafe { &*c.add(id % CHUNK) })
    }

    /// Stores `e` in slot `slot`, claimed (reserved) by the caller.
    fn fill(slot: &Slot<T>, e: KBox<T>) {
        slot.key.store(e.key(), Ordering::Relaxed);
        slot.born.store(e.born(), Ordering::Relaxed);
        slot.entry.store(KBox::into_raw(e), Ordering::Release);
    }

    fn claim(slot: &Slot<T>) -> bool {
        slot.entry.load(Ordering::Relaxed).is_null()
            && slot
                .entry
                .compare_exchange(
                    ptr::null_mut(),
                    reserved(),
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    /// Stores `e` and returns its id; gives it back if the table is full (or cannot grow).
    pub(crate) fn insert(&self, e: KBox<T>) -> Result<u32, KBox<T>> {
        loop {
            let total = self.nchunks.load(Ordering::Acquire) * CHUNK;
            for _ in 0..TRIES {
                let id = self.cursor.fetch_add(1, Ordering::Relaxed) % total;
                if let Some(slot) = self.slot(id) {
                    if Self::claim(slot) {
                        Self::fill(slot, e);
                        return Ok(id as u32);
                    }
                }
            }
            // Every slot tried is taken: the table is nearly full. One more chunk, then the
            // cursor starts there.
            let Some(n) = self.grow(GFP_ATOMIC) else {
                return Err(e);
            };
            self.cursor.store(n * CHUNK, Ordering::Relaxed);
        }
    }

    /// Takes slot `id`'s entry out (ours now) if the slot holds it still.
    /// Takes the slot's entry out (ours now) if `peek` accepts the key and birth the slot shows
    /// for it.
    fn take_slot(slot: &Slot<T>, peek: impl Fn(usize, usize) -> bool) -> Option<KBox<T>> {
        let e = slot.entry.load(Ordering::Acquire);
        if e.is_null() || e == reserved() {
            return None;
        }
        // Read after the entry (acquire): what `fill` stored for this entry or a later one, never
        // a previous entry's.
        if !peek(
            slot.key.load(Ordering::Relaxed),
            slot.born.load(Ordering::Relaxed),
        ) {
            return None;
        }
        slot.entry
            .compare_exchange(e, ptr::null_mut(), Ordering::AcqRel, Ordering::Relaxed)
            .ok()?;
        // SAFETY: `e` came from `KBox::into_raw` in `fill`, and the compare-and-swap that
        // emptied the slot made us its only owner (whatever address reuse happened meanwhile,
        // the slot held exactly this pointer, owned by the table, at that moment).
        Some(unsafe { KBox::from_raw(e) })
    }

    /// Puts `e` back into slot `id` if nothing took the slot meanwhile; else gives it back.
    fn restore(&self, id: usize, e: KBox<T>) -> Result<(), KBox<T>> {
        match self.slot(id) {
            Some(slot) if Self::claim(slot) => {
                Self::fill(slot, e);
                Ok(())
            }
            _ => Err(e),
        }
    }

    /// Takes entry `id` out if its key is `key`.
    pub(crate) fn take(&self, id: u32, key: usize) -> Taken<T> {
        let id = id as usize;
        let Some(slot) = self.slot(id) else {
            return Taken::Absent;
        };
        // The peek spares the common miss (a copy of a packet) a take and a put-back: while an
        // entry is out, its owner's own lookup would find the slot empty.
        let Some(e) = Self::take_slot(slot, |k, _| k == key) else {
            return Taken::Absent;
        };
        // The peek may have read the key of an entry that took the slot after the one we took
        // (the slot emptied and filled again in between, reusing its address).
        if e.key() == key {
            return Taken::Found(e);
        }
        match self.restore(id, e) {
            Ok(()) => Taken::Absent,
            Err(e) => Taken::Displaced(e),
        }
    }

    /// Takes out every entry born more than `age` jiffies before `now` and gives it to `f`.
    pub(crate) fn take_older(&self, now: usize, age: usize, mut f: impl FnMut(KBox<T>)) {
        let old = |born: usize| now.wrapping_sub(born) as isize > age as isize;
        let total = self.nchunks.load(Ordering::Acquire) * CHUNK;
        for id in 0..total {
            let Some(slot) = self.slot(id) else {
                continue;
            };
            let Some(e) = Self::take_slot(slot, |_, born| old(born)) else {
                continue;
            };
            if old(e.born()) {
                f(e);
            } else if let Err(e) = self.restore(id, e) {
                f(e);
            }
        }
    }

    /// Takes out every entry and gives it to `f`.
    pub(crate) fn take_all(&self, mut f: impl FnMut(KBox<T>)) {
        let total = self.nchunks.load(Ordering::Acquire) * CHUNK;
        for id in 0..total {
            if let Some(e) = self.slot(id).and_then(|s| Self::take_slot(s, |_, _| true)) {
                f(e);
            }
        }
    }
}

impl<T: Keyed> Drop for SlotTable<T> {
    fn drop(&mut self) {
        self.take_all(drop);
        for c in self.chunks.iter() {
            let p = c.load(Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: published by `grow` from `into_raw_parts` with CHUNK and CHUNK; no
                // one else uses the table any more (`&mut self`).
                drop(unsafe { KVec::from_raw_parts(p, CHUNK, CHUNK) });
            }
        }
    }
}
