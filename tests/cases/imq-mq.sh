# Multiqueue imq devices (`numqueues`, and `numtxqueues` of `ip link add ... type imq`).
# - imq0 with numqueues=4 gets 4 transmit queues and, like any multiqueue device, mq as its
#   default root.
# - mq with an fq_codel leaf per queue: 8 TCP streams from the server (8 iperf3 clients), diverted at PREROUTING,
#   all complete; the flows spread over at least two queues (each leaf's own counters); 8 UDP
#   streams of 2 Mbit/s arrive whole and in order (iperf3's per-stream lost and out-of-order
#   counts are 0): a flow keeps to one queue, and each queue's reinjection keeps its order.
# - cake (one instance over all the queues) at 4mbit: 8 UDP streams of 1 Mbit/s get 4mbit between
#   them (1400 of each 1428-byte packet is payload), each stream its eighth within 20%.
# - `ip link add imq9 numtxqueues 3 type imq` in a namespace has 3 queues; 33 is refused with
#   imq's message.
# - At unload: lost 0, gone 0, expired 0, diverted = reinjected + dropped_in_qdisc.
. /src/tests/vm/lib.sh
. /src/tests/vm/imq-lib.sh
imq_setup
imq_load numqueues=4
dmesg_has 'imq: loaded: numdevs=2 numqueues=4 '

ntx() { ls -d "/sys/class/net/$1/queues/"tx-* | wc -l; }
[ "$(ntx imq0)" = 4 ] || fail "imq0 has $(ntx imq0) transmit queues, not 4"
ip -d link show imq0 | grep_q 'numtxqueues 4 ' || fail "ip -d link: $(ip -d link show imq0)"
ip link set imq0 up
tc qdisc show dev imq0 | grep_q '^qdisc mq ' || fail "imq0's default root is not mq: $(tc qdisc show dev imq0)"

topo_3
ip netns exec cli iperf3 -s -D -p 5201
wait_until 30 "no iperf3 server in cli" listening cli 5201
ip netns exec rtr iptables -t mangle -A PREROUTING -i r1 -j IMQ --todev 0

# stream_figures JSON: one line per UDP stream: "received_Mbit/s lost out_of_order packets"
# (lost and out of order as the receiver counted them; 1400-byte datagrams).
stream_figures() {
	python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
for s in d["end"]["streams"]:
    u = s["udp"]
    got = (u["packets"] - u["lost_packets"]) * 1400 * 8 / u["seconds"] / 1e6
    print("%.4f %d %d %d" % (got, u["lost_packets"], u.get("out_of_order", 0), u["packets"]))
' "$1" || fail "no iperf3 result in $1: $(tail -n 5 "$1")"
}

# udp_streams NAME RATE SECS: 8 parallel UDP streams from srv to cli, 1400-byte datagrams.
udp_streams() {
	ip netns exec srv iperf3 -c 10.0.1.2 -p 5201 -u -b "$2" -l 1400 -t "$3" -P 8 -J >"/tmp/$1.json" 2>&1 ||
		fail "$1: the UDP streams failed: $(tail -n 5 "/tmp/$1.json")"
	cp "/tmp/$1.json" "/out/logs/imq-mq-$1.json" 2>/dev/null || true
	# Let the last datagrams through the queues before the receiver's counts are read.
	wait_drained imq0
}

# --- mq + fq_codel
tc qdisc replace dev imq0 root handle 1: mq
for i in 1 2 3 4; do
	tc qdisc add dev imq0 parent 1:$i handle 1$i: fq_codel
done
# Eight clients of one stream each, to eight servers: iperf3's own threads for -P 8 crashed
# its server once on the slow debug kernel (a segfault in libiperf, no kernel report).
pids=()
for i in 1 2 3 4 5 6 7 8; do
	ip netns exec cli iperf3 -s -D -1 -p $((5300 + i))
done
for i in 1 2 3 4 5 6 7 8; do
	wait_until 30 "no iperf3 server on port $((5300 + i))" listening cli $((5300 + i))
done
for i in 1 2 3 4 5 6 7 8; do
	ip netns exec srv iperf3 -c 10.0.1.2 -p $((5300 + i)) -t 5 -J >/tmp/tcp$i.json 2>&1 &
	pids+=($!)
done
tcp=0
for i in 1 2 3 4 5 6 7 8; do
	wait "${pids[$((i - 1))]}" || fail "mq: TCP stream $i failed: $(tail -n 5 /tmp/tcp$i.json)"
	m=$(python3 -c 'import json, sys; print("%.1f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"] / 1e6))' /tmp/tcp$i.json) ||
		fail "mq: no TCP result for stream $i: $(tail -n 5 /tmp/tcp$i.json)"
	tcp=$(awk -v a="$tcp" -v b="$m" 'BEGIN { print a + b }')
done
note "mq + fq_codel: 8 TCP streams, $tcp Mbit/s in all"
wait_drained imq0
# leaf_packets: the packets each fq_codel leaf sent, one line per queue, in order.
leaf_packets() {
	tc -s qdisc show dev imq0 | awk '/^qdisc fq_codel/ { q = 1; next } /^qdisc/ { q = 0 } q && /Sent/ { print $4 }'
}
used=$(leaf_packets | awk '$1 > 100' | wc -l)
note "packets per queue after TCP: $(leaf_packets | tr '\n' ' ')"
[ "$used" -ge 2 ] || fail "8 flows went through $used of 4 queues: $(tc -s qdisc show dev imq0)"

udp_streams mq 2M 5
bad=0
while read -r rate lost ooo pkts; do
	note "  UDP stream: $rate Mbit/s, $pkts packets, lost $lost, out of order $ooo"
	[ "$lost" = 0 ] && [ "$ooo" = 0 ] || bad=1
done <<<"$(stream_figures /tmp/mq.json)"
[ $bad = 0 ] || fail "mq: a UDP stream lost packets or got them out of order"
note "packets per queue after UDP: $(leaf_packets | tr '\n' ' ')"

# --- cake over all the queues
tc qdisc replace dev imq0 root cake bandwidth 4mbit
udp_streams cake 1M 8
sum=0
figures=$(stream_figures /tmp/cake.json)
sum=$(awk '{ s += $1 } END { printf "%.4f", s }' <<<"$figures")
note "cake 4mbit: 8 UDP streams of 1 Mbit/s, $sum Mbit/s in all (want $(awk 'BEGIN { printf "%.3f", 4 * 1400 / 1428 }'))"
within "$sum" "$(awk 'BEGIN { print 4 * 1400 / 1428 * 0.95 }')" "$(awk 'BEGIN { print 4 * 1400 / 1428 * 1.05 }')" ||
	fail "cake: $sum Mbit/s in all, not 4mbit: $(tc -s qdisc show dev imq0)"
while read -r rate _; do
	within "$rate" "$(awk -v s="$sum" 'BEGIN { print s / 8 * 0.8 }')" "$(awk -v s="$sum" 'BEGIN { print s / 8 * 1.2 }')" ||
		fail "cake: a stream got $rate Mbit/s of $sum: $figures"
done <<<"$figures"

# --- ip link add with numtxqueues, in a namespace
ip netns add q
ip -n q link add imq9 numtxqueues 3 type imq || fail "ip link add imq9 numtxqueues 3 type imq"
[ "$(ip netns exec q sh -c 'ls -d /sys/class/net/imq9/queues/tx-* | wc -l')" = 3 ] ||
	fail "q's imq9 does not have 3 transmit queues"
ip -n q link add imq8 type imq
[ "$(ip netns exec q sh -c 'ls -d /sys/class/net/imq8/queues/tx-* | wc -l')" = 4 ] ||
	fail "ip link add without numtxqueues does not take numqueues (4)"
out=$(ip -n q link add imq7 numtxqueues 33 type imq 2>&1) && fail "numtxqueues 33 was accepted"
grep_q 'imq devices have 1 to 32 transmit queues' <<<"$out" || fail "numtxqueues 33 refused without imq's message: $out"
ip netns del q

line=$(imq_unload)
note "$line"
for c in lost gone expired no_state foreign; do
	[ "$(counter "$line" $c)" = 0 ] || fail "$c is not 0: $line"
done
div=$(counter "$line" diverted) rei=$(counter "$line" reinjected) dro=$(counter "$line" dropped_in_qdisc)
[ "$div" -eq $((rei + dro)) ] || fail "diverted $div != reinjected $rei + dropped in qdisc $dro"
[ "$div" -gt 5000 ] || fail "only $div packets diverted"
