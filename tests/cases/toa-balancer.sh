# The test balancer (tools/toa-lb) behaves like a FULLNAT load balancer: the server sees the
# balancer as its peer, and the handshake's final ACK carries TCP option 254 with the client's
# real address and port, for IPv4 and IPv6. (Without the toa module loaded.)
. /src/tests/vm/lib.sh
topo_3
fullnat_lb 0
toa_lb_start 0
ip netns exec srv tcpdump -i s0 -nn -U -w /tmp/srv.pcap 'tcp port 8080' 2>/dev/null &
dump=$!
sleep 1

peer_server srv 8080 4
out=$(client_connect cli 10.0.9.100 80)
sleep 0.5
cport=$(echo "$out" | awk '/^local/ {print $3}')
note "client: $out; server: $(tr '\n' ' ' </tmp/server.log)"
grep -q '^peer 10.0.2.1 ' /tmp/server.log || fail "server's peer is not the balancer"
grep -q '^data hello' /tmp/server.log || fail "data did not arrive"

peer_server srv 8080 6
out6=$(client_connect cli 2001:db8:9::100 80)
sleep 0.5
cport6=$(echo "$out6" | awk '/^local/ {print $3}')
note "client: $out6; server: $(tr '\n' ' ' </tmp/server.log)"
grep -q '^peer 2001:db8:2::1 ' /tmp/server.log || fail "server's IPv6 peer is not the balancer"

sleep 1
kill $dump 2>/dev/null
wait $dump 2>/dev/null
tcpdump -nn -r /tmp/srv.pcap 2>/dev/null
pcap_has_toa /tmp/srv.pcap 10.0.1.2 "$cport" >/dev/null ||
	fail "no option 254 with 10.0.1.2:$cport seen by the server"
pcap_has_toa /tmp/srv.pcap 2001:db8:1::2 "$cport6" >/dev/null ||
	fail "no option 254 with [2001:db8:1::2]:$cport6 seen by the server"
# The handshake's ACK and what followed it among the queued packets got it; the SYNs did not.
cat /tmp/toa-lb.log
[ "$(grep -c '^inserted' /tmp/toa-lb.log)" -ge 2 ] || fail "toa-lb inserted fewer than 2 options"
[ "$(grep -c 'NotWanted' /tmp/toa-lb.log)" -eq 2 ] || fail "toa-lb should have left exactly the 2 SYNs alone"
