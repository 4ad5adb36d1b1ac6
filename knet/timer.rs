// SPDX-License-Identifier: GPL-2.0

//! A periodic kernel timer calling a [`Periodic`] handler in softirq until dropped.

use super::netfilter::{jiffies, msecs_to_jiffies};
use core::pin::Pin;
use kernel::{bindings, ffi::c_void, prelude::*, str::CStrExt, sync::Arc, types::Opaque};

/// What runs every period.
pub(crate) trait Periodic: Send + Sync + 'static {
    /// Softirq context.
    fn tick(&self);
}

/// The kernel's timer and what its callback needs.
///
/// # Invariants
///
/// `handler` points to the `P` of the `Arc` held by the `PeriodicTimer<P>` that owns this, and
/// `tick` is `PeriodicTimer::<P>::tick` for that same `P`. `timer` is set up with `timer_cb`
/// before it is armed, and shut down before the memory goes.
#[repr(C)]
struct Inner {
    /// First: the callback finds the rest from it.
    timer: Opaque<bindings::timer_list>,
    handler: *const c_void,
    tick: unsafe fn(*const c_void),
    period: usize,
}

/// The timer; shut down (and waited for) in `Drop`.
///
/// # Invariants
///
/// `inner.timer` is set up and armed by `new`, and shut down only in `drop`; `inner.handler`
/// points to the `P` in `_handler`.
pub(crate) struct PeriodicTimer<P: Periodic> {
    inner: Pin<KBox<Inner>>,
    /// The timer points to it.
    _handler: Arc<P>,
}

// SAFETY: `Inner` is the kernel's timer and, by the type invariant, a pointer to a
// `Send + Sync` handler, used from any CPU.
unsafe impl Send for Inner {}
// SAFETY: `&Inner` allows nothing to Rust; the kernel serialises the timer itself.
unsafe impl Sync for Inner {}

impl<P: Periodic> PeriodicTimer<P> {
    /// Calls `handler` every `period_ms` milliseconds until the timer is dropped.
    pub(crate) fn new(period_ms: u32, handler: Arc<P>) -> Result<Self> {
        let inner = KBox::pin(
            Inner {
                // SAFETY: all-zero is an unused timer, set up below before use.
                timer: Opaque::new(unsafe { core::mem::zeroed() }),
                // INVARIANT: the timer holds `handler` until it is shut down, and `tick` reads
                // it as the `P` it is.
                handler: Arc::as_ptr(&handler).cast(),
                tick: Self::tick,
                period: msecs_to_jiffies(period_ms),
            },
            GFP_KERNEL,
        )?;
        // SAFETY: pinned, not shared yet; the class key is static; the timer is shut down in
        // `drop` before the memory goes.
        unsafe {
            bindings::timer_init_key(
                inner.timer.get(),
                Some(Self::timer_cb),
                0,
                c"knet_periodic".as_char_ptr(),
                kernel::static_lock_class!().as_ptr(),
            );
            bindings::mod_timer(
                inner.timer.get(),
                (jiffies() + inner.period) as kernel::ffi::c_ulong,
            );
        }
        // INVARIANT: set up and armed above; shut down in `drop`; `handler` moves into
        // `_handler` (moving the `Arc` does not move the `P`).
        Ok(PeriodicTimer {
            inner,
            _handler: handler,
        })
    }

    /// # Safety
    ///
    /// `h` is the handler of a live `PeriodicTimer<P>`.
    unsafe fn tick(h: *const c_void) {
        // SAFETY: per the function's contract.
        unsafe { &*h.cast::<P>() }.tick()
    }

    /// # Safety
    ///
    /// Called by the timer core with the timer of an `Inner`.
    unsafe extern "C" fn timer_cb(t: *mut bindings::timer_list) {
        // SAFETY: the timer is the first field of a pinned `repr(C)` `Inner`, live until the
        // timer is shut down (type invariant of `Inner`), which waits for this callback.
        let inner = unsafe { &*t.cast::<Inner>() };
        // SAFETY: by the `Inner` invariant `tick` reads `handler` as the `P` it points to, held
        // by the `PeriodicTimer` until the timer is shut down.
        unsafe { (inner.tick)(inner.handler) };
        // SAFETY: not shut down yet (`timer_shutdown_sync` makes this a no-op once it is).
        unsafe { bindings::mod_timer(t, (jiffies() + inner.period) as kernel::ffi::c_ulong) };
    }
}

impl<P: Periodic> Drop for PeriodicTimer<P> {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the timer was set up in `new` and not shut down yet;
        // this waits for a running callback and prevents re-arming, so `inner` and the handler
        // may go after it.
        unsafe { bindings::timer_shutdown_sync(self.inner.timer.get()) };
    }
}
