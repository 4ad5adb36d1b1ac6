# Leaves that would segment or split a GSO packet, with TCP at its default buffers (the router
# receives GRO packets of tens of KB): the tc HOWTO's TBF example (tbf rate 1mbit latency 50ms
# burst 1540, a burst far below a GSO packet) and cake with split-gso, each as imq0's root, for
# a download srv -> cli diverted at PREROUTING, over IPv4 and IPv6. imq queues GSO packets as
# their segments (the device's default features take none whole), so the leaf sees only
# packets it passes on as they are: every iperf3 run completes near the leaf's rate (goodput
# 0.7 to 1.02 of it: one of the 8-second cake runs over IPv6 gave 0.78), and at unload
# nothing was lost (lost, gone, expired, no_state, seg_dropped 0; diverted = reinjected +
# dropped_in_qdisc; segmented > 0). With
# `ethtool -K imq0 tso on` (GSO packets queued whole, as before) tbf segments them itself and
# their state is lost: shown, not checked.
. /src/tests/vm/lib.sh
. /src/tests/vm/imq-lib.sh
imq_setup

topo_3
ip netns exec cli iperf3 -s -D -p 5201
wait_until 30 "no iperf3 server in cli" listening cli 5201

declare -A leaf=(
	[tbf]="tbf rate 1mbit latency 50ms burst 1540"
	[cake]="cake bandwidth 1mbit split-gso"
)
run() { # run NAME ADDR IPT [tso]: one download through imq0 with leaf NAME; prints the counters
	local name=$1 addr=$2 ipt=$3 tso=${4:-off} rate
	imq_load
	ip link set imq0 up
	ethtool -K imq0 tso "$tso"
	# shellcheck disable=SC2086
	tc qdisc add dev imq0 root handle 1: ${leaf[$name]}
	ip netns exec rtr "$ipt" -t mangle -A PREROUTING -i r1 -j IMQ --todev 0
	rate=$(iperf_mbit srv "$addr" 8 -p 5201)
	wait_drained imq0 20
	local line
	line=$(imq_unload)
	echo "$rate $line"
}

for name in tbf cake; do
	for fam in 4 6; do
		addr=10.0.1.2 ipt=iptables
		[ $fam = 6 ] && addr=2001:db8:1::2 ipt=ip6tables
		read -r rate line <<<"$(run $name $addr $ipt)"
		note "$name IPv$fam: $rate Mbit/s; $line"
		awk -v r="$rate" 'BEGIN { exit !(r >= 0.7 && r <= 1.02) }' ||
			fail "$name IPv$fam: $rate Mbit/s through a 1mbit leaf"
		for c in lost gone expired no_state seg_dropped; do
			[ "$(counter "$line" $c)" = 0 ] || fail "$name IPv$fam: $c is not 0: $line"
		done
		div=$(counter "$line" diverted) rei=$(counter "$line" reinjected)
		dro=$(counter "$line" dropped_in_qdisc) seg=$(counter "$line" segmented)
		[ "$div" -eq $((rei + dro)) ] || fail "$name IPv$fam: diverted $div != reinjected $rei + dropped $dro"
		[ "$seg" -gt 0 ] || fail "$name IPv$fam: no GSO packet was segmented: $line"
	done
done

# Control: GSO packets queued whole; tbf segments them itself.
read -r rate line <<<"$(run tbf 10.0.1.2 iptables on)"
note "tbf IPv4, imq0 tso on (GSO packets whole): $rate Mbit/s; $line"
