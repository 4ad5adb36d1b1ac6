# /proc/net/toa_stats per network namespace: each namespace's file counts the connections of
# that namespace only; the initial namespace's file keeps the totals of all of them. Two servers
# in two namespaces (srv behind the FULLNAT VIP, srv2 reached directly, both through the test
# balancer's option inserter) get 3 and 2 connections with the option; a namespace without
# connections shows zeros; a new namespace starts from zero; the files go with the module.
. /src/tests/vm/lib.sh

topo_3
fullnat_lb 0
ip netns add srv2
ip -n srv2 link set lo up
ip link add r2 netns rtr type veth peer name s0 netns srv2
ip -n rtr addr add 10.0.3.1/24 dev r2
ip -n srv2 addr add 10.0.3.2/24 dev s0
ip -n rtr link set r2 up
ip -n srv2 link set s0 up
ip -n srv2 route add default via 10.0.3.1
ip netns exec rtr iptables -t mangle -A FORWARD -i r0 -p tcp -d 10.0.3.2 --dport 8080 \
	-m connbytes --connbytes 1:4 --connbytes-dir original --connbytes-mode packets \
	-j NFQUEUE --queue-num 0
insmod "$(ko toa)"
toa_lb_start 0

# ns_stat NS NAME: the total of row NAME in namespace NS's file.
ns_stat() { ip netns exec "$1" awk -v n="$2" '$1 == n { print $NF }' /proc/net/toa_stats; }

for ns in srv srv2 cli rtr; do
	ip netns exec $ns test -e /proc/net/toa_stats || fail "no /proc/net/toa_stats in $ns"
done
# connect NS ADDR PORT: one connection to a peer_server in NS; the server must see the client.
connect() {
	peer_server "$1" 8080 4
	port=$(client_connect cli "$2" "$3" | awk '/^local/ { print $3 }')
	sleep 0.3
	grep -qx "peer 10.0.1.2 $port" /tmp/server.log || fail "$1: peer is not the client: $(cat /tmp/server.log)"
}
for _ in 1 2 3; do connect srv 10.0.9.100 80; done
for _ in 1 2; do connect srv2 10.0.3.2 8080; done

# Connections: 3 and 2. Address lookups (accept() and getpeername(), each server the same
# number per connection): 3 to 2, none in cli; the initial namespace has the sums.
for row in syn_recv_sock_toa getname_toa_ok; do
	a=$(ns_stat srv $row)
	b=$(ns_stat srv2 $row)
	c=$(ns_stat cli $row)
	all=$(toa_stat $row)
	note "$row: srv $a, srv2 $b, cli $c, initial namespace (all) $all"
	[ "$c" -eq 0 ] || fail "$row in cli: $c, want 0"
	[ "$all" -eq $((a + b)) ] || fail "$row in the initial namespace: $all, want the total $((a + b))"
	[ $((a * 2)) -eq $((b * 3)) ] && [ "$b" -gt 0 ] || fail "$row: srv $a and srv2 $b are not 3 to 2"
done
[ "$(ns_stat srv syn_recv_sock_toa)" -eq 3 ] || fail "srv: $(ns_stat srv syn_recv_sock_toa) connections, want 3"
ip netns exec srv cat /proc/net/toa_stats | head -n 4 | sed 's/^/#   srv: /'

# A new namespace starts from zero; its file goes with it.
ip netns del srv2
ip netns add srv2
[ "$(ns_stat srv2 syn_recv_sock_toa)" -eq 0 ] || fail "a new namespace does not start from zero"
ip netns del srv2

# The files go with the module, in every namespace.
pkill -f 'toa-lb --queue' || true
toa_table_drains
rmmod toa
for ns in srv cli; do
	! ip netns exec $ns test -e /proc/net/toa_stats || fail "/proc/net/toa_stats left in $ns"
done
[ ! -e /proc/net/toa_stats ] || fail "/proc/net/toa_stats left in the initial namespace"
note "per-namespace counts as expected"
