// SPDX-License-Identifier: GPL-2.0

//! Per-CPU counters shown as a table in `/proc/net/<name>`, in the classic TOA layout: one row
//! per counter, one column per online CPU, then the total. The last row shows the missed hits of
//! the probes being watched.
//!
//! Every network namespace has its own file: the initial namespace's shows the totals of all
//! namespaces, any other namespace's only what was counted in it (its counters live in the
//! namespace's own area, `net_generic`, made and freed with it by pernet operations).

use super::{
    percpu::{online_cpus, possible_cpus, this_cpu_add},
    probe, sys,
};
use core::{
    marker::PhantomData,
    ptr::{self, NonNull},
    sync::atomic::{AtomicPtr, Ordering},
};
use kernel::{
    bindings,
    ffi::{c_int, c_uint, c_ulong, c_void},
    new_mutex,
    prelude::*,
    seq_file::{seq_print, SeqFile},
    str::CStrExt,
    sync::Mutex,
    types::Opaque,
};

/// A network namespace, alive while the value is: what is counted belongs to it (a socket or
/// request of it is being handled).
///
/// # Invariants
///
/// `net` is a live namespace for `'a`.
pub(crate) struct NetNs<'a> {
    net: NonNull<bindings::net>,
    _life: PhantomData<&'a bindings::net>,
}

impl NetNs<'_> {
    /// The namespace of `sk` (a full socket, or a request socket: both begin with the common
    /// part that names it).
    ///
    /// # Safety
    ///
    /// `sk` is a live socket or request socket for the value's lifetime (which keeps its
    /// namespace alive).
    pub(super) unsafe fn of_sock(sk: *const bindings::sock) -> Self {
        // SAFETY: per the function's contract.
        let net = unsafe { sys::knet_sk_net(sk) };
        // INVARIANT: a live socket's namespace lives at least as long as the socket.
        NetNs {
            net: NonNull::new(net).unwrap_or(init_net()),
            _life: PhantomData,
        }
    }

    /// The initial namespace (static).
    pub(super) fn init() -> Self {
        // INVARIANT: the initial namespace lives forever.
        NetNs {
            net: init_net(),
            _life: PhantomData,
        }
    }

    fn is_init(&self) -> bool {
        self.net == init_net()
    }
}

/// The initial namespace, static: it never goes away.
fn init_net() -> NonNull<bindings::net> {
    // SAFETY: the address of a static is not null.
    unsafe { NonNull::new_unchecked(&raw mut bindings::init_net) }
}

/// The part of a namespace's `net_generic` area that is ours (zeroed by the pernet core, freed
/// after `net_exit`).
#[repr(C)]
struct NetArea {
    /// The namespace's per-CPU counters, or null (initial namespace, or none yet).
    vals: *mut c_void,
    table: *const Table,
}

/// The table whose pernet operations are registered (one per module: their callbacks carry
/// no pointer of their own).
static TABLE: AtomicPtr<Table> = AtomicPtr::new(ptr::null_mut());

/// Most probes whose missed hits one table shows.
const MAX_WATCH: usize = 16;

/// What the proc file reads: pinned, as the file holds its address.
///
/// # Invariants
///
/// `vals` is a per-CPU area of `names.len() - 1` counters (`i64`), allocated by `__alloc_percpu`
/// and freed only when `ProcStats` drops, after the proc files are gone. Every non-zero address
/// in `watch` is the missed-hit counter of a registered probe (see [`ProcStats::watch`]). While
/// `pernet` is registered, `net_id` is our `net_generic` id and the `vals` of each namespace's
/// [`NetArea`] other than the initial one is null or a per-CPU area like `vals`, with the
/// namespace's proc file.
#[pin_data]
struct Table {
    name: &'static CStr,
    names: &'static [&'static CStr],
    vals: NonNull<c_void>,
    #[pin]
    watch: Mutex<[usize; MAX_WATCH]>,
    pernet: Opaque<sys::pernet_operations>,
    net_id: Opaque<c_uint>,
}

impl Table {
    /// Counters, the missed-hits row aside.
    fn counters(&self) -> usize {
        self.names.len() - 1
    }

    /// Counter `idx` of `cpu` in `vals` (a possible CPU, `idx < counters()`).
    fn cpu_val(&self, vals: NonNull<c_void>, cpu: u32, idx: usize) -> i64 {
        // SAFETY: `vals` is `self.vals` or a namespace's area, live per-CPU areas of
        // `counters()` `i64`s (type invariant); `cpu` is a possible CPU and `idx` in range (the
        // callers'). Another CPU may be adding to its own copy: read once, whole (a word on
        // 64-bit).
        unsafe {
            let p = sys::knet_per_cpu_ptr(vals.as_ptr(), cpu as c_int).cast::<i64>();
            ptr::read_volatile(p.add(idx))
        }
    }

    fn sum_of(&self, vals: NonNull<c_void>, idx: usize) -> i64 {
        if idx >= self.counters() {
            return 0;
        }
        possible_cpus()
            .map(|cpu| self.cpu_val(vals, cpu, idx))
            .fold(0i64, i64::wrapping_add)
    }

    fn sum(&self, idx: usize) -> i64 {
        self.sum_of(self.vals, idx)
    }

    /// The counters of `net`'s own area, if it has one (not the initial namespace).
    fn net_vals(&self, net: &NetNs<'_>) -> Option<NonNull<c_void>> {
        if net.is_init() {
            return None;
        }
        // SAFETY: `net` is alive (its invariant) and our pernet operations are registered
        // while the table exists (`ProcStats`' invariant), so `net_id` is set and the area is
        // ours; `net_init` wrote it before the namespace could hold sockets.
        let area = unsafe {
            sys::knet_net_generic(net.net.as_ptr(), *self.net_id.get()).cast::<NetArea>()
        };
        // SAFETY: `area` is the live namespace's own (above), freed only after `net_exit`,
        // which cannot run while the namespace is alive.
        NonNull::new(unsafe { (*area).vals })
    }

    fn add(&self, vals: NonNull<c_void>, idx: usize, v: i64) {
        // SAFETY: `vals` is a live per-CPU area of `counters()` counters (`self.vals` or a live
        // namespace's); `idx` is in range (the callers').
        unsafe { this_cpu_add(vals.as_ptr(), idx, v) }
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

    fn show(&self, m: &SeqFile, vals: NonNull<c_void>) {
        seq_print!(m, "{:26}", "");
        for cpu in online_cpus() {
            seq_print!(m, "CPU{:<8}", cpu);
        }
        seq_print!(m, "total\n");
        for (idx, name) in self.names[..self.counters()].iter().enumerate() {
            seq_print!(m, "{:<25}:", name.to_str().unwrap_or("?"));
            for cpu in online_cpus() {
                seq_print!(m, "{:<10} ", self.cpu_val(vals, cpu, idx));
            }
            seq_print!(m, "{}\n", self.sum_of(vals, idx));
        }
        let last = self.names[self.counters()].to_str().unwrap_or("?");
        seq_print!(m, "{:<25}:", last);
        for _ in online_cpus() {
            seq_print!(m, "{:<10} ", "-");
        }
        seq_print!(m, "{}\n", self.missed());
    }
}

/// # Safety
///
/// Called by seq_file for our proc file, whose data is a live pinned [`Table`].
unsafe extern "C" fn show_cb(seq: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
    // SAFETY: the file's data (`single_open` puts it in `private`) is the `Table` given to
    // `proc_create_single_data`, live until the file is removed (which waits for readers); the
    // seq_file is this reader's own.
    let (t, m) = unsafe { (&*(*seq).private.cast::<Table>(), SeqFile::from_raw(seq)) };
    t.show(m, t.vals);
    0
}

/// # Safety
///
/// Called by seq_file for a namespace's proc file, whose data is the namespace's live
/// [`NetArea`] (with counters).
unsafe extern "C" fn show_net_cb(seq: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
    // SAFETY: the file's data is the namespace's area, which `net_exit` frees only after
    // removing the file (which waits for readers); its table outlives every namespace file.
    let (area, m) = unsafe { (&*(*seq).private.cast::<NetArea>(), SeqFile::from_raw(seq)) };
    // SAFETY: `net_init` pointed the area at the table, which outlives every namespace file
    // (its pernet operations, which remove them, are unregistered before it goes).
    let t = unsafe { &*area.table };
    if let Some(vals) = NonNull::new(area.vals) {
        t.show(m, vals);
    }
    0
}

/// # Safety
///
/// Called by the pernet core with a namespace being set up, while our operations are
/// registered.
unsafe extern "C" fn net_init(net: *mut bindings::net) -> c_int {
    if ptr::eq(net, init_net().as_ptr()) {
        // Its file shows the totals, made with the table.
        return 0;
    }
    // SAFETY: `TABLE` is set while the operations are registered.
    let t = unsafe { &*TABLE.load(Ordering::Acquire) };
    // SAFETY: `net` is being set up; our area in it is allocated (the pernet core's `size`).
    let area = unsafe { &mut *sys::knet_net_generic(net, *t.net_id.get()).cast::<NetArea>() };
    let size = t.counters().max(1) * size_of::<i64>();
    // SAFETY: a plain allocation, zeroed by the per-CPU allocator.
    let vals = unsafe { sys::knet_alloc_percpu(size, size_of::<i64>()) };
    if vals.is_null() {
        return ENOMEM.to_errno();
    }
    area.vals = vals;
    area.table = t;
    let data: *mut NetArea = area;
    // SAFETY: the name is static; the area outlives the file (`net_exit` removes it first).
    let pde = unsafe {
        sys::proc_create_single_data(
            t.name.as_char_ptr(),
            0o444,
            sys::net_proc_net(net).cast(),
            Some(show_net_cb),
            data.cast(),
        )
    };
    if pde.is_null() {
        // SAFETY: allocated above, not shared.
        unsafe { bindings::free_percpu(vals) };
        area.vals = ptr::null_mut();
        return ENOMEM.to_errno();
    }
    0
}

/// # Safety
///
/// Called by the pernet core with a namespace going away (or at unregistration), after
/// `net_init` succeeded for it.
unsafe extern "C" fn net_exit(net: *mut bindings::net) {
    if ptr::eq(net, init_net().as_ptr()) {
        return;
    }
    // SAFETY: as in `net_init`.
    let t = unsafe { &*TABLE.load(Ordering::Acquire) };
    // SAFETY: as in `net_init`; nothing counts in a namespace that is going away (its sockets
    // are gone).
    let area = unsafe { &mut *sys::knet_net_generic(net, *t.net_id.get()).cast::<NetArea>() };
    if area.vals.is_null() {
        return;
    }
    // SAFETY: made by `net_init`; removing it waits for its readers.
    unsafe { sys::remove_proc_entry(t.name.as_char_ptr(), sys::net_proc_net(net).cast()) };
    // SAFETY: allocated by `net_init`, no longer read or written.
    unsafe { bindings::free_percpu(area.vals) };
    area.vals = ptr::null_mut();
}

/// A `/proc/net` table of per-CPU counters, one file per network namespace.
///
/// # Invariants
///
/// `table` was given to `proc_create_single_data` as the data of `/proc/net/<name>` in the
/// initial namespace, which exists until `drop` removes it; its pernet operations are
/// registered (and `TABLE` points to it) until `drop`.
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
                // SAFETY: all-zero is a valid `pernet_operations` (no callbacks), filled in
                // below before the kernel sees it.
                pernet: Opaque::new(unsafe { core::mem::zeroed() }),
                net_id: Opaque::new(0),
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
                sys::net_proc_net(init_net().as_ptr()).cast(),
                Some(show_cb),
                data.cast_mut().cast(),
            )
        };
        if pde.is_null() {
            drop(table);
            free();
            return Err(ENOMEM);
        }
        let remove_file = || {
            // SAFETY: made above, not yet known to anyone but its readers.
            unsafe {
                sys::remove_proc_entry(
                    name.as_char_ptr(),
                    sys::net_proc_net(init_net().as_ptr()).cast(),
                )
            }
        };
        // SAFETY: not registered yet: ours to fill.
        let p = unsafe { &mut *table.pernet.get() };
        p.init = Some(net_init);
        p.exit = Some(net_exit);
        p.id = table.net_id.get();
        p.size = size_of::<NetArea>();
        let raw = ptr::from_ref::<Table>(&table).cast_mut();
        if TABLE
            .compare_exchange(ptr::null_mut(), raw, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            remove_file();
            drop(table);
            free();
            return Err(EBUSY);
        }
        // SAFETY: the operations are pinned in the table and outlive the registration
        // (unregistered in `drop`); `TABLE` points to the table for the callbacks.
        let err = unsafe { sys::register_pernet_subsys(table.pernet.get()) };
        if err != 0 {
            TABLE.store(ptr::null_mut(), Ordering::Release);
            remove_file();
            drop(table);
            free();
            return Err(Error::from_errno(err));
        }
        // INVARIANT: the file exists, with `table` as its data; the operations are registered.
        Ok(Self { table })
    }

    /// Adds `v` (may be negative, for gauges) to counter `idx` on this CPU, in the totals and in
    /// `net`'s own counters.
    pub(crate) fn add(&self, net: &NetNs<'_>, idx: usize, v: i64) {
        if idx < self.table.counters() {
            self.table.add(self.table.vals, idx, v);
            if let Some(vals) = self.table.net_vals(net) {
                self.table.add(vals, idx, v);
            }
        }
    }

    /// Adds one to counter `idx` (see [`Self::add`]).
    pub(crate) fn inc(&self, net: &NetNs<'_>, idx: usize) {
        self.add(net, idx, 1);
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
        // SAFETY: registered (type invariant); this runs `net_exit` for every namespace, which
        // removes its file and frees its counters.
        unsafe { sys::unregister_pernet_subsys(self.table.pernet.get()) };
        TABLE.store(ptr::null_mut(), Ordering::Release);
        // SAFETY: by the type invariant the file exists; removing it waits for its readers, so
        // nothing reads the table or the counters after this.
        unsafe {
            sys::remove_proc_entry(
                self.table.name.as_char_ptr(),
                sys::net_proc_net(init_net().as_ptr()).cast(),
            );
            bindings::free_percpu(self.table.vals.as_ptr());
        }
    }
}
