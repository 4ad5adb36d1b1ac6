# `make install` into the VM's real root (an overlay over the build root, kept across one
# reboot), autoload configured in both conventions, then a real second boot: the boot applies
# /etc/modules-load.d with systemd-modules-load and runs /etc/sysconfig/modules/*.modules as
# RHEL's rc.sysinit does (tests/vm/guest-run). After it the chosen modules are up with their
# /etc/modprobe.d options, imq without x_tables; `iptables -j IMQ` and `tc ... htb_rs` work
# without extra paths (the first rule makes the kernel load xt_IMQ by its alias ipt_IMQ; tc
# autoloads sch_htb_rs by its alias); `make uninstall` leaves nothing behind.
. /src/tests/vm/lib.sh

kver=$(uname -r)
triplet=$(gcc -dumpmachine)
phase=/out/state/install-reboot.phase
moddir=/lib/modules/$kver/updates/rust-tc

if [ ! -e $phase ]; then
	# First boot: install as an operator would, both autoload conventions, then keep one per
	# module so that each is shown to work on its own: imq from modules-load.d, toa from a
	# sysconfig script.
	IMQ_OPTS="numdevs=3 behavior=BA" TOA_OPTS="trusted=10.0.0.0/8,fd00::/8" \
		HTB_OPTS="htb_hysteresis=1" AUTOLOAD="imq toa" AUTOLOAD_STYLE=both \
		/src/tools/install/install install || fail "install failed"
	rm /etc/sysconfig/modules/imq.modules /etc/modules-load.d/toa.conf
	[ -f /etc/modules-load.d/imq.conf ] || fail "no /etc/modules-load.d/imq.conf"
	[ -x /etc/sysconfig/modules/toa.modules ] || fail "no executable toa.modules"
	[ "$(modinfo -n imq)" = "$moddir/imq.ko" ] || fail "modprobe does not find the installed imq: $(modinfo -n imq 2>&1)"
	[ "$(modinfo -n ipt_IMQ)" = "$moddir/xt_IMQ.ko" ] || fail "modprobe does not find xt_IMQ by its alias: $(modinfo -n ipt_IMQ 2>&1)"
	note "installed; rebooting"
	echo 2 >$phase
	exit 75
fi

# Second boot.
trap '/src/tools/install/install uninstall >/dev/null 2>&1' EXIT
note "modules-load at boot: $(tr '\n' ' ' </out/state/boot-modules-load.log 2>/dev/null)"
grep -qx 'exit 0' /out/state/boot-modules-load.log ||
	fail "systemd-modules-load failed at boot: $(cat /out/state/boot-modules-load.log 2>&1)"
grep -q '^imq ' /proc/modules || fail "imq not loaded at boot (modules-load.d)"
grep -q '^toa ' /proc/modules || fail "toa not loaded at boot (sysconfig script)"
! grep -q '^sch_htb_rs ' /proc/modules || fail "sch_htb_rs loaded at boot though not chosen"
[ "$(cat /sys/module/imq/parameters/behavior)" = BA ] ||
	fail "imq behavior $(cat /sys/module/imq/parameters/behavior), expected BA from modprobe.d"
ip link show imq2 >/dev/null || fail "imq2 missing (numdevs=3 not applied)"
! ip link show imq3 >/dev/null 2>&1 || fail "imq3 exists (numdevs=3 not applied)"
grep -q "fd00::/8" /sys/module/toa/parameters/trusted ||
	fail "toa trusted=$(cat /sys/module/toa/parameters/trusted), expected the modprobe.d list"

note "after boot: $(grep -E '^(imq|xt_IMQ|x_tables) ' /proc/modules | cut -d' ' -f1,4 | tr '\n' ' ')"
! grep -q '^x_tables ' /proc/modules || fail "x_tables loaded at boot: imq should not need it"
! grep -q '^xt_IMQ ' /proc/modules || fail "xt_IMQ loaded before any rule"

# The plugins from where the tools look by default, no XTABLES_LIBDIR/TC_LIB_DIR.
unset XTABLES_LIBDIR TC_LIB_DIR
ip netns add inst
ip netns exec inst iptables -t mangle -A PREROUTING -i lo -j IMQ --todev 2 ||
	fail "iptables -j IMQ --todev 2 refused"
grep -q '^xt_IMQ ' /proc/modules || fail "the first -j IMQ rule did not load xt_IMQ"
ip netns exec inst iptables -t mangle -S PREROUTING | grep_q -- "-j IMQ --todev 2" ||
	fail "the IMQ rule is not listed back"
ip netns exec inst ip6tables -t mangle -A POSTROUTING -j IMQ --todev 1 || fail "ip6tables -j IMQ refused"
ip -n inst link add d0 type dummy
ip -n inst link set d0 up
ip netns exec inst tc qdisc add dev d0 root handle 1: htb_rs default 10 ||
	fail "tc qdisc add htb_rs (plugin and module autoload)"
ip netns exec inst tc class add dev d0 parent 1: classid 1:10 htb_rs rate 5mbit burst 15k ||
	fail "tc class add htb_rs"
ip netns exec inst tc class show dev d0 | grep_q "class htb_rs 1:10 root prio 0 rate 5Mbit" ||
	fail "htb_rs class shown as: $(ip netns exec inst tc class show dev d0)"
grep -q '^sch_htb_rs ' /proc/modules || fail "sch_htb_rs not autoloaded by tc"
dmesg | grep_q 'sch_htb_rs: loaded for .*(hysteresis=true' ||
	fail "sch_htb_rs htb_hysteresis=1 not applied from modprobe.d: $(dmesg | grep sch_htb_rs)"
ip netns del inst

# Uninstall from the live root: the files go, modprobe no longer finds the modules.
trap - EXIT
/src/tools/install/install uninstall || fail "uninstall failed"
for f in $moddir/imq.ko $moddir/xt_IMQ.ko /etc/modules-load.d/imq.conf /etc/sysconfig/modules/toa.modules \
	/etc/modprobe.d/rust-tc.conf /usr/lib/$triplet/xtables/libxt_IMQ.so /usr/lib/$triplet/tc/q_htb_rs.so; do
	[ ! -e "$f" ] || fail "$f left after uninstall"
done
! modinfo -n imq >/dev/null 2>&1 || fail "modprobe still finds imq after uninstall: $(modinfo -n imq)"
note "installed, rebooted, autoloaded, uninstalled"
