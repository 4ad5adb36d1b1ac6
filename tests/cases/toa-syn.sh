# Some balancers put the option in the SYN, not (or not only) in the segment completing the
# handshake: toa keeps it with the request and uses it for the socket the request becomes,
# unless the final segment carries its own. Requests that never complete leave nothing behind.
. /src/tests/vm/lib.sh
topo_3
fullnat_lb 0
insmod "$(ko toa)"

run() { # run PLACE
	pkill -f 'toa-lb --queue' || true
	sleep 0.2
	toa_lb_start 0 "$1"
	for v in 4 6; do
		if [ $v = 4 ]; then vip=10.0.9.100 want=10.0.1.2; else vip=2001:db8:9::100 want=2001:db8:1::2; fi
		peer_server srv 8080 $v
		out=$(client_connect cli $vip 80)
		port=$(echo "$out" | awk '/^local/ {print $3}')
		sleep 0.3
		grep -qx "peer $want $port" /tmp/server.log || fail "option in $1: peer is not $want: $(cat /tmp/server.log)"
	done
	note "option in $1: server sees the clients"
}
run syn
[ "$(toa_stat syn_toa)" -eq 2 ] || fail "syn_toa is $(toa_stat syn_toa), want 2"
run both
[ "$(toa_stat syn_recv_sock_toa)" -eq 4 ] || fail "syn_recv_sock_toa is $(toa_stat syn_recv_sock_toa)"

# SYNs with the option that are never answered to completion: the server's SYN-ACKs are dropped
# on the way back, the client gives up; the requests expire and take their entries with them.
ip netns exec rtr iptables -I FORWARD -i r1 -p tcp --tcp-flags SYN,ACK SYN,ACK -j DROP
ip netns exec srv sysctl -qw net.ipv4.tcp_synack_retries=1
peer_server srv 8080 4
ip netns exec cli python3 -c '
import socket
for _ in range(5):
    try:
        socket.create_connection(("10.0.9.100", 80), timeout=1)
    except OSError:
        pass
'
[ "$(toa_stat table_entries)" -gt 0 ] || note "requests already gone"
toa_table_drains 30
ip netns exec rtr iptables -D FORWARD -i r1 -p tcp --tcp-flags SYN,ACK SYN,ACK -j DROP
rmmod toa
dmesg_has 'TOA: toa unloaded .* 0 left in the table, 0 probe hits missed'
