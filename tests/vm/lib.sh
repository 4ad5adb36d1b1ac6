# Helpers for VM test cases (sourced). Each case is a bash script run as root in the guest; it
# exits 0 to pass, 77 to skip, anything else to fail. Its output goes to its log.
set -euo pipefail

# Path of one of our modules' .ko, built by 'make ref'.
ko() { echo "/src/$1/$1.ko"; }

fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "# $*"; }

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
