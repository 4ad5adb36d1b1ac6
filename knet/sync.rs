// SPDX-License-Identifier: GPL-2.0

//! A spinlock taken with interrupts disabled.
//!
//! Probe handlers run in process context, softirq and hard interrupt alike; data they share
//! needs a lock that cannot be interrupted by another of them on the same CPU. The kernel crate
//! has no such lock yet, so this one wraps `spin_lock_irqsave` through the shim.

use super::sys;
use core::{cell::UnsafeCell, marker::PhantomData, ops::Deref, ops::DerefMut};
use kernel::{bindings, prelude::*, types::Opaque};

/// Data of type `T` behind an interrupt-safe spinlock.
#[pin_data]
pub(crate) struct IrqSpinLock<T> {
    #[pin]
    lock: Opaque<bindings::spinlock_t>,
    data: UnsafeCell<T>,
}

// SAFETY: the lock hands out access to `data` to one holder at a time, on any CPU.
unsafe impl<T: Send> Send for IrqSpinLock<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for IrqSpinLock<T> {}

impl<T> IrqSpinLock<T> {
    /// A new lock around `data`.
    pub(crate) fn new(data: T) -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `spin_lock_init` initialises the lock in place; it is pinned from here on.
            lock <- Opaque::ffi_init(|p| unsafe { sys::knet_spin_lock_init(p) }),
            data: UnsafeCell::new(data),
        })
    }

    /// Takes the lock, disabling interrupts on this CPU until the guard is dropped.
    pub(crate) fn lock(&self) -> IrqSpinLockGuard<'_, T> {
        // SAFETY: the lock was initialised by `new` and is pinned.
        let flags = unsafe { sys::knet_spin_lock_irqsave(self.lock.get()) };
        IrqSpinLockGuard {
            lock: self,
            flags,
            _not_send: PhantomData,
        }
    }
}

/// Access to the data while the lock is held.
pub(crate) struct IrqSpinLockGuard<'a, T> {
    lock: &'a IrqSpinLock<T>,
    flags: kernel::ffi::c_ulong,
    // Interrupt state must be restored on the CPU that saved it.
    _not_send: PhantomData<*mut ()>,
}

impl<T> Deref for IrqSpinLockGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the lock is held, so no one else accesses the data.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for IrqSpinLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the lock is held, so no one else accesses the data.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for IrqSpinLockGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this guard holds the lock, taken on this CPU with these flags.
        unsafe { sys::knet_spin_unlock_irqrestore(self.lock.lock.get(), self.flags) };
    }
}
