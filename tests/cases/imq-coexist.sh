# imq beside NFQUEUE, and under both HTBs. While a download is diverted at PREROUTING to imq0
# and shaped to 1mbit, a userspace NFQUEUE program (tools/toa-lb, in the router's mangle
# FORWARD chain) still gets, rewrites and returns the packets of another connection, and those
# packets are themselves diverted through imq0 first (the two detours in a row). imq registers
# no global nf_queue handler, so NFQUEUE is untouched. The same with imq0's root qdisc being
# the in-kernel htb and our htb_rs (tc plugin q_htb_rs.so): both shape to the class rate.
. /src/tests/vm/lib.sh
. /src/tests/vm/imq-lib.sh
imq_setup
imq_load
htb_rs_setup

topo_3
iperf_server cli 5201
sleep 0.5
r() { ip netns exec rtr "$@"; }
ip link set imq0 up
r iptables -t mangle -A PREROUTING -i r1 -j IMQ --todev 0
r iptables -t mangle -A PREROUTING -i r0 -p tcp --dport 8080 -j IMQ --todev 0
# The first packets of each connection to port 8080 go to queue 0 (as in lib.sh's balancer).
r iptables -t mangle -A FORWARD -i r0 -p tcp --dport 8080 \
	-m connbytes --connbytes 1:4 --connbytes-dir original --connbytes-mode packets \
	-j NFQUEUE --queue-num 0
toa_lb_start 0

n=0
for kind in htb htb_rs; do
	tc qdisc del dev imq0 root 2>/dev/null || true
	tc qdisc add dev imq0 root handle 1: $kind default 30
	tc class add dev imq0 parent 1: classid 1:10 $kind rate 1mbit
	tc class add dev imq0 parent 1: classid 1:30 $kind rate 4mbit
	tc filter add dev imq0 parent 1:0 protocol ip prio 1 u32 match ip dst 10.0.1.2/32 flowid 1:10
	tc qdisc show dev imq0 | grep_q "qdisc $kind 1: root" || fail "no $kind on imq0: $(tc qdisc show dev imq0)"
	iperf_bg srv 10.0.1.2 10 /tmp/$kind.json -p 5201
	load=$!
	sleep 3
	# Meanwhile, connections through NFQUEUE (and imq0's default class).
	for i in 1 2 3; do
		n=$((n + 1))
		peer_server srv 8080 4
		out=$(client_connect cli 10.0.2.2 8080) || fail "$kind: connection $i through NFQUEUE failed"
		sleep 0.3
		grep -q '^data hello' /tmp/server.log || fail "$kind: connection $i: data did not arrive: $(cat /tmp/server.log)"
	done
	wait $load || fail "$kind: the download failed: $(tail -n 5 /tmp/$kind.json)"
	rate=$(mbit /tmp/$kind.json)
	ins=$(grep -c '^inserted' /tmp/toa-lb.log || true)
	q=$(r iptables -t mangle -L FORWARD -v -n -x | awk '/NFQUEUE/ { print $1 }')
	d=$(r iptables -t mangle -L PREROUTING -v -n -x | awk '/dpt:8080/ { print $1 }')
	note "$kind on imq0: download $rate Mbit/s (want $(expect 1)); $n connections so far: NFQUEUE rule $q packets, toa-lb inserted $ins options, imq rule diverted $d of their packets"
	tc -s class show dev imq0 | grep -E '^class|Sent'
	near "$rate" 1 || fail "$kind: download at $rate Mbit/s, not the 1mbit class"
	[ "$ins" -ge "$n" ] || fail "$kind: toa-lb handled $ins connections of $n: $(cat /tmp/toa-lb.log)"
	[ "${q:-0}" -ge $((n * 3)) ] || fail "$kind: NFQUEUE rule saw ${q:-0} packets"
	[ "${d:-0}" -ge $((n * 3)) ] || fail "$kind: imq diverted ${d:-0} packets of the NFQUEUE connections"
	sent30=$(tc -s class show dev imq0 classid 1:30 | awk '/Sent/ { print $2; exit }')
	[ "${sent30:-0}" -gt 0 ] || fail "$kind: the NFQUEUE connections did not cross imq0's class 1:30"
done
tc qdisc del dev imq0 root
line=$(imq_unload)
note "$line"
for c in lost gone no_state; do
	[ "$(counter "$line" $c)" = 0 ] || fail "$c is not 0: $line"
done
rmmod sch_htb_rs
