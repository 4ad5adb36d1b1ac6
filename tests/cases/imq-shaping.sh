# The classic IMQ example on a router: what arrives from the server side (downloads of two
# hosts) is diverted at PREROUTING to imq0 and shaped there by one HTB tree (2mbit, 1mbit per
# host), then forwarded as if untouched. Also: IPv6 through ip6tables, a device that is down
# lets packets through unshaped, counters add up, and rmmod under traffic is clean (the rules
# hold xt_IMQ, not imq: with imq gone their packets pass unshaped).
. /src/tests/vm/lib.sh

so=/src/target/release/libxt_IMQ.so
[ -e "$so" ] || fail "$so not built (cargo build --release -p xt-imq)"
mkdir -p /tmp/xt
cp "$so" /tmp/xt/
export XTABLES_LIBDIR=/tmp/xt:/usr/lib/x86_64-linux-gnu/xtables
insmod "$(ko imq)"
xt_imq_load

topo_3
ip -n cli addr add 10.0.1.3/24 dev c0
ip netns exec cli iperf3 -s -D -p 5201
ip netns exec cli iperf3 -s -D -p 5202
sleep 0.5

# The tc HOWTO's IMQ example, on imq0 (the devices live in the initial namespace).
ip link set imq0 up
tc qdisc add dev imq0 root handle 1: htb default 20
tc class add dev imq0 parent 1: classid 1:1 htb rate 2mbit burst 15k
tc class add dev imq0 parent 1:1 classid 1:10 htb rate 1mbit
tc class add dev imq0 parent 1:1 classid 1:20 htb rate 1mbit
tc qdisc add dev imq0 parent 1:10 handle 10: pfifo
tc qdisc add dev imq0 parent 1:20 handle 20: sfq
tc filter add dev imq0 parent 1:0 protocol ip prio 1 u32 match ip dst 10.0.1.2/32 flowid 1:10
ip netns exec rtr iptables -t mangle -A PREROUTING -i r1 -j IMQ --todev 0

# down HOST PORT SECS: download goodput (server -> client), Mbit/s. Small writes and a 32 KB
# window: at 1mbit, default buffers queue seconds of data in front of iperf3's end-of-test
# exchange, which then times out ("unable to receive results").
down() { iperf_mbit srv "$1" "$3" -p "$2" -l 8K -w 32K; }

a=$(down 10.0.1.2 5201 8)
note "host 10.0.1.2 alone (class 1:10, 1mbit): $a Mbit/s"
# (up to 5% over: the burst and iperf3's end-of-test accounting at 1mbit)
within "$a" 0.85 1.05 || fail "10.0.1.2 got $a Mbit/s, want its 1mbit"
b=$(down 10.0.1.3 5202 8)
note "host 10.0.1.3 alone (default class 1:20, 1mbit): $b Mbit/s"
within "$b" 0.85 1.05 || fail "10.0.1.3 got $b Mbit/s, want its 1mbit"
sent10=$(tc -s class show dev imq0 classid 1:10 | awk '/Sent/ { print $2; exit }')
sent20=$(tc -s class show dev imq0 classid 1:20 | awk '/Sent/ { print $2; exit }')
[ "${sent10:-0}" -gt 500000 ] && [ "${sent20:-0}" -gt 500000 ] ||
	fail "classes sent ${sent10:-0} and ${sent20:-0} bytes"
rx=$(ip -s -j link show imq0 | python3 -c 'import json,sys; d=json.load(sys.stdin)[0]["stats64"]; print(d["rx"]["packets"], d["tx"]["packets"])')
note "imq0 rx/tx packets: $rx"
read -r rxp txp <<<"$rx"
[ "$rxp" -gt 100 ] && [ "$txp" -gt 100 ] || fail "imq0 counters: rx $rxp tx $txp"

# IPv6 with ip6tables: the same device, a 1mbit class for the v6 client.
ip netns exec cli iperf3 -s -D -p 5203
sleep 0.3
tc filter add dev imq0 parent 1:0 protocol ipv6 prio 2 u32 match ip6 dst 2001:db8:1::2/128 flowid 1:10
ip netns exec rtr ip6tables -t mangle -A PREROUTING -i r1 -j IMQ --todev 0
c=$(down 2001:db8:1::2 5203 8)
note "IPv6 host alone (class 1:10): $c Mbit/s"
within "$c" 0.85 1.05 || fail "IPv6 got $c Mbit/s, want 1mbit"

# A device that is down lets packets pass unshaped; NAT and the rest of the chain still run.
ip link set imq0 down
d=$(down 10.0.1.2 5201 4)
note "imq0 down: $d Mbit/s"
awk -v d="$d" 'BEGIN { exit !(d > 5) }' || fail "with imq0 down the flow was still held to $d Mbit/s"
ip link set imq0 up
tc qdisc del dev imq0 root
tc qdisc add dev imq0 root handle 1: tbf rate 1mbit burst 80k latency 100ms

# rmmod under full traffic, the rules in place: they hold the target's module (xt_IMQ), not
# imq. Packets diverted before are still queued in imq0 when imq goes: dropped cleanly, their
# state accounted for; those the rules tag afterwards find no hook and pass unshaped.
ip netns exec srv timeout 20 iperf3 -c 10.0.1.2 -p 5201 -t 6 >/dev/null 2>&1 &
load=$!
sleep 2
expect_fail "rmmod xt_IMQ while rules use it" rmmod xt_IMQ
rmmod imq || fail "rmmod imq under traffic failed"
kill $load 2>/dev/null || true
wait $load 2>/dev/null || true
dmesg_has 'imq: unloaded \(2 devices, behavior BA\): diverted [1-9]'
line=$(dmesg | grep 'imq: unloaded (2 devices' | tail -n 1)
note "$line"
# Every diverted packet went on, or was dropped by a qdisc or the unload: none lost its way.
grep -q ' lost 0 ' <<<"$line" && grep -q ' gone 0 ' <<<"$line" || fail "packets without their state: $line"
# Traffic flows on without the module, through the rules that still tag it.
ip netns exec rtr iptables -t mangle -S PREROUTING | grep -q -- '-j IMQ' || fail "the rules went with imq"
e=$(down 10.0.1.2 5201 3)
awk -v e="$e" 'BEGIN { exit !(e > 5) }' || fail "after rmmod the flow is at $e Mbit/s"
ip netns exec rtr iptables -t mangle -F PREROUTING
ip netns exec rtr ip6tables -t mangle -F PREROUTING
xt_imq_unload
