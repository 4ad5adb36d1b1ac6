# Leaf qdiscs under imq0's htb: sfq, fq, fq_codel and netem (delay 20ms), each with a small
# limit. A UDP stream of 2 Mbit/s from the server to the client, diverted at PREROUTING, is cut
# to the 1mbit class: the receiver gets 1mbit of L3 packets (1400 bytes of payload in each
# 1428: 0.980 Mbit/s of goodput) within 5%, and no packet goes missing that a qdisc did not
# drop: iperf3's lost datagrams are at most the leaf's drops, and once imq0 has drained the
# unload counters say lost 0, gone 0, expired 0, diverted = reinjected + dropped_in_qdisc,
# with dropped_in_qdisc equal to the leaf's own drop counter (tc -s).
. /src/tests/vm/lib.sh
. /src/tests/vm/imq-lib.sh
imq_setup

topo_3
ip netns exec cli iperf3 -s -D -p 5201
sleep 0.5

declare -A leaf=(
	[sfq]="sfq limit 8 perturb 10"
	[fq]="fq limit 10 flow_limit 8"
	[fq_codel]="fq_codel limit 10"
	[netem]="netem delay 20ms limit 10"
)
for name in sfq fq fq_codel netem; do
	imq_load
	ip link set imq0 up
	tc qdisc add dev imq0 root handle 1: htb default 10
	tc class add dev imq0 parent 1: classid 1:10 htb rate 1mbit
	# shellcheck disable=SC2086
	tc qdisc add dev imq0 parent 1:10 handle 10: ${leaf[$name]}
	ip netns exec rtr iptables -t mangle -A PREROUTING -i r1 -j IMQ --todev 0
	ip netns exec srv iperf3 -c 10.0.1.2 -p 5201 -u -b 2M -l 1400 -t 8 -J >/tmp/$name.json 2>&1 ||
		fail "$name: the UDP stream failed: $(tail -n 5 /tmp/$name.json)"
	cp /tmp/$name.json /out/logs/imq-leaves-$name.json 2>/dev/null || true
	res=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["end"]["sum_received"]; print("%.4f" % (r["bits_per_second"]/1e6), r["lost_packets"], r["packets"] - r["lost_packets"])' /tmp/$name.json) ||
		fail "$name: no result: $(tail -n 5 /tmp/$name.json)"
	read -r rate lostdg rcvd <<<"$res"
	wait_drained imq0
	stats=$(tc -s qdisc show dev imq0)
	leafdrops=$(tc -s qdisc show dev imq0 | awk '/^qdisc/ { q = $3 } q == "10:" && /dropped/ { gsub(",", ""); for (i = 1; i <= NF; i++) if ($i == "(dropped") print $(i + 1) }')
	rootdrops=$(tc -s qdisc show dev imq0 | awk '/^qdisc/ { q = $3 } q == "1:" && /dropped/ { gsub(",", ""); for (i = 1; i <= NF; i++) if ($i == "(dropped") print $(i + 1) }')
	line=$(imq_unload)
	note "$name: $rate Mbit/s (want $(GOODPUT=0.9804 expect 1)); $rcvd datagrams received, $lostdg lost; leaf drops $leafdrops, htb drops $rootdrops"
	note "  $line"
	GOODPUT=0.9804 near "$rate" 1 || fail "$name: $rate Mbit/s, not the class's 1mbit: $stats"
	div=$(counter "$line" diverted) rei=$(counter "$line" reinjected) dro=$(counter "$line" dropped_in_qdisc)
	for c in lost gone expired no_state; do
		[ "$(counter "$line" $c)" = 0 ] || fail "$name: $c is not 0: $line"
	done
	[ "$div" -gt 50 ] || fail "$name: only $div packets diverted (GSO packets, several segments each)"
	[ "$div" -eq $((rei + dro)) ] || fail "$name: diverted $div != reinjected $rei + dropped in qdisc $dro"
	[ "$dro" -eq "$leafdrops" ] || fail "$name: dropped_in_qdisc $dro, but the leaf dropped $leafdrops: $stats"
	[ "$dro" -gt 100 ] || fail "$name: the leaf dropped only $dro of a stream twice its rate"
	[ "$lostdg" -le "$dro" ] || fail "$name: iperf3 lost $lostdg datagrams, the qdisc dropped only $dro"
	[ "$lostdg" -ge $((dro * 9 / 10)) ] || fail "$name: the qdisc dropped $dro, iperf3 missed only $lostdg"
done
