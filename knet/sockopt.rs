// SPDX-License-Identifier: GPL-2.0

//! Socket options of a module's own, asked with `getsockopt(fd, IPPROTO_IP, N, ...)`.
//!
//! Registered with `nf_register_sockopt`, the exported API iptables and IPVS use: IPv4's
//! `ip_getsockopt` (which IPv6 TCP sockets also reach for level `IPPROTO_IP`) hands it the
//! option names it does not know. No socket or protocol ops change. The kernel holds a
//! reference on the owner module while a call runs.

use super::{
    errno::ENOPROTOOPT,
    stats::NetNs,
    sys,
    tcp::{InetAddr, SockKey},
};
use core::{
    marker::PhantomData,
    pin::Pin,
    ptr::{self, NonNull},
    sync::atomic::{AtomicPtr, Ordering},
};
use kernel::{
    bindings,
    ffi::{c_int, c_void},
    prelude::*,
    sync::Arc,
    types::Opaque,
    uaccess::{UserPtr, UserSlice},
};

/// Answers the options of a registered range.
pub(crate) trait GetSockopt: Send + Sync + 'static {
    /// Answers option `optname` for socket `sk`, writing the answer into `out`. Process
    /// context, may sleep; the errno goes back to the caller of `getsockopt`.
    fn get(&self, sk: &SockRef<'_>, optname: i32, out: &mut SockoptOut<'_>) -> Result;
}

/// The socket a `getsockopt` call is about.
///
/// # Invariants
///
/// `sk` is the socket of the call that made this value, alive (the caller holds its file)
/// while the value lives.
pub(crate) struct SockRef<'a> {
    sk: NonNull<bindings::sock>,
    _life: PhantomData<&'a bindings::sock>,
}

impl SockRef<'_> {
    /// The socket's identity, as [`super::tcp::TcpObserver`] sees it.
    pub(crate) fn key(&self) -> SockKey {
        SockKey::of(self.sk.as_ptr())
    }

    /// The socket's network namespace.
    pub(crate) fn net(&self) -> NetNs<'_> {
        // SAFETY: by the type invariant `sk` is alive while `self` is.
        unsafe { NetNs::of_sock(self.sk.as_ptr()) }
    }

    /// The peer `getpeername()` would report (address and port, host order) and whether the
    /// socket is IPv6; `None` unless connected (`inet_getname`'s rule: a peer port, and neither
    /// closed nor still connecting).
    pub(crate) fn peer(&self) -> Option<(InetAddr, u16, bool)> {
        let mut addr = [0u8; 16];
        let mut port: u16 = 0;
        // SAFETY: by the type invariant `sk` is alive; the buffers are ours and large enough.
        let family = unsafe { sys::knet_sk_peer(self.sk.as_ptr(), addr.as_mut_ptr(), &mut port) };
        let port = u16::from_be(port);
        match u32::try_from(family).ok()? {
            bindings::AF_INET => {
                let a: [u8; 4] = addr[..4].try_into().ok()?;
                Some((InetAddr::V4(a), port, false))
            }
            bindings::AF_INET6 => Some((InetAddr::V6(addr), port, true)),
            _ => None,
        }
    }
}

/// Where the answer to a `getsockopt` call goes: the caller's buffer and its length.
///
/// # Invariants
///
/// `user` is the call's user-space buffer (possibly null or bad: copies check), `len` the
/// kernel's copy of its length, both for the duration of the call that made this value.
pub(crate) struct SockoptOut<'a> {
    user: *mut c_void,
    len: &'a mut c_int,
}

impl SockoptOut<'_> {
    /// The caller's buffer size; 0 without a buffer.
    pub(crate) fn room(&self) -> usize {
        if self.user.is_null() {
            return 0;
        }
        usize::try_from(*self.len).unwrap_or(0)
    }

    /// Copies `data` to the caller and sets the returned length; `EINVAL` if it does not fit,
    /// `EFAULT` if the buffer is not writable.
    pub(crate) fn write(&mut self, data: &[u8]) -> Result {
        if data.len() > self.room() {
            return Err(EINVAL);
        }
        UserSlice::new(UserPtr::from_ptr(self.user), data.len())
            .writer()
            .write_slice(data)?;
        *self.len = data.len() as c_int;
        Ok(())
    }
}

/// The handler of this module's registration (the kernel's callback carries no pointer of its
/// own; one registration per module).
static HANDLER: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());

/// A range of `IPPROTO_IP` option names answered by `T`, registered until dropped.
///
/// Register it last in a module's init: the kernel keeps a call from running past the module's
/// unload, not past a failed init.
pub(crate) struct SockoptRegistration<T: GetSockopt> {
    ops: Pin<KBox<Opaque<sys::nf_sockopt_ops>>>,
    /// `HANDLER` points to it.
    _handler: Arc<T>,
}

// SAFETY: after registration Rust only hands the pinned ops to `nf_unregister_sockopt`, from any
// thread; the handler is `Send + Sync`.
unsafe impl<T: GetSockopt> Send for SockoptRegistration<T> {}
// SAFETY: `&SockoptRegistration` gives access to nothing.
unsafe impl<T: GetSockopt> Sync for SockoptRegistration<T> {}

impl<T: GetSockopt> SockoptRegistration<T> {
    /// Registers `first..=last` (get only) for IPv4 sockets, owned by `module`. `EBUSY` if
    /// another module has one of these names.
    pub(crate) fn new(
        module: &'static ThisModule,
        first: i32,
        last: i32,
        handler: Arc<T>,
    ) -> Result<Self> {
        let h = Arc::as_ptr(&handler).cast_mut().cast();
        if HANDLER
            .compare_exchange(ptr::null_mut(), h, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(EBUSY);
        }
        // SAFETY: all-zero is a valid `nf_sockopt_ops`: no ranges, no callbacks.
        let mut raw: sys::nf_sockopt_ops = unsafe { core::mem::zeroed() };
        raw.pf = bindings::PF_INET as u8;
        raw.get_optmin = first;
        raw.get_optmax = last + 1;
        raw.get = Some(get_cb::<T>);
        raw.owner = module.as_ptr();
        let ops = match KBox::pin(Opaque::new(raw), GFP_KERNEL) {
            Ok(ops) => ops,
            Err(e) => {
                HANDLER.store(ptr::null_mut(), Ordering::Release);
                return Err(e.into());
            }
        };
        // SAFETY: `ops` is pinned and stays registered until `drop`; `get_cb` finds the handler
        // through `HANDLER`, set above and kept (with `handler`) as long as the registration.
        let err = unsafe { sys::nf_register_sockopt(ops.get()) };
        if err != 0 {
            HANDLER.store(ptr::null_mut(), Ordering::Release);
            return Err(Error::from_errno(err));
        }
        Ok(Self {
            ops,
            _handler: handler,
        })
    }
}

impl<T: GetSockopt> Drop for SockoptRegistration<T> {
    fn drop(&mut self) {
        // SAFETY: registered in `new`. Calls that found it hold a reference on the module,
        // which is therefore not being unloaded while one runs (see the type's note on init).
        unsafe { sys::nf_unregister_sockopt(self.ops.get()) };
        HANDLER.store(ptr::null_mut(), Ordering::Release);
    }
}

/// # Safety
///
/// Called by `nf_getsockopt` for an option name of a registered [`SockoptRegistration<T>`],
/// with the caller's socket, user buffer and a kernel copy of its length.
unsafe extern "C" fn get_cb<T: GetSockopt>(
    sk: *mut bindings::sock,
    optname: c_int,
    user: *mut c_void,
    len: *mut c_int,
) -> c_int {
    let h = HANDLER.load(Ordering::Acquire);
    let (Some(sk), Some(mut len)) = (NonNull::new(sk), NonNull::new(len)) else {
        return EINVAL.to_errno();
    };
    if h.is_null() {
        return ENOPROTOOPT.to_errno();
    }
    // SAFETY: `HANDLER` points to the `T` of the live registration (set before registering,
    // cleared after unregistering; the call holds the module, so the registration is live).
    let handler = unsafe { &*h.cast::<T>() };
    // INVARIANT: the call's socket, alive during it.
    let sk = SockRef {
        sk,
        _life: PhantomData,
    };
    // SAFETY: `len` is `nf_getsockopt`'s local copy, ours for the call.
    let len = unsafe { len.as_mut() };
    // INVARIANT: the call's buffer and length, for the call.
    let mut out = SockoptOut { user, len };
    match handler.get(&sk, optname, &mut out) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}
