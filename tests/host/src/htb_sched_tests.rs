//! The HTB scheduler core driven by a small simulator exactly as the qdisc glue drives it:
//! `activate` on enqueue, `pick` / `dequeued` / `skip` on dequeue, sleeping until
//! `Pick::Wait`. Rates are measured over simulated seconds and compared with HTB's known
//! answers (tc units: 1 mbit = 125000 bytes/s).

use crate::sch_htb_rs::bucket::Mode;
use crate::sch_htb_rs::config;
use crate::sch_htb_rs::links::{self, Ring, RingLinks, RingMember};
use crate::sch_htb_rs::rate::{LinkLayer, Rate};
use crate::sch_htb_rs::sched::{
    ClassIdx, ClassParams, Node, Pick, Sched, TreeError, EVENT_BUDGET, MAX_DEPTH, NONE,
};
use crate::sch_htb_rs::wait_queue::{HeapLinks, HeapMember, WaitQueue};
use proptest::prelude::*;
use std::collections::VecDeque;

const MBIT: u64 = 125_000;
const KBIT: u64 = 125;
const SEC: i64 = 1_000_000_000;
const PKT: u32 = 1500;

fn rate(bytes_per_sec: u64) -> Rate {
    Rate::new(bytes_per_sec, 0, 0, LinkLayer::Ethernet)
}

/// A class as `tc class add ... htb rate R ceil C` makes it: buffers of ~1600 bytes (tc's
/// default `rate/HZ + mtu` with a 1 GHz psched clock), quantum rate/r2q with r2q 10.
fn class(rate_bps: u64, ceil_bps: u64) -> ClassParams {
    let burst = |bps| rate(bps).time_ns(1600) as i64;
    ClassParams {
        rate: rate(rate_bps),
        ceil: rate(ceil_bps),
        buffer_ns: burst(rate_bps),
        cbuffer_ns: burst(ceil_bps),
        quantum: config::quantum(rate_bps, 0, 10).0,
        prio: 0,
    }
}

fn with(p: ClassParams, quantum: u32, prio: u8) -> ClassParams {
    ClassParams {
        quantum: if quantum == 0 { p.quantum } else { quantum },
        prio,
        ..p
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Load {
    /// Nothing arrives.
    Off,
    /// Always has packets.
    Backlogged,
    /// Constant bit rate (bytes/s), next arrival at the given time.
    Cbr(u64, i64),
    /// Has a packet but its child qdisc gives nothing (netem holding it back).
    Held,
}

struct Sim {
    sched: Sched,
    nodes: Vec<Node>,
    queue: Vec<VecDeque<u32>>,
    load: Vec<Load>,
    sent: Vec<u64>,
    live: Vec<ClassIdx>,
    now: i64,
    link: Option<Rate>,
    link_free: i64,
    /// Watchdog latency added to every `Wait`.
    timer_latency: i64,
    check_every: u64,
    steps: u64,
    /// Size of every packet that arrives.
    pkt: u32,
}

impl Sim {
    /// A simulator with a 100 mbit link, far faster than the classes under test.
    fn new(hysteresis: bool) -> Sim {
        Sim {
            sched: Sched::new(hysteresis),
            nodes: Vec::new(),
            queue: Vec::new(),
            load: Vec::new(),
            sent: Vec::new(),
            live: Vec::new(),
            now: 1_000 * SEC,
            link: Some(rate(100 * MBIT)),
            link_free: 0,
            timer_latency: 0,
            check_every: 997,
            steps: 0,
            pkt: PKT,
        }
    }

    fn add(&mut self, parent: Option<ClassIdx>, p: ClassParams) -> ClassIdx {
        let idx = self.nodes.len() as ClassIdx;
        self.nodes.push(Node::new());
        self.queue.push(VecDeque::new());
        self.load.push(Load::Off);
        self.sent.push(0);
        self.sched
            .add_class(&mut self.nodes, idx, parent, &p, self.now)
            .unwrap();
        self.live.push(idx);
        idx
    }

    fn set_load(&mut self, c: ClassIdx, load: Load) {
        self.load[c as usize] = load;
        self.feed();
    }

    /// Arrivals up to `now`; returns the next arrival time.
    fn feed(&mut self) -> i64 {
        let mut next = i64::MAX;
        let pkt = self.pkt;
        for c in 0..self.nodes.len() {
            let q = &mut self.queue[c];
            match &mut self.load[c] {
                Load::Off => {}
                Load::Backlogged | Load::Held => {
                    while q.len() < 8 {
                        q.push_back(pkt);
                    }
                }
                Load::Cbr(bps, at) => {
                    while *at <= self.now {
                        q.push_back(pkt);
                        *at += (u64::from(pkt) * 1_000_000_000 / *bps) as i64;
                    }
                    next = next.min(*at);
                }
            }
            if !q.is_empty() {
                self.sched.activate(&mut self.nodes, c as ClassIdx);
            }
        }
        next
    }

    fn run(&mut self, ns: i64) {
        let end = self.now + ns;
        let mut stalls = 0;
        while self.now < end {
            let next_arrival = self.feed();
            self.steps += 1;
            if self.steps.is_multiple_of(self.check_every) {
                self.sched.check_invariants(&self.nodes).unwrap();
            }
            if self.link_free > self.now {
                self.now = self.link_free.min(next_arrival).min(end);
                continue;
            }
            match self.sched.pick(&mut self.nodes, self.now) {
                Pick::Leaf { class, level } => {
                    let c = class as usize;
                    assert!(self.nodes[c].is_leaf() && self.nodes[c].is_active());
                    assert!(!self.queue[c].is_empty(), "picked an empty leaf");
                    if self.load[c] == Load::Held {
                        self.sched.skip(&mut self.nodes, class, level);
                        continue;
                    }
                    let len = self.queue[c].pop_front().unwrap();
                    self.sent[c] += u64::from(len);
                    let empty = self.queue[c].is_empty();
                    self.sched.dequeued(
                        &mut self.nodes,
                        class,
                        level,
                        len,
                        self.now,
                        empty,
                        |_| {},
                    );
                    if let Some(link) = self.link {
                        self.link_free = self.now + link.time_ns(len) as i64;
                    }
                    stalls = 0;
                }
                Pick::Wait { until_ns } => {
                    if until_ns <= self.now {
                        stalls += 1;
                        assert!(stalls < 1000, "no progress");
                        continue;
                    }
                    self.now = (until_ns + self.timer_latency).min(next_arrival).min(end);
                }
                Pick::Idle => self.now = next_arrival.min(end),
            }
        }
    }

    /// Runs `warmup` then measures every class's throughput (mbit/s) over `secs`.
    fn measure(&mut self, warmup: i64, secs: i64) -> Vec<f64> {
        self.run(warmup);
        self.sent.iter_mut().for_each(|s| *s = 0);
        self.run(secs * SEC);
        self.sched.check_invariants(&self.nodes).unwrap();
        let rates: Vec<f64> = self
            .sent
            .iter()
            .map(|&b| b as f64 * 8.0 / 1e6 / secs as f64)
            .collect();
        // HTB_SIM_PRINT=1 cargo test ... -- --nocapture shows the measured figures.
        if std::env::var_os("HTB_SIM_PRINT").is_some() {
            eprintln!("measured mbit/s by slot: {rates:.4?}");
        }
        rates
    }
}

#[track_caller]
fn assert_near(got: f64, want: f64, tolerance: f64) {
    assert!(
        (got - want).abs() <= want * tolerance,
        "got {got:.4} mbit/s, want {want:.4} ± {:.0}%",
        tolerance * 100.0
    );
}

#[test]
fn guaranteed_rates_when_all_are_backlogged() {
    let mut sim = Sim::new(false);
    let p = sim.add(None, class(10 * MBIT, 10 * MBIT));
    let a = sim.add(Some(p), class(2 * MBIT, 10 * MBIT));
    let b = sim.add(Some(p), class(3 * MBIT, 10 * MBIT));
    let c = sim.add(Some(p), class(5 * MBIT, 10 * MBIT));
    for x in [a, b, c] {
        sim.set_load(x, Load::Backlogged);
    }
    let r = sim.measure(SEC, 20);
    assert_near(r[a as usize], 2.0, 0.03);
    assert_near(r[b as usize], 3.0, 0.03);
    assert_near(r[c as usize], 5.0, 0.03);
}

/// The issue's tree: 1:1 rate 6mbit; 1:10 rate 5mbit; 1:20 rate 3mbit ceil 6mbit; 1:30 rate
/// 1kbit ceil 6mbit.
fn issue_tree(sim: &mut Sim) -> [ClassIdx; 3] {
    let p = sim.add(None, class(6 * MBIT, 6 * MBIT));
    let c10 = sim.add(Some(p), class(5 * MBIT, 5 * MBIT));
    let c20 = sim.add(Some(p), class(3 * MBIT, 6 * MBIT));
    let c30 = sim.add(Some(p), class(KBIT, 6 * MBIT));
    [c10, c20, c30]
}

#[test]
fn issue_example_all_busy_gets_the_guaranteed_rates() {
    // Leaves sending on their own rate never ask their parent, so guaranteed rates summing
    // above the parent's (8 > 6 mbit) are all honoured, and nothing is left to borrow: 1:30
    // gets its 1 kbit.
    let mut sim = Sim::new(false);
    let [c10, c20, c30] = issue_tree(&mut sim);
    for x in [c10, c20, c30] {
        sim.set_load(x, Load::Backlogged);
    }
    let r = sim.measure(SEC, 60);
    assert_near(r[c10 as usize], 5.0, 0.02);
    assert_near(r[c20 as usize], 3.0, 0.02);
    assert!(r[c30 as usize] < 0.004, "1:30 got {}", r[c30 as usize]);
    assert!(sim.nodes[0].stats().overlimits > 0, "parent over its ceil");
}

#[test]
fn issue_example_borrowing_up_to_the_parent() {
    let mut sim = Sim::new(false);
    let [_, c20, _] = issue_tree(&mut sim);
    sim.set_load(c20, Load::Backlogged);
    let r = sim.measure(SEC, 20);
    assert_near(r[c20 as usize], 6.0, 0.02);
}

#[test]
fn issue_example_unclassified_class_gets_whats_left() {
    // 1:10 cannot borrow (ceil = rate 5mbit); 1:30 takes the parent's remaining 1 mbit.
    let mut sim = Sim::new(false);
    let [c10, _, c30] = issue_tree(&mut sim);
    sim.set_load(c10, Load::Backlogged);
    sim.set_load(c30, Load::Backlogged);
    let r = sim.measure(SEC, 20);
    assert_near(r[c10 as usize], 5.0, 0.02);
    assert_near(r[c30 as usize], 1.0, 0.05);
}

#[test]
fn issue_example_light_load_leaves_the_rest_to_the_others() {
    // 1:10 offers 2 mbit (below its rate): it gets it all; 1:20 borrows the other 4.
    let mut sim = Sim::new(false);
    let [c10, c20, _] = issue_tree(&mut sim);
    let now = sim.now;
    sim.set_load(c10, Load::Cbr(2 * MBIT, now));
    sim.set_load(c20, Load::Backlogged);
    let r = sim.measure(SEC, 20);
    assert_near(r[c10 as usize], 2.0, 0.02);
    assert_near(r[c20 as usize], 4.0, 0.02);
}

#[test]
fn issue_example_spare_split_by_drr_turns() {
    // 1:20 (quantum 37500) and 1:30 (quantum 1000, below a packet: one packet a turn) share
    // the parent's spare 6 - 3 - 0.001 mbit 25:1.
    let mut sim = Sim::new(false);
    let [_, c20, c30] = issue_tree(&mut sim);
    sim.set_load(c20, Load::Backlogged);
    sim.set_load(c30, Load::Backlogged);
    let r = sim.measure(SEC, 60);
    let spare = 6.0 - 3.0 - 0.001;
    assert_near(r[c20 as usize], 3.0 + spare * 25.0 / 26.0, 0.02);
    assert_near(r[c30 as usize], 0.001 + spare / 26.0, 0.1);
}

#[test]
fn issue_example_spare_split_by_turns_with_gso_sized_packets() {
    // Packets of 60-64 KB (TCP with GSO) exceed both quanta: one packet a turn each, so 1:20
    // and 1:30 split the spare evenly. Each packet overdraws 1:20's and 1:30's 1600-byte
    // cburst, so both keep leaving the parent's feed: a class that leaves it holding the turn
    // must get the turn back when it returns, even if the feed was empty meanwhile, or the
    // other takes every turn it misses (3.0/3.0 mbit for some of these sizes).
    for pkt in [60_000, 61_000, 62_500, 64_000, 65_160, 65_536] {
        let mut sim = Sim::new(false);
        sim.pkt = pkt;
        let [_, c20, c30] = issue_tree(&mut sim);
        sim.set_load(c20, Load::Backlogged);
        sim.set_load(c30, Load::Backlogged);
        let r = sim.measure(SEC, 120);
        let spare = 6.0 - 3.0 - 0.001;
        assert_near(r[c20 as usize] + r[c30 as usize], 6.0, 0.02);
        assert_near(r[c20 as usize], 3.0 + spare / 2.0, 0.05);
        assert_near(r[c30 as usize], 0.001 + spare / 2.0, 0.1);
    }
}

#[test]
fn an_inner_class_turn_lasts_a_round_of_its_feed() {
    // As above, with two leaves under A: A's turn in R's feed lasts a round of A's feed (both
    // of its leaves), B's a round of B's (one leaf), so every leaf gets one turn of R's spare
    // (10 - 3 * 0.5 own - 0.5 of B's own rate = 8 Mbit/s) per round of R's feed: 8/3 each. b1
    // also has B's own 1 Mbit less its own 0.5; a1 and a2 use up A's with their own rates.
    // The leaves keep leaving their feeds for a moment (one packet on their own rate); one
    // that comes back in the round it was served in waits for the next round, or A, whose
    // turn is a round, took more than its share: before that rule 3.25/3.25/3.51 here, and
    // with a 1 ms watchdog latency (as under TCG) 3.46/3.46/3.08 (the VM: 3.39/3.39/3.14,
    // htb 3.30/3.30/3.40).
    for latency in [0, 1_000_000] {
        let mut sim = Sim::new(false);
        sim.timer_latency = latency;
        let r = sim.add(None, class(10 * MBIT, 10 * MBIT));
        let a = sim.add(Some(r), class(MBIT, 10 * MBIT));
        let b = sim.add(Some(r), class(MBIT, 10 * MBIT));
        let a1 = sim.add(Some(a), class(MBIT / 2, 10 * MBIT));
        let a2 = sim.add(Some(a), class(MBIT / 2, 10 * MBIT));
        let b1 = sim.add(Some(b), class(MBIT / 2, 10 * MBIT));
        for x in [a1, a2, b1] {
            sim.set_load(x, Load::Backlogged);
        }
        let got = sim.measure(SEC, 20);
        let [ga1, ga2, gb1] = [a1, a2, b1].map(|x| got[x as usize]);
        assert_near(ga1, 0.5 + 8.0 / 3.0, 0.01);
        assert_near(ga2, 0.5 + 8.0 / 3.0, 0.01);
        assert_near(gb1, 1.0 + 8.0 / 3.0, 0.01);
    }
}

#[test]
fn spare_bandwidth_in_proportion_of_quantum_5_to_3() {
    // Quanta from rate/r2q are 62500 and 37500: the spare 8 mbit splits 5:3.
    let mut sim = Sim::new(false);
    let p = sim.add(None, class(16 * MBIT, 16 * MBIT));
    let a = sim.add(Some(p), class(5 * MBIT, 16 * MBIT));
    let b = sim.add(Some(p), class(3 * MBIT, 16 * MBIT));
    sim.set_load(a, Load::Backlogged);
    sim.set_load(b, Load::Backlogged);
    let r = sim.measure(SEC, 20);
    assert_near(r[a as usize], 10.0, 0.02);
    assert_near(r[b as usize], 6.0, 0.02);
}

#[test]
fn ceil_caps_a_class_on_an_idle_link() {
    let mut sim = Sim::new(false);
    let p = sim.add(None, class(10 * MBIT, 10 * MBIT));
    let a = sim.add(Some(p), class(MBIT, 2 * MBIT));
    sim.set_load(a, Load::Backlogged);
    let r = sim.measure(SEC, 20);
    assert_near(r[a as usize], 2.0, 0.02);
    // Attached to the qdisc, a class has nobody to borrow from: its rate is all it gets.
    let mut sim = Sim::new(false);
    let a = sim.add(None, class(MBIT, 2 * MBIT));
    sim.set_load(a, Load::Backlogged);
    let r = sim.measure(SEC, 20);
    assert_near(r[a as usize], 1.0, 0.02);
}

#[test]
fn parent_rate_caps_the_sum() {
    let mut sim = Sim::new(false);
    let p = sim.add(None, class(4 * MBIT, 4 * MBIT));
    let a = sim.add(Some(p), class(MBIT, 10 * MBIT));
    let b = sim.add(Some(p), class(MBIT, 10 * MBIT));
    sim.set_load(a, Load::Backlogged);
    sim.set_load(b, Load::Backlogged);
    let r = sim.measure(SEC, 20);
    assert_near(r[a as usize] + r[b as usize], 4.0, 0.02);
    assert_near(r[a as usize], 2.0, 0.03);
    assert_near(r[b as usize], 2.0, 0.03);
}

#[test]
fn priority_zero_borrows_first() {
    let mut sim = Sim::new(false);
    let p = sim.add(None, class(10 * MBIT, 10 * MBIT));
    let hi = sim.add(Some(p), with(class(MBIT, 10 * MBIT), 0, 0));
    let lo = sim.add(Some(p), with(class(MBIT, 10 * MBIT), 0, 1));
    sim.set_load(hi, Load::Backlogged);
    sim.set_load(lo, Load::Backlogged);
    let r = sim.measure(SEC, 20);
    assert_near(r[hi as usize], 9.0, 0.02);
    assert_near(r[lo as usize], 1.0, 0.03);
}

#[test]
fn drr_by_quantum_among_same_priority() {
    let mut sim = Sim::new(false);
    let p = sim.add(None, class(10 * MBIT, 10 * MBIT));
    let a = sim.add(Some(p), with(class(MBIT, 10 * MBIT), 1500, 0));
    let b = sim.add(Some(p), with(class(MBIT, 10 * MBIT), 3000, 0));
    sim.set_load(a, Load::Backlogged);
    sim.set_load(b, Load::Backlogged);
    let r = sim.measure(SEC, 20);
    assert_near(r[a as usize], 1.0 + 8.0 / 3.0, 0.02);
    assert_near(r[b as usize], 1.0 + 16.0 / 3.0, 0.02);
}

#[test]
fn siblings_below_the_lending_level_borrow_as_in_sch_htb() {
    // R (level 7) lends to A and B (level 6), each with one leaf. As in sch_htb, an inner
    // class's turn in R's feed ends when its own feed has gone round (here: its one leaf has
    // spent its quantum), so A and B take turns and their leaves share R's spare evenly. (In
    // the VM, htb gave 1:20 and 1:30 6.06/5.95 and 5.93/5.77 Mbit/s on this tree; htb_rs
    // before this rule 10.57/1.16.)
    let mut sim = Sim::new(false);
    let r = sim.add(None, class(10 * MBIT, 10 * MBIT));
    let a = sim.add(Some(r), class(MBIT, 10 * MBIT));
    let b = sim.add(Some(r), class(MBIT, 10 * MBIT));
    let a1 = sim.add(Some(a), class(MBIT / 2, 10 * MBIT));
    let b1 = sim.add(Some(b), class(MBIT / 2, 10 * MBIT));
    assert_eq!(
        (
            sim.nodes[a as usize].level(),
            sim.nodes[a1 as usize].level()
        ),
        (6, 0)
    );
    sim.set_load(a1, Load::Backlogged);
    sim.set_load(b1, Load::Backlogged);
    let got = sim.measure(SEC, 20);
    assert_near(got[a1 as usize], 5.0, 0.03);
    assert_near(got[b1 as usize], 5.0, 0.03);
}

#[test]
fn hysteresis_still_converges_to_the_rates() {
    let mut sim = Sim::new(true);
    let p = sim.add(None, class(10 * MBIT, 10 * MBIT));
    let a = sim.add(Some(p), class(2 * MBIT, 2 * MBIT));
    let b = sim.add(Some(p), class(3 * MBIT, 10 * MBIT));
    sim.set_load(a, Load::Backlogged);
    sim.set_load(b, Load::Backlogged);
    let r = sim.measure(SEC, 20);
    assert_near(r[a as usize], 2.0, 0.03);
    assert_near(r[b as usize], 8.0, 0.03);
}

#[test]
fn watchdog_latency_with_a_1ms_burst_keeps_the_rate() {
    // A 1 ms burst (config::min_burst_ns for high rates) absorbs a 50 us timer latency.
    let mut sim = Sim::new(false);
    sim.link = Some(rate(10_000 * MBIT));
    sim.timer_latency = 50_000;
    let mut p = class(1000 * MBIT, 1000 * MBIT);
    p.buffer_ns = config::min_burst_ns(&p.rate).max(SEC / 1000);
    p.cbuffer_ns = p.buffer_ns;
    let a = sim.add(None, p);
    sim.set_load(a, Load::Backlogged);
    let r = sim.measure(SEC / 10, 2);
    assert_near(r[a as usize], 1000.0, 0.02);
    // tc's default ~1600-byte burst (13 us) loses most of every timer wait.
    let mut sim = Sim::new(false);
    sim.link = Some(rate(10_000 * MBIT));
    sim.timer_latency = 50_000;
    let a = sim.add(None, class(1000 * MBIT, 1000 * MBIT));
    sim.set_load(a, Load::Backlogged);
    let r = sim.measure(SEC / 10, 2);
    assert!(r[a as usize] < 800.0, "{}", r[a as usize]);
}

#[test]
fn eight_levels_and_too_deep_at_the_ninth() {
    let mut sim = Sim::new(false);
    let mut chain = vec![sim.add(None, class(4 * MBIT, 4 * MBIT))];
    for _ in 0..6 {
        let parent = *chain.last().unwrap();
        chain.push(sim.add(Some(parent), class(MBIT, 4 * MBIT)));
    }
    let leaf = sim.add(Some(*chain.last().unwrap()), class(MBIT / 2, 4 * MBIT));
    chain.push(leaf);
    let levels: Vec<u8> = chain
        .iter()
        .map(|&c| sim.nodes[c as usize].level())
        .collect();
    assert_eq!(levels, [7, 6, 5, 4, 3, 2, 1, 0]);
    let idx = sim.nodes.len() as ClassIdx;
    sim.nodes.push(Node::new());
    sim.queue.push(VecDeque::new());
    sim.load.push(Load::Off);
    sim.sent.push(0);
    let err = sim
        .sched
        .add_class(&mut sim.nodes, idx, Some(leaf), &class(MBIT, MBIT), sim.now)
        .unwrap_err();
    assert_eq!(err, TreeError::TooDeep);
    assert_eq!(err.message(), "tree is too deep");
    assert!(!sim.nodes[idx as usize].is_live());
    sim.sched.check_invariants(&sim.nodes).unwrap();
    // The leaf borrows through all seven ancestors up to the top class's 4 mbit.
    sim.set_load(leaf, Load::Backlogged);
    let r = sim.measure(SEC, 20);
    assert_near(r[leaf as usize], 4.0, 0.02);
}

#[test]
fn delete_refuses_parents_and_turns_the_last_parent_back_into_a_leaf() {
    let mut sim = Sim::new(false);
    let p = sim.add(None, class(4 * MBIT, 4 * MBIT));
    let a = sim.add(Some(p), class(MBIT, 4 * MBIT));
    let b = sim.add(Some(p), class(MBIT, 4 * MBIT));
    assert_eq!(
        (
            sim.nodes[p as usize].level(),
            sim.nodes[p as usize].children()
        ),
        (7, 2)
    );
    let now = sim.now;
    let err = sim.sched.delete_class(&mut sim.nodes, p, now).unwrap_err();
    assert_eq!(err, TreeError::HasChildren);
    assert_eq!(err.message(), "class has children");
    sim.set_load(a, Load::Backlogged);
    sim.set_load(b, Load::Backlogged);
    sim.run(SEC);
    // Deleting an active, borrowing leaf while the other keeps going.
    sim.queue[a as usize].clear();
    sim.load[a as usize] = Load::Off;
    let now = sim.now;
    assert_eq!(sim.sched.delete_class(&mut sim.nodes, a, now), Ok(None));
    sim.sched.check_invariants(&sim.nodes).unwrap();
    sim.live.retain(|&c| c != a);
    let r = sim.measure(0, 5);
    assert_near(r[b as usize], 4.0, 0.03);
    sim.queue[b as usize].clear();
    sim.load[b as usize] = Load::Off;
    let now = sim.now;
    assert_eq!(sim.sched.delete_class(&mut sim.nodes, b, now), Ok(Some(p)));
    let n = &sim.nodes[p as usize];
    assert!(n.is_leaf() && n.children() == 0 && n.parent().is_none());
    assert_eq!(
        n.stats().tokens_ns,
        n.params().buffer_ns,
        "full bucket again"
    );
    assert_eq!(n.mode(), Mode::CanSend);
    sim.sched.check_invariants(&sim.nodes).unwrap();
    // It works as a leaf (attached to the qdisc: its own 4 mbit).
    sim.set_load(p, Load::Backlogged);
    let r = sim.measure(0, 5);
    assert_near(r[p as usize], 4.0, 0.03);
    assert_eq!(
        sim.sched.delete_class(&mut sim.nodes, a, now),
        Err(TreeError::InvalidClass)
    );
}

#[test]
fn a_busy_leaf_becomes_inner_when_it_gets_a_child() {
    let mut sim = Sim::new(false);
    let p = sim.add(None, class(MBIT, MBIT));
    sim.set_load(p, Load::Backlogged);
    sim.run(SEC);
    assert!(sim.nodes[p as usize].is_active());
    // The glue purges the leaf's queue; the core deactivates it.
    sim.queue[p as usize].clear();
    sim.load[p as usize] = Load::Off;
    let c = sim.add(Some(p), class(MBIT / 2, MBIT));
    let n = &sim.nodes[p as usize];
    assert!(!n.is_leaf() && !n.is_active() && n.level() == 7 && n.mode() == Mode::CanSend);
    assert_eq!(sim.sched.active_leaves(), 0);
    sim.sched.check_invariants(&sim.nodes).unwrap();
    sim.set_load(c, Load::Backlogged);
    let r = sim.measure(SEC, 10);
    assert_near(r[c as usize], 1.0, 0.03);
}

#[test]
fn activate_and_deactivate_are_idempotent() {
    let mut sim = Sim::new(false);
    let p = sim.add(None, class(MBIT, MBIT));
    let a = sim.add(Some(p), class(MBIT, MBIT));
    let s = &mut sim.sched;
    s.activate(&mut sim.nodes, a);
    s.activate(&mut sim.nodes, a);
    assert_eq!(s.active_leaves(), 1);
    // Inner classes and unknown slots are ignored.
    s.activate(&mut sim.nodes, p);
    s.activate(&mut sim.nodes, 99);
    s.deactivate(&mut sim.nodes, NONE);
    assert_eq!(s.active_leaves(), 1);
    s.check_invariants(&sim.nodes).unwrap();
    s.deactivate(&mut sim.nodes, a);
    s.deactivate(&mut sim.nodes, a);
    assert_eq!(s.active_leaves(), 0);
    assert!(!sim.nodes[a as usize].is_active() && !sim.nodes[p as usize].is_active());
    s.check_invariants(&sim.nodes).unwrap();
    assert_eq!(s.pick(&mut sim.nodes, sim.now), Pick::Idle);
}

#[test]
fn deactivate_between_pick_and_dequeued() {
    // The child qdisc's qlen_notify empties the leaf while the glue is inside its dequeue.
    let mut sim = Sim::new(false);
    let p = sim.add(None, class(10 * MBIT, 10 * MBIT));
    let a = sim.add(Some(p), class(MBIT, 10 * MBIT));
    let b = sim.add(Some(p), class(MBIT, 10 * MBIT));
    sim.set_load(a, Load::Backlogged);
    sim.set_load(b, Load::Backlogged);
    sim.run(SEC);
    let mut hits = [0; 2];
    for _ in 0..200 {
        let Pick::Leaf { class, level } = sim.sched.pick(&mut sim.nodes, sim.now) else {
            sim.now += 2_000_000;
            continue;
        };
        let before = sim.nodes[class as usize].stats();
        sim.sched.deactivate(&mut sim.nodes, class);
        sim.sched.check_invariants(&sim.nodes).unwrap();
        sim.sched
            .dequeued(&mut sim.nodes, class, level, PKT, sim.now, true, |_| {});
        sim.sched.check_invariants(&sim.nodes).unwrap();
        let after = sim.nodes[class as usize].stats();
        assert_eq!(
            after.lends + after.borrows,
            before.lends + before.borrows + 1,
            "charged although deactivated"
        );
        hits[(class == b) as usize] += 1;
        sim.feed();
        sim.now += 2_000_000;
    }
    assert!(hits[0] > 50 && hits[1] > 50, "{hits:?}");
}

#[test]
fn dequeued_names_the_classes_it_charged_leaf_first() {
    let mut sim = Sim::new(false);
    let root = sim.add(None, class(10 * MBIT, 10 * MBIT));
    let mid = sim.add(Some(root), class(10 * MBIT, 10 * MBIT));
    let leaf = sim.add(Some(mid), class(MBIT, 10 * MBIT));
    // A sibling of the path, not charged.
    let _sibling = sim.add(Some(root), class(MBIT, 10 * MBIT));
    sim.sched.activate(&mut sim.nodes, leaf);
    let Pick::Leaf { class, level } = sim.sched.pick(&mut sim.nodes, sim.now) else {
        panic!("nothing picked");
    };
    assert_eq!(class, leaf);
    let mut charged = Vec::new();
    sim.sched
        .dequeued(&mut sim.nodes, class, level, PKT, sim.now, true, |c| {
            charged.push(c)
        });
    assert_eq!(charged, [leaf, mid, root]);
    // Nothing is charged, or named, for what is not a live leaf.
    charged.clear();
    for c in [mid, NONE, 99] {
        sim.sched
            .dequeued(&mut sim.nodes, c, 0, PKT, sim.now, false, |c| {
                charged.push(c)
            });
    }
    assert!(charged.is_empty(), "{charged:?}");
    sim.sched.check_invariants(&sim.nodes).unwrap();
}

#[test]
fn skip_lets_others_go_and_ends_the_row() {
    let mut sim = Sim::new(false);
    let p = sim.add(None, class(10 * MBIT, 10 * MBIT));
    let held = sim.add(Some(p), with(class(MBIT, 10 * MBIT), 0, 0));
    let other = sim.add(Some(p), with(class(MBIT, 10 * MBIT), 0, 0));
    let low = sim.add(Some(p), with(class(MBIT, 10 * MBIT), 0, 3));
    sim.set_load(held, Load::Held);
    // Alone and held: after one skip the pick waits instead of offering it again.
    let Pick::Leaf { class, level } = sim.sched.pick(&mut sim.nodes, sim.now) else {
        panic!()
    };
    assert_eq!(class, held);
    sim.sched.skip(&mut sim.nodes, class, level);
    assert!(matches!(
        sim.sched.pick(&mut sim.nodes, sim.now),
        Pick::Wait { until_ns } if until_ns > sim.now
    ));
    // A fresh dequeue offers it again.
    assert!(matches!(
        sim.sched.pick(&mut sim.nodes, sim.now),
        Pick::Leaf { class, .. } if class == held
    ));
    // Others (same priority, and a lower one) get the link while it is held.
    sim.set_load(other, Load::Backlogged);
    sim.set_load(low, Load::Backlogged);
    let r = sim.measure(SEC, 10);
    assert_eq!(r[held as usize], 0.0);
    assert_near(r[other as usize], 9.0, 0.03);
    assert_near(r[low as usize], 1.0, 0.03);
    // Released, it is served again.
    sim.set_load(held, Load::Backlogged);
    let r = sim.measure(SEC, 10);
    assert_near(r[held as usize], 1.0 + 7.0 / 2.0, 0.03);
}

#[test]
fn lends_borrows_and_overlimits() {
    let mut sim = Sim::new(false);
    let p = sim.add(None, class(10 * MBIT, 10 * MBIT));
    let a = sim.add(Some(p), class(MBIT, 2 * MBIT));
    sim.set_load(a, Load::Backlogged);
    sim.run(10 * SEC);
    let packets = (sim.sent[a as usize] / u64::from(PKT)) as u32;
    let (sa, sp) = (sim.nodes[a as usize].stats(), sim.nodes[p as usize].stats());
    // The leaf pays its own rate for half the packets (a "lend" at its level) and borrows
    // the other half from the parent, which counts them as lends.
    assert_eq!(sa.lends + sa.borrows, packets);
    assert!(
        (sa.lends as f64 / packets as f64 - 0.5).abs() < 0.03,
        "{sa:?}"
    );
    assert_eq!(sp.lends, sa.borrows);
    assert_eq!(sp.borrows, 0);
    // Every time it reaches its ceil it is CantSend.
    assert!(sa.overlimits > 100, "{sa:?}");
    // The parent only once, when the leaf's first burst left faster than 10 mbit.
    assert!(sp.overlimits <= 1, "{sp:?}");
    assert_eq!(
        sim.sched.overlimits(),
        u64::from(sa.overlimits + sp.overlimits)
    );
}

#[test]
fn change_class_keeps_tokens_and_relinks_a_new_priority() {
    let mut sim = Sim::new(false);
    let p = sim.add(None, class(10 * MBIT, 10 * MBIT));
    let a = sim.add(Some(p), with(class(MBIT, 10 * MBIT), 0, 1));
    let b = sim.add(Some(p), with(class(MBIT, 10 * MBIT), 0, 0));
    sim.set_load(a, Load::Backlogged);
    sim.set_load(b, Load::Backlogged);
    let r = sim.measure(SEC, 5);
    assert_near(r[b as usize], 9.0, 0.03);
    let now = sim.now;
    let mut smaller = with(class(MBIT, 10 * MBIT), 0, 0);
    smaller.buffer_ns = 1;
    sim.sched.change_class(&mut sim.nodes, a, &smaller, now);
    sim.sched
        .change_class(&mut sim.nodes, b, &with(class(MBIT, 10 * MBIT), 0, 5), now);
    sim.sched.check_invariants(&sim.nodes).unwrap();
    assert!(sim.nodes[a as usize].stats().tokens_ns <= 1);
    assert_eq!(sim.nodes[b as usize].params().prio, 5);
    let r = sim.measure(SEC, 5);
    assert_near(r[a as usize], 9.0, 0.03);
    // A priority past the last is the last.
    sim.sched.change_class(
        &mut sim.nodes,
        a,
        &with(class(MBIT, 10 * MBIT), 0, 200),
        now,
    );
    assert_eq!(sim.nodes[a as usize].params().prio, 7);
}

#[test]
fn an_inner_class_keeps_its_quantum_and_priority_as_in_sch_htb() {
    let mut sim = Sim::new(false);
    let p = sim.add(None, with(class(10 * MBIT, 10 * MBIT), 200_000, 3));
    let a = sim.add(Some(p), class(MBIT, 10 * MBIT));
    let now = sim.now;
    // p is inner now: a change sets its rates, not its quantum or priority.
    let leaf = sim.sched.change_class(
        &mut sim.nodes,
        p,
        &with(class(MBIT, 2 * MBIT), 1000, 6),
        now,
    );
    assert!(!leaf);
    let pp = sim.nodes[p as usize].params();
    assert_eq!((pp.quantum, pp.prio), (200_000, 3));
    assert_eq!(pp.rate, class(MBIT, 2 * MBIT).rate);
    // Once its child goes it is a leaf again, with what it kept.
    assert_eq!(sim.sched.delete_class(&mut sim.nodes, a, now), Ok(Some(p)));
    let pp = sim.nodes[p as usize].params();
    assert_eq!((pp.quantum, pp.prio), (200_000, 3));
    assert!(sim.sched.change_class(
        &mut sim.nodes,
        p,
        &with(class(MBIT, 2 * MBIT), 1000, 6),
        now
    ));
    let pp = sim.nodes[p as usize].params();
    assert_eq!((pp.quantum, pp.prio), (1000, 6));
    sim.sched.check_invariants(&sim.nodes).unwrap();
}

#[test]
fn reset_forgets_activity() {
    let mut sim = Sim::new(false);
    let p = sim.add(None, class(4 * MBIT, 4 * MBIT));
    let a = sim.add(Some(p), class(MBIT, 4 * MBIT));
    let b = sim.add(Some(p), with(class(MBIT, 2 * MBIT), 0, 2));
    sim.set_load(a, Load::Backlogged);
    sim.set_load(b, Load::Backlogged);
    sim.run(SEC);
    assert!(sim.nodes.iter().any(|n| n.mode() != Mode::CanSend));
    let live = sim.live.clone();
    sim.sched.reset(&mut sim.nodes, live.into_iter());
    sim.sched.check_invariants(&sim.nodes).unwrap();
    assert!(sim
        .nodes
        .iter()
        .all(|n| n.mode() == Mode::CanSend && !n.is_active()));
    assert_eq!(sim.sched.pick(&mut sim.nodes, sim.now), Pick::Idle);
    sim.queue.iter_mut().for_each(VecDeque::clear);
    let r = sim.measure(SEC, 10);
    assert_near(r[a as usize] + r[b as usize], 4.0, 0.03);
}

#[test]
fn event_storm_is_bounded_per_pick() {
    // More classes due at once than one pick may handle: picks still serve, and a pick that
    // finds nothing to send says "come back now" until the events are done.
    let mut sim = Sim::new(false);
    sim.link = None;
    let p = sim.add(None, class(100 * MBIT, 100 * MBIT));
    let n = EVENT_BUDGET as usize * 2 + 10;
    let leaves: Vec<ClassIdx> = (0..n)
        .map(|_| sim.add(Some(p), class(KBIT, KBIT)))
        .collect();
    sim.check_every = 50_000;
    for &l in &leaves {
        sim.load[l as usize] = Load::Backlogged;
    }
    sim.run(SEC / 10);
    // Every leaf sent its burst (two packets) and waits 11 s for its ceil.
    let first: Vec<u64> = leaves.iter().map(|&l| sim.sent[l as usize]).collect();
    assert!(
        first.iter().all(|&b| b == 2 * u64::from(PKT)),
        "{:?}",
        &first[..4]
    );
    sim.sched.check_invariants(&sim.nodes).unwrap();
    sim.now += 20 * SEC;
    let (mut served, mut now_waits) = (0, 0);
    loop {
        match sim.sched.pick(&mut sim.nodes, sim.now) {
            Pick::Leaf { class, level } => {
                sim.sched
                    .dequeued(&mut sim.nodes, class, level, PKT, sim.now, false, |_| {});
                sim.sent[class as usize] += u64::from(PKT);
                served += 1;
            }
            Pick::Wait { until_ns } if until_ns <= sim.now => now_waits += 1,
            Pick::Wait { .. } => break,
            Pick::Idle => panic!("leaves are active"),
        }
        assert!(now_waits < 10 && served < 10 * n);
    }
    sim.sched.check_invariants(&sim.nodes).unwrap();
    assert!(leaves
        .iter()
        .zip(&first)
        .all(|(&l, &b)| sim.sent[l as usize] > b));
}

// ---- the intrusive structures on their own ----

#[derive(Clone, Default)]
struct Item {
    ring: Option<RingLinks>,
    heap: Option<HeapLinks>,
    key: i64,
}

impl RingMember for Item {
    fn ring(&self) -> &RingLinks {
        self.ring.as_ref().unwrap()
    }
    fn ring_mut(&mut self) -> &mut RingLinks {
        self.ring.get_or_insert_with(RingLinks::new)
    }
}

impl HeapMember for Item {
    fn heap(&self) -> &HeapLinks {
        self.heap.as_ref().unwrap()
    }
    fn heap_mut(&mut self) -> &mut HeapLinks {
        self.heap.get_or_insert_with(HeapLinks::new)
    }
    fn key(&self) -> i64 {
        self.key
    }
}

proptest! {
    /// The wait queue pops in key order whatever the interleaving of pushes and removals.
    #[test]
    fn wait_queue_matches_a_sorted_model(ops in prop::collection::vec((0u8..3, 0usize..40, -50i64..50), 1..300)) {
        let mut items = vec![Item::default(); 40];
        for it in &mut items {
            it.heap = Some(HeapLinks::new());
        }
        let mut q = WaitQueue::new();
        let mut model: Vec<(i64, usize)> = Vec::new();
        for (op, i, key) in ops {
            let queued = model.iter().any(|&(_, j)| j == i);
            match op {
                0 if !queued => {
                    items[i].key = key;
                    q.push(&mut items, i as ClassIdx);
                    model.push((key, i));
                }
                1 if queued => {
                    q.remove(&mut items, i as ClassIdx);
                    model.retain(|&(_, j)| j != i);
                }
                _ => {
                    let got = q.pop(&mut items);
                    let min = model.iter().map(|&(k, _)| k).min();
                    prop_assert_eq!(got.map(|g| items[g as usize].key), min);
                    if let Some(g) = got {
                        model.retain(|&(_, j)| j != g as usize);
                    }
                }
            }
            prop_assert_eq!(q.first_key(&items), model.iter().map(|&(k, _)| k).min());
        }
        while let Some(g) = q.pop(&mut items) {
            let k = items[g as usize].key;
            prop_assert!(model.iter().all(|&(m, _)| m >= k));
            model.retain(|&(_, j)| j != g as usize);
        }
        prop_assert!(model.is_empty());
    }

    /// The resume hint (feeds): kept across an empty ring, not taken over by a class that
    /// merely got the cursor, spent when the ring serves anyone; rows keep none.
    #[test]
    fn ring_resume_hint_follows_sch_htb_last_ptr_id(order in 0u8..2) {
        let mut items = vec![Item::default(); 3];
        for it in &mut items {
            it.ring = Some(RingLinks::new());
        }
        let (a, b, prio) = (0, 1, 2);
        let mut ring = Ring::EMPTY;
        links::insert(&mut items, &mut ring, a, prio);
        links::insert(&mut items, &mut ring, b, prio);
        prop_assert_eq!(ring.cursor(), a);
        // a leaves with the turn, then b with the cursor it got from a: the feed is empty.
        links::remove(&mut items, &mut ring, a, prio, true);
        links::remove(&mut items, &mut ring, b, prio, true);
        prop_assert!(ring.is_empty());
        prop_assert_eq!(ring.resume(), a);
        // Whichever comes back first, a has the turn once both are back.
        let (first, second) = if order == 0 { (a, b) } else { (b, a) };
        links::insert(&mut items, &mut ring, first, prio);
        links::insert(&mut items, &mut ring, second, prio);
        prop_assert_eq!(ring.cursor(), a);
        prop_assert_eq!(ring.resume(), NONE);
        // a began the round when it left, so b's turn is still to come in it.
        prop_assert_eq!(ring.head(), a);
        links::advance_past(&items, &mut ring, a, prio);
        prop_assert_eq!(ring.cursor(), b);
        // Served meanwhile: the hint is spent and a goes to the back.
        links::remove(&mut items, &mut ring, b, prio, true);
        prop_assert_eq!((ring.cursor(), ring.resume()), (a, b));
        links::advance_past(&items, &mut ring, a, prio);
        links::insert(&mut items, &mut ring, b, prio);
        prop_assert_eq!(ring.cursor(), a);
        // A row: no hint.
        links::remove(&mut items, &mut ring, a, prio, false);
        prop_assert_eq!((ring.cursor(), ring.resume()), (b, NONE));
        links::insert(&mut items, &mut ring, a, prio);
        prop_assert_eq!(ring.cursor(), b);
    }

    /// A ring serves its members round-robin from the cursor, and removals keep it closed.
    #[test]
    fn ring_matches_a_deque_model(ops in prop::collection::vec((0u8..3, 0usize..12), 1..200)) {
        let mut items = vec![Item::default(); 12];
        for it in &mut items {
            it.ring = Some(RingLinks::new());
        }
        let prio = 3;
        let mut ring = Ring::EMPTY;
        // Model: members in service order starting at the cursor.
        let mut model: VecDeque<usize> = VecDeque::new();
        for (op, i) in ops {
            match op {
                0 if !model.contains(&i) => {
                    links::insert(&mut items, &mut ring, i as ClassIdx, prio);
                    model.push_back(i);
                }
                1 => {
                    links::remove(&mut items, &mut ring, i as ClassIdx, prio, true);
                    model.retain(|&j| j != i);
                    // No resuming in this model: the ring serves someone at once.
                    ring.served();
                }
                _ => {
                    let cursor = ring.cursor();
                    links::advance_past(&items, &mut ring, cursor, prio);
                    model.rotate_left(usize::from(!model.is_empty()));
                }
            }
            let cursor = ring.cursor();
            prop_assert_eq!(cursor, model.front().map_or(NONE, |&c| c as ClassIdx));
            let mut x = cursor;
            for &m in &model {
                prop_assert_eq!(x, m as ClassIdx);
                x = items[x as usize].ring().next(prio);
            }
            prop_assert_eq!(x, cursor);
        }
    }
}

// ---- random operation sequences against the invariants ----

#[derive(Clone, Debug)]
enum Op {
    Add {
        slot: usize,
        parent: Option<usize>,
        params: ClassParams,
    },
    Change {
        slot: usize,
        params: ClassParams,
    },
    Delete {
        slot: usize,
    },
    Activate {
        slot: usize,
    },
    Deactivate {
        slot: usize,
    },
    /// Pick, then dequeue `bytes` (leaf empty afterwards if `empty`), or skip if `bytes` is 0,
    /// optionally with a qlen_notify in between.
    Serve {
        bytes: u32,
        empty: bool,
        notify: bool,
    },
    Advance {
        ns: i64,
    },
    Reset,
}

const SLOTS: usize = 12;

fn any_rate() -> impl Strategy<Value = u64> {
    prop_oneof![
        1u64..1_000,
        1_000u64..1_000_000_000,
        Just(u64::MAX),
        Just(u64::from(u32::MAX)),
    ]
}

fn any_params() -> impl Strategy<Value = ClassParams> {
    (
        any_rate(),
        any_rate(),
        prop_oneof![
            0i64..10_000_000,
            Just(0),
            Just(i64::from(u32::MAX) << 6),
            Just(i64::MAX)
        ],
        prop_oneof![0i64..10_000_000, Just(i64::MAX), Just(-5i64)],
        prop_oneof![1u32..100_000, Just(u32::MAX)],
        0u8..12,
        0u16..100,
        any::<bool>(),
    )
        .prop_map(|(r, c, b, cb, quantum, prio, overhead, atm)| {
            let link = if atm {
                LinkLayer::Atm
            } else {
                LinkLayer::Ethernet
            };
            ClassParams {
                rate: Rate::new(r, overhead, 0, link),
                ceil: Rate::new(c, 0, 64, link),
                buffer_ns: b,
                cbuffer_ns: cb,
                quantum,
                prio,
            }
        })
}

fn any_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..SLOTS, prop::option::of(0..SLOTS), any_params())
            .prop_map(|(slot, parent, params)| Op::Add { slot, parent, params }),
        1 => (0..SLOTS, any_params()).prop_map(|(slot, params)| Op::Change { slot, params }),
        1 => (0..SLOTS).prop_map(|slot| Op::Delete { slot }),
        3 => (0..SLOTS).prop_map(|slot| Op::Activate { slot }),
        1 => (0..SLOTS).prop_map(|slot| Op::Deactivate { slot }),
        6 => (prop_oneof![Just(0u32), 1u32..70_000, Just(u32::MAX)], any::<bool>(), prop::bool::weighted(0.1))
            .prop_map(|(bytes, empty, notify)| Op::Serve { bytes, empty, notify }),
        3 => prop_oneof![0i64..2_000_000, 0i64..100 * SEC, Just(61 * SEC)].prop_map(|ns| Op::Advance { ns }),
        1 => Just(Op::Reset),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_the_invariants(
        hysteresis in any::<bool>(),
        start in prop_oneof![Just(0i64), 0i64..(1 << 62)],
        ops in prop::collection::vec(any_op(), 1..120),
    ) {
        let mut sched = Sched::new(hysteresis);
        let mut nodes = vec![Node::new(); SLOTS];
        let mut now = start;
        let mut idle_since = now;
        for op in ops {
            let live = |nodes: &[Node]| (0..SLOTS as ClassIdx).filter(|&i| nodes[i as usize].is_live()).collect::<Vec<_>>();
            match op {
                Op::Add { slot, parent, params } => {
                    let before = nodes[slot].is_live();
                    let res = sched.add_class(&mut nodes, slot as ClassIdx, parent.map(|p| p as ClassIdx), &params, now);
                    prop_assert_eq!(res.is_ok(), nodes[slot].is_live() && !before);
                }
                Op::Change { slot, params } => {
                    let leaf = nodes[slot].is_live() && nodes[slot].is_leaf();
                    prop_assert_eq!(sched.change_class(&mut nodes, slot as ClassIdx, &params, now), leaf);
                }
                Op::Delete { slot } => {
                    let had_children = nodes[slot].children() > 0;
                    match sched.delete_class(&mut nodes, slot as ClassIdx, now) {
                        Ok(Some(p)) => prop_assert!(nodes[p as usize].is_leaf()),
                        Ok(None) => {}
                        Err(TreeError::HasChildren) => prop_assert!(had_children),
                        Err(e) => prop_assert_eq!(e, TreeError::InvalidClass),
                    }
                }
                Op::Activate { slot } => sched.activate(&mut nodes, slot as ClassIdx),
                Op::Deactivate { slot } => sched.deactivate(&mut nodes, slot as ClassIdx),
                Op::Serve { bytes, empty, notify } => match sched.pick(&mut nodes, now) {
                    Pick::Leaf { class, level } => {
                        let n = &nodes[class as usize];
                        prop_assert!(n.is_live() && n.is_leaf() && n.is_active());
                        prop_assert!(usize::from(level) < MAX_DEPTH);
                        if notify {
                            sched.deactivate(&mut nodes, class);
                        }
                        if bytes == 0 {
                            sched.skip(&mut nodes, class, level);
                        } else {
                            sched.dequeued(&mut nodes, class, level, bytes, now, empty, |_| {});
                            idle_since = now;
                        }
                    }
                    Pick::Wait { until_ns } => {
                        prop_assert!(sched.active_leaves() > 0);
                        prop_assert!(until_ns >= now);
                    }
                    Pick::Idle => prop_assert_eq!(sched.active_leaves(), 0),
                },
                Op::Advance { ns } => now = now.saturating_add(ns),
                Op::Reset => {
                    let l = live(&nodes);
                    sched.reset(&mut nodes, l.into_iter());
                }
            }
            if let Err(e) = sched.check_invariants(&nodes) {
                prop_assert!(false, "{}", e);
            }
            // Liveness: 61 s after the last charge every debt is paid, so an active leaf
            // is served (unless the clock saturated).
            if now - idle_since > 61 * SEC && now < i64::MAX / 2 && sched.active_leaves() > 0 {
                let mut probe_sched = sched.clone();
                let mut probe = nodes.clone();
                let mut got = probe_sched.pick(&mut probe, now);
                if !matches!(got, Pick::Leaf { .. }) {
                    // The first pick may have continued a round that skipped the leaf.
                    got = probe_sched.pick(&mut probe, now);
                }
                prop_assert!(matches!(got, Pick::Leaf { .. }), "{:?}", got);
            }
        }
    }
}
