// SPDX-License-Identifier: GPL-2.0

//! The HTB scheduler: class tree, levels, rows, feeds, DRR and the choice of the next leaf
//! (kernel-independent; host-tested).
//!
//! Vocabulary is sch_htb's. Leaves are level 0, classes attached to the qdisc level 7, every
//! other inner class one below its parent. A class that may send on its own rate (`CanSend`)
//! and has active descendants of priority `p` sits in the *row* of its level for `p`; one that
//! must borrow (`MayBorrow`) sits in its parent's *feed* for `p` instead; one over its ceil
//! (`CantSend`) in neither. Classes that are not `CanSend` wait in their level's *wait queue*
//! until their mode may change. A pick serves the lowest level first (the least borrowing),
//! then the lowest priority number, then round-robin (DRR by quantum) along the row and down
//! through the feeds to a leaf.
//!
//! Nothing here allocates or owns classes: every class is a [`Node`] in a slice the caller
//! owns, and rows, feeds and wait queues are threaded through those nodes by index. The slice
//! passed to every call must be the same array (it may have grown; it never shrinks while a
//! class lives). Time is a parameter (`now`, ns of a monotonic clock), never read here.
//!
//! The packet path's functions (`activate`, `pick`, `dequeued` and what they call per packet)
//! are `#[inline]`: each has one caller in the module, and a call and return (through the
//! kernel's return thunk) cost more than the code they would share. Inlining them into the
//! qdisc's enqueue and dequeue took `htb_rs` from 0.91-0.93 of `htb`'s packet rate to
//! 0.95-1.00 (`make bench`).

use super::bucket::{Bucket, Mode};
use super::links::{self, Ring, RingLinks, RingMember};
use super::rate::Rate;
use super::wait_queue::{HeapLinks, HeapMember, WaitQueue};

/// Index of a class's [`Node`] in the caller's slice.
pub(crate) type ClassIdx = u32;

/// "No class": ends of links, empty rings and queues, the qdisc root as a parent.
pub(crate) const NONE: ClassIdx = u32::MAX;

/// Levels of the class tree (`TC_HTB_MAXDEPTH`).
pub(crate) const MAX_DEPTH: usize = 8;

/// Priorities (`TC_HTB_NUMPRIO`); 0 is served first.
pub(crate) const NUM_PRIO: usize = 8;

/// Wait-queue events run per [`Sched::pick`] at most. sch_htb stops after two jiffies so that
/// a storm of simultaneous events cannot stall the CPU with the qdisc lock held; a count bounds
/// the same thing without reading a clock.
pub(crate) const EVENT_BUDGET: u32 = 1024;

/// How far ahead [`Pick::Wait`] looks when classes are active but no event is queued (only
/// when every active leaf gave no packet, see [`Sched::skip`]); sch_htb's per-level default.
const IDLE_RECHECK_NS: i64 = 1_000_000_000;

/// Validated per-class parameters (see `config::class_params`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClassParams {
    /// Guaranteed rate.
    pub(crate) rate: Rate,
    /// Most the class may send, borrowing included.
    pub(crate) ceil: Rate,
    /// Rate bucket size (ns of transmission at `rate`), `>= 0`.
    pub(crate) buffer_ns: i64,
    /// Ceil bucket size (ns of transmission at `ceil`), `>= 0`.
    pub(crate) cbuffer_ns: i64,
    /// DRR quantum (bytes served per round while borrowing at the same level and priority).
    pub(crate) quantum: u32,
    /// Priority, `0..NUM_PRIO` (larger values are taken as the lowest priority).
    pub(crate) prio: u8,
}

impl ClassParams {
    /// Parameters of an unused slot.
    pub(crate) const UNSET: ClassParams = ClassParams {
        rate: Rate::zero(),
        ceil: Rate::zero(),
        buffer_ns: 0,
        cbuffer_ns: 0,
        quantum: 0,
        prio: 0,
    };

    /// The parameters as stored: priority clamped and buffers non-negative, so that no later
    /// index or threshold can be out of range whatever the caller built.
    fn sanitized(&self) -> ClassParams {
        ClassParams {
            buffer_ns: self.buffer_ns.max(0),
            cbuffer_ns: self.cbuffer_ns.max(0),
            prio: self.prio.min(NUM_PRIO as u8 - 1),
            ..*self
        }
    }
}

/// A class's statistics, for `tc -s class show`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClassStats {
    /// Rate tokens (ns); `config::xstats_ticks` converts them as sch_htb reports them.
    pub(crate) tokens_ns: i64,
    /// Ceil tokens (ns).
    pub(crate) ctokens_ns: i64,
    /// Packets this class paid for at the level they were sent at (sch_htb's `lends`).
    pub(crate) lends: u32,
    /// Packets this class sent on an ancestor's tokens (sch_htb's `borrows`).
    pub(crate) borrows: u32,
    /// Transitions to `CantSend`.
    pub(crate) overlimits: u32,
    /// Current mode.
    pub(crate) mode: Mode,
}

/// What [`Sched::pick`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pick {
    /// Dequeue from this leaf; it is served as if at `level` (0 = on its own rate, above = on
    /// the tokens of its ancestor at that level). Pass both back to `dequeued` or `skip`.
    Leaf {
        /// The leaf.
        class: ClassIdx,
        /// The level it is served at.
        level: u8,
    },
    /// Classes are active but none may send now: call `pick` again at `until_ns`. A value
    /// `<= now` means work is pending (the event budget ran out): reschedule at once, from a
    /// work item as sch_htb does, rather than arming a timer.
    Wait {
        /// Absolute ns.
        until_ns: i64,
    },
    /// No leaf is active.
    Idle,
}

/// Why a class operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TreeError {
    /// The new class would be below level 0.
    TooDeep,
    /// Only childless classes can be deleted.
    HasChildren,
    /// An index out of the slice, a slot in the wrong state (used/unused) or a dead parent.
    InvalidClass,
}

impl TreeError {
    /// The extack message.
    pub(crate) fn message(&self) -> &'static str {
        match self {
            TreeError::TooDeep => "tree is too deep",
            TreeError::HasChildren => "class has children",
            TreeError::InvalidClass => "invalid class",
        }
    }
}

/// Per-class scheduler state, one per slot of the caller's array.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    live: bool,
    parent: ClassIdx,
    level: u8,
    children: u32,
    params: ClassParams,
    bucket: Bucket,
    mode: Mode,
    /// When the class's wait-queue event is due (absolute ns), while it is not `CanSend`.
    pq_key: i64,
    /// Bit `p` set: a leaf is active with priority `p`; an inner class has a non-empty feed `p`.
    prio_activity: u8,
    /// Place in a row or in the parent's feed, per priority.
    ring: RingLinks,
    /// Place in the wait queue of the class's level.
    heap: HeapLinks,
    /// Inner classes: the feed of each priority.
    feed: [Ring; NUM_PRIO],
    /// Leaves: DRR deficit for each level they can be served at (as sch_htb; borrowing at
    /// different levels is a different round).
    deficit: [i64; MAX_DEPTH],
    /// The pick round in which the leaf gave no packet (see [`Sched::skip`]).
    skipped_in: u64,
    /// For each priority, the parent's feed's [`Ring::stamp`] when the class was last served
    /// (0: never), so that a class coming back to the feed in the same round waits for the
    /// next one ([`links::insert_served`]).
    fed_in: [u32; NUM_PRIO],
    lends: u32,
    borrows: u32,
    overlimits: u32,
}

impl Node {
    /// An unused slot.
    pub(crate) const fn new() -> Node {
        Node {
            live: false,
            parent: NONE,
            level: 0,
            children: 0,
            params: ClassParams::UNSET,
            bucket: Bucket::full(0, 0, 0),
            mode: Mode::CanSend,
            pq_key: 0,
            prio_activity: 0,
            ring: RingLinks::new(),
            heap: HeapLinks::new(),
            feed: [Ring::EMPTY; NUM_PRIO],
            deficit: [0; MAX_DEPTH],
            skipped_in: 0,
            fed_in: [0; NUM_PRIO],
            lends: 0,
            borrows: 0,
            overlimits: 0,
        }
    }

    /// Whether the slot holds a class.
    pub(crate) fn is_live(&self) -> bool {
        self.live
    }

    /// Whether the class is a leaf (level 0, no children).
    pub(crate) fn is_leaf(&self) -> bool {
        self.level == 0
    }

    /// The class's level (0 for leaves).
    pub(crate) fn level(&self) -> u8 {
        self.level
    }

    /// The parent class, `None` if attached to the qdisc.
    pub(crate) fn parent(&self) -> Option<ClassIdx> {
        if self.parent == NONE {
            None
        } else {
            Some(self.parent)
        }
    }

    /// Number of child classes.
    pub(crate) fn children(&self) -> u32 {
        self.children
    }

    /// The parameters as stored (priority clamped).
    pub(crate) fn params(&self) -> &ClassParams {
        &self.params
    }

    /// Leaves: has packets (was activated); inner classes: has active descendants borrowing
    /// through it.
    pub(crate) fn is_active(&self) -> bool {
        self.prio_activity != 0
    }

    /// Current mode.
    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }

    /// Statistics for `tc -s class show`.
    pub(crate) fn stats(&self) -> ClassStats {
        ClassStats {
            tokens_ns: self.bucket.tokens,
            ctokens_ns: self.bucket.ctokens,
            lends: self.lends,
            borrows: self.borrows,
            overlimits: self.overlimits,
            mode: self.mode,
        }
    }

    fn prio(&self) -> usize {
        usize::from(self.params.prio).min(NUM_PRIO - 1)
    }
}

impl Default for Node {
    fn default() -> Node {
        Node::new()
    }
}

impl RingMember for Node {
    fn ring(&self) -> &RingLinks {
        &self.ring
    }
    fn ring_mut(&mut self) -> &mut RingLinks {
        &mut self.ring
    }
}

impl HeapMember for Node {
    fn heap(&self) -> &HeapLinks {
        &self.heap
    }
    fn heap_mut(&mut self) -> &mut HeapLinks {
        &mut self.heap
    }
    fn key(&self) -> i64 {
        self.pq_key
    }
}

/// The priorities whose bits are set in `mask`, lowest first.
///
/// By set bit rather than by testing all eight: a leaf is active in one priority, and this
/// runs on every activation and deactivation.
fn prios(mask: u8) -> impl Iterator<Item = usize> {
    let mut left = mask;
    core::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        let prio = left.trailing_zeros() as usize;
        left &= left - 1;
        Some(prio)
    })
}

/// Per-qdisc scheduler state (no class storage).
#[derive(Clone, Debug)]
pub(crate) struct Sched {
    hysteresis: bool,
    /// The row of each level and priority.
    rows: [[Ring; NUM_PRIO]; MAX_DEPTH],
    wait: [WaitQueue; MAX_DEPTH],
    active_leaves: u32,
    overlimits: u64,
    /// Pick round: a new one starts with every `pick` that does not follow a `skip`.
    round: u64,
    continuing: bool,
}

impl Sched {
    /// An empty scheduler; `hysteresis` as sch_htb's `htb_hysteresis` module parameter.
    pub(crate) const fn new(hysteresis: bool) -> Sched {
        Sched {
            hysteresis,
            rows: [[Ring::EMPTY; NUM_PRIO]; MAX_DEPTH],
            wait: [WaitQueue::new(); MAX_DEPTH],
            active_leaves: 0,
            overlimits: 0,
            round: 0,
            continuing: false,
        }
    }

    /// Transitions of any class to `CantSend` (sch_htb's `q->overlimits`).
    pub(crate) fn overlimits(&self) -> u64 {
        self.overlimits
    }

    /// Number of active leaves.
    pub(crate) fn active_leaves(&self) -> u32 {
        self.active_leaves
    }

    /// Creates class `idx` under `parent` (`None` = attached to the qdisc), `CanSend` with full
    /// buckets at `now`.
    ///
    /// Contract: `nodes[idx]` is an unused slot and `parent` a live class (else
    /// `InvalidClass`). A leaf parent becomes an inner class: it is deactivated here and its
    /// queue must be purged by the caller; it keeps its tokens. `TooDeep` as sch_htb when the
    /// parent would have to become an inner class below level 1.
    pub(crate) fn add_class(
        &mut self,
        nodes: &mut [Node],
        idx: ClassIdx,
        parent: Option<ClassIdx>,
        params: &ClassParams,
        now: i64,
    ) -> Result<(), TreeError> {
        if idx == NONE || nodes.get(idx as usize).is_none_or(|n| n.live) {
            return Err(TreeError::InvalidClass);
        }
        let parent = match parent {
            None => NONE,
            Some(p) if p != idx && is_live(nodes, p) => p,
            Some(_) => return Err(TreeError::InvalidClass),
        };
        if parent != NONE {
            let grand = nodes[parent as usize].parent;
            if grand != NONE && nodes[grand as usize].level < 2 {
                return Err(TreeError::TooDeep);
            }
            if nodes[parent as usize].level == 0 {
                self.make_inner(nodes, parent);
            }
            let p = &mut nodes[parent as usize];
            p.children = p.children.saturating_add(1);
        }
        let params = params.sanitized();
        nodes[idx as usize] = Node {
            live: true,
            parent,
            params,
            bucket: Bucket::full(params.buffer_ns, params.cbuffer_ns, now),
            ..Node::new()
        };
        Ok(())
    }

    /// Changes the parameters of live class `idx` (ignored for anything else); returns whether
    /// it is a leaf.
    ///
    /// Tokens are kept, capped at the new buffers (the next charge would cap them the same
    /// way). The mode is recomputed at the next charge or event, as in sch_htb. An active leaf
    /// whose priority changes moves to the rows and feeds of the new priority. An inner class
    /// keeps its quantum and priority, as in sch_htb (which sets them for leaves only): they
    /// count again if it becomes a leaf.
    pub(crate) fn change_class(
        &mut self,
        nodes: &mut [Node],
        idx: ClassIdx,
        params: &ClassParams,
        _now: i64,
    ) -> bool {
        if !is_live(nodes, idx) {
            return false;
        }
        let mut params = params.sanitized();
        let n = &nodes[idx as usize];
        let leaf = n.level == 0;
        if !leaf {
            params.quantum = n.params.quantum;
            params.prio = n.params.prio;
        }
        let relink = n.level == 0 && n.prio_activity != 0 && n.params.prio != params.prio;
        if relink {
            self.deactivate(nodes, idx);
        }
        let n = &mut nodes[idx as usize];
        n.params = params;
        n.bucket.tokens = n.bucket.tokens.min(params.buffer_ns);
        n.bucket.ctokens = n.bucket.ctokens.min(params.cbuffer_ns);
        if relink {
            self.activate(nodes, idx);
        }
        leaf
    }

    /// Deletes childless class `idx`; its slot becomes unused.
    ///
    /// Returns `Some(parent)` when the parent lost its last child and is a leaf again, with
    /// full buckets at `now` (the caller gives it a queue). Contract: `idx` is live (else
    /// `InvalidClass`); the caller has purged its queue.
    pub(crate) fn delete_class(
        &mut self,
        nodes: &mut [Node],
        idx: ClassIdx,
        now: i64,
    ) -> Result<Option<ClassIdx>, TreeError> {
        if !is_live(nodes, idx) {
            return Err(TreeError::InvalidClass);
        }
        if nodes[idx as usize].children != 0 {
            return Err(TreeError::HasChildren);
        }
        self.deactivate(nodes, idx);
        self.leave_wait_queue(nodes, idx);
        let parent = nodes[idx as usize].parent;
        nodes[idx as usize] = Node::new();
        if parent == NONE {
            return Ok(None);
        }
        let p = &mut nodes[parent as usize];
        p.children = p.children.saturating_sub(1);
        if p.children != 0 {
            return Ok(None);
        }
        self.make_leaf(nodes, parent, now);
        Ok(Some(parent))
    }

    /// The leaf's queue became non-empty. Idempotent; ignored for anything but a live leaf.
    #[inline]
    pub(crate) fn activate(&mut self, nodes: &mut [Node], leaf: ClassIdx) {
        if !is_live_leaf(nodes, leaf) || nodes[leaf as usize].prio_activity != 0 {
            return;
        }
        let n = &mut nodes[leaf as usize];
        n.prio_activity = 1 << n.prio();
        self.active_leaves = self.active_leaves.saturating_add(1);
        self.activate_prios(nodes, leaf);
    }

    /// The leaf's queue became empty. Idempotent and safe at any time, including between
    /// `pick` and `dequeued`/`skip` (a child qdisc's `qlen_notify`): cursors that pointed at
    /// the leaf move on to the next class.
    pub(crate) fn deactivate(&mut self, nodes: &mut [Node], leaf: ClassIdx) {
        if !is_live_leaf(nodes, leaf) || nodes[leaf as usize].prio_activity == 0 {
            return;
        }
        self.deactivate_prios(nodes, leaf);
        nodes[leaf as usize].prio_activity = 0;
        self.active_leaves = self.active_leaves.saturating_sub(1);
    }

    /// Runs due wait-queue events and picks the leaf to dequeue from (see [`Pick`]).
    ///
    /// Levels are tried from 0 up, each after running its due events (at most
    /// [`EVENT_BUDGET`] events per call in all), and within a level priorities from 0 up. A
    /// leaf that gave no packet in this round (`skip`) ends the search in its row: the row has
    /// been gone round, as in sch_htb.
    #[inline]
    pub(crate) fn pick(&mut self, nodes: &mut [Node], now: i64) -> Pick {
        if !self.continuing {
            self.round = self.round.wrapping_add(1);
        }
        self.continuing = false;
        if self.active_leaves == 0 {
            return Pick::Idle;
        }
        let mut budget = EVENT_BUDGET;
        let mut next_event = i64::MAX;
        for level in 0..MAX_DEPTH {
            if self.wait[level].first_key(nodes).is_some_and(|k| k <= now) {
                self.run_events(nodes, level, now, &mut budget);
            }
            if let Some(k) = self.wait[level].first_key(nodes) {
                next_event = next_event.min(k);
            }
            for prio in 0..NUM_PRIO {
                if self.rows[level][prio].is_empty() {
                    continue;
                }
                if let Some(leaf) = self.lookup_leaf(nodes, level, prio) {
                    if nodes[leaf as usize].skipped_in != self.round {
                        return Pick::Leaf {
                            class: leaf,
                            level: level as u8,
                        };
                    }
                }
            }
        }
        if next_event == i64::MAX {
            next_event = now.saturating_add(IDLE_RECHECK_NS);
        }
        Pick::Wait {
            // Events left over by the budget are due: `<= now` tells the caller to come back
            // at once.
            until_ns: next_event,
        }
    }

    /// The caller dequeued a packet of `bytes` (whole GSO length) from `leaf` as picked at
    /// `level`, at `now`; `leaf_empty` if its queue is now empty.
    ///
    /// Runs DRR (the leaf's deficit at `level` pays `bytes`; when it goes negative the leaf
    /// gets another quantum and its turn ends), charges the leaf and its ancestors as sch_htb's
    /// `htb_charge_class`, and moves them between rows, feeds and wait queues. The leaf may
    /// have been deactivated since `pick`; it is still charged. `charged` is told each class
    /// charged, the leaf first, then its ancestors up to the root, in the same walk (the
    /// caller counts the packet there); none unless `leaf` is a live leaf.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn dequeued(
        &mut self,
        nodes: &mut [Node],
        leaf: ClassIdx,
        level: u8,
        bytes: u32,
        now: i64,
        leaf_empty: bool,
        charged: impl FnMut(ClassIdx),
    ) {
        if !is_live_leaf(nodes, leaf) {
            return;
        }
        let level = usize::from(level).min(MAX_DEPTH - 1);
        let n = &mut nodes[leaf as usize];
        let deficit = n.deficit[level].saturating_sub(i64::from(bytes));
        if deficit < 0 {
            n.deficit[level] = deficit.saturating_add(i64::from(n.params.quantum));
            let prio = n.prio();
            self.end_turn(nodes, leaf, prio, true, true);
        } else {
            n.deficit[level] = deficit;
            let prio = n.prio();
            self.end_turn(nodes, leaf, prio, true, false);
        }
        if leaf_empty {
            self.deactivate(nodes, leaf);
        }
        self.charge(nodes, leaf, level, bytes, now, charged)
    }

    /// The picked `leaf` gave no packet although active (e.g. its child qdisc is netem holding
    /// packets back). Its turn ends so that others are served; it stays active, and `pick`
    /// passes over it until a pick that does not directly follow a `skip`.
    pub(crate) fn skip(&mut self, nodes: &mut [Node], leaf: ClassIdx, _level: u8) {
        if !is_live_leaf(nodes, leaf) {
            return;
        }
        self.continuing = true;
        let n = &mut nodes[leaf as usize];
        n.skipped_in = self.round;
        let prio = n.prio();
        // Only the leaf's own ring turns: the row then ends where it began.
        self.end_turn(nodes, leaf, prio, false, true);
    }

    /// Forgets all activity (qdisc reset): every class `CanSend` and inactive, rows, feeds and
    /// wait queues empty, deficits 0; tokens are kept as in sch_htb. `live` must yield every
    /// live class.
    pub(crate) fn reset(&mut self, nodes: &mut [Node], live: impl Iterator<Item = ClassIdx>) {
        for idx in live {
            if let Some(n) = nodes.get_mut(idx as usize) {
                n.prio_activity = 0;
                n.mode = Mode::CanSend;
                n.ring = RingLinks::new();
                n.heap = HeapLinks::new();
                n.feed = [Ring::EMPTY; NUM_PRIO];
                n.deficit = [0; MAX_DEPTH];
                n.skipped_in = 0;
                n.fed_in = [0; NUM_PRIO];
            }
        }
        self.rows = [[Ring::EMPTY; NUM_PRIO]; MAX_DEPTH];
        self.wait = [WaitQueue::new(); MAX_DEPTH];
        self.active_leaves = 0;
        self.continuing = false;
    }

    /// A leaf with a first child becomes an inner class (`parent` live, level 0).
    fn make_inner(&mut self, nodes: &mut [Node], parent: ClassIdx) {
        self.deactivate(nodes, parent);
        self.leave_wait_queue(nodes, parent);
        let grand = nodes[parent as usize].parent;
        let level = if grand == NONE {
            MAX_DEPTH as u8
        } else {
            nodes[grand as usize].level
        };
        let p = &mut nodes[parent as usize];
        p.mode = Mode::CanSend;
        p.level = level.saturating_sub(1);
        p.feed = [Ring::EMPTY; NUM_PRIO];
        p.deficit = [0; MAX_DEPTH];
    }

    /// An inner class without children becomes a leaf with full buckets (as sch_htb's
    /// `htb_parent_to_leaf`). Its feeds are empty, so it is in no row or feed.
    fn make_leaf(&mut self, nodes: &mut [Node], idx: ClassIdx, now: i64) {
        self.leave_wait_queue(nodes, idx);
        let n = &mut nodes[idx as usize];
        n.level = 0;
        n.feed = [Ring::EMPTY; NUM_PRIO];
        n.prio_activity = 0;
        n.deficit = [0; MAX_DEPTH];
        n.bucket = Bucket::full(n.params.buffer_ns, n.params.cbuffer_ns, now);
        n.mode = Mode::CanSend;
    }

    /// Takes `idx` out of its level's wait queue if it is in it (every class not `CanSend`).
    fn leave_wait_queue(&mut self, nodes: &mut [Node], idx: ClassIdx) {
        if nodes[idx as usize].mode != Mode::CanSend {
            let level = usize::from(nodes[idx as usize].level);
            self.wait[level].remove(nodes, idx);
        }
    }

    /// Queues `idx` (not `CanSend`) for an event `delay` ns from `now`; never at `now` itself,
    /// so that every event run makes progress.
    fn enter_wait_queue(&mut self, nodes: &mut [Node], idx: ClassIdx, delay: i64, now: i64) {
        let mut key = now.saturating_add(delay);
        if key <= now {
            key = now.saturating_add(1);
        }
        let n = &mut nodes[idx as usize];
        n.pq_key = key;
        let level = usize::from(n.level);
        self.wait[level].push(nodes, idx);
    }

    /// Links class `cl` (mode already set) for the priorities in its `prio_activity`: into the
    /// parent's feeds while it borrows, climbing while a parent's feed was empty before, and
    /// into its level's rows if the class reached may send (sch_htb's `htb_activate_prios`).
    fn activate_prios(&mut self, nodes: &mut [Node], mut cl: ClassIdx) {
        let mut mask = nodes[cl as usize].prio_activity;
        // A chain has at most MAX_DEPTH classes, so at most MAX_DEPTH - 1 climbs.
        for _ in 0..MAX_DEPTH {
            let n = &nodes[cl as usize];
            let parent = n.parent;
            if n.mode != Mode::MayBorrow || parent == NONE || mask == 0 {
                break;
            }
            for prio in prios(mask) {
                let mut feed = nodes[parent as usize].feed[prio];
                if !feed.is_empty() {
                    // The parent is already active in this priority: nothing to propagate.
                    mask &= !(1 << prio);
                }
                if feed.served_this_round(nodes[cl as usize].fed_in[prio]) {
                    links::insert_served(nodes, &mut feed, cl, prio);
                } else {
                    links::insert(nodes, &mut feed, cl, prio);
                }
                nodes[parent as usize].feed[prio] = feed;
            }
            nodes[parent as usize].prio_activity |= mask;
            cl = parent;
        }
        if nodes[cl as usize].mode == Mode::CanSend && mask != 0 {
            let level = usize::from(nodes[cl as usize].level);
            for prio in prios(mask) {
                links::insert(nodes, &mut self.rows[level][prio], cl, prio);
            }
        }
    }

    /// The inverse of [`Self::activate_prios`], with the mode the class was linked under
    /// (sch_htb's `htb_deactivate_prios`).
    fn deactivate_prios(&mut self, nodes: &mut [Node], mut cl: ClassIdx) {
        let mut mask = nodes[cl as usize].prio_activity;
        for _ in 0..MAX_DEPTH {
            let n = &nodes[cl as usize];
            let parent = n.parent;
            if n.mode != Mode::MayBorrow || parent == NONE || mask == 0 {
                break;
            }
            let linked = mask;
            mask = 0;
            for prio in prios(linked) {
                let mut feed = nodes[parent as usize].feed[prio];
                links::remove(nodes, &mut feed, cl, prio, true);
                nodes[parent as usize].feed[prio] = feed;
                if feed.is_empty() {
                    mask |= 1 << prio;
                }
            }
            nodes[parent as usize].prio_activity &= !mask;
            cl = parent;
        }
        if nodes[cl as usize].mode == Mode::CanSend && mask != 0 {
            let level = usize::from(nodes[cl as usize].level);
            for prio in prios(mask) {
                links::remove(nodes, &mut self.rows[level][prio], cl, prio, false);
            }
        }
    }

    /// Recomputes `cl`'s mode `diff` ns after its last update, relinking it if the mode
    /// changed, and returns the delay of its next event (sch_htb's `htb_change_class_mode`).
    ///
    /// Inlined: on the packet path it runs for every level of every packet, and the mode
    /// rarely changes; the relinking is out of line.
    #[inline(always)]
    fn change_mode(&mut self, nodes: &mut [Node], cl: ClassIdx, diff: i64) -> i64 {
        let n = &nodes[cl as usize];
        let old = n.mode;
        let (new, delay) = n.bucket.mode(&n.params, old, diff, self.hysteresis);
        if new != old {
            self.set_mode(nodes, cl, old, new);
        }
        delay
    }

    /// Moves `cl` from mode `old` to `new`, relinking it where it is active.
    #[inline(never)]
    fn set_mode(&mut self, nodes: &mut [Node], cl: ClassIdx, old: Mode, new: Mode) {
        if new == Mode::CantSend {
            let n = &mut nodes[cl as usize];
            n.overlimits = n.overlimits.wrapping_add(1);
            self.overlimits = self.overlimits.wrapping_add(1);
        }
        if nodes[cl as usize].prio_activity != 0 {
            if old != Mode::CantSend {
                self.deactivate_prios(nodes, cl);
            }
            nodes[cl as usize].mode = new;
            if new != Mode::CantSend {
                self.activate_prios(nodes, cl);
            }
        } else {
            nodes[cl as usize].mode = new;
        }
    }

    /// Runs the due events of `level` while `budget` lasts.
    fn run_events(&mut self, nodes: &mut [Node], level: usize, now: i64, budget: &mut u32) {
        while let Some(cl) = self.wait[level].first() {
            if nodes[cl as usize].pq_key > now || *budget == 0 {
                return;
            }
            *budget -= 1;
            self.wait[level].pop(nodes);
            let diff = nodes[cl as usize].bucket.elapsed(now);
            let delay = self.change_mode(nodes, cl, diff);
            if nodes[cl as usize].mode != Mode::CanSend {
                self.enter_wait_queue(nodes, cl, delay, now);
            }
        }
    }

    /// The leaf the cursors of row (`level`, `prio`) lead to.
    #[inline]
    fn lookup_leaf(&self, nodes: &[Node], level: usize, prio: usize) -> Option<ClassIdx> {
        let mut cl = self.rows[level][prio].cursor();
        // A path from a row to a leaf has at most MAX_DEPTH classes.
        for _ in 0..MAX_DEPTH {
            let n = nodes.get(cl as usize)?;
            if n.level == 0 {
                return Some(cl);
            }
            cl = n.feed[prio].cursor();
        }
        None
    }

    /// Records that `leaf` was served through its ring of `prio` and, with `climb`, the rings
    /// of its ancestors on the path from the row (their resume hints are spent, as sch_htb's
    /// lookup spends them); with `turn_over` the leaf's turn ends.
    ///
    /// As in sch_htb, an ancestor's turn ends when the ring below it finishes a round: every
    /// class in its feed has had a turn. Without that, an inner class at the cursor of a feed
    /// above the leaf's would keep it for as long as it has a borrowing leaf, and its siblings
    /// would get none of their common ancestor's spare bandwidth.
    ///
    /// Inlined for its common case, a leaf sending on its own rate within its turn: that only
    /// spends its row's resume hint (the call alone cost more than the work, ~60 instructions
    /// a packet).
    #[inline(always)]
    fn end_turn(
        &mut self,
        nodes: &mut [Node],
        leaf: ClassIdx,
        prio: usize,
        climb: bool,
        turn_over: bool,
    ) {
        let n = &nodes[leaf as usize];
        if !turn_over && n.mode == Mode::CanSend {
            if n.prio_activity & (1 << prio) != 0 && n.ring.is_linked(prio) {
                self.rows[usize::from(n.level)][prio].served();
            }
            return;
        }
        self.end_turn_path(nodes, leaf, prio, climb, turn_over);
    }

    /// [`Self::end_turn`] in general: the leaf's turn is over or it borrows.
    #[inline(never)]
    fn end_turn_path(
        &mut self,
        nodes: &mut [Node],
        leaf: ClassIdx,
        prio: usize,
        climb: bool,
        turn_over: bool,
    ) {
        let n = &nodes[leaf as usize];
        if turn_over && !n.ring.is_linked(prio) {
            // Emptied since the pick (qlen_notify): it left with the turn, which is over now,
            // so it must not resume it when it comes back.
            match n.mode {
                Mode::CanSend => self.rows[usize::from(n.level)][prio].forfeit(leaf),
                Mode::MayBorrow if n.parent != NONE => {
                    nodes[n.parent as usize].feed[prio].forfeit(leaf)
                }
                _ => {}
            }
            return;
        }
        let mut cl = leaf;
        let mut turn_over = turn_over;
        // A path from a leaf to its row has at most MAX_DEPTH classes.
        for _ in 0..MAX_DEPTH {
            let n = &nodes[cl as usize];
            if n.prio_activity & (1 << prio) == 0 || !n.ring.is_linked(prio) {
                return;
            }
            let (mode, level, parent) = (n.mode, usize::from(n.level), n.parent);
            if mode == Mode::CanSend {
                // In its level's row: the top of the path.
                let row = &mut self.rows[level][prio];
                if turn_over {
                    links::advance_past(nodes, row, cl, prio);
                } else {
                    row.served();
                }
                return;
            }
            if mode != Mode::MayBorrow || parent == NONE {
                return;
            }
            // The feed lives in the parent's slot: work on a copy.
            let mut feed = nodes[parent as usize].feed[prio];
            nodes[cl as usize].fed_in[prio] = feed.stamp();
            let round_over = if turn_over {
                links::advance_past(nodes, &mut feed, cl, prio)
            } else {
                feed.served();
                false
            };
            nodes[parent as usize].feed[prio] = feed;
            if !climb {
                return;
            }
            cl = parent;
            turn_over = round_over;
        }
    }

    /// Charges a packet of `bytes` sent by `leaf` at `level` to the leaf and its ancestors and
    /// updates their modes and wait-queue places (sch_htb's `htb_charge_class`), telling
    /// `charged` each class.
    ///
    /// Runs for every level of every packet: the loop only does the arithmetic; a mode change,
    /// rare under load, is handled out of line.
    #[inline]
    fn charge(
        &mut self,
        nodes: &mut [Node],
        leaf: ClassIdx,
        level: usize,
        bytes: u32,
        now: i64,
        mut charged: impl FnMut(ClassIdx),
    ) {
        let mut cl = leaf;
        // A path from a leaf to the root has at most MAX_DEPTH classes.
        for _ in 0..MAX_DEPTH {
            if cl == NONE {
                break;
            }
            charged(cl);
            let n = &mut nodes[cl as usize];
            let own_level = usize::from(n.level);
            let pays = own_level >= level;
            if own_level == level {
                n.lends = n.lends.wrapping_add(1);
            } else if !pays {
                n.borrows = n.borrows.wrapping_add(1);
            }
            n.bucket.charge(&n.params, bytes, now, pays);
            let old = n.mode;
            let delay = self.change_mode(nodes, cl, 0);
            let n = &nodes[cl as usize];
            let (new, parent) = (n.mode, n.parent);
            if new != old {
                self.requeue(nodes, cl, old, new, delay, now);
            }
            cl = parent;
        }
    }

    /// A charge moved `cl` from mode `old` to `new` (already relinked): moves it in or out of
    /// its level's wait queue.
    #[inline(never)]
    fn requeue(
        &mut self,
        nodes: &mut [Node],
        cl: ClassIdx,
        old: Mode,
        new: Mode,
        delay: i64,
        now: i64,
    ) {
        if old != Mode::CanSend {
            let level = usize::from(nodes[cl as usize].level);
            self.wait[level].remove(nodes, cl);
        }
        if new != Mode::CanSend {
            self.enter_wait_queue(nodes, cl, delay, now);
        }
    }

    /// Checks every structural invariant (tree, levels, activity, rows, feeds, cursors, wait
    /// queues, counters) and names the first one broken. O(n²) in the number of slots: for
    /// tests and debugging, never for the packet path.
    pub(crate) fn check_invariants(&self, nodes: &[Node]) -> Result<(), &'static str> {
        let len = nodes.len();
        let mut active = 0u32;
        let mut ring_members = [0usize; NUM_PRIO];
        let mut waiting = [0usize; MAX_DEPTH];
        for (i, n) in nodes.iter().enumerate() {
            let idx = i as ClassIdx;
            if !n.live {
                if n.ring != RingLinks::new() || n.heap != HeapLinks::new() || n.children != 0 {
                    return Err("unused slot is linked");
                }
                continue;
            }
            if usize::from(n.level) >= MAX_DEPTH || n.params.prio as usize >= NUM_PRIO {
                return Err("level or prio out of range");
            }
            if n.parent == NONE {
                if n.level != 0 && usize::from(n.level) != MAX_DEPTH - 1 {
                    return Err("class attached to the qdisc at a wrong level");
                }
            } else {
                let Some(p) = nodes.get(n.parent as usize).filter(|p| p.live) else {
                    return Err("parent is not a live class");
                };
                if n.level != 0 && n.level.checked_add(1) != Some(p.level) {
                    return Err("inner class not one level below its parent");
                }
                if p.level <= n.level {
                    return Err("parent not above its child");
                }
            }
            let children = nodes.iter().filter(|c| c.live && c.parent == idx).count();
            if children != n.children as usize {
                return Err("children count wrong");
            }
            if (n.children == 0) != (n.level == 0) {
                return Err("leaf iff no children broken");
            }
            if n.level == 0 {
                if n.prio_activity != 0 {
                    if n.prio_activity != 1 << n.params.prio {
                        return Err("active leaf's activity is not its prio");
                    }
                    active += 1;
                }
                if n.feed != [Ring::EMPTY; NUM_PRIO] {
                    return Err("leaf has a feed");
                }
            } else {
                for prio in 0..NUM_PRIO {
                    let bit = n.prio_activity & (1 << prio) != 0;
                    if bit == n.feed[prio].is_empty() {
                        return Err("inner activity does not match its feeds");
                    }
                }
            }
            let linkable =
                n.mode == Mode::CanSend || (n.mode == Mode::MayBorrow && n.parent != NONE);
            for (prio, members) in ring_members.iter_mut().enumerate() {
                let should = linkable && n.prio_activity & (1 << prio) != 0;
                if should != n.ring.is_linked(prio) {
                    return Err("ring membership does not match mode and activity");
                }
                if should {
                    *members += 1;
                }
            }
            if n.mode == Mode::CanSend {
                if n.heap != HeapLinks::new() {
                    return Err("CanSend class has wait-queue links");
                }
            } else {
                waiting[usize::from(n.level)] += 1;
                self.check_in_wait_queue(nodes, idx)?;
            }
        }
        if active != self.active_leaves {
            return Err("active leaf count wrong");
        }
        let mut found = [0usize; NUM_PRIO];
        for level in 0..MAX_DEPTH {
            for (prio, found) in found.iter_mut().enumerate() {
                *found += walk_ring(nodes, &self.rows[level][prio], prio, |m| {
                    usize::from(m.level) == level && m.mode == Mode::CanSend
                })?;
            }
        }
        for (i, n) in nodes.iter().enumerate() {
            if !n.live || n.level == 0 {
                continue;
            }
            for (prio, found) in found.iter_mut().enumerate() {
                *found += walk_ring(nodes, &n.feed[prio], prio, |m| {
                    m.parent as usize == i && m.mode == Mode::MayBorrow
                })?;
            }
        }
        if found != ring_members {
            return Err("rows and feeds do not hold exactly the classes that belong there");
        }
        for (level, q) in self.wait.iter().enumerate() {
            match q.first() {
                None if waiting[level] != 0 => return Err("waiting class missing from queue"),
                None => {}
                Some(root) => {
                    let ok = nodes.get(root as usize).is_some_and(|r| {
                        r.live
                            && usize::from(r.level) == level
                            && r.mode != Mode::CanSend
                            && r.heap.prev() == NONE
                    });
                    if !ok {
                        return Err("wait-queue root is wrong");
                    }
                }
            }
        }
        if len > NONE as usize {
            return Err("more slots than indices");
        }
        Ok(())
    }

    /// Checks that `idx` reaches its level's wait-queue root through consistent links, with
    /// keys never smaller than its heap parent's.
    fn check_in_wait_queue(&self, nodes: &[Node], idx: ClassIdx) -> Result<(), &'static str> {
        let level = usize::from(nodes[idx as usize].level);
        let root = self.wait[level].first().unwrap_or(NONE);
        let get = |i: ClassIdx| nodes.get(i as usize).ok_or("wait-queue link out of range");
        let mut x = idx;
        for _ in 0..=nodes.len() {
            let n = get(x)?;
            let l = n.heap;
            if l.child() != NONE && get(l.child())?.heap.prev() != x {
                return Err("wait-queue child link inconsistent");
            }
            if l.next() != NONE && get(l.next())?.heap.prev() != x {
                return Err("wait-queue sibling link inconsistent");
            }
            if x == root {
                return Ok(());
            }
            let prev = l.prev();
            if prev == NONE {
                return Err("waiting class is not in its level's queue");
            }
            let p = get(prev)?;
            if p.heap.child() == x {
                if p.pq_key > n.pq_key {
                    return Err("wait-queue heap order broken");
                }
            } else if p.heap.next() != x {
                return Err("wait-queue back link inconsistent");
            }
            if !p.live || usize::from(p.level) != level || p.mode == Mode::CanSend {
                return Err("wait queue holds a class that does not belong");
            }
            x = prev;
        }
        Err("wait-queue links loop")
    }
}

/// Walks `ring`, checking links, that every member satisfies `belongs`, that the round's head
/// is a member and the resume hint is not; returns the number of members.
fn walk_ring(
    nodes: &[Node],
    ring: &Ring,
    prio: usize,
    belongs: impl Fn(&Node) -> bool,
) -> Result<usize, &'static str> {
    let cursor = ring.cursor();
    if cursor == NONE {
        return if ring.head() == NONE {
            Ok(0)
        } else {
            Err("empty ring with a head")
        };
    }
    let (mut head_seen, mut x) = (false, cursor);
    for count in 1..=nodes.len() {
        head_seen |= x == ring.head();
        if x == ring.resume() {
            return Err("a ring member holds its ring's resume hint");
        }
        let n = nodes.get(x as usize).ok_or("ring link out of range")?;
        if !n.live || n.prio_activity & (1 << prio) == 0 || !belongs(n) {
            return Err("ring holds a class that does not belong");
        }
        let next = n.ring.next(prio);
        let back = nodes.get(next as usize).map(|m| m.ring.prev(prio));
        if back != Some(x) {
            return Err("ring links inconsistent");
        }
        if next == cursor {
            return if head_seen {
                Ok(count)
            } else {
                Err("ring's head is not a member")
            };
        }
        x = next;
    }
    Err("ring does not close")
}

/// Whether `idx` is a live class in the slice.
fn is_live(nodes: &[Node], idx: ClassIdx) -> bool {
    nodes.get(idx as usize).is_some_and(|n| n.live)
}

/// Whether `idx` is a live leaf in the slice.
fn is_live_leaf(nodes: &[Node], idx: ClassIdx) -> bool {
    nodes
        .get(idx as usize)
        .is_some_and(|n| n.live && n.level == 0)
}
