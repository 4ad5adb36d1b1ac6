# On the KASAN kernel only: loads a module whose init reads past an allocation from Rust.
# KASAN must report it (proof that the lane instruments Rust code, not only C), and with
# panic_on_warn=1 the VM must die here and the host side report this test as failed.
. /src/tests/vm/lib.sh
case $(uname -r) in *-kasan) ;; *) skip "not the KASAN kernel" ;; esac
insmod /src/tests/harness/warn_on/kasan_oob.ko
echo "still alive after an out-of-bounds read: KASAN is not on, or the harness is broken"
exit 0
