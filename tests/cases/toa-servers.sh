# Real servers behind the FULLNAT test balancer: nginx logging $remote_addr:$remote_port, and a
# stock Python socketserver printing the client_address accept() gave it. Each for IPv4, IPv6
# and a dual-stack listener (IPv4 clients as ::ffff:a.b.c.d), with toa loaded (the client's
# address and port) and without it (the balancer's address: what the servers saw before).
. /src/tests/vm/lib.sh

command -v nginx >/dev/null || fail "nginx is not in the guest's root (tools/refenv GUEST_PKGS)"
topo_3
fullnat_lb 0
toa_lb_start 0

# get ADDR: one HTTP request to the VIP ADDR port 80 from cli; prints the client's local port.
get() {
	ip netns exec cli python3 -c '
import socket, sys
s = socket.create_connection((sys.argv[1], 80), timeout=10)
print(s.getsockname()[1])
s.sendall(b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n")
r = b""
while True:
    d = s.recv(4096)
    if not d:
        break
    r += d
assert r.startswith(b"HTTP/1.1 200"), r[:40]
' "$1"
}

# nginx_start DUAL: nginx in srv on port 8080: IPv4 and IPv6 sockets, or one dual-stack socket.
nginx_start() {
	local listen="listen 8080; listen [::]:8080 ipv6only=on;"
	[ "$1" = dual ] && listen="listen [::]:8080 ipv6only=off;"
	rm -rf /tmp/nginx
	mkdir -p /tmp/nginx
	cat >/tmp/nginx/nginx.conf <<CONF
user root;
worker_processes 1;
pid /tmp/nginx/nginx.pid;
error_log /tmp/nginx/error.log;
events { worker_connections 64; }
http {
	log_format peer '\$remote_addr:\$remote_port';
	access_log /tmp/nginx/access.log peer;
	client_body_temp_path /tmp/nginx/body;
	proxy_temp_path /tmp/nginx/proxy;
	fastcgi_temp_path /tmp/nginx/fastcgi;
	uwsgi_temp_path /tmp/nginx/uwsgi;
	scgi_temp_path /tmp/nginx/scgi;
	server { $listen location / { return 200 "ok\n"; } }
}
CONF
	ip netns exec srv nginx -c /tmp/nginx/nginx.conf -p /tmp/nginx ||
		fail "nginx did not start: $(cat /tmp/nginx/error.log 2>/dev/null)"
	wait_until 5 "nginx is not listening" listening srv 8080
}
nginx_stop() {
	kill "$(cat /tmp/nginx/nginx.pid)"
	for _ in $(seq 50); do listening srv 8080 || return 0; sleep 0.1; done
	fail "nginx does not stop"
}

# pyserver_start FAMILY: Python's socketserver in srv on port 8080 (4, 6 or dual), answering
# one HTTP request and printing the client_address of the connection to /tmp/py.log.
pyserver_start() {
	ip netns exec srv python3 -u -c '
import socket, socketserver, sys
fam = sys.argv[1]
class H(socketserver.StreamRequestHandler):
    def handle(self):
        self.rfile.readline()
        a = self.client_address
        print("%s:%d" % (a[0], a[1]), flush=True)
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
class S(socketserver.TCPServer):
    allow_reuse_address = True
    address_family = socket.AF_INET if fam == "4" else socket.AF_INET6
    def server_bind(self):
        if fam == "dual":
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()
with S(("0.0.0.0" if fam == "4" else "::", 8080), H) as s:
    print("listening", flush=True)
    s.handle_request()
' "$1" >/tmp/py.log 2>&1 &
	wait_until 5 "the Python server did not start: \$(cat /tmp/py.log)" grep -q listening /tmp/py.log
}

# check WHAT GOT WANT: the address:port a server saw (without toa, the address only: the
# balancer's SNAT may change the port).
check() {
	local got=$2 want=$3
	if [ "$LOADED" = no ]; then got=${got%:*} want=${want%:*}; fi
	[ "$got" = "$want" ] || fail "$1: the server saw $2, want $3"
	note "$1: $2"
}

# run_all LOADED: every server and family once; with toa loaded the client, else the balancer.
run_all() {
	local c4=10.0.1.2 c6=2001:db8:1::2 p
	LOADED=$1
	if [ "$1" = no ]; then c4=10.0.2.1 c6=2001:db8:2::1; fi
	nginx_start split
	p=$(get 10.0.9.100)
	check "nginx, IPv4 (toa $1)" "$(tail -n 1 /tmp/nginx/access.log)" "$c4:$p"
	p=$(get 2001:db8:9::100)
	check "nginx, IPv6 (toa $1)" "$(tail -n 1 /tmp/nginx/access.log)" "$c6:$p"
	nginx_stop
	nginx_start dual
	p=$(get 10.0.9.100)
	check "nginx, dual-stack, IPv4 client (toa $1)" "$(tail -n 1 /tmp/nginx/access.log)" "::ffff:$c4:$p"
	p=$(get 2001:db8:9::100)
	check "nginx, dual-stack, IPv6 client (toa $1)" "$(tail -n 1 /tmp/nginx/access.log)" "$c6:$p"
	nginx_stop
	local fam addr want
	for fam in 4 6 dual; do
		addr=10.0.9.100 want=$c4
		[ $fam = 6 ] && addr=2001:db8:9::100 want=$c6
		[ $fam = dual ] && want=::ffff:$c4
		pyserver_start $fam
		p=$(get $addr)
		sleep 0.2
		check "python socketserver, $fam (toa $1)" "$(grep -v listening /tmp/py.log | tail -n 1)" "$want:$p"
	done
}

run_all no
insmod "$(ko toa)"
run_all yes
[ "$(toa_stat getname_toa_ok)" -ge 7 ] || fail "getname_toa_ok $(toa_stat getname_toa_ok), want 7 or more"
pkill -f 'toa-lb --queue' || true
toa_table_drains
rmmod toa
