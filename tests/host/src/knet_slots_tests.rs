//! The slot table of imq's per-packet state (`knet/slots.rs`): ownership by taking, checks by
//! key, growth, the age sweep, and many threads at once (owners, copies looking up their
//! original's entry with their own key, sweeps) without an entry lost, leaked or freed twice.

use crate::knet::slots::{Keyed, SlotTable};
use kernel::prelude::*;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Counts drops so that every entry can be seen freed exactly once.
struct Entry {
    key: usize,
    born: usize,
    drops: Arc<AtomicUsize>,
}

impl Keyed for Entry {
    fn key(&self) -> usize {
        self.key
    }

    fn born(&self) -> usize {
        self.born
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

fn entry(key: usize, born: usize, drops: &Arc<AtomicUsize>) -> Entry {
    Entry {
        key,
        born,
        drops: drops.clone(),
    }
}

#[test]
fn an_entry_goes_only_to_its_key_and_only_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let t = SlotTable::new().unwrap();
    let id = t.insert_with(|| Some(entry(0x1000, 5, &drops))).unwrap();
    // A copy of the packet: same id in its tag, its own address.
    assert!((t.take(id, 0x2000)).is_none());
    assert!((t.take(id + 1, 0x1000)).is_none());
    let e = (t.take(id, 0x1000)).expect("the owner finds its entry");
    assert_eq!((e.key, e.born), (0x1000, 5));
    // Taken: nobody finds it again, not even the owner.
    assert!((t.take(id, 0x1000)).is_none());
    drop(e);
    assert_eq!(drops.load(Ordering::Relaxed), 1);
    // Ids beyond the table are simply absent.
    assert!((t.take(u32::MAX, 0x1000)).is_none());
}

#[test]
fn an_entry_that_cannot_be_made_leaves_its_slot_free() {
    let drops = Arc::new(AtomicUsize::new(0));
    let t = SlotTable::new().unwrap();
    // Slots claimed and given back, many times the first chunk (about a page): had any stayed
    // behind, the table would have grown and the cursor moved past the first page's ids.
    let mut calls = 0;
    for _ in 0..10_000 {
        assert_eq!(
            t.insert_with(|| {
                calls += 1;
                None
            }),
            None
        );
    }
    assert_eq!(calls, 10_000, "`make` runs once a slot is claimed");
    let ids: Vec<u32> = (0..50)
        .map(|k| t.insert_with(|| Some(entry(k + 1, 0, &drops))).unwrap())
        .collect();
    assert!(ids.iter().all(|&id| id < 4096), "the table grew: {ids:?}");
    for (k, id) in ids.into_iter().enumerate() {
        assert!(t.take(id, k + 1).is_some());
    }
    assert_eq!(drops.load(Ordering::Relaxed), 50);
}

#[test]
fn a_copy_borrows_its_originals_entry_and_gives_it_back() {
    let drops = Arc::new(AtomicUsize::new(0));
    let t = SlotTable::new().unwrap();
    let id = t.insert_with(|| Some(entry(0x1000, 5, &drops))).unwrap();
    // A copy (another address, same id) borrows the entry: it sees it, it stays.
    assert_eq!(t.lend(id, |e| (e.key, e.born)), Some((0x1000, 5)));
    assert_eq!(t.lend(id, |e| e.key), Some(0x1000));
    assert_eq!(drops.load(Ordering::Relaxed), 0, "lending drops nothing");
    // While its owner holds it, nothing is lent; once it is gone, neither.
    let e = t.take(id, 0x1000).expect("the owner still finds its entry");
    assert_eq!(t.lend(id, |e| e.key), None);
    drop(e);
    assert_eq!(t.lend(id, |e| e.key), None);
    assert_eq!(t.lend(id + 100_000, |e| e.key), None, "an id out of range");
    assert_eq!(drops.load(Ordering::Relaxed), 1);
}

#[test]
fn the_table_grows_as_queues_do_and_gives_distinct_ids() {
    let drops = Arc::new(AtomicUsize::new(0));
    let t = SlotTable::new().unwrap();
    let n = 20_000;
    let ids: Vec<u32> = (0..n)
        .map(|k| t.insert_with(|| Some(entry(k + 1, 0, &drops))).unwrap())
        .collect();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), n);
    for (k, id) in ids.iter().enumerate().rev() {
        let e = (t.take(*id, k + 1)).expect("every entry is found");
        assert_eq!(e.key, k + 1);
    }
    assert_eq!(drops.load(Ordering::Relaxed), n);
}

#[test]
fn the_sweep_takes_old_entries_only_and_the_table_frees_the_rest() {
    let drops = Arc::new(AtomicUsize::new(0));
    let t = SlotTable::new().unwrap();
    let young = t.insert_with(|| Some(entry(1, 1_000, &drops))).unwrap();
    let old = t.insert_with(|| Some(entry(2, 10, &drops))).unwrap();
    // Jiffies wrap: born just before the wrap is old at 50 after it.
    let wrapped = t
        .insert_with(|| Some(entry(3, usize::MAX - 100, &drops)))
        .unwrap();
    let mut swept = Vec::new();
    t.take_older(1_050, 500, |e| swept.push(e.key));
    swept.sort();
    assert_eq!(swept, [2, 3]);
    assert!((t.take(old, 2)).is_none());
    assert!((t.take(wrapped, 3)).is_none());
    assert!((t.take(young, 1)).is_some());
    let left = t.insert_with(|| Some(entry(4, 0, &drops))).unwrap();
    let _ = left;
    drop(t);
    assert_eq!(drops.load(Ordering::Relaxed), 4);
}

/// Owners insert and take their entries back, and leave every seventh behind with an old birth
/// (a packet freed unseen); copies look up owners' ids with keys of their own; a sweeper keeps
/// sweeping. Every entry must end up freed exactly once, no owner may get another's entry or
/// find its own missing, and the sweep may take only what was left behind.
#[test]
fn many_threads_never_lose_leak_or_share_an_entry() {
    let drops = Arc::new(AtomicUsize::new(0));
    let t = Arc::new(SlotTable::<Entry>::new().unwrap());
    let inserted = Arc::new(AtomicUsize::new(0));
    let taken_by_owner = Arc::new(AtomicUsize::new(0));
    let swept = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let live_ids = Arc::new(Mutex::new(Vec::<u32>::new()));
    let mut owners = Vec::new();
    for thread in 0..4usize {
        let (t, drops, inserted, taken, ids) = (
            t.clone(),
            drops.clone(),
            inserted.clone(),
            taken_by_owner.clone(),
            live_ids.clone(),
        );
        owners.push(std::thread::spawn(move || {
            let mut mine = std::collections::VecDeque::new();
            for i in 0..40_000usize {
                // Even keys: owners' packets; unique among live entries.
                let key = (thread << 40) | (i << 1);
                let left_behind = i % 7 == 0;
                let born = if left_behind { 0 } else { 1_000 };
                let id = t.insert_with(|| Some(entry(key, born, &drops))).unwrap();
                inserted.fetch_add(1, Ordering::Relaxed);
                ids.lock().unwrap().push(id);
                if !left_behind {
                    mine.push_back((id, key));
                }
                // A queue of up to 300 packets, leaving in order.
                while mine.len() > (i % 300) {
                    let (id, key) = mine.pop_front().unwrap();
                    let e = (t.take(id, key)).expect("an owner lost its entry");
                    assert_eq!(e.key, key, "an owner got another's entry");
                    taken.fetch_add(1, Ordering::Relaxed);
                }
            }
            for (id, key) in mine {
                let e = (t.take(id, key)).expect("an owner lost its entry");
                assert_eq!(e.key, key);
                taken.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let mut others = Vec::new();
    for seed in 1..=2usize {
        let (t, stop, ids) = (t.clone(), stop.clone(), live_ids.clone());
        // Copies: odd keys, never an owner's.
        others.push(std::thread::spawn(move || {
            let mut x = seed * 0x9e37_79b9;
            while !stop.load(Ordering::Relaxed) {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let id = {
                    let ids = ids.lock().unwrap();
                    if ids.is_empty() {
                        continue;
                    }
                    ids[(x >> 33) % ids.len()]
                };
                assert!((t.take(id, (x << 1) | 1)).is_none());
            }
        }));
    }
    for seed in 3..=4usize {
        let (t, stop, ids) = (t.clone(), stop.clone(), live_ids.clone());
        // Copies that borrow their original's entry (netem's duplicates): they see an owner's
        // entry, and the owner, looking for it meanwhile, still finds it (it waits).
        others.push(std::thread::spawn(move || {
            let mut x = seed * 0x9e37_79b9;
            while !stop.load(Ordering::Relaxed) {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let id = {
                    let ids = ids.lock().unwrap();
                    if ids.is_empty() {
                        continue;
                    }
                    ids[(x >> 33) % ids.len()]
                };
                if let Some(key) = t.lend(id, |e| e.key) {
                    assert_eq!(key & 1, 0, "a lent entry is an owner's");
                }
            }
        }));
    }
    {
        let (t, stop, swept) = (t.clone(), stop.clone(), swept.clone());
        others.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // At 1,050 with an age of 100: the entries born at 0 only.
                t.take_older(1_050, 100, |e| {
                    assert_eq!(e.born, 0, "the sweep took a young entry");
                    swept.fetch_add(1, Ordering::Relaxed);
                });
            }
        }));
    }
    for o in owners {
        o.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for o in others {
        o.join().unwrap();
    }
    let mut left = 0;
    t.take_all(|e| {
        assert_eq!(e.born, 0, "an owner's entry was left in the table");
        left += 1;
    });
    let n = inserted.load(Ordering::Relaxed);
    let (owned, swept) = (
        taken_by_owner.load(Ordering::Relaxed),
        swept.load(Ordering::Relaxed),
    );
    assert_eq!(owned + swept + left, n);
    let behind = (0..40_000).filter(|i| i % 7 == 0).count() * 4;
    assert_eq!(owned, n - behind);
    assert!(swept > 0, "the sweep never ran into a left-behind entry");
    assert_eq!(
        drops.load(Ordering::Relaxed),
        n,
        "entries leaked or freed twice"
    );
}

/// An owner looks its entry up while copies keep borrowing it (netem's duplicates, `lend`) and a
/// sweep keeps checking it: each of those holds the slot for a moment, and the owner must wait
/// for it, not report its entry missing (a packet then counted a copy and its entry left for the
/// sweep; a drop then not seen). Found by the stress test above failing once in a loaded run.
#[test]
fn an_owner_finds_its_entry_while_others_hold_it_for_a_moment() {
    let drops = Arc::new(AtomicUsize::new(0));
    let t = Arc::new(SlotTable::<Entry>::new().unwrap());
    let current = Arc::new(AtomicUsize::new(usize::MAX));
    let stop = Arc::new(AtomicBool::new(false));
    let lent = Arc::new(AtomicUsize::new(0));
    let mut others = Vec::new();
    for _ in 0..2 {
        let (t, current, stop, lent) = (t.clone(), current.clone(), stop.clone(), lent.clone());
        others.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let id = current.load(Ordering::Acquire);
                if id != usize::MAX && t.lend(id as u32, |e| e.key).is_some() {
                    lent.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    {
        let (t, stop) = (t.clone(), stop.clone());
        others.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // Every entry is young: the sweep looks and takes nothing.
                t.take_older(1_050, 100, |_| panic!("the sweep took a young entry"));
            }
        }));
    }
    let rounds = 200_000;
    for i in 0..rounds {
        let key = (i + 1) << 1;
        let id = t.insert_with(|| Some(entry(key, 1_000, &drops))).unwrap();
        current.store(id as usize, Ordering::Release);
        // Give the others a moment at it.
        for _ in 0..(i % 64) {
            core::hint::spin_loop();
        }
        let e = t
            .take(id, key)
            .expect("an owner lost its entry to a lender");
        assert_eq!(e.key, key);
    }
    stop.store(true, Ordering::Relaxed);
    for o in others {
        o.join().unwrap();
    }
    assert!(
        lent.load(Ordering::Relaxed) > 0,
        "the lenders never got at an entry"
    );
    drop(t);
    assert_eq!(drops.load(Ordering::Relaxed), rounds);
}
