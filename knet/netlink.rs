// SPDX-License-Identifier: GPL-2.0

//! Netlink as a qdisc sees it: error messages for `tc`, attributes written into dumps, and the
//! statistics and walker handles of class dumps. Attribute *parsing* is left to the modules'
//! own kernel-independent code, which gets the raw payload as a byte slice.

use super::sys;
use core::{fmt, marker::PhantomData};
use kernel::{bindings, error::code::EMSGSIZE, prelude::*};

/// Where `tc` reads the reason for an error (or a warning on success).
///
/// # Invariants
///
/// `self.0` is null or the extended ack of the netlink request being handled, valid for `'a`.
pub(crate) struct ExtAck<'a>(*mut bindings::netlink_ext_ack, PhantomData<&'a mut ()>);

/// Longest message netlink keeps (`NETLINK_MAX_FMTMSG_LEN`, with its NUL).
const MSG_MAX: usize = 80;

impl ExtAck<'_> {
    /// # Safety
    ///
    /// `p` is NULL or the extack of the netlink request being handled.
    pub(super) unsafe fn from_raw(p: *mut bindings::netlink_ext_ack) -> Self {
        // INVARIANT: the caller passes NULL or the request's extack.
        ExtAck(p, PhantomData)
    }

    pub(super) fn as_ptr(&mut self) -> *mut bindings::netlink_ext_ack {
        self.0
    }

    /// Sets the message, formatted (truncated to what netlink keeps).
    pub(crate) fn set(&mut self, args: fmt::Arguments<'_>) {
        let mut buf = MsgBuf {
            bytes: [0; MSG_MAX],
            len: 0,
        };
        // Truncation is not an error here: `MsgBuf` just stops taking bytes.
        let _ = fmt::write(&mut buf, args);
        // SAFETY: by the type invariant `self.0` is NULL or a valid extack; `buf.bytes` ends with
        // at least one NUL, as `MsgBuf` keeps the last byte free.
        unsafe { sys::knet_extack_set(self.0, buf.bytes.as_ptr().cast()) };
    }
}

struct MsgBuf {
    bytes: [u8; MSG_MAX],
    len: usize,
}

impl fmt::Write for MsgBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len + 1 >= MSG_MAX {
                break;
            }
            if let Some(slot) = self.bytes.get_mut(self.len) {
                *slot = b;
            }
            self.len += 1;
        }
        Ok(())
    }
}

/// A netlink message being filled (a qdisc or class dump).
///
/// # Invariants
///
/// `self.0` is the message skb of the dump in progress, which the callback holding this value
/// may fill, for `'a`.
pub(crate) struct NlMsg<'a>(*mut bindings::sk_buff, PhantomData<&'a mut ()>);

/// An open nested attribute of an [`NlMsg`].
///
/// # Invariants
///
/// `self.0` is an attribute opened by [`NlMsg::nest`] in a message still being filled, and not
/// ended or cancelled yet (either consumes the `Nest`). Which message is not recorded: see
/// [`NlMsg::end`].
#[must_use = "a nest must be ended or cancelled"]
pub(crate) struct Nest(*mut bindings::nlattr);

impl NlMsg<'_> {
    /// # Safety
    ///
    /// `skb` is the message skb of the dump in progress.
    pub(super) unsafe fn from_raw(skb: *mut bindings::sk_buff) -> Self {
        // INVARIANT: the caller passes the message skb of the dump in progress.
        NlMsg(skb, PhantomData)
    }

    /// Opens a nested attribute.
    pub(crate) fn nest(&mut self, ty: u16) -> Result<Nest> {
        // SAFETY: by the type invariant `self.0` is the dump's skb.
        let n = unsafe { sys::knet_nla_nest_start(self.0, ty.into()) };
        if n.is_null() {
            Err(EMSGSIZE)
        } else {
            // INVARIANT: just opened in this message.
            Ok(Nest(n))
        }
    }

    /// Closes a nested attribute.
    pub(crate) fn end(&mut self, nest: Nest) {
        // SAFETY: by the type invariants `self.0` is the dump's skb and `nest` is open. It was
        // opened in this message: a callback is given one message, and a `Nest` (neither `Send`
        // nor `Sync`) cannot be kept in a qdisc's state or a static for a later one.
        unsafe { sys::knet_nla_nest_end(self.0, nest.0) };
    }

    /// Removes a nested attribute and what was put in it (after a failed put).
    pub(crate) fn cancel(&mut self, nest: Nest) {
        // SAFETY: by the type invariants `self.0` is the dump's skb and `nest` is open, opened
        // in this message (see `end`).
        unsafe { sys::knet_nla_nest_cancel(self.0, nest.0) };
    }

    /// Puts an attribute with `data` as its payload.
    pub(crate) fn put(&mut self, ty: u16, data: &[u8]) -> Result {
        let len = i32::try_from(data.len()).map_err(|_| EMSGSIZE)?;
        // SAFETY: by the type invariant `self.0` is the dump's skb; `data` is valid for `len`
        // bytes.
        let r = unsafe { sys::nla_put(self.0, ty.into(), len, data.as_ptr().cast()) };
        if r < 0 {
            Err(EMSGSIZE)
        } else {
            Ok(())
        }
    }

    /// Puts a 64-bit attribute, with a `pad` attribute before it if alignment needs one.
    pub(crate) fn put_u64(&mut self, ty: u16, value: u64, pad: u16) -> Result {
        let bytes = value.to_ne_bytes();
        // SAFETY: by the type invariant `self.0` is the dump's skb; `bytes` is valid for 8 bytes
        // (`nla_put_u64_64bit`).
        let r =
            unsafe { sys::nla_put_64bit(self.0, ty.into(), 8, bytes.as_ptr().cast(), pad.into()) };
        if r < 0 {
            Err(EMSGSIZE)
        } else {
            Ok(())
        }
    }
}

/// The header of a class dump: which class, its parent, its leaf qdisc.
///
/// # Invariants
///
/// `self.0` is the `tcmsg` header of the class dump in progress, ours to fill for `'a`.
pub(crate) struct ClassHeader<'a>(*mut sys::tcmsg, PhantomData<&'a mut ()>);

impl ClassHeader<'_> {
    /// # Safety
    ///
    /// `tcm` is the header of the class dump in progress.
    pub(super) unsafe fn from_raw(tcm: *mut sys::tcmsg) -> Self {
        // INVARIANT: the caller passes the header of the class dump in progress.
        ClassHeader(tcm, PhantomData)
    }

    /// Sets parent and handle (class ids) and info (the leaf qdisc's handle, or 0).
    pub(crate) fn set(&mut self, parent: u32, handle: u32, info: u32) {
        // SAFETY: by the type invariant `self.0` is the dump's header, ours to fill.
        let tcm = unsafe { &mut *self.0 };
        tcm.tcm_parent = parent;
        tcm.tcm_handle = handle;
        tcm.tcm_info = info;
    }
}

/// Where class statistics are dumped.
///
/// # Invariants
///
/// `self.0` is the `gnet_dump` of the class statistics dump in progress, for `'a`.
pub(crate) struct StatsDump<'a>(pub(super) *mut sys::gnet_dump, PhantomData<&'a mut ()>);

impl StatsDump<'_> {
    /// # Safety
    ///
    /// `d` is the statistics dump in progress.
    pub(super) unsafe fn from_raw(d: *mut sys::gnet_dump) -> Self {
        // INVARIANT: the caller passes the statistics dump in progress.
        StatsDump(d, PhantomData)
    }
}

/// A `tc class show` walk over the classes of a qdisc.
///
/// # Invariants
///
/// `sch` and `w` are the qdisc and the walker of the `walk` callback in progress, for `'a`;
/// `C` is the class type of that qdisc's kind (the type its class callbacks read cookies as).
pub(crate) struct Walker<'a, C> {
    pub(super) sch: *mut sys::Qdisc,
    pub(super) w: *mut sys::qdisc_walker,
    pub(super) _p: PhantomData<(&'a mut (), *const C)>,
}

impl<C> Walker<'_, C> {
    /// Reports a class; `false` when the walk is over.
    pub(crate) fn visit_class(&mut self, class: super::qdisc::ClassPtr<C>) -> bool {
        // SAFETY: by the type invariant `sch` and `w` are the qdisc and walker of the walk in
        // progress. The core hands the cookie to this kind's class callbacks, which read it as a
        // `C`, the kind's class type (by the type invariant); that it is alive is the kind's
        // promise for every `ClassPtr` it gives out (see `ClassPtr`).
        unsafe { sys::knet_walker_visit(self.sch, class.cookie(), self.w) }
    }
}
