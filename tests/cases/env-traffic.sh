# The harness measures real traffic: TCP through a router namespace whose egress is shaped by
# the in-kernel htb converges to the configured rate (the baseline our modules are held to).
. /src/tests/vm/lib.sh
topo_3
ip netns exec srv iperf3 -s -D -1
tc -n rtr qdisc add dev r1 root handle 1: htb default 10
tc -n rtr class add dev r1 parent 1: classid 1:10 htb rate 4mbit burst 15k
sleep 0.5
got=$(iperf_mbit cli 10.0.2.2 8)
note "htb rate 4mbit: TCP goodput ${got} Mbit/s"
# TCP goodput is about 94% of the wire rate (headers); allow measurement noise.
within "$got" 3.6 4.0 || fail "goodput ${got} Mbit/s not within 90-100% of 4mbit"
sent=$(tc -n rtr -s class show dev r1 classid 1:10 | awk '/Sent/ {print $2; exit}')
[ "${sent:-0}" -gt 3000000 ] || fail "htb class counters show ${sent:-0} bytes"
note "class 1:10 sent $sent bytes"
