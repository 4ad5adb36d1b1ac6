//! `q_htb_rs.so`: the `tc` plugin for qdisc kind `htb_rs` (module `sch_htb_rs`).
//!
//! `sch_htb_rs` speaks exactly the netlink ABI of the in-kernel `htb`, under its own kind so the
//! two can run side by side. Stock `tc` knows no kind `htb_rs`: for an unknown kind it
//! `dlopen`s `$TC_LIB_DIR/q_<kind>.so` (default `/usr/lib/x86_64-linux-gnu/tc` on Debian) and
//! looks up `<kind>_qdisc_util`, a `struct qdisc_util` of callbacks; without one it answers
//! `Unknown qdisc "htb_rs", hence option "..." is unparsable`.
//!
//! **Design.** This plugin exports `htb_rs_qdisc_util` whose callbacks forward to the callbacks
//! of the running tc's own `htb_qdisc_util`, so parsing, error and usage texts and output
//! (plain, `-s`, `-d`, `-j`) are htb's, byte for byte, for whatever tc version loads it; only
//! the kind name differs, and it comes from the kernel. Distributions build tc with
//! `-export-dynamic` (iproute2's default `SHARED_LIBS=y`), so `htb_qdisc_util` and helpers such
//! as `get_rate64` are dynamic symbols of the tc binary. They are looked up with
//! `dlsym(RTLD_DEFAULT, ...)` at call time rather than linked against, so a tc that does not
//! export them gets a clear message and an error instead of a failed `dlopen` or a crash.
//!
//! **Addition to htb:** classes added or changed without a burst get a larger default burst at
//! high rates; see [`burst`].
//!
//! **ABI.** `struct qdisc_util` as declared in `tc/tc_util.h`, checked against iproute2 v6.1.0
//! (Debian 12) and v6.15.0 (Debian trixie): `next, id, parse_qopt, print_qopt, print_xstats,
//! parse_copt, print_copt, has_block`; 6.15 only made the `qu` arguments `const`, and `has_block`
//! is `(qu, opt, __u32 block_idx, bool *p_has)` in both. `get_rate64(__u64 *, const char *)`
//! (bytes/s) and `__get_hz(void)` are unchanged between the two (`include/utils.h`).

#![deny(unsafe_op_in_unsafe_fn)]

mod burst;

use std::cell::UnsafeCell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr;

/// `int (*)(struct qdisc_util *, int argc, char **argv, struct nlmsghdr *, const char *dev)`.
type ParseFn = unsafe extern "C" fn(
    *const QdiscUtil,
    c_int,
    *mut *mut c_char,
    *mut c_void,
    *const c_char,
) -> c_int;
/// `int (*)(struct qdisc_util *, FILE *, struct rtattr *)`.
type PrintFn = unsafe extern "C" fn(*const QdiscUtil, *mut c_void, *mut c_void) -> c_int;
/// `int (*)(struct qdisc_util *, struct rtattr *opt, __u32 block_idx, bool *p_has)`.
type HasBlockFn = unsafe extern "C" fn(*const QdiscUtil, *mut c_void, u32, *mut bool) -> c_int;

/// tc's `struct qdisc_util` (`tc/tc_util.h`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct QdiscUtil {
    next: *mut QdiscUtil,
    id: *const c_char,
    parse_qopt: Option<ParseFn>,
    print_qopt: Option<PrintFn>,
    print_xstats: Option<PrintFn>,
    parse_copt: Option<ParseFn>,
    print_copt: Option<PrintFn>,
    has_block: Option<HasBlockFn>,
}

/// The exported `qdisc_util`: tc links it into its list by writing `next`, so it must be
/// writable memory (`UnsafeCell`); `repr(transparent)` keeps the C layout at the symbol.
#[repr(transparent)]
pub struct Plugin(UnsafeCell<QdiscUtil>);

// SAFETY: Rust code never reads or writes the cell after its constant initialisation; tc, which
// is single-threaded, only writes `next` and reads the fields, through its own pointer.
unsafe impl Sync for Plugin {}

/// What tc looks up after `dlopen("$TC_LIB_DIR/q_htb_rs.so")`.
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static htb_rs_qdisc_util: Plugin = Plugin(UnsafeCell::new(QdiscUtil {
    next: ptr::null_mut(),
    id: c"htb_rs".as_ptr(),
    parse_qopt: Some(parse_qopt),
    print_qopt: Some(print_qopt),
    print_xstats: Some(print_xstats),
    parse_copt: Some(parse_copt),
    print_copt: Some(print_copt),
    has_block: None,
}));

extern "C" {
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
}

/// glibc's `RTLD_DEFAULT`: search the global scope, the tc executable first.
const RTLD_DEFAULT: *mut c_void = ptr::null_mut();

/// Address of a dynamic symbol of the running program (null if there is none).
fn tc_symbol(name: &CStr) -> *mut c_void {
    // SAFETY: `name` is NUL-terminated; dlsym only reads the loaded objects' symbol tables.
    unsafe { dlsym(RTLD_DEFAULT, name.as_ptr()) }
}

/// tc's `htb_qdisc_util`: its address (passed on as `qu`) and a copy of its callbacks.
fn htb() -> Option<(*const QdiscUtil, QdiscUtil)> {
    let util = tc_symbol(c"htb_qdisc_util") as *const QdiscUtil;
    if util.is_null() {
        eprintln!(
            "htb_rs: this tc does not export htb_qdisc_util; q_htb_rs.so needs a tc linked with \
             -export-dynamic (iproute2's default SHARED_LIBS=y, as distributions ship it)"
        );
        return None;
    }
    // SAFETY: the symbol is tc's `struct qdisc_util htb_qdisc_util`, a static that lives as long
    // as the process and whose layout `QdiscUtil` mirrors; tc is not writing it meanwhile.
    Some((util, unsafe { util.read() }))
}

/// Reports a callback tc's htb lacks (never seen: htb has all but `has_block`).
fn missing(what: &str) -> c_int {
    eprintln!("htb_rs: tc's htb_qdisc_util has no {what}");
    -1
}

/// Forwards a parse callback to htb's.
///
/// # Safety
///
/// The arguments are those tc passes to a `parse_qopt`/`parse_copt` callback: `argv` holds
/// `argc` NUL-terminated strings, `n` is the request being built, `dev` a string or null.
unsafe fn forward_parse(
    pick: fn(&QdiscUtil) -> Option<ParseFn>,
    argc: c_int,
    argv: *mut *mut c_char,
    n: *mut c_void,
    dev: *const c_char,
) -> c_int {
    let Some((util, htb)) = htb() else {
        return -1;
    };
    match pick(&htb) {
        // SAFETY: htb's own callback, with the arguments tc gave us (caller's contract).
        Some(f) => unsafe { f(util, argc, argv, n, dev) },
        None => missing("parser"),
    }
}

/// Forwards a print callback to htb's.
///
/// # Safety
///
/// The arguments are those tc passes to a print callback: an open `FILE *` and an attribute or
/// null.
unsafe fn forward_print(
    pick: fn(&QdiscUtil) -> Option<PrintFn>,
    f: *mut c_void,
    opt: *mut c_void,
) -> c_int {
    let Some((util, htb)) = htb() else {
        return -1;
    };
    match pick(&htb) {
        // SAFETY: htb's own callback, with the arguments tc gave us (caller's contract).
        Some(print) => unsafe { print(util, f, opt) },
        None => missing("printer"),
    }
}

/// `tc qdisc add|change|replace ... htb_rs [options]`: htb's parser as is.
///
/// # Safety
///
/// Called by tc only, with the arguments of a `parse_qopt` callback (see [`forward_parse`]).
unsafe extern "C" fn parse_qopt(
    _qu: *const QdiscUtil,
    argc: c_int,
    argv: *mut *mut c_char,
    n: *mut c_void,
    dev: *const c_char,
) -> c_int {
    // SAFETY: tc's arguments, passed on unchanged.
    unsafe { forward_parse(|h| h.parse_qopt, argc, argv, n, dev) }
}

/// `tc class add|change|replace ... htb_rs [options]`: htb's parser, with default bursts
/// appended where the user gave none (see [`burst`]).
///
/// # Safety
///
/// Called by tc only, with the arguments of a `parse_copt` callback (see [`forward_parse`]).
unsafe extern "C" fn parse_copt(
    _qu: *const QdiscUtil,
    argc: c_int,
    argv: *mut *mut c_char,
    n: *mut c_void,
    dev: *const c_char,
) -> c_int {
    let given: &[*mut c_char] = match usize::try_from(argc) {
        // SAFETY: tc passes `argc` valid pointers in `argv`.
        Ok(len) if len > 0 && !argv.is_null() => unsafe { std::slice::from_raw_parts(argv, len) },
        _ => &[],
    };
    let extra = {
        let args: Vec<&[u8]> = given
            .iter()
            // SAFETY: each is a NUL-terminated string of tc's; they are only read, and the
            // borrows end before htb's parser (which may write into them) runs.
            .map(|&a| unsafe { CStr::from_ptr(a) }.to_bytes())
            .collect();
        burst::extra_args(&args, rate_of, hz())
    };
    if extra.is_empty() {
        // SAFETY: tc's arguments, passed on unchanged.
        return unsafe { forward_parse(|h| h.parse_copt, argc, argv, n, dev) };
    }
    // htb's parser may write into its arguments (a '/' in a size), so hand it owned, mutable
    // strings; they outlive the call.
    let mut owned: Vec<Vec<u8>> = extra
        .into_iter()
        .map(|s| CString::new(s).unwrap_or_default().into_bytes_with_nul())
        .collect();
    let mut new_argv: Vec<*mut c_char> = given.to_vec();
    new_argv.extend(owned.iter_mut().map(|s| s.as_mut_ptr().cast::<c_char>()));
    let Ok(new_argc) = c_int::try_from(new_argv.len()) else {
        return -1;
    };
    new_argv.push(ptr::null_mut());
    // SAFETY: `new_argv` holds `new_argc` NUL-terminated strings (tc's and ours, all alive until
    // the call returns) and a terminating null, as tc's own argv does.
    unsafe { forward_parse(|h| h.parse_copt, new_argc, new_argv.as_mut_ptr(), n, dev) }
}

/// Qdisc options in `tc qdisc show`.
///
/// # Safety
///
/// Called by tc only, with the arguments of a print callback (see [`forward_print`]).
unsafe extern "C" fn print_qopt(_qu: *const QdiscUtil, f: *mut c_void, opt: *mut c_void) -> c_int {
    // SAFETY: tc's arguments, passed on unchanged.
    unsafe { forward_print(|h| h.print_qopt, f, opt) }
}

/// Class statistics in `tc -s class show`.
///
/// # Safety
///
/// Called by tc only, with the arguments of a print callback (see [`forward_print`]).
unsafe extern "C" fn print_xstats(
    _qu: *const QdiscUtil,
    f: *mut c_void,
    xstats: *mut c_void,
) -> c_int {
    // SAFETY: tc's arguments, passed on unchanged.
    unsafe { forward_print(|h| h.print_xstats, f, xstats) }
}

/// Class options in `tc class show`.
///
/// # Safety
///
/// Called by tc only, with the arguments of a print callback (see [`forward_print`]).
unsafe extern "C" fn print_copt(_qu: *const QdiscUtil, f: *mut c_void, opt: *mut c_void) -> c_int {
    // SAFETY: tc's arguments, passed on unchanged.
    unsafe { forward_print(|h| h.print_copt, f, opt) }
}

/// A rate as tc parses it (`get_rate64`, bytes/s); `None` if it does not parse or tc lacks it.
fn rate_of(s: &[u8]) -> Option<u64> {
    type GetRate64 = unsafe extern "C" fn(*mut u64, *const c_char) -> c_int;
    let sym = tc_symbol(c"get_rate64");
    if sym.is_null() {
        return None;
    }
    // SAFETY: iproute2's `int get_rate64(__u64 *rate, const char *str)` (include/utils.h).
    let get_rate64: GetRate64 = unsafe { std::mem::transmute::<*mut c_void, GetRate64>(sym) };
    let s = CString::new(s).ok()?;
    let mut rate = 0u64;
    // SAFETY: `rate` is writable, `s` NUL-terminated; get_rate64 reads `s` and prints nothing.
    (unsafe { get_rate64(ptr::addr_of_mut!(rate), s.as_ptr()) } == 0).then_some(rate)
}

/// tc's `get_hz()` (10^9 with the high-resolution clock, or `$HZ`); 1000 if tc lacks it, which
/// makes no difference to the burst default at rates where it applies.
fn hz() -> u64 {
    let sym = tc_symbol(c"__get_hz");
    if sym.is_null() {
        return 1000;
    }
    // SAFETY: iproute2's `int __get_hz(void)` (include/utils.h); reads the environment and
    // /proc/net/psched, prints nothing.
    let get_hz =
        unsafe { std::mem::transmute::<*mut c_void, unsafe extern "C" fn() -> c_int>(sym) };
    // SAFETY: no arguments; see above.
    u64::try_from(unsafe { get_hz() }).unwrap_or(1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn layout_is_tcs() {
        let w = size_of::<usize>();
        assert_eq!(offset_of!(QdiscUtil, next), 0);
        assert_eq!(offset_of!(QdiscUtil, id), w);
        assert_eq!(offset_of!(QdiscUtil, parse_qopt), 2 * w);
        assert_eq!(offset_of!(QdiscUtil, print_qopt), 3 * w);
        assert_eq!(offset_of!(QdiscUtil, print_xstats), 4 * w);
        assert_eq!(offset_of!(QdiscUtil, parse_copt), 5 * w);
        assert_eq!(offset_of!(QdiscUtil, print_copt), 6 * w);
        assert_eq!(offset_of!(QdiscUtil, has_block), 7 * w);
        assert_eq!(size_of::<QdiscUtil>(), 8 * w);
        assert_eq!(size_of::<Plugin>(), 8 * w);
    }

    #[test]
    fn exported_util_names_the_kind() {
        // SAFETY: nothing writes the cell in this test binary.
        let u = unsafe { &*htb_rs_qdisc_util.0.get() };
        // SAFETY: `id` points to a C string literal.
        assert_eq!(unsafe { CStr::from_ptr(u.id) }, c"htb_rs");
        assert!(u.next.is_null() && u.has_block.is_none());
        assert!(u.parse_qopt.is_some() && u.parse_copt.is_some() && u.print_copt.is_some());
    }

    /// Outside tc (this test binary exports no `htb_qdisc_util`) every callback refuses.
    #[test]
    fn without_tcs_htb_callbacks_refuse() {
        let mut arg = *b"rate\0";
        let mut value = *b"1gbit\0";
        let mut argv = [
            arg.as_mut_ptr().cast::<c_char>(),
            value.as_mut_ptr().cast(),
            ptr::null_mut(),
        ];
        // SAFETY: valid argv of two strings; the request and FILE are never reached.
        unsafe {
            assert_eq!(
                parse_qopt(
                    ptr::null(),
                    0,
                    argv.as_mut_ptr(),
                    ptr::null_mut(),
                    ptr::null()
                ),
                -1
            );
            assert_eq!(
                parse_copt(
                    ptr::null(),
                    2,
                    argv.as_mut_ptr(),
                    ptr::null_mut(),
                    ptr::null()
                ),
                -1
            );
            assert_eq!(
                print_qopt(ptr::null(), ptr::null_mut(), ptr::null_mut()),
                -1
            );
            assert_eq!(
                print_copt(ptr::null(), ptr::null_mut(), ptr::null_mut()),
                -1
            );
            assert_eq!(
                print_xstats(ptr::null(), ptr::null_mut(), ptr::null_mut()),
                -1
            );
        }
        assert_eq!(rate_of(b"1gbit"), None);
    }
}
