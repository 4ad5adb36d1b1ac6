# The tc HOWTO's HTB example (web 5mbit, mail 3mbit ceil 6mbit, the rest 1kbit ceil 6mbit,
# under a 6mbit parent) with real TCP flows through a router, once with the in-kernel htb and
# once with htb_rs, in the same run: each class's rate matches what HTB predicts, and htb_rs
# matches htb within 5%. Then the tree is torn down and the module removed while traffic runs.
. /src/tests/vm/lib.sh

htb_rs_setup
modprobe sch_sfq

topo_3
# Mail's flows all leave from port 25: no TIME_WAIT in the client's namespace to hold the port.
ip netns exec cli sysctl -qw net.ipv4.tcp_max_tw_buckets=0
# One server per flow and phase where they follow each other: an iperf3 server may still be
# closing the last test when the next phase's client connects ("the server is busy"); mail's
# four flows each have their own. iperf3 (3.18) dates a server's last data from its previous
# test: a slow flow's first pause in a test over 120 s after that one ended fails it "idle
# timeout for receiving data" (seen on the debug kernel, where the phases are longer); hence
# the servers' longer --rcv-timeout.
for port in 80 5202 5212 5222 5232 5203 5213; do
	ip netns exec srv iperf3 -s -D -p $port --logfile /tmp/srv-$port.log --rcv-timeout 600000
done
sleep 0.5

# The HOWTO's script, for KIND on the router's egress towards the server.
tree() {
	local kind=$1 dev=r1
	tc -n rtr qdisc del dev $dev root 2>/dev/null || true
	tc -n rtr qdisc add dev $dev root handle 1: $kind default 30
	tc -n rtr class add dev $dev parent 1: classid 1:1 $kind rate $(kbit 6000) burst 15k
	tc -n rtr class add dev $dev parent 1:1 classid 1:10 $kind rate $(kbit 5000) burst 15k
	tc -n rtr class add dev $dev parent 1:1 classid 1:20 $kind rate $(kbit 3000) ceil $(kbit 6000) burst 15k
	tc -n rtr class add dev $dev parent 1:1 classid 1:30 $kind rate 1kbit ceil $(kbit 6000) burst 15k
	tc -n rtr qdisc add dev $dev parent 1:10 handle 10: sfq perturb 10
	tc -n rtr qdisc add dev $dev parent 1:20 handle 20: sfq perturb 10
	tc -n rtr qdisc add dev $dev parent 1:30 handle 30: sfq perturb 10
	local u32="tc -n rtr filter add dev $dev protocol ip parent 1:0 prio 1 u32"
	$u32 match ip dport 80 0xffff flowid 1:10
	$u32 match ip sport 25 0xffff flowid 1:20
}

# What is measured: each class's rate on the wire, from its byte counter (what the qdisc charges:
# qdisc_pkt_len, Ethernet header included) over a 6 s window of steady traffic, timed by the
# guest's clock. The window opens 1 s after every flow of the phase is under way (under TCG an
# iperf3 client sometimes starts seconds after another). The server's goodput, as iperf3
# reports it, counts the flows' ramp and their end, which waits for iperf3's end-of-test
# message queued behind the shaped traffic: it strays by up to ~15% from run to run for htb
# and htb_rs alike. Against the counters being wrong, the server's device must have received
# what the root class says it sent over the same window (less the headers GSO replicates).
# A flow may take up to START s to get under way: on a fresh machine a phase-4 flow of htb and
# of htb_rs each made no progress for over 4 s, its send queue full.
START=10 WINDOW=6 SCALE=1 wnd=()
# The debug kernels (lockdep; KASAN) under TCG cannot carry these rates: there the guest ran out
# of CPU (a `tc -s class show` took seconds, flows of htb and htb_rs alike not under way after
# 20 s). There every rate of the tree is a quarter (SCALE=4: a 1.5mbit parent), HTB's
# predictions with it, and the flows' windows are 128 KB, so that what a flow leaves queued
# when it ends drains in seconds at those rates.
case $(uname -r) in *-debug | *-kasan) START=20 SCALE=4 wnd=(-w 128K) ;; esac
# kbit RATE_KBIT: the rate on this kernel. mbit MBIT: a figure in Mbit/s on this kernel.
kbit() { echo "$(($1 / SCALE))kbit"; }
mbit() { awk -v r="$1" -v s=$SCALE 'BEGIN { printf "%.4f", r / s }'; }

# snapshot: "t NS" (when the counters were read), "CLASSID BYTES" per class, "rx BYTES" of the
# server's device.
snapshot() {
	local t0 t1
	t0=$(date +%s%N)
	tc -n rtr -s class show dev r1 >/tmp/snap.txt
	ip netns exec srv cat /sys/class/net/s0/statistics/rx_bytes >/tmp/snap-rx.txt
	t1=$(date +%s%N)
	echo "t $(((t0 + t1) / 2))"
	awk '/^class/ { c = $3 } /^ *Sent/ && c { print c, $2; c = "" }' /tmp/snap.txt
	echo "rx $(cat /tmp/snap-rx.txt)"
}

# started SNAPSHOT CLASSID...: every class has sent 150 KB (scaled) since SNAPSHOT was taken.
started() {
	local from=$1 c
	shift
	snapshot >/tmp/snap-now.txt
	for c in "$@"; do
		awk -v c="$c" -v s=$SCALE 'NR == FNR { if ($1 == c) a = $2; next } $1 == c { exit !($2 - a >= 150000 / s) }' \
			"$from" /tmp/snap-now.txt || return 1
	done
}

# settled: the last phase's traffic is gone. A TCP flow leaves megabytes behind when its client
# ends (GSO packets make sfq's 127-packet limit megabytes, and the socket's send queue drains
# after close); while they drain the next phase would share the parent with them.
settled() {
	tc -n rtr -s qdisc show dev r1 >/tmp/settle-q.txt
	awk '/^qdisc/ { getline; getline; if ($2 != "0b" || $3 != "0p") bad = 1 } END { exit bad }' /tmp/settle-q.txt &&
		! ip netns exec cli ss -Htn state established | grep_q .
}

# flows PHASE NAME... : runs the named flows at once; prints "CLASSID=Mbit/s" per class and
# "rx=Mbit/s" for the server's device, over the window.
# web: to port 80 (class 1:10); mail: from port 25 (1:20); other: the rest (default 1:30).
flows() {
	local phase=$1 f pids=() classes=()
	shift
	wait_until 60 'phase $phase: the last phase'"'"'s traffic still there after 60 s: $(cat /tmp/settle-q.txt; ip netns exec cli ss -tn)' \
		settled
	snapshot >/tmp/snap-0.txt
	for f in "$@"; do
		case $f in
		web) args=(-p 80) classes+=(1:10) ;;
		mail) args=(-p $((5202 + 10 * (phase - 2 + 2 * round))) --cport 25) classes+=(1:20) ;;
		other) args=(-p $((phase == 2 ? 5203 : 5213))) classes+=(1:30) ;;
		esac
		ip netns exec cli timeout 60 iperf3 -c 10.0.2.2 -t $((START + 1 + WINDOW + 1)) -J "${wnd[@]}" "${args[@]}" \
			>/tmp/flow-$f.json &
		pids+=($!)
	done
	wait_until $START 'phase $phase: not every flow of '"'$*'"' under way after $START s: $(cat /tmp/snap-now.txt; ip netns exec cli ss -tin; tc -n rtr -s qdisc show dev r1; cat /tmp/snap-0.txt)' \
		started /tmp/snap-0.txt "${classes[@]}"
	sleep 1
	snapshot >/tmp/snap-1.txt
	sleep $WINDOW
	snapshot >/tmp/snap-2.txt
	wait "${pids[@]}" || fail "an iperf3 client failed: $(grep -h -B2 -A3 '"error"' /tmp/flow-*.json; tail -n 3 /tmp/flow-*.json)
the servers' logs: $(tail -n 5 /tmp/srv-*.log)"
	awk 'NR == FNR { a[$1] = $2; next }
		$1 == "t" { ns = $2 - a["t"]; next }
		{ d[$1] = $2 - a[$1]; k[++n] = $1 }
		END { for (i = 1; i <= n; i++) printf "%s=%.3f\n", k[i], d[k[i]] * 8e3 / ns }' \
		/tmp/snap-1.txt /tmp/snap-2.txt
}

get() { sed -n "s/^$1=//p" <<<"$2"; }

declare -A res
# PHASE.CLASS measured; PHASE.rx is the server's device.
keys="1.1:10 2.1:1 2.1:20 2.1:30 3.1:10 3.1:20 4.1:30"
record() { # record KIND PHASE OUTPUT
	local c
	for c in 1:1 1:10 1:20 1:30 rx; do
		res[$1.$2.$c]=$(get "$c" "$3")
	done
	# The root class carried every packet the server's device received: the device counts a
	# GSO packet's headers once where the qdisc counts them per segment (66 of every 1514
	# bytes), and the receiving veth may count without the Ethernet header; measured 0.93-0.96.
	awk -v c="${res[$1.$2.1:1]}" -v r="${res[$1.$2.rx]}" 'BEGIN { exit !(r <= c * 1.01 && r >= c * 0.85) }' ||
		fail "$1 phase $2: class 1:1 counted ${res[$1.$2.1:1]} Mbit/s, the server's device received ${res[$1.$2.rx]}"
	note "$1 phase $2: class 1:1 ${res[$1.$2.1:1]} Mbit/s, the server's device ${res[$1.$2.rx]} Mbit/s"
}

round=0
for kind in htb htb_rs; do
	tree $kind
	tc -n rtr qdisc show dev r1 | grep_q "qdisc $kind 1: root" || fail "$kind not at the root: $(tc -n rtr qdisc show dev r1)"
	# Phase 1: web alone is held to its ceil (= rate) 5mbit.
	out=$(flows 1 web) || exit 1
	record $kind 1 "$out"
	# Phase 2: mail and the rest share the 6mbit parent; mail has 3mbit of its own and the
	# larger quantum (37500 against 1000) for the spare.
	out=$(flows 2 mail other) || exit 1
	record $kind 2 "$out"
	# Phase 3: web and mail each get their own rate (5 + 3: a parent's rate does not limit
	# children sending on their own tokens).
	out=$(flows 3 web mail) || exit 1
	record $kind 3 "$out"
	# Phase 4: the rest alone borrows up to its 6mbit ceil.
	out=$(flows 4 other) || exit 1
	record $kind 4 "$out"
	tc -n rtr -s class show dev r1 >/tmp/classes-$kind.txt
	grep -E "^class|Sent|lended" /tmp/classes-$kind.txt
	for k in $keys; do
		note "$kind phase ${k%%.*} class ${k#*.}: ${res[$kind.$k]} Mbit/s"
	done
	round=$((round + 1))
done

# What HTB predicts, within 5%: the counters are what the buckets charge, so the only error left
# is the bucket's burst over the window (15 KB in 6 s: under 0.5%) and the timing of the reads.
near() { within "$1" "$(awk -v r="$2" 'BEGIN { print r * 0.95 }')" "$(awk -v r="$2" 'BEGIN { print r * 1.05 }')"; }
near "${res[htb_rs.1.1:10]}" $(mbit 5) || fail "web alone: ${res[htb_rs.1.1:10]} Mbit/s, want $(mbit 5) Mbit/s"
near "${res[htb_rs.2.1:1]}" $(mbit 6) || fail "mail and the rest: ${res[htb_rs.2.1:1]} Mbit/s together, want the parent's $(mbit 6) Mbit/s"
within "${res[htb_rs.2.1:20]}" $(mbit 2.85) $(mbit 6.3) || fail "mail below its $(mbit 3) Mbit/s: ${res[htb_rs.2.1:20]}"
awk -v m="${res[htb_rs.2.1:20]}" -v o="${res[htb_rs.2.1:30]}" 'BEGIN { exit !(m > o) }' ||
	fail "the larger quantum did not win the spare: mail ${res[htb_rs.2.1:20]}, other ${res[htb_rs.2.1:30]}"
near "${res[htb_rs.3.1:10]}" $(mbit 5) || fail "web with mail: ${res[htb_rs.3.1:10]}, want $(mbit 5) Mbit/s"
near "${res[htb_rs.3.1:20]}" $(mbit 3) || fail "mail with web: ${res[htb_rs.3.1:20]}, want $(mbit 3) Mbit/s"
near "${res[htb_rs.4.1:30]}" $(mbit 6) || fail "the rest alone: ${res[htb_rs.4.1:30]}, want its ceil, $(mbit 6) Mbit/s"

# Side by side with the in-kernel htb, within 5%. In the shared phase only the parent's total
# is compared: how DRR splits the spare between two classes whose packets are GSO bursts of
# varying size (a turn is one packet, whatever its size) varies run to run, for htb as well.
# htb_rs is already held to what HTB predicts (above); when htb itself misses it by more (seen on
# the debug kernel: htb 4.284 of 5mbit, "htb: too many events!", htb_rs 4.993), being apart from
# htb is htb's miss, noted, not a failure.
declare -A predicted=([1.1:10]=$(mbit 5) [2.1:1]=$(mbit 6) [3.1:10]=$(mbit 5) [3.1:20]=$(mbit 3) [4.1:30]=$(mbit 6))
for k in 1.1:10 2.1:1 3.1:10 3.1:20 4.1:30; do
	a=${res[htb.$k]} b=${res[htb_rs.$k]} p=${predicted[$k]}
	awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.05 * a) }' && continue
	if awk -v a="$a" -v b="$b" -v p="$p" 'function abs(x) { return x < 0 ? -x : x }
		BEGIN { exit !(abs(a - p) > abs(b - p)) }'; then
		note "phase ${k%%.*} class ${k#*.}: htb $a Mbit/s misses HTB's $p by more than htb_rs's $b"
		continue
	fi
	fail "phase ${k%%.*} class ${k#*.}: htb_rs $b Mbit/s vs htb $a Mbit/s (more than 5% apart)"
done

# Counters: every class that carried traffic shows it; lends and borrows move as in htb.
r=$((5000 / SCALE)) # as tc prints it: 5Mbit, or 1250Kbit on the debug kernel
[ $((r % 1000)) = 0 ] && r=$((r / 1000))Mbit || r=${r}Kbit
grep -q "class htb_rs 1:10 parent 1:1 leaf 10: prio 0 rate $r ceil $r" /tmp/classes-htb_rs.txt ||
	fail "class 1:10 not shown as htb shows it: $(grep -A3 '1:10' /tmp/classes-htb_rs.txt)"
for c in 1:10 1:20 1:30 1:1; do
	sent=$(awk -v c="$c" '$0 ~ "class htb_rs "c" " { f = 1 } f && /Sent/ { print $2; exit }' /tmp/classes-htb_rs.txt)
	[ "${sent:-0}" -gt 100000 ] || fail "class $c sent ${sent:-0} bytes"
done
borrowed=$(awk '/class htb_rs 1:20 / { f = 1 } f && /lended:/ { print $4; exit }' /tmp/classes-htb_rs.txt)
[ "${borrowed:-0}" -gt 0 ] || fail "class 1:20 never borrowed: $(grep -A6 'htb_rs 1:20 ' /tmp/classes-htb_rs.txt)"

# Under traffic: delete the qdisc, then unload the module, cleanly.
tree htb_rs
ip netns exec cli timeout 20 iperf3 -c 10.0.2.2 -t 6 -p 5203 >/dev/null 2>&1 &
load=$!
sleep 2
tc -n rtr qdisc del dev r1 root || fail "could not delete the htb_rs qdisc under traffic"
tree htb_rs
sleep 1
ip link del dev r1 -n rtr 2>/dev/null || ip -n rtr link del r1 || fail "could not delete the device under traffic"
# The client's server is gone with the device: stop it rather than wait for its report.
kill $load 2>/dev/null || true
wait $load 2>/dev/null || true
rmmod sch_htb_rs || fail "rmmod sch_htb_rs failed: $(lsmod | grep sch_htb_rs)"
dmesg_has 'sch_htb_rs: unloaded'
