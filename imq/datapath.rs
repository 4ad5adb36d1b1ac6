// SPDX-License-Identifier: GPL-2.0

//! imq's datapath: packets from netfilter through the qdisc of an imq device and back.
//!
//! - The `IMQ` target (module `xt_IMQ`) tags a packet (`skb->cb` bytes 40..47, which the
//!   packet scheduler leaves alone): "divert at hook H to device N" (see `tag`).
//! - Our netfilter hook, in every network namespace at PREROUTING and POSTROUTING, takes tagged
//!   packets: it keeps what the rest of the chain will need (the hook state, `skb->cb`, the
//!   devices, timestamps...) in an [`Entry`] of a [`SlotTable`], writes the entry's id into the
//!   tag, and queues the packet on the device.
//! - The device hands what its qdisc releases to [`Divert::reinject`], which takes the entry
//!   back and resumes the netfilter chain right after our hook.
//! - Entries of packets a qdisc drops are released as the packet is freed (the `kfree_skb`
//!   tracepoint); a sweep releases entries older than [`MAX_AGE_S`] (their packet freed unseen,
//!   e.g. consumed by a leaf that segmented it).
//!
//! An entry belongs to whoever took it out of the table: a copy of a packet (whose tag names its
//! original's entry) never gets it, since the table checks the packet's identity once the entry
//! is taken, and puts back what was not the caller's. A copy the qdisc releases (netem's
//! duplicates) borrows the entry instead, for a copy of the state with references of its own. Entries live in the table's slots: no
//! allocation per packet.

use crate::knet::{
    netdev::{Device, DeviceSet, DeviceTable, QueueLimits, TxHandler},
    netfilter::{self, Hook, HookPacket, PernetHooks, SavedState, SkbMeta, Verdict},
    percpu::PerCpuCounters,
    skb::Skb,
    skb_watch::{DropWatch, DropWatchRegistration},
    slots::{Keyed, SlotTable, Taken},
    timer::{Periodic, PeriodicTimer},
};
use crate::tag::{self, ENTRY as TAG_ENTRY};
use kernel::{c_str, prelude::*, sync::Arc};

/// Entries older than this are presumed leaked (their packet freed untraced).
const MAX_AGE_S: u32 = 120;
/// How often the sweep runs.
const SWEEP_EVERY_MS: u32 = 10_000;
/// Most transmit queues a device may have (the `numqueues` parameter, `numtxqueues` of
/// `ip link add`), as the original IMQ.
pub(crate) const MAX_QUEUES: u32 = 32;

/// Where the hooks sit and how many devices there are.
pub(crate) struct Config {
    /// Number of devices.
    pub(crate) ndevs: u32,
    /// Transmit queues of each (and the default of `ip link add ... type imq`).
    pub(crate) nqueues: u32,
    /// Netfilter priority of the PREROUTING hook.
    pub(crate) pre_priority: i32,
    /// Netfilter priority of the POSTROUTING hook.
    pub(crate) post_priority: i32,
}

/// Counters, summed over devices.
#[derive(Default, Clone, Copy)]
pub(crate) struct Counters {
    /// Packets taken to a device.
    pub(crate) diverted: u64,
    /// Packets that continued after the device's qdisc.
    pub(crate) reinjected: u64,
    /// Tagged for a device that is down: left alone.
    pub(crate) passed_down: u64,
    /// Could not keep their state: left alone.
    pub(crate) no_state: u64,
    /// Dequeued without valid state (a copy or segment made by the qdisc, or expired): dropped.
    pub(crate) lost: u64,
    /// Sent to a device by anything else (the stack's own packets): dropped.
    pub(crate) foreign: u64,
    /// Their network namespace, device or hook went away: dropped.
    pub(crate) gone: u64,
    /// Dropped inside the qdisc (state released as the packet was freed).
    pub(crate) freed: u64,
    /// State released by the age sweep, or at teardown without its packet.
    pub(crate) expired: u64,
    /// Entries alive now.
    pub(crate) outstanding: u64,
    /// GSO packets queued as their segments.
    pub(crate) segmented: u64,
    /// Segments dropped for want of state.
    pub(crate) seg_dropped: u64,
    /// Copies made inside the qdisc (netem's duplicates, segments of a packet queued whole)
    /// reinjected with a copy of their original's state.
    pub(crate) copies: u64,
}

/// The counters' indexes in [`Divert::counters`] (per CPU: no cache line shared between CPUs
/// on the packet path).
mod counter {
    pub(super) const DIVERTED: usize = 0;
    pub(super) const REINJECTED: usize = 1;
    pub(super) const PASSED_DOWN: usize = 2;
    pub(super) const NO_STATE: usize = 3;
    pub(super) const LOST: usize = 4;
    pub(super) const FOREIGN: usize = 5;
    pub(super) const GONE: usize = 6;
    pub(super) const FREED: usize = 7;
    pub(super) const EXPIRED: usize = 8;
    pub(super) const SEGMENTED: usize = 9;
    pub(super) const SEG_DROPPED: usize = 10;
    pub(super) const COPIES: usize = 11;
    pub(super) const COUNT: usize = 12;
}

/// What the rest of the chain needs of a diverted packet, kept while it is queued.
struct Entry {
    /// The packet this state belongs to (its identity: the table's key).
    skb: usize,
    /// Its data buffer, which copies made by cloning share (and which stays theirs while they
    /// live): a copy borrows only the entry of its own original.
    buffer: usize,
    born: usize,
    /// The hook state, with references on its namespace and socket.
    state: SavedState,
    meta: SkbMeta,
}

impl Keyed for Entry {
    fn key(&self) -> usize {
        self.skb
    }

    fn born(&self) -> usize {
        self.born
    }
}

/// The state shared by the hooks, the devices, the drop watch and the sweep.
struct Divert {
    table: SlotTable<Entry>,
    devices: Arc<DeviceTable>,
    counters: PerCpuCounters<{ counter::COUNT }>,
}

impl Divert {
    /// Frees an entry taken out of the table (and its slot). Entries are not counted as they
    /// come and go: every kept entry is counted diverted, and every release as one of
    /// reinjected, gone, freed or expired, so `outstanding` is their difference (one per-CPU
    /// add a packet less).
    fn release(&self, e: Taken<'_, Entry>) {
        drop(e);
    }

    /// Keeps the state of `pkt` and returns its entry's id.
    fn keep(&self, pkt: &HookPacket<'_>) -> Option<u32> {
        // Made right into its slot.
        self.table.insert_with(|| {
            Some(Entry {
                skb: pkt.id(),
                buffer: pkt.buffer_id(),
                born: netfilter::jiffies(),
                state: pkt.save_state()?,
                meta: pkt.meta(),
            })
        })
    }

    /// Queues `pkt` on `dev` with its state kept; `Accept` if the state cannot be kept.
    fn divert(&self, mut pkt: HookPacket<'_>, dev: Device<'_>) -> Verdict {
        let Some(id) = self.keep(&pkt) else {
            self.counters.inc(counter::NO_STATE);
            return Verdict::Accept;
        };
        pkt.set_tag(TAG_ENTRY, id);
        self.counters.inc(counter::DIVERTED);
        pkt.queue_on(dev)
    }
}

impl Hook for Divert {
    fn wants(t: (u32, u32), hook: u8) -> bool {
        tag::is_divert(t, hook)
    }

    fn hook(&self, mut pkt: HookPacket<'_>) -> Verdict {
        let (_, devno) = pkt.tag();
        pkt.set_tag(0, 0);
        let Some(dev) = self
            .devices
            .get_at_hook(devno, &pkt)
            .filter(|d| d.running())
        else {
            // A device that is down (or deleted) lets packets pass unshaped, the chain going on.
            self.counters.inc(counter::PASSED_DOWN);
            return Verdict::Accept;
        };
        // A GSO packet the device does not take whole (its default) is queued as its segments,
        // as the original IMQ and NFQUEUE do: the qdisc's limits count packets, and its drops
        // are then one segment each, not the tens of a 64 KB packet at once (a burst of losses
        // TCP only recovers from by timeout).
        if pkt.needs_gso(dev) {
            match pkt.segment(dev, |seg| {
                let v = self.divert(seg, dev);
                if let Verdict::Accept = v {
                    // Dropped: a segment cannot go on through the chain by itself.
                    self.counters.inc(counter::SEG_DROPPED);
                }
                v
            }) {
                Ok(v) => {
                    self.counters.inc(counter::SEGMENTED);
                    return v;
                }
                Err(p) => pkt = p,
            }
        }
        self.divert(pkt, dev)
    }
}

impl TxHandler for Divert {
    /// Softirq: the packet left the device's qdisc; send it on where it left netfilter.
    fn reinject(&self, skb: Skb, dev: &Device<'_>) {
        let (magic, id) = skb.tag();
        if magic != TAG_ENTRY {
            // Not diverted by us: the stack's own packets (IPv6 autoconfiguration, ...).
            self.counters.inc(counter::FOREIGN);
            dev.count_tx_dropped();
            return;
        }
        let Some(e) = self.table.take(id, skb.id()) else {
            // A copy or segment made inside the qdisc goes on with a copy of its original's
            // state, as long as the original is queued still (with IFB every copy goes on).
            // The slot may hold another packet's entry by now: only the entry of a packet
            // sharing this one's data buffer is its original's.
            let buffer = skb.buffer_id();
            let copy = self
                .table
                .lend(id, |e| {
                    if e.buffer != buffer {
                        return None;
                    }
                    Some((e.state.try_clone()?, e.meta.clone()))
                })
                .flatten();
            match copy.map(|(state, meta)| netfilter::resume(skb, &state, &meta)) {
                Some(Ok(())) => self.counters.inc(counter::COPIES),
                Some(Err(())) => self.counters.inc(counter::LOST),
                // Its original went on or was dropped, or state expired: no way back.
                None => self.counters.inc(counter::LOST),
            }
            return;
        };
        match netfilter::resume(skb, &e.state, &e.meta) {
            Ok(()) => self.counters.inc(counter::REINJECTED),
            Err(()) => self.counters.inc(counter::GONE),
        }
        self.release(e);
    }
}

impl DropWatch for Divert {
    const MAGIC: u32 = TAG_ENTRY;

    /// A diverted packet was dropped (by a qdisc, or on a purge).
    fn dropped(&self, skb: usize, tag: (u32, u32)) {
        if let Some(e) = self.table.take(tag.1, skb) {
            self.counters.inc(counter::FREED);
            self.release(e);
        }
    }
}

impl Periodic for Divert {
    /// The age sweep.
    fn tick(&self) {
        let age = netfilter::msecs_to_jiffies(MAX_AGE_S * 1000);
        self.table.take_older(netfilter::jiffies(), age, |e| {
            self.counters.inc(counter::EXPIRED);
            self.release(e);
        });
    }
}

/// The devices `imq0..`, the hooks, the drop watch and the sweep.
pub(crate) struct Datapath {
    // Torn down in this order (see `teardown`).
    devices: Option<DeviceSet<Divert>>,
    hooks: Option<PernetHooks<Divert>>,
    watch: Option<DropWatchRegistration<Divert>>,
    sweep: Option<PeriodicTimer<Divert>>,
    divert: Arc<Divert>,
}

impl Datapath {
    /// Creates the devices and hooks of `config`.
    pub(crate) fn new(config: &Config) -> Result<Self> {
        let devices = DeviceTable::new(config.ndevs)?;
        let divert = Arc::new(
            Divert {
                table: SlotTable::new()?,
                devices: devices.clone(),
                counters: PerCpuCounters::new()?,
            },
            GFP_KERNEL,
        )?;
        let mut dp = Datapath {
            devices: None,
            hooks: None,
            watch: None,
            sweep: None,
            divert,
        };
        // Failing half-way, `dp` is dropped: `teardown` undoes what was done.
        let d = &dp.divert;
        dp.watch = Some(DropWatchRegistration::new(d.clone())?);
        let (fmt, kind) = (c_str!("imq%d"), c_str!("imq"));
        let limits = QueueLimits {
            default: config.nqueues,
            max: MAX_QUEUES,
            out_of_range: c_str!("imq devices have 1 to 32 transmit queues (numtxqueues)"),
        };
        dp.devices = Some(DeviceSet::new(fmt, kind, limits, &devices, d.clone())?);
        let (pre, post) = (config.pre_priority, config.post_priority);
        dp.hooks = Some(PernetHooks::new(pre, post, d.clone())?);
        dp.sweep = Some(PeriodicTimer::new(SWEEP_EVERY_MS, d.clone())?);
        Ok(dp)
    }

    /// Tears everything down and returns the counters as they stand afterwards, including the
    /// packets the devices' queues still held (dropped in the qdisc).
    pub(crate) fn finish(mut self) -> Counters {
        self.teardown();
        let c = &self.divert.counters;
        // Sums of the CPUs' copies.
        let get = |idx: usize| c.sum(idx) as u64;
        let (diverted, reinjected, gone, freed, expired) = (
            get(counter::DIVERTED),
            get(counter::REINJECTED),
            get(counter::GONE),
            get(counter::FREED),
            get(counter::EXPIRED),
        );
        Counters {
            diverted,
            reinjected,
            passed_down: get(counter::PASSED_DOWN),
            no_state: get(counter::NO_STATE),
            lost: get(counter::LOST),
            foreign: get(counter::FOREIGN),
            gone,
            freed,
            expired,
            // Kept and not released (see `release`).
            outstanding: diverted.wrapping_sub(reinjected + gone + freed + expired),
            segmented: get(counter::SEGMENTED),
            seg_dropped: get(counter::SEG_DROPPED),
            copies: get(counter::COPIES),
        }
    }

    /// No devices (their qdiscs drop what they hold, and the drop watch releases its state;
    /// what their tasklets release meanwhile still finds our hooks and is reinjected, not
    /// dropped as gone; tagged packets still on their way find no device and pass), then no
    /// hooks, then no drop watch and no sweep; then what is left in the table
    /// (state whose packet was freed unseen) is released as expired.
    fn teardown(&mut self) {
        drop(self.devices.take());
        drop(self.hooks.take());
        drop(self.watch.take());
        drop(self.sweep.take());
        let d = &*self.divert;
        d.table.take_all(|e| {
            d.counters.inc(counter::EXPIRED);
            d.release(e);
        });
    }
}

impl Drop for Datapath {
    fn drop(&mut self) {
        self.teardown();
    }
}
