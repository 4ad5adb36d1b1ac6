//! The modules' kernel-independent files, compiled as they are into the kernel modules, and
//! their tests. Each `#[path]` module is the very file the module builds, under the same module
//! path it has there (so `super::` references resolve alike); nothing is copied.

// Items are pub(crate) as in the kernel crates; outside tests nothing here calls them.
#![cfg_attr(not(test), allow(dead_code))]

/// From `imq/`.
#[path = "../../../imq"]
pub mod imq {
    pub mod behavior;
    pub mod rule;
    pub mod tag;
}

/// From `knet/`: its kernel-independent data structures (over `kernel-model`).
#[path = "../../../knet"]
pub mod knet {
    pub mod slots;

    /// Stand-in for `knet/irq.rs` (a kernel primitive, not a data structure): a host thread has
    /// no interrupts to turn off, and its preemption only delays a spinner on another thread.
    pub mod irq {
        pub(crate) fn without_interrupts<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
    }
}

/// From `sch_htb_rs/`.
#[path = "../../../sch_htb_rs"]
pub mod sch_htb_rs {
    pub mod attrs;
    pub mod bucket;
    pub mod config;
    pub mod links;
    pub mod rate;
    pub mod sched;
    pub mod wait_queue;
}

/// From `toa/`.
#[path = "../../../toa"]
pub mod toa {
    pub mod nat64;
    pub mod option;
    pub mod trusted;
}

/// From `tools/toa-lb/`: the test balancer's packet rewriting.
#[path = "../../../tools/toa-lb/src"]
pub mod toa_lb {
    pub mod insert;
}

#[cfg(test)]
mod htb_attrs_tests;
#[cfg(test)]
mod htb_config_tests;
#[cfg(test)]
mod htb_rate_tests;
#[cfg(test)]
mod htb_sched_cost;
#[cfg(test)]
mod htb_sched_tests;
#[cfg(test)]
mod imq_behavior_tests;
#[cfg(test)]
mod imq_rule_tests;
#[cfg(test)]
mod knet_slots_tests;
#[cfg(test)]
mod toa_lb_tests;
#[cfg(test)]
mod toa_option_props;
#[cfg(test)]
mod toa_option_tests;
#[cfg(test)]
mod toa_trusted_tests;
