// SPDX-License-Identifier: GPL-2.0

//! imq: the Intermediate Queueing Device.
//!
//! Packets diverted by the iptables target `IMQ --todev N` at PREROUTING or POSTROUTING are
//! queued on the virtual device `imqN`, whose qdisc (any tree) shapes them, and then continue
//! through the rest of the netfilter chain. This is the module skeleton: it validates its
//! parameters and registers nothing yet.

use kernel::prelude::*;

#[path = "../knet/knet.rs"]
mod knet;

mod behavior;

use behavior::Behavior;

module! {
    type: Imq,
    name: "imq",
    authors: ["rust-tc developers"],
    description: "Intermediate Queueing Device: shape ingress and multi-NIC traffic with any qdisc",
    license: "GPL",
    params: {
        numdevs: u32 {
            default: 2,
            description: "Number of imq devices to create (imq0..imqN-1), 1 to 16",
        },
    },
}

/// String parameters, declared in `imq_params.c`.
mod params {
    crate::knet::param::str_param!(pub(super) behavior);
}

/// Most devices the module creates, as the original IMQ.
const MAX_DEVS: u32 = 16;

struct Imq {
    numdevs: u32,
    behavior: Behavior,
}

impl kernel::Module for Imq {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let numdevs = module_parameters::numdevs.value();
        if !(1..=MAX_DEVS).contains(&numdevs) {
            pr_err!("numdevs={numdevs} is out of range (1 to {MAX_DEVS})\n");
            return Err(EINVAL);
        }
        let raw = params::behavior();
        let Some(behavior) = Behavior::parse(raw) else {
            pr_err!(
                "behavior={:?} is not one of AA, AB, BA, BB\n",
                kernel::str::BStr::from_bytes(raw)
            );
            return Err(EINVAL);
        };
        pr_info!(
            "loaded: numdevs={numdevs} behavior={} (PREROUTING prio {}, POSTROUTING prio {})\n",
            behavior.name(),
            behavior.pre_routing_priority(),
            behavior.post_routing_priority()
        );
        Ok(Imq { numdevs, behavior })
    }
}

impl Drop for Imq {
    fn drop(&mut self) {
        pr_info!(
            "unloaded ({} devices, behavior {})\n",
            self.numdevs,
            self.behavior.name()
        );
    }
}
