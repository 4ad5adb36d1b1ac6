// SPDX-License-Identifier: GPL-2.0

//! String module parameters.
//!
//! The kernel's `module!` macro declares integer and bool parameters only. String parameters
//! are declared in a module's C file with `KNET_STR_PARAM(name, default, description)` from
//! `knet/param.h` (so `modinfo` lists them and sysfs shows them read-only); this macro gives the
//! Rust side a safe accessor for each.

/// Declares `fn $name() -> &'static [u8]` returning the bytes (without NUL) of the string
/// parameter `$name` that the module's C file declared with `KNET_STR_PARAM`.
#[allow(unused_macros, reason = "not every module has string parameters")]
macro_rules! str_param {
    ($vis:vis $name:ident) => {
        $vis fn $name() -> &'static [u8] {
            extern "C" {
                #[link_name = concat!("knet_param_", stringify!($name))]
                fn get() -> *const kernel::ffi::c_char;
            }
            // SAFETY: `get` is the accessor `KNET_STR_PARAM` defines in this module's C file; it
            // takes no arguments and only reads the parameter's pointer.
            let p = unsafe { get() };
            if p.is_null() {
                return b"";
            }
            // SAFETY: a `charp` parameter is a NUL-terminated string owned by the module's
            // parameter storage; the parameter is read-only (0444) after load, so the string is
            // neither freed nor changed while the module that reads it is loaded.
            let s = unsafe { <kernel::str::CStr as kernel::str::CStrExt>::from_char_ptr(p) };
            s.to_bytes()
        }
    };
}
#[allow(unused_imports, reason = "not every module has string parameters")]
pub(crate) use str_param;

/// Puts `"field=value"` in the module's `.modinfo` section, for what `module!` has no key for
/// (e.g. `modinfo!(SOFTDEP, "softdep=pre: imq")`, which modprobe reads as `MODULE_SOFTDEP`).
///
/// `#[used(compiler)]`, as `module!`'s own entries: a plain `#[used]` is `used(linker)` on ELF
/// for newer rustc (sid's 1.97), whose section is flagged `SHF_GNU_RETAIN`; the linker then
/// keeps it apart from the other `.modinfo`, and the kernel, reading the first, would find no
/// `vermagic`.
#[allow(unused_macros, reason = "not every module needs one")]
macro_rules! modinfo {
    ($id:ident, $entry:literal) => {
        #[cfg(MODULE)]
        #[link_section = ".modinfo"]
        #[used(compiler)]
        static $id: [u8; concat!($entry, "\0").len()] = {
            let s = concat!($entry, "\0").as_bytes();
            let mut a = [0u8; concat!($entry, "\0").len()];
            let mut i = 0;
            while i < s.len() {
                a[i] = s[i];
                i += 1;
            }
            a
        };
    };
}
#[allow(unused_imports, reason = "not every module needs one")]
pub(crate) use modinfo;

/// The value of an integer or bool parameter that `module!` declared
/// (`knet::param::value(&module_parameters::name)`): 7.3's kernel crate returns it, an older one
/// (`knet_compat_params`, probed by `knet.mk`) a reference to it.
#[allow(dead_code, reason = "not every module has such parameters")]
#[inline]
pub(crate) fn value<T: Copy>(p: &kernel::module_param::ModuleParamAccess<T>) -> T {
    #[cfg(not(knet_compat_params))]
    let v = p.value();
    #[cfg(knet_compat_params)]
    let v = *p.value();
    v
}

/// Declares `fn $name() -> bool` returning the bool parameter `$name` that the module's C file
/// declared with `KNET_BOOL_PARAM`: for a kernel crate whose `module!` has no bool parameters
/// (`knet_compat_params`; the C file is then built, see `knet.mk`).
#[cfg(knet_compat_params)]
#[allow(unused_macros, reason = "not every module has bool parameters")]
macro_rules! bool_param {
    ($vis:vis $name:ident) => {
        $vis fn $name() -> bool {
            extern "C" {
                #[link_name = concat!("knet_param_", stringify!($name))]
                fn get() -> bool;
            }
            // SAFETY: `get` is the accessor `KNET_BOOL_PARAM` defines in this module's C file;
            // it takes no arguments and only reads the parameter, set before the module's init.
            unsafe { get() }
        }
    };
}
#[cfg(knet_compat_params)]
#[allow(unused_imports, reason = "not every module has bool parameters")]
pub(crate) use bool_param;
