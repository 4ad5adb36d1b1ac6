// SPDX-License-Identifier: GPL-2.0

//! xtables targets, and what their rule checks look up.
//!
//! [`TargetRegistration`] registers an xtables target (IPv4 and IPv6, mangle table, PREROUTING
//! and POSTROUTING) that writes a tag in the packet's control block, with a rule check
//! ([`TargetCheck`]). Only the module holding the target depends on `x_tables`, so a module
//! whose hooks read the tag loads without it (as the kernel's own targets sit in `xt_*`
//! modules).

use super::sys;
use core::pin::Pin;
use kernel::{bindings, ffi::c_void, prelude::*, str::CStrExt, sync::Arc, types::Opaque};

/// `NF_INET_PRE_ROUTING`.
const PRE_ROUTING: u8 = sys::nf_inet_hooks_NF_INET_PRE_ROUTING as u8;
/// `NF_INET_POST_ROUTING`.
const POST_ROUTING: u8 = sys::nf_inet_hooks_NF_INET_POST_ROUTING as u8;

/// An empty xtables target (filled in before registration).
const fn zeroed_target() -> sys::xt_target {
    // SAFETY: all-zero is a valid `xt_target`: null pointers, no callbacks.
    unsafe { core::mem::zeroed() }
}

/// The network namespace a rule is being added in.
///
/// # Invariants
///
/// `net` is the namespace of the rule check that made the value, alive during it.
pub(crate) struct RuleNet<'a> {
    net: *mut bindings::net,
    _life: core::marker::PhantomData<&'a bindings::net>,
}

impl RuleNet<'_> {
    /// Whether this namespace, or else the initial one, has a device called `name` made by the
    /// rtnl link kind `kind` (a device of that name made by anything else does not count).
    pub(crate) fn has_device(&self, name: &CStr, kind: &CStr) -> bool {
        // SAFETY: `net` is alive (type invariant); `init_net` lives forever.
        unsafe {
            has_device(self.net, name, kind) || has_device(&raw mut bindings::init_net, name, kind)
        }
    }
}

/// # Safety
///
/// `net` is alive for the call.
unsafe fn has_device(net: *mut bindings::net, name: &CStr, kind: &CStr) -> bool {
    let _rcu = kernel::sync::rcu::read_lock();
    // SAFETY: `net` is alive (the caller's); `name` is NUL-terminated; the device found stays
    // valid while the RCU read lock is held.
    let dev = unsafe { sys::dev_get_by_name_rcu(net, name.as_char_ptr()) };
    if dev.is_null() {
        return false;
    }
    // SAFETY: `dev` is valid under RCU (above); `rtnl_link_ops`, if set, is the static ops table
    // of the module that made it, which cannot go away while its devices exist.
    let ops = unsafe { (*dev).rtnl_link_ops };
    if ops.is_null() {
        return false;
    }
    // SAFETY: `ops` is the static ops table of a registered link kind (it has a live device),
    // whose `kind` is a static NUL-terminated string.
    let k = unsafe { (*ops).kind };
    // SAFETY: `k` is that static string (checked non-null first).
    !k.is_null() && unsafe { CStr::from_char_ptr(k) } == kind
}

/// The rule check of an xtables target with one `u32` argument (`--todev N`).
pub(crate) trait TargetCheck: Send + Sync + 'static {
    /// Whether a rule with argument `arg` in the hooks `hook_mask`, added in namespace `net`,
    /// is accepted.
    fn check(&self, net: &RuleNet<'_>, arg: u32, hook_mask: u32) -> Result;
    /// The tag the target writes for a packet at hook `hook`.
    fn tag(arg: u32, hook: u8) -> (u32, u32);
}

/// An xtables target for IPv4 and IPv6 in the mangle table, at PREROUTING and POSTROUTING:
/// it tags the packet (see [`TargetCheck::tag`]) and the chain continues.
pub(crate) struct TargetRegistration<C: TargetCheck> {
    inner: Pin<KBox<TargetInner>>,
    /// The targets point to it.
    _check: Arc<C>,
}

#[repr(C)]
struct TargetInner {
    targets: [Opaque<sys::xt_target>; 2],
    check: *const c_void,
}

// SAFETY: read by the kernel from any CPU; `check` points to a `Sync` checker.
unsafe impl Send for TargetInner {}
// SAFETY: after registration Rust only reads `check`, a pointer to a `Sync` checker.
unsafe impl Sync for TargetInner {}

impl<C: TargetCheck> TargetRegistration<C> {
    /// Registers target `name` (revision 0) owned by `module`, whose rules `check` judges.
    pub(crate) fn new(
        module: &'static ThisModule,
        name: &'static CStr,
        check: Arc<C>,
    ) -> Result<Self> {
        let inner = KBox::pin(
            TargetInner {
                targets: [const { Opaque::new(zeroed_target()) }; 2],
                // INVARIANT: the registration holds `check` until the targets are gone.
                check: Arc::as_ptr(&check).cast(),
            },
            GFP_KERNEL,
        )?;
        let bytes = name.to_bytes();
        for (t, family) in inner
            .targets
            .iter()
            .zip([sys::NFPROTO_IPV4, sys::NFPROTO_IPV6])
        {
            // SAFETY: not registered yet: ours to fill.
            let t = unsafe { &mut *t.get() };
            if bytes.len() >= t.name.len() {
                return Err(EINVAL);
            }
            t.name[..bytes.len()].copy_from_slice(bytes);
            t.revision = 0;
            t.family = family as u16;
            t.target = Some(Self::target_cb);
            t.checkentry = Some(Self::check_cb);
            t.targetsize = core::mem::size_of::<u32>() as u32;
            t.table = c"mangle".as_char_ptr();
            t.hooks = (1 << PRE_ROUTING) | (1 << POST_ROUTING);
            t.me = module.as_ptr();
        }
        // SAFETY: the targets are pinned and stay registered until `drop`.
        let err = unsafe { sys::xt_register_targets(Opaque::cast_into(inner.targets.as_ptr()), 2) };
        if err != 0 {
            return Err(Error::from_errno(err));
        }
        Ok(TargetRegistration {
            inner,
            _check: check,
        })
    }

    /// # Safety
    ///
    /// Called by xtables for a packet matching a rule with this target.
    unsafe extern "C" fn target_cb(
        skb: *mut bindings::sk_buff,
        par: *const sys::xt_action_param,
    ) -> u32 {
        // SAFETY: `par` is valid for the call; `targinfo` is the rule's `u32` (targetsize) and
        // `state` the hook state.
        let (arg, hook) = unsafe {
            let par = &*par;
            (
                *par.__bindgen_anon_2.targinfo.cast::<u32>(),
                (*par.state).hook,
            )
        };
        let (magic, val) = C::tag(arg, hook);
        // SAFETY: the chain lends us the packet for the call.
        unsafe { super::skb::set_tag_of(skb, magic, val) };
        sys::XT_CONTINUE
    }

    /// # Safety
    ///
    /// Called by xtables when a rule with this target is added.
    unsafe extern "C" fn check_cb(par: *const sys::xt_tgchk_param) -> i32 {
        // SAFETY: valid for the call; `target` is one of our pinned targets, the first field
        // of a `TargetInner` is the array (repr(C)), and the target's own family says which
        // element (the rule's may differ under nft's compat layer).
        let (arg, mask, net, inner) = unsafe {
            let par = &*par;
            let idx = usize::from((*par.target).family == sys::NFPROTO_IPV6 as u16);
            let first = par.target.cast::<Opaque<sys::xt_target>>().sub(idx);
            (
                *par.targinfo.cast::<u32>(),
                par.hook_mask,
                par.net,
                &*first.cast::<TargetInner>(),
            )
        };
        // SAFETY: the registration keeps the checker alive while the targets exist (see `new`).
        let check = unsafe { &*inner.check.cast::<C>() };
        // INVARIANT: the rule's namespace, alive during the check.
        let net = RuleNet {
            net,
            _life: core::marker::PhantomData,
        };
        match check.check(&net, arg, mask) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }
}

impl<C: TargetCheck> Drop for TargetRegistration<C> {
    fn drop(&mut self) {
        // SAFETY: registered in `new`.
        unsafe { sys::xt_unregister_targets(Opaque::cast_into(self.inner.targets.as_ptr()), 2) };
    }
}
