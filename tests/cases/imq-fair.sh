# Issue 21, section 1: two concurrent downloads through the tc HOWTO's tree, imq against IFB in
# the same boot. Router namespace r: upstream eth0 to namespace i (172.16.0.1, the iperf3
# servers), eth1 to h1 (10.0.0.230), eth2 to h2 (10.0.2.231), forwarding on. The same tree on
# imq0 (fed by `-j IMQ --todev 0` at PREROUTING for what arrives on eth0) and on ifb0 (fed by
# an ingress matchall + mirred redirect on eth0): root htb default 20, 1:1 2mbit burst 15k,
# 1:10 and 1:20 1mbit each (pfifo, sfq), h1 to 1:10 by u32. Each host downloads with plain
# `iperf3 -c 172.16.0.1 -R -t $FAIR_SECS` (default buffers and writes, as the report: unlike
# imq-example, which limits the window to 32K and writes 8K, so that no large GSO packet and
# no deep queue ever forms), alone and then both at once, for FAIR_ROUNDS rounds (default 5)
# alternating which of imq and IFB goes first. Every iperf3 run must complete, and each
# together figure of imq must be within 5% (below) of IFB's median for that host.
# timeout: 1200
. /src/tests/vm/lib.sh
. /src/tests/vm/imq-lib.sh
ROUNDS=${FAIR_ROUNDS:-5}
SECS=${FAIR_SECS:-8}
imq_setup
imq_load
modprobe ifb numifbs=0

for ns in r i h1 h2; do
	ip netns add $ns
	ip -n $ns link set lo up
done
ip link add eth0 netns r type veth peer name eth0 netns i
ip link add eth1 netns r type veth peer name eth0 netns h1
ip link add eth2 netns r type veth peer name eth0 netns h2
ip -n r addr add 172.16.0.254/24 dev eth0
ip -n r addr add 10.0.0.1/24 dev eth1
ip -n r addr add 10.0.2.1/24 dev eth2
ip -n i addr add 172.16.0.1/24 dev eth0
ip -n h1 addr add 10.0.0.230/24 dev eth0
ip -n h2 addr add 10.0.2.231/24 dev eth0
for l in "r eth0" "r eth1" "r eth2" "i eth0" "h1 eth0" "h2 eth0"; do
	set -- $l
	ip -n $1 link set $2 up
done
ip -n i route add default via 172.16.0.254
ip -n h1 route add default via 10.0.0.1
ip -n h2 route add default via 10.0.2.1
ip netns exec r sysctl -qw net.ipv4.ip_forward=1

# tree DEV [tc args]: the HOWTO's tree on DEV.
tree() {
	local d=$1
	shift
	tc "$@" qdisc add dev $d root handle 1: htb default 20
	tc "$@" class add dev $d parent 1: classid 1:1 htb rate 2mbit burst 15k
	tc "$@" class add dev $d parent 1:1 classid 1:10 htb rate 1mbit
	tc "$@" class add dev $d parent 1:1 classid 1:20 htb rate 1mbit
	tc "$@" qdisc add dev $d parent 1:10 handle 10: pfifo
	tc "$@" qdisc add dev $d parent 1:20 handle 20: sfq
	tc "$@" filter add dev $d parent 1:0 protocol ip prio 1 u32 match ip dst 10.0.0.230/32 flowid 1:10
}
ip link set imq0 up
# Diagnosis knobs: imq0's queue length; the sender without segmentation offloads (no GSO
# packets reach the router).
[ -z "${FAIR_QLEN:-}" ] || ip link set imq0 txqueuelen "$FAIR_QLEN"
[ -z "${FAIR_NOGSO:-}" ] || ip netns exec i ethtool -K eth0 tso off gso off
tree imq0
ip -n r link add ifb0 type ifb
ip -n r link set ifb0 up
tree ifb0 -n r
note "imq0 qlen $(cat /sys/class/net/imq0/tx_queue_len), ifb0 qlen $(ip netns exec r cat /sys/class/net/ifb0/tx_queue_len)"

# mode imq|ifb|off: which device eth0's arrivals go through.
mode() {
	ip netns exec r iptables -t mangle -F PREROUTING
	tc -n r qdisc del dev eth0 ingress 2>/dev/null || true
	case $1 in
	imq) ip netns exec r iptables -t mangle -A PREROUTING -i eth0 -j IMQ --todev 0 ;;
	ifb)
		tc -n r qdisc add dev eth0 handle ffff: ingress
		tc -n r filter add dev eth0 parent ffff: matchall action mirred egress redirect dev ifb0
		;;
	esac
}

# run TAG HOSTS...: the hosts' downloads at once (h1: port 5201, h2: 5202); sets got[] to one
# goodput per host (Mbit/s, iperf3's receiver figure), or fails the test if any run fails.
run() {
	local tag=$1 h pids=() i=0 port
	shift
	got=()
	for h in "$@"; do
		port=$((5200 + ${h#h}))
		ip netns exec i timeout $((SECS + 30)) iperf3 -s -1 -p $port >/dev/null 2>&1 &
	done
	for h in "$@"; do
		wait_until 5 "no iperf3 server on $((5200 + ${h#h}))" listening i $((5200 + ${h#h}))
	done
	for h in "$@"; do
		port=$((5200 + ${h#h}))
		ip netns exec $h timeout $((SECS + 30)) iperf3 -c 172.16.0.1 -p $port -R -t "$SECS" -J \
			>/tmp/$tag-$h.json 2>&1 &
		pids+=($!)
	done
	local spid=
	if [ -n "${FAIR_SAMPLE:-}" ] && [ $# = 2 ]; then
		sample "$tag" &
		spid=$!
	fi
	for h in "$@"; do
		if wait "${pids[$i]}"; then
			got+=("$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.3f" % (d["end"]["sum_received"]["bits_per_second"] / 1e6))' /tmp/$tag-$h.json)")
		else
			cp /tmp/$tag-$h.json /out/logs/imq-fair-$tag-$h.json 2>/dev/null || true
			echo "$tag: $h's iperf3 failed: $(grep -m1 '"error"' /tmp/$tag-$h.json || tail -n 3 /tmp/$tag-$h.json)"
			failures+=("$tag-$h")
			got+=(failed)
		fi
		i=$((i + 1))
	done
	[ -z "$spid" ] || { kill $spid; wait $spid 2>/dev/null || true; }
	# A failed client's server may still wait: let it go before the next run takes its port.
	for h in "$@"; do
		port=$((5200 + ${h#h}))
		wait_until $((SECS + 35)) "the iperf3 server on $port still runs" not_listening i $port
	done
}
# sample TAG: (FAIR_SAMPLE=1, for diagnosis) every second, the senders' TCP state and the
# classes' backlogs during a together run.
sample() {
	local d=imq0 n=() t=0
	[ "${1%%-*}" = ifb ] && d=ifb0 n=(-n r)
	while :; do
		echo "## $1 t=$t"
		ip netns exec i ss -tinH state established '( sport = :5201 or sport = :5202 )' |
			paste - - | sed 's/^/##   /' | cut -c1-400
		tc "${n[@]}" -s class show dev $d | awk '$1 == "class" { c = $3 } /backlog/ { printf "##   %s backlog %s %s; ", c, $2, $3 } END { print "" }'
		sleep 1
		t=$((t + 1))
	done
}
not_listening() { ! listening "$@"; }
failures=()

dump() {
	note "state at the end:"
	tc -s qdisc show dev imq0 | sed 's/^/#   /'
	tc -n r -s qdisc show dev ifb0 | sed 's/^/#   /'
	ip -s link show imq0 | sed 's/^/#   /'
	ip netns exec i nstat -asz TcpExtTCPTimeouts TcpRetransSegs TcpExtTCPLossProbes | sed 's/^/#   i: /'
}

# leaves imq|ifb: the leaves' cumulative sent/dropped/overlimits counters, one line.
leaves() {
	local d=imq0 n=()
	[ $1 = ifb ] && d=ifb0 n=(-n r)
	tc "${n[@]}" -s qdisc show dev $d | awk '$1 == "qdisc" { q = $2 " " $3 } /Sent/ { printf "%s: %s pkts dropped %s over %s; ", q, $4, $7, $9 }'
}

declare -A res
t0=$(date +%s)
for round in $(seq "$ROUNDS"); do
	order="imq ifb"
	[ $((round % 2)) = 0 ] && order="ifb imq"
	for m in $order; do
		mode $m
		run $m-$round-a1 h1
		a1=${got[0]}
		run $m-$round-a2 h2
		a2=${got[0]}
		run $m-$round-t h1 h2
		t1=${got[0]} t2=${got[1]}
		res[$m,$round]="$a1 $a2 $t1 $t2"
		echo "round $round $m: h230 alone $a1, h231 alone $a2, together h230 $t1 h231 $t2"
		note "  $(leaves $m)"
	done
done
mode off
note "$(($(date +%s) - t0)) s for $ROUNDS rounds of ${SECS} s runs"
dump

# The median of IFB's together figures per host; imq's each within 5% below.
med() { printf '%s\n' "$@" | median; }
bad=0
for k in 3 4; do
	host=h230
	[ $k = 4 ] && host=h231
	ifbs=() imqs=()
	for round in $(seq "$ROUNDS"); do
		ifbs+=("$(echo ${res[ifb,$round]} | cut -d' ' -f$k)")
		imqs+=("$(echo ${res[imq,$round]} | cut -d' ' -f$k)")
	done
	ref=$(med "${ifbs[@]}")
	note "$host together: IFB ${ifbs[*]} (median $ref); imq ${imqs[*]}"
	for v in "${imqs[@]}"; do
		awk -v v="$v" -v r="$ref" 'BEGIN { exit !(v >= 0.95 * r) }' || {
			echo "imq gave $host $v Mbit/s together, IFB $ref"
			bad=1
		}
	done
done
line=$(imq_unload)
note "$line"
[ ${#failures[@]} = 0 ] || fail "iperf3 runs failed: ${failures[*]}"
[ $bad = 0 ] || fail "imq is more than 5% below IFB for a host downloading together with the other"
