# Option kinds other than 254 (the `kinds` parameter, up to 4): with kinds=253 the balancer's
# kind-253 option gives the client (IPv4 and IPv6) and 254 is no longer read; kinds=200 alike;
# with kinds=254,200 a segment carrying a forged 254 option and then the real one as kind 200
# gives the client (the last wins), counted toa_multiple. Lists with a kind the stack uses
# (0-8, 28-30), more than 4 kinds, repeats or garbage are refused at load with a message.
. /src/tests/vm/lib.sh
topo_3
fullnat_lb 0

run() { # run VARIANT WANT_PEER_V4 WANT_PEER_V6
	toa_through_lb "$1" ack "$2" "$3"
	note "$1 with kinds=$(cat /sys/module/toa/parameters/kinds): server sees $2 and $3"
}

insmod "$(ko toa)" kinds=253
dmesg_has 'TOA: toa loaded \(options accepted from any peer; kinds \[253\]\)'
run kind:253 10.0.1.2 2001:db8:1::2
run good 10.0.2.1 2001:db8:2::1
rmmod toa

insmod "$(ko toa)" kinds=200
run kind:200 10.0.1.2 2001:db8:1::2
run kind:253 10.0.2.1 2001:db8:2::1
rmmod toa

insmod "$(ko toa)" kinds=254,200
run pair:200 10.0.1.2 2001:db8:1::2
[ "$(toa_stat toa_multiple)" -ge 2 ] || fail "two kinds in one segment not counted: $(cat /proc/net/toa_stats)"
run good 10.0.1.2 2001:db8:1::2
cat /proc/net/toa_stats
rmmod toa

for bad in 8 254,29 0 30 200,201,202,203,204 254,254 abc 300 ,; do
	dmesg -c >/dev/null
	expect_fail "kinds=$bad" insmod "$(ko toa)" "kinds=$bad"
	dmesg | grep -q 'TOA: kinds=.* refused: ' || fail "kinds=$bad: no message: $(dmesg | tail -n 3)"
	note "kinds=$bad: $(dmesg | grep -o 'refused: .*')"
done
[ ! -d /sys/module/toa ] || fail "toa loaded with a bad kinds list"
