// SPDX-License-Identifier: GPL-2.0

//! Counters kept per CPU: adding is an add to this CPU's copy (`this_cpu_add`), with no cache
//! line shared between CPUs on the packet path; reading sums the copies of every possible CPU.

use kernel::{
    bindings,
    cpu::{nr_cpu_ids, CpuId},
    cpumask::Cpumask,
};

#[cfg(knet_divert)]
pub(crate) use counters::PerCpuCounters;

/// Only imq counts this way on its packet path (toa's `/proc` table has its own areas).
#[cfg(knet_divert)]
mod counters {
    use super::{super::sys, possible_cpus, this_cpu_add};
    use core::ptr::{self, NonNull};
    use kernel::{
        bindings,
        ffi::{c_int, c_void},
        prelude::*,
    };

    /// `N` signed 64-bit counters per CPU.
    ///
    /// # Invariants
    ///
    /// `vals` is a per-CPU area of `N` `i64`s from `__alloc_percpu`, freed only in `drop`.
    pub(crate) struct PerCpuCounters<const N: usize> {
        vals: NonNull<c_void>,
    }

    // SAFETY: each CPU adds to its own copy with this_cpu ops; reads are whole words.
    unsafe impl<const N: usize> Send for PerCpuCounters<N> {}
    // SAFETY: as for `Send`.
    unsafe impl<const N: usize> Sync for PerCpuCounters<N> {}

    impl<const N: usize> PerCpuCounters<N> {
        /// `N` counters at zero.
        pub(crate) fn new() -> Result<Self> {
            // SAFETY: a plain allocation, zeroed by the per-CPU allocator.
            let vals =
                unsafe { sys::knet_alloc_percpu(N.max(1) * size_of::<i64>(), size_of::<i64>()) };
            // INVARIANT: a per-CPU area of `N` counters.
            Ok(Self {
                vals: NonNull::new(vals).ok_or(ENOMEM)?,
            })
        }

        /// Adds `v` to counter `idx` (ignored if out of range) on this CPU.
        #[inline]
        pub(crate) fn add(&self, idx: usize, v: i64) {
            if idx < N {
                // SAFETY: by the type invariant a live per-CPU area of `N` counters; `idx < N`.
                unsafe { this_cpu_add(self.vals.as_ptr(), idx, v) }
            }
        }

        /// Counter `idx` on this CPU (0 if out of range): meaningful only where the caller
        /// cannot move to another CPU before it uses the value (bottom halves or preemption
        /// off).
        #[inline]
        pub(crate) fn this_cpu(&self, idx: usize) -> i64 {
            if idx >= N {
                return 0;
            }
            // SAFETY: by the type invariant a live per-CPU area of `N` counters; `idx < N`.
            unsafe { super::this_cpu_read(self.vals.as_ptr(), idx) }
        }

        /// Adds one to counter `idx`.
        pub(crate) fn inc(&self, idx: usize) {
            self.add(idx, 1);
        }

        /// Counter `idx` of `cpu` (a possible CPU); 0 if `idx` is out of range.
        pub(crate) fn of_cpu(&self, cpu: u32, idx: usize) -> i64 {
            if idx >= N {
                return 0;
            }
            // SAFETY: by the type invariant a live per-CPU area of `N` counters; `cpu` is a possible
            // CPU (the caller's) and `idx < N`. Another CPU may be adding to its own copy: read
            // once, whole (a word on 64-bit).
            unsafe {
                let p = sys::knet_per_cpu_ptr(self.vals.as_ptr(), cpu as c_int).cast::<i64>();
                ptr::read_volatile(p.add(idx))
            }
        }

        /// Counter `idx` summed over every possible CPU.
        pub(crate) fn sum(&self, idx: usize) -> i64 {
            possible_cpus()
                .map(|cpu| self.of_cpu(cpu, idx))
                .fold(0i64, i64::wrapping_add)
        }
    }

    impl<const N: usize> Drop for PerCpuCounters<N> {
        fn drop(&mut self) {
            // SAFETY: allocated in `new` (type invariant); `&mut self`: no one adds or reads now.
            unsafe { bindings::free_percpu(self.vals.as_ptr()) }
        }
    }
}

/// `this_cpu_add` of one `i64`: on x86-64 the kernel's own single instruction (a
/// `gs`-relative add: this CPU's copy, safe against preemption and interrupts without
/// disabling either), elsewhere the C macro through its helper. The packet path counts twice
/// a packet, toa a connection; a call each was measurable (imq_pps_vs_ifb).
///
/// # Safety
///
/// `base` is a live per-CPU area (an address `gs` relocates, not one to dereference) of more
/// than `idx` `i64`s.
#[cfg(any(knet_divert, knet_probe))]
#[inline(always)]
pub(crate) unsafe fn this_cpu_add(base: *mut kernel::ffi::c_void, idx: usize, v: i64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: per the function's contract `pcp` is the per-CPU address of a live `i64` (only
    // offset, not dereferenced: `wrapping_add`), which `gs` (this CPU's per-CPU base) turns
    // into this CPU's copy, as `this_cpu_add` does; one instruction, so no other context on
    // this CPU interleaves with it.
    unsafe {
        let pcp = base.cast::<i64>().wrapping_add(idx);
        core::arch::asm!(
            "add qword ptr gs:[{pcp}], {v}",
            pcp = in(reg) pcp,
            v = in(reg) v,
            options(nostack),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: per the function's contract.
    unsafe {
        super::sys::knet_this_cpu_add_s64(base, idx as u32, v)
    }
}

/// `this_cpu_read` of one `i64`: on x86-64 one `gs`-relative load, elsewhere the C macro
/// through its helper.
///
/// # Safety
///
/// As for [`this_cpu_add`].
#[cfg(knet_divert)]
#[inline(always)]
pub(crate) unsafe fn this_cpu_read(base: *mut kernel::ffi::c_void, idx: usize) -> i64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as in `this_cpu_add`: `gs` turns the per-CPU address of a live `i64` into this
    // CPU's copy; one load.
    unsafe {
        let pcp = base.cast::<i64>().wrapping_add(idx);
        let v: i64;
        core::arch::asm!(
            "mov {v}, qword ptr gs:[{pcp}]",
            pcp = in(reg) pcp,
            v = out(reg) v,
            options(nostack, readonly, preserves_flags),
        );
        v
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: per the function's contract.
    unsafe {
        super::sys::knet_this_cpu_read_s64(base, idx as u32)
    }
}

fn mask_cpus(mask: &'static Cpumask) -> impl Iterator<Item = u32> {
    (0..nr_cpu_ids()).filter(move |&c| CpuId::from_u32(c).is_some_and(|id| mask.test(id)))
}

/// The possible CPUs, in order.
pub(crate) fn possible_cpus() -> impl Iterator<Item = u32> {
    // SAFETY: the kernel's mask of possible CPUs, static and fixed after boot; only read.
    mask_cpus(unsafe { Cpumask::from_raw(&raw const bindings::__cpu_possible_mask) })
}

/// The online CPUs, in order.
#[cfg(knet_probe)]
pub(crate) fn online_cpus() -> impl Iterator<Item = u32> {
    // SAFETY: the kernel's mask of online CPUs, static; only read.
    mask_cpus(unsafe { Cpumask::from_raw(&raw const bindings::__cpu_online_mask) })
}
