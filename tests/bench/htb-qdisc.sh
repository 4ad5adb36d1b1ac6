# htb_rs against the in-kernel htb, the qdisc alone: packets per second that one pktgen thread
# pushes through the same tree on a dummy device. pktgen's queue_xmit mode goes through
# dev_queue_xmit, so every packet is classified, enqueued and dequeued, and the dummy device
# frees it: the qdisc's own cost with little else around it (no sockets, no veth, no second
# CPU), the steadiest per-packet figure under TCG. ABBA rounds, median of each.
. /src/tests/vm/lib.sh
ROUNDS=${BENCH_ROUNDS:-4}
COUNT=${BENCH_PG_COUNT:-400000}

htb_rs_setup

pg() { echo "$2" >"/proc/net/pktgen/$1" || fail "pktgen $1: '$2' refused"; }
modprobe dummy numdummies=0 || fail "no dummy module"
modprobe pktgen || fail "no pktgen module"
# No IPv6 on it: its router solicitations would pass through the qdisc too.
{ ip link add pg0 type dummy && sysctl -qw net.ipv6.conf.pg0.disable_ipv6=1 &&
	ip link set pg0 up; } || fail "cannot create a dummy device"
pg kpktgend_0 rem_device_all
pg kpktgend_0 "add_device pg0"
pg pg0 "count $COUNT"
pg pg0 "pkt_size 60"
pg pg0 "clone_skb 0"
pg pg0 "xmit_mode queue_xmit"
pg pg0 "dst 10.99.0.2"
pg pg0 "dst_mac 02:00:00:00:00:02"

# tree KIND DEPTH: DEPTH levels of classes at 10gbit (limits nothing), the default leaf at the
# bottom, plus 8 sibling leaves the traffic does not use.
tree() {
	local kind=$1 depth=$2 parent=1: i
	tc qdisc del dev pg0 root 2>/dev/null || true
	tc qdisc add dev pg0 root handle 1: "$kind" default 10 || fail "cannot add $kind"
	for i in $(seq "$depth"); do
		tc class add dev pg0 parent "$parent" classid "1:$i" "$kind" rate 10gbit \
			burst 64k cburst 64k || fail "cannot add $kind class 1:$i"
		parent=1:$i
	done
	tc class add dev pg0 parent "$parent" classid 1:10 "$kind" rate 10gbit burst 64k cburst 64k ||
		fail "cannot add $kind leaf"
	for i in $(seq 20 27); do
		tc class add dev pg0 parent 1:1 classid "1:$i" "$kind" rate 1mbit ceil 10gbit ||
			fail "cannot add $kind class 1:$i"
	done
}

# pps KIND DEPTH: pktgen's packets/s; checks that the qdisc sent every packet.
pps() {
	tree "$1" "$2"
	pg pgctrl start
	local res sent
	res=$(cat /proc/net/pktgen/pg0)
	sent=$(tc -s qdisc show dev pg0 | awk '/^qdisc / { getline; print $4; exit }')
	[ "$sent" = "$COUNT" ] || fail "$1 sent $sent of $COUNT pktgen packets: $res"
	grep -o '[0-9]*pps' <<<"$res" | tr -d 'ps'
}


# depth DEPTH KIND: pps with the arguments in abba's order.
depth() { pps "$2" "$1"; }
abba htb_qdisc_pps_flat "packets/s through the qdisc alone, depth 1" htb htb_rs depth 1
abba htb_qdisc_pps_deep "packets/s through the qdisc alone, depth 6" htb htb_rs depth 6
tc qdisc del dev pg0 root 2>/dev/null
ip link del pg0
