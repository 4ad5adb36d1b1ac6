# htb_rs against the in-kernel htb, same tree, same VM run, alternating (ABBA) and taking the
# median of each: packets per second of 64-byte UDP frames through a tree that does not limit,
# CPU time per packet in that run, and achieved/configured TCP rate from 1mbit up to what the
# VM's veth link carries.
. /src/tests/vm/lib.sh
SECS=${BENCH_SECS:-6}
ROUNDS=${BENCH_ROUNDS:-4}

htb_rs_setup

topo_3
ip -n rtr neigh add 10.0.2.3 lladdr 02:00:00:00:00:99 dev r1 nud permanent
udp_rate=/src/target/release/udp-rate
# Every run gets a fresh one-off server on a port of its own: a run shaped to 1mbit can leave
# its server busy (or its control connection stuck behind data) for a while after it ends.
echo 5300 >/tmp/bench-port
server() { # server: start a one-off iperf3 server, print its port (called in subshells)
	local port
	port=$(($(cat /tmp/bench-port) + 1))
	echo $port >/tmp/bench-port
	ip netns exec srv iperf3 -s -1 -D -p $port
	wait_until 30 "no iperf3 server on port $port" listening srv $port
	echo $port
}

# tree KIND RATE: a root class and one leaf at RATE, everything to the leaf.
tree() {
	tc -n rtr qdisc del dev r1 root 2>/dev/null || true
	tc -n rtr qdisc add dev r1 root handle 1: "$1" default 10
	tc -n rtr class add dev r1 parent 1: classid 1:1 "$1" rate "$2" burst 64k cburst 64k
	tc -n rtr class add dev r1 parent 1:1 classid 1:10 "$1" rate "$2" burst 64k cburst 64k
}


# busy: CPU jiffies spent (all CPUs, not idle) so far.
busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
# qsent: packets the router's root qdisc has sent.
qsent() { tc -n rtr -s qdisc show dev r1 | awk '/^qdisc / { getline; print $4; exit }'; }

# pps KIND: packets/s through the router's tree of 64-byte UDP that one socket in cli sends as
# fast as it can, counted by the qdisc, and CPU microseconds per packet over the run; prints
# "PPS US". The datagrams go to 10.0.2.3, whose neighbour entry names a MAC nobody has: srv's
# veth drops them on arrival. A receiving socket made the figure depend on how the guest
# scheduled it: whenever it fell behind, its queue overflowed and the packets it dropped had
# cost the sender nothing extra, so received packets/s spread 15% between identical runs.
pps() {
	tree "$1" 10gbit
	local b0 b1 q0 q1 out sent secs
	b0=$(busy)
	q0=$(qsent)
	out=$(ip netns exec cli "$udp_rate" 10.0.2.3 9 "$SECS" 18) || fail "udp-rate failed"
	b1=$(busy)
	q1=$(qsent)
	read -r sent secs <<<"$out"
	# Nothing drops before the qdisc (the sender's path is synchronous): every sent packet
	# must pass through it.
	[ $((q1 - q0)) -ge "$sent" ] || fail "$1 sent $((q1 - q0)) of the $sent packets udp-rate sent"
	awk -v q=$((q1 - q0)) -v s="$secs" -v b=$((b1 - b0)) \
		'BEGIN { printf "%.1f %.3f\n", q / s, b * 1e6 / 100 / q }'
}

# rate KIND RATE: achieved TCP goodput / configured rate (goodput excludes ~6% of headers).
rate() {
	tree "$1" "$2"
	local got small=()
	# At low rates, small writes and window: iperf3's end-of-test exchange otherwise waits
	# behind a full queue and can time out (a run of 0).
	[ "$3" -le 10 ] && small=(-l 8K -w 32K)
	got=$(iperf_mbit cli 10.0.2.2 "$SECS" -p "$(server)" "${small[@]}")
	awk -v g="$got" -v r="$3" 'BEGIN { printf "%.4f", g / r }'
}



declare -a pb po cb co
for i in $(seq "$ROUNDS"); do
	for k in $([ $((i % 2)) = 1 ] && echo "htb htb_rs" || echo "htb_rs htb"); do
		read -r p c <<<"$(pps $k)"
		if [ $k = htb ]; then pb+=("$p"); cb+=("$c"); else po+=("$p"); co+=("$c"); fi
	done
done
note "pps htb ${pb[*]}; htb_rs ${po[*]}; cpu us/pkt htb ${cb[*]}; htb_rs ${co[*]}"
report htb_pps_small "packets/s, 64-byte frames from one UDP socket, non-limiting tree" \
	"$(printf '%s\n' "${po[@]}" | median)" "$(printf '%s\n' "${pb[@]}" | median)"
report htb_cpu_per_packet "CPU us per packet, lower is better" \
	"$(printf '%s\n' "${co[@]}" | median)" "$(printf '%s\n' "${cb[@]}" | median)"

rate_of() { rate "$3" "$1" "$2"; }
abba htb_rate_1mbit "achieved/configured" htb htb_rs rate_of 1mbit 1
abba htb_rate_10mbit "achieved/configured" htb htb_rs rate_of 10mbit 10
abba htb_rate_100mbit "achieved/configured" htb htb_rs rate_of 100mbit 100
abba htb_rate_500mbit "achieved/configured" htb htb_rs rate_of 500mbit 500
