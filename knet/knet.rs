// SPDX-License-Identifier: GPL-2.0

//! knet: the binding layer shared by imq, toa and sch_htb_rs.
//!
//! Kernel APIs without an upstream Rust abstraction are reached here and only here: a
//! module-local bindgen run over the extra headers ([`sys`]), a C shim for `static inline`s and
//! macros (`knet/shim.c`, prefix `knet_`), and safe wrappers in the Rust-for-Linux style. Each
//! module compiles this directory into itself (`#[path = "../knet/knet.rs"] mod knet;`), so
//! nothing here is exported between modules.
#![allow(
    dead_code,
    reason = "each module uses its own part of the shared binding layer"
)]

pub(crate) mod build;
pub(crate) mod divert;
pub(crate) mod netlink;
pub(crate) mod param;
mod probe;
pub(crate) mod qdisc;
pub(crate) mod qdisc_parts;
pub(crate) mod skb;
pub(crate) mod stats;
pub(crate) mod sys;
pub(crate) mod tcp;
