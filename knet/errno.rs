// SPDX-License-Identifier: GPL-2.0

//! Error codes the modules return that the kernel crate declared only from 7.3 on.
//!
//! With 7.3's kernel crate these are its own; with an older one (`knet_compat_errno`, probed in
//! the tree's Rust metadata by `knet.mk`) knet declares them from the uapi values in
//! `kernel::bindings`, as `kernel::error::code` does for the others.

#[cfg(not(knet_compat_errno))]
#[allow(unused_imports, reason = "each module uses some of them")]
pub(crate) use kernel::error::code::{ENOBUFS, ENOPROTOOPT, ENOTCONN, EOPNOTSUPP};

#[cfg(knet_compat_errno)]
#[allow(unused_imports, reason = "each module uses some of them")]
pub(crate) use compat::{ENOBUFS, ENOPROTOOPT, ENOTCONN, EOPNOTSUPP};

#[cfg(knet_compat_errno)]
#[allow(dead_code, reason = "each module uses some of them")]
mod compat {
    use core::num::NonZeroI32;
    use kernel::{bindings, error::Error};

    /// The [`Error`] of the positive error number `e` (a `kernel::bindings::E*`), at compile time.
    ///
    /// That kernel crate's only constructor of an [`Error`] from a number, `Error::from_errno`,
    /// is not a `const fn`, so the value is made here the way its private `declare_err!` makes
    /// the codes it has: from the `NonZeroI32` that is an [`Error`]'s only field.
    const fn code(e: u32) -> Error {
        let errno = match NonZeroI32::new(-(e as i32)) {
            Some(n) if n.get() >= -(bindings::MAX_ERRNO as i32) && n.get() < 0 => n,
            _ => panic!("not an error number"),
        };
        // SAFETY: in this kernel crate `Error` is `struct Error(NonZeroI32)`: one field, and
        // `transmute` (which refuses types of different sizes) checks that the struct is no
        // bigger than it, so the field is all of its bytes and a `NonZeroI32` is a valid
        // `Error`. Its invariant, `-MAX_ERRNO <= errno < 0`, is checked above.
        unsafe { core::mem::transmute::<NonZeroI32, Error>(errno) }
    }

    /// No buffer space available.
    pub(crate) const ENOBUFS: Error = code(bindings::ENOBUFS);
    /// Protocol not available.
    pub(crate) const ENOPROTOOPT: Error = code(bindings::ENOPROTOOPT);
    /// Transport endpoint is not connected.
    pub(crate) const ENOTCONN: Error = code(bindings::ENOTCONN);
    /// Operation not supported on transport endpoint.
    pub(crate) const EOPNOTSUPP: Error = code(bindings::EOPNOTSUPP);
}
