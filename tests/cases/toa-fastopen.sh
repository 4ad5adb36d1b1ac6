# TCP Fast Open behind the balancer: a client that has the server's cookie sends data in its
# SYN, and the server makes the socket from the SYN itself (tcp_try_fastopen), queueing it for
# accept() before the handshake completes. With the option in the SYN (place syn), accept()
# and getpeername() still return the client, for the cookie-request connection and the fast
# one; the server's TcpExtTCPFastOpenPassive says the second really was fast. IPv4 only: an
# IPv6 option (20 bytes) does not fit beside the SYN's other options and the cookie.
. /src/tests/vm/lib.sh
topo_3
fullnat_lb 0
toa_lb_start 0 syn
insmod "$(ko toa)"
ip netns exec srv sysctl -qw net.ipv4.tcp_fastopen=3
ip netns exec cli sysctl -qw net.ipv4.tcp_fastopen=3
fast=$(nstat_srv TcpExtTCPFastOpenPassive)

ip netns exec srv python3 -u -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 16)
s.bind(("0.0.0.0", 8080))
s.listen(8)
print("listening", flush=True)
for _ in range(2):
    c, a = s.accept()
    p = c.getpeername()
    print("accept", a[0], a[1], "peer", p[0], p[1], "data", c.recv(100).decode(), flush=True)
    c.close()
' >/tmp/server.log 2>&1 &
wait_until 5 "server did not start: \$(cat /tmp/server.log)" grep -q listening /tmp/server.log

for i in 1 2; do
	out=$(ip netns exec cli python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
# Blocking for the connect (a timeout would make it non-blocking: EINPROGRESS).
s.sendto(b"hello", socket.MSG_FASTOPEN, ("10.0.9.100", 80))
s.settimeout(10)
l = s.getsockname()
print(l[0], l[1])
s.recv(1)
s.close()
') || {
		# Enough to tell who reset the connection (a flake seen twice in full runs).
		echo "server: $(cat /tmp/server.log)"
		echo "toa-lb:"; tail -n 20 /tmp/toa-lb.log
		echo "toa_stats:"; cat /proc/net/toa_stats
		echo "server sockets:"; ip netns exec srv ss -tanoi
		echo "server TCP counters:"; ip netns exec srv nstat -az | grep -E 'TcpExt(TCPFastOpen|ListenDrop|ListenOverflow|TCPAbort)|TcpAttemptFails|TcpOutRsts' || true
		echo "router conntrack:"; ip netns exec rtr conntrack -L 2>/dev/null | head -n 20 || true
		fail "client $i failed"
	}
	sleep 0.3
	port=${out#* }
	grep -qx "accept 10.0.1.2 $port peer 10.0.1.2 $port data hello" /tmp/server.log || {
		cat /proc/net/toa_stats /tmp/toa-lb.log
		fail "connection $i (local $out): server saw $(cat /tmp/server.log)"
	}
done
note "$(tr '\n' ' ' </tmp/server.log)"
[ "$(nstat_srv TcpExtTCPFastOpenPassive)" -gt "$fast" ] || fail "no connection was fast"
[ "$(toa_stat syn_recv_sock_toa)" -eq 2 ] || fail "syn_recv_sock_toa is $(toa_stat syn_recv_sock_toa), want 2"
toa_table_drains
rmmod toa
dmesg_has 'TOA: toa unloaded .*2 connections with TOA, 0 left in the table, 0 probe hits missed'
