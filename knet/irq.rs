// SPDX-License-Identifier: GPL-2.0

//! Local interrupts off for a few instructions: [`without_interrupts`].
//!
//! For sections that others, on other CPUs, spin on (a [`super::slots`] slot held while it is
//! checked): such a section must not be interrupted or preempted, or a spinner in the
//! interrupting context, or a higher-priority task on the same CPU, would wait for it forever.
//! `spin_lock_irqsave` would do as much on a stock kernel but sleeps on PREEMPT_RT, and the
//! 7.3 kernel crate's `local_interrupt_disable` is missing from 7.2. This is `local_irq_save`,
//! which turns interrupts off on every kernel flavour, PREEMPT_RT included: the section must
//! not take a lock, allocate or sleep.

use super::sys;

/// Runs `f` with local interrupts off (and so without preemption or migration), then restores
/// them as they were.
#[inline]
pub(crate) fn without_interrupts<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: no arguments; allowed in any context.
    let flags = unsafe { sys::knet_local_irq_save() };
    let r = f();
    // SAFETY: the state saved just above on this CPU (interrupts off: no migration since), and
    // every save `f` made is restored by now (saves and restores nest: each is scoped by this
    // function, or by C code that restores before returning).
    unsafe { sys::knet_local_irq_restore(flags) };
    r
}
