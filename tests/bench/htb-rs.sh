# htb_rs against the in-kernel htb, same tree, same VM run, alternating (ABBA) and taking the
# median of each: packets per second of small UDP packets through a tree that does not limit,
# CPU time per packet in that run, and achieved/configured TCP rate from 1mbit up to what the
# VM's veth link carries.
. /src/tests/vm/lib.sh
SECS=${BENCH_SECS:-6}
ROUNDS=${BENCH_ROUNDS:-4}

htb_rs_setup

topo_3
# Every run gets a fresh one-off server on a port of its own: a run shaped to 1mbit can leave
# its server busy (or its control connection stuck behind data) for a while after it ends.
echo 5300 >/tmp/bench-port
server() { # server: start a one-off iperf3 server, print its port (called in subshells)
	local port
	port=$(($(cat /tmp/bench-port) + 1))
	echo $port >/tmp/bench-port
	ip netns exec srv iperf3 -s -1 -D -p $port
	sleep 0.3
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

# pps KIND: packets/s received of 64-byte UDP sent as fast as the sender can, and CPU
# microseconds per packet over the run; prints "PPS US".
pps() {
	tree "$1" 10gbit
	local b0 b1 out
	b0=$(busy)
	out=$(ip netns exec cli iperf3 -u -c 10.0.2.2 -p "$(server)" -l 64 -b 0 -t "$SECS" -J) ||
		fail "iperf3 -u failed"
	b1=$(busy)
	python3 -c '
import json, sys
d = json.loads(sys.argv[1])["end"]["sum"]
secs, hz, busy = d["seconds"], 100, int(sys.argv[2])
pkts = d["packets"] - d["lost_packets"]
print("%.1f %.3f" % (pkts / secs, busy * 1e6 / hz / max(pkts, 1)))' "$out" $((b1 - b0))
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



# pps and CPU per packet come from the same runs.
pps_runs() { # pps_runs KIND -> "PPS US"
	pps "$1"
}
declare -a pb po cb co
for i in $(seq "$ROUNDS"); do
	for k in $([ $((i % 2)) = 1 ] && echo "htb htb_rs" || echo "htb_rs htb"); do
		read -r p c <<<"$(pps_runs $k)"
		if [ $k = htb ]; then pb+=("$p"); cb+=("$c"); else po+=("$p"); co+=("$c"); fi
	done
done
note "pps htb ${pb[*]}; htb_rs ${po[*]}; cpu us/pkt htb ${cb[*]}; htb_rs ${co[*]}"
report htb_pps_small "packets/s, 64-byte UDP, non-limiting tree" \
	"$(printf '%s\n' "${po[@]}" | median)" "$(printf '%s\n' "${pb[@]}" | median)"
report htb_cpu_per_packet "CPU us per packet, lower is better" \
	"$(printf '%s\n' "${co[@]}" | median)" "$(printf '%s\n' "${cb[@]}" | median)"

rate_of() { rate "$3" "$1" "$2"; }
abba htb_rate_1mbit "achieved/configured" htb htb_rs rate_of 1mbit 1
abba htb_rate_10mbit "achieved/configured" htb htb_rs rate_of 10mbit 10
abba htb_rate_100mbit "achieved/configured" htb htb_rs rate_of 100mbit 100
abba htb_rate_500mbit "achieved/configured" htb htb_rs rate_of 500mbit 500
