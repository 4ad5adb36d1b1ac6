//! Validation of what `tc` sends for an HTB class, against sch_htb's rules.

use crate::sch_htb_rs::bucket::{Bucket, Mode, MBUFFER_NS};
use crate::sch_htb_rs::config::{
    class_params, htb_opt, min_burst_ns, ns_to_ticks, quantum, rate2quantum, rate_spec,
    ticks_to_ns, xstats_ticks, HtbOpt, QuantumNote, RateSpec,
};
use crate::sch_htb_rs::rate::{LinkLayer, Rate};
use proptest::prelude::*;

fn spec(rate: u32) -> RateSpec {
    RateSpec {
        linklayer: 1,
        rate,
        ..RateSpec::default()
    }
}

fn opt(rate: u32, ceil: u32) -> HtbOpt {
    HtbOpt {
        rate: spec(rate),
        ceil: spec(ceil),
        buffer: 20_000,
        cbuffer: 30_000,
        ..HtbOpt::default()
    }
}

#[test]
fn quantum_from_rate_is_clamped_with_a_note() {
    // 10 mbit / r2q 10 = 125000 / 10 = 12500: as is.
    let (p, note) = class_params(&opt(1_250_000, 1_250_000), None, None, 10).unwrap();
    assert_eq!((p.quantum, note), (125_000, None));
    let (p, note) = class_params(&opt(125_000, 125_000), None, None, 10).unwrap();
    assert_eq!((p.quantum, note), (12_500, None));
    // 1 kbit: 12 bytes -> 1000, "small".
    let (p, note) = class_params(&opt(125, 125), None, None, 10).unwrap();
    assert_eq!((p.quantum, note), (1000, Some(QuantumNote::Small)));
    assert_eq!(QuantumNote::Small.word(), "small");
    // 1 gbit: 12.5 MB -> 200000, "big".
    let (p, note) = class_params(&opt(125_000_000, 125_000_000), None, None, 10).unwrap();
    assert_eq!((p.quantum, note), (200_000, Some(QuantumNote::Big)));
    assert_eq!(QuantumNote::Big.word(), "big");
    // A user quantum is taken as is, however small or big.
    for q in [1, 999, 200_001, u32::MAX] {
        let mut o = opt(125, 125);
        o.quantum = q;
        let (p, note) = class_params(&o, None, None, 10).unwrap();
        assert_eq!((p.quantum, note), (q, None));
    }
    // r2q 0 counts as 1; rate/r2q above i32::MAX is capped before clamping.
    assert_eq!(quantum(150_000, 0, 0), (150_000, None));
    assert_eq!(quantum(u64::MAX, 0, 1), (200_000, Some(QuantumNote::Big)));
}

#[test]
fn r2q_is_stored_as_sch_htb_int_at_least_one() {
    assert_eq!(rate2quantum(0), 1);
    assert_eq!(rate2quantum(1), 1);
    assert_eq!(rate2quantum(100), 100);
    assert_eq!(rate2quantum(i32::MAX as u32), i32::MAX as u32);
    // An `int` in sch_htb: 2^31 and above are negative, hence 1.
    assert_eq!(rate2quantum(1 << 31), 1);
    assert_eq!(rate2quantum(u32::MAX), 1);
    // 10mbit with r2q 4294967295 as with r2q 1: clamped to 200000.
    assert_eq!(quantum(1_250_000, 0, rate2quantum(u32::MAX)).0, 200_000);
}

#[test]
fn prio_is_clamped_and_buffers_are_ticks() {
    let mut o = opt(125_000, 250_000);
    o.prio = 9;
    let (p, _) = class_params(&o, None, None, 10).unwrap();
    assert_eq!(p.prio, 7);
    o.prio = u32::MAX;
    assert_eq!(class_params(&o, None, None, 10).unwrap().0.prio, 7);
    o.prio = 3;
    let (p, _) = class_params(&o, None, None, 10).unwrap();
    assert_eq!(p.prio, 3);
    assert_eq!((p.buffer_ns, p.cbuffer_ns), (20_000 * 64, 30_000 * 64));
    assert_eq!(
        (p.rate.bytes_per_sec(), p.ceil.bytes_per_sec()),
        (125_000, 250_000)
    );
}

#[test]
fn rate64_wins_when_larger() {
    // tc sends rate = ~0U plus RATE64 for 100 gbit.
    let big = 12_500_000_000u64;
    let (p, _) = class_params(&opt(u32::MAX, u32::MAX), Some(big), Some(2 * big), 10).unwrap();
    assert_eq!(p.rate.bytes_per_sec(), big);
    assert_eq!(p.ceil.bytes_per_sec(), 2 * big);
    // The larger of the two, as psched_ratecfg_precompute.
    let (p, _) = class_params(&opt(1000, 1000), Some(10), None, 10).unwrap();
    assert_eq!(p.rate.bytes_per_sec(), 1000);
    // And dumped back as ~0U plus the 64-bit attribute.
    let (o, r64, c64) = htb_opt(&p, 3);
    assert_eq!((o.rate.rate, r64, c64, o.level), (1000, None, None, 3));
    let (s, r64) = rate_spec(&Rate::new(big, 4, 64, LinkLayer::Atm));
    assert_eq!(
        (s.rate, r64, s.overhead, s.mpu, s.linklayer),
        (u32::MAX, Some(big), 4, 64, 2)
    );
}

#[test]
fn ceil_below_rate_is_allowed_as_in_sch_htb() {
    let (p, _) = class_params(&opt(250_000, 125_000), None, None, 10).unwrap();
    assert!(p.ceil.bytes_per_sec() < p.rate.bytes_per_sec());
}

#[test]
fn rejected_inputs() {
    assert_eq!(
        class_params(&opt(0, 1000), Some(1000), None, 10).unwrap_err(),
        "rate must not be zero"
    );
    assert_eq!(
        class_params(&opt(1000, 0), None, None, 10).unwrap_err(),
        "ceil must not be zero"
    );
    let mut o = opt(1000, 1000);
    o.rate.linklayer = 3;
    assert_eq!(
        class_params(&o, None, None, 10).unwrap_err(),
        "unknown link layer"
    );
}

#[test]
fn link_layers_and_overheads() {
    let mut o = opt(1_000_000, 1_000_000);
    o.rate.linklayer = 0; // unaware: framed as Ethernet, dumped as unaware (as sch_htb)
    o.ceil.linklayer = 2; // ATM
    o.ceil.overhead = 10;
    o.ceil.mpu = 64;
    let (p, _) = class_params(&o, None, None, 10).unwrap();
    assert_eq!(p.rate.link_layer(), LinkLayer::Unaware);
    assert_eq!(rate_spec(&p.rate).0.linklayer, 0);
    assert_eq!(
        p.rate.time_ns(1000),
        Rate::new(1_000_000, 0, 0, LinkLayer::Ethernet).time_ns(1000)
    );
    assert_eq!(p.ceil.link_layer(), LinkLayer::Atm);
    assert_eq!((p.ceil.overhead(), p.ceil.mpu()), (10, 64));
    // 40 + 10 bytes = 2 cells = 106 bytes at 1 MB/s.
    assert_eq!(p.ceil.time_ns(40), 106_000);
}

#[test]
fn tick_conversions() {
    assert_eq!(ticks_to_ns(0), 0);
    assert_eq!(ticks_to_ns(1), 64);
    assert_eq!(ticks_to_ns(u32::MAX), i64::from(u32::MAX) * 64);
    assert_eq!(ns_to_ticks(64 * 1234 + 63), 1234);
    assert_eq!(ns_to_ticks(-5), 0);
    assert_eq!(ns_to_ticks(i64::MAX), u32::MAX);
    assert_eq!(xstats_ticks(640), 10);
    assert_eq!(xstats_ticks(-1), -1, "arithmetic shift, as the kernel");
    assert_eq!(xstats_ticks(-64), -1);
    assert_eq!(xstats_ticks(-65), -2);
    assert_eq!(xstats_ticks(i64::MAX), i32::MAX);
    assert_eq!(xstats_ticks(1 - MBUFFER_NS), ((1 - MBUFFER_NS) >> 6) as i32);
    assert_eq!(xstats_ticks(i64::MIN), i32::MIN);
}

#[test]
fn min_burst_is_a_gso_packet_or_a_millisecond() {
    // 10 gbit: 1 ms = 1.25 MB > 64 KiB.
    let r = Rate::new(1_250_000_000, 0, 0, LinkLayer::Ethernet);
    assert!((min_burst_ns(&r) - 1_000_000).abs() <= 1);
    // 100 mbit: 64 KiB take 5.24 ms.
    let r = Rate::new(12_500_000, 0, 0, LinkLayer::Ethernet);
    assert!((min_burst_ns(&r) - 5_242_880).abs() <= 1);
    // Extremes do not overflow.
    let r = Rate::new(u64::MAX, 0, 0, LinkLayer::Atm);
    assert!(min_burst_ns(&r) >= 0);
    let r = Rate::new(1, u16::MAX, u16::MAX, LinkLayer::Atm);
    assert!(min_burst_ns(&r) > 0);
}

#[test]
fn bucket_accounting_and_modes() {
    let (p, _) = class_params(&opt(125_000, 250_000), None, None, 10).unwrap();
    // buffer 1.28 ms, cbuffer 1.92 ms; 1500 bytes: 12 ms at rate, 6 ms at ceil.
    let mut b = Bucket::full(p.buffer_ns, p.cbuffer_ns, 0);
    assert_eq!(b.mode(&p, Mode::CanSend, 0, false), (Mode::CanSend, 0));
    b.charge(&p, 1500, 0, true);
    assert_eq!(b.tokens, 1_280_000 - 12_000_000);
    assert_eq!(b.ctokens, 1_920_000 - 6_000_000);
    assert_eq!(
        b.mode(&p, Mode::CanSend, 0, false),
        (Mode::CantSend, 4_080_000)
    );
    assert_eq!(
        b.mode(&p, Mode::CantSend, 4_080_000, false),
        (Mode::MayBorrow, 10_720_000 - 4_080_000)
    );
    // With hysteresis a class keeps its mode until its tokens are a buffer below 0.
    let h = Bucket {
        tokens: -1_000_000,
        ctokens: -1_000_000,
        t_c: 0,
    };
    assert_eq!(h.mode(&p, Mode::CanSend, 0, false).0, Mode::CantSend);
    assert_eq!(h.mode(&p, Mode::CanSend, 0, true).0, Mode::CanSend);
    assert_eq!(h.mode(&p, Mode::MayBorrow, 0, true).0, Mode::MayBorrow);
    assert_eq!(h.mode(&p, Mode::CantSend, 0, true).0, Mode::CantSend);
    // Borrowing only moves time; elapsed time is capped at 60 s and never negative.
    let mut c = b;
    c.charge(&p, 1500, 5, false);
    assert_eq!(c.tokens, b.tokens + 5);
    assert_eq!(c.elapsed(-100), 0);
    assert_eq!(c.elapsed(i64::MAX), MBUFFER_NS);
    // A giant packet leaves a debt of just under 60 s.
    let mut d = Bucket::full(p.buffer_ns, p.cbuffer_ns, 0);
    d.charge(&p, u32::MAX, 0, true);
    assert_eq!((d.tokens, d.ctokens), (1 - MBUFFER_NS, 1 - MBUFFER_NS));
}

proptest! {
    /// Whatever `tc` sends, validation returns or refuses without panicking, and what it
    /// returns is in range.
    #[test]
    fn any_input_is_handled(
        rate in any::<u32>(), ceil in any::<u32>(), ll in any::<u8>(), ll2 in any::<u8>(),
        overhead in any::<u16>(), mpu in any::<u16>(), buffer in any::<u32>(), cbuffer in any::<u32>(),
        quantum in any::<u32>(), prio in any::<u32>(), r2q in any::<u32>(),
        rate64 in prop::option::of(any::<u64>()), ceil64 in prop::option::of(any::<u64>()),
        len in any::<u32>(),
    ) {
        let o = HtbOpt {
            rate: RateSpec { linklayer: ll, overhead, mpu, rate, ..RateSpec::default() },
            ceil: RateSpec { linklayer: ll2, overhead, mpu, rate: ceil, ..RateSpec::default() },
            buffer, cbuffer, quantum, level: 0, prio,
        };
        if let Ok((p, note)) = class_params(&o, rate64, ceil64, r2q) {
            prop_assert!(p.prio < 8);
            prop_assert!(p.quantum >= 1);
            prop_assert!(note.is_none() || quantum == 0);
            prop_assert!(p.buffer_ns >= 0 && p.cbuffer_ns >= 0);
            prop_assert_eq!(ns_to_ticks(p.buffer_ns), buffer);
            let _ = (p.rate.time_ns(len), p.ceil.time_ns(len), min_burst_ns(&p.rate));
            let mut b = Bucket::full(p.buffer_ns, p.cbuffer_ns, 0);
            b.charge(&p, len, i64::from(len), true);
            let _ = b.mode(&p, Mode::CanSend, i64::MAX, true);
        }
    }
}

/// sch_htb's token accounting with saturating arithmetic everywhere: the reference the packet
/// path's plain arithmetic must match within the ranges it can see.
fn account_reference(tokens: i64, diff: i64, buffer: i64, cost_ns: u64) -> i64 {
    let cost = i64::try_from(cost_ns).unwrap_or(i64::MAX);
    let toks = diff.saturating_add(tokens).min(buffer).saturating_sub(cost);
    if toks <= -MBUFFER_NS {
        1 - MBUFFER_NS
    } else {
        toks
    }
}

proptest! {
    /// Charging matches the saturating reference for every token level a class can have,
    /// every elapsed time, buffer the ABI can carry and packet length.
    #[test]
    fn charge_matches_the_saturating_reference(
        tokens in (1 - MBUFFER_NS)..(1i64 << 40), ctokens in (1 - MBUFFER_NS)..(1i64 << 40),
        elapsed in 0..MBUFFER_NS + 10, buffer in any::<u32>(), cbuffer in any::<u32>(),
        rate in 1..u64::from(u32::MAX), ceil in 1..u64::from(u32::MAX), len in any::<u32>(),
        pays in any::<bool>(),
    ) {
        let mut o = opt(1, 1);
        o.buffer = buffer;
        o.cbuffer = cbuffer;
        let (p, _) = class_params(&o, Some(rate), Some(ceil), 10).unwrap();
        let mut b = Bucket { tokens, ctokens, t_c: 1_000 };
        let now = 1_000 + elapsed;
        b.charge(&p, len, now, pays);
        let diff = elapsed.min(MBUFFER_NS);
        let want_tokens = if pays {
            account_reference(tokens, diff, p.buffer_ns, p.rate.time_ns(len))
        } else {
            tokens + diff
        };
        let want_ctokens = account_reference(ctokens, diff, p.cbuffer_ns, p.ceil.time_ns(len));
        prop_assert_eq!((b.tokens, b.ctokens, b.t_c), (want_tokens, want_ctokens, now));
    }
}
