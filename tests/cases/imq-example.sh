# The tc HOWTO's IMQ example as written, with both hosts downloading at the same time: imq0
# root htb default 20, 1:1 2mbit burst 15k, 1:10 and 1:20 1mbit each (pfifo, sfq), host A
# (10.0.1.2) to 1:10 by u32, host B (10.0.1.3) by default to 1:20, everything arriving on the
# router's WAN side diverted at PREROUTING. Each host gets its own 1mbit (TCP goodput 0.965 of
# it, see imq-lib.sh), within 5%, and together no more than 2mbit. Then two ingress NICs (a
# second server behind another veth) diverted to the same imq0 share one 2mbit class.
. /src/tests/vm/lib.sh
. /src/tests/vm/imq-lib.sh
imq_setup
imq_load

topo_3
ip -n cli addr add 10.0.1.3/24 dev c0
iperf_server cli 5201
iperf_server cli 5202
sleep 0.5

ip link set imq0 up
tc qdisc add dev imq0 root handle 1: htb default 20
tc class add dev imq0 parent 1: classid 1:1 htb rate 2mbit burst 15k
tc class add dev imq0 parent 1:1 classid 1:10 htb rate 1mbit
tc class add dev imq0 parent 1:1 classid 1:20 htb rate 1mbit
tc qdisc add dev imq0 parent 1:10 handle 10: pfifo
tc qdisc add dev imq0 parent 1:20 handle 20: sfq
tc filter add dev imq0 parent 1:0 protocol ip prio 1 u32 match ip dst 10.0.1.2/32 flowid 1:10
ip netns exec rtr iptables -t mangle -A PREROUTING -i r1 -j IMQ --todev 0

secs=12
iperf_bg srv 10.0.1.2 $secs /tmp/a.json -p 5201
pa=$!
iperf_bg srv 10.0.1.3 $secs /tmp/b.json -p 5202
pb=$!
wait $pa || fail "download to host A failed: $(tail -n 5 /tmp/a.json)"
wait $pb || fail "download to host B failed: $(tail -n 5 /tmp/b.json)"
a=$(mbit /tmp/a.json)
b=$(mbit /tmp/b.json)
sum=$(awk -v a="$a" -v b="$b" 'BEGIN { print a + b }')
note "together: host A (1:10, 1mbit) $a Mbit/s, host B (default 1:20, 1mbit) $b Mbit/s, sum $sum; expected $(expect 1) each"
tc -s class show dev imq0 | grep -E '^class|Sent'
near "$a" 1 || fail "host A got $a Mbit/s, want $(expect 1) +-5%"
near "$b" 1 || fail "host B got $b Mbit/s, want $(expect 1) +-5%"
within "$sum" 0 2 || fail "together $sum Mbit/s, above the 2mbit parent"
for c in 1:10 1:20; do
	sent=$(tc -s class show dev imq0 classid $c | awk '/Sent/ { print $2; exit }')
	[ "${sent:-0}" -gt 1000000 ] || fail "class $c sent only ${sent:-0} bytes"
done

# Two ingress NICs: a second server (srv2, 10.0.3.2) behind r2; both diverted to imq0, whose
# single class 1:1 (2mbit) is shared by the two downloads.
ip netns add srv2
ip -n srv2 link set lo up
ip link add r2 netns rtr type veth peer name s0 netns srv2
ip -n rtr addr add 10.0.3.1/24 dev r2
ip -n srv2 addr add 10.0.3.2/24 dev s0
ip -n rtr link set r2 up
ip -n srv2 link set s0 up
ip -n srv2 route add default via 10.0.3.1
ip netns exec rtr iptables -t mangle -A PREROUTING -i r2 -j IMQ --todev 0
tc qdisc del dev imq0 root
tc qdisc add dev imq0 root handle 1: htb default 1
tc class add dev imq0 parent 1: classid 1:1 htb rate 2mbit burst 15k
tc qdisc add dev imq0 parent 1:1 handle 10: sfq
iperf_bg srv 10.0.1.2 $secs /tmp/a.json -p 5201
pa=$!
iperf_bg srv2 10.0.1.3 $secs /tmp/b.json -p 5202
pb=$!
wait $pa || fail "download from srv failed: $(tail -n 5 /tmp/a.json)"
wait $pb || fail "download from srv2 failed: $(tail -n 5 /tmp/b.json)"
a=$(mbit /tmp/a.json)
b=$(mbit /tmp/b.json)
sum=$(awk -v a="$a" -v b="$b" 'BEGIN { print a + b }')
note "two NICs, one 2mbit class: via r1 $a Mbit/s, via r2 $b Mbit/s, sum $sum; expected $(expect 2) together"
near "$sum" 2 || fail "the two NICs together got $sum Mbit/s, want $(expect 2) +-5%"
# Both NICs really went through imq0 (neither flow starved, neither passed unshaped).
within "$a" 0.4 1.6 || fail "the flow via r1 got $a of the shared 2mbit"
within "$b" 0.4 1.6 || fail "the flow via r2 got $b of the shared 2mbit"
for i in r1 r2; do
	n=$(ip netns exec rtr iptables -t mangle -L PREROUTING -v -n -x | awk -v i=$i '$3 == "IMQ" && $6 == i { print $1 }')
	[ "${n:-0}" -gt 100 ] || fail "the rule for $i diverted ${n:-0} packets"
done

line=$(imq_unload)
note "$line"
[ "$(counter "$line" lost)" = 0 ] && [ "$(counter "$line" gone)" = 0 ] || fail "packets lost their way: $line"
