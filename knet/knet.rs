// SPDX-License-Identifier: GPL-2.0

//! knet: the binding layer shared by imq, toa and sch_htb_rs.
//!
//! Kernel APIs without an upstream Rust abstraction are reached here and only here: a
//! module-local bindgen run over the extra headers ([`sys`]), a C shim for `static inline`s and
//! macros (`knet/shim.c`, prefix `knet_`), and safe wrappers in the Rust-for-Linux style. Each
//! module compiles this directory into itself (`#[path = "../knet/knet.rs"] mod knet;`), so
//! nothing here is exported between modules.

#[cfg(knet_qdisc)]
pub(crate) mod build;
#[cfg(any(knet_qdisc, knet_probe))]
pub(crate) mod errno;
#[cfg(knet_divert)]
pub(crate) mod irq;
#[cfg(knet_probe)]
pub(crate) mod lock;
#[cfg(knet_divert)]
pub(crate) mod netdev;
#[cfg(knet_divert)]
pub(crate) mod netfilter;
#[cfg(knet_qdisc)]
pub(crate) mod netlink;
pub(crate) mod param;
#[cfg(any(knet_probe, knet_divert))]
pub(crate) mod percpu;
#[cfg(knet_probe)]
mod probe;
#[cfg(knet_qdisc)]
pub(crate) mod qdisc;
#[cfg(knet_qdisc)]
pub(crate) mod qdisc_parts;
#[cfg(any(knet_qdisc, knet_divert, knet_probe, knet_xt))]
pub(crate) mod skb;
#[cfg(knet_divert)]
pub(crate) mod skb_watch;
#[cfg(knet_divert)]
pub(crate) mod slots;
#[cfg(knet_probe)]
pub(crate) mod sockopt;
#[cfg(knet_probe)]
pub(crate) mod stats;
pub(crate) mod sys;
#[cfg(knet_probe)]
pub(crate) mod tcp;
#[cfg(knet_divert)]
pub(crate) mod timer;
#[cfg(knet_xt)]
pub(crate) mod xtables;
