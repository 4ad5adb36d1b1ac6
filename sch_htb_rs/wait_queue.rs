// SPDX-License-Identifier: GPL-2.0

//! Per-level wait queues: classes that may not send on their own rate, ordered by the time
//! their mode changes next (kernel-independent; host-tested).
//!
//! sch_htb uses an rbtree per level and caches its earliest key. A pairing heap threaded
//! through the class slots gives the same operations without allocation: the earliest event is
//! the root (so the cache is free), insertion is O(1), and popping or removing an arbitrary
//! class is O(log n) amortized. Only the iterative forms are used, so the kernel stack does not
//! grow with the number of classes.

use super::sched::{ClassIdx, NONE};

/// A class's place in a wait queue. `prev` is the previous sibling, or the parent for a first
/// child, or `NONE` for the root and for classes in no queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeapLinks {
    child: ClassIdx,
    next: ClassIdx,
    prev: ClassIdx,
}

impl HeapLinks {
    /// In no queue.
    pub(crate) const fn new() -> HeapLinks {
        HeapLinks {
            child: NONE,
            next: NONE,
            prev: NONE,
        }
    }

    /// First child in the heap.
    pub(crate) fn child(&self) -> ClassIdx {
        self.child
    }

    /// Next sibling in the heap.
    pub(crate) fn next(&self) -> ClassIdx {
        self.next
    }

    /// Previous sibling, or the parent for a first child.
    pub(crate) fn prev(&self) -> ClassIdx {
        self.prev
    }
}

/// Something stored in the slot array that carries [`HeapLinks`] and a key.
pub(crate) trait HeapMember {
    /// The links.
    fn heap(&self) -> &HeapLinks;
    /// The links, to change them.
    fn heap_mut(&mut self) -> &mut HeapLinks;
    /// When the member's event is due (absolute ns); must not change while it is queued.
    fn key(&self) -> i64;
}

/// One wait queue (a pairing heap); empty when `root` is `NONE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WaitQueue {
    root: ClassIdx,
}

impl WaitQueue {
    /// An empty queue.
    pub(crate) const fn new() -> WaitQueue {
        WaitQueue { root: NONE }
    }

    /// The class with the earliest event, if any.
    pub(crate) fn first(&self) -> Option<ClassIdx> {
        if self.root == NONE {
            None
        } else {
            Some(self.root)
        }
    }

    /// The earliest event time, if any.
    pub(crate) fn first_key<N: HeapMember>(&self, nodes: &[N]) -> Option<i64> {
        self.first().map(|r| nodes[r as usize].key())
    }

    /// Queues `idx` (contract: valid slot, in no queue, key already set).
    pub(crate) fn push<N: HeapMember>(&mut self, nodes: &mut [N], idx: ClassIdx) {
        *nodes[idx as usize].heap_mut() = HeapLinks::new();
        self.root = meld(nodes, self.root, idx);
    }

    /// Dequeues and returns the class with the earliest event.
    pub(crate) fn pop<N: HeapMember>(&mut self, nodes: &mut [N]) -> Option<ClassIdx> {
        let root = self.first()?;
        let child = nodes[root as usize].heap().child;
        *nodes[root as usize].heap_mut() = HeapLinks::new();
        self.root = merge_pairs(nodes, child);
        Some(root)
    }

    /// Takes `idx` out of the queue. Contract: `idx` is in this queue.
    pub(crate) fn remove<N: HeapMember>(&mut self, nodes: &mut [N], idx: ClassIdx) {
        if idx == self.root {
            self.pop(nodes);
            return;
        }
        let HeapLinks { child, next, prev } = *nodes[idx as usize].heap();
        if prev == NONE {
            // Not queued (or the contract was broken): nothing to unlink.
            return;
        }
        // Cut the subtree rooted at idx out of its sibling list.
        if nodes[prev as usize].heap().child == idx {
            nodes[prev as usize].heap_mut().child = next;
        } else {
            nodes[prev as usize].heap_mut().next = next;
        }
        if next != NONE {
            nodes[next as usize].heap_mut().prev = prev;
        }
        *nodes[idx as usize].heap_mut() = HeapLinks::new();
        let rest = merge_pairs(nodes, child);
        self.root = meld(nodes, self.root, rest);
    }
}

/// Joins two heap roots (each with no siblings and no parent) into one, returning the root.
fn meld<N: HeapMember>(nodes: &mut [N], a: ClassIdx, b: ClassIdx) -> ClassIdx {
    if a == NONE {
        return b;
    }
    if b == NONE {
        return a;
    }
    let (top, sub) = if nodes[b as usize].key() < nodes[a as usize].key() {
        (b, a)
    } else {
        (a, b)
    };
    let first = nodes[top as usize].heap().child;
    {
        let l = nodes[sub as usize].heap_mut();
        l.prev = top;
        l.next = first;
    }
    if first != NONE {
        nodes[first as usize].heap_mut().prev = sub;
    }
    let l = nodes[top as usize].heap_mut();
    l.child = sub;
    l.next = NONE;
    l.prev = NONE;
    top
}

/// Combines a sibling list (starting at `first`) into one heap by the standard two passes:
/// meld neighbours left to right, then meld the results right to left. The first pass keeps
/// its results on a stack threaded through `next`, so no recursion and no allocation.
fn merge_pairs<N: HeapMember>(nodes: &mut [N], first: ClassIdx) -> ClassIdx {
    let mut stack = NONE;
    let mut a = first;
    while a != NONE {
        let b = nodes[a as usize].heap().next;
        *nodes[a as usize].heap_mut() = HeapLinks {
            child: nodes[a as usize].heap().child,
            next: NONE,
            prev: NONE,
        };
        let (tree, rest) = if b == NONE {
            (a, NONE)
        } else {
            let rest = nodes[b as usize].heap().next;
            let l = nodes[b as usize].heap_mut();
            l.next = NONE;
            l.prev = NONE;
            (meld(nodes, a, b), rest)
        };
        nodes[tree as usize].heap_mut().next = stack;
        stack = tree;
        a = rest;
    }
    let mut root = NONE;
    while stack != NONE {
        let below = nodes[stack as usize].heap().next;
        nodes[stack as usize].heap_mut().next = NONE;
        root = meld(nodes, root, stack);
        stack = below;
    }
    root
}
