// SPDX-License-Identifier: GPL-2.0

//! Per-CPU counters shown as a table in `/proc/net/<name>`, in the classic TOA layout: one row
//! per counter, one column per online CPU, then the total. The last row shows the missed hits of
//! the probes being watched.

use super::{probe, sys};
use core::ptr::{self, NonNull};
use kernel::{
    bindings,
    cpu::{nr_cpu_ids, CpuId},
    cpumask::Cpumask,
    ffi::{c_int, c_ulong, c_void},
    new_mutex,
    prelude::*,
    seq_file::{seq_print, SeqFile},
    str::CStrExt,
    sync::Mutex,
};

/// Most probes whose missed hits one table shows.
const MAX_WATCH: usize = 16;

/// What the proc file reads: pinned, as the file holds its address.
///
/// # Invariants
///
/// `vals` is a per-CPU area of `names.len() - 1` counters (`i64`), allocated by `__alloc_percpu`
/// and freed only when `ProcStats` drops, after the proc file is gone. Every non-zero address
/// in `watch` is the missed-hit counter of a registered probe (see [`ProcStats::watch`]).
#[pin_data]
struct Table {
    name: &'static CStr,
    names: &'static [&'static CStr],
    vals: NonNull<c_void>,
    #[pin]
    watch: Mutex<[usize; MAX_WATCH]>,
}

impl Table {
    /// Counters, the missed-hits row aside.
    fn counters(&self) -> usize {
        self.names.len() - 1
    }

    /// Counter `idx` of `cpu` (a possible CPU, `idx < counters()`).
    fn cpu_val(&self, cpu: u32, idx: usize) -> i64 {
        // SAFETY: by the type invariant `vals` is a live per-CPU area of `counters()` `i64`s;
        // `cpu` is a possible CPU and `idx` in range (the callers'). Another CPU may be adding
        // to its own copy: read once, whole (a word on 64-bit).
        unsafe {
            let p = sys::knet_per_cpu_ptr(self.vals.as_ptr(), cpu as c_int).cast::<i64>();
            ptr::read_volatile(p.add(idx))
        }
    }

    fn sum(&self, idx: usize) -> i64 {
        if idx >= self.counters() {
            return 0;
        }
        cpus(possible_mask())
            .map(|cpu| self.cpu_val(cpu, idx))
            .fold(0i64, i64::wrapping_add)
    }

    fn missed(&self) -> i64 {
        let watch = self.watch.lock();
        watch
            .iter()
            .filter(|&&c| c != 0)
            // SAFETY: by the type invariant a registered probe's counter, which fprobe updates
            // as it goes: read once, whole (`READ_ONCE`). The lock keeps `unwatch` from
            // returning (and the probe from going) while it is read.
            .map(|&c| unsafe { ptr::read_volatile(c as *const c_ulong) } as i64)
            .fold(0i64, i64::wrapping_add)
    }

    fn show(&self, m: &SeqFile) {
        seq_print!(m, "{:26}", "");
        for cpu in cpus(online_mask()) {
            seq_print!(m, "CPU{:<8}", cpu);
        }
        seq_print!(m, "total\n");
        for (idx, name) in self.names[..self.counters()].iter().enumerate() {
            seq_print!(m, "{:<25}:", name.to_str().unwrap_or("?"));
            for cpu in cpus(online_mask()) {
                seq_print!(m, "{:<10} ", self.cpu_val(cpu, idx));
            }
            seq_print!(m, "{}\n", self.sum(idx));
        }
        let last = self.names[self.counters()].to_str().unwrap_or("?");
        seq_print!(m, "{:<25}:", last);
        for _ in cpus(online_mask()) {
            seq_print!(m, "{:<10} ", "-");
        }
        seq_print!(m, "{}\n", self.missed());
    }
}

fn online_mask() -> &'static Cpumask {
    // SAFETY: the kernel's mask of online CPUs, static; only read.
    unsafe { Cpumask::from_raw(&raw const bindings::__cpu_online_mask) }
}

fn possible_mask() -> &'static Cpumask {
    // SAFETY: the kernel's mask of possible CPUs, static and fixed after boot; only read.
    unsafe { Cpumask::from_raw(&raw const bindings::__cpu_possible_mask) }
}

/// The CPUs of `mask`, in order.
fn cpus(mask: &Cpumask) -> impl Iterator<Item = u32> + '_ {
    (0..nr_cpu_ids()).filter(move |&c| CpuId::from_u32(c).is_some_and(|id| mask.test(id)))
}

/// # Safety
///
/// Called by seq_file for our proc file, whose data is a live pinned [`Table`].
unsafe extern "C" fn show_cb(seq: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
    // SAFETY: the file's data (`single_open` puts it in `private`) is the `Table` given to
    // `proc_create_single_data`, live until the file is removed (which waits for readers); the
    // seq_file is this reader's own.
    let (t, m) = unsafe { (&*(*seq).private.cast::<Table>(), SeqFile::from_raw(seq)) };
    t.show(m);
    0
}

/// A `/proc/net` table of per-CPU counters.
///
/// # Invariants
///
/// `table` was given to `proc_create_single_data` as the data of `/proc/net/<name>` in the
/// initial namespace, which exists until `drop` removes it.
pub(crate) struct ProcStats {
    table: Pin<KBox<Table>>,
}

// SAFETY: the counters are per-CPU, added to with this_cpu ops and read whole; the watch list
// is under its mutex; the rest is immutable.
unsafe impl Send for ProcStats {}
// SAFETY: as for `Send`: `&ProcStats` adds to this CPU's counters or reads them.
unsafe impl Sync for ProcStats {}

impl ProcStats {
    /// Creates `/proc/net/<name>` (initial namespace) with one row per name; the last name is
    /// the row for missed probe hits.
    pub(crate) fn new(name: &'static CStr, names: &'static [&'static CStr]) -> Result<Self> {
        if names.is_empty() {
            return Err(EINVAL);
        }
        let size = (names.len() - 1).max(1) * size_of::<i64>();
        // SAFETY: a plain allocation; zeroed by the per-CPU allocator.
        let vals = unsafe { sys::knet_alloc_percpu(size, size_of::<i64>()) };
        let vals = NonNull::new(vals).ok_or(ENOMEM)?;
        let free = || {
            // SAFETY: allocated above, not shared with anyone.
            unsafe { bindings::free_percpu(vals.as_ptr()) }
        };
        // INVARIANT: `vals` holds the counters; nothing is watched yet.
        let table = KBox::pin_init(
            pin_init!(Table {
                name,
                names,
                vals,
                watch <- new_mutex!([0; MAX_WATCH]),
            }),
            GFP_KERNEL,
        )
        .inspect_err(|_| free())?;
        let data: *const Table = &*table;
        // SAFETY: the name is static; `show_cb` reads `data`, which is pinned and outlives the
        // file (`drop` removes the file first). `init_net` is the static initial namespace.
        let pde = unsafe {
            sys::proc_create_single_data(
                name.as_char_ptr(),
                0o444,
                bindings::init_net.proc_net.cast(),
                Some(show_cb),
                data.cast_mut().cast(),
            )
        };
        if pde.is_null() {
            drop(table);
            free();
            return Err(ENOMEM);
        }
        // INVARIANT: the file exists, with `table` as its data.
        Ok(Self { table })
    }

    /// Adds `v` (may be negative, for gauges) to counter `idx` on this CPU.
    pub(crate) fn add(&self, idx: usize, v: i64) {
        if idx < self.table.counters() {
            // SAFETY: by `Table`'s invariant `vals` is a live per-CPU area; `idx` is in range.
            unsafe { sys::knet_this_cpu_add_s64(self.table.vals.as_ptr(), idx as u32, v) }
        }
    }

    /// Adds one to counter `idx`.
    pub(crate) fn inc(&self, idx: usize) {
        self.add(idx, 1);
    }

    /// The sum of counter `idx` over all CPUs (0 if out of range).
    pub(crate) fn sum(&self, idx: usize) -> i64 {
        self.table.sum(idx)
    }

    /// Adds `probe`'s missed hits to the last row until [`Self::unwatch`].
    ///
    /// The proc file reads `probe`'s counter until then: the caller must unwatch `probe` before
    /// it is unregistered (not checked here).
    pub(super) fn watch(&self, probe: &dyn probe::Watched) -> Result {
        let mut watch = self.table.watch.lock();
        let free = watch.iter_mut().find(|c| **c == 0).ok_or(ENOSPC)?;
        // INVARIANT: the counter of a registered probe, unwatched by the caller before the
        // probe goes.
        *free = probe.nmissed_counter() as usize;
        Ok(())
    }

    /// Stops showing `probe`; after this the proc file no longer reads its counter.
    pub(super) fn unwatch(&self, probe: &dyn probe::Watched) {
        let c = probe.nmissed_counter() as usize;
        for w in self.table.watch.lock().iter_mut().filter(|w| **w == c) {
            *w = 0;
        }
    }
}

impl Drop for ProcStats {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the file exists; removing it waits for its readers, so
        // nothing reads the table or the counters after this.
        unsafe {
            sys::remove_proc_entry(
                self.table.name.as_char_ptr(),
                bindings::init_net.proc_net.cast(),
            );
            bindings::free_percpu(self.table.vals.as_ptr());
        }
    }
}
