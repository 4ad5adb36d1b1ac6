# The three modules load into the stock kernel, show their parameters, refuse bad ones with a
# message, and unload cleanly; reload works. imq needs no other module (its iptables target is
# the module xt_IMQ, which iptables autoloads), so a plain insmod works on a fresh boot.
. /src/tests/vm/lib.sh

for m in imq xt_IMQ toa sch_htb_rs; do
	[ -e "$(ko $m)" ] || fail "$(ko $m) not built (make ref)"
	[ "$(modinfo -F vermagic "$(ko $m)" | cut -d' ' -f1)" = "$(uname -r)" ] ||
		fail "$m vermagic $(modinfo -F vermagic "$(ko $m)") does not match $(uname -r)"
done

# Parameters as modinfo shows them.
modinfo -F parm "$(ko imq)" | grep_q '^numdevs:' || fail "imq: no numdevs in modinfo"
modinfo -F parm "$(ko imq)" | grep_q '^behavior:' || fail "imq: no behavior in modinfo"
modinfo -F parm "$(ko toa)" | grep_q '^trusted:' || fail "toa: no trusted in modinfo"
modinfo -F parm "$(ko sch_htb_rs)" | grep_q '^htb_rate_est:' || fail "sch_htb_rs: no htb_rate_est"
modinfo -F alias "$(ko sch_htb_rs)" | grep_q -x 'net-sch-htb_rs' || fail "sch_htb_rs: no alias"
[ -z "$(modinfo -F depends "$(ko imq)")" ] || fail "imq depends on $(modinfo -F depends "$(ko imq)")"
# xt_IMQ: found by the names iptables asks for, and modprobe brings imq first.
[ "$(modinfo -F alias "$(ko xt_IMQ)" | sort | tr '\n' ' ')" = "ip6t_IMQ ipt_IMQ " ] ||
	fail "xt_IMQ aliases: $(modinfo -F alias "$(ko xt_IMQ)")"
[ "$(modinfo -F softdep "$(ko xt_IMQ)")" = "pre: imq" ] || fail "xt_IMQ softdep: $(modinfo -F softdep "$(ko xt_IMQ)")"
[ "$(modinfo -F depends "$(ko xt_IMQ)")" = x_tables ] || fail "xt_IMQ depends: $(modinfo -F depends "$(ko xt_IMQ)")"

for round in 1 2; do
	insmod "$(ko imq)"
	dmesg_has 'imq: loaded: numdevs=2 numqueues=1 behavior=BA \(PREROUTING prio -149, POSTROUTING prio 2147483647\)'
	insmod "$(ko toa)"
	dmesg_has 'TOA: toa loaded'
	insmod "$(ko sch_htb_rs)"
	dmesg_has "sch_htb_rs: loaded for $(uname -r | sed 's/[.+]/\\&/g')"
	for m in imq toa sch_htb_rs; do
		[ -d /sys/module/$m ] || fail "$m not in /sys/module"
		grep -q "^$m " /proc/modules || fail "$m not in /proc/modules"
	done
	[ "$(cat /sys/module/imq/parameters/behavior)" = BA ] || fail "imq behavior not visible in sysfs"
	rmmod imq toa sch_htb_rs
	for m in imq toa sch_htb_rs; do
		[ ! -d /sys/module/$m ] || fail "$m still loaded after rmmod (round $round)"
	done
	dmesg_has 'imq: unloaded'
	dmesg -c >/dev/null
done

insmod "$(ko imq)" numdevs=16 behavior=ab
dmesg_has 'numdevs=16 numqueues=1 behavior=AB \(PREROUTING prio -99, POSTROUTING prio 99\)'
rmmod imq
insmod "$(ko imq)" numdevs=1 numqueues=32
dmesg_has 'numdevs=1 numqueues=32 behavior='
[ "$(ls -d /sys/class/net/imq0/queues/tx-* | wc -l)" = 32 ] || fail "imq0 does not have 32 transmit queues"
rmmod imq

expect_fail "imq numdevs=0" insmod "$(ko imq)" numdevs=0
dmesg_has 'imq: numdevs=0 is out of range'
expect_fail "imq numdevs=17" insmod "$(ko imq)" numdevs=17
dmesg_has 'imq: numdevs=17 is out of range'
for q in 0 33; do
	expect_fail "imq numqueues=$q" insmod "$(ko imq)" numqueues=$q
	dmesg_has "imq: numqueues=$q is out of range \\(1 to 32\\)"
done
expect_fail "imq behavior=XY" insmod "$(ko imq)" behavior=XY
dmesg_has 'imq: behavior="XY" is not one of AA, AB, BA, BB'
expect_fail "toa trusted=10.0.0.0/33" insmod "$(ko toa)" trusted=10.0.0.0/33
dmesg_has 'TOA: trusted="10.0.0.0/33" refused: a prefix length exceeds'
expect_fail "toa trusted=bogus" insmod "$(ko toa)" trusted=10.0.0.0/8,bogus
dmesg_has 'TOA: trusted=.* refused: an entry is not'
[ ! -d /sys/module/imq ] && [ ! -d /sys/module/toa ] || fail "a refused load left a module behind"

insmod "$(ko toa)" trusted=10.0.0.0/8,2001:db8::/32
dmesg_has 'TOA: toa loaded \(options accepted from 2 trusted prefixes; kinds \[254\]\)'
rmmod toa
note "all loads, refusals and unloads as expected"
