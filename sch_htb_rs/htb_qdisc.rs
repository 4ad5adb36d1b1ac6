// SPDX-License-Identifier: GPL-2.0

//! The `htb_rs` qdisc kind: the kernel's callbacks, as thin glue between the binding layer
//! (`knet`), the netlink attributes (`attrs`), the parameter rules (`config`) and the
//! scheduler core (`sched`).

use crate::attrs::{self, HtbGlob};
use crate::config;
use crate::htb_state::{class_in, find, Class, Htb, IdEntry, Ids, Slot, State, Target};
use crate::knet::{
    errno::{ENOBUFS, EOPNOTSUPP},
    netlink::{ClassHeader, ExtAck, NlMsg, StatsDump, Walker},
    qdisc::{
        now_ns, tc_h_maj, tc_h_min, ClassPtr, Control, Locked, Lookup, QdiscCell, QdiscInfo,
        QdiscOps, RateAttr, SharedCell, TreeLock, TCA_OPTIONS, TC_H_ROOT,
    },
    qdisc_parts::{BlockId, Child, ClassStats as KClassStats, Filters, QdiscId},
    skb::{Skb, ToFree, Xmit},
};
use crate::sched::{ClassIdx, Node, Pick};
use core::sync::atomic::{AtomicU32, Ordering};
use kernel::{
    c_str,
    error::code::{EBUSY, EEXIST, EINVAL, ENOENT, ERANGE},
    prelude::*,
    rbtree::RBTreeNodeReservation,
};

/// The kind.
pub(crate) struct HtbRs;

fn fail(extack: &mut ExtAck<'_>, msg: &str, err: Error) -> Error {
    extack.set(format_args!("{msg}"));
    err
}

/// A refused `TCA_OPTIONS`: its message, and sch_htb's errno for the same fault.
fn parse_error(extack: &mut ExtAck<'_>, e: attrs::ParseError) -> Error {
    fail(extack, e.msg, if e.out_of_range { ERANGE } else { EINVAL })
}

/// The `TCA_HTB_*` attributes of a class request. `TCA_HTB_OFFLOAD` there is ignored, as
/// sch_htb reads it only when a qdisc is made (found by htb-fuzz, seed 181804814).
fn parse_options(opt: &[u8], extack: &mut ExtAck<'_>) -> Result<attrs::HtbAttrs> {
    attrs::parse(opt).map_err(|e| parse_error(extack, e))
}

/// The `TCA_HTB_*` attributes of a qdisc request; offload (hardware HTB) is refused.
fn parse_qdisc_options(opt: &[u8], extack: &mut ExtAck<'_>) -> Result<attrs::HtbAttrs> {
    let a = parse_options(opt, extack)?;
    if a.offload {
        return Err(fail(
            extack,
            "hardware offload is not supported",
            EOPNOTSUPP,
        ));
    }
    Ok(a)
}

fn now() -> i64 {
    i64::try_from(now_ns()).unwrap_or(i64::MAX)
}

/// Settings of `tc qdisc add/change ... htb_rs [default N] [r2q N] [direct_qlen N]`.
struct QdiscSettings {
    defcls: u32,
    r2q: u32,
    direct_qlen: Option<u32>,
}

fn qdisc_settings(opt: Option<&[u8]>, extack: &mut ExtAck<'_>) -> Result<QdiscSettings> {
    // Without options (stock tc with no plugin) the defaults of tc's htb: r2q 10, default 0.
    let Some(opt) = opt else {
        return Ok(QdiscSettings {
            defcls: 0,
            r2q: 10,
            direct_qlen: None,
        });
    };
    let a = parse_qdisc_options(opt, extack)?;
    let Some(g) = a.init else {
        return Err(fail(extack, "TCA_HTB_INIT missing", EINVAL));
    };
    if g.version != attrs::HTB_PROTOVER {
        extack.set(format_args!(
            "need HTB protocol version {}, tc speaks {}",
            attrs::HTB_PROTOVER,
            g.version
        ));
        return Err(EINVAL);
    }
    Ok(QdiscSettings {
        defcls: g.defcls,
        r2q: config::rate2quantum(g.rate2quantum),
        direct_qlen: a.direct_qlen,
    })
}

impl HtbRs {
    /// Adds the scheduler's new overlimits to the qdisc's counter.
    fn sync_overlimits(st: &mut State, sch: &Locked<'_>) {
        let total = st.sched.overlimits();
        let new = total.saturating_sub(st.overlimits_seen);
        if new != 0 {
            st.overlimits_seen = total;
            sch.count_overlimits(u32::try_from(new).unwrap_or(u32::MAX));
        }
    }

    /// Makes room for one more class, allocating outside the root lock.
    fn reserve_slot(data: &Htb, sch: &Control<'_>) -> Result<ClassIdx> {
        let (len, cap) = {
            let lock = sch.tree_lock();
            let st = data.state.borrow(&lock).ok_or(EBUSY)?;
            if let Some(idx) = st.free_slot() {
                return Ok(idx);
            }
            (st.slots.len(), st.slots.capacity())
        };
        if len >= u32::MAX as usize - 1 {
            return Err(ENOBUFS);
        }
        let want = (cap * 2).max(8);
        let mut slots = KVec::with_capacity(want, GFP_KERNEL)?;
        let mut nodes = KVec::with_capacity(want, GFP_KERNEL)?;
        let lock = sch.tree_lock();
        let mut st = data.state.borrow(&lock).ok_or(EBUSY)?;
        // Moves only: the new vectors have room, so the atomic flag never allocates.
        for s in st.slots.drain_all() {
            slots.push(s, GFP_ATOMIC)?;
        }
        for n in st.nodes.drain_all() {
            nodes.push(n, GFP_ATOMIC)?;
        }
        st.slots = slots;
        st.nodes = nodes;
        st.free_slot().ok_or(ENOBUFS)
    }

    fn new_class(
        data: &Htb,
        sch: &Control<'_>,
        classid: u32,
        parent: Option<ClassIdx>,
        params: &crate::sched::ClassParams,
        rate: Option<&RateAttr>,
        extack: &mut ExtAck<'_>,
    ) -> Result<ClassPtr<Class>> {
        if classid == 0 || tc_h_maj(classid ^ sch.handle()) != 0 || tc_h_min(classid) == 0 {
            return Err(fail(extack, "invalid class id", EINVAL));
        }
        let idx = Self::reserve_slot(data, sch)?;
        // Everything that allocates or may sleep happens before the root lock is taken.
        let filters = Filters::new(sch, extack);
        let class = KBox::try_pin_init(
            try_pin_init!(Class {
                classid,
                idx,
                filters <- filters,
                stats <- KClassStats::new(),
                filter_cnt: AtomicU32::new(0),
            }? Error),
            GFP_KERNEL,
        )?;
        if rate.is_some() || crate::rate_est_default() {
            class
                .stats
                .set_estimator(sch, rate, false)
                .map_err(|e| fail(extack, "bad rate estimator", e))?;
        }
        let leaf = Child::new_pfifo(sch, classid, extack)?;
        let node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let ptr = ClassPtr::of(class.as_ref());
        let old_leaf;
        {
            let lock = sch.tree_lock();
            let mut st = data.state.borrow(&lock).ok_or(EBUSY)?;
            let mut ids = data.ids.write(sch, &lock).ok_or(EBUSY)?;
            if find(&ids, classid).is_some() {
                return Err(fail(extack, "class exists", EEXIST));
            }
            let st = &mut *st;
            if idx as usize == st.slots.len() {
                st.slots.push(
                    Slot {
                        class: None,
                        leaf: None,
                        drops: 0,
                    },
                    GFP_ATOMIC,
                )?;
                st.nodes.push(Node::new(), GFP_ATOMIC)?;
            }
            st.sched
                .add_class(&mut st.nodes, idx, parent, params, now())
                .map_err(|e| fail(extack, e.message(), EINVAL))?;
            // A leaf parent becomes inner: its queue goes (the ancestors are told).
            old_leaf = parent.and_then(|p| st.slots.get_mut(p as usize)?.leaf.take());
            if let Some(old) = &old_leaf {
                old.purge(&lock);
            }
            leaf.publish(sch);
            if let Some(slot) = st.slots.get_mut(idx as usize) {
                slot.class = Some(class);
                slot.leaf = Some(leaf);
                slot.drops = 0;
            }
            ids.insert(node.into_node(classid, IdEntry { idx, ptr }));
        }
        // The parent's old leaf qdisc is released outside the lock.
        drop(old_leaf);
        Ok(ptr)
    }
}

#[vtable]
impl QdiscOps for HtbRs {
    type Data = Htb;
    type Class = Class;
    const ID: &'static CStr = c_str!("htb_rs");

    fn init(
        sch: &Control<'_>,
        opt: Option<&[u8]>,
        extack: &mut ExtAck<'_>,
    ) -> Result<Pin<KBox<Htb>>> {
        let s = qdisc_settings(opt, extack)?;
        let direct_qlen = s.direct_qlen.unwrap_or_else(|| sch.tx_queue_len());
        let state = State::new(crate::hysteresis(), s.defcls, s.r2q, direct_qlen);
        let filters = Filters::new(sch, extack);
        KBox::try_pin_init(
            try_pin_init!(Htb {
                filters <- filters,
                state: QdiscCell::new(state),
                ids: SharedCell::new(Ids::new()),
            }? Error),
            GFP_KERNEL,
        )
    }

    // Inlined into the C entry points, as the packet path's two: one call fewer per packet.
    #[inline(always)]
    fn enqueue(data: &Htb, sch: &Locked<'_>, skb: Skb, to_free: &mut ToFree<'_>) -> Xmit {
        let Some(mut st) = data.state.borrow(sch) else {
            return to_free.drop_counted(skb);
        };
        let Some(ids) = data.ids.read(sch) else {
            return to_free.drop_counted(skb);
        };
        match st.classify(&ids, &data.filters, sch, &skb) {
            Target::Direct => {
                if st.direct.len() >= st.direct_qlen {
                    return to_free.drop_counted(skb);
                }
                // Leaves count in the same call as their enqueue (`enqueue_counted`).
                sch.count_enqueue(skb.pkt_len());
                st.direct.push(skb);
                st.direct_pkts = st.direct_pkts.wrapping_add(1);
                Xmit::SUCCESS
            }
            Target::Consumed => to_free.discard(skb, Xmit::STOLEN),
            Target::Shot => {
                sch.count_drop();
                to_free.discard(skb, Xmit::BYPASS)
            }
            Target::Leaf(idx) => {
                let st = &mut *st;
                let Some(slot) = st.slots.get_mut(idx as usize) else {
                    return to_free.drop_counted(skb);
                };
                let Some(leaf) = &slot.leaf else {
                    return to_free.drop_counted(skb);
                };
                let ret = leaf.enqueue_counted(sch, skb, to_free);
                if !ret.is_success() {
                    if ret.counts_as_drop() {
                        sch.count_drop();
                        slot.drops = slot.drops.wrapping_add(1);
                    }
                    return ret;
                }
                st.sched.activate(&mut st.nodes, idx);
                Xmit::SUCCESS
            }
        }
    }

    #[inline(always)]
    fn dequeue(data: &Htb, sch: &Locked<'_>) -> Option<Skb> {
        let mut st = data.state.borrow(sch)?;
        // The direct queue goes first, as in sch_htb: it has no shaping to wait for.
        if st.direct.len() != 0 {
            if let Some(skb) = st.direct.pop() {
                sch.count_dequeue(&skb);
                return Some(skb);
            }
        }
        if sch.qlen() == 0 {
            return None;
        }
        let now = now();
        let st = &mut *st;
        // Each round either sends, deactivates a leaf or skips one; bounded by the classes.
        for _ in 0..=st.slots.len() {
            match st.sched.pick(&mut st.nodes, now) {
                Pick::Idle => break,
                Pick::Wait { until_ns } => {
                    Self::sync_overlimits(st, sch);
                    if until_ns <= now {
                        // Events left over by the budget: a timer armed for now would fire at
                        // once from interrupt context, again and again while they last.
                        sch.schedule_soon();
                    } else {
                        sch.schedule_at(u64::try_from(until_ns).unwrap_or(0));
                    }
                    return None;
                }
                Pick::Leaf { class, level } => {
                    let leaf = st.slots.get(class as usize).and_then(|s| s.leaf.as_ref());
                    let Some(leaf) = leaf else {
                        st.sched.deactivate(&mut st.nodes, class);
                        continue;
                    };
                    // The leaf may call qlen_notify on us from here: that callback finds the
                    // state busy and leaves it alone; the queue length is checked below.
                    let out = leaf.dequeue(sch);
                    let empty = out.qlen_after == 0;
                    match out.skb {
                        Some(skb) => {
                            // Counted in each class charged (its leaf and every ancestor,
                            // sch_htb's bstats) in the charging walk, and as leaving the qdisc.
                            let (len, segs, slots) = (out.len, out.segs, &st.slots);
                            st.sched
                                .dequeued(&mut st.nodes, class, level, len, now, empty, |cl| {
                                    if let Some(c) = class_in(slots, cl) {
                                        c.stats.add_sent(sch, len, segs);
                                    }
                                });
                            sch.count_dequeued(len, segs);
                            Self::sync_overlimits(st, sch);
                            return Some(skb);
                        }
                        // Nothing queued (sch_htb warns here; an emptied leaf is not news).
                        None if empty => st.sched.deactivate(&mut st.nodes, class),
                        // A packet it holds back (netem): others go first.
                        None => st.sched.skip(&mut st.nodes, class, level),
                    }
                }
            }
        }
        Self::sync_overlimits(st, sch);
        if st.sched.active_leaves() != 0 {
            // The bound ran out with leaves still active: come back rather than stall.
            sch.schedule_soon();
        }
        None
    }

    fn reset(data: &Htb, sch: &Locked<'_>) {
        let Some(mut st) = data.state.borrow(sch) else {
            return;
        };
        let st = &mut *st;
        for slot in st.slots.iter() {
            if let Some(leaf) = &slot.leaf {
                leaf.reset(sch);
            }
        }
        let live = st
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.class.is_some())
            .filter_map(|(i, _)| ClassIdx::try_from(i).ok());
        st.sched.reset(&mut st.nodes, live);
        st.direct.purge();
    }

    fn destroy(data: &Htb, sch: &Control<'_>) {
        // Filters first: destroying them unbinds the classes they point to, which must still
        // exist (sch_htb's order).
        data.filters.put(sch);
        let slots = {
            let lock = sch.tree_lock();
            let Some(mut st) = data.state.borrow(&lock) else {
                return;
            };
            if let Some(mut ids) = data.ids.write(sch, &lock) {
                *ids = Ids::new();
            }
            st.nodes.clear();
            core::mem::replace(&mut st.slots, KVec::new())
        };
        for slot in slots.iter() {
            if let Some(c) = &slot.class {
                c.filters.put(sch);
            }
        }
        // Leaves and classes go now, outside the lock.
        drop(slots);
    }

    fn change(
        data: &Htb,
        sch: &Control<'_>,
        opt: Option<&[u8]>,
        extack: &mut ExtAck<'_>,
    ) -> Result {
        let s = qdisc_settings(opt, extack)?;
        let lock = sch.tree_lock();
        let mut st = data.state.borrow(&lock).ok_or(EBUSY)?;
        st.defcls = s.defcls;
        st.rate2quantum = s.r2q;
        if let Some(q) = s.direct_qlen {
            st.direct_qlen = q;
        }
        Ok(())
    }

    fn dump(data: &Htb, sch: &Control<'_>, msg: &mut NlMsg<'_>) -> Result {
        let (glob, direct_qlen) = {
            let lock = sch.tree_lock();
            let st = data.state.borrow(&lock).ok_or(EBUSY)?;
            let glob = HtbGlob {
                version: attrs::HTB_VER,
                rate2quantum: st.rate2quantum,
                defcls: st.defcls,
                debug: 0,
                direct_pkts: st.direct_pkts,
            };
            (glob, st.direct_qlen)
        };
        let nest = msg.nest(TCA_OPTIONS)?;
        let r = msg
            .put(attrs::TCA_HTB_INIT, &attrs::encode_glob(&glob))
            .and_then(|()| msg.put(attrs::TCA_HTB_DIRECT_QLEN, &direct_qlen.to_ne_bytes()));
        match r {
            Ok(()) => {
                msg.end(nest);
                Ok(())
            }
            Err(e) => {
                msg.cancel(nest);
                Err(e)
            }
        }
    }

    fn graft(
        data: &Htb,
        sch: &Control<'_>,
        cl: &Class,
        new: Option<Child>,
        extack: &mut ExtAck<'_>,
    ) -> Result<Option<Child>> {
        let new = match new {
            Some(q) => q,
            None => Child::new_pfifo(sch, cl.classid, extack)?,
        };
        let lock = sch.tree_lock();
        let mut st = data.state.borrow(&lock).ok_or(EBUSY)?;
        if !st.is_leaf(cl.idx) {
            drop(st);
            drop(lock);
            drop(new);
            return Err(fail(extack, "only leaf classes have a qdisc", EINVAL));
        }
        let st = &mut *st;
        let Some(slot) = st.slots.get_mut(cl.idx as usize) else {
            return Err(ENOENT);
        };
        let old = slot.leaf.replace(new);
        if let Some(old) = &old {
            // Tells the ancestors; our own qlen_notify finds the state busy, hence:
            old.purge(&lock);
        }
        st.sched.deactivate(&mut st.nodes, cl.idx);
        Ok(old)
    }

    fn leaf(data: &Htb, sch: &Control<'_>, cl: &Class) -> Option<QdiscId> {
        let lock = sch.tree_lock();
        let st = data.state.borrow(&lock)?;
        if !st.is_leaf(cl.idx) {
            return None;
        }
        st.slot(cl.idx)?.leaf.as_ref().map(Child::id)
    }

    fn qlen_notify(data: &Htb, sch: &Locked<'_>, cl: &Class) {
        // Busy means we are inside our own call that emptied the leaf; that code deactivates
        // the class itself (dequeue checks the queue length, graft and delete deactivate).
        if let Some(mut st) = data.state.borrow(sch) {
            let st = &mut *st;
            st.sched.deactivate(&mut st.nodes, cl.idx);
        }
    }

    fn find(data: &Htb, sch: &Lookup<'_>, classid: u32) -> Option<ClassPtr<Class>> {
        // Called from qdisc_tree_reduce_backlog with only the root lock held too: the token
        // allows reading the index and nothing else.
        data.ids.read(sch)?.get(&classid).map(|e| e.ptr)
    }

    fn change_class(
        data: &Htb,
        sch: &Control<'_>,
        classid: u32,
        parentid: u32,
        cl: Option<&Class>,
        opt: Option<&[u8]>,
        rate: Option<RateAttr>,
        extack: &mut ExtAck<'_>,
    ) -> Result<ClassPtr<Class>> {
        let Some(opt) = opt else {
            return Err(fail(extack, "class options missing", EINVAL));
        };
        let a = parse_options(opt, extack)?;
        let Some(parms) = a.parms else {
            return Err(fail(extack, "TCA_HTB_PARMS missing", EINVAL));
        };
        let (r2q, parent) = {
            let lock = sch.tree_lock();
            let st = data.state.borrow(&lock).ok_or(EBUSY)?;
            let parent = if parentid == TC_H_ROOT || parentid == sch.handle() {
                None
            } else {
                match data.ids.read(&lock).and_then(|ids| find(&ids, parentid)) {
                    Some(p) => Some(p),
                    None if cl.is_none() => {
                        return Err(fail(extack, "parent class not found", ENOENT))
                    }
                    None => None,
                }
            };
            (st.rate2quantum, parent)
        };
        let (params, note) = config::class_params(&parms, a.rate64, a.ceil64, r2q)
            .map_err(|m| fail(extack, m, EINVAL))?;
        // sch_htb sets (and warns about) the quantum of leaves only.
        let mut leaf = true;
        let ptr = match cl {
            None => Self::new_class(data, sch, classid, parent, &params, rate.as_ref(), extack)?,
            Some(c) => {
                if let Some(r) = &rate {
                    c.stats
                        .set_estimator(sch, Some(r), true)
                        .map_err(|e| fail(extack, "bad rate estimator", e))?;
                }
                let lock = sch.tree_lock();
                let mut st = data.state.borrow(&lock).ok_or(EBUSY)?;
                let st = &mut *st;
                leaf = st.sched.change_class(&mut st.nodes, c.idx, &params, now());
                st.class_ptr(c.idx).ok_or(ENOENT)?
            }
        };
        // Like sch_htb: a quantum derived from the rate and clamped is worth a warning.
        if let Some(n) = note.filter(|_| leaf) {
            extack.set(format_args!(
                "sch_htb_rs: quantum of class {:X} is {}. Consider r2q change.",
                classid,
                n.word()
            ));
        }
        Ok(ptr)
    }

    fn delete_class(
        data: &Htb,
        sch: &Control<'_>,
        cl: &Class,
        extack: &mut ExtAck<'_>,
    ) -> Result<Option<Pin<KBox<Class>>>> {
        if cl.filter_cnt.load(Ordering::Relaxed) != 0 {
            return Err(fail(extack, "HTB class in use", EBUSY));
        }
        // If the parent becomes a leaf again it needs a queue: made before the lock is taken.
        let parent_classid = {
            let lock = sch.tree_lock();
            let st = data.state.borrow(&lock).ok_or(EBUSY)?;
            let node = st.nodes.get(cl.idx as usize).ok_or(ENOENT)?;
            if node.children() != 0 {
                return Err(fail(extack, "HTB class in use", EBUSY));
            }
            let parent = node.parent();
            let only_child = parent
                .and_then(|p| st.nodes.get(p as usize))
                .is_some_and(|p| p.children() == 1);
            if only_child {
                parent.and_then(|p| st.class(p)).map(|c| c.classid)
            } else {
                None
            }
        };
        // Declared before the lock so that every early return releases it after the lock.
        let mut new_leaf = match parent_classid {
            Some(id) => Some(Child::new_pfifo(sch, id, extack)?),
            None => None,
        };
        let removed = {
            let lock = sch.tree_lock();
            let mut st = data.state.borrow(&lock).ok_or(EBUSY)?;
            let st = &mut *st;
            let became_leaf = st
                .sched
                .delete_class(&mut st.nodes, cl.idx, now())
                .map_err(|e| fail(extack, e.message(), EBUSY))?;
            let slot = st.slots.get_mut(cl.idx as usize).ok_or(ENOENT)?;
            if let Some(leaf) = &slot.leaf {
                leaf.purge(&lock);
            }
            let leaf = slot.leaf.take();
            let class = slot.class.take();
            let node = data
                .ids
                .write(sch, &lock)
                .and_then(|mut ids| ids.remove_node(&cl.classid));
            if let Some(p) = became_leaf {
                if let (Some(slot), Some(q)) = (st.slots.get_mut(p as usize), new_leaf.take()) {
                    q.publish(sch);
                    slot.leaf = Some(q);
                }
            }
            (leaf, node, class)
        };
        // The leaf queue and the tree node go outside the lock; the class itself (filters,
        // estimator) once the core is done with `cl`.
        let (leaf, node, class) = removed;
        drop(leaf);
        drop(node);
        Ok(class)
    }

    fn walk(data: &Htb, sch: &Control<'_>, walker: &mut Walker<'_, Class>) {
        // RTNL keeps the index as it is; the walker's callbacks take the lock themselves.
        let Some(ids) = data.ids.read(sch) else {
            return;
        };
        for (_, e) in ids.iter() {
            if !walker.visit_class(e.ptr) {
                break;
            }
        }
    }

    fn tcf_block(
        data: &Htb,
        _sch: &Control<'_>,
        cl: Option<&Class>,
        _extack: &mut ExtAck<'_>,
    ) -> Option<BlockId> {
        Some(match cl {
            Some(c) => c.filters.block(),
            None => data.filters.block(),
        })
    }

    fn bind_tcf(
        data: &Htb,
        sch: &Locked<'_>,
        _parent: Option<&Class>,
        classid: u32,
    ) -> Option<ClassPtr<Class>> {
        let st = data.state.borrow(sch)?;
        let ids = data.ids.read(sch)?;
        let idx = find(&ids, classid)?;
        let c = st.class(idx)?;
        c.filter_cnt.fetch_add(1, Ordering::Relaxed);
        st.class_ptr(idx)
    }

    fn unbind_tcf(_data: &Htb, cl: &Class) {
        let _ = cl
            .filter_cnt
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    fn dump_class(
        data: &Htb,
        sch: &Control<'_>,
        cl: &Class,
        msg: &mut NlMsg<'_>,
        hdr: &mut ClassHeader<'_>,
    ) -> Result {
        let (opt, rate64, ceil64, parent, info) = {
            let lock = sch.tree_lock();
            let st = data.state.borrow(&lock).ok_or(EBUSY)?;
            let node = st.nodes.get(cl.idx as usize).ok_or(ENOENT)?;
            let (opt, rate64, ceil64) = config::htb_opt(node.params(), node.level());
            let info = if node.is_leaf() {
                st.slot(cl.idx)
                    .and_then(|s| s.leaf.as_ref())
                    .map_or(0, Child::handle)
            } else {
                0
            };
            (opt, rate64, ceil64, st.parent_id(cl.idx), info)
        };
        hdr.set(parent, cl.classid, info);
        let nest = msg.nest(TCA_OPTIONS)?;
        let mut r = msg.put(attrs::TCA_HTB_PARMS, &attrs::encode_opt(&opt));
        if let (Ok(()), Some(v)) = (&r, rate64) {
            r = msg.put_u64(attrs::TCA_HTB_RATE64, v, attrs::TCA_HTB_PAD);
        }
        if let (Ok(()), Some(v)) = (&r, ceil64) {
            r = msg.put_u64(attrs::TCA_HTB_CEIL64, v, attrs::TCA_HTB_PAD);
        }
        match r {
            Ok(()) => {
                msg.end(nest);
                Ok(())
            }
            Err(e) => {
                msg.cancel(nest);
                Err(e)
            }
        }
    }

    fn dump_class_stats(
        data: &Htb,
        sch: &Control<'_>,
        cl: &Class,
        d: &mut StatsDump<'_>,
    ) -> Result {
        let lock: TreeLock<'_> = sch.tree_lock();
        let st = data.state.borrow(&lock).ok_or(EBUSY)?;
        let node = st.nodes.get(cl.idx as usize).ok_or(ENOENT)?;
        let s = node.stats();
        let x = attrs::encode_xstats(
            s.lends,
            s.borrows,
            config::xstats_ticks(s.tokens_ns),
            config::xstats_ticks(s.ctokens_ns),
        );
        let slot = st.slot(cl.idx).ok_or(ENOENT)?;
        let leaf = if node.is_leaf() {
            slot.leaf.as_ref()
        } else {
            None
        };
        cl.stats.dump(d, leaf, slot.drops, s.overlimits, &x)
    }
}
