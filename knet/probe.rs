// SPDX-License-Identifier: GPL-2.0

//! Entry probes (an `ftrace_ops` each) and return probes (fprobes) on kernel functions, by
//! symbol name, and probes on tracepoints, by name.
//!
//! The probe structs (`struct ftrace_ops`, `struct fprobe`, the tracepoint's data) are Rust
//! objects, pinned for as long as they are registered; a registration keeps the handler context
//! (an `Arc`) alive and unregisters in `Drop`, after which no handler runs any more. Handlers run
//! in whatever context the probed function runs in, with preemption disabled: they must not
//! sleep.

use super::sys;
use core::{
    marker::PhantomData,
    pin::Pin,
    ptr,
    sync::atomic::{AtomicUsize, Ordering},
};
use kernel::{
    bindings,
    error::to_result,
    ffi::{c_int, c_ulong, c_void},
    prelude::*,
    str::CStrExt,
    sync::Arc,
    types::Opaque,
};

/// The registers of a probed call: its arguments on entry, its return value on return.
///
/// # Invariants
///
/// `self.0` is the register set ftrace handed to the handler that made this value, valid and
/// written by no one else while that handler runs; the value does not outlive the handler.
pub(super) struct Regs(*mut bindings::pt_regs);

impl Regs {
    /// The `n`th argument (from 0) of the probed function, as a machine word.
    #[cfg(CONFIG_X86_64)]
    pub(super) fn arg(&self, n: u32) -> usize {
        // SAFETY: by the type invariant `self.0` is the register set fprobe handed to the
        // handler that made `self`, valid and not written by anyone else for its duration.
        let r = unsafe { &*self.0 };
        // The x86-64 calling convention's argument registers: read here rather than through a
        // C call, as this runs on every hit of every probe.
        let word = match n {
            0 => r.di,
            1 => r.si,
            2 => r.dx,
            3 => r.cx,
            4 => r.r8,
            5 => r.r9,
            // SAFETY: by the type invariant `self.0` is the handler's register set; the helper
            // reads stack arguments within the probed frame, which is live during the handler.
            _ => unsafe { sys::knet_regs_arg(self.0, n) },
        };
        word as usize
    }

    /// The `n`th argument (from 0) of the probed function, as a machine word.
    #[cfg(not(CONFIG_X86_64))]
    pub(super) fn arg(&self, n: u32) -> usize {
        // SAFETY: by the type invariant `self.0` is the register set fprobe handed to the
        // handler that made `self`, valid for its duration; reading an argument register has no
        // side effect.
        unsafe { sys::knet_regs_arg(self.0, n) as usize }
    }

    /// The return value, in a return handler.
    pub(super) fn ret(&self) -> usize {
        // SAFETY: by the type invariant `self.0` is the register set of the running handler,
        // valid for its duration; in a return handler it holds the return value.
        unsafe { sys::knet_regs_return(self.0) as usize }
    }
}

/// A registered probe whose missed hits can be shown (see `ProcStats::watch`).
///
/// [`Watched::missed`] reads the counter: implementations must return one that is valid while
/// `self` lives (not enforced, as the trait is safe to implement).
pub(super) trait Watched {
    /// The probe's missed-hit counter, valid while the probe is registered.
    fn nmissed_counter(&self) -> *const c_ulong;

    /// Hits of the probe that were missed (recursion, or a full return stack).
    fn missed(&self) -> i64 {
        // SAFETY: the implementations (the registrations of this file) return the counter of
        // their registered fprobe, valid while `self` exists; fprobe updates it as it goes, so
        // it is read once, whole (`READ_ONCE`).
        unsafe { ptr::read_volatile(self.nmissed_counter()) as i64 }
    }
}

/// What a return probe does on entry to and return from the probed function.
pub(super) trait RetProbe {
    /// Shared state of the handlers.
    type Ctx: Send + Sync;
    /// What the entry handler keeps for the return handler of the same call.
    type Data: Copy;
    /// Entry: `None` skips the return handler for this call.
    fn entry(ctx: &Self::Ctx, regs: &Regs) -> Option<Self::Data>;
    /// Return.
    fn exit(ctx: &Self::Ctx, regs: &Regs, data: Self::Data);
}

/// The registers of a call as an fprobe handler or an ftrace callback gets them.
///
/// # Safety
///
/// `fregs` is the `ftrace_regs` fprobe or ftrace passed to the handler.
unsafe fn regs_of(fregs: *mut sys::ftrace_regs) -> Regs {
    // On x86-64 the ftrace_regs of a callback are a `struct __arch_ftrace_regs` whose first and
    // only field is a pt_regs holding the argument registers, and the return value at exit
    // (`arch_ftrace_regs(fregs)->regs`; the offset is checked at build time in probe.c).
    // INVARIANT: the running handler's registers; the caller keeps the value to the handler.
    Regs(fregs.cast())
}

/// An fprobe and the context its handlers see.
///
/// # Invariants
///
/// `ctx` points to the `C` of the `Arc` held by the `Fprobe` that owns this, for as long as
/// the probe is registered.
#[repr(C)]
struct FprobeInner {
    /// First: the handlers find `ctx` from it.
    fp: Opaque<sys::fprobe>,
    ctx: *const c_void,
}

/// A registered fprobe and the context its handlers see; unregistered (waiting for running
/// handlers) on drop.
///
/// # Invariants
///
/// `inner.fp` is registered from [`Fprobe::new`] until drop, pinned, with handlers that read the
/// context as a `C`; `inner.ctx` points to the `C` in `_ctx`.
struct Fprobe<C> {
    inner: Pin<KBox<FprobeInner>>,
    _ctx: Arc<C>,
}

// SAFETY: the probe is used through ftrace's own locking, the context is `Send + Sync`.
unsafe impl<C: Send + Sync> Send for Fprobe<C> {}
// SAFETY: `&Fprobe` only reads the missed-hit counter (an atomic word fprobe updates).
unsafe impl<C: Send + Sync> Sync for Fprobe<C> {}

impl<C: Send + Sync> Fprobe<C> {
    /// Probes `symbol` with `entry` and, if given, `exit` (then a return probe, whose entry
    /// handler keeps `data_size` bytes for it). Without an exit handler, an fprobe is a plain
    /// ftrace callback: no function graph.
    ///
    /// # Safety
    ///
    /// The handlers must read the context (see [`ctx_of`]) as a `C`, and `exit` at most
    /// `data_size` bytes of entry data, written by `entry` before it returns 0.
    unsafe fn new(
        symbol: &'static CStr,
        ctx: Arc<C>,
        entry: sys::fprobe_entry_cb,
        exit: sys::fprobe_exit_cb,
        data_size: usize,
    ) -> Result<Self> {
        let inner = KBox::pin(
            FprobeInner {
                // SAFETY: all-zero is an fprobe without handlers, filled in below.
                fp: Opaque::new(unsafe { core::mem::zeroed() }),
                // INVARIANT: `_ctx` below holds it.
                ctx: Arc::as_ptr(&ctx).cast(),
            },
            GFP_KERNEL,
        )?;
        // SAFETY: not registered yet: ours to fill.
        let fp = unsafe { &mut *inner.fp.get() };
        fp.entry_handler = entry;
        if exit.is_some() {
            fp.exit_handler = exit;
            fp.entry_data_size = data_size;
        }
        let mut syms = [symbol.as_char_ptr()];
        // SAFETY: the fprobe is pinned and stays registered until `drop`; `syms` is read during
        // the call only (the symbol is resolved then).
        to_result(unsafe { sys::register_fprobe_syms(inner.fp.get(), syms.as_mut_ptr(), 1) })?;
        // INVARIANT: registered just above, with handlers that read a `C` (the caller's
        // guarantee); `inner.ctx` points into `ctx`, kept in `_ctx`.
        Ok(Self { inner, _ctx: ctx })
    }
}

/// The context of the fprobe `fp`.
///
/// # Safety
///
/// `fp` is the `fp` of a registered `FprobeInner` whose `Fprobe<C>` is alive (it is, while a
/// handler of it runs).
unsafe fn ctx_of<'a, C>(fp: *mut sys::fprobe) -> &'a C {
    // SAFETY: `fp` is the first field of a `repr(C)` `FprobeInner`, whose `ctx` is the `C` of
    // the registration (type invariant).
    unsafe { &*(*fp.cast::<FprobeInner>()).ctx.cast::<C>() }
}

impl<C> Watched for Fprobe<C> {
    fn nmissed_counter(&self) -> *const c_ulong {
        // SAFETY: by the type invariant the fprobe is pinned and registered until `drop`; taking
        // a field's address reads nothing.
        unsafe { &raw const (*self.inner.fp.get()).nmissed }
    }
}

impl<C> Drop for Fprobe<C> {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the fprobe is registered; `unregister_fprobe` returns
        // once no handler runs any more, so the memory (and the context) may go after it.
        unsafe { sys::unregister_fprobe(self.inner.fp.get()) };
    }
}

/// A registered return probe (an fprobe: ftrace at entry, the function-graph tracer at return).
///
/// # Invariants
///
/// `probe` was made by [`RetProbeRegistration::new`]: its handlers are this type's `entry_cb`
/// and `exit_cb`, its context a `P::Ctx`, and each call's entry data `size_of::<P::Data>()`
/// bytes.
pub(super) struct RetProbeRegistration<P: RetProbe> {
    probe: Fprobe<P::Ctx>,
    _p: PhantomData<fn() -> P>,
}

impl<P: RetProbe> RetProbeRegistration<P> {
    /// Probes entry to and return from `symbol`.
    pub(super) fn new(symbol: &'static CStr, ctx: Arc<P::Ctx>) -> Result<Self> {
        // fprobe keeps at most 15 words of entry data a call (`MAX_FPROBE_DATA_SIZE`; more is
        // refused with E2BIG at registration): refused here at build time instead.
        const { assert!(core::mem::size_of::<P::Data>() <= 15 * core::mem::size_of::<usize>()) };
        // SAFETY: this type's trampolines read the context as `P::Ctx`, and the exit handler a
        // `P::Data` that the entry handler wrote when it returned 0.
        let probe = unsafe {
            Fprobe::new(
                symbol,
                ctx,
                Some(Self::entry_cb),
                Some(Self::exit_cb),
                core::mem::size_of::<P::Data>(),
            )
        }?;
        // INVARIANT: registered just above with this type's trampolines, `ctx` and
        // `size_of::<P::Data>()` bytes of entry data.
        Ok(Self {
            probe,
            _p: PhantomData,
        })
    }

    /// # Safety
    ///
    /// Called by fprobe on entry to the probed function, for a probe made by [`Self::new`].
    unsafe extern "C" fn entry_cb(
        fp: *mut sys::fprobe,
        _entry_ip: c_ulong,
        _ret_ip: c_ulong,
        fregs: *mut sys::ftrace_regs,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: this is a handler of a registered probe of this type, whose context is a
        // `P::Ctx` (type invariant) and whose `Fprobe` lives while it runs; `fregs` are its
        // registers.
        let (ctx, regs) = unsafe { (ctx_of::<P::Ctx>(fp), regs_of(fregs)) };
        match P::entry(ctx, &regs) {
            Some(d) => {
                // SAFETY: by the type invariant the call has `size_of::<P::Data>()` bytes of
                // entry data (`entry_data_size`), possibly unaligned; written before the exit
                // reads it.
                unsafe { data.cast::<P::Data>().write_unaligned(d) };
                0
            }
            // Non-zero skips the return handler of this call.
            None => 1,
        }
    }

    /// # Safety
    ///
    /// Called by fprobe on return of a call whose entry handler returned 0.
    unsafe extern "C" fn exit_cb(
        fp: *mut sys::fprobe,
        _entry_ip: c_ulong,
        _ret_ip: c_ulong,
        fregs: *mut sys::ftrace_regs,
        data: *mut c_void,
    ) {
        // SAFETY: this is a handler of a registered probe of this type, whose context is a
        // `P::Ctx` (type invariant) and whose `Fprobe` lives while it runs; `fregs` are its
        // registers.
        let (ctx, regs) = unsafe { (ctx_of::<P::Ctx>(fp), regs_of(fregs)) };
        // SAFETY: fprobe calls the exit handler only when the entry handler returned 0, which
        // `entry_cb` does after writing a `P::Data` into the entry data.
        let d = unsafe { data.cast::<P::Data>().read_unaligned() };
        P::exit(ctx, &regs, d);
    }
}

impl<P: RetProbe> Watched for RetProbeRegistration<P> {
    fn nmissed_counter(&self) -> *const c_ulong {
        self.probe.nmissed_counter()
    }
}

/// What an entry probe does on entry to the probed function.
pub(super) trait EntryProbe {
    /// Shared state of the handler.
    type Ctx: Send + Sync;
    /// Entry.
    fn hit(ctx: &Self::Ctx, regs: &Regs);
}

/// An entry probe's own `ftrace_ops`, the context its callback sees, and its missed hits.
///
/// # Invariants
///
/// `ctx` points to the context of the `Arc` held by the registration that owns this, for as
/// long as `ops` is registered.
#[repr(C)]
struct FtraceInner {
    /// First: the callback finds the rest from it.
    ops: Opaque<sys::ftrace_ops>,
    ctx: *const c_void,
    /// Hits not handled because the callback was already running on this CPU in the same
    /// context (the probed function called from within a handler).
    missed: AtomicUsize,
}

/// A registered entry probe: an `ftrace_ops` of its own on the probed function, whose
/// callback ftrace calls straight from the function's trampoline with the argument registers
/// (an fprobe would add a hash lookup of the function and a call through its handler pointer
/// on every hit; a kprobe on ftrace saves every register), and without the function-graph
/// return that a return probe costs.
///
/// # Invariants
///
/// `inner.ops` is registered from [`EntryProbeRegistration::new`] until drop, pinned, with
/// this type's `func` as its callback and a filter of the one probed function; `inner.ctx`
/// points to the `P::Ctx` in `_ctx`.
pub(super) struct EntryProbeRegistration<P: EntryProbe> {
    inner: Pin<KBox<FtraceInner>>,
    _ctx: Arc<P::Ctx>,
    _p: PhantomData<fn() -> P>,
}

// SAFETY: the ops are used through ftrace's own locking; the context is `Send + Sync`.
unsafe impl<P: EntryProbe> Send for EntryProbeRegistration<P> {}
// SAFETY: `&EntryProbeRegistration` only reads the missed-hit counter, an atomic.
unsafe impl<P: EntryProbe> Sync for EntryProbeRegistration<P> {}

/// Longest symbol an entry probe takes (ftrace's filter parser edits a copy in place).
const SYMBOL_MAX: usize = 64;

impl<P: EntryProbe> EntryProbeRegistration<P> {
    /// Probes the entry of `symbol`: every function of that name that ftrace can trace.
    pub(super) fn new(symbol: &'static CStr, ctx: Arc<P::Ctx>) -> Result<Self> {
        let name = symbol.to_bytes();
        if name.is_empty() || name.len() >= SYMBOL_MAX {
            return Err(EINVAL);
        }
        let mut buf = [0u8; SYMBOL_MAX];
        buf[..name.len()].copy_from_slice(name);
        let inner = KBox::pin(
            FtraceInner {
                // SAFETY: all-zero is an `ftrace_ops` with no callback, no flags and no filter,
                // as a static one starts; filled in below before registration.
                ops: Opaque::new(unsafe { core::mem::zeroed() }),
                // INVARIANT: `_ctx` below holds it.
                ctx: Arc::as_ptr(&ctx).cast(),
                missed: AtomicUsize::new(0),
            },
            GFP_KERNEL,
        )?;
        let ops = inner.ops.get();
        // SAFETY: not registered yet: ours to fill. No flags: no recursion guard or RCU check
        // from ftrace (the callback guards itself, and the probed functions run where RCU
        // watches); the arguments come with every callback (checked at build time in probe.c).
        unsafe { (*ops).func = Some(Self::func) };
        // SAFETY: `ops` is pinned and not registered; `buf` holds the name (`name.len()`
        // bytes, NUL after), which ftrace parses during the call only.
        to_result(unsafe {
            sys::ftrace_set_filter(ops, buf.as_mut_ptr(), name.len() as c_int, 1)
        })?;
        // SAFETY: `ops` is pinned, filtered to the probed function, and stays registered until
        // `drop` (or is freed of its filter just below on failure).
        if let Err(e) = to_result(unsafe { sys::register_ftrace_function(ops) }) {
            // SAFETY: never registered; its filter was allocated by `ftrace_set_filter`.
            unsafe { sys::ftrace_free_filter(ops) };
            return Err(e);
        }
        // INVARIANT: registered just above with this type's callback and `ctx`.
        Ok(Self {
            inner,
            _ctx: ctx,
            _p: PhantomData,
        })
    }

    /// # Safety
    ///
    /// Called by ftrace on entry to the probed function, for the ops of a registration of
    /// this type, with the call's registers.
    unsafe extern "C" fn func(
        ip: c_ulong,
        parent_ip: c_ulong,
        op: *mut sys::ftrace_ops,
        fregs: *mut sys::ftrace_regs,
    ) {
        // SAFETY: `op` is the first field of a `repr(C)` `FtraceInner`, alive while its ops
        // are registered, which they are while this runs.
        let inner = unsafe { &*op.cast::<FtraceInner>() };
        // Also keeps this CPU (preemption off) until the unlock.
        // SAFETY: an ftrace callback's own `ip` and `parent_ip`.
        let bit = unsafe { sys::knet_ftrace_recursion_trylock(ip, parent_ip) };
        if bit < 0 {
            inner.missed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // SAFETY: by the type invariants `inner.ctx` is the `P::Ctx` the registration holds
        // while registered; `fregs` are the running call's registers.
        let (ctx, regs) = unsafe { (&*inner.ctx.cast::<P::Ctx>(), regs_of(fregs)) };
        P::hit(ctx, &regs);
        // SAFETY: `bit` came from the trylock above.
        unsafe { sys::knet_ftrace_recursion_unlock(bit) };
    }
}

impl<P: EntryProbe> Watched for EntryProbeRegistration<P> {
    fn nmissed_counter(&self) -> *const c_ulong {
        // `usize` and `unsigned long` are one type on the kernel's targets.
        self.inner.missed.as_ptr().cast_const().cast()
    }
}

impl<P: EntryProbe> Drop for EntryProbeRegistration<P> {
    fn drop(&mut self) {
        let ops = self.inner.ops.get();
        // SAFETY: by the type invariant `ops` is registered. For ops outside the core kernel
        // (ours are allocated) unregistering waits until no CPU runs the callback or the
        // trampoline that calls it, so the memory and the context may go afterwards; then the
        // filter it no longer uses is freed.
        unsafe {
            sys::unregister_ftrace_function(ops);
            sys::ftrace_free_filter(ops);
        }
    }
}

/// What a probe on a tracepoint with the prototype `(struct sock *sk)` does.
pub(super) trait SockTracepoint {
    /// Shared state of the handler.
    type Ctx: Send + Sync;
    /// The tracepoint fired for socket `sk` (an address, never dereferenced here).
    fn hit(ctx: &Self::Ctx, sk: usize);
}

/// A tracepoint being probed and the context its probe sees.
///
/// # Invariants
///
/// `ctx` points to the context of the `Arc` held by the registration that owns this. `tp` is null
/// until `new` finds the tracepoint named `name`, then that tracepoint (core kernel: never freed).
#[repr(C)]
struct TracepointInner {
    name: &'static CStr,
    tp: *mut bindings::tracepoint,
    ctx: *const c_void,
}

/// A registered probe on a tracepoint: a direct call from the traced code, far cheaper than a
/// kprobe; found by name among the core kernel's tracepoints (`for_each_kernel_tracepoint`:
/// tracepoints need no export to be watched this way).
///
/// # Invariants
///
/// `probe_cb` is registered on `inner.tp` (non-null) with `inner`'s address as its data, from
/// `new` until drop; `inner` is pinned and `inner.ctx` points to the `P::Ctx` in `_ctx`.
pub(super) struct SockTracepointRegistration<P: SockTracepoint> {
    inner: Pin<KBox<TracepointInner>>,
    _ctx: Arc<P::Ctx>,
    _p: PhantomData<P>,
}

// SAFETY: the probe is used through the tracepoint core's own locking; the context is
// `Send + Sync`.
unsafe impl<P: SockTracepoint> Send for SockTracepointRegistration<P> {}
// SAFETY: `&SockTracepointRegistration` allows nothing.
unsafe impl<P: SockTracepoint> Sync for SockTracepointRegistration<P> {}

impl<P: SockTracepoint> SockTracepointRegistration<P> {
    /// Probes tracepoint `name`, which must have the prototype `(struct sock *sk)`.
    pub(super) fn new(name: &'static CStr, ctx: Arc<P::Ctx>) -> Result<Self> {
        let mut inner = KBox::pin(
            TracepointInner {
                name,
                tp: ptr::null_mut(),
                // INVARIANT: `_ctx` below holds it.
                ctx: Arc::as_ptr(&ctx).cast(),
            },
            GFP_KERNEL,
        )?;
        let raw: *mut TracepointInner = &mut *inner;
        // SAFETY: `find_cb` reads `raw` as a `TracepointInner` for the duration of the call.
        unsafe { bindings::for_each_kernel_tracepoint(Some(Self::find_cb), raw.cast()) };
        if inner.tp.is_null() {
            return Err(ENOENT);
        }
        // SAFETY: `probe_cb` has the tracepoint's prototype with the probe's data pointer first
        // (`(void *data, struct sock *sk)`, as the caller promises for `name`); `inner` is
        // pinned and stays registered until `drop`.
        to_result(unsafe {
            bindings::tracepoint_probe_register(inner.tp, Self::probe_cb as *mut c_void, raw.cast())
        })?;
        // INVARIANT: registered just above on the tracepoint found, with `inner` as the data.
        Ok(Self {
            inner,
            _ctx: ctx,
            _p: PhantomData,
        })
    }

    /// # Safety
    ///
    /// Called by `for_each_kernel_tracepoint` with a tracepoint and the `TracepointInner` of
    /// `new`.
    unsafe extern "C" fn find_cb(tp: *mut bindings::tracepoint, priv_: *mut c_void) {
        // SAFETY: per the function's contract; tracepoint names are static strings.
        unsafe {
            let t = &mut *priv_.cast::<TracepointInner>();
            if t.tp.is_null() && CStr::from_char_ptr((*tp).name) == t.name {
                // INVARIANT: the first tracepoint named `name`; set once.
                t.tp = tp;
            }
        }
    }

    /// # Safety
    ///
    /// Called by the tracepoint with the data given at registration.
    unsafe extern "C" fn probe_cb(data: *mut c_void, sk: *mut bindings::sock) {
        // SAFETY: by the type invariants of `SockTracepointRegistration<P>` and
        // `TracepointInner`, the data is the registration's pinned `TracepointInner`, whose
        // `ctx` points to the `P::Ctx` the registration holds while the probe is registered.
        let ctx = unsafe { &*(*data.cast::<TracepointInner>()).ctx.cast::<P::Ctx>() };
        P::hit(ctx, sk as usize);
    }
}

impl<P: SockTracepoint> Drop for SockTracepointRegistration<P> {
    fn drop(&mut self) {
        let raw: *const TracepointInner = &*self.inner;
        // SAFETY: by the type invariant `probe_cb` is registered on `inner.tp` with this data;
        // afterwards, wait until no CPU still runs the probe, so the memory and the context may
        // go.
        unsafe {
            bindings::tracepoint_probe_unregister(
                self.inner.tp,
                Self::probe_cb as *mut c_void,
                raw.cast_mut().cast(),
            );
            sys::knet_tracepoint_synchronize_unregister();
        }
    }
}
