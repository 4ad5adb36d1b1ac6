# With `trusted` set, the option is taken only from the listed balancers: from anyone else it is
# ignored (the server sees its real peer) and counted as toa_untrusted.
. /src/tests/vm/lib.sh
topo_3
fullnat_lb 0
toa_lb_start 0

conn() { # conn VIP WANT_PEER
	peer_server srv 8080 "$3"
	out=$(client_connect cli "$1" 80)
	sleep 0.3
	port=$(echo "$out" | awk '/^local/ {print $3}')
	grep -qx "peer $2 $port" /tmp/server.log || fail "peer is not $2 $port: $(cat /tmp/server.log)"
	note "via $1: server sees $2"
}

insmod "$(ko toa)" trusted=10.0.2.1/32,2001:db8:2::/64
conn 10.0.9.100 10.0.1.2 4
conn 2001:db8:9::100 2001:db8:1::2 6
[ "$(toa_stat toa_untrusted)" -eq 0 ] || fail "trusted balancer counted as untrusted"
rmmod toa

insmod "$(ko toa)" trusted=192.0.2.0/24,2001:db8:ffff::/48
conn 10.0.9.100 10.0.2.1 4
conn 2001:db8:9::100 2001:db8:2::1 6
cat /proc/net/toa_stats
[ "$(toa_stat toa_untrusted)" -eq 2 ] || fail "toa_untrusted is $(toa_stat toa_untrusted), want 2"
[ "$(toa_stat syn_recv_sock_toa)" -eq 0 ] || fail "an untrusted option was used"
rmmod toa
