// SPDX-License-Identifier: GPL-2.0

//! Diverting packets from netfilter through the qdisc of a virtual device and back (imq).
//!
//! The mechanism lives in C (`knet/divert.c`): devices, the netfilter hooks in every network
//! namespace, the xtables target that tags packets, per-packet state and its cleanup, and
//! reinjection after our hook. The module decides policy through [`DivertPolicy`] and owns
//! the whole set through a [`Registration`], torn down on drop.

use super::sys;
use core::{marker::PhantomData, ptr::NonNull};
use kernel::{
    error::from_err_ptr,
    ffi::{c_int, c_uint, c_void},
    prelude::*,
    str::CStrExt,
};

/// What the module decides.
pub(crate) trait DivertPolicy: Send + Sync + 'static {
    /// Whether an xtables rule may send packets to device `todev` from the hooks in
    /// `hook_mask` (bit per `NF_INET_*` hook); `Err` refuses the rule with `EINVAL`.
    fn check(&self, todev: u32, hook_mask: u32) -> Result<(), &'static str>;
    /// Reports a refused rule (there is no extack for xtables: the kernel log it is).
    fn refused(&self, todev: u32, why: &'static str);
}

/// The set's configuration.
pub(crate) struct DivertConfig {
    /// Device names, e.g. `imq%d`; the part before `%` is also the link kind.
    pub(crate) name_fmt: &'static CStr,
    /// Number of devices.
    pub(crate) ndevs: u32,
    /// Netfilter priority of the PREROUTING hook.
    pub(crate) pre_priority: i32,
    /// Netfilter priority of the POSTROUTING hook.
    pub(crate) post_priority: i32,
    /// Name of the xtables target (`-j NAME --todev N`).
    pub(crate) target: &'static CStr,
}

/// Counters of the set (see `knet/divert.h`).
pub(crate) type Counters = sys::knet_divert_counters;

/// A registered set of devices, hooks and target.
pub(crate) struct Registration<P: DivertPolicy> {
    raw: NonNull<sys::knet_divert>,
    policy: Pin<KBox<P>>,
    _p: PhantomData<P>,
}

// SAFETY: the C side is used under its own locks from any CPU; the policy is `Send + Sync`.
unsafe impl<P: DivertPolicy> Send for Registration<P> {}
// SAFETY: `&self` gives access to nothing (the policy is `Sync`).
unsafe impl<P: DivertPolicy> Sync for Registration<P> {}

impl<P: DivertPolicy> Registration<P> {
    /// Creates the devices, hooks and target of `config`, owned by `module`.
    pub(crate) fn new(
        module: &'static ThisModule,
        config: &DivertConfig,
        policy: P,
    ) -> Result<Self> {
        let policy = KBox::pin(policy, GFP_KERNEL)?;
        let cbs = sys::knet_divert_cbs {
            check: Some(Self::check_cb),
        };
        let ctx = core::ptr::from_ref::<P>(&policy)
            .cast::<c_void>()
            .cast_mut();
        // SAFETY: the strings are static and NUL-terminated; `cbs` is copied; `ctx` points to
        // the pinned policy, which outlives the set (dropped after it in `drop`).
        let raw = unsafe {
            sys::knet_divert_create(
                config.name_fmt.as_char_ptr(),
                config.ndevs,
                config.pre_priority,
                config.post_priority,
                config.target.as_char_ptr(),
                &cbs,
                ctx,
                module.as_ptr(),
            )
        };
        let raw = from_err_ptr(raw)?;
        let raw = NonNull::new(raw).ok_or(ENOMEM)?;
        Ok(Registration {
            raw,
            policy,
            _p: PhantomData,
        })
    }

    /// Tears the set down (see `Drop`) and returns the counters as they stand afterwards,
    /// including the packets the devices' queues still held.
    pub(crate) fn finish(self) -> Counters {
        let this = core::mem::ManuallyDrop::new(self);
        let mut c = Counters::default();
        // SAFETY: created by `new`, destroyed once: `this` is not dropped again.
        unsafe { sys::knet_divert_destroy(this.raw.as_ptr(), &mut c) };
        // SAFETY: read once out of `this`, which is never used or dropped again; no callback
        // runs any more, so the policy may go.
        drop(unsafe { core::ptr::read(&this.policy) });
        c
    }

    /// # Safety
    ///
    /// Called by the C target's checkentry with the `ctx` given at creation.
    unsafe extern "C" fn check_cb(ctx: *mut c_void, todev: c_uint, hook_mask: c_uint) -> c_int {
        // SAFETY: `ctx` is the pinned policy, alive while the set exists.
        let policy = unsafe { &*ctx.cast::<P>() };
        match policy.check(todev, hook_mask) {
            Ok(()) => 0,
            Err(why) => {
                policy.refused(todev, why);
                EINVAL.to_errno()
            }
        }
    }
}

impl<P: DivertPolicy> Drop for Registration<P> {
    fn drop(&mut self) {
        // SAFETY: created by `new`; no callback runs once this returns, so the policy may go.
        unsafe { sys::knet_divert_destroy(self.raw.as_ptr(), core::ptr::null_mut()) };
    }
}
