// SPDX-License-Identifier: GPL-2.0

//! Entry and return probes (fprobes) on kernel functions, by symbol name, and probes on
//! tracepoints, by name.
//!
//! The probe structs are allocated and owned by the C shim; a registration keeps the handler
//! context (an `Arc`) alive for as long as the probe is registered and unregisters in `Drop`,
//! after which no handler runs any more. Handlers run in whatever context the probed function
//! runs in, with preemption disabled: they must not sleep.

use super::sys;
use core::{marker::PhantomData, ptr::NonNull};
use kernel::{
    bindings,
    error::to_result,
    ffi::{c_int, c_void},
    prelude::*,
    str::CStrExt,
    sync::Arc, //
};

/// The registers of a probed call: its arguments on entry, its return value on return.
pub(super) struct Regs(*mut bindings::pt_regs);

impl Regs {
    /// The `n`th argument (from 0) of the probed function, as a machine word.
    #[cfg(CONFIG_X86_64)]
    pub(super) fn arg(&self, n: u32) -> usize {
        // SAFETY: `self.0` is the register set fprobe handed to the handler that made `self`,
        // valid and not written by anyone else for the handler's duration.
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
            // SAFETY: as above; the shim reads stack arguments within the probed frame.
            _ => unsafe { sys::knet_regs_arg(self.0, n) },
        };
        word as usize
    }

    /// The `n`th argument (from 0) of the probed function, as a machine word.
    #[cfg(not(CONFIG_X86_64))]
    pub(super) fn arg(&self, n: u32) -> usize {
        // SAFETY: `self.0` is the register set fprobe handed to the handler that made `self`,
        // valid for the handler's duration; reading an argument register has no side effect.
        unsafe { sys::knet_regs_arg(self.0, n) as usize }
    }

    /// The return value, in a return handler.
    pub(super) fn ret(&self) -> usize {
        // SAFETY: as in `arg`.
        unsafe { sys::knet_regs_return(self.0) as usize }
    }
}

/// A registered probe whose missed hits can be shown (see `ProcStats::watch`).
pub(super) trait Watched {
    /// The probe's missed-hit counter, valid while the probe is registered.
    fn nmissed_counter(&self) -> *const kernel::ffi::c_ulong;

    /// Hits of the probe that were missed (recursion, or a full return stack).
    fn missed(&self) -> i64 {
        // SAFETY: the counter is valid while `self` (the registration) exists.
        unsafe { sys::knet_probe_nmissed(self.nmissed_counter()) }
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

/// A registered fprobe and the context its handlers see; unregistered (waiting for running
/// handlers) and freed on drop.
struct Fprobe<C> {
    rp: NonNull<sys::knet_fprobe>,
    _ctx: Arc<C>,
}

// SAFETY: the C probe is used through ftrace's own locking, the context is `Send + Sync`.
unsafe impl<C: Send + Sync> Send for Fprobe<C> {}
// SAFETY: as above; `&self` methods only read the missed-hit counter.
unsafe impl<C: Send + Sync> Sync for Fprobe<C> {}

impl<C: Send + Sync> Fprobe<C> {
    /// Probes `symbol` with `entry` and, if given, `exit` (then a return probe, whose entry
    /// handler keeps `data_size` bytes for it).
    ///
    /// # Safety
    ///
    /// The handlers must read the call's context as a `C`, and `exit` at most `data_size` bytes
    /// of entry data, written by `entry` before it returns 0.
    unsafe fn new(
        symbol: &'static CStr,
        ctx: Arc<C>,
        entry: sys::knet_fprobe_entry_t,
        exit: sys::knet_fprobe_exit_t,
        data_size: usize,
    ) -> Result<Self> {
        let raw_ctx = Arc::as_ptr(&ctx).cast::<c_void>().cast_mut();
        // SAFETY: `symbol` is a static NUL-terminated string; the handlers have the shim's
        // signatures and read the context as the caller promises; `raw_ctx` stays valid while
        // `self` (which holds the `Arc`) exists.
        let rp =
            unsafe { sys::knet_fprobe_new(symbol.as_char_ptr(), entry, exit, data_size, raw_ctx) };
        let rp = NonNull::new(rp).ok_or(ENOMEM)?;
        // SAFETY: `rp` was just allocated by the shim and is not registered yet.
        if let Err(e) = to_result(unsafe { sys::knet_fprobe_register(rp.as_ptr()) }) {
            // SAFETY: registration failed, so nothing refers to `rp`; free it once.
            unsafe { sys::knet_fprobe_free(rp.as_ptr()) };
            return Err(e);
        }
        Ok(Self { rp, _ctx: ctx })
    }
}

impl<C> Watched for Fprobe<C> {
    fn nmissed_counter(&self) -> *const kernel::ffi::c_ulong {
        // SAFETY: `rp` is registered and valid until `drop`.
        unsafe { sys::knet_fprobe_nmissed_counter(self.rp.as_ptr()) }
    }
}

impl<C> Drop for Fprobe<C> {
    fn drop(&mut self) {
        // SAFETY: `rp` is registered; after this no handler runs, and `rp` is not used again.
        unsafe { sys::knet_fprobe_unregister_free(self.rp.as_ptr()) };
    }
}

/// A registered return probe (an fprobe: ftrace at entry, the function-graph tracer at return).
pub(super) struct RetProbeRegistration<P: RetProbe> {
    probe: Fprobe<P::Ctx>,
    _p: PhantomData<fn() -> P>,
}

impl<P: RetProbe> RetProbeRegistration<P> {
    /// Probes entry to and return from `symbol`.
    pub(super) fn new(symbol: &'static CStr, ctx: Arc<P::Ctx>) -> Result<Self> {
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
        Ok(Self {
            probe,
            _p: PhantomData,
        })
    }

    /// # Safety
    ///
    /// Called by the shim's fprobe entry handler for a probe created by [`Self::new`].
    unsafe extern "C" fn entry_cb(
        call: *mut sys::knet_probe_call,
        regs: *mut bindings::pt_regs,
    ) -> c_int {
        // SAFETY: the call's context pointer is the `Arc<P::Ctx>` the registration holds; it is
        // alive while any handler of the probe can run.
        let ctx = unsafe { &*sys::knet_probe_call_ctx(call).cast::<P::Ctx>() };
        match P::entry(ctx, &Regs(regs)) {
            Some(data) => {
                // SAFETY: the call has `size_of::<P::Data>()` bytes of entry data
                // (`entry_data_size`), possibly unaligned; written before the exit reads it.
                unsafe {
                    sys::knet_probe_call_data(call)
                        .cast::<P::Data>()
                        .write_unaligned(data)
                };
                0
            }
            None => 1,
        }
    }

    /// # Safety
    ///
    /// Called by the shim's fprobe exit handler on return of a call whose entry handler
    /// returned 0.
    unsafe extern "C" fn exit_cb(call: *mut sys::knet_probe_call, regs: *mut bindings::pt_regs) {
        // SAFETY: as in `entry_cb`.
        let ctx = unsafe { &*sys::knet_probe_call_ctx(call).cast::<P::Ctx>() };
        // SAFETY: the entry handler of this call wrote a `P::Data` into the entry data.
        let data = unsafe {
            sys::knet_probe_call_data(call)
                .cast::<P::Data>()
                .read_unaligned()
        };
        P::exit(ctx, &Regs(regs), data);
    }
}

impl<P: RetProbe> Watched for RetProbeRegistration<P> {
    fn nmissed_counter(&self) -> *const kernel::ffi::c_ulong {
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

/// A registered entry probe: an fprobe without an exit handler, which ftrace calls directly
/// (saving only the argument registers, where a kprobe on ftrace saves them all), without the
/// function-graph return that a return probe costs.
pub(super) struct EntryProbeRegistration<P: EntryProbe> {
    probe: Fprobe<P::Ctx>,
    _p: PhantomData<fn() -> P>,
}

impl<P: EntryProbe> EntryProbeRegistration<P> {
    /// Probes the entry of `symbol`.
    pub(super) fn new(symbol: &'static CStr, ctx: Arc<P::Ctx>) -> Result<Self> {
        // SAFETY: this type's trampoline reads the context as `P::Ctx`; no exit handler.
        let probe = unsafe { Fprobe::new(symbol, ctx, Some(Self::entry_cb), None, 0) }?;
        Ok(Self {
            probe,
            _p: PhantomData,
        })
    }

    /// # Safety
    ///
    /// Called by the shim's fprobe entry handler for a probe created by [`Self::new`].
    unsafe extern "C" fn entry_cb(
        call: *mut sys::knet_probe_call,
        regs: *mut bindings::pt_regs,
    ) -> c_int {
        // SAFETY: the call's context pointer is the `Arc<P::Ctx>` the registration holds; it is
        // alive while any handler of the probe can run.
        let ctx = unsafe { &*sys::knet_probe_call_ctx(call).cast::<P::Ctx>() };
        P::hit(ctx, &Regs(regs));
        // Ignored without an exit handler.
        1
    }
}

impl<P: EntryProbe> Watched for EntryProbeRegistration<P> {
    fn nmissed_counter(&self) -> *const kernel::ffi::c_ulong {
        self.probe.nmissed_counter()
    }
}

/// What a probe on a tracepoint with the prototype `(struct sock *sk)` does.
pub(super) trait SockTracepoint {
    /// Shared state of the handler.
    type Ctx: Send + Sync;
    /// The tracepoint fired for socket `sk` (an address, never dereferenced here).
    fn hit(ctx: &Self::Ctx, sk: usize);
}

/// A registered probe on a tracepoint: a direct call from the traced code, far cheaper than a
/// kprobe; found by name among the core kernel's tracepoints.
pub(super) struct SockTracepointRegistration<P: SockTracepoint> {
    tp: NonNull<sys::knet_sk_tracepoint>,
    _ctx: Arc<P::Ctx>,
    _p: PhantomData<P>,
}

// SAFETY: as for `Fprobe`.
unsafe impl<P: SockTracepoint> Send for SockTracepointRegistration<P> {}
// SAFETY: as for `Fprobe`.
unsafe impl<P: SockTracepoint> Sync for SockTracepointRegistration<P> {}

impl<P: SockTracepoint> SockTracepointRegistration<P> {
    /// Probes tracepoint `name`, which must have the prototype `(struct sock *sk)`.
    pub(super) fn new(name: &'static CStr, ctx: Arc<P::Ctx>) -> Result<Self> {
        let raw_ctx = Arc::as_ptr(&ctx).cast::<c_void>().cast_mut();
        // SAFETY: as in `Fprobe::new`; the callback has the shim's signature.
        let tp =
            unsafe { sys::knet_sk_tracepoint_new(name.as_char_ptr(), Some(Self::cb), raw_ctx) };
        let tp = NonNull::new(tp).ok_or(ENOMEM)?;
        // SAFETY: `tp` was just allocated by the shim and is not registered yet.
        if let Err(e) = to_result(unsafe { sys::knet_sk_tracepoint_register(tp.as_ptr()) }) {
            // SAFETY: registration failed, so nothing refers to `tp`; free it once.
            unsafe { sys::knet_sk_tracepoint_free(tp.as_ptr()) };
            return Err(e);
        }
        Ok(Self {
            tp,
            _ctx: ctx,
            _p: PhantomData,
        })
    }

    /// # Safety
    ///
    /// Called by the shim's tracepoint probe for a registration created by [`Self::new`].
    unsafe extern "C" fn cb(ctx: *mut c_void, sk: *mut bindings::sock) {
        // SAFETY: the context pointer is the `Arc<P::Ctx>` the registration holds, alive while
        // the probe is registered.
        let ctx = unsafe { &*ctx.cast::<P::Ctx>() };
        P::hit(ctx, sk as usize);
    }
}

impl<P: SockTracepoint> Drop for SockTracepointRegistration<P> {
    fn drop(&mut self) {
        // SAFETY: `tp` is registered; after this no probe call runs, and `tp` is not used again.
        unsafe { sys::knet_sk_tracepoint_unregister_free(self.tp.as_ptr()) };
    }
}
