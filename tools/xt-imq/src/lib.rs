//! `libxt_IMQ.so`: the iptables extension for target `IMQ` (module `imq`).
//!
//! `iptables -t mangle -A PREROUTING -i eth0 -j IMQ --todev 0` sends the chain's packets to
//! device `imq0`. The kernel target (`imq`, revision 0, IPv4 and IPv6, table `mangle`, hooks
//! PREROUTING and POSTROUTING) takes `struct { __u32 todev; }`; stock iptables has no parser
//! for it, so for `-j IMQ` it `dlopen`s `libxt_IMQ.so` from `$XTABLES_LIBDIR` (a
//! colon-separated list; Debian's default `/usr/lib/x86_64-linux-gnu/xtables`). Both backends
//! (`iptables-nft`, through `nft_compat`, and `iptables-legacy`) and `ip6tables` use it.
//!
//! **Registration.** iptables calls nothing in the library: loading it runs its ELF
//! constructors, and one of them must hand a `struct xtables_target` per family to
//! `xtables_register_target` (C extensions get this from xtables.h, which turns `_init` into an
//! `__attribute__((constructor))` function). Here the constructor is a function pointer in
//! `.init_array`; an exported `_init` would not do, as it collides with the `_init` of the C
//! runtime's `crti.o` (the link fails with "duplicate symbol: _init"). The libxtables functions
//! are looked up with `dlsym(RTLD_DEFAULT, ...)` rather than linked against, so building needs
//! no libxtables, and loading the library outside iptables says so instead of failing.
//!
//! **Option parsing.** The classic `parse` callback with a getopt `struct option` table, not
//! the `x6_parse` API: `struct xt_option_entry` grew a field (`base`) between iptables 1.8.9
//! and 1.8.11, so an `x6_options` table fits one of them only, while `struct option` is glibc's
//! and fixed. Errors go through libxtables' `xt_params->exit_err` (the `xtables_error` macro of
//! C extensions): iptables prints its name and the message, and exits with status 2.
//!
//! **ABI.** `struct xtables_target`, `struct xtables_globals` and `XTABLES_VERSION`
//! ("libxtables.so.12") as in `xtables.h` of Debian's libxtables-dev 1.8.9-2 (Debian 12) and
//! 1.8.11-2 (trixie), identical in both for what is used here. A libxtables of another
//! `XTABLES_VERSION` refuses the registration with its own message.

#![deny(unsafe_op_in_unsafe_fn)]
// iptables looks for `libxt_IMQ.so`, so the library is named `xt_IMQ`; the lint on that crate
// name can only be allowed crate-wide, and no other name in the crate needs it.
#![allow(non_snake_case)]

pub mod todev;

use std::cell::UnsafeCell;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::ptr;

use todev::TodevError;

/// `XTABLES_VERSION` of libxtables.so.12 (`xtables-version.h`), checked by
/// `xtables_register_target`.
const XTABLES_VERSION: &CStr = c"libxtables.so.12";

/// `NFPROTO_IPV4` and `NFPROTO_IPV6` (`linux/netfilter.h`).
const NFPROTO_IPV4: u16 = 2;
const NFPROTO_IPV6: u16 = 10;

/// `PARAMETER_PROBLEM` of `enum xtables_exittype`: also the exit status.
const PARAMETER_PROBLEM: c_int = 2;

/// The kernel's target data, `struct { __u32 todev; }`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImqInfo {
    pub todev: u32,
}

/// `XT_ALIGN(sizeof(ImqInfo))`: x_tables aligns target data to 8 bytes.
const INFO_SIZE: usize = (std::mem::size_of::<ImqInfo>() + 7) & !7;

/// `struct xt_entry_target` (`linux/netfilter/x_tables.h`): a 32-byte header (`__u16
/// target_size`, then the name and revision, or the kernel's pointer), the data after it.
#[repr(C)]
pub struct XtEntryTarget {
    target_size: u16,
    _rest: [u8; 30],
}

/// Size of the header before the data (`sizeof(struct xt_entry_target)`).
const ENTRY_HEADER: usize = 32;

/// Parse callback: `int (*)(int c, char **argv, int invert, unsigned int *flags, const void
/// *entry, struct xt_entry_target **targetinfo)`.
type ParseFn = unsafe extern "C" fn(
    c_int,
    *mut *mut c_char,
    c_int,
    *mut c_uint,
    *const c_void,
    *mut *mut XtEntryTarget,
) -> c_int;
/// `void (*)(const void *ip, const struct xt_entry_target *, int numeric)`.
type PrintFn = unsafe extern "C" fn(*const c_void, *const XtEntryTarget, c_int);
/// `void (*)(const void *ip, const struct xt_entry_target *)`.
type SaveFn = unsafe extern "C" fn(*const c_void, *const XtEntryTarget);
/// `xt_params->exit_err`: `void (*)(enum xtables_exittype, const char *fmt, ...)`, noreturn.
type ExitErrFn = unsafe extern "C" fn(c_int, *const c_char, ...);

/// glibc's `struct option` (`getopt.h`), the classic parser's option table.
#[repr(C)]
pub struct GetoptOption {
    name: *const c_char,
    has_arg: c_int,
    flag: *mut c_int,
    val: c_int,
}

/// libxtables' `struct xtables_target` (`xtables.h`, identical in 1.8.9 and 1.8.11). The
/// fields after `xlate` belong to libxtables ("ignore these men behind the curtain"): it links
/// the registration into its list and keeps per-rule state in them, so it must be writable.
#[repr(C)]
pub struct XtablesTarget {
    version: *const c_char,
    next: *mut XtablesTarget,
    name: *const c_char,
    real_name: *const c_char,
    revision: u8,
    ext_flags: u8,
    family: u16,
    size: usize,
    userspacesize: usize,
    help: Option<unsafe extern "C" fn()>,
    init: Option<unsafe extern "C" fn(*mut XtEntryTarget)>,
    parse: Option<ParseFn>,
    final_check: Option<unsafe extern "C" fn(c_uint)>,
    print: Option<PrintFn>,
    save: Option<SaveFn>,
    alias: *const c_void,
    extra_opts: *const GetoptOption,
    x6_parse: *const c_void,
    x6_fcheck: *const c_void,
    x6_options: *const c_void,
    xlate: *const c_void,
    udata_size: usize,
    udata: *mut c_void,
    option_offset: c_uint,
    t: *mut XtEntryTarget,
    tflags: c_uint,
    used: c_uint,
    loaded: c_uint,
}

/// libxtables' `struct xtables_globals`, reached through its `xt_params` pointer.
#[repr(C)]
pub struct XtablesGlobals {
    option_offset: c_uint,
    program_name: *const c_char,
    program_version: *const c_char,
    orig_opts: *mut c_void,
    opts: *mut c_void,
    exit_err: Option<ExitErrFn>,
    compat_rev: *const c_void,
}

/// A registration libxtables may write into; `repr(transparent)` keeps the C layout.
#[repr(transparent)]
pub struct Registration(UnsafeCell<XtablesTarget>);

// SAFETY: Rust code never touches the cells after their constant initialisation except to pass
// their address to `xtables_register_target`; afterwards only the single-threaded iptables
// reads and writes them.
unsafe impl Sync for Registration {}

/// The option table: `--todev` with a required argument, then the all-zero terminator.
#[repr(transparent)]
pub struct Options([GetoptOption; 2]);

// SAFETY: immutable, and its pointers point to string literals.
unsafe impl Sync for Options {}

/// `val` of `--todev` as our `parse` sees it (iptables adds and removes its own offset).
const OPT_TODEV: c_int = 1;
/// Bit in the rule's `tflags` once `--todev` was seen.
const FLAG_TODEV: c_uint = 1;

static OPTIONS: Options = Options([
    GetoptOption {
        name: c"todev".as_ptr(),
        has_arg: 1, // required_argument
        flag: ptr::null_mut(),
        val: OPT_TODEV,
    },
    GetoptOption {
        name: ptr::null(),
        has_arg: 0,
        flag: ptr::null_mut(),
        val: 0,
    },
]);

/// The target for one family, all callbacks ours.
const fn target(family: u16) -> XtablesTarget {
    XtablesTarget {
        version: XTABLES_VERSION.as_ptr(),
        next: ptr::null_mut(),
        name: c"IMQ".as_ptr(),
        real_name: ptr::null(),
        revision: 0,
        ext_flags: 0,
        family,
        size: INFO_SIZE,
        userspacesize: INFO_SIZE,
        help: Some(help),
        init: Some(init),
        parse: Some(parse),
        final_check: None,
        print: Some(print),
        save: Some(save),
        alias: ptr::null(),
        extra_opts: OPTIONS.0.as_ptr(),
        x6_parse: ptr::null(),
        x6_fcheck: ptr::null(),
        x6_options: ptr::null(),
        xlate: ptr::null(),
        udata_size: 0,
        udata: ptr::null_mut(),
        option_offset: 0,
        t: ptr::null_mut(),
        tflags: 0,
        used: 0,
        loaded: 0,
    }
}

/// `-j IMQ` for iptables (IPv4) and ip6tables; libxtables keeps the one of its family.
static IMQ_V4: Registration = Registration(UnsafeCell::new(target(NFPROTO_IPV4)));
static IMQ_V6: Registration = Registration(UnsafeCell::new(target(NFPROTO_IPV6)));

extern "C" {
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    fn printf(fmt: *const c_char, ...) -> c_int;
    /// getopt's argument of the option being parsed (C writes it: hence `mut`).
    static mut optarg: *mut c_char;
}

/// glibc's `RTLD_DEFAULT`: the global scope, where iptables' libxtables.so.12 is.
const RTLD_DEFAULT: *mut c_void = ptr::null_mut();

/// Address of a dynamic symbol of the running program (null if there is none).
fn symbol(name: &CStr) -> *mut c_void {
    // SAFETY: `name` is NUL-terminated; dlsym only reads the loaded objects' symbol tables.
    unsafe { dlsym(RTLD_DEFAULT, name.as_ptr()) }
}

/// The constructor: registers both targets with the libxtables of the iptables loading us.
extern "C" fn register() {
    type RegisterFn = unsafe extern "C" fn(*mut XtablesTarget);
    let sym = symbol(c"xtables_register_target");
    if sym.is_null() {
        eprintln!("libxt_IMQ.so: no xtables_register_target here; it is for iptables to load");
        return;
    }
    // SAFETY: libxtables' `void xtables_register_target(struct xtables_target *)`.
    let register = unsafe { std::mem::transmute::<*mut c_void, RegisterFn>(sym) };
    for reg in [&IMQ_V4, &IMQ_V6] {
        // SAFETY: a valid `struct xtables_target` in writable static memory, registered once
        // (the constructor runs once per load); libxtables owns it from now on.
        unsafe { register(reg.0.get()) };
    }
}

/// Runs [`register`] when iptables `dlopen`s the library (not in the unit-test binary, which
/// has no libxtables).
#[cfg(not(test))]
#[used]
#[link_section = ".init_array"]
static REGISTER: extern "C" fn() = register;

/// Prints through C's stdio, whose buffered `stdout` iptables' own output also goes to (Rust's
/// `print!` has a buffer of its own and would come out of order).
fn c_print(text: &str) {
    let Ok(text) = CString::new(text) else {
        return;
    };
    // SAFETY: a "%s" format with one NUL-terminated string argument.
    unsafe { printf(c"%s".as_ptr(), text.as_ptr()) };
}

/// Reports a parameter problem the way extensions do (`xtables_error(PARAMETER_PROBLEM, ...)`):
/// iptables prints its name, the message and a hint, and exits with status 2.
fn fail(err: &TodevError) -> ! {
    let msg = CString::new(err.to_string()).unwrap_or_default();
    let params = symbol(c"xt_params").cast::<*const XtablesGlobals>();
    if !params.is_null() {
        // SAFETY: `xt_params` is libxtables' `struct xtables_globals *xt_params`, set by
        // iptables before any extension is loaded; the globals live for the process.
        let exit_err = unsafe { params.read().as_ref() }.and_then(|g| g.exit_err);
        if let Some(exit_err) = exit_err {
            // SAFETY: `exit_err(status, fmt, ...)` with a "%s" format and one string; it exits.
            unsafe { exit_err(PARAMETER_PROBLEM, c"%s".as_ptr(), msg.as_ptr()) };
        }
    }
    eprintln!("{err}");
    std::process::exit(PARAMETER_PROBLEM);
}

/// The rule's target data, if the entry is large enough to hold it.
///
/// # Safety
///
/// `t` is null or points to an `xt_entry_target` of `target_size` bytes.
unsafe fn info_ptr(t: *const XtEntryTarget) -> Option<*mut ImqInfo> {
    // SAFETY: non-null `t` points to at least the header (caller's contract).
    let size = usize::from(unsafe { t.as_ref() }?.target_size);
    (size >= ENTRY_HEADER + std::mem::size_of::<ImqInfo>())
        .then(|| t.cast::<u8>().wrapping_add(ENTRY_HEADER).cast_mut().cast())
}

/// Reads the target data of a rule.
///
/// # Safety
///
/// As [`info_ptr`].
unsafe fn read_info(t: *const XtEntryTarget) -> Option<ImqInfo> {
    // SAFETY: caller's contract; the pointer is inside the entry, maybe unaligned.
    unsafe { info_ptr(t).map(|p| p.read_unaligned()) }
}

/// `iptables -j IMQ --help`.
extern "C" fn help() {
    c_print(todev::HELP);
}

/// A new rule's target data: device 0 unless `--todev` says otherwise.
///
/// # Safety
///
/// Called by iptables with the rule's (zeroed) `xt_entry_target`.
unsafe extern "C" fn init(t: *mut XtEntryTarget) {
    // SAFETY: iptables' entry of `target_size` bytes (see `info_ptr`).
    if let Some(p) = unsafe { info_ptr(t) } {
        // SAFETY: `p` is inside the entry; unaligned write to be safe.
        unsafe {
            p.write_unaligned(ImqInfo {
                todev: todev::DEFAULT_TODEV,
            })
        };
    }
}

/// One of our options on the command line: `--todev N`. Returns 1 if it was ours.
///
/// # Safety
///
/// Called by iptables' option loop: `optarg` is the option's argument, `flags` the rule's
/// `tflags`, `targetinfo` points to the rule's `xt_entry_target` pointer.
unsafe extern "C" fn parse(
    c: c_int,
    _argv: *mut *mut c_char,
    invert: c_int,
    flags: *mut c_uint,
    _entry: *const c_void,
    targetinfo: *mut *mut XtEntryTarget,
) -> c_int {
    if c != OPT_TODEV {
        return 0;
    }
    if invert != 0 {
        fail(&TodevError::Inverted);
    }
    // SAFETY: iptables passes its rule's `tflags`.
    let Some(flags) = (unsafe { flags.as_mut() }) else {
        return 0;
    };
    if *flags & FLAG_TODEV != 0 {
        fail(&TodevError::Repeated);
    }
    // SAFETY: getopt set `optarg` to this option's (required) argument, a C string; it is
    // read once, by value, in single-threaded iptables.
    let arg = unsafe { ptr::addr_of!(optarg).read().as_ref() }.map(|a| {
        // SAFETY: non-null and NUL-terminated, owned by argv for the whole run.
        unsafe { CStr::from_ptr(a) }.to_bytes()
    });
    let todev = match todev::parse(arg.unwrap_or_default()) {
        Ok(v) => v,
        Err(e) => fail(&e),
    };
    // SAFETY: iptables passes the address of the rule's target pointer.
    let t = unsafe { targetinfo.as_ref() }.map_or(ptr::null_mut(), |t| *t);
    // SAFETY: iptables' entry of `target_size` bytes (see `info_ptr`).
    let Some(p) = (unsafe { info_ptr(t) }) else {
        return 0;
    };
    // SAFETY: `p` is inside the entry; unaligned write to be safe.
    unsafe { p.write_unaligned(ImqInfo { todev }) };
    *flags |= FLAG_TODEV;
    1
}

/// The rule in `iptables -L`: ` IMQ: todev N`.
///
/// # Safety
///
/// Called by iptables with a rule's `xt_entry_target`.
unsafe extern "C" fn print(_ip: *const c_void, t: *const XtEntryTarget, _numeric: c_int) {
    // SAFETY: iptables' entry (see `info_ptr`).
    if let Some(info) = unsafe { read_info(t) } {
        c_print(&todev::print_text(info.todev));
    }
}

/// The rule in `iptables-save`/`-S`: ` --todev N`.
///
/// # Safety
///
/// Called by iptables with a rule's `xt_entry_target`.
unsafe extern "C" fn save(_ip: *const c_void, t: *const XtEntryTarget) {
    // SAFETY: iptables' entry (see `info_ptr`).
    if let Some(info) = unsafe { read_info(t) } {
        c_print(&todev::save_text(info.todev));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn layouts_are_libxtables() {
        assert_eq!(offset_of!(XtablesTarget, version), 0);
        assert_eq!(offset_of!(XtablesTarget, next), 8);
        assert_eq!(offset_of!(XtablesTarget, name), 16);
        assert_eq!(offset_of!(XtablesTarget, real_name), 24);
        assert_eq!(offset_of!(XtablesTarget, revision), 32);
        assert_eq!(offset_of!(XtablesTarget, ext_flags), 33);
        assert_eq!(offset_of!(XtablesTarget, family), 34);
        assert_eq!(offset_of!(XtablesTarget, size), 40);
        assert_eq!(offset_of!(XtablesTarget, userspacesize), 48);
        assert_eq!(offset_of!(XtablesTarget, help), 56);
        assert_eq!(offset_of!(XtablesTarget, parse), 72);
        assert_eq!(offset_of!(XtablesTarget, print), 88);
        assert_eq!(offset_of!(XtablesTarget, save), 96);
        assert_eq!(offset_of!(XtablesTarget, extra_opts), 112);
        assert_eq!(offset_of!(XtablesTarget, x6_options), 136);
        assert_eq!(offset_of!(XtablesTarget, xlate), 144);
        assert_eq!(offset_of!(XtablesTarget, udata_size), 152);
        assert_eq!(offset_of!(XtablesTarget, option_offset), 168);
        assert_eq!(offset_of!(XtablesTarget, t), 176);
        assert_eq!(offset_of!(XtablesTarget, loaded), 192);
        assert_eq!(size_of::<XtablesTarget>(), 200);
        assert_eq!(size_of::<Registration>(), 200);
        assert_eq!(offset_of!(XtablesGlobals, exit_err), 40);
        assert_eq!(size_of::<GetoptOption>(), 32);
        assert_eq!(size_of::<XtEntryTarget>(), ENTRY_HEADER);
        assert_eq!(INFO_SIZE, 8);
    }

    #[test]
    fn registrations_describe_the_kernel_target() {
        for (reg, family) in [(&IMQ_V4, 2), (&IMQ_V6, 10)] {
            // SAFETY: nothing registers or writes the cells in this test binary.
            let t = unsafe { &*reg.0.get() };
            // SAFETY: both point to C string literals.
            let (version, name) = unsafe { (CStr::from_ptr(t.version), CStr::from_ptr(t.name)) };
            assert_eq!(version, c"libxtables.so.12");
            assert_eq!(name, c"IMQ");
            assert_eq!((t.revision, t.family, t.size), (0, family, 8));
            assert!(t.next.is_null() && t.parse.is_some() && t.x6_parse.is_null());
        }
        // SAFETY: the static's name points to a literal; the terminator is all zero.
        unsafe {
            assert_eq!(CStr::from_ptr(OPTIONS.0[0].name), c"todev");
        }
        assert_eq!(OPTIONS.0[0].has_arg, 1);
        assert!(OPTIONS.0[1].name.is_null() && OPTIONS.0[1].val == 0);
    }

    /// A rule's target as iptables allocates it: header, then the (aligned) data.
    #[repr(C, align(8))]
    struct Entry([u8; ENTRY_HEADER + INFO_SIZE]);

    fn entry(size: usize) -> Entry {
        let mut e = Entry([0xAA; ENTRY_HEADER + INFO_SIZE]);
        e.0[..2].copy_from_slice(&u16::try_from(size).unwrap().to_ne_bytes());
        e
    }

    #[test]
    fn init_and_print_use_the_data_after_the_header() {
        let mut e = entry(ENTRY_HEADER + INFO_SIZE);
        let t = e.0.as_mut_ptr().cast::<XtEntryTarget>();
        // SAFETY: `t` is a complete entry of the size it claims.
        unsafe {
            init(t);
            assert_eq!(read_info(t), Some(ImqInfo { todev: 0 }));
        }
        e.0[ENTRY_HEADER..ENTRY_HEADER + 4].copy_from_slice(&7u32.to_ne_bytes());
        // SAFETY: as above.
        assert_eq!(
            unsafe { read_info(e.0.as_ptr().cast()) },
            Some(ImqInfo { todev: 7 })
        );
    }

    #[test]
    fn short_or_missing_entries_are_not_touched() {
        let mut e = entry(ENTRY_HEADER);
        let t = e.0.as_mut_ptr().cast::<XtEntryTarget>();
        // SAFETY: `t` claims only the header; null is allowed.
        unsafe {
            init(t);
            assert_eq!(read_info(t), None);
            assert_eq!(read_info(ptr::null()), None);
        }
        assert!(e.0[ENTRY_HEADER..].iter().all(|&b| b == 0xAA));
    }

    /// Loaded outside iptables (here: no libxtables) the constructor registers nothing.
    #[test]
    fn registration_without_libxtables_is_skipped() {
        register();
        // SAFETY: nothing else touches the cells in this test binary.
        assert!(unsafe { &*IMQ_V4.0.get() }.next.is_null());
    }

    #[test]
    fn parse_ignores_options_that_are_not_ours() {
        let mut flags = 0;
        // SAFETY: an option value we do not own returns before anything is read.
        let r = unsafe {
            parse(
                OPT_TODEV + 1,
                ptr::null_mut(),
                0,
                &mut flags,
                ptr::null(),
                ptr::null_mut(),
            )
        };
        assert_eq!((r, flags), (0, 0));
    }
}
