# Behind a FULLNAT balancer (tools/toa-lb inserting option 254 in the handshake's final ACK),
# a real server's accept() and getpeername() return the client, for IPv4, IPv6 and a v4 client
# of a dual-stack listener, and with syncookies (the socket then comes from the cookie, not a
# request kept since the SYN); /proc/net/toa_stats counts it; entries go when the sockets do.
. /src/tests/vm/lib.sh
topo_3
fullnat_lb 0
toa_lb_start 0
insmod "$(ko toa)"
ip netns exec srv tcpdump -i s0 -nn -U -w /tmp/srv.pcap 'tcp port 8080' 2>/dev/null &
sleep 1

check() { # check FAMILY DUAL VIP WANT_ADDR
	peer_server srv 8080 "$1" $2
	out=$(client_connect cli "$3" 80)
	sleep 0.3
	port=$(echo "$out" | awk '/^local/ {print $3}')
	note "client: $out; server: $(tr '\n' ' ' </tmp/server.log)"
	grep -qx "accept $4 $port" /tmp/server.log || {
		cat /proc/net/toa_stats /tmp/toa-lb.log
		sleep 1
		tcpdump -nn -r /tmp/srv.pcap 2>/dev/null | tail -n 12
		fail "accept() did not return $4 $port"
	}
	grep -qx "peer $4 $port" /tmp/server.log || fail "getpeername() did not return $4 $port"
	grep -qx "data hello" /tmp/server.log || fail "data did not arrive"
}
check 4 "" 10.0.9.100 10.0.1.2
check 6 "" 2001:db8:9::100 2001:db8:1::2
check 6 dual 10.0.9.100 ::ffff:10.0.1.2
# 2: a cookie for every SYN (the SYN-flood path), IPv4 and IPv6 alike.
ip netns exec srv sysctl -qw net.ipv4.tcp_syncookies=2
cookies=$(nstat_srv TcpExtSyncookiesRecv)
check 4 "" 10.0.9.100 10.0.1.2
check 6 "" 2001:db8:9::100 2001:db8:1::2
[ "$(nstat_srv TcpExtSyncookiesRecv)" -ge $((cookies + 2)) ] ||
	fail "the server did not take the last two connections from cookies"
ip netns exec srv sysctl -qw net.ipv4.tcp_syncookies=1

cat /proc/net/toa_stats
[ "$(toa_stat syn_recv_sock_toa)" -eq 5 ] || fail "syn_recv_sock_toa is $(toa_stat syn_recv_sock_toa), want 5"
[ "$(toa_stat syn_recv_sock_toa_v6)" -eq 2 ] || fail "syn_recv_sock_toa_v6 is not 2"
[ "$(toa_stat getname_toa_ok)" -ge 10 ] || fail "getname_toa_ok is $(toa_stat getname_toa_ok), want at least 10 (accept + getpeername, 5 connections)"
[ "$(toa_stat getname_toa_mismatch)" -eq 0 ] || fail "mismatches counted"
[ "$(toa_stat probe_missed)" -eq 0 ] || fail "probe hits were missed"
# The sockets are closed: their entries must go with them.
toa_table_drains
rmmod toa
dmesg_has 'TOA: toa unloaded .*5 connections with TOA, 0 left in the table, 0 probe hits missed'
