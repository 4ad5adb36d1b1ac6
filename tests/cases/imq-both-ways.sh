# Both directions of a box's own TCP connections through one imq device: in rtr, what arrives
# on r0 is diverted at PREROUTING and what leaves on r0 at POSTROUTING, both to imq0, whose htb
# gives what comes in for rtr's service 2mbit (1:10) and what it sends 2mbit (1:20). cli
# uploads to and downloads from iperf3 servers on rtr at once, two streams each way.
#
# What this guards: imq's qdisc may release packets right from its device's transmit, sending
# them on through the stack there and then. A TCP socket sends its ACKs from under its socket
# lock; a qdisc run those ACKs start (diverted at POSTROUTING) may release a data packet on its
# way to that very socket, whose receive path takes the same lock: released from the transmit,
# the CPU would wait for itself (a soft lockup: the VM panics). imq hands packets on at once only
# where its PREROUTING hook started the qdisc run, else from a tasklet. Both directions must
# reach their class's rate, every iperf3 run complete, and imq account for every packet.
. /src/tests/vm/lib.sh
. /src/tests/vm/imq-lib.sh
imq_setup
imq_load

topo_3
iperf_server rtr 5201
iperf_server rtr 5202
iperf_server rtr 5203
iperf_server rtr 5204
wait_until 30 "no iperf3 server in rtr" listening rtr 5204
r() { ip netns exec rtr "$@"; }

ip link set imq0 up
tc qdisc add dev imq0 root handle 1: htb default 30
tc class add dev imq0 parent 1: classid 1:10 htb rate 2mbit
tc class add dev imq0 parent 1: classid 1:20 htb rate 2mbit
tc class add dev imq0 parent 1: classid 1:30 htb rate 10mbit
tc filter add dev imq0 parent 1:0 protocol ip prio 1 u32 match ip dst 10.0.1.1/32 flowid 1:10
tc filter add dev imq0 parent 1:0 protocol ip prio 2 u32 match ip src 10.0.1.1/32 flowid 1:20
r iptables -t mangle -A PREROUTING -i r0 -j IMQ --todev 0
r iptables -t mangle -A POSTROUTING -o r0 -j IMQ --todev 0

# Uploads on 5201-5202, downloads (-R) on 5203-5204, 20 s each, all at once.
pids=()
for p in 5201 5202; do
	iperf_bg cli 10.0.1.1 20 "/tmp/up$p.json" -p $p
	pids+=($!)
done
for p in 5203 5204; do
	iperf_bg cli 10.0.1.1 20 "/tmp/down$p.json" -p $p -R
	pids+=($!)
done
for i in "${!pids[@]}"; do
	wait "${pids[$i]}" || fail "iperf3 run $i failed: $(tail -n 5 /tmp/*.json)"
done
up=$(awk -v a="$(mbit /tmp/up5201.json)" -v b="$(mbit /tmp/up5202.json)" 'BEGIN { print a + b }')
down=$(awk -v a="$(mbit /tmp/down5203.json)" -v b="$(mbit /tmp/down5204.json)" 'BEGIN { print a + b }')
note "uploads (1:10, 2mbit) $up Mbit/s, downloads (1:20, 2mbit, with the uploads' ACKs) $down Mbit/s; expected $(expect 2) each"
tc -s class show dev imq0 | sed 's/^/# /'
# Each direction's class also carries the other direction's ACKs (~3% of its bytes).
near "$up" 2 0.08 || fail "uploads got $up Mbit/s, not their 2mbit class"
near "$down" 2 0.08 || fail "downloads got $down Mbit/s, not their 2mbit class"

wait_drained imq0
line=$(imq_unload)
note "$line"
for c in lost gone expired outstanding; do
	[ "$(counter "$line" $c)" = 0 ] || fail "imq counted $c $(counter "$line" $c): $line"
done
[ "$(counter "$line" diverted)" = $(($(counter "$line" reinjected) + $(counter "$line" dropped_in_qdisc))) ] ||
	fail "imq's diverted is not reinjected + dropped_in_qdisc: $line"
[ "$(counter "$line" reinjected)" -gt 2500 ] || fail "imq reinjected only $(counter "$line" reinjected) packets"
