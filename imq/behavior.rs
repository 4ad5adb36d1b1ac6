// SPDX-License-Identifier: GPL-2.0

//! Where imq's netfilter hooks sit relative to NAT (kernel-independent; host-tested).
//!
//! `behavior=XY`: X places the PREROUTING hook, Y the POSTROUTING hook; `A` = after NAT,
//! `B` = before NAT. The priorities are those of the original IMQ patch, so rule sets written
//! for it classify the same addresses.

/// `NF_IP_PRI_MANGLE` (same value for IPv6).
pub(crate) const PRI_MANGLE: i32 = -150;
/// `NF_IP_PRI_NAT_DST` (same value for IPv6).
pub(crate) const PRI_NAT_DST: i32 = -100;
/// `NF_IP_PRI_NAT_SRC` (same value for IPv6).
pub(crate) const PRI_NAT_SRC: i32 = 100;
/// `NF_IP_PRI_LAST` (same value for IPv6).
pub(crate) const PRI_LAST: i32 = i32::MAX;

/// Hook placement chosen by the `behavior` module parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Behavior {
    /// PREROUTING hook runs after destination NAT.
    pub(crate) pre_after_nat: bool,
    /// POSTROUTING hook runs after source NAT.
    pub(crate) post_after_nat: bool,
}

impl Behavior {
    /// Parses `AA`, `AB`, `BA` or `BB` (case-insensitive). Anything else is `None`.
    pub(crate) fn parse(s: &[u8]) -> Option<Behavior> {
        let after = |c: u8| match c.to_ascii_uppercase() {
            b'A' => Some(true),
            b'B' => Some(false),
            _ => None,
        };
        match s {
            [pre, post] => Some(Behavior {
                pre_after_nat: after(*pre)?,
                post_after_nat: after(*post)?,
            }),
            _ => None,
        }
    }

    /// Netfilter priority of the PREROUTING hook.
    pub(crate) fn pre_routing_priority(self) -> i32 {
        if self.pre_after_nat {
            PRI_NAT_DST + 1
        } else {
            PRI_MANGLE + 1
        }
    }

    /// Netfilter priority of the POSTROUTING hook.
    pub(crate) fn post_routing_priority(self) -> i32 {
        if self.post_after_nat {
            PRI_LAST
        } else {
            PRI_NAT_SRC - 1
        }
    }

    /// The two-letter name, as given to the parameter.
    pub(crate) fn name(self) -> &'static str {
        match (self.pre_after_nat, self.post_after_nat) {
            (true, true) => "AA",
            (true, false) => "AB",
            (false, true) => "BA",
            (false, false) => "BB",
        }
    }
}
