# imq under churn. `ip link del imq0` in the middle of a full-speed download diverted to it: no
# warning, the flow carries on unshaped, and the module unloads with every diverted packet
# accounted for (reinjected, dropped with the device's queue, or gone). Then repeated cycles of
# load, shaping tree, rule, traffic, rules flushed, unload, while a download runs throughout;
# each unload accounts for every packet, and the kmalloc-192/256 slabs (where the ~180-byte
# per-packet state lives) hold no more objects after the last cycle than before the first,
# give or take a little noise.
. /src/tests/vm/lib.sh
. /src/tests/vm/imq-lib.sh
imq_setup

topo_3
ip netns exec cli iperf3 -s -D -p 5201
sleep 0.5
rule() { ip netns exec rtr iptables -t mangle -A PREROUTING -i r1 -j IMQ --todev 0; }
tree() {
	ip link set imq0 up
	tc qdisc add dev imq0 root handle 1: htb default 10
	tc class add dev imq0 parent 1: classid 1:10 htb rate 2mbit
}

# accounted LINE: every diverted packet was reinjected, dropped in the qdisc or gone, and none
# lost its state or had it expire.
accounted() {
	local div rei dro gone
	div=$(counter "$1" diverted) rei=$(counter "$1" reinjected)
	dro=$(counter "$1" dropped_in_qdisc) gone=$(counter "$1" gone)
	[ "$(counter "$1" lost)" = 0 ] && [ "$(counter "$1" expired)" = 0 ] ||
		fail "packets lost their state: $1"
	[ "$div" -eq $((rei + dro + gone)) ] ||
		fail "diverted $div != reinjected $rei + dropped in qdisc $dro + gone $gone: $1"
}

# 1. The device goes under traffic.
imq_load
tree
rule
ip netns exec srv iperf3 -c 10.0.1.2 -p 5201 -t 12 -J >/tmp/del.json 2>&1 &
load=$!
sleep 4
rx=$(ip -s -j link show imq0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["packets"])')
[ "$rx" -gt 20 ] || fail "imq0 took only $rx packets before its deletion"
ip link del imq0 || fail "ip link del imq0 under traffic failed"
note "imq0 deleted under traffic after $rx packets"
ok=0
wait $load && ok=1
if [ $ok = 1 ]; then
	cp /tmp/del.json /out/logs/imq-churn-del.json 2>/dev/null || true
	late=$(python3 -c 'import json,sys; i=json.load(open(sys.argv[1]))["intervals"][-4:-1]; print("%.1f" % (sum(x["sum"]["bytes"] for x in i)*8/sum(x["sum"]["seconds"] for x in i)/1e6))' /tmp/del.json)
	note "the download completed; its last seconds ran at $late Mbit/s (unshaped)"
	awk -v l="$late" 'BEGIN { exit !(l > 10) }' || fail "after imq0 went the flow ran at $late Mbit/s"
else
	note "the download was cut off: $(tail -n 3 /tmp/del.json | tr -d '\n')"
fi
down=$(iperf_mbit srv 10.0.1.2 2 -p 5201)
note "a new download with the rule still there, imq0 gone: $down Mbit/s"
awk -v d="$down" 'BEGIN { exit !(d > 10) }' || fail "without imq0 the flow is held to $down Mbit/s"
ip link show imq1 >/dev/null || fail "imq1 went with imq0"
line=$(imq_unload)
note "$line"
accounted "$line"
[ "$(counter "$line" passed_down)" -gt 0 ] || fail "nothing passed the deleted device: $line"

# 2. Load/unload cycles under traffic.
slab() { awk '$1 == "kmalloc-192" || $1 == "kmalloc-256" { n += $2 } END { print n }' /proc/slabinfo; }
# UDP at twice the class rate: the queue is full at every unload, and unlike TCP the stream
# does not back off from the losses. It runs until killed after the cycles (60 s ran out before
# the last cycle on a slow host).
ip netns exec srv iperf3 -c 10.0.1.2 -p 5201 -u -b 4M -l 1400 -t 600 >/dev/null 2>&1 &
load=$!
sleep 1
total=0
# cycle N: one load/unload under the stream; every packet accounted for.
cycle() {
	imq_load
	tree
	rule
	sleep 2
	line=$(imq_unload)
	accounted "$line"
	# The unload drops what the queue holds (dropped_in_qdisc); what the device releases meanwhile
	# is still reinjected, so nothing is "gone".
	[ "$(counter "$line" gone)" = 0 ] || fail "cycle $1: packets gone at unload: $line"
	d=$(counter "$line" diverted)
	[ "$d" -gt 10 ] || fail "cycle $1: only $d packets diverted: $line"
	total=$((total + d))
	note "cycle $1: $line; slabs $(slab)"
}
# Per-packet state has a slab cache of its own, destroyed at every unload: one left over would
# make that a WARN (a panic here). The kmalloc slabs catch anything else the cycles leak.
# A first cycle warms the caches up with the stream running (SLUB counts the objects of
# per-CPU slabs as active, so the figures move in whole slabs); the leak check compares the
# slabs after it with those after the last, both with the stream running.
cycle 0
total=0
sleep 1
before=$(slab)
for i in $(seq 6); do
	cycle "$i"
done
sleep 1
after=$(slab)
kill $load 2>/dev/null || true
wait $load 2>/dev/null || true
note "kmalloc-192 + kmalloc-256 active objects: $before before the cycles, $after after ($total packets diverted in them)"
[ $((after - before)) -le 150 ] || fail "the slabs grew by $((after - before)) objects over the cycles: $(grep -E '^kmalloc-(192|256) ' /proc/slabinfo)"
