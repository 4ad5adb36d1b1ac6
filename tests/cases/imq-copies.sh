# Copies a leaf makes go on too, as with IFB: imq0's root is netem duplicate 50%, and 300
# numbered UDP datagrams go srv -> cli, diverted at PREROUTING. Every datagram arrives, and the
# duplicates arrive as well (each reinjected with a copy of its original's state, counted
# `copies`); at unload nothing was lost (lost, gone, expired 0) and diverted = reinjected +
# dropped_in_qdisc. IPv4 and IPv6.
. /src/tests/vm/lib.sh
. /src/tests/vm/imq-lib.sh
imq_setup
topo_3

# count NS ADDR: receive numbered datagrams on ADDR port 7000 until 2 s of silence; prints
# "received distinct".
receiver() {
	ip netns exec cli python3 -u -c '
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.bind((sys.argv[1], 7000))
print("listening", flush=True)
s.settimeout(30)
got = []
while True:
    try:
        d, _ = s.recvfrom(2048)
    except socket.timeout:
        break
    got.append(int(d.split()[0]))
    s.settimeout(2)
print(len(got), len(set(got)))
' "$1" >/tmp/recv.log 2>&1 &
	wait_until 5 "receiver did not start: \$(cat /tmp/recv.log)" grep -q listening /tmp/recv.log
}
sender() {
	ip netns exec srv python3 -c '
import socket, sys, time
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
for i in range(300):
    s.sendto(b"%d %s" % (i, b"x" * 200), (sys.argv[1], 7000))
    time.sleep(0.005)
' "$1"
}

for fam in 4 6; do
	addr=10.0.1.2 ipt=iptables
	[ $fam = 6 ] && addr=2001:db8:1::2 ipt=ip6tables
	imq_load
	ip link set imq0 up
	tc qdisc add dev imq0 root netem duplicate 50%
	ip netns exec rtr $ipt -t mangle -A PREROUTING -i r1 -j IMQ --todev 0
	receiver $addr
	sender $addr
	wait_until 40 "the receiver did not finish: \$(cat /tmp/recv.log)" grep -q '^[0-9]* [0-9]*$' /tmp/recv.log
	read -r total distinct <<<"$(grep '^[0-9]* [0-9]*$' /tmp/recv.log)"
	wait_drained imq0
	line=$(imq_unload)
	note "IPv$fam: received $total datagrams, $distinct distinct, of 300; $line"
	[ "$distinct" = 300 ] || fail "IPv$fam: $distinct of 300 datagrams arrived"
	dups=$((total - distinct))
	[ "$dups" -ge 100 ] || fail "IPv$fam: only $dups duplicates arrived (netem duplicate 50% of 300)"
	# The rule diverts everything from srv: a few packets of its own (IPv6 neighbour discovery)
	# and their duplicates are counted too.
	cop=$(counter "$line" copies) others=$(($(counter "$line" diverted) - 300))
	[ "$cop" -ge "$dups" ] && [ $((cop - dups)) -le "$others" ] ||
		fail "IPv$fam: copies $cop, but $dups duplicates arrived (and $others other packets were diverted)"
	for c in lost gone expired; do
		[ "$(counter "$line" $c)" = 0 ] || fail "IPv$fam: $c is not 0: $line"
	done
	div=$(counter "$line" diverted) rei=$(counter "$line" reinjected) dro=$(counter "$line" dropped_in_qdisc)
	[ "$div" -eq $((rei + dro)) ] || fail "IPv$fam: diverted $div != reinjected $rei + dropped $dro"
done
