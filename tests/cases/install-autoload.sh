# `make install` into a staging root (the VM's root filesystem is read-only, so DESTDIR stands
# for it): modules under /lib/modules/<kver>/updates/rust-tc with depmod, the iptables
# extension and tc plugin where those tools look, module options in modprobe.d, autoload
# configs of both conventions. Then a "boot": what systemd-modules-load and the RHEL-style
# /etc/sysconfig/modules scripts would do, against the staged tree: the chosen modules come up
# with their options, imq without x_tables; the first `-j IMQ` rule makes the kernel load xt_IMQ
# (alias ipt_IMQ); `htb_rs` works from the installed plugin. Then uninstall.
. /src/tests/vm/lib.sh

root=/tmp/inst
kver=$(uname -r)
triplet=$(gcc -dumpmachine)
DESTDIR=$root AUTOLOAD="imq toa" IMQ_OPTS="numdevs=4 behavior=AB" TOA_OPTS="trusted=10.0.0.0/8" \
	/src/tools/install/install install || fail "install failed"

for m in imq xt_IMQ toa sch_htb_rs; do
	[ -f "$root/lib/modules/$kver/updates/rust-tc/$m.ko" ] || fail "$m.ko not installed"
done
grep -q "updates/rust-tc/imq.ko" "$root/lib/modules/$kver/modules.dep" ||
	fail "depmod did not index the modules: $(head -n 5 "$root/lib/modules/$kver/modules.dep")"
[ -f "$root/usr/lib/$triplet/xtables/libxt_IMQ.so" ] || fail "libxt_IMQ.so not installed"
[ -f "$root/usr/lib/$triplet/tc/q_htb_rs.so" ] || fail "q_htb_rs.so not installed"
grep -qx "options imq numdevs=4 behavior=AB" "$root/etc/modprobe.d/rust-tc.conf" ||
	fail "imq options: $(cat "$root/etc/modprobe.d/rust-tc.conf")"
grep -qx imq "$root/etc/modules-load.d/imq.conf" || fail "no modules-load.d entry for imq"
[ -x "$root/etc/sysconfig/modules/toa.modules" ] || fail "no executable sysconfig script for toa"
[ ! -e "$root/etc/modules-load.d/sch_htb_rs.conf" ] || fail "sch_htb_rs autoloaded though not chosen"
note "installed: $(cd $root && find . -type f | sort | tr '\n' ' ')"

# As on a fresh boot, no x_tables if it can be had (earlier tests of this boot loaded it): imq
# must come up without it.
for _ in 1 2 3 4 5; do
	for m in $(awk '$1 ~ /^(xt_|ipt_|ip6t_|iptable_|ip6table_|nft_compat|ip_tables|ip6_tables|x_tables)/ { print $1 }' /proc/modules); do
		rmmod "$m" 2>/dev/null || true
	done
done
fresh=yes
grep -q '^x_tables ' /proc/modules && fresh="no (x_tables held: $(grep '^x_tables ' /proc/modules))"
note "x_tables unloaded before the boot: $fresh"

# The "boot": modprobe against the staged tree and its modprobe.d. The kernel's own module
# requests (`-j IMQ` asks for ipt_IMQ) go through kernel.modprobe: a wrapper that looks in the
# system's tree, then in the staged one.
export MODPROBE="modprobe -d $root -C $root/etc/modprobe.d"
printf '#!/bin/sh
%s "$@" 2>/dev/null || exec %s -d %s -C %s/etc/modprobe.d "$@"
' \
	"$(command -v modprobe)" "$(command -v modprobe)" "$root" "$root" >/tmp/modprobe-staged
chmod 755 /tmp/modprobe-staged
oldmodprobe=$(cat /proc/sys/kernel/modprobe)
echo /tmp/modprobe-staged >/proc/sys/kernel/modprobe
trap 'echo "$oldmodprobe" >/proc/sys/kernel/modprobe' EXIT
for conf in "$root"/etc/modules-load.d/*.conf; do
	grep -v '^#' "$conf" | while read -r m; do
		[ -n "$m" ] && $MODPROBE "$m"
	done
done
for script in "$root"/etc/sysconfig/modules/*.modules; do
	"$script"
done
grep -q '^imq ' /proc/modules || fail "imq not loaded at boot"
grep -q '^toa ' /proc/modules || fail "toa not loaded at boot"
[ "$(cat /sys/module/imq/parameters/behavior)" = AB ] || fail "imq behavior $(cat /sys/module/imq/parameters/behavior)"
ip link show imq3 >/dev/null || fail "imq3 missing (numdevs=4 not applied)"
! ip link show imq4 >/dev/null 2>&1 || fail "imq4 exists (numdevs=4 not applied)"
dmesg_has 'imq: loaded: numdevs=4 numqueues=1 behavior=AB'
dmesg_has 'toa: TOA: toa loaded \(options accepted from 1 trusted prefixes; kinds \[254\]\)'
if [ "$fresh" = yes ]; then
	! grep -q '^x_tables ' /proc/modules || fail "loading imq loaded x_tables"
fi
! grep -q '^xt_IMQ ' /proc/modules || fail "xt_IMQ loaded before any rule"

# The installed plugins, found where the tools look (here: under the staging root).
export XTABLES_LIBDIR=$root/usr/lib/$triplet/xtables:/usr/lib/$triplet/xtables
export TC_LIB_DIR=$root/usr/lib/$triplet/tc
ip netns add inst
ip netns exec inst iptables -t mangle -A PREROUTING -j IMQ --todev 3 || fail "-j IMQ --todev 3 refused"
ip netns exec inst iptables -t mangle -S PREROUTING | grep_q -- "-j IMQ --todev 3" || fail "rule not listed"
grep -q '^xt_IMQ ' /proc/modules || fail "the rule did not autoload xt_IMQ"
note "after the first -j IMQ rule: $(grep -E '^(xt_IMQ|imq|x_tables) ' /proc/modules | cut -d' ' -f1,4 | tr '\n' ' ')"
ip -n inst link add d0 type dummy
ip -n inst link set d0 up
$MODPROBE sch_htb_rs
ip netns exec inst tc qdisc add dev d0 root handle 1: htb_rs default 10 || fail "htb_rs through the installed plugin"
ip netns exec inst tc qdisc show dev d0 | grep_q "qdisc htb_rs 1: root" || fail "no htb_rs qdisc"
ip netns exec inst tc qdisc del dev d0 root
ip netns exec inst iptables -t mangle -F
ip netns del inst
rmmod sch_htb_rs imq toa
xt_imq_unload

DESTDIR=$root /src/tools/install/install uninstall || fail "uninstall failed"
left=$(cd $root && find . -type f ! -name 'modules.*' | sort)
[ -z "$left" ] || fail "uninstall left: $left"
