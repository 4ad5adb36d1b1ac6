// SPDX-License-Identifier: GPL-2.0

//! xt_IMQ: the iptables target `IMQ --todev N`.
//!
//! It tags the packet for imq's hooks ("divert at this hook to imqN") and the chain goes on. It
//! sits in its own module, as the kernel's targets do, so that imq itself does not depend on
//! `x_tables` and `insmod imq.ko` works on a box where nothing loaded it yet; iptables (legacy
//! and nft) loads this module the first time a rule says `-j IMQ` (aliases `ipt_IMQ`,
//! `ip6t_IMQ`), and modprobe loads imq before it (soft dependency).

use kernel::{c_str, prelude::*};

#[path = "../knet/knet.rs"]
mod knet;

mod rule;
mod tag;

use knet::xtables::{RuleNet, TargetCheck, TargetRegistration};

module! {
    type: XtImq,
    name: "xt_IMQ",
    authors: ["rust-tc developers"],
    description: "iptables target IMQ: divert packets to an imq device's qdisc",
    license: "GPL",
    alias: ["ipt_IMQ", "ip6t_IMQ"],
}

knet::param::modinfo!(SOFTDEP, "softdep=pre: imq");

// The hook numbers `rule` copies, checked against the kernel's.
const _: () = {
    use knet::sys;
    assert!(rule::HOOK_PRE_ROUTING == sys::nf_inet_hooks_NF_INET_PRE_ROUTING);
    assert!(rule::HOOK_POST_ROUTING == sys::nf_inet_hooks_NF_INET_POST_ROUTING);
};

/// The rule check: a device number imq can have, the right hooks, and the device there (in the
/// rule's namespace, made by `ip link add`, or in the initial one).
struct Rules;

impl TargetCheck for Rules {
    fn check(&self, net: &RuleNet<'_>, todev: u32, hook_mask: u32) -> Result {
        // There is no extack for xtables: the kernel log it is (iptables says "Invalid
        // argument. Run `dmesg' for more information.").
        if let Err(why) = rule::check(todev, hook_mask) {
            pr_info!("rule refused (--todev {todev}): {why}\n");
            return Err(EINVAL);
        }
        let (name, len) = rule::device_name(todev);
        let name = CStr::from_bytes_with_nul(&name[..=len]).map_err(|_| EINVAL)?;
        if !net.has_device(name, c_str!("imq")) {
            pr_info!(
                "rule refused (--todev {todev}): no imq device {name} (load imq first, with \
                 numdevs={} or more, or ip link add {name} type imq)\n",
                todev + 1
            );
            return Err(EINVAL);
        }
        Ok(())
    }

    fn tag(todev: u32, hook: u8) -> (u32, u32) {
        tag::divert(todev, hook)
    }
}

struct XtImq {
    _target: TargetRegistration<Rules>,
}

impl kernel::Module for XtImq {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let rules = kernel::sync::Arc::new(Rules, GFP_KERNEL)?;
        let target = TargetRegistration::new(module, c_str!("IMQ"), rules)?;
        Ok(XtImq { _target: target })
    }
}
