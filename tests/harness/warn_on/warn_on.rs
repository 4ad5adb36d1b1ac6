// SPDX-License-Identifier: GPL-2.0

//! A deliberately broken module for testing the VM harness: its init hits `WARN_ON`, which
//! with `panic_on_warn=1` must take the test VM down and fail the run.

use kernel::prelude::*;

module! {
    type: WarnOn,
    name: "warn_on",
    authors: ["rust-tc developers"],
    description: "Harness self-test: triggers WARN_ON at load",
    license: "GPL",
}

struct WarnOn;

impl kernel::Module for WarnOn {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        kernel::warn_on!(true);
        Ok(WarnOn)
    }
}
