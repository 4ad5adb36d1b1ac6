# Per-namespace imq devices: the router of issue 21's section 1 runs entirely inside namespace
# r, with an imq0 of its own (`ip link add imq0 type imq` there; the module's own imq0 stays in
# the initial namespace with a tree that would hold everything to 100kbit). Its rule
# `-j IMQ --todev 0` resolves to r's imq0: two downloads at once each get their 1mbit class
# (TCP goodput 0.965 of it, within 8%), and r's imq0 counts the packets while the initial
# imq0 sees none. A rule in a namespace with no imqN of its own falls back to the initial
# namespace's. Then r goes away with both downloads running (its imq0 with packets queued):
# nothing crashes, and at unload the counters balance with nothing outstanding.
. /src/tests/vm/lib.sh
. /src/tests/vm/imq-lib.sh
imq_setup
imq_load

for ns in r i h1 h2; do
	ip netns add $ns
	ip -n $ns link set lo up
done
ip link add eth0 netns r type veth peer name eth0 netns i
ip link add eth1 netns r type veth peer name eth0 netns h1
ip link add eth2 netns r type veth peer name eth0 netns h2
ip -n r addr add 172.16.0.254/24 dev eth0
ip -n r addr add 10.0.0.1/24 dev eth1
ip -n r addr add 10.0.2.1/24 dev eth2
ip -n i addr add 172.16.0.1/24 dev eth0
ip -n h1 addr add 10.0.0.230/24 dev eth0
ip -n h2 addr add 10.0.2.231/24 dev eth0
for l in "r eth0" "r eth1" "r eth2" "i eth0" "h1 eth0" "h2 eth0"; do
	set -- $l
	ip -n $1 link set $2 up
done
ip -n i route add default via 172.16.0.254
ip -n h1 route add default via 10.0.0.1
ip -n h2 route add default via 10.0.2.1
ip netns exec r sysctl -qw net.ipv4.ip_forward=1

# The initial namespace's imq0 would starve anything sent to it.
ip link set imq0 up
tc qdisc add dev imq0 root tbf rate 100kbit burst 3k latency 50ms

ip -n r link add imq0 type imq || fail "ip link add imq0 type imq in a namespace"
ip -n r -d link show imq0 | grep_q 'imq' || fail "r's imq0 is not of kind imq: $(ip -n r -d link show imq0)"
expect_fail "moving r's imq0" ip -n r link set imq0 netns h1
ip -n r link set imq0 up
t="tc -n r"
$t qdisc add dev imq0 root handle 1: htb default 20
$t class add dev imq0 parent 1: classid 1:1 htb rate 2mbit burst 15k
$t class add dev imq0 parent 1:1 classid 1:10 htb rate 1mbit
$t class add dev imq0 parent 1:1 classid 1:20 htb rate 1mbit
$t qdisc add dev imq0 parent 1:10 handle 10: pfifo
$t qdisc add dev imq0 parent 1:20 handle 20: sfq
$t filter add dev imq0 parent 1:0 protocol ip prio 1 u32 match ip dst 10.0.0.230/32 flowid 1:10
ip netns exec r iptables -t mangle -A PREROUTING -i eth0 -j IMQ --todev 0

iperf_server i 5201
iperf_server i 5202
sleep 0.5
iperf_bg h1 172.16.0.1 10 /tmp/h1.json -R -p 5201
p1=$!
iperf_bg h2 172.16.0.1 10 /tmp/h2.json -R -p 5202
p2=$!
wait $p1 || fail "h1's download failed: $(tail -n 5 /tmp/h1.json)"
wait $p2 || fail "h2's download failed: $(tail -n 5 /tmp/h2.json)"
a=$(mbit /tmp/h1.json)
b=$(mbit /tmp/h2.json)
note "inside r, together: h1 (1:10) $a, h2 (1:20) $b Mbit/s; expected $(expect 1) each"
$t -s class show dev imq0 | grep -E '^class|Sent' | sed 's/^/#   r: /'
near "$a" 1 0.08 || fail "h1 got $a Mbit/s through r's imq0, want $(expect 1) +-8%"
near "$b" 1 0.08 || fail "h2 got $b Mbit/s through r's imq0, want $(expect 1) +-8%"
init_sent=$(tc -s qdisc show dev imq0 | awk '/Sent/ { print $2; exit }')
[ "${init_sent:-0}" -lt 10000 ] || fail "the initial namespace's imq0 sent $init_sent bytes: r's packets went there"

# A namespace without an imq1 of its own: the rule falls back to the initial namespace's.
ip netns exec r iptables -t mangle -A POSTROUTING -o eth1 -j IMQ --todev 1 ||
	fail "a rule for imq1 (only in the initial namespace) refused in r"
ip netns exec r iptables -t mangle -D POSTROUTING -o eth1 -j IMQ --todev 1
expect_fail "a rule for imq7 (nowhere)" ip netns exec r iptables -t mangle -A POSTROUTING -j IMQ --todev 7

# r goes away under both downloads, its imq0 holding packets.
iperf_bg h1 172.16.0.1 20 /tmp/h1b.json -R -p 5201
iperf_bg h2 172.16.0.1 20 /tmp/h2b.json -R -p 5202
sleep 4
backlog=$($t -s qdisc show dev imq0 | awk '/backlog/ { print $3; exit }')
note "deleting r with r's imq0 holding $backlog"
ip netns del r
sleep 3
pkill iperf3 || true
for ns in i h1 h2; do ip netns del $ns; done
sleep 1
line=$(imq_unload)
note "$line"
for c in outstanding lost; do
	[ "$(counter "$line" $c)" = 0 ] || fail "$c is not 0: $line"
done
div=$(counter "$line" diverted) rei=$(counter "$line" reinjected) dro=$(counter "$line" dropped_in_qdisc)
gone=$(counter "$line" gone) exp=$(counter "$line" expired)
[ "$div" -eq $((rei + dro + gone + exp)) ] ||
	fail "diverted $div != reinjected $rei + dropped $dro + gone $gone + expired $exp"
