use crate::sch_htb_rs::rate::{LinkLayer, Rate, NSEC_PER_SEC};
use proptest::prelude::*;

fn exact_ns(bytes: u64, rate: u64) -> f64 {
    bytes as f64 * NSEC_PER_SEC as f64 / rate as f64
}

#[test]
fn known_values() {
    // 1mbit (tc's units: 125000 bytes/s): a 1500-byte packet takes 12 ms.
    let r = Rate::new(125_000, 0, 0, LinkLayer::Ethernet);
    assert!((r.time_ns(1500) as i64 - 12_000_000).abs() <= 1);
    // 10gbit: 1500 bytes in 1.2 us.
    let r = Rate::new(1_250_000_000, 0, 0, LinkLayer::Ethernet);
    assert!((r.time_ns(1500) as i64 - 1_200).abs() <= 1);
    // 1 byte/s: a byte takes a second.
    let r = Rate::new(1, 0, 0, LinkLayer::Ethernet);
    assert!((r.time_ns(1) as i64 - NSEC_PER_SEC as i64).abs() <= 1);
    assert_eq!(r.bytes_per_sec(), 1);
}

#[test]
fn overhead_mpu_and_atm_cells() {
    let rate = 1_000_000;
    let eth = Rate::new(rate, 24, 0, LinkLayer::Ethernet);
    let plain = Rate::new(rate, 0, 0, LinkLayer::Ethernet);
    assert_eq!(eth.time_ns(100), plain.time_ns(124));
    let mpu = Rate::new(rate, 0, 64, LinkLayer::Ethernet);
    assert_eq!(mpu.time_ns(40), plain.time_ns(64));
    assert_eq!(mpu.time_ns(65), plain.time_ns(65));
    // ATM: 49 bytes need 2 cells = 106 bytes on the wire; 48 bytes one cell.
    let atm = Rate::new(rate, 0, 0, LinkLayer::Atm);
    assert_eq!(atm.time_ns(49), plain.time_ns(106));
    assert_eq!(atm.time_ns(48), plain.time_ns(53));
    // Overhead counts before the cell rounding (e.g. PPPoA headers).
    let atm_oh = Rate::new(rate, 10, 0, LinkLayer::Atm);
    assert_eq!(atm_oh.time_ns(40), plain.time_ns(106));
}

#[test]
fn zero_rate_is_one_ns_per_byte_as_in_the_kernel() {
    let r = Rate::new(0, 0, 0, LinkLayer::Ethernet);
    assert_eq!(r.time_ns(1500), 1500);
}

proptest! {
    /// Within a part in 10^8 (plus a nanosecond of truncation) of the exact time, for every
    /// rate from 1 byte/s to 100 Gbyte/s and packets up to 512 KiB (BIG TCP super-packets).
    #[test]
    fn close_to_exact(rate in 1u64..100_000_000_000, len in 1u32..(512 * 1024)) {
        let t = Rate::new(rate, 0, 0, LinkLayer::Ethernet).time_ns(len) as f64;
        let e = exact_ns(u64::from(len), rate);
        prop_assert!((t - e).abs() <= e * 1e-8 + 1.0, "rate {} len {}: {} vs {}", rate, len, t, e);
        prop_assert!(t <= e + 1.0, "never charges more than the exact time");
    }

    #[test]
    fn monotonic_in_length(rate in 1u64..100_000_000_000, len in 1u32..65535) {
        let r = Rate::new(rate, 0, 0, LinkLayer::Ethernet);
        prop_assert!(r.time_ns(len) <= r.time_ns(len + 1));
    }
}
