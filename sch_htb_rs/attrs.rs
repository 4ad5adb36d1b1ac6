// SPDX-License-Identifier: GPL-2.0

//! HTB's netlink attributes (`TCA_HTB_*` inside `TCA_OPTIONS`), parsed from and written to
//! bytes (kernel-independent; host-tested).
//!
//! Same ABI and the same acceptance as sch_htb's `htb_policy` under the core's liberal
//! ("deprecated") validation: attributes shorter than their type need are refused, longer ones
//! accepted, unknown types ignored, the last of duplicates wins.

use super::config::{HtbOpt, RateSpec};

/// `TCA_HTB_PARMS`: `struct tc_htb_opt`.
pub(crate) const TCA_HTB_PARMS: u16 = 1;
/// `TCA_HTB_INIT`: `struct tc_htb_glob`.
pub(crate) const TCA_HTB_INIT: u16 = 2;
/// `TCA_HTB_CTAB`: legacy ceil rate table.
pub(crate) const TCA_HTB_CTAB: u16 = 3;
/// `TCA_HTB_RTAB`: legacy rate table.
pub(crate) const TCA_HTB_RTAB: u16 = 4;
/// `TCA_HTB_DIRECT_QLEN`: u32.
pub(crate) const TCA_HTB_DIRECT_QLEN: u16 = 5;
/// `TCA_HTB_RATE64`: u64 bytes/s.
pub(crate) const TCA_HTB_RATE64: u16 = 6;
/// `TCA_HTB_CEIL64`: u64 bytes/s.
pub(crate) const TCA_HTB_CEIL64: u16 = 7;
/// `TCA_HTB_PAD`.
pub(crate) const TCA_HTB_PAD: u16 = 8;
/// `TCA_HTB_OFFLOAD`: flag.
pub(crate) const TCA_HTB_OFFLOAD: u16 = 9;

/// `sizeof(struct tc_ratespec)`.
const RATESPEC_LEN: usize = 12;
/// `sizeof(struct tc_htb_opt)`.
pub(crate) const HTB_OPT_LEN: usize = 2 * RATESPEC_LEN + 5 * 4;
/// `sizeof(struct tc_htb_glob)`.
pub(crate) const HTB_GLOB_LEN: usize = 5 * 4;
/// `TC_RTAB_SIZE`: the most a legacy rate table may hold.
const RTAB_MAX: usize = 1024;
/// `NLA_TYPE_MASK`: the type bits of `nla_type` (the others are flags).
const NLA_TYPE_MASK: u16 = 0x3fff;
/// `HTB_VER >> 16`: the version `tc` must speak.
pub(crate) const HTB_PROTOVER: u32 = 3;
/// `HTB_VER`, dumped back as sch_htb does.
pub(crate) const HTB_VER: u32 = 0x30011;

/// `struct tc_htb_glob`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct HtbGlob {
    /// Must be [`HTB_PROTOVER`].
    pub(crate) version: u32,
    /// Rate to quantum divisor.
    pub(crate) rate2quantum: u32,
    /// Default class minor id.
    pub(crate) defcls: u32,
    /// Unused (kept for dumps).
    pub(crate) debug: u32,
    /// Output only: packets sent through the direct queue.
    pub(crate) direct_pkts: u32,
}

/// Why the attributes of a request were refused: the extack message, and the errno class the
/// kernel's policy validation gives the same fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ParseError {
    /// The message for extack.
    pub(crate) msg: &'static str,
    /// An attribute too short (or a table too long) for its type: `ERANGE`, as
    /// `nla_parse`'s policy check answers sch_htb; otherwise (malformed headers) `EINVAL`.
    pub(crate) out_of_range: bool,
}

impl ParseError {
    fn range(msg: &'static str) -> ParseError {
        ParseError {
            msg,
            out_of_range: true,
        }
    }
}

/// The `TCA_HTB_*` attributes of one request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct HtbAttrs {
    /// Class parameters.
    pub(crate) parms: Option<HtbOpt>,
    /// Qdisc parameters.
    pub(crate) init: Option<HtbGlob>,
    /// Direct queue limit.
    pub(crate) direct_qlen: Option<u32>,
    /// 64-bit rate.
    pub(crate) rate64: Option<u64>,
    /// 64-bit ceil.
    pub(crate) ceil64: Option<u64>,
    /// Hardware offload requested.
    pub(crate) offload: bool,
}

/// Splits a run of netlink attributes into `(type, payload)`; `Err` on a malformed header.
fn for_each_attr<'a>(
    mut bytes: &'a [u8],
    mut f: impl FnMut(u16, &'a [u8]) -> Result<(), ParseError>,
) -> Result<(), ParseError> {
    while bytes.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([bytes[0], bytes[1]]));
        let ty = u16::from_ne_bytes([bytes[2], bytes[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > bytes.len() {
            return Err(ParseError {
                msg: "malformed attribute in TCA_OPTIONS",
                out_of_range: false,
            });
        }
        f(ty, &bytes[4..len])?;
        // Attributes are padded to 4 bytes; the last one may lack its padding.
        let next = (len + 3) & !3;
        bytes = bytes.get(next..).unwrap_or(&[]);
    }
    // Trailing bytes shorter than a header are ignored, as nla_parse does.
    Ok(())
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn ratespec_at(b: &[u8], at: usize) -> RateSpec {
    RateSpec {
        cell_log: b[at],
        linklayer: b[at + 1],
        overhead: u16_at(b, at + 2),
        cell_align: u16_at(b, at + 4) as i16,
        mpu: u16_at(b, at + 6),
        rate: u32_at(b, at + 8),
    }
}

fn need(payload: &[u8], len: usize, what: &'static str) -> Result<(), ParseError> {
    if payload.len() < len {
        Err(ParseError::range(what))
    } else {
        Ok(())
    }
}

/// Parses the payload of `TCA_OPTIONS`.
pub(crate) fn parse(bytes: &[u8]) -> Result<HtbAttrs, ParseError> {
    let mut a = HtbAttrs::default();
    for_each_attr(bytes, |ty, p| {
        match ty {
            TCA_HTB_PARMS => {
                need(p, HTB_OPT_LEN, "TCA_HTB_PARMS too short")?;
                a.parms = Some(HtbOpt {
                    rate: ratespec_at(p, 0),
                    ceil: ratespec_at(p, RATESPEC_LEN),
                    buffer: u32_at(p, 24),
                    cbuffer: u32_at(p, 28),
                    quantum: u32_at(p, 32),
                    level: u32_at(p, 36),
                    prio: u32_at(p, 40),
                });
            }
            TCA_HTB_INIT => {
                need(p, HTB_GLOB_LEN, "TCA_HTB_INIT too short")?;
                a.init = Some(HtbGlob {
                    version: u32_at(p, 0),
                    rate2quantum: u32_at(p, 4),
                    defcls: u32_at(p, 8),
                    debug: u32_at(p, 12),
                    direct_pkts: u32_at(p, 16),
                });
            }
            TCA_HTB_CTAB | TCA_HTB_RTAB => {
                if p.len() > RTAB_MAX {
                    return Err(ParseError::range("rate table too long"));
                }
            }
            TCA_HTB_DIRECT_QLEN => {
                need(p, 4, "TCA_HTB_DIRECT_QLEN too short")?;
                a.direct_qlen = Some(u32_at(p, 0));
            }
            TCA_HTB_RATE64 | TCA_HTB_CEIL64 => {
                need(p, 8, "64-bit rate too short")?;
                // Native byte order, as the kernel's nla_get_u64.
                let mut b8 = [0u8; 8];
                b8.copy_from_slice(&p[..8]);
                let v = u64::from_ne_bytes(b8);
                if ty == TCA_HTB_RATE64 {
                    a.rate64 = Some(v);
                } else {
                    a.ceil64 = Some(v);
                }
            }
            TCA_HTB_OFFLOAD => {
                // A flag (NLA_FLAG): the kernel's policy refuses one with a payload.
                if !p.is_empty() {
                    return Err(ParseError::range(
                        "TCA_HTB_OFFLOAD is a flag: it carries no payload",
                    ));
                }
                a.offload = true;
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(a)
}

fn put_ratespec(out: &mut [u8], at: usize, r: &RateSpec) {
    out[at] = r.cell_log;
    out[at + 1] = r.linklayer;
    out[at + 2..at + 4].copy_from_slice(&r.overhead.to_ne_bytes());
    out[at + 4..at + 6].copy_from_slice(&r.cell_align.to_ne_bytes());
    out[at + 6..at + 8].copy_from_slice(&r.mpu.to_ne_bytes());
    out[at + 8..at + 12].copy_from_slice(&r.rate.to_ne_bytes());
}

/// `struct tc_htb_opt` as bytes, for class dumps.
pub(crate) fn encode_opt(o: &HtbOpt) -> [u8; HTB_OPT_LEN] {
    let mut out = [0u8; HTB_OPT_LEN];
    put_ratespec(&mut out, 0, &o.rate);
    put_ratespec(&mut out, RATESPEC_LEN, &o.ceil);
    for (i, v) in [o.buffer, o.cbuffer, o.quantum, o.level, o.prio]
        .into_iter()
        .enumerate()
    {
        let at = 24 + 4 * i;
        out[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    }
    out
}

/// `struct tc_htb_glob` as bytes, for qdisc dumps.
pub(crate) fn encode_glob(g: &HtbGlob) -> [u8; HTB_GLOB_LEN] {
    let mut out = [0u8; HTB_GLOB_LEN];
    for (i, v) in [g.version, g.rate2quantum, g.defcls, g.debug, g.direct_pkts]
        .into_iter()
        .enumerate()
    {
        out[4 * i..4 * i + 4].copy_from_slice(&v.to_ne_bytes());
    }
    out
}

/// `struct tc_htb_xstats` as bytes: lends, borrows, giants (always 0), tokens, ctokens.
pub(crate) fn encode_xstats(lends: u32, borrows: u32, tokens: i32, ctokens: i32) -> [u8; 20] {
    let mut out = [0u8; 20];
    out[0..4].copy_from_slice(&lends.to_ne_bytes());
    out[4..8].copy_from_slice(&borrows.to_ne_bytes());
    out[12..16].copy_from_slice(&tokens.to_ne_bytes());
    out[16..20].copy_from_slice(&ctokens.to_ne_bytes());
    out
}
