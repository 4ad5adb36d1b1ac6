// SPDX-License-Identifier: GPL-2.0

//! A spinlock taken with interrupts off: `SpinLockIrq` and `new_spinlock_irq!`.
//!
//! With 7.3's kernel crate these are its own. An older one (`knet_compat_lock`, probed in the
//! tree's Rust metadata by `knet.mk`) has no such lock; knet then provides a lock backend over
//! `spin_lock_irqsave`/`spin_unlock_irqrestore` (C helpers in `probe.c`, the macros being
//! unreachable from Rust), with the same use: `lock()` gives a guard that unlocks and restores
//! the interrupt state when dropped. On PREEMPT_RT those are the kernel's sleeping spinlocks,
//! as for any `spinlock_t`.

#[cfg(not(knet_compat_lock))]
pub(crate) use kernel::sync::{new_spinlock_irq, SpinLockIrq};

#[cfg(knet_compat_lock)]
pub(crate) use compat::{new_spinlock_irq, SpinLockIrq};

#[cfg(knet_compat_lock)]
mod compat {
    use super::super::sys;
    use kernel::{
        bindings,
        ffi::{c_char, c_ulong},
        sync::lock::{Backend, Lock},
    };

    /// A `spinlock_t` locked with interrupts off (`spin_lock_irqsave`).
    pub(crate) type SpinLockIrq<T> = Lock<T, SpinLockIrqBackend>;

    /// The backend of [`SpinLockIrq`]: a kernel `spinlock_t`, the interrupt state saved in the
    /// guard.
    pub(crate) struct SpinLockIrqBackend;

    // SAFETY: the kernel's `spinlock_t` ensures mutual exclusion; the guard state is the
    // interrupt state that `lock` saved and `unlock` restores, and `relock` (the default) takes
    // the lock the same way, with `lock`.
    unsafe impl Backend for SpinLockIrqBackend {
        type State = bindings::spinlock_t;
        type GuardState = c_ulong;

        unsafe fn init(
            ptr: *mut Self::State,
            name: *const c_char,
            key: *mut bindings::lock_class_key,
        ) {
            // SAFETY: by the function's contract `ptr` is valid for writes and `name` and `key`
            // stay valid for reads for good.
            unsafe { bindings::__spin_lock_init(ptr, name, key) }
        }

        unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
            // SAFETY: by the function's contract `ptr` points to a lock `init` initialised.
            unsafe { sys::knet_spin_lock_irqsave(ptr) }
        }

        unsafe fn try_lock(ptr: *mut Self::State) -> Option<Self::GuardState> {
            let mut flags: c_ulong = 0;
            // SAFETY: by the function's contract `ptr` points to a lock `init` initialised;
            // `flags` is a local the helper writes the interrupt state to.
            if unsafe { sys::knet_spin_trylock_irqsave(ptr, &mut flags) } {
                Some(flags)
            } else {
                None
            }
        }

        unsafe fn unlock(ptr: *mut Self::State, guard_state: &Self::GuardState) {
            // SAFETY: by the function's contract the caller owns the lock, and `guard_state` is
            // the interrupt state saved when it took it.
            unsafe { sys::knet_spin_unlock_irqrestore(ptr, *guard_state) }
        }

        unsafe fn assert_is_held(ptr: *mut Self::State) {
            // SAFETY: by the function's contract `ptr` points to a lock `init` initialised.
            unsafe { bindings::spin_assert_is_held(ptr) }
        }
    }

    /// Makes a [`SpinLockIrq`] initialiser with the given name (else the file and line) and a
    /// lock class of its own, as the kernel crate's `new_spinlock_irq!`.
    macro_rules! new_spinlock_irq {
        ($inner:expr $(, $name:literal)? $(,)?) => {
            $crate::knet::lock::SpinLockIrq::new(
                $inner,
                kernel::optional_name!($($name)?),
                kernel::static_lock_class!(),
            )
        };
    }
    pub(crate) use new_spinlock_irq;
}
