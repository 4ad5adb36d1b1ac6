// SPDX-License-Identifier: GPL-2.0

//! imq: the Intermediate Queueing Device.
//!
//! Packets diverted by the iptables target `IMQ --todev N` at PREROUTING or POSTROUTING are
//! queued on the virtual device `imqN`, whose qdisc (any tree) shapes them, and then continue
//! through the rest of the netfilter chain. The mechanism (devices, hooks, target, per-packet
//! state, reinjection) is knet's `divert`; this module chooses names, hook priorities
//! (`behavior`) and which rules to accept (`rule`).

use kernel::prelude::*;

#[path = "../knet/knet.rs"]
mod knet;

mod behavior;
mod rule;

use behavior::Behavior;
use kernel::c_str;

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

/// The module's rule policy.
struct Policy {
    numdevs: u32,
}

impl knet::divert::DivertPolicy for Policy {
    fn check(&self, todev: u32, hook_mask: u32) -> Result<(), &'static str> {
        rule::check(todev, self.numdevs, hook_mask)
    }

    fn refused(&self, todev: u32, why: &'static str) {
        pr_info!(
            "rule refused (--todev {todev}, numdevs={}): {why}\n",
            self.numdevs
        );
    }
}

struct Imq {
    behavior: Behavior,
    numdevs: u32,
    /// Taken on unload, to report the counters after the teardown.
    divert: Option<knet::divert::Registration<Policy>>,
}

impl kernel::Module for Imq {
    fn init(module: &'static ThisModule) -> Result<Self> {
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
        let config = knet::divert::DivertConfig {
            name_fmt: c_str!("imq%d"),
            ndevs: numdevs,
            pre_priority: behavior.pre_routing_priority(),
            post_priority: behavior.post_routing_priority(),
            target: c_str!("IMQ"),
        };
        let divert = knet::divert::Registration::new(module, &config, Policy { numdevs })?;
        pr_info!(
            "loaded: numdevs={numdevs} behavior={} (PREROUTING prio {}, POSTROUTING prio {})\n",
            behavior.name(),
            behavior.pre_routing_priority(),
            behavior.post_routing_priority()
        );
        Ok(Imq {
            behavior,
            numdevs,
            divert: Some(divert),
        })
    }
}

impl Drop for Imq {
    fn drop(&mut self) {
        // Counted after the devices went: what their queues held is dropped_in_qdisc.
        let Some(divert) = self.divert.take() else {
            return;
        };
        let c = divert.finish();
        pr_info!(
            "unloaded ({} devices, behavior {}): diverted {} reinjected {} passed_down {} \
             no_state {} lost {} foreign {} gone {} dropped_in_qdisc {} expired {}\n",
            self.numdevs,
            self.behavior.name(),
            c.diverted,
            c.reinjected,
            c.passed_down,
            c.no_state,
            c.lost,
            c.foreign,
            c.gone,
            c.freed,
            c.expired
        );
    }
}
