# Load and unload toa again and again while connections through the balancer are opened,
# accepted and asked for their peer: no warning, no crash (the harness watches the console).
# Then, loaded for good, the counters add up exactly and the table empties with the sockets.
. /src/tests/vm/lib.sh
topo_3
fullnat_lb 0
toa_lb_start 0
ip netns exec srv python3 -u -c '
import socket, time
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", 8080))
s.listen(128)
s.settimeout(40)
n = 0
try:
    while True:
        c, a = s.accept()
        for _ in range(3):
            c.getpeername()
        c.recv(10)
        c.close()
        n += 1
except socket.timeout:
    pass
print("served", n)
' >/tmp/storm-server.log 2>&1 &
server=$!
sleep 1

storm() { # storm SECONDS VIP: connections until SECONDS have passed; prints how many
	ip netns exec cli python3 -c '
import socket, sys, time
end, n = time.time() + float(sys.argv[1]), 0
while time.time() < end:
    s = socket.create_connection((sys.argv[2], 80), timeout=10)
    s.sendall(b"x")
    s.recv(1)
    s.close()
    n += 1
print(n)
' "$1" "$2"
}
storm 25 10.0.9.100 >/tmp/storm4.out &
s4=$!
storm 25 2001:db8:9::100 >/tmp/storm6.out &
s6=$!
for i in $(seq 8); do
	insmod "$(ko toa)"
	sleep 0.$((RANDOM % 9 + 1))
	cat /proc/net/toa_stats >/dev/null
	rmmod toa
	sleep 0.$((RANDOM % 5 + 1))
done
wait $s4 $s6
note "storm: $(cat /tmp/storm4.out) IPv4 and $(cat /tmp/storm6.out) IPv6 connections during 8 load/unload cycles"
[ "$(cat /tmp/storm4.out)" -gt 20 ] && [ "$(cat /tmp/storm6.out)" -gt 20 ] || fail "too few connections"
dmesg | grep_q 'TOA: toa unloaded' || fail "no unload logged"

# Loaded for good: exact counts.
insmod "$(ko toa)"
for i in $(seq 20); do
	client_connect cli 10.0.9.100 80 >/dev/null
done
cat /proc/net/toa_stats
[ "$(toa_stat syn_recv_sock_toa)" -eq 20 ] || fail "syn_recv_sock_toa is $(toa_stat syn_recv_sock_toa), want 20"
[ "$(toa_stat syn_recv_sock_no_toa)" -eq 0 ] || fail "connections without TOA"
[ "$(toa_stat getname_toa_ok)" -ge 60 ] || fail "getname_toa_ok is $(toa_stat getname_toa_ok), want >= 60"
toa_table_drains
rmmod toa
kill $server 2>/dev/null || true
dmesg_has 'TOA: toa unloaded .*20 connections with TOA, 0 left in the table, 0 probe hits missed'
