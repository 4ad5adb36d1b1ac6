# Packets the router sends itself, diverted at POSTROUTING to an imq device whose qdisc takes
# their send-buffer charge away: netem with a delay trades a socket's charge (sock_wfree) for a
# plain reference (skb_orphan_partial). Behind a NIC that is harmless; behind imq the qdisc
# runs before IP fragmentation, whose fast path hands the head packet's socket to its fragments
# as charged owners: the socket's send-buffer count underflowed (refcount_t: underflow in
# sock_wfree, a panic; found by imq-fuzz, seed 7). Raw (ping) and UDP sockets, IPv4 and IPv6,
# datagrams larger than the MTU; the pings must be answered, the counters balance.
. /src/tests/vm/lib.sh
. /src/tests/vm/imq-lib.sh
imq_setup
topo_3
imq_load numdevs=1
ip link set imq0 up
tc qdisc add dev imq0 root netem delay 5ms 1ms
ip netns exec rtr iptables -t mangle -A POSTROUTING -o r1 -j IMQ --todev 0
ip netns exec rtr ip6tables -t mangle -A POSTROUTING -o r1 -j IMQ --todev 0
for size in 3000 9000 1400; do
	ip netns exec rtr busybox ping -c 3 -W 2 -s $size 10.0.2.2 >/tmp/p4 || fail "IPv4 ping of $size bytes: $(cat /tmp/p4)"
	ip netns exec rtr busybox ping -6 -c 3 -W 2 -s $size 2001:db8:2::2 >/tmp/p6 || fail "IPv6 ping of $size bytes: $(cat /tmp/p6)"
done
# UDP datagrams of 4000 bytes from a socket of the router, both families.
ip netns exec rtr python3 -c '
import socket
for fam, dst in ((socket.AF_INET, "10.0.2.2"), (socket.AF_INET6, "2001:db8:2::2")):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    for _ in range(50):
        s.sendto(b"x" * 4000, (dst, 9))
    s.close()
'
sleep 1
line=$(imq_unload)
note "$line"
div=$(counter "$line" diverted) rei=$(counter "$line" reinjected) dro=$(counter "$line" dropped_in_qdisc)
[ "$div" -ge 100 ] || fail "only $div packets diverted: $line"
[ "$div" -eq $((rei + dro)) ] || fail "diverted $div != reinjected $rei + dropped $dro: $line"
