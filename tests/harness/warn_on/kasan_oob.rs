// SPDX-License-Identifier: GPL-2.0

//! A deliberately broken module for testing the KASAN lane: its init reads one byte past a
//! 16-byte allocation from Rust. On a kernel with KASAN (rustc's kernel-address sanitizer
//! instruments Rust code too) that is a slab-out-of-bounds report, which with `panic_on_warn=1`
//! must take the test VM down and fail the run. Never loaded on a kernel without KASAN.

use kernel::prelude::*;

module! {
    type: KasanOob,
    name: "kasan_oob",
    authors: ["rust-tc developers"],
    description: "Harness self-test: an out-of-bounds read at load, for KASAN to catch",
    license: "GPL",
}

struct KasanOob;

impl kernel::Module for KasanOob {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let buf = KVec::<u8>::from_elem(0x5a, 16, GFP_KERNEL)?;
        // SAFETY: not safe, on purpose: offset 16 is one past the allocation's 16 bytes. The
        // byte is still inside the slab object's page, so without KASAN the read is harmless;
        // the case that loads this module runs only on a KASAN kernel.
        let past = unsafe { core::ptr::read_volatile(buf.as_ptr().add(16)) };
        pr_err!("kasan_oob: read {past:#x} past the end and KASAN said nothing\n");
        Ok(KasanOob)
    }
}
