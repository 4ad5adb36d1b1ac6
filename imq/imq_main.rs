// SPDX-License-Identifier: GPL-2.0

//! imq: the Intermediate Queueing Device.
//!
//! Packets diverted by the iptables target `IMQ --todev N` at PREROUTING or POSTROUTING are
//! queued on the virtual device `imqN`, whose qdisc (any tree) shapes them, and then continue
//! through the rest of the netfilter chain. The target is module `xt_IMQ` (`xt_imq_main.rs`),
//! so this one loads without `x_tables`. The datapath (`datapath`: devices, hooks, per-packet
//! state, reinjection) is safe Rust over knet's netfilter and netdev abstractions; `behavior`
//! chooses the hook priorities.

use kernel::prelude::*;

#[path = "../knet/knet.rs"]
mod knet;

mod behavior;
mod datapath;
mod tag;

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
        numqueues: u32 {
            default: 1,
            description: "Transmit queues of each device (flows spread by hash, reinjected per queue), 1 to 32",
        },
    },
}

/// String parameters, declared in `imq_params.c`.
mod params {
    crate::knet::param::str_param!(pub(super) behavior);
}

// The kernel constants the host-tested parts copy, checked against the kernel's own.
const _: () = {
    use knet::netfilter::priority;
    assert!(behavior::PRI_MANGLE == priority::MANGLE);
    assert!(behavior::PRI_NAT_DST == priority::NAT_DST);
    assert!(behavior::PRI_NAT_SRC == priority::NAT_SRC);
    assert!(behavior::PRI_LAST == priority::LAST);
};

struct Imq {
    behavior: Behavior,
    numdevs: u32,
    /// Taken on unload, to report the counters after the teardown.
    datapath: Option<datapath::Datapath>,
}

impl kernel::Module for Imq {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let numdevs = knet::param::value(&module_parameters::numdevs);
        if !(1..=tag::MAX_DEVS).contains(&numdevs) {
            pr_err!(
                "numdevs={numdevs} is out of range (1 to {})\n",
                tag::MAX_DEVS
            );
            return Err(EINVAL);
        }
        let numqueues = knet::param::value(&module_parameters::numqueues);
        if !(1..=datapath::MAX_QUEUES).contains(&numqueues) {
            pr_err!(
                "numqueues={numqueues} is out of range (1 to {})\n",
                datapath::MAX_QUEUES
            );
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
        let config = datapath::Config {
            ndevs: numdevs,
            nqueues: numqueues,
            pre_priority: behavior.pre_routing_priority(),
            post_priority: behavior.post_routing_priority(),
        };
        let datapath = datapath::Datapath::new(&config)?;
        pr_info!(
            "loaded: numdevs={numdevs} numqueues={numqueues} behavior={} (PREROUTING prio {}, POSTROUTING prio {})\n",
            behavior.name(),
            behavior.pre_routing_priority(),
            behavior.post_routing_priority()
        );
        Ok(Imq {
            behavior,
            numdevs,
            datapath: Some(datapath),
        })
    }
}

impl Drop for Imq {
    fn drop(&mut self) {
        // Counted after the devices went: what their queues held is dropped_in_qdisc.
        let Some(datapath) = self.datapath.take() else {
            return;
        };
        let c = datapath.finish();
        pr_info!(
            "unloaded ({} devices, behavior {}): diverted {} reinjected {} passed_down {} \
             no_state {} lost {} foreign {} gone {} dropped_in_qdisc {} expired {} outstanding {} segmented {} seg_dropped {} copies {}\n",
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
            c.expired,
            c.outstanding,
            c.segmented,
            c.seg_dropped,
            c.copies
        );
    }
}
