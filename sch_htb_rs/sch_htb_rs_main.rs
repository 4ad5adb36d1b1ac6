// SPDX-License-Identifier: GPL-2.0

//! sch_htb_rs: the Hierarchical Token Bucket qdisc in Rust, driven by the stock `tc` tool.
//!
//! This is the module skeleton: it validates its parameters and registers nothing yet.

use kernel::prelude::*;

#[path = "../knet/knet.rs"]
mod knet;

#[allow(
    dead_code,
    reason = "the qdisc charges with it once it registers; host-tested meanwhile"
)]
mod rate;

module! {
    type: HtbRs,
    name: "sch_htb_rs",
    authors: ["rust-tc developers"],
    description: "Hierarchical Token Bucket qdisc (htb_rs) in Rust",
    license: "GPL",
    alias: ["net-sch-htb_rs"],
    params: {
        htb_hysteresis: bool {
            default: false,
            description: "Hysteresis mode: fewer CPU cycles, less accurate rates (as sch_htb)",
        },
        htb_rate_est: bool {
            default: true,
            description: "Set up a default rate estimator (4sec 16sec) for every class (as sch_htb)",
        },
    },
}

struct HtbRs;

impl kernel::Module for HtbRs {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!(
            "loaded for {} (hysteresis={}, rate_est={})\n",
            knet::build::kernel_release(),
            module_parameters::htb_hysteresis.value(),
            module_parameters::htb_rate_est.value()
        );
        Ok(HtbRs)
    }
}

impl Drop for HtbRs {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}
