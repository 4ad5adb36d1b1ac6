# Loads a module whose init hits WARN_ON. With panic_on_warn=1 the VM must die here and the
# host side must report this test and the run as failed.
. /src/tests/vm/lib.sh
insmod /src/tests/harness/warn_on/warn_on.ko
echo "still alive after WARN_ON: the harness is broken"
exit 0
