// SPDX-License-Identifier: GPL-2.0

//! Which `-j IMQ --todev N` rules the module accepts (kernel-independent; host-tested).

/// `NF_INET_PRE_ROUTING`.
pub(crate) const HOOK_PRE_ROUTING: u32 = 0;
/// `NF_INET_POST_ROUTING`.
pub(crate) const HOOK_POST_ROUTING: u32 = 4;

/// Checks a rule sending packets to device `todev` from the netfilter hooks in `hook_mask`
/// (bit `1 << NF_INET_*` per hook), with `numdevs` devices.
pub(crate) fn check(todev: u32, numdevs: u32, hook_mask: u32) -> Result<(), &'static str> {
    if todev >= numdevs {
        return Err("--todev is out of range: no such imq device (see the numdevs parameter)");
    }
    let allowed = (1 << HOOK_PRE_ROUTING) | (1 << HOOK_POST_ROUTING);
    if hook_mask == 0 || hook_mask & !allowed != 0 {
        return Err("IMQ works in PREROUTING and POSTROUTING only");
    }
    Ok(())
}
