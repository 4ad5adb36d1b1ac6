// SPDX-License-Identifier: GPL-2.0

//! Facts about the kernel the module was built for.

use kernel::str::{CStr, CStrExt};

/// The kernel release (`uname -r`) this module was built against.
pub(crate) fn kernel_release() -> &'static CStr {
    // SAFETY: `knet_uts_release` returns a pointer to the string literal `UTS_RELEASE`, which is
    // NUL-terminated, immutable and lives as long as the module.
    unsafe { CStr::from_char_ptr(super::sys::knet_uts_release()) }
}
