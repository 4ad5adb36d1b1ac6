# A TOA socket keeps working with kTLS: the TLS ULP attaches to it (toa never uses
# sk_user_data or the socket's ops), and getpeername() still returns the client afterwards.
. /src/tests/vm/lib.sh
modprobe tls
topo_3
fullnat_lb 0
toa_lb_start 0
insmod "$(ko toa)"
ULP=tls peer_server srv 8080 4
out=$(client_connect cli 10.0.9.100 80)
sleep 0.3
port=$(echo "$out" | awk '/^local/ {print $3}')
cat /tmp/server.log
grep -qx "ulp ok" /tmp/server.log || fail "TCP_ULP tls failed on a TOA socket"
grep -qx "peer 10.0.1.2 $port" /tmp/server.log || fail "getpeername() after kTLS is not the client"
[ "$(toa_stat syn_recv_sock_toa)" -eq 1 ] || fail "the connection did not carry TOA"
rmmod toa
