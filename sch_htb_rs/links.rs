// SPDX-License-Identifier: GPL-2.0

//! Round-robin rings threaded through the class slots (kernel-independent; host-tested).
//!
//! HTB keeps, per priority, a "row" of classes for every level and a "feed" of borrowing
//! children for every inner class. sch_htb uses rbtrees keyed by classid plus a cursor; all a
//! row or feed needs is "serve the one at the cursor, then the next", so here each is a
//! circular doubly-linked list with the cursor as its only handle: O(1) insert, remove and
//! advance, no allocation, and a removal can never leave the cursor dangling.
//!
//! A class is in at most one ring per priority (the row of its level while it may send on its
//! own rate, its parent's feed while it borrows), so one pair of links per priority suffices.

use super::sched::{ClassIdx, NONE, NUM_PRIO};

/// A class's place in the ring of each priority; `NONE` when not in that ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RingLinks {
    next: [ClassIdx; NUM_PRIO],
    prev: [ClassIdx; NUM_PRIO],
}

impl RingLinks {
    /// In no ring.
    pub(crate) const fn new() -> RingLinks {
        RingLinks {
            next: [NONE; NUM_PRIO],
            prev: [NONE; NUM_PRIO],
        }
    }

    /// The class served after this one in the ring of `prio` (`prio < NUM_PRIO`).
    pub(crate) fn next(&self, prio: usize) -> ClassIdx {
        self.next[prio]
    }

    /// The class served before this one in the ring of `prio` (`prio < NUM_PRIO`).
    pub(crate) fn prev(&self, prio: usize) -> ClassIdx {
        self.prev[prio]
    }

    /// Whether the class is in a ring of `prio` (`prio < NUM_PRIO`).
    pub(crate) fn is_linked(&self, prio: usize) -> bool {
        self.next[prio] != NONE
    }
}

/// Something stored in the slot array that carries [`RingLinks`].
pub(crate) trait RingMember {
    /// The links.
    fn ring(&self) -> &RingLinks;
    /// The links, to change them.
    fn ring_mut(&mut self) -> &mut RingLinks;
}

/// The handle of one ring: its cursor (the class whose turn it is, `NONE` = empty ring) and a
/// resume hint.
///
/// The hint is sch_htb's `last_ptr_id`, kept for feeds only (as in sch_htb, a row's cursor just
/// moves on): a class that leaves the feed while it has the turn (typically because it may
/// send on its own rate again for a moment, or is over its ceil after a large packet) and
/// comes back before the feed has served anyone resumes its turn instead of going to the back.
/// Without it, a class whose rate keeps flipping it in and out of a feed would lose its turns,
/// and borrowing would no longer follow the quanta. Two rules keep the hint with the class
/// the turn was taken from, as sch_htb's pointer does: it outlives an empty feed (both
/// classes sharing a parent may be away at once, and the one that comes back first must not
/// take the other's turn), and a class that leaves after it, before anyone was served, does
/// not replace it (it got the cursor but was never served on it).
///
/// The ring also knows where its round begins (`head`, sch_htb's leftmost node): when the
/// cursor comes back to it, every member has had a turn, and the class whose feed this is ends
/// its own turn in its ring (sch_htb's "rewind & go up" in `htb_lookup_leaf`), so that inner
/// classes borrowing from the same ancestor take turns as their leaves do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ring {
    cursor: ClassIdx,
    resume: ClassIdx,
    head: ClassIdx,
    /// The class holding the hint began the round when it left: it does again on resuming.
    resume_head: bool,
    /// Rounds completed (wrapping), for telling whether a class was served in this one.
    round: u32,
}

impl Ring {
    /// An empty ring.
    pub(crate) const EMPTY: Ring = Ring {
        cursor: NONE,
        resume: NONE,
        head: NONE,
        resume_head: false,
        round: 0,
    };

    /// Where the ring's round begins, `NONE` if the ring is empty.
    pub(crate) fn head(&self) -> ClassIdx {
        self.head
    }

    /// The class whose turn it is, `NONE` if the ring is empty.
    pub(crate) fn cursor(&self) -> ClassIdx {
        self.cursor
    }

    /// What a class served now keeps to tell later whether it was served in the round then
    /// current ([`Ring::served_this_round`]); never 0, which stands for "never served".
    pub(crate) fn stamp(&self) -> u32 {
        self.round.wrapping_add(1)
    }

    /// Whether a class that kept `stamp` when it was last served was served in this round.
    pub(crate) fn served_this_round(&self, stamp: u32) -> bool {
        stamp == self.stamp()
    }

    /// The class that may resume its turn, `NONE` if none.
    pub(crate) fn resume(&self) -> ClassIdx {
        self.resume
    }

    /// Whether the ring has no member.
    pub(crate) fn is_empty(&self) -> bool {
        self.cursor == NONE
    }

    /// The ring served its cursor: a class that left meanwhile has lost its turn for good.
    pub(crate) fn served(&mut self) {
        self.resume = NONE;
    }

    /// `idx`, which left the ring, used up its turn: it may not resume it.
    pub(crate) fn forfeit(&mut self, idx: ClassIdx) {
        if self.resume == idx {
            self.resume = NONE;
        }
    }
}

/// Puts `idx` into `ring` for `prio`.
///
/// `idx` goes just behind the cursor, i.e. it is served last in the current round, so a class
/// that keeps leaving and rejoining cannot jump the queue; unless it is resuming the turn it
/// had when it left (see [`Ring`]). Contract: `idx` and every ring member are valid slots,
/// `idx` is in no ring of `prio`, `prio < NUM_PRIO`.
#[inline]
pub(crate) fn insert<N: RingMember>(nodes: &mut [N], ring: &mut Ring, idx: ClassIdx, prio: usize) {
    let cursor = ring.cursor;
    if cursor == NONE {
        let l = nodes[idx as usize].ring_mut();
        l.next[prio] = idx;
        l.prev[prio] = idx;
        // Alone, it has the turn: whoever else holds the hint is not here to resume.
        ring.cursor = idx;
        ring.head = idx;
        if ring.resume == idx {
            ring.resume = NONE;
        }
        return;
    }
    let before = nodes[cursor as usize].ring().prev[prio];
    {
        let l = nodes[idx as usize].ring_mut();
        l.next[prio] = cursor;
        l.prev[prio] = before;
    }
    nodes[before as usize].ring_mut().next[prio] = idx;
    nodes[cursor as usize].ring_mut().prev[prio] = idx;
    if ring.resume == idx {
        // Back in its old place (just before the class that took over) with the turn, and at
        // the start of the round if it was there: the others still have their turns to come.
        ring.cursor = idx;
        ring.resume = NONE;
        if ring.resume_head {
            ring.head = idx;
        }
    }
}

/// [`insert`] for a class that was served in the ring's current round, left it and comes back:
/// unless it resumes its turn, it waits for the next round. Behind the cursor is the end of the
/// current round when the cursor is at its head, so there it becomes the head instead (as in
/// sch_htb's classid order, where it comes back before the cursor). Else a class that left
/// for a moment after its turn (it could send on its own rate) would be served twice in the
/// round, and its parent, whose turn lasts a round of this feed, more than its share.
#[inline]
pub(crate) fn insert_served<N: RingMember>(
    nodes: &mut [N],
    ring: &mut Ring,
    idx: ClassIdx,
    prio: usize,
) {
    let resuming = ring.resume == idx;
    let cursor = ring.cursor;
    insert(nodes, ring, idx, prio);
    if !resuming && cursor != NONE && ring.head == cursor {
        ring.head = idx;
    }
}

/// Takes `idx` out of `ring` for `prio`. If it had the turn, the next class gets it (the one
/// whose turn it would have been anyway) and, with `hint` (feeds) and unless another class
/// already holds the hint, `idx` may resume it if it comes back before the ring serves anyone.
///
/// A class that is not linked is left alone. Contract: if linked, `idx` is in this very ring;
/// `prio < NUM_PRIO`.
#[inline]
pub(crate) fn remove<N: RingMember>(
    nodes: &mut [N],
    ring: &mut Ring,
    idx: ClassIdx,
    prio: usize,
    hint: bool,
) {
    let (next, prev) = {
        let l = nodes[idx as usize].ring_mut();
        let pair = (l.next[prio], l.prev[prio]);
        l.next[prio] = NONE;
        l.prev[prio] = NONE;
        pair
    };
    if next == NONE {
        return;
    }
    if hint && ring.cursor == idx && ring.resume == NONE {
        ring.resume = idx;
        ring.resume_head = ring.head == idx;
    }
    if next == idx {
        ring.cursor = NONE;
        ring.head = NONE;
        return;
    }
    nodes[prev as usize].ring_mut().next[prio] = next;
    nodes[next as usize].ring_mut().prev[prio] = prev;
    if ring.cursor == idx {
        ring.cursor = next;
    }
    if ring.head == idx {
        ring.head = next;
    }
}

/// Ends `idx`'s turn: the cursor moves on if it is at `idx` (otherwise it is someone else's
/// turn already and nothing changes but the hint, which is spent). Returns whether that
/// ended the ring's round (the cursor is back at its head).
pub(crate) fn advance_past<N: RingMember>(
    nodes: &[N],
    ring: &mut Ring,
    idx: ClassIdx,
    prio: usize,
) -> bool {
    ring.served();
    if ring.cursor != idx || idx == NONE {
        return false;
    }
    let next = nodes[idx as usize].ring().next[prio];
    if next == NONE {
        return false;
    }
    ring.cursor = next;
    if next != ring.head {
        return false;
    }
    ring.round = ring.round.wrapping_add(1);
    true
}
