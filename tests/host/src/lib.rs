//! The modules' kernel-independent files, compiled as they are into the kernel modules, and
//! their tests. Each `#[path]` module is the very file the module builds; nothing is copied.

// Items are pub(crate) as in the kernel crates; outside tests nothing here calls them.
#![cfg_attr(not(test), allow(dead_code))]

#[path = "../../../imq/behavior.rs"]
pub mod imq_behavior;
#[cfg(test)]
mod imq_behavior_tests;

#[path = "../../../toa/trusted.rs"]
pub mod toa_trusted;
#[cfg(test)]
mod toa_trusted_tests;
