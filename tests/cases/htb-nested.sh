# Sharing an ancestor's spare bandwidth between subtrees, htb_rs side by side with htb in the
# same run: under a 10mbit root, two 1mbit inner classes 1:2 and 1:3 with 500kbit leaves (1:20
# under 1:2, then 1:20 and 1:21 under 1:2), every leaf offered 20 Mbit/s of UDP (8 on the
# debug kernel). As in sch_htb,
# an inner class's turn in the root's feed lasts one round of its own feed, so the subtrees
# take turns and every leaf gets one turn of the root's spare per round: with two leaves 5/5
# Mbit/s, with three 3.17/3.17/3.67 (each leaf its own 0.5, 1:30 also 1:3's unused 0.5, and
# 8 Mbit/s of spare in thirds; htb gave 4.9/4.9 and 3.27/3.27/3.43). Before that rule htb_rs
# gave one subtree the spare (10.6 against 1.2 Mbit/s); before a leaf that comes back to its
# feed in the round it was served in waited for the next round, 3.39/3.39/3.14.
. /src/tests/vm/lib.sh

htb_rs_setup
case $(uname -r) in *-debug | *-kasan) debug_kernel=1 ;; *) debug_kernel=0 ;; esac
# What each leaf is offered: well above any leaf's share. The debug kernels (lockdep; KASAN) under
# TCG cannot carry these rates: with 3 x 20 Mbit/s of UDP htb_rs's three leaves got 2.27 Mbit/s
# each of 10, and with 8 Mbit/s a leaf htb itself gave 4.19/4.22 of 5 ("htb: too many events!").
# There every rate of the tree is a fifth (SCALE=5: a 2mbit root) and each leaf is offered
# 3 Mbit/s, still 3 times the largest share; HTB's arithmetic scales alike, and htb runs the
# same scaled tree in the same boot.
offer=20M SCALE=1
[ $debug_kernel = 1 ] && offer=3M SCALE=5
kbit() { echo "$(($1 / SCALE))kbit"; } # kbit RATE_KBIT: the rate on this kernel

topo_3
# One server per flow and run: a UDP test's server stays busy a moment after its client ends.
for port in $(seq 5201 5212); do
	ip netns exec srv iperf3 -s -D -p $port
done
sleep 0.5

tree() { # tree KIND FIRST_PORT
	local kind=$1 dev=r1 u32="tc -n rtr filter add dev r1 protocol ip parent 1:0 prio 1 u32"
	tc -n rtr qdisc del dev $dev root 2>/dev/null || true
	tc -n rtr qdisc add dev $dev root handle 1: $kind default 99
	local top=$(kbit 10000) inner=$(kbit 1000) leaf=$(kbit 500)
	tc -n rtr class add dev $dev parent 1: classid 1:1 $kind rate $top ceil $top
	tc -n rtr class add dev $dev parent 1:1 classid 1:2 $kind rate $inner ceil $top
	tc -n rtr class add dev $dev parent 1:1 classid 1:3 $kind rate $inner ceil $top
	tc -n rtr class add dev $dev parent 1:2 classid 1:20 $kind rate $leaf ceil $top
	tc -n rtr class add dev $dev parent 1:2 classid 1:21 $kind rate $leaf ceil $top
	tc -n rtr class add dev $dev parent 1:3 classid 1:30 $kind rate $leaf ceil $top
	tc -n rtr class add dev $dev parent 1:1 classid 1:99 $kind rate $(kbit 100) ceil $top
	$u32 match ip dport "$2" 0xffff flowid 1:20
	$u32 match ip dport $(($2 + 1)) 0xffff flowid 1:30
	$u32 match ip dport $(($2 + 2)) 0xffff flowid 1:21
}

# snapshot: the guest clock (ns) and each class's byte counter.
snapshot() {
	local t0 t1
	t0=$(date +%s%N)
	tc -n rtr -s class show dev r1 >/tmp/nest-snap.txt
	t1=$(date +%s%N)
	echo "t $(((t0 + t1) / 2))"
	awk '/^class/ { c = $3 } /^ *Sent/ && c { print c, $2; c = "" }' /tmp/nest-snap.txt
}

declare -A res
port=5201
run() { # run KIND FLOWS
	local kind=$1 flows=$2 i pids=() c
	tree "$kind" $port
	for i in $(seq 0 $((flows - 1))); do
		ip netns exec cli iperf3 -u -b $offer -l 1400 -c 10.0.2.2 -p $((port + i)) -t 12 \
			>/tmp/nest-cli-$i.txt 2>&1 &
		pids+=($!)
	done
	# Measure over 5 s of steady traffic, from 3 s in (the buckets' bursts spent).
	sleep 3
	snapshot >/tmp/nest-a.txt
	sleep 5
	snapshot >/tmp/nest-b.txt
	for i in "${pids[@]}"; do
		wait "$i" || fail "$kind: iperf3 client failed: $(cat /tmp/nest-cli-*.txt)"
	done
	for c in 1:20 1:21 1:30; do
		res[$kind.$flows.$c]=$(awk -v c="$c" '
			$1 == "t" { t[FILENAME] = $2 } $1 == c { b[FILENAME] = $2 }
			END { printf "%.3f", (b[ARGV[2]] - b[ARGV[1]]) * 8 / ((t[ARGV[2]] - t[ARGV[1]]) / 1e9) / 1e6 }
		' /tmp/nest-a.txt /tmp/nest-b.txt)
	done
	note "$kind, $flows leaves: 1:20 ${res[$kind.$flows.1:20]}, 1:21 ${res[$kind.$flows.1:21]}, 1:30 ${res[$kind.$flows.1:30]} Mbit/s"
	port=$((port + 3))
	sleep 1
}

for flows in 2 3; do
	run htb $flows
	run htb_rs $flows
done

leaves() { [ "$1" = 2 ] && echo "1:20 1:30" || echo "1:20 1:21 1:30"; }
# expect FLOWS CLASS: what HTB's arithmetic gives the leaf (Mbit/s), as above, on this kernel's
# scale.
expect() {
	local e
	case $1.$2 in
	2.*) e=5 ;;
	3.1:30) e=3.667 ;;
	3.*) e=3.167 ;;
	esac
	awk -v e=$e -v s=$SCALE 'BEGIN { printf "%.4f", e / s }'
}
for flows in 2 3; do
	total=0
	for c in $(leaves $flows); do
		total=$(awk -v a="$total" -v b="${res[htb_rs.$flows.$c]}" 'BEGIN { print a + b }')
	done
	for c in $(leaves $flows); do
		a=${res[htb.$flows.$c]} b=${res[htb_rs.$flows.$c]}
		# Every leaf its fair part: at least 3/4 of an even split (one subtree taking the
		# spare leaves the other about a tenth).
		awk -v b="$b" -v t="$total" -v n="$flows" 'BEGIN { exit !(b >= 0.75 * t / n) }' ||
			fail "$flows leaves: $c got $b of $total Mbit/s with htb_rs"
		# What HTB's arithmetic predicts, within 5% (the bound). On the debug kernel,
		# 2-3 times slower, htb misses it too (seen: 1:21 3.930 with htb, 3.733 with htb_rs, of
		# 3.167): there a miss fails only when htb is nearer the arithmetic than htb_rs.
		e=$(expect "$flows" "$c")
		awk -v e="$e" -v b="$b" -v a="$a" -v dbg="$debug_kernel" 'BEGIN { d = e - b; if (d < 0) d = -d
			da = a - e; if (da < 0) da = -da
			exit !(d <= 0.05 * e || (dbg && da >= d)) }' ||
			fail "$flows leaves: $c got $b Mbit/s with htb_rs, HTB predicts $e (htb $a)"
		# And what htb gives it, within 15% (UDP at TCG speed moves a few % between runs),
		# unless htb itself is further from the arithmetic than htb_rs (the anchor's own
		# miss: a fresh-clone run saw htb give 4.281 of 5 while htb_rs gave 5.019).
		awk -v a="$a" -v b="$b" -v e="$e" 'BEGIN { d = a - b; if (d < 0) d = -d
			da = a - e; if (da < 0) da = -da; db = b - e; if (db < 0) db = -db
			exit !(d <= 0.15 * a || da > db) }' ||
			fail "$flows leaves: $c got $b Mbit/s with htb_rs, $a with htb"
		# (An if, not `awk && note`: as the script's last command a false test would be its
		# exit status; a CI run failed that way with every figure in bounds.)
		if awk -v a="$a" -v e="$e" 'BEGIN { d = a - e; if (d < 0) d = -d; exit !(d > 0.05 * e) }'; then
			note "$flows leaves: $c: htb itself gave $a Mbit/s, HTB's arithmetic $e (htb_rs $b)"
		fi
	done
done
