// SPDX-License-Identifier: GPL-2.0

//! How long a packet takes on the wire at a configured rate (kernel-independent; host-tested).
//!
//! Same arithmetic as the kernel's `psched_ratecfg_precompute`/`psched_l2t_ns`, so that
//! `htb_rs` and `htb` charge identical times for identical packets: the rate becomes a 32-bit
//! multiplier and a shift (nanoseconds per byte, scaled), the packet length grows by the
//! configured overhead, is raised to the minimum packet unit, and on ATM links is counted in
//! 53-byte cells carrying 48 bytes each.

/// Nanoseconds per second.
pub(crate) const NSEC_PER_SEC: u64 = 1_000_000_000;

/// How the link frames packets (`tc ... linklayer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LinkLayer {
    /// Bytes on the wire are bytes of the packet (Ethernet and most others).
    Ethernet,
    /// Not given (`TC_LINKLAYER_UNAWARE`, from raw netlink): framed as Ethernet, dumped as
    /// given, as sch_htb does when there is no rate table to guess from.
    Unaware,
    /// ATM: 48 bytes of payload per 53-byte cell, the last cell padded.
    Atm,
}

/// A rate with its per-packet adjustments, precomputed for [`Rate::time_ns`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rate {
    bytes_per_sec: u64,
    mult: u32,
    shift: u8,
    overhead: u16,
    mpu: u16,
    link: LinkLayer,
}

impl Rate {
    /// `bytes_per_sec` on a link adding `overhead` bytes per packet, with packets counted as
    /// at least `mpu` bytes.
    pub(crate) fn new(bytes_per_sec: u64, overhead: u16, mpu: u16, link: LinkLayer) -> Rate {
        let mut mult = 1u32;
        let mut shift = 0u8;
        // The largest multiplier that fits 32 bits (or the largest factor that fits 64); a zero
        // rate keeps 1 and 0.
        let mut factor = NSEC_PER_SEC;
        while let Some(q) = factor.checked_div(bytes_per_sec) {
            // Truncated to 32 bits as the kernel's u32 assignment does.
            mult = q as u32;
            if mult & (1 << 31) != 0 || factor & (1 << 63) != 0 {
                break;
            }
            factor <<= 1;
            shift += 1;
        }
        Rate {
            bytes_per_sec,
            mult,
            shift,
            overhead,
            mpu,
            link,
        }
    }

    /// A zero rate (what `Rate::new(0, 0, 0, LinkLayer::Ethernet)` gives), for unused class
    /// slots that must be built in `const` context.
    pub(crate) const fn zero() -> Rate {
        Rate {
            bytes_per_sec: 0,
            mult: 1,
            shift: 0,
            overhead: 0,
            mpu: 0,
            link: LinkLayer::Ethernet,
        }
    }

    /// The configured rate.
    pub(crate) fn bytes_per_sec(&self) -> u64 {
        self.bytes_per_sec
    }

    /// Bytes added to every packet (for dumping the class back to `tc`).
    pub(crate) fn overhead(&self) -> u16 {
        self.overhead
    }

    /// Minimum packet unit (for dumping the class back to `tc`).
    pub(crate) fn mpu(&self) -> u16 {
        self.mpu
    }

    /// How the link frames packets (for dumping the class back to `tc`).
    pub(crate) fn link_layer(&self) -> LinkLayer {
        self.link
    }

    /// Nanoseconds a packet of `len` bytes takes at this rate.
    pub(crate) fn time_ns(&self, len: u32) -> u64 {
        let len = len
            .wrapping_add(u32::from(self.overhead))
            .max(u32::from(self.mpu));
        let scaled = match self.link {
            // 32 by 32 bits: cannot overflow 64, so no check on the common path.
            LinkLayer::Ethernet | LinkLayer::Unaware => u64::from(len) * u64::from(self.mult),
            // Saturating: an ATM length near 4 GiB in cells times a 32-bit multiplier exceeds
            // 64 bits, and an overflow is a kernel BUG; real packets are far below that.
            LinkLayer::Atm => {
                (u64::from(len.div_ceil(48)) * 53).saturating_mul(u64::from(self.mult))
            }
        };
        // `new` never makes a shift of 64 or more (it stops at the 64th bit of the factor).
        scaled.wrapping_shr(u32::from(self.shift))
    }
}
