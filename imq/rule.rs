// SPDX-License-Identifier: GPL-2.0

//! Which `-j IMQ --todev N` rules `xt_IMQ` accepts, and the device a rule names
//! (kernel-independent; host-tested).

/// `NF_INET_PRE_ROUTING`.
pub(crate) const HOOK_PRE_ROUTING: u32 = 0;
/// `NF_INET_POST_ROUTING`.
pub(crate) const HOOK_POST_ROUTING: u32 = 4;

/// Checks a rule sending packets to device `todev` from the netfilter hooks in `hook_mask`
/// (bit `1 << NF_INET_*` per hook). Whether the device exists is checked apart.
pub(crate) fn check(todev: u32, hook_mask: u32) -> Result<(), &'static str> {
    if todev >= super::tag::MAX_DEVS {
        return Err("--todev is out of range: imq has at most 16 devices (imq0 to imq15)");
    }
    let allowed = (1 << HOOK_PRE_ROUTING) | (1 << HOOK_POST_ROUTING);
    if hook_mask == 0 || hook_mask & !allowed != 0 {
        return Err("IMQ works in PREROUTING and POSTROUTING only");
    }
    Ok(())
}

/// The name of device `todev` (`imq0`..`imq99`), NUL-terminated, and its length without the NUL.
pub(crate) fn device_name(todev: u32) -> ([u8; 6], usize) {
    let mut name = *b"imq\0\0\0";
    let mut len = 3;
    if todev >= 10 {
        name[len] = b'0' + (todev / 10 % 10) as u8;
        len += 1;
    }
    name[len] = b'0' + (todev % 10) as u8;
    len += 1;
    (name, len)
}
