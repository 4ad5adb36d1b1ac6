// SPDX-License-Identifier: GPL-2.0

//! What imq and the `IMQ` target (module `xt_IMQ`) agree on: the tag the target writes in a
//! packet's control block for imq's hooks to read, and how many devices there can be
//! (kernel-independent; both modules compile this file).

#![allow(dead_code, reason = "imq and xt_IMQ each use their own part of it")]

/// Most devices imq creates (its `numdevs` parameter), as the original IMQ.
pub(crate) const MAX_DEVS: u32 = 16;

/// "Divert at hook H to device N": `(TARGET | H, N)`.
pub(crate) const TARGET: u32 = 0x494d_5100;
/// A queued packet: `(ENTRY, entry id)`.
pub(crate) const ENTRY: u32 = 0x494d_51ff;

/// The tag of a packet that a rule `-j IMQ --todev todev` matched at hook `hook`.
pub(crate) fn divert(todev: u32, hook: u8) -> (u32, u32) {
    (TARGET | u32::from(hook), todev)
}

/// Whether `tag` asks for a divert at hook `hook`.
pub(crate) fn is_divert(tag: (u32, u32), hook: u8) -> bool {
    tag.0 == TARGET | u32::from(hook)
}
