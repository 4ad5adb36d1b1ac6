# Helpers for VM test cases (sourced). Each case is a bash script run as root in the guest; it
# exits 0 to pass, 77 to skip, anything else to fail. Its output goes to its log.
set -euo pipefail

# grep -q for the end of a pipeline: reads all its input. With pipefail, `cmd | grep -q x`
# fails when grep exits at the first match while cmd still writes (cmd dies of SIGPIPE).
grep_q() { grep "$@" >/dev/null; }

# Path of one of our modules' .ko, built by 'make ref'.
# ko MODULE: the built module's path (xt_IMQ is built in imq/).
ko() {
	case $1 in
	xt_IMQ) echo /src/imq/xt_IMQ.ko ;;
	*) echo "/src/$1/$1.ko" ;;
	esac
}

# xt_imq_load: the IMQ target's module, which `-j IMQ` rules need (iptables autoloads it from an
# installed tree with its dependency x_tables; the tests run from the build tree, so insmod).
xt_imq_load() {
	grep -q '^xt_IMQ ' /proc/modules && return 0
	modprobe x_tables
	insmod "$(ko xt_IMQ)"
}

# xt_imq_unload: unload the target once no rule holds it (retried: nft frees rules after a
# grace period).
xt_imq_unload() {
	for _ in $(seq 50); do
		[ -d /sys/module/xt_IMQ ] || return 0
		rmmod xt_IMQ 2>/dev/null && return 0
		sleep 0.2
	done
	fail "xt_IMQ does not unload once its rules are gone: refcnt $(cat /sys/module/xt_IMQ/refcnt)"
}

fail() { echo "FAIL: $*" >&2; exit 1; }
# skip REASON: the kernel lacks something the test needs (reported as SKIP with the reason).
skip() { echo "SKIP: $*" >&2; exit 77; }
# kernel_has MODULE: built in, loaded, or loadable (flavours differ: Debian's rt flavour has no
# legacy xtables, CONFIG_NETFILTER_XTABLES_LEGACY).
kernel_has() { [ -d "/sys/module/$1" ] || modprobe -n -q "$1" 2>/dev/null; }

# htb_rs_setup: htb_rs and htb side by side: the tc plugin q_htb_rs.so (built by tests/run and
# make bench: cargo build --release -p tc-htb-rs) copied where TC_LIB_DIR points (/src is
# read-only, and tc wants the kind's name), sch_htb_rs inserted, sch_htb loaded.
htb_rs_setup() {
	local so=/src/target/release/libq_htb_rs.so
	[ -e "$so" ] || fail "$so not built (cargo build --release -p tc-htb-rs)"
	mkdir -p /tmp/tcplug
	cp "$so" /tmp/tcplug/q_htb_rs.so
	export TC_LIB_DIR=/tmp/tcplug
	insmod "$(ko sch_htb_rs)"
	modprobe sch_htb
}
note() { echo "# $*"; }

# wait_until SECONDS WHAT CMD...: poll CMD every 0.25 s until it succeeds; fail with WHAT
# (evaluated again at the deadline, so it may show the state then) after SECONDS.
wait_until() {
	local deadline=$(($(date +%s%N) + $1 * 1000000000)) what=$2
	shift 2
	until "$@"; do
		[ "$(date +%s%N)" -lt $deadline ] || fail "$(eval "echo \"$what\"")"
		sleep 0.25
	done
}

# listening NS PORT: something in namespace NS listens on TCP PORT.
listening() { [ -n "$(ip netns exec "$1" ss -ltnH "sport = :$2")" ]; }

# expect_fail DESCRIPTION CMD...: CMD must fail.
expect_fail() {
	local what=$1; shift
	if "$@"; then fail "$what: '$*' succeeded"; fi
	note "refused as expected: $what"
}

# dmesg_has REGEX: the kernel log since the test started contains REGEX.
dmesg_has() {
	dmesg | grep -E -q -- "$1" || fail "dmesg lacks /$1/; dmesg tail: $(dmesg | tail -n 5)"
}

# Three hosts in namespaces: cli (10.0.1.2) - rtr (10.0.1.1 | 10.0.2.1) - srv (10.0.2.2),
# with IPv6 2001:db8:1::/64 and 2001:db8:2::/64 alongside.
topo_3() {
	local ns
	for ns in cli rtr srv; do
		ip netns add "$ns"
		ip -n "$ns" link set lo up
	done
	ip link add c0 netns cli type veth peer name r0 netns rtr
	ip link add r1 netns rtr type veth peer name s0 netns srv
	ip -n cli addr add 10.0.1.2/24 dev c0
	ip -n rtr addr add 10.0.1.1/24 dev r0
	ip -n rtr addr add 10.0.2.1/24 dev r1
	ip -n srv addr add 10.0.2.2/24 dev s0
	ip -n cli addr add 2001:db8:1::2/64 dev c0 nodad
	ip -n rtr addr add 2001:db8:1::1/64 dev r0 nodad
	ip -n rtr addr add 2001:db8:2::1/64 dev r1 nodad
	ip -n srv addr add 2001:db8:2::2/64 dev s0 nodad
	ip -n cli link set c0 up
	ip -n rtr link set r0 up
	ip -n rtr link set r1 up
	ip -n srv link set s0 up
	ip -n cli route add default via 10.0.1.1
	ip -n srv route add default via 10.0.2.1
	ip -n cli -6 route add default via 2001:db8:1::1
	ip -n srv -6 route add default via 2001:db8:2::1
	ip netns exec rtr sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
}

# iperf_mbit NS_CLIENT SERVER_ADDR SECONDS [iperf3 args...]: TCP goodput in Mbit/s as received
# by the server (an iperf3 server must be running in the server's namespace).
iperf_mbit() {
	local ns=$1 addr=$2 secs=$3; shift 3
	ip netns exec "$ns" iperf3 -c "$addr" -t "$secs" -J "$@" >/tmp/iperf.json ||
		fail "iperf3 to $addr failed: $(tail -n 5 /tmp/iperf.json)"
	python3 -c 'import json,sys; d=json.load(open("/tmp/iperf.json")); print("%.4f" % (d["end"]["sum_received"]["bits_per_second"]/1e6))'
}

# within VALUE LOW HIGH: LOW <= VALUE <= HIGH (floats).
within() {
	awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v >= lo && v <= hi) }'
}

# fullnat_lb [QUEUE]: make rtr a FULLNAT balancer: VIP 10.0.9.100:80 / [2001:db8:9::100]:80 is
# DNATed to the server's port 8080 and SNATed to the balancer's own address, and the client's
# first four packets (SYN, the handshake's final ACK, ...) go through NFQUEUE QUEUE, where
# toa-lb inserts the option; queueing more than the one packet keeps them in order. Only
# connections to the VIP are balanced: the same server reached at its own address is a direct
# connection, without the option.
fullnat_lb() {
	local q=${1:-0}
	ip -n cli route add 10.0.9.0/24 via 10.0.1.1 2>/dev/null || true
	ip -n cli -6 route add 2001:db8:9::/64 via 2001:db8:1::1 2>/dev/null || true
	if kernel_has xt_nat; then
		ip netns exec rtr iptables -t nat -A PREROUTING -d 10.0.9.100 -p tcp --dport 80 \
			-j DNAT --to-destination 10.0.2.2:8080
		ip netns exec rtr iptables -t nat -A POSTROUTING -o r1 -p tcp -d 10.0.2.2 --dport 8080 \
			-j SNAT --to-source 10.0.2.1
		ip netns exec rtr ip6tables -t nat -A PREROUTING -d 2001:db8:9::100 -p tcp --dport 80 \
			-j DNAT --to-destination '[2001:db8:2::2]:8080'
		ip netns exec rtr ip6tables -t nat -A POSTROUTING -o r1 -p tcp -d 2001:db8:2::2 --dport 8080 \
			-j SNAT --to-source 2001:db8:2::1
	else
		# Debian's rt flavour has no xt_nat (the DNAT/SNAT targets); the same NAT in nftables.
		ip netns exec rtr nft -f - <<-'EOF'
			table inet fullnat {
				chain pre {
					type nat hook prerouting priority dstnat; policy accept;
					ip daddr 10.0.9.100 tcp dport 80 dnat ip to 10.0.2.2:8080
					ip6 daddr 2001:db8:9::100 tcp dport 80 dnat ip6 to [2001:db8:2::2]:8080
				}
				chain post {
					type nat hook postrouting priority srcnat; policy accept;
					oifname "r1" ip daddr 10.0.2.2 tcp dport 8080 snat ip to 10.0.2.1
					oifname "r1" ip6 daddr 2001:db8:2::2 tcp dport 8080 snat ip6 to 2001:db8:2::1
				}
			}
		EOF
	fi
	local t vip
	for t in iptables ip6tables; do
		vip=10.0.9.100
		[ $t = ip6tables ] && vip=2001:db8:9::100
		ip netns exec rtr $t -t mangle -A FORWARD -i r0 -p tcp \
			-m conntrack --ctorigdst $vip --ctorigdstport 80 \
			-m connbytes --connbytes 1:4 --connbytes-dir original --connbytes-mode packets \
			-j NFQUEUE --queue-num "$q"
	done
}

# toa_lb_start [QUEUE [PLACE [VARIANT]]]: run the test balancer's option inserter in rtr
# (log: /tmp/toa-lb.log); PLACE is ack (default), syn or both; VARIANT good (default) or a
# broken option (bad-len, truncated, zero-len, repeated).
toa_lb_start() {
	local bin=/src/target/release/toa-lb
	[ -x "$bin" ] || fail "$bin not built (tests/run builds it with cargo)"
	ip netns exec rtr "$bin" --queue "${1:-0}" --place "${2:-ack}" --variant "${3:-good}" \
		>/tmp/toa-lb.log 2>&1 &
	for _ in $(seq 50); do
		grep -q 'bound to queue' /tmp/toa-lb.log && return 0
		sleep 0.1
	done
	fail "toa-lb did not start: $(cat /tmp/toa-lb.log)"
}

# toa_lb_loopback PORT QUEUE: in the current namespace, the handshake-completing ACK of every
# loopback connection to PORT goes through NFQUEUE QUEUE to the test balancer's option inserter
# (its own address and port as the client's), run on CPU 0 (the loops that use it are pinned
# there: with the inserter free to run on the other CPU, rounds spread 2.5% by its wake-ups).
# Sets TOA_LB_PID. Its line per packet goes nowhere (writing it would cost every connection a
# write); it has started once the queue is bound (nfnetlink_queue lists it); errors in
# /tmp/toa-lb-loopback.log.
toa_lb_loopback() {
	local bin=/src/target/release/toa-lb
	[ -x "$bin" ] || fail "$bin not built"
	iptables -t mangle -A OUTPUT -o lo -p tcp --dport "$1" --tcp-flags SYN,ACK,FIN,RST ACK \
		-m connbytes --connbytes 2:2 --connbytes-dir original --connbytes-mode packets \
		-j NFQUEUE --queue-num "$2"
	taskset -c 0 "$bin" --queue "$2" >/dev/null 2>/tmp/toa-lb-loopback.log &
	TOA_LB_PID=$!
	for _ in $(seq 50); do
		awk -v q="$2" '$1 == q { f = 1 } END { exit !f }' /proc/net/netfilter/nfnetlink_queue \
			2>/dev/null && return 0
		sleep 0.1
	done
	fail "toa-lb did not start: $(cat /tmp/toa-lb-loopback.log)"
}

# peer_server NS PORT FAMILY [dual]: a TCP server in NS that accepts one connection and prints
# the address accept() returned and the one getpeername() returns, then what the client sent.
# With ULP=tls in the environment it first attaches the kTLS ULP to the accepted socket and
# prints "ulp ok" or "ulp error ...".
peer_server() {
	ip netns exec "$1" python3 -u -c '
import socket, sys
fam = socket.AF_INET6 if sys.argv[2] == "6" else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if fam == socket.AF_INET6 and len(sys.argv) > 3:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", int(sys.argv[1])))
s.listen(8)
print("listening", flush=True)
c, a = s.accept()
import os
if os.environ.get("ULP"):
    try:
        c.setsockopt(socket.IPPROTO_TCP, 31, os.environ["ULP"].encode())  # TCP_ULP
        print("ulp ok")
    except OSError as e:
        print("ulp error", e)
p = c.getpeername()
print("accept", a[0], a[1])
print("peer", p[0], p[1])
print("data", c.recv(100).decode())
' "$2" "$3" ${4:-} >/tmp/server.log 2>&1 &
	for _ in $(seq 50); do
		grep -q listening /tmp/server.log && return 0
		sleep 0.1
	done
	fail "server did not start: $(cat /tmp/server.log)"
}

# client_connect NS ADDR PORT: connect, print "local ADDR PORT", send a line, wait for the
# server to close, close.
client_connect() {
	ip netns exec "$1" python3 -c '
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
l = s.getsockname()
print("local", l[0], l[1])
s.sendall(b"hello")
s.recv(1)
s.close()
' "$2" "$3"
}

# pcap_has_toa PCAP ADDR PORT: some TCP segment in PCAP carries option 254 with ADDR and PORT
# (the option bytes: 254, length, port, address, all in network order).
pcap_has_toa() {
	python3 - "$@" <<'PY'
import ipaddress, struct, sys
pcap, addr, port = sys.argv[1], ipaddress.ip_address(sys.argv[2]), int(sys.argv[3])
want = bytes([254, 8 if addr.version == 4 else 20]) + struct.pack("!H", port) + addr.packed
data = open(pcap, "rb").read()
off, hits = 24, 0
while off + 16 <= len(data):
    incl = struct.unpack("<I", data[off + 8:off + 12])[0]
    if want in data[off + 16:off + 16 + incl]:
        hits += 1
    off += 16 + incl
print(hits)
sys.exit(0 if hits else 1)
PY
}

# nstat_srv NAME: a counter of the srv namespace's /proc/net/{snmp,netstat} (absolute, without
# touching nstat's history).
nstat_srv() { ip netns exec srv nstat -asz "$1" | awk -v n="$1" '$1 == n { print $2 }'; }

# toa_stat NAME: the total of one row of /proc/net/toa_stats.
# toa_through_lb VARIANT PLACE WANT_PEER_V4 WANT_PEER_V6: restarts the test balancer (queue 0)
# with VARIANT in PLACE, connects through it over IPv4 and IPv6 (topo_3 with fullnat_lb 0) and
# checks the peer the server saw and that the data arrived.
toa_through_lb() {
	local out port
	pkill -f 'toa-lb --queue' || true
	sleep 0.2
	toa_lb_start 0 "$2" "$1"
	peer_server srv 8080 4
	out=$(client_connect cli 10.0.9.100 80)
	port=$(echo "$out" | awk '/^local/ {print $3}')
	sleep 0.3
	grep -qx "peer $3 $port" /tmp/server.log || fail "$1/$2: peer is not $3: $(cat /tmp/server.log)"
	grep -qx "data hello" /tmp/server.log || fail "$1/$2: data lost"
	peer_server srv 8080 6
	out=$(client_connect cli 2001:db8:9::100 80)
	port=$(echo "$out" | awk '/^local/ {print $3}')
	sleep 0.3
	grep -qx "peer $4 $port" /tmp/server.log || fail "$1/$2: IPv6 peer is not $4: $(cat /tmp/server.log)"
}

toa_stat() { awk -v n="$1" '$1 == n { print $NF }' /proc/net/toa_stats; }

# toa_table_drains [SECONDS]: wait until toa's table is empty (its sockets and requests gone);
# fail if it is not within SECONDS (default 10).
toa_table_drains() {
	local i
	for i in $(seq $((${1:-10} * 5))); do
		[ "$(toa_stat table_entries)" -eq 0 ] && [ "$(toa_stat table_bytes)" -eq 0 ] && return 0
		sleep 0.2
	done
	cat /proc/net/toa_stats
	fail "$(toa_stat table_entries) entries ($(toa_stat table_bytes) bytes) left in toa's table"
}

# Benchmarks (tests/bench): the median of numbers given one per line.
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# report NAME UNIT OURS BASELINE: the figure's line, as `make bench` collects it.
report() {
	echo "bench $1: ours=$3 baseline=$4 ratio=$(awk -v o="$3" -v b="$4" 'BEGIN { printf "%.3f", o / b }') ($2)"
}

# abba_medians NAME BASE OURS CMD...: ROUNDS rounds of `CMD BASE` and `CMD OURS` in ABBA order
# (so drift within the run weighs on both alike); sets abba_b and abba_o to the medians, and the
# runs go in a note.
abba_medians() {
	local name=$1 bk=$2 ok=$3 base=() ours=() i
	shift 3
	for i in $(seq "$ROUNDS"); do
		if [ $((i % 2)) = 1 ]; then
			base+=("$("$@" "$bk")")
			ours+=("$("$@" "$ok")")
		else
			ours+=("$("$@" "$ok")")
			base+=("$("$@" "$bk")")
		fi
	done
	note "$name: $bk ${base[*]}; $ok ${ours[*]}"
	abba_o=$(printf '%s\n' "${ours[@]}" | median)
	abba_b=$(printf '%s\n' "${base[@]}" | median)
}

# abba NAME UNIT BASE OURS CMD...: abba_medians, reported as a figure.
abba() {
	local name=$1 unit=$2
	shift 2
	abba_medians "$name" "$@"
	report "$name" "$unit" "$abba_o" "$abba_b"
}
