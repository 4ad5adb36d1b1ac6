# Multiqueue imq: 64-byte UDP frames forwarded per second through imq0 with 2 transmit queues
# (mq, an fq_codel leaf per queue) against 1 (fq_codel at the root), 2 vCPUs: 8 flows, 4 sent
# from each CPU, diverted at the router's PREROUTING and dropped right after it (see imq.sh).
# Alternating rounds, medians; imq is reloaded with numqueues=1 or 2 for each.
#
# Under instruction counting (make bench's default, -icount shift=S) the guest's clock advances
# 2^S ns per instruction executed on either vCPU (QEMU runs them in turn), and the senders keep
# at least one vCPU busy throughout, so a run of T seconds executes T * 1e9 / 2^S instructions:
# instructions per packet are that over the packets forwarded.
. /src/tests/vm/lib.sh
. /src/tests/vm/imq-lib.sh
SECS=${BENCH_SECS:-6}
ROUNDS=${BENCH_ROUNDS:-4}

imq_setup
[ "$(nproc)" -ge 2 ] || fail "this benchmark needs 2 vCPUs, the VM has $(nproc)"
xt_imq_load

topo_3
ip -n rtr neigh add 10.0.1.3 lladdr 02:00:00:00:00:99 dev r0 nud permanent

load() { # load NQUEUES: imq with NQUEUES transmit queues and fq_codel on each
	rmmod imq 2>/dev/null || true
	insmod "$(ko imq)" numdevs=1 numqueues="$1"
	ip link set imq0 up
	if [ "$1" = 1 ]; then
		tc qdisc add dev imq0 root fq_codel
	else
		tc qdisc replace dev imq0 root handle 1: mq
		for i in $(seq "$1"); do
			tc qdisc add dev imq0 parent 1:"$i" fq_codel
		done
	fi
}

fwd_packets() { ip netns exec rtr cat /sys/class/net/r0/statistics/tx_packets; }

pps() { # pps NQUEUES -> packets/s forwarded
	load "$1"
	local f0 f1 i pids=() sent=0 secs=0 out
	f0=$(fwd_packets)
	for i in 0 1 2 3 4 5 6 7; do
		ip netns exec srv taskset -c $((i % 2)) /src/target/release/udp-rate 10.0.1.3 $((9000 + i)) "$SECS" 18 \
			>/tmp/udp-rate.$i &
		pids+=($!)
	done
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" || fail "udp-rate $i failed"
		read -r out s </tmp/udp-rate.$i
		sent=$((sent + out))
		secs=$(awk -v a="$secs" -v b="$s" 'BEGIN { print (b > a) ? b : a }')
	done
	f1=$(fwd_packets)
	[ $((f1 - f0)) -ge "$sent" ] || fail "$1 queues: the router forwarded $((f1 - f0)) of $sent packets"
	awk -v n=$((f1 - f0)) -v s="$secs" 'BEGIN { printf "%.1f\n", n / s }'
}

# The rule stays while imq is reloaded (it names the device by number).
insmod "$(ko imq)" numdevs=1
ip netns exec rtr iptables -t mangle -A PREROUTING -i r1 -j IMQ --todev 0

declare -A rate=([1]= [2]=)
for r in $(seq "$ROUNDS"); do
	order="1 2"
	[ $((r % 2)) = 0 ] && order="2 1"
	for q in $order; do
		rate[$q]="${rate[$q]} $(pps "$q")"
	done
done
note "packets/s, 1 queue:${rate[1]}; 2 queues:${rate[2]}"
med() { tr ' ' '\n' <<<"$1" | grep . | median; }
p1=$(med "${rate[1]}") p2=$(med "${rate[2]}")
report imq_mq_pps_2q_vs_1q "packets/s forwarded, 64-byte frames, 8 flows from 2 vCPUs, imq0 with 2 queues (mq + fq_codel) vs 1 (fq_codel)" "$p2" "$p1"
shift=$(sed -n 's/.*shift=\([0-9]*\).*/\1/p' <<<"${VM_ICOUNT:-}")
if [ -n "$shift" ]; then
	ipp() { awk -v p="$1" -v s="$shift" 'BEGIN { printf "%.0f", 1e9 / 2 ^ s / p }'; }
	report imq_mq_insn_per_pkt_2q_vs_1q "guest instructions per packet forwarded (icount shift=$shift), 2 queues vs 1, lower is better" "$(ipp "$p2")" "$(ipp "$p1")"
else
	note "no instruction count: the VM did not run with -icount (VM_ICOUNT)"
fi
ip netns exec rtr iptables -t mangle -F PREROUTING
rmmod imq
