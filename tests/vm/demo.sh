# What `make demo` shows inside the VM: each module doing its job with real traffic between
# network namespaces, next to what the stock kernel does, then bad parameters refused and a clean
# unload. Every figure is printed with the value expected of it and "ok" or "OFF"; the VM test
# demo-figures runs this script and fails on any "OFF", so the demo cannot rot.
# DEMO_SECS: seconds of traffic per measurement (default 6).
set -u
. /src/tests/vm/lib.sh
. /src/tests/vm/imq-lib.sh
# The demo shows refusals: a failing command is not the end (lib.sh sets -e); what matters is in
# the figures.
set +e +o pipefail
SECS=${DEMO_SECS:-6}
start=$(date +%s)
figures=0
off=0

heading() { printf '\n== %s\n' "$*"; }
# say CMD...: show a command, run it, show what it printed (indented).
say() {
	echo "  \$ $*"
	"$@" 2>&1 | sed 's/^/    /'
}
# verdict OK: V becomes "ok" if OK is 1, else "OFF"; both are counted (not in a subshell).
verdict() {
	figures=$((figures + 1))
	V=ok
	if [ "$1" != 1 ]; then
		V=OFF
		off=$((off + 1))
	fi
}
# close_to VALUE EXPECTED TOLERANCE: 1 if VALUE is within TOLERANCE (a fraction) of EXPECTED.
close_to() { awk -v v="$1" -v e="$2" -v t="$3" 'BEGIN { print (v >= e * (1 - t) && v <= e * (1 + t)) ? 1 : 0 }'; }
# both_ok A B: 1 if A and B are 1.
both_ok() { [ "$1" = 1 ] && [ "$2" = 1 ] && echo 1 || echo 0; }

echo "kernel $(uname -r) ($(uname -v)): the stock Debian build, unmodified"

# --- sch_htb_rs -----------------------------------------------------------------------------
heading "sch_htb_rs: the HTB HOWTO's example, stock htb and htb_rs side by side"
# One client namespace with two links: w1 shaped by htb, w2 by htb_rs; the same tree on each.
htb_rs_setup
ip netns add hc
# The mail flows bind source port 25 each time; a client socket that closed first would hold it
# in TIME_WAIT for a minute (bind: "Address already in use", seen on the slow debug kernel), so
# this namespace keeps none.
ip netns exec hc sysctl -qw net.ipv4.tcp_max_tw_buckets=0
for i in 1 2; do
	ip netns add hs$i
	ip link add w$i netns hc type veth peer name e0 netns hs$i
	ip -n hc addr add 10.8.$i.1/24 dev w$i
	ip -n hs$i addr add 10.8.$i.2/24 dev e0
	ip -n hc link set w$i up
	ip -n hs$i link set e0 up
	ip -n hs$i link set lo up
	iperf_server hs$i 80
	iperf_server hs$i 5201
	iperf_server hs$i 5202
done
# tree DEV KIND: the HOWTO's commands, as written there.
tree() {
	local t="ip netns exec hc tc" d=$1 k=$2
	$t qdisc add dev "$d" root handle 1: "$k" default 30
	$t class add dev "$d" parent 1: classid 1:1 "$k" rate 6mbit burst 15k
	$t class add dev "$d" parent 1:1 classid 1:10 "$k" rate 5mbit burst 15k
	$t class add dev "$d" parent 1:1 classid 1:20 "$k" rate 3mbit ceil 6mbit burst 15k
	$t class add dev "$d" parent 1:1 classid 1:30 "$k" rate 1kbit ceil 6mbit burst 15k
	$t qdisc add dev "$d" parent 1:10 handle 10: sfq perturb 10
	$t qdisc add dev "$d" parent 1:20 handle 20: sfq perturb 10
	$t qdisc add dev "$d" parent 1:30 handle 30: sfq perturb 10
	$t filter add dev "$d" protocol ip parent 1:0 prio 1 u32 match ip dport 80 0xffff flowid 1:10
	$t filter add dev "$d" protocol ip parent 1:0 prio 1 u32 match ip sport 25 0xffff flowid 1:20
}
tree w1 htb 2>&1 | sed 's/^/  /'
tree w2 htb_rs 2>&1 | sed 's/^/  /'
echo "  root 1: default 30; 1:1 rate 6mbit; 1:10 web (dport 80) rate 5mbit; 1:20 mail (sport 25)"
echo "  rate 3mbit ceil 6mbit; 1:30 rate 1kbit ceil 6mbit; sfq leaves; u32 filters. Uploads of"
echo "  ${SECS} s over veth, TCP goodput in Mbit/s (1448 payload bytes per 1514 the qdisc counts)."
# flows WHAT PORT: web (unless WHAT is mail) and mail uploads through both links at once, mail
# to server port PORT (another each time: the last connection's 4-tuple is in TIME_WAIT); sets
# web1 web2 mail1 mail2.
flows() {
	local i pids=()
	for i in 1 2; do
		if [ "$1" != mail ]; then
			iperf_bg hc 10.8.$i.2 "$SECS" /tmp/web$i.json -p 80
			pids+=($!)
		fi
		iperf_bg hc 10.8.$i.2 "$SECS" /tmp/mail$i.json -p "$2" -B 10.8.$i.1 --cport 25
		pids+=($!)
	done
	wait "${pids[@]}"
	for i in 1 2; do
		[ "$1" = mail ] || eval "web$i=\$(mbit /tmp/web$i.json)"
		eval "mail$i=\$(mbit /tmp/mail$i.json)"
	done
}
GOODPUT_ETH=$(awk 'BEGIN { printf "%.4f", 1448 / 1514 }')
# hrow LABEL RATE_MBIT HTB HTB_RS: a row; ok if both are within 10% of the rate's goodput and
# htb_rs within 7% of htb.
hrow() {
	local e ok
	e=$(awk -v r="$2" -v g="$GOODPUT_ETH" 'BEGIN { printf "%.2f", r * g }')
	ok=$(both_ok "$(both_ok "$(close_to "$3" "$e" 0.10)" "$(close_to "$4" "$e" 0.10)")" \
		"$(close_to "$4" "$3" 0.07)")
	verdict "$ok"
	printf '  %-36s %8s %8.2f %8.2f  %s\n' "$1" "$e" "$3" "$4" "$V"
}
printf '\n  %-36s %8s %8s %8s\n' "" expected htb htb_rs
flows both 5201
hrow "web (1:10) and mail at once: web" 5 "$web1" "$web2"
hrow "                             mail" 3 "$mail1" "$mail2"
flows mail 5202
hrow "mail alone, borrowing up to ceil" 6 "$mail1" "$mail2"
echo
echo "  htb_rs's classes afterwards (tc -s class show dev w2):"
ip netns exec hc tc -s class show dev w2 | awk '/^class/ { c = $3 " " $4 " " $5 } /Sent/ { printf "    %-18s sent %s bytes, %s packets\n", c, $2, $4 }'
# refused CMD...: CMD must fail with a message ("Error: ..." from extack, or the kernel log's
# line for iptables); shows both.
refused() {
	local rc=0 out
	out=$("$@" 2>&1) || rc=$?
	echo "  \$ ${*#ip netns exec * }"
	sed 's/^/    /' <<<"$out"
	verdict "$([ $rc -ne 0 ] && [ -n "$out" ] && echo 1 || echo 0)"
	printf '    %-60s %s\n' "refused (exit status $rc)" "$V"
}
echo
echo "  bad input: a class that a filter points at cannot be deleted"
refused ip netns exec hc tc class del dev w2 classid 1:10

# --- imq ------------------------------------------------------------------------------------
heading "imq: the tc HOWTO's imq example: two hosts downloading through imq0 at once"
# As installed (`make install`): the modules in a module tree, where the kernel's own module
# requests find them (the VM's root is read-only, so a staged tree and kernel.modprobe point
# there). Nothing has loaded x_tables in this boot.
imq_setup
DESTDIR=/tmp/demo-root /src/tools/install/install install >/dev/null 2>&1 ||
	echo "  (install into the staged tree failed)"
printf '#!/bin/sh\n%s "$@" 2>/dev/null || exec %s -d /tmp/demo-root "$@"\n' \
	"$(command -v modprobe)" "$(command -v modprobe)" >/tmp/modprobe-demo
chmod 755 /tmp/modprobe-demo
oldmodprobe=$(cat /proc/sys/kernel/modprobe)
echo /tmp/modprobe-demo >/proc/sys/kernel/modprobe
echo "  x_tables loaded before imq: $(grep -q '^x_tables ' /proc/modules && echo yes || echo no)"
say insmod "$(ko imq)"
for d in /proc/sys/net/ipv6/conf/imq*; do echo 1 >"$d/disable_ipv6"; done
topo_3
ip -n cli addr add 10.0.1.3/24 dev c0
iperf_server cli 5201
iperf_server cli 5202
ip link set imq0 up
tc qdisc add dev imq0 root handle 1: htb default 20
tc class add dev imq0 parent 1: classid 1:1 htb rate 2mbit burst 15k
tc class add dev imq0 parent 1:1 classid 1:10 htb rate 1mbit
tc class add dev imq0 parent 1:1 classid 1:20 htb rate 1mbit
tc qdisc add dev imq0 parent 1:10 handle 10: pfifo
tc qdisc add dev imq0 parent 1:20 handle 20: sfq
tc filter add dev imq0 parent 1:0 protocol ip prio 1 u32 match ip dst 10.0.1.2/32 flowid 1:10
echo "  imq0: htb 1:1 2mbit; 1:10 1mbit (pfifo) for host A 10.0.1.2 by u32, 1:20 1mbit (sfq) by default"
say ip netns exec rtr iptables -t mangle -A PREROUTING -i r1 -j IMQ --todev 0
echo "  the rule made the kernel load the target's module: $(grep -E '^(xt_IMQ|imq|x_tables) ' /proc/modules | awk '{ printf "%s%s", s, $1; s = ", " }')"
iperf_bg srv 10.0.1.2 "$SECS" /tmp/a.json -p 5201
pa=$!
iperf_bg srv 10.0.1.3 "$SECS" /tmp/b.json -p 5202
pb=$!
wait $pa $pb
a=$(mbit /tmp/a.json)
b=$(mbit /tmp/b.json)
e=$(expect 1)
printf '\n  %-36s %8s %8s\n' "downloads at once, Mbit/s" expected imq
verdict "$(close_to "$a" "$e" 0.08)"
printf '  %-36s %8s %8.2f  %s\n' "host A 10.0.1.2 (1:10, 1mbit)" "$e" "$a" "$V"
verdict "$(close_to "$b" "$e" 0.08)"
printf '  %-36s %8s %8.2f  %s\n' "host B 10.0.1.3 (1:20, 1mbit)" "$e" "$b" "$V"
echo
echo "  tc -s class show dev imq0:"
tc -s class show dev imq0 | awk '/^class/ { c = $3 " " $4 " " $5 } /Sent/ { printf "    %-18s sent %s bytes, %s packets, dropped %s\n", c, $2, $4, $7 + 0 }'
echo
echo "  bad input: a rule for a device imq does not have (numdevs=2)"
refused ip netns exec rtr iptables -t mangle -A PREROUTING -j IMQ --todev 5
echo "    kernel log: $(dmesg | grep 'xt_IMQ: rule refused' | tail -n1 | sed 's/^\[[^]]*\] //')"
ip netns exec rtr iptables -t mangle -F

# --- toa ------------------------------------------------------------------------------------
heading "toa: a connection through a FULLNAT balancer; what the server's getpeername() says"
# rtr becomes the balancer: the VIP 10.0.9.100:80 goes to the server's port 8080 with the
# balancer's own address as source, and the test balancer puts the client's address in TCP
# option 254.
fullnat_lb 0
toa_lb_start 0
# peer_of: one connection from the client to the VIP; prints "client PORT peer ADDR:PORT".
peer_of() {
	local out port
	peer_server srv 8080 4
	out=$(client_connect cli 10.0.9.100 80)
	port=$(awk '/^local/ { print $3 }' <<<"$out")
	sleep 0.3
	echo "$port $(awk '/^peer/ { print $2 ":" $3 }' /tmp/server.log)"
}
read -r p1 without <<<"$(peer_of)"
say insmod "$(ko toa)"
read -r p2 with <<<"$(peer_of)"
printf '\n  %-24s %-28s %-22s\n' "server's getpeername()" expected seen
verdict "$([ "${without%:*}" = 10.0.2.1 ] && echo 1 || echo 0)"
printf '  %-24s %-28s %-22s %s\n' "without toa" "10.0.2.1:* (the balancer)" "$without" "$V"
verdict "$([ "$with" = "10.0.1.2:$p2" ] && echo 1 || echo 0)"
printf '  %-24s %-28s %-22s %s\n' "with toa" "10.0.1.2:$p2 (the client)" "$with" "$V"
pkill -f 'toa-lb --queue' || true

# --- unload, bad parameters -----------------------------------------------------------------
heading "unload, with traffic just stopped"
for ns in hc hs1 hs2 cli rtr srv; do ip netns del $ns 2>/dev/null; done
pkill iperf3
sleep 0.5
dmesg -c >/dev/null
say rmmod imq toa sch_htb_rs
for _ in $(seq 50); do rmmod xt_IMQ 2>/dev/null && break; sleep 0.2; done
dmesg | grep -E 'imq: unloaded|TOA: .*unload' | sed 's/^\[[^]]*\] /  /'
left=$(grep -E '^(imq|xt_IMQ|toa|sch_htb_rs) ' /proc/modules | cut -d' ' -f1 | tr '\n' ' ')
verdict "$([ -z "$left" ] && echo 1 || echo 0)"
printf '  %-60s %s\n' "modules left: ${left:-none}" "$V"
echo "$oldmodprobe" >/proc/sys/kernel/modprobe

heading "bad parameters are refused, each with its own message"
# badparam REGEX CMD...: a load that must fail, with a kernel log line matching REGEX.
badparam() {
	dmesg -c >/dev/null
	say "${@:2}"
	local log
	log=$(dmesg | grep -E -- "$1" | tail -n1 | sed 's/^\[[^]]*\] //')
	verdict "$([ -n "$log" ] && ! grep -q "^$(basename "$3" .ko) " /proc/modules && echo 1 || echo 0)"
	printf '    %-60s %s\n' "kernel log: ${log:-(none)}" "$V"
}
badparam 'imq: numdevs=99 is out of range' insmod "$(ko imq)" numdevs=99
badparam 'TOA: trusted=.* refused' insmod "$(ko toa)" trusted=10.0.0.0/40
badparam 'sch_htb_rs: .*htb_rate_est' insmod "$(ko sch_htb_rs)" htb_rate_est=maybe

echo
if [ $off -eq 0 ]; then
	echo "demo: $figures figures, all as expected ($(($(date +%s) - start)) s)"
else
	echo "demo: $off of $figures figures OFF ($(($(date +%s) - start)) s)"
fi
