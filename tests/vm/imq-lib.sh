# Helpers for the imq VM cases (sourced after lib.sh).
#
# Goodput expectation: imq's qdisc charges the L3 length (no stab): a full-sized TCP segment on
# the 1500-byte veths is a 1500-byte IP packet carrying 1448 bytes of payload (20 IP + 20 TCP +
# 12 timestamp option), so TCP goodput through a class of rate R is 1448/1500 = 0.965 R.
GOODPUT=0.9653

# imq_setup: the iptables extension on XTABLES_LIBDIR (x_tables is not loaded here: imq does not
# need it; xt_imq_load loads it for xt_IMQ).
imq_setup() {
	local so=/src/target/release/libxt_IMQ.so
	[ -e "$so" ] || fail "$so not built (cargo build --release -p xt-imq)"
	mkdir -p /tmp/xt
	cp "$so" /tmp/xt/
	export XTABLES_LIBDIR=/tmp/xt:/usr/lib/x86_64-linux-gnu/xtables
}

# imq_load [ARGS...]: insmod imq, and xt_IMQ for the rules; the devices get no IPv6 (the stack's own router
# solicitations would be counted as foreign packets and cloud exact accounting).
imq_load() {
	insmod "$(ko imq)" "$@"
	xt_imq_load
	local d
	for d in /proc/sys/net/ipv6/conf/imq*; do
		[ -e "$d/disable_ipv6" ] && echo 1 >"$d/disable_ipv6"
	done
	return 0
}

# imq_unload: flush every mangle rule in the test namespaces, rmmod imq and xt_IMQ (retrying
# while the last rules release it) and print imq's counters line.
imq_unload() {
	local ns
	for ns in $(ip netns list | awk '{ print $1 }'); do
		ip netns exec "$ns" iptables -t mangle -F 2>/dev/null || true
		ip netns exec "$ns" ip6tables -t mangle -F 2>/dev/null || true
	done
	for _ in $(seq 50); do
		rmmod imq 2>/dev/null && break
		sleep 0.2
	done
	[ ! -d /sys/module/imq ] || fail "imq does not unload: refcnt $(cat /sys/module/imq/refcnt)"
	xt_imq_unload
	dmesg | grep 'imq: unloaded' | tail -n 1 | sed 's/^\[[^]]*\] //'
}

# counter LINE NAME: one counter of an unload line.
counter() { sed -n "s/.* $2 \([0-9]*\).*/\1/p" <<<"$1"; }

# iperf_bg NS ADDR SECS JSON [iperf3 args...]: start an iperf3 client in the background; the
# caller waits for it (see mbit for the figures). The window is 32 KB (IPERF_WINDOW): a quarter second of 1mbit, plenty to
# keep a class busy across the veths, and little enough that what is in flight when the test
# ends does not skew the figure (with autotuned buffers a 1000-packet pfifo holds tens of
# seconds of GSO packets, and iperf3's own end-of-test messages, queued behind them, time out).
iperf_bg() {
	local ns=$1 addr=$2 secs=$3 json=$4
	shift 4
	ip netns exec "$ns" iperf3 -c "$addr" -t "$secs" -w "${IPERF_WINDOW:-32K}" -l 8K -J --get-server-output "$@" \
		>"$json" 2>&1 &
}

# mbit JSON: steady goodput, Mbit/s: what the receiver (the server, which must run with -J,
# see iperf_server; the client with -R) got in its 1-second intervals after the first two
# (slow start, the queue filling) and before the last (the test's end), bytes over seconds
# (under TCG an interval is sometimes late and the next one catches up). The writes are 8 KB
# (-l, in iperf_bg) so that counts per interval are not quantized to iperf3's default 128 KB,
# a whole second at 1mbit. The JSON is kept in the run's logs.
mbit() {
	cp "$1" "/out/logs/$(basename "$0" .sh)-$(basename "$1" .json)-$(date +%s%N).json" 2>/dev/null || true
	python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
rev = d["start"]["test_start"].get("reverse", 0)
ivs = d["intervals"] if rev else d["server_output_json"]["intervals"]
ivs = [i["sum"] for i in ivs][2:-1]
print("%.4f" % (sum(i["bytes"] for i in ivs) * 8 / sum(i["seconds"] for i in ivs) / 1e6))
' "$1" || fail "no iperf3 result in $1: $(tail -n 5 "$1")"
}

# iperf_server NS PORT: an iperf3 server (JSON output, for mbit) in the background.
iperf_server() { ip netns exec "$1" iperf3 -s -D -J -p "$2"; }

# near VALUE RATE_MBIT [TOLERANCE]: VALUE within TOLERANCE (default 5%) of the goodput of a
# class of RATE_MBIT.
near() {
	awk -v v="$1" -v r="$2" -v g="$GOODPUT" -v t="${3:-0.05}" \
		'BEGIN { e = r * g; exit !(v >= e * (1 - t) && v <= e * (1 + t)) }'
}

# expect RATE_MBIT: the goodput expected of a class of RATE_MBIT.
expect() { awk -v r="$1" -v g="$GOODPUT" 'BEGIN { printf "%.3f", r * g }'; }

# wait_drained DEV [SECONDS]: the qdiscs of DEV hold no packets (their "backlog Nb Mp" lines;
# cake's per-tin table has backlog rows in bytes only).
wait_drained() {
	for _ in $(seq $((${2:-10} * 5))); do
		tc -s qdisc show dev "$1" | awk '$1 == "backlog" && $3 ~ /p$/ && $3 != "0p" { bad = 1 } END { exit bad }' && return 0
		sleep 0.2
	done
	fail "$1 still holds packets: $(tc -s qdisc show dev "$1")"
}
