// SPDX-License-Identifier: GPL-2.0

//! A class's two token buckets and the mode they put it in (kernel-independent; host-tested).
//!
//! As in sch_htb, tokens are nanoseconds of transmission time: a bucket gains one per
//! nanosecond, up to its buffer, and a packet costs the time it takes at the bucket's rate.
//! `tokens` is the guaranteed rate's bucket, `ctokens` the ceil's. Arithmetic on values from
//! outside (rates, buffers, the clock) saturates or is clamped first: an overflow would be a
//! kernel BUG.

use super::sched::ClassParams;

/// Nanoseconds per second.
const NSEC_PER_SEC: i64 = 1_000_000_000;

/// sch_htb's `mbuffer`: the longest idle time credited and the deepest debt kept (60 s), so a
/// class neither saves up unbounded credit nor stays blocked for ever after a huge packet.
pub(crate) const MBUFFER_NS: i64 = 60 * NSEC_PER_SEC;

/// What a class may do (sch_htb's `enum htb_cmode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Over its ceil: may not send at all (`HTB_CANT_SEND`).
    CantSend,
    /// Over its rate but under its ceil: may send on an ancestor's tokens (`HTB_MAY_BORROW`).
    MayBorrow,
    /// Under its rate: may send on its own tokens (`HTB_CAN_SEND`).
    CanSend,
}

/// Token state of one class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bucket {
    /// Rate tokens (ns), at most the buffer, at least `1 - MBUFFER_NS`.
    pub(crate) tokens: i64,
    /// Ceil tokens (ns), at most the cbuffer, at least `1 - MBUFFER_NS`.
    pub(crate) ctokens: i64,
    /// When the tokens were last brought up to date (absolute ns).
    pub(crate) t_c: i64,
}

impl Bucket {
    /// Full buckets at `now`, as sch_htb gives a new class (so it may burst at once).
    pub(crate) const fn full(buffer_ns: i64, cbuffer_ns: i64, now: i64) -> Bucket {
        Bucket {
            tokens: buffer_ns,
            ctokens: cbuffer_ns,
            t_c: now,
        }
    }

    /// Time since the last update, in `[0, MBUFFER_NS]`. A clock that went backwards counts as
    /// no time rather than as a debt.
    pub(crate) fn elapsed(&self, now: i64) -> i64 {
        if now < self.t_c {
            return 0;
        }
        // `now >= t_c`: the difference is in `[0, 2^64)`, exact as an unsigned wrapping one
        // (cheaper than saturating, on the path of every level of every packet).
        (now.wrapping_sub(self.t_c) as u64).min(MBUFFER_NS as u64) as i64
    }

    /// Charges a packet of `bytes` sent at `now` (sch_htb's `htb_charge_class` for one class).
    ///
    /// The ceil bucket always pays. The rate bucket pays when the class sent on its own rate or
    /// lent to a descendant (`pays_rate`); a class below the lending level only borrowed, so its
    /// rate bucket just gains the elapsed time, uncapped as in sch_htb (the next payment caps it).
    ///
    /// Always inlined into the charge loop, which runs it for every level of every packet
    /// (left to itself the compiler sometimes makes it a call: +18 instructions per level).
    #[inline(always)]
    pub(crate) fn charge(&mut self, params: &ClassParams, bytes: u32, now: i64, pays_rate: bool) {
        let diff = self.elapsed(now);
        self.tokens = if pays_rate {
            account(
                self.tokens,
                diff,
                params.buffer_ns,
                params.rate.time_ns(bytes),
            )
        } else {
            self.tokens.saturating_add(diff)
        };
        self.ctokens = account(
            self.ctokens,
            diff,
            params.cbuffer_ns,
            params.ceil.time_ns(bytes),
        );
        self.t_c = now;
    }

    /// The mode `diff` ns after the last update, and if it is not `CanSend`, in how many ns it
    /// may change (sch_htb's `htb_class_mode`).
    ///
    /// Without hysteresis the thresholds are 0. With it (sch_htb's `htb_hysteresis`) a class
    /// keeps its better mode until its tokens fall a whole buffer below 0, which trades
    /// accuracy for fewer mode changes.
    pub(crate) fn mode(
        &self,
        params: &ClassParams,
        current: Mode,
        diff: i64,
        hysteresis: bool,
    ) -> (Mode, i64) {
        let (low, high) = if hysteresis {
            (
                if current != Mode::CantSend {
                    0i64.saturating_sub(params.cbuffer_ns)
                } else {
                    0
                },
                if current == Mode::CanSend {
                    0i64.saturating_sub(params.buffer_ns)
                } else {
                    0
                },
            )
        } else {
            (0, 0)
        };
        let ctoks = self.ctokens.saturating_add(diff);
        if ctoks < low {
            return (Mode::CantSend, 0i64.saturating_sub(ctoks));
        }
        let toks = self.tokens.saturating_add(diff);
        if toks >= high {
            return (Mode::CanSend, 0);
        }
        (Mode::MayBorrow, 0i64.saturating_sub(toks))
    }
}

/// sch_htb's `htb_accnt_tokens`: credit `diff`, cap at `buffer`, pay `cost_ns`, and keep the
/// debt above `-MBUFFER_NS` so one giant packet cannot block the class for longer than that.
///
/// Plain (wrapping) arithmetic, as this runs for every level of every packet: `diff` is at
/// most `MBUFFER_NS`, `tokens` at least `1 - MBUFFER_NS` and at most a buffer (below 2^38 ns
/// from the ABI) plus the time the class spent borrowing, and the cost is clamped to 2^62 ns,
/// beyond which the result is the floor anyway; no sum comes near 2^63. Wrapping
/// rather than panicking keeps even a nonsensical input from becoming a kernel BUG.
fn account(tokens: i64, diff: i64, buffer: i64, cost_ns: u64) -> i64 {
    // Any cost beyond 2^62 ns ends at the floor anyway.
    let cost = cost_ns.min(1 << 62) as i64;
    let toks = diff.wrapping_add(tokens).min(buffer).wrapping_sub(cost);
    toks.max(1 - MBUFFER_NS)
}
