// SPDX-License-Identifier: GPL-2.0

//! Per-CPU counters shown as a table in `/proc/net/<name>`, in the classic TOA layout: one row
//! per counter, one column per online CPU, then the total. The last row shows the missed hits of
//! the probes being watched.

use super::{probe, sys};
use core::ptr::NonNull;
use kernel::{ffi::c_char, prelude::*, str::CStrExt};

/// A `/proc/net` table of per-CPU counters.
///
/// # Invariants
///
/// `raw` points to the `knet_stats` that [`ProcStats::new`] created, with `_names.len()`
/// counters and its proc file, live until `drop` destroys it; the C side reads the row names
/// through `_names`' buffer, which lives as long as `self`.
pub(crate) struct ProcStats {
    raw: NonNull<sys::knet_stats>,
    // The C side keeps pointers into this array for the life of the proc file.
    _names: KVec<*const c_char>,
}

// SAFETY: the counters are per-CPU and updated with this_cpu ops; the proc file has its own
// locking; nothing else is shared.
unsafe impl Send for ProcStats {}
// SAFETY: `&ProcStats` adds to this CPU's counters (this_cpu ops) or reads their sum; the proc
// file reads them under its own locking.
unsafe impl Sync for ProcStats {}

impl ProcStats {
    /// Creates `/proc/net/<name>` (initial namespace) with one row per name; the last name is
    /// the row for missed probe hits.
    pub(crate) fn new(name: &'static CStr, names: &[&'static CStr]) -> Result<Self> {
        let mut ptrs = KVec::with_capacity(names.len(), GFP_KERNEL)?;
        for n in names {
            ptrs.push(n.as_char_ptr(), GFP_KERNEL)?;
        }
        let count = u32::try_from(names.len()).map_err(|_| EINVAL)?;
        // SAFETY: `name` and the strings are static; `ptrs` is kept alive in `self` for as long
        // as the proc file exists (it is removed in `drop` before `ptrs` is freed).
        let raw = unsafe { sys::knet_stats_create(name.as_char_ptr(), ptrs.as_ptr(), count) };
        let raw = NonNull::new(raw).ok_or(ENOMEM)?;
        // INVARIANT: `knet_stats_create` succeeded (non-null) with `count` counters, and `ptrs`,
        // whose buffer it reads, moves into `self` (moving the vector does not move its buffer).
        Ok(Self { raw, _names: ptrs })
    }

    /// Adds `v` (may be negative, for gauges) to counter `idx` on this CPU.
    pub(crate) fn add(&self, idx: usize, v: i64) {
        // SAFETY: by the type invariant `raw` is live until drop; the shim checks `idx` against
        // the counter count.
        unsafe { sys::knet_stats_add(self.raw.as_ptr(), idx as u32, v) }
    }

    /// Adds one to counter `idx`.
    pub(crate) fn inc(&self, idx: usize) {
        self.add(idx, 1);
    }

    /// The sum of counter `idx` over all CPUs.
    pub(crate) fn sum(&self, idx: usize) -> i64 {
        // SAFETY: by the type invariant `raw` is live until drop; the shim returns 0 for an
        // `idx` out of range.
        unsafe { sys::knet_stats_sum(self.raw.as_ptr(), idx as u32) }
    }

    /// Adds `probe`'s missed hits to the last row until [`Self::unwatch`].
    ///
    /// The proc file reads `probe`'s counter until then: the caller must unwatch `probe` before
    /// it is unregistered (not checked here).
    pub(super) fn watch(&self, probe: &dyn probe::Watched) -> Result {
        // SAFETY: by the type invariant `raw` is live; the counter is that of the registered
        // `probe`, and the caller unwatches it before the probe is unregistered.
        kernel::error::to_result(unsafe {
            sys::knet_stats_watch(self.raw.as_ptr(), probe.nmissed_counter())
        })
    }

    /// Stops showing `probe`; after this the proc file no longer reads its counter.
    pub(super) fn unwatch(&self, probe: &dyn probe::Watched) {
        // SAFETY: by the type invariant `raw` is live; the shim only compares the counter's
        // address with those it watches.
        unsafe { sys::knet_stats_unwatch(self.raw.as_ptr(), probe.nmissed_counter()) }
    }
}

impl Drop for ProcStats {
    fn drop(&mut self) {
        // SAFETY: by the type invariant `raw` is live; it is not used after this. The shim
        // removes the proc file (waiting for readers) before freeing the counters, and `_names`
        // is freed after this, with the other fields.
        unsafe { sys::knet_stats_destroy(self.raw.as_ptr()) }
    }
}
