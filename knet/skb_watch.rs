// SPDX-License-Identifier: GPL-2.0

//! Watching packets being dropped: a probe on the `kfree_skb` tracepoint (exported for modules:
//! `EXPORT_TRACEPOINT_SYMBOL_GPL(kfree_skb)`), registered through `tracepoint_probe_register`.

use super::{skb, sys};
use kernel::{bindings, error::to_result, ffi::c_void, prelude::*, sync::Arc};

#[allow(
    improper_ctypes,
    reason = "only its address is used; the kernel's bindings model some fields as empty"
)]
extern "C" {
    /// The tracepoint (see above); its probes get the prototype of `drop_cb`.
    static mut __tracepoint_kfree_skb: bindings::tracepoint;
}

/// What watches drops.
pub(crate) trait DropWatch: Send + Sync + 'static {
    /// The first word of the tags this watcher looks for (most dropped packets are not its own:
    /// they are skipped on that word alone).
    const MAGIC: u32;
    /// Packet `skb` (its address), whose control block holds `tag`, is being freed as a drop.
    /// Softirq or process context; not called with interrupts off (the packet is then not
    /// reported: whoever waits for it must have another way to learn it is gone).
    fn dropped(&self, skb: usize, tag: (u32, u32));
}

/// A registered probe; unregistered (and waited for) in `Drop`.
///
/// # Invariants
///
/// `drop_cb` is registered on the `kfree_skb` tracepoint with `Arc::as_ptr(&watch)` as its data,
/// from `new` until drop.
pub(crate) struct DropWatchRegistration<W: DropWatch> {
    /// The probe's data points to it.
    watch: Arc<W>,
}

impl<W: DropWatch> DropWatchRegistration<W> {
    /// Calls `watch` for every packet dropped from now on until the registration is dropped.
    pub(crate) fn new(watch: Arc<W>) -> Result<Self> {
        // SAFETY: the probe has the tracepoint's prototype (plus `data`); `watch`, which `data`
        // points to, is held by the registration until the probe is unregistered.
        to_result(unsafe {
            bindings::tracepoint_probe_register(
                &raw mut __tracepoint_kfree_skb,
                Self::drop_cb as *mut c_void,
                Arc::as_ptr(&watch).cast_mut().cast(),
            )
        })?;
        // INVARIANT: registered just above, with `watch`'s address as the data.
        Ok(DropWatchRegistration { watch })
    }

    /// # Safety
    ///
    /// Called by the tracepoint with the `data` given at registration.
    unsafe extern "C" fn drop_cb(
        data: *mut c_void,
        skb: *mut bindings::sk_buff,
        _location: *mut c_void,
        _reason: bindings::skb_drop_reason,
        _rx_sk: *const bindings::sock,
    ) {
        if skb.is_null() {
            return;
        }
        // SAFETY: the packet is valid until the free that fires the tracepoint.
        let tag = unsafe { skb::tag_of(skb) };
        // Most packets are not ours, and socket references are not put with interrupts off.
        // SAFETY: no arguments, reads the context.
        if tag.0 != W::MAGIC || unsafe { sys::knet_irqs_disabled() } {
            return;
        }
        // SAFETY: `data` is the watcher, held by the registration while the probe is registered
        // (type invariant of `DropWatchRegistration<W>`).
        let watch = unsafe { &*data.cast::<W>() };
        watch.dropped(skb as usize, tag);
    }
}

impl<W: DropWatch> Drop for DropWatchRegistration<W> {
    fn drop(&mut self) {
        // SAFETY: by the type invariant `drop_cb` is registered with this data; afterwards, wait
        // until no CPU still runs the probe, so `watch` may go.
        unsafe {
            bindings::tracepoint_probe_unregister(
                &raw mut __tracepoint_kfree_skb,
                Self::drop_cb as *mut c_void,
                Arc::as_ptr(&self.watch).cast_mut().cast(),
            );
            sys::knet_tracepoint_synchronize_unregister();
        }
    }
}
