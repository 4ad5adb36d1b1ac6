// SPDX-License-Identifier: GPL-2.0

//! Validation of the class parameters `tc` sends, and the unit conversions sch_htb applies
//! (kernel-independent; host-tested).
//!
//! The glue parses `TCA_HTB_PARMS`/`RATE64`/`CEIL64` into these plain structs; everything
//! after that is pure arithmetic with sch_htb's rules, so it can be tested without a kernel.

use super::rate::{LinkLayer, Rate};
use super::sched::{ClassParams, NUM_PRIO};

/// `PSCHED_SHIFT`: `tc` gives buffers in "psched ticks" of 64 ns.
pub(crate) const PSCHED_SHIFT: u32 = 6;

/// `TC_LINKLAYER_MASK`: the bits of `tc_ratespec.linklayer` that name the link layer.
const LINKLAYER_MASK: u8 = 0x0f;

/// Quantum bounds sch_htb applies to a quantum derived from the rate.
const MIN_QUANTUM: u32 = 1000;
const MAX_QUANTUM: u32 = 200_000;

/// `struct tc_ratespec`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RateSpec {
    /// Legacy rate-table cell size (unused, kept for dumps).
    pub(crate) cell_log: u8,
    /// `TC_LINKLAYER_UNAWARE` (0), `ETHERNET` (1) or `ATM` (2).
    pub(crate) linklayer: u8,
    /// Bytes added to every packet.
    pub(crate) overhead: u16,
    /// Legacy rate-table alignment (unused).
    pub(crate) cell_align: i16,
    /// Minimum packet unit.
    pub(crate) mpu: u16,
    /// Bytes per second, saturated at `u32::MAX` by `tc` when the 64-bit attribute is sent.
    pub(crate) rate: u32,
}

/// `struct tc_htb_opt`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct HtbOpt {
    /// Guaranteed rate.
    pub(crate) rate: RateSpec,
    /// Ceil.
    pub(crate) ceil: RateSpec,
    /// Rate bucket, psched ticks.
    pub(crate) buffer: u32,
    /// Ceil bucket, psched ticks.
    pub(crate) cbuffer: u32,
    /// DRR quantum in bytes, 0 = derive from the rate.
    pub(crate) quantum: u32,
    /// Level (output only: ignored on input).
    pub(crate) level: u32,
    /// Priority, 0 = highest.
    pub(crate) prio: u32,
}

/// sch_htb's "quantum of class %X is small|big. Consider r2q change." warning: the quantum
/// derived from the rate was raised to 1000 or lowered to 200000.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QuantumNote {
    /// Raised to the minimum.
    Small,
    /// Lowered to the maximum.
    Big,
}

impl QuantumNote {
    /// The word sch_htb puts in its warning.
    pub(crate) fn word(&self) -> &'static str {
        match self {
            QuantumNote::Small => "small",
            QuantumNote::Big => "big",
        }
    }
}

/// Validates a class's `tc_htb_opt` (plus `TCA_HTB_RATE64`/`CEIL64` when present) with the
/// qdisc's `r2q`, as sch_htb's `htb_change_class`.
///
/// Rates: the larger of the 32-bit field and the 64-bit attribute (as
/// `psched_ratecfg_precompute`); a zero 32-bit field is refused as sch_htb does (`tc` never
/// sends one for a non-zero rate). A ceil below the rate is allowed, as in sch_htb. Link layer
/// "unaware" is framed as Ethernet and dumped as given (sch_htb would look for ATM in the legacy rate table, which modern
/// `tc` does not need); unknown link layers are refused where sch_htb silently uses Ethernet.
/// Quantum: the user's if non-zero, else `rate / r2q` clamped to [1000, 200000] with a note.
/// Priority: values above 7 become 7.
pub(crate) fn class_params(
    opt: &HtbOpt,
    rate64: Option<u64>,
    ceil64: Option<u64>,
    r2q: u32,
) -> Result<(ClassParams, Option<QuantumNote>), &'static str> {
    if opt.rate.rate == 0 {
        return Err("rate must not be zero");
    }
    if opt.ceil.rate == 0 {
        return Err("ceil must not be zero");
    }
    let rate = rate_from(&opt.rate, rate64)?;
    let ceil = rate_from(&opt.ceil, ceil64)?;
    let (quantum, note) = quantum(rate.bytes_per_sec(), opt.quantum, r2q);
    let params = ClassParams {
        rate,
        ceil,
        buffer_ns: ticks_to_ns(opt.buffer),
        cbuffer_ns: ticks_to_ns(opt.cbuffer),
        quantum,
        prio: opt.prio.min(NUM_PRIO as u32 - 1) as u8,
    };
    Ok((params, note))
}

/// The qdisc's `r2q` as sch_htb stores it: in an `int`, and below 1 taken as 1. So values of
/// 2^31 and more (negative as an `int`) are 1, not a huge divisor.
pub(crate) fn rate2quantum(r2q: u32) -> u32 {
    if (r2q as i32) < 1 {
        1
    } else {
        r2q
    }
}

/// The DRR quantum: `user` if non-zero, else `rate / r2q` (capped at `i32::MAX` as sch_htb's
/// `int`) clamped to [1000, 200000], with a note when clamped. `r2q` 0 counts as 1.
pub(crate) fn quantum(bytes_per_sec: u64, user: u32, r2q: u32) -> (u32, Option<QuantumNote>) {
    if user != 0 {
        return (user, None);
    }
    let derived = (bytes_per_sec / u64::from(r2q.max(1))).min(i32::MAX as u64) as u32;
    if derived < MIN_QUANTUM {
        (MIN_QUANTUM, Some(QuantumNote::Small))
    } else if derived > MAX_QUANTUM {
        (MAX_QUANTUM, Some(QuantumNote::Big))
    } else {
        (derived, None)
    }
}

/// A [`Rate`] from a ratespec and an optional 64-bit rate.
fn rate_from(spec: &RateSpec, rate64: Option<u64>) -> Result<Rate, &'static str> {
    let link = match spec.linklayer & LINKLAYER_MASK {
        0 => LinkLayer::Unaware,
        1 => LinkLayer::Ethernet,
        2 => LinkLayer::Atm,
        _ => return Err("unknown link layer"),
    };
    let bytes_per_sec = u64::from(spec.rate).max(rate64.unwrap_or(0));
    Ok(Rate::new(bytes_per_sec, spec.overhead, spec.mpu, link))
}

/// A ratespec for dumping `rate` (as `psched_ratecfg_getrate`), and the 64-bit attribute to
/// send alongside when the rate does not fit 32 bits (as sch_htb's dump).
pub(crate) fn rate_spec(rate: &Rate) -> (RateSpec, Option<u64>) {
    let bps = rate.bytes_per_sec();
    let spec = RateSpec {
        cell_log: 0,
        linklayer: match rate.link_layer() {
            LinkLayer::Unaware => 0,
            LinkLayer::Ethernet => 1,
            LinkLayer::Atm => 2,
        },
        overhead: rate.overhead(),
        cell_align: 0,
        mpu: rate.mpu(),
        rate: u32::try_from(bps).unwrap_or(u32::MAX),
    };
    (
        spec,
        if bps > u64::from(u32::MAX) {
            Some(bps)
        } else {
            None
        },
    )
}

/// The `tc_htb_opt` to dump for a class at `level`, with the RATE64/CEIL64 attributes to add.
pub(crate) fn htb_opt(params: &ClassParams, level: u8) -> (HtbOpt, Option<u64>, Option<u64>) {
    let (rate, rate64) = rate_spec(&params.rate);
    let (ceil, ceil64) = rate_spec(&params.ceil);
    let opt = HtbOpt {
        rate,
        ceil,
        buffer: ns_to_ticks(params.buffer_ns),
        cbuffer: ns_to_ticks(params.cbuffer_ns),
        quantum: params.quantum,
        level: u32::from(level),
        prio: u32::from(params.prio),
    };
    (opt, rate64, ceil64)
}

/// `PSCHED_TICKS2NS`: psched ticks to ns (at most 2^38 ns, no overflow).
pub(crate) fn ticks_to_ns(ticks: u32) -> i64 {
    i64::from(ticks) << PSCHED_SHIFT
}

/// `PSCHED_NS2TICKS` for a buffer, saturated to what `tc_htb_opt` can carry (negative as 0).
pub(crate) fn ns_to_ticks(ns: i64) -> u32 {
    u32::try_from((ns >> PSCHED_SHIFT).max(0)).unwrap_or(u32::MAX)
}

/// Tokens as `tc_htb_xstats` reports them: ticks clamped to `i32` (as sch_htb's
/// `clamp(PSCHED_NS2TICKS(tokens), INT_MIN, INT_MAX)`); negative tokens round down as the
/// kernel's arithmetic shift does.
pub(crate) fn xstats_ticks(ns: i64) -> i32 {
    (ns >> PSCHED_SHIFT).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// A bucket size that lets a class reach its rate at high rates: the time `rate` takes for
/// the larger of 1 ms worth of its bytes and a 64 KiB GSO packet.
///
/// A bucket fills only up to its size while the class waits for the watchdog (hrtimer, then
/// softirq, then dequeue) and while the link sends other packets; anything beyond is lost, so
/// a bucket smaller than that latency (≈1 ms, as practitioners size HTB bursts) caps the class
/// below its rate. And the bucket must hold a whole 64 KiB super-packet, or a class that sends
/// one pays more than it could have saved and falls further behind each time. `tc`'s default
/// (≈1600 bytes) is far below both above a few hundred Mbit/s. At low rates this is long
/// (64 KiB at 1 Mbit/s is half a second): the glue should use it as a floor for high rates,
/// not force it on every class.
pub(crate) fn min_burst_ns(rate: &Rate) -> i64 {
    let bytes = (rate.bytes_per_sec() / 1000).max(64 * 1024);
    let bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
    i64::try_from(rate.time_ns(bytes)).unwrap_or(i64::MAX)
}
