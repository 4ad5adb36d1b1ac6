// SPDX-License-Identifier: GPL-2.0

//! sch_htb_rs: the Hierarchical Token Bucket qdisc in Rust, kind `htb_rs`, driven by the stock
//! `tc` tool with sch_htb's netlink ABI.
//!
//! The scheduler (`sched`, `bucket`, `links`, `wait_queue`), the parameter rules (`config`),
//! the packet-time arithmetic (`rate`) and the netlink attributes (`attrs`) are
//! kernel-independent and host-tested; `htb_qdisc` and `htb_state` are the glue to the kernel
//! through the `knet` binding layer.

use kernel::prelude::*;

#[path = "../knet/knet.rs"]
mod knet;

mod attrs;
mod bucket;
#[allow(
    dead_code,
    reason = "accessors, invariant checks and helpers the host tests use"
)]
mod config;
mod htb_qdisc;
mod htb_state;
#[allow(
    dead_code,
    reason = "accessors, invariant checks and helpers the host tests use"
)]
mod links;
mod rate;
#[allow(
    dead_code,
    reason = "accessors, invariant checks and helpers the host tests use"
)]
mod sched;
#[allow(
    dead_code,
    reason = "accessors, invariant checks and helpers the host tests use"
)]
mod wait_queue;

// The kernel constants and layouts that the host-tested `attrs` copies, checked against the
// kernel's own at build time.
#[allow(clippy::cast_lossless, reason = "`From` is not `const`")]
const _: () = {
    use core::mem::size_of;
    use kernel::bindings as k;
    assert!(attrs::TCA_HTB_PARMS as u32 == k::TCA_HTB_PARMS);
    assert!(attrs::TCA_HTB_INIT as u32 == k::TCA_HTB_INIT);
    assert!(attrs::TCA_HTB_CTAB as u32 == k::TCA_HTB_CTAB);
    assert!(attrs::TCA_HTB_RTAB as u32 == k::TCA_HTB_RTAB);
    assert!(attrs::TCA_HTB_DIRECT_QLEN as u32 == k::TCA_HTB_DIRECT_QLEN);
    assert!(attrs::TCA_HTB_RATE64 as u32 == k::TCA_HTB_RATE64);
    assert!(attrs::TCA_HTB_CEIL64 as u32 == k::TCA_HTB_CEIL64);
    assert!(attrs::TCA_HTB_PAD as u32 == k::TCA_HTB_PAD);
    assert!(attrs::TCA_HTB_OFFLOAD as u32 == k::TCA_HTB_OFFLOAD);
    assert!(attrs::HTB_OPT_LEN == size_of::<k::tc_htb_opt>());
    assert!(attrs::HTB_GLOB_LEN == size_of::<k::tc_htb_glob>());
    assert!(attrs::HTB_PROTOVER == k::TC_HTB_PROTOVER);
};

#[cfg(not(knet_compat_params))]
module! {
    type: HtbRsModule,
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
            default: false,
            description: "Set up a default rate estimator (4sec 16sec) for every class (as sch_htb)",
        },
    },
}

// A kernel crate whose module! has no bool parameters (7.2's): the same two parameters are
// declared in `sch_htb_rs_params.c`, built only then (see knet.mk).
#[cfg(knet_compat_params)]
module! {
    type: HtbRsModule,
    name: "sch_htb_rs",
    authors: ["rust-tc developers"],
    description: "Hierarchical Token Bucket qdisc (htb_rs) in Rust",
    license: "GPL",
    alias: ["net-sch-htb_rs"],
}

#[cfg(knet_compat_params)]
mod params {
    crate::knet::param::bool_param!(pub(super) htb_hysteresis);
    crate::knet::param::bool_param!(pub(super) htb_rate_est);
}

/// `htb_hysteresis`, read when a qdisc is created.
pub(crate) fn hysteresis() -> bool {
    #[cfg(not(knet_compat_params))]
    let v = knet::param::value(&module_parameters::htb_hysteresis);
    #[cfg(knet_compat_params)]
    let v = params::htb_hysteresis();
    v
}

/// `htb_rate_est`, read when a class is created.
pub(crate) fn rate_est_default() -> bool {
    #[cfg(not(knet_compat_params))]
    let v = knet::param::value(&module_parameters::htb_rate_est);
    #[cfg(knet_compat_params)]
    let v = params::htb_rate_est();
    v
}

struct HtbRsModule {
    _kind: knet::qdisc::Registration<htb_qdisc::HtbRs>,
}

impl kernel::Module for HtbRsModule {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let kind = knet::qdisc::Registration::new(module)?;
        pr_info!(
            "loaded for {} (hysteresis={}, rate_est={})\n",
            knet::build::kernel_release(),
            hysteresis(),
            rate_est_default()
        );
        Ok(HtbRsModule { _kind: kind })
    }
}

impl Drop for HtbRsModule {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}
