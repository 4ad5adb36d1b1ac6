# NAT64: an IPv6 client behind a NAT64 balancer reaches an IPv4 server; the option carries its
# IPv6 address (length 20), which getpeername() on the IPv4 socket cannot return. The server
# asks with getsockopt(fd, IPPROTO_IP, TOA_SO_GET_LOOKUP = 4096) for DPVS's
# struct toa_nat64_peer { in6_addr saddr; u16 port; } (20 bytes). The translator is emulated:
# the test balancer (variant nat64) writes the IPv4 client's address in the NAT64 prefix
# 64:ff9b::/96, as the IPv6 client the translator would have seen. Also: the lookup's refusals
# as DPVS's toa gives them (EINVAL for a short buffer or a socket without a client, EFAULT for
# a socket whose client getpeername() returns, ENOPROTOOPT without the module) and the counters.
. /src/tests/vm/lib.sh

topo_3
fullnat_lb 0
insmod "$(ko toa)"
dmesg_has 'TOA: toa loaded'

# lookup_server NS PORT FAMILY: accepts one connection and prints its peer, the lookup with a
# 20-byte and an 18-byte buffer, then what the client sent.
lookup_server() {
	ip netns exec "$1" python3 -u -c '
import errno, socket, struct, sys
fam = socket.AF_INET6 if sys.argv[2] == "6" else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", int(sys.argv[1])))
s.listen(8)
print("listening", flush=True)
c, a = s.accept()
def lookup(n):
    try:
        b = c.getsockopt(socket.IPPROTO_IP, 4096, n)
    except OSError as e:
        return "err " + errno.errorcode[e.errno]
    return "ok %s %d len %d" % (socket.inet_ntop(socket.AF_INET6, b[:16]), struct.unpack("!H", b[16:18])[0], len(b))
p = c.getpeername()
print("peer", p[0], p[1])
print("lookup20", lookup(20))
print("lookup18", lookup(18))
print("data", c.recv(100).decode())
' "$2" "$3" >/tmp/server.log 2>&1 &
	for _ in $(seq 50); do
		grep -q listening /tmp/server.log && return 0
		sleep 0.1
	done
	fail "server did not start: $(cat /tmp/server.log)"
}

# through VARIANT ADDR PORT FAMILY: one connection to ADDR:PORT through the balancer running
# VARIANT (or directly if VARIANT is -); sets CPORT (the client's port) and leaves the server's
# report in /tmp/server.log.
through() {
	pkill -f 'toa-lb --queue' || true
	sleep 0.2
	[ "$1" = - ] || toa_lb_start 0 ack "$1"
	lookup_server srv 8080 "$4"
	CPORT=$(client_connect cli "$2" "$3" | awk '/^local/ { print $3 }')
	sleep 0.3
	grep -qx "data hello" /tmp/server.log || fail "$1: data lost: $(cat /tmp/server.log)"
	note "$1 to $2: $(grep -v '^listening' /tmp/server.log | tr '\n' ';')"
}

ok0=$(toa_stat nat64_lookup_ok)
bypass0=$(toa_stat getname_toa_bypass)

# NAT64: the lookup answers the client's IPv6 address and port; getpeername() stays the
# balancer's address (an AF_INET sockaddr cannot carry the client), counted as a bypass.
through nat64 10.0.9.100 80 4
grep -qx "peer 10.0.2.1 [0-9]*" /tmp/server.log || fail "NAT64: getpeername changed: $(cat /tmp/server.log)"
grep -qx "lookup20 ok 64:ff9b::a00:102 $CPORT len 20" /tmp/server.log ||
	fail "NAT64 lookup: want 64:ff9b::a00:102 $CPORT: $(cat /tmp/server.log)"
grep -qx "lookup18 err EINVAL" /tmp/server.log || fail "an 18-byte buffer: $(grep lookup18 /tmp/server.log)"
[ "$(toa_stat nat64_lookup_ok)" -eq $((ok0 + 1)) ] || fail "nat64_lookup_ok $(toa_stat nat64_lookup_ok), was $ok0"
[ "$(toa_stat getname_toa_bypass)" -gt "$bypass0" ] || fail "getname_toa_bypass did not count the NAT64 getpeername"

# Without an option (a direct connection): no client, EINVAL, counted empty.
empty0=$(toa_stat nat64_lookup_empty)
through - 10.0.2.2 8080 4
grep -qx "lookup20 err EINVAL" /tmp/server.log || fail "direct: $(grep lookup20 /tmp/server.log)"
[ "$(toa_stat nat64_lookup_empty)" -gt "$empty0" ] || fail "nat64_lookup_empty did not count"

# An IPv4 client on an IPv4 socket, and IPv6 on IPv6: getpeername() gives them; the lookup
# refuses as DPVS's does (EFAULT), counted neither ok nor empty.
ok1=$(toa_stat nat64_lookup_ok)
through good 10.0.9.100 80 4
grep -qx "peer 10.0.1.2 $CPORT" /tmp/server.log || fail "IPv4 toa: $(cat /tmp/server.log)"
grep -qx "lookup20 err EFAULT" /tmp/server.log || fail "IPv4 toa lookup: $(grep lookup20 /tmp/server.log)"
through good 2001:db8:9::100 80 6
grep -qx "peer 2001:db8:1::2 $CPORT" /tmp/server.log || fail "IPv6 toa: $(cat /tmp/server.log)"
grep -qx "lookup20 err EFAULT" /tmp/server.log || fail "IPv6 toa lookup: $(grep lookup20 /tmp/server.log)"
[ "$(toa_stat nat64_lookup_ok)" -eq "$ok1" ] || fail "nat64_lookup_ok counted a non-NAT64 socket"

# Without the module nothing answers the option name.
pkill -f 'toa-lb --queue' || true
toa_table_drains
rmmod toa
through - 10.0.2.2 8080 4
grep -qx "lookup20 err ENOPROTOOPT" /tmp/server.log || fail "without toa: $(grep lookup20 /tmp/server.log)"
note "NAT64 lookups and refusals as DPVS gives them"
