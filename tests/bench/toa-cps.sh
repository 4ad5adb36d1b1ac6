# Connections per second accepted by a server (tools/conn-rate: accept + getpeername + close per
# connection, clients likewise compiled), with toa loaded against without, in the same VM run, alternating runs and taking
# the median of each. Two setups: a direct veth link (no option: what every TCP connection pays
# for the probes) and through the FULLNAT test balancer (every connection carries the option).
. /src/tests/vm/lib.sh
SECS=${BENCH_SECS:-8}
ROUNDS=${BENCH_ROUNDS:-4}
topo_3
fullnat_lb 0
toa_lb_start 0
# The balancer forgets closed connections at once, as LVS does (its own short FIN_WAIT/TIME_WAIT
# timeouts): with conntrack's 120 s, tens of thousands of entries pile up in rtr over the run and
# later rounds stall on them (in-guest rounds 30% slower, on both sides by turns).
ip netns exec rtr sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_time_wait=1
ip netns exec rtr sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_close=1
rate=/src/target/release/conn-rate
[ -x $rate ] || fail "$rate not built (make bench builds it)"
ip netns exec srv $rate --serve 8080 >/tmp/bench-server.log 2>&1 &
# Waited for, not slept on: under icount a guest waiting on the host's first read of the
# binary sees its clock race ahead.
wait_until 30 'server: $(cat /tmp/bench-server.log)' grep -q serving /tmp/bench-server.log

# cps ADDR PORT: connections per second from 2 client threads over $SECS seconds.
cps() { ip netns exec cli $rate "$1" "$2" "$SECS" 2; }


# with_toa ADDR PORT: cps with toa loaded; fails unless the connections did (or, to the server's
# own address, did not) carry the option.
with_toa() {
	insmod "$(ko toa)"
	cps "$1" "$2"
	local n
	n=$(toa_stat syn_recv_sock_toa)
	rmmod toa
	case $1:$n in
	10.0.2.2:0 | 10.0.9.100:[1-9]*) ;;
	*) fail "to $1: $n connections with the option" ;;
	esac
}

bench() { # bench NAME ADDR PORT
	local base=() ours=() i
	# Unmeasured runs first, until two in a row agree within 3% (at most 8): a fixed warm-up
	# left the first measured rounds, of whichever side ran first, on the slope below.
	local prev=0 cur warm=()
	for i in 1 2 3 4 5 6 7 8; do
		cur=$(cps "$2" "$3")
		warm+=("$cur")
		awk -v a="$prev" -v b="$cur" 'BEGIN { exit !(a > 0 && (a - b) ^ 2 < (0.03 * a) ^ 2) }' && break
		prev=$cur
	done
	with_toa "$2" "$3" >/dev/null
	note "$1: warm-up ${warm[*]}"
	# ABBA order, so that drift within the run (e.g. TIME_WAIT sockets piling up) weighs on
	# both sides alike.
	for i in $(seq "$ROUNDS"); do
		if [ $((i % 2)) = 1 ]; then
			base+=("$(cps "$2" "$3")")
			ours+=("$(with_toa "$2" "$3")")
		else
			ours+=("$(with_toa "$2" "$3")")
			base+=("$(cps "$2" "$3")")
		fi
	done
	local b o
	b=$(printf '%s\n' "${base[@]}" | median)
	o=$(printf '%s\n' "${ours[@]}" | median)
	note "$1: without toa ${base[*]}; with toa ${ours[*]}"
	report "$1" "connections/s" "$o" "$b"
}
# Whichever figure runs second starts at half its rate and climbs to full over about a minute
# of its traffic (waiting for the first figure's TIME_WAIT sockets to expire did not help); the
# warm-up above runs until it is there.
bench toa_cps_fullnat 10.0.9.100 80
bench toa_cps_direct 10.0.2.2 8080
