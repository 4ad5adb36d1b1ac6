// SPDX-License-Identifier: GPL-2.0

//! toa: TCP Option Address.
//!
//! Behind an L4 load balancer in FULLNAT mode the peer of every connection is the balancer; the
//! balancer puts the client's address into the handshake as TCP option 254. This module reads it,
//! keeps it with the socket and makes `getpeername()`/`accept()` return it. This is the module
//! skeleton: it validates its parameters and registers nothing yet.

use kernel::prelude::*;

#[path = "../knet/knet.rs"]
mod knet;

#[allow(
    dead_code,
    reason = "peer matching is used by the option hooks; host-tested meanwhile"
)]
mod trusted;

#[allow(dead_code, reason = "the option hooks use it; host-tested meanwhile")]
mod option;

use trusted::Trusted;

module! {
    type: Toa,
    name: "toa",
    authors: ["rust-tc developers"],
    description: "TCP Option Address: real client addresses behind FULLNAT load balancers",
    license: "GPL",
}

/// String parameters, declared in `toa_params.c`.
mod params {
    crate::knet::param::str_param!(pub(super) trusted);
}

struct Toa {
    trusted: Trusted,
}

impl kernel::Module for Toa {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let raw = params::trusted();
        let trusted = match Trusted::parse(raw) {
            Ok(t) => t,
            Err(e) => {
                pr_err!(
                    "TOA: trusted={:?} refused: {}\n",
                    kernel::str::BStr::from_bytes(raw),
                    describe(e)
                );
                return Err(EINVAL);
            }
        };
        if trusted.trusts_all() {
            pr_info!("TOA: toa loaded (options accepted from any peer)\n");
        } else {
            pr_info!(
                "TOA: toa loaded (options accepted from {} trusted prefixes)\n",
                trusted.prefixes().len()
            );
        }
        Ok(Toa { trusted })
    }
}

fn describe(e: trusted::Error) -> &'static str {
    match e {
        trusted::Error::BadEntry(_) => "an entry is not an IPv4/IPv6 address or prefix",
        trusted::Error::BadLength(_) => "a prefix length exceeds its address width",
        trusted::Error::TooMany => "more than 32 prefixes",
    }
}

impl Drop for Toa {
    fn drop(&mut self) {
        pr_info!(
            "TOA: toa unloaded ({} trusted prefixes)\n",
            self.trusted.prefixes().len()
        );
    }
}
