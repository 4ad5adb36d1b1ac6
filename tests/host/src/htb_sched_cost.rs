//! Instructions per packet of the scheduler core on the packet path the kernel sees most under
//! load that does not limit: the leaf's queue goes from empty to one packet and back each time
//! (`activate`, `pick`, `dequeued`). Run under callgrind to compare changes (`cargo test
//! --release sched_cost -- --ignored`, then `valgrind --tool=callgrind` on the test binary);
//! instruction counts are repeatable where timings under emulation are not.

use crate::sch_htb_rs::rate::{LinkLayer, Rate};
use crate::sch_htb_rs::sched::{ClassIdx, ClassParams, Node, Pick, Sched};

fn params(bytes_per_sec: u64) -> ClassParams {
    let rate = Rate::new(bytes_per_sec, 0, 0, LinkLayer::Ethernet);
    ClassParams {
        rate,
        ceil: rate,
        buffer_ns: rate.time_ns(65_536) as i64,
        cbuffer_ns: rate.time_ns(65_536) as i64,
        quantum: 200_000,
        prio: 0,
    }
}

/// A chain of `depth` inner classes, the leaf under it, and 8 idle leaves beside; 10 gbit.
fn tree(depth: usize) -> (Sched, Vec<Node>, ClassIdx) {
    let mut sched = Sched::new(false);
    let mut nodes = Vec::new();
    let mut parent = None;
    let fast = params(1_250_000_000);
    for i in 0..=depth {
        nodes.push(Node::new());
        let idx = i as ClassIdx;
        sched.add_class(&mut nodes, idx, parent, &fast, 0).unwrap();
        parent = Some(idx);
    }
    let leaf = depth as ClassIdx;
    for i in 0..8 {
        nodes.push(Node::new());
        let idx = (depth + 1 + i) as ClassIdx;
        sched
            .add_class(&mut nodes, idx, Some(0), &params(125_000), 0)
            .unwrap();
    }
    (sched, nodes, leaf)
}

fn packets(depth: usize, n: u64) -> u64 {
    let (mut sched, mut nodes, leaf) = tree(depth);
    let mut now = 1_000_000_000i64;
    let mut sent = 0;
    for _ in 0..n {
        sched.activate(&mut nodes, leaf);
        match sched.pick(&mut nodes, now) {
            Pick::Leaf { class, level } => {
                sched.dequeued(&mut nodes, class, level, 60, now, true, |_| {});
                sent += 1;
            }
            other => panic!("no leaf picked: {other:?}"),
        }
        now += 5_000;
    }
    sent
}

#[test]
#[ignore]
fn sched_cost_flat() {
    assert_eq!(packets(1, 1_000_000), 1_000_000);
}

#[test]
#[ignore]
fn sched_cost_deep() {
    assert_eq!(packets(6, 1_000_000), 1_000_000);
}
