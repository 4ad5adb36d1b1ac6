# Ingress shaping through imq with a tree that does not limit (htb at 10gbit) against (a) no
# shaping and (b) IFB + act_mirred with the same htb, in the same VM run: TCP forwarding
# throughput through a router and CPU time per megabyte forwarded, and the packet rate of
# 64-byte frames forwarded. Alternating rounds (ABC, CBA, ...), medians. imq runs as it comes
# (GSO packets queued as their segments) and with `ethtool -K imq0 tso on` (queued whole, as
# IFB does: mode imqgso).
. /src/tests/vm/lib.sh
SECS=${BENCH_SECS:-6}
ROUNDS=${BENCH_ROUNDS:-4}

so=/src/target/release/libxt_IMQ.so
[ -e "$so" ] || fail "$so not built (make bench builds it)"
mkdir -p /tmp/xt
cp "$so" /tmp/xt/
export XTABLES_LIBDIR=/tmp/xt:/usr/lib/x86_64-linux-gnu/xtables
modprobe ifb numifbs=0
insmod "$(ko imq)"
xt_imq_load

topo_3
# Small packets go to 10.0.1.3, whose neighbour entry names a MAC nobody has: cli's veth drops
# them on arrival, so no receiving socket's scheduling weighs on the rate (see htb-rs.sh).
ip -n rtr neigh add 10.0.1.3 lladdr 02:00:00:00:00:99 dev r0 nud permanent
ip netns exec cli iperf3 -s -D -p 5201
wait_until 30 "no iperf3 server in cli" listening cli 5201
ip -n rtr link add ifb0 type ifb
ip -n rtr link set ifb0 up
ip link set imq0 up
tc -n rtr qdisc add dev ifb0 root handle 1: htb default 10
tc -n rtr class add dev ifb0 parent 1: classid 1:10 htb rate 10gbit burst 1m cburst 1m
tc qdisc add dev imq0 root handle 1: htb default 10
tc class add dev imq0 parent 1: classid 1:10 htb rate 10gbit burst 1m cburst 1m

setup() { # setup none|ifb|imq: how the router's ingress from the server side is shaped
	tc -n rtr qdisc del dev r1 ingress 2>/dev/null || true
	ip netns exec rtr iptables -t mangle -F PREROUTING
	case $1 in
	ifb)
		tc -n rtr qdisc add dev r1 handle ffff: ingress
		tc -n rtr filter add dev r1 parent ffff: matchall action mirred egress redirect dev ifb0
		;;
	imq | imqgso)
		ethtool -K imq0 tso $([ "$1" = imqgso ] && echo on || echo off)
		ip netns exec rtr iptables -t mangle -A PREROUTING -i r1 -j IMQ --todev 0
		;;
	esac
}

busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }

run() { # run MODE -> "MBIT US_PER_MB": download server -> client through the router
	setup "$1"
	local b0 b1 got
	b0=$(busy)
	got=$(iperf_mbit srv 10.0.1.2 "$SECS" -p 5201)
	b1=$(busy)
	awk -v g="$got" -v b=$((b1 - b0)) -v s="$SECS" \
		'BEGIN { mb = g * s / 8; printf "%.2f %.2f\n", g, b * 1e6 / 100 / (mb > 0 ? mb : 1) }'
}

# fwd_packets: packets the router has sent towards the client.
fwd_packets() { ip netns exec rtr cat /sys/class/net/r0/statistics/tx_packets; }

pps() { # pps MODE -> packets/s of 64-byte frames one UDP socket in srv sends through the router
	setup "$1"
	local f0 f1 out sent secs
	f0=$(fwd_packets)
	out=$(ip netns exec srv /src/target/release/udp-rate 10.0.1.3 9 "$SECS" 18) ||
		fail "udp-rate failed"
	f1=$(fwd_packets)
	read -r sent secs <<<"$out"
	[ $((f1 - f0)) -ge "$sent" ] || fail "$1: the router forwarded $((f1 - f0)) of $sent packets"
	awk -v n=$((f1 - f0)) -v s="$secs" 'BEGIN { printf "%.1f\n", n / s }'
}

declare -A tput=([none]= [ifb]= [imq]= [imqgso]=) cpu=([none]= [ifb]= [imq]= [imqgso]=)
declare -A pkts=([none]= [ifb]= [imq]=)
for i in $(seq "$ROUNDS"); do
	order="none ifb imq imqgso"
	[ $((i % 2)) = 0 ] && order="imqgso imq ifb none"
	for m in $order; do
		read -r t c <<<"$(run $m)"
		tput[$m]="${tput[$m]} $t"
		cpu[$m]="${cpu[$m]} $c"
		[ $m = imqgso ] || pkts[$m]="${pkts[$m]} $(pps $m)"
	done
done
for m in none ifb imq imqgso; do
	note "$m: Mbit/s${tput[$m]}; CPU us/MB${cpu[$m]}; packets/s${pkts[$m]:-}"
done
med() { tr ' ' '\n' <<<"$1" | grep . | median; }
report imq_fwd_vs_ifb "Mbit/s forwarded, htb 10gbit on imq0 vs on ifb0" "$(med "${tput[imq]}")" "$(med "${tput[ifb]}")"
report imq_fwd_vs_none "Mbit/s forwarded, htb 10gbit on imq0 vs no shaping" "$(med "${tput[imq]}")" "$(med "${tput[none]}")"
report imq_cpu_vs_ifb "CPU us per MB forwarded, lower is better" "$(med "${cpu[imq]}")" "$(med "${cpu[ifb]}")"
report imq_cpu_vs_none "CPU us per MB forwarded, lower is better" "$(med "${cpu[imq]}")" "$(med "${cpu[none]}")"
report imq_fwd_gso_vs_ifb "Mbit/s forwarded, imq0 with tso on (GSO packets queued whole) vs ifb0" "$(med "${tput[imqgso]}")" "$(med "${tput[ifb]}")"
report imq_cpu_gso_vs_ifb "CPU us per MB forwarded, imq0 with tso on vs ifb0, lower is better" "$(med "${cpu[imqgso]}")" "$(med "${cpu[ifb]}")"
report imq_pps_vs_ifb "packets/s forwarded, 64-byte frames, htb 10gbit on imq0 vs on ifb0" "$(med "${pkts[imq]}")" "$(med "${pkts[ifb]}")"
report imq_pps_vs_none "packets/s forwarded, 64-byte frames, htb 10gbit on imq0 vs no shaping" "$(med "${pkts[imq]}")" "$(med "${pkts[none]}")"
setup none
ip link set imq0 down
