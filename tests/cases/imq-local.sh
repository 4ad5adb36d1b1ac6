# Uploads to a service on the shaping box itself (issue 7): in rtr, what arrives on r0 for
# iperf3's ports 5201-5202 is diverted at PREROUTING to imq0, whose htb separates two clients
# by source address (10.0.1.2: 1mbit, 10.0.1.3: 2mbit). Both upload to rtr at once: each gets
# its class rate within 5%. rtr's INPUT policy is DROP with `--ctstate ESTABLISHED -j ACCEPT`:
# the shaped packets still match ESTABLISHED after the detour (the rule's counters grow, the
# policy drops nothing). The same with ip6tables and the IPv6 addresses. Locally generated
# replies (a download from rtr, whose incoming ACKs go through imq0) are not held back.
. /src/tests/vm/lib.sh
. /src/tests/vm/imq-lib.sh
imq_setup
imq_load

topo_3
ip -n cli addr add 10.0.1.3/24 dev c0
ip -n cli addr add 2001:db8:1::3/64 dev c0 nodad
iperf_server rtr 5201
iperf_server rtr 5202
sleep 0.5
r() { ip netns exec rtr "$@"; }

ip link set imq0 up
tc qdisc add dev imq0 root handle 1: htb default 30
tc class add dev imq0 parent 1: classid 1:10 htb rate 1mbit
tc class add dev imq0 parent 1: classid 1:20 htb rate 2mbit
tc class add dev imq0 parent 1: classid 1:30 htb rate 4mbit
u32="tc filter add dev imq0 parent 1:0"
$u32 protocol ip prio 1 u32 match ip src 10.0.1.2/32 flowid 1:10
$u32 protocol ip prio 2 u32 match ip src 10.0.1.3/32 flowid 1:20
$u32 protocol ipv6 prio 3 u32 match ip6 src 2001:db8:1::2/128 flowid 1:10
$u32 protocol ipv6 prio 4 u32 match ip6 src 2001:db8:1::3/128 flowid 1:20

for t in iptables ip6tables; do
	r $t -t mangle -A PREROUTING -i r0 -p tcp --dport 5201:5202 -j IMQ --todev 0
	r $t -A INPUT -i lo -j ACCEPT
	r $t -A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT
	r $t -A INPUT -p tcp --syn --dport 5201:5202 -m conntrack --ctstate NEW -j ACCEPT
	[ $t = iptables ] && r $t -A INPUT -p icmp -j ACCEPT
	[ $t = ip6tables ] && r $t -A INPUT -p ipv6-icmp -j ACCEPT
	r $t -P INPUT DROP
done

# rule_pkts TOOL: packets counted by INPUT's ESTABLISHED rule; policy_pkts TOOL: by its policy.
rule_pkts() { r "$1" -L INPUT -v -n -x | awk '/ctstate ESTABLISHED/ { print $1 }'; }
policy_pkts() { r "$1" -L INPUT -v -n -x | awk '/^Chain INPUT/ { print $5 }'; }
imq_rx() { ip -s -j link show imq0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["packets"])'; }

# uploads FAMILY TOOL A B SERVER
uploads() {
	local fam=$1 t=$2 a=$3 b=$4 srv=$5 before rx0 ra rb est rx
	before=$(rule_pkts "$t")
	rx0=$(imq_rx)
	iperf_bg cli "$srv" 10 /tmp/a.json -p 5201 -B "$a"
	local pa=$!
	iperf_bg cli "$srv" 10 /tmp/b.json -p 5202 -B "$b"
	local pb=$!
	wait $pa || fail "$fam: upload from $a failed: $(tail -n 5 /tmp/a.json)"
	wait $pb || fail "$fam: upload from $b failed: $(tail -n 5 /tmp/b.json)"
	ra=$(mbit /tmp/a.json)
	rb=$(mbit /tmp/b.json)
	est=$(($(rule_pkts "$t") - before))
	rx=$(($(imq_rx) - rx0))
	note "$fam: $a (1:10, 1mbit) $ra Mbit/s, $b (1:20, 2mbit) $rb Mbit/s; expected $(expect 1) and $(expect 2)"
	note "$fam: imq0 took $rx packets; INPUT ESTABLISHED accepted $est; INPUT policy dropped $(policy_pkts "$t")"
	near "$ra" 1 || fail "$fam: $a uploaded at $ra Mbit/s, not its 1mbit class"
	near "$rb" 2 || fail "$fam: $b uploaded at $rb Mbit/s, not its 2mbit class"
	[ "$rx" -gt 500 ] || fail "$fam: imq0 took only $rx packets"
	# Every shaped packet but the SYNs of iperf3's four connections (control and data of
	# each client: NEW) came back ESTABLISHED.
	[ "$est" -ge $((rx - 4)) ] && [ "$est" -le "$rx" ] ||
		fail "$fam: $est of the $rx shaped packets matched ESTABLISHED"
	[ "$(policy_pkts "$t")" = 0 ] || fail "$fam: INPUT's DROP policy caught $(policy_pkts "$t") packets"
}
uploads IPv4 iptables 10.0.1.2 10.0.1.3 10.0.1.1
# IPv6's header is 20 bytes longer: 1428 bytes of payload in a 1500-byte packet.
GOODPUT=0.952
uploads IPv6 ip6tables 2001:db8:1::2 2001:db8:1::3 2001:db8:1::1

# Locally generated traffic: a download from rtr's service is not shaped (only its ACKs, coming
# in, cross imq0).
down=$(iperf_mbit cli 10.0.1.1 4 -p 5201 -R)
note "download from rtr (its ACKs through imq0's 1mbit class): $down Mbit/s"
awk -v d="$down" 'BEGIN { exit !(d > 20) }' || fail "the download from rtr was held to $down Mbit/s"
r iptables -L INPUT -v -n -x
r ip6tables -L INPUT -v -n -x

for t in iptables ip6tables; do r $t -P INPUT ACCEPT; done
line=$(imq_unload)
note "$line"
for c in lost gone no_state; do
	[ "$(counter "$line" $c)" = 0 ] || fail "$c is not 0: $line"
done
