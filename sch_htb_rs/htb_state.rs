// SPDX-License-Identifier: GPL-2.0

//! What one `htb_rs` qdisc holds: its classes, the scheduler core's per-class nodes, the
//! direct queue, and the qdisc-wide settings.

use crate::knet::{
    qdisc::{tc_h_maj, tc_h_min, ClassPtr, Locked, QdiscCell, QdiscInfo, SharedCell, TC_H_ROOT},
    qdisc_parts::{Child, ClassStats as KClassStats, Classified, Filters},
    skb::{Skb, SkbQueue},
};
use crate::sched::{ClassIdx, Node, Sched, MAX_DEPTH};
use core::{cell::Cell, pin::Pin, sync::atomic::AtomicU32};
use kernel::{prelude::*, rbtree::RBTree};

/// A class as the core knows it (by address): identity, filters, counters.
#[pin_data]
pub(crate) struct Class {
    pub(crate) classid: u32,
    /// The class's slot in [`State::slots`] and the scheduler's nodes.
    pub(crate) idx: ClassIdx,
    #[pin]
    pub(crate) filters: Filters,
    #[pin]
    pub(crate) stats: KClassStats,
    /// Filters pointing at this class (`bind_tcf`): it cannot be deleted while any do.
    pub(crate) filter_cnt: AtomicU32,
}

/// A slot of the class table.
pub(crate) struct Slot {
    pub(crate) class: Option<Pin<KBox<Class>>>,
    /// The leaf qdisc (leaves only).
    pub(crate) leaf: Option<Child>,
    /// Packets the leaf qdisc refused.
    pub(crate) drops: u32,
}

/// Class `idx` of `slots`: for code that holds `State::slots` apart from its other fields (the
/// dequeue path counts in classes while the scheduler has its nodes).
pub(crate) fn class_in(slots: &[Slot], idx: ClassIdx) -> Option<&Class> {
    slots.get(idx as usize)?.class.as_deref()
}

/// Mutable state of one qdisc, behind the root lock.
pub(crate) struct State {
    pub(crate) sched: Sched,
    /// Scheduler nodes, indexed like `slots`.
    pub(crate) nodes: KVec<Node>,
    pub(crate) slots: KVec<Slot>,
    /// Minor id of the default class (0: unclassified packets go to the direct queue).
    pub(crate) defcls: u32,
    pub(crate) rate2quantum: u32,
    pub(crate) direct_qlen: u32,
    pub(crate) direct: SkbQueue,
    pub(crate) direct_pkts: u32,
    /// Scheduler overlimits already added to the qdisc's statistics.
    pub(crate) overlimits_seen: u64,
    /// Where the default class was last found (checked before use).
    default_hint: Cell<ClassIdx>,
}

/// The per-qdisc data the kernel keeps for us.
#[pin_data]
pub(crate) struct Htb {
    /// Filters attached to the qdisc itself (`tc filter add ... parent 1:`).
    #[pin]
    pub(crate) filters: Filters,
    pub(crate) state: QdiscCell<State>,
    /// Class id to class: read by the core's `find` in any context, hence outside `state`.
    pub(crate) ids: SharedCell<Ids>,
}

/// A class as the id index names it.
#[derive(Clone, Copy)]
pub(crate) struct IdEntry {
    pub(crate) idx: ClassIdx,
    pub(crate) ptr: ClassPtr<Class>,
}

/// Class id to class.
pub(crate) type Ids = RBTree<u32, IdEntry>;

/// The slot of class `classid`.
pub(crate) fn find(ids: &Ids, classid: u32) -> Option<ClassIdx> {
    ids.get(&classid).map(|e| e.idx)
}

/// Where a packet goes.
pub(crate) enum Target {
    Leaf(ClassIdx),
    Direct,
    /// A filter action took the packet.
    Consumed,
    /// A filter action dropped it.
    Shot,
}

impl State {
    /// New state with these settings.
    pub(crate) fn new(hysteresis: bool, defcls: u32, r2q: u32, direct_qlen: u32) -> State {
        State {
            sched: Sched::new(hysteresis),
            nodes: KVec::new(),
            slots: KVec::new(),
            defcls,
            rate2quantum: r2q.max(1),
            direct_qlen,
            direct: SkbQueue::new(),
            direct_pkts: 0,
            overlimits_seen: 0,
            default_hint: Cell::new(0),
        }
    }

    pub(crate) fn slot(&self, idx: ClassIdx) -> Option<&Slot> {
        self.slots.get(idx as usize)
    }

    pub(crate) fn class(&self, idx: ClassIdx) -> Option<&Class> {
        class_in(&self.slots, idx)
    }

    /// The core's cookie of class `idx`.
    pub(crate) fn class_ptr(&self, idx: ClassIdx) -> Option<ClassPtr<Class>> {
        self.slot(idx)?
            .class
            .as_ref()
            .map(|c| ClassPtr::of(c.as_ref()))
    }

    pub(crate) fn is_leaf(&self, idx: ClassIdx) -> bool {
        self.nodes.get(idx as usize).is_some_and(|n| n.is_leaf())
    }

    /// A free slot, if one exists without growing the table.
    pub(crate) fn free_slot(&self) -> Option<ClassIdx> {
        if let Some(i) = self.slots.iter().position(|s| s.class.is_none()) {
            return ClassIdx::try_from(i).ok();
        }
        if self.slots.len() < self.slots.capacity() && self.nodes.len() < self.nodes.capacity() {
            return ClassIdx::try_from(self.slots.len()).ok();
        }
        None
    }

    /// The parent's class id as dumps show it.
    pub(crate) fn parent_id(&self, idx: ClassIdx) -> u32 {
        self.nodes
            .get(idx as usize)
            .and_then(|n| n.parent())
            .and_then(|p| self.class(p))
            .map_or(TC_H_ROOT, |c| c.classid)
    }

    /// sch_htb's `htb_classify`: the `skb->priority` shortcut, filters from the qdisc down
    /// through inner classes, then the default class, else the direct queue.
    #[inline(always)]
    pub(crate) fn classify(
        &self,
        ids: &Ids,
        qdisc_filters: &Filters,
        sch: &Locked<'_>,
        skb: &Skb,
    ) -> Target {
        let handle = sch.handle();
        let prio = skb.priority();
        if prio == handle {
            return Target::Direct;
        }
        let mut filters = qdisc_filters;
        // Only an id of this qdisc can name a class: spares a lookup for the usual 0.
        let own = tc_h_maj(prio) == tc_h_maj(handle) && tc_h_min(prio) != 0;
        if let Some(idx) = if own { find(ids, prio) } else { None } {
            if self.is_leaf(idx) {
                return Target::Leaf(idx);
            }
            if let Some(c) = self.class(idx) {
                filters = &c.filters;
            }
        }
        let mut hops = 0;
        loop {
            match filters.classify(sch, skb) {
                Classified::NoMatch => break,
                Classified::Consumed => return Target::Consumed,
                Classified::Shot => return Target::Shot,
                Classified::Class(classid) => {
                    if classid == handle {
                        return Target::Direct;
                    }
                    let Some(idx) = find(ids, classid) else {
                        break;
                    };
                    if self.is_leaf(idx) {
                        return Target::Leaf(idx);
                    }
                    let Some(c) = self.class(idx) else {
                        break;
                    };
                    filters = &c.filters;
                }
            }
            hops += 1;
            if hops > MAX_DEPTH {
                // A filter loop through inner classes: as sch_htb, give up on filters.
                break;
            }
        }
        match self.default_leaf(ids, handle) {
            Some(idx) => Target::Leaf(idx),
            None => Target::Direct,
        }
    }

    /// The default class if it is a leaf. Remembers where it was found: most packets of a
    /// tree without filters come here, and the remembered slot is checked by its class id.
    fn default_leaf(&self, ids: &Ids, handle: u32) -> Option<ClassIdx> {
        if self.defcls == 0 {
            return None;
        }
        let want = tc_h_maj(handle) | self.defcls;
        let hint = self.default_hint.get();
        if self.class(hint).is_some_and(|c| c.classid == want) {
            return self.is_leaf(hint).then_some(hint);
        }
        let idx = find(ids, want)?;
        self.default_hint.set(idx);
        self.is_leaf(idx).then_some(idx)
    }
}
