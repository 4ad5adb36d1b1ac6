# The iptables extension libxt_IMQ.so (tools/xt-imq): with it stock iptables and ip6tables, both
# backends (nft through nft_compat, and legacy), add `-j IMQ --todev N` rules in mangle
# PREROUTING and POSTROUTING, list them (`IMQ: todev N`), save them (`--todev N`), restore and
# delete them; bad option values get iptables' error format and exit status 2; the kernel's
# refusals (a device imq does not have, other tables, other hooks) come back as "Invalid
# argument" with the reason in dmesg. The rules hold the target's module xt_IMQ, not imq.
. /src/tests/vm/lib.sh

so=/src/target/release/libxt_IMQ.so
[ -e "$so" ] || fail "$so not built (tests/run builds it: cargo build --release -p xt-imq)"
# iptables loads $XTABLES_LIBDIR/libxt_IMQ.so; /src is read-only, so copy it.
xtdir=/tmp/xtables-imq
mkdir -p "$xtdir"
cp "$so" "$xtdir/libxt_IMQ.so"
stock=/usr/lib/x86_64-linux-gnu/xtables
export XTABLES_LIBDIR=$xtdir:$stock
note "$(iptables -V)"

insmod "$(ko imq)" # numdevs=2: imq0 and imq1
dmesg_has 'imq: loaded: numdevs=2'
xt_imq_load
ip netns add xt
x() { ip netns exec xt "$@"; }
tools="iptables-nft ip6tables-nft"
# The legacy backend where the kernel has it (Debian's rt flavours have no legacy xtables,
# CONFIG_IP_NF_IPTABLES_LEGACY): the test then covers nft and reports SKIP for legacy at the end.
missing=
for m in ip_tables ip6_tables; do kernel_has $m || missing="$missing $m"; done
[ -z "$missing" ] && tools="$tools iptables-legacy ip6tables-legacy"
cleanup() {
	local t
	for t in $tools; do x "$t" -t mangle -F 2>/dev/null || true; done
	ip netns del xt 2>/dev/null || true
}
trap cleanup EXIT

# How many kernel log lines match REGEX (to attribute each refusal to its command).
dmesg_count() { dmesg | grep -E -c -- "$1" || true; }

# refused TOOL EXPECTED_RC OUTPUT_REGEX DMESG_REGEX ARGS...: the command fails with an exit
# status matching the glob EXPECTED_RC (kernel refusals: 1 from legacy, 4 from nft) and message, and (if DMESG_REGEX is not empty) one more kernel log line matches.
refused() {
	local t=$1 want_rc=$2 want_out=$3 want_log=$4 rc=0 out before
	shift 4
	before=$(dmesg_count "$want_log")
	out=$(x "$t" "$@" 2>&1) || rc=$?
	# shellcheck disable=SC2053
	[[ $rc == $want_rc ]] || fail "$t $*: exit status $rc, not $want_rc: $out"
	grep -E -q -- "$want_out" <<<"$out" || fail "$t $*: says '$out', not /$want_out/"
	if [ -n "$want_log" ] && [ "$(dmesg_count "$want_log")" -le "$before" ]; then
		fail "$t $*: no new /$want_log/ in dmesg; tail: $(dmesg | tail -n 3)"
	fi
	note "$t $* -> $rc: $(head -n1 <<<"$out")${want_log:+ [dmesg: $(dmesg | grep -E -- "$want_log" | tail -n1 | sed 's/^\[[^]]*\] //')]}"
}

# Without the extension iptables has no parser for the target: why the library exists.
rc=0
out=$(XTABLES_LIBDIR=$stock x iptables -t mangle -A PREROUTING -j IMQ --todev 0 2>&1) || rc=$?
[ $rc -ne 0 ] || fail "iptables without libxt_IMQ.so accepted -j IMQ"
grep -E -q 'unknown option "--todev"|load target' <<<"$out" || fail "without the extension: '$out'"
note "without the extension ($rc): $(head -n1 <<<"$out")"

for t in $tools; do
	out=$(x "$t" -t mangle -A PREROUTING -i d0 -j IMQ --todev 1 2>&1) ||
		fail "$t: adding to PREROUTING failed: $out"
	[ -z "$out" ] || fail "$t: adding a rule printed '$out'"
	x "$t" -t mangle -A POSTROUTING -o d0 -j IMQ # no --todev: device 0
	x "$t" -t mangle -A POSTROUTING -o d1 -p udp -j IMQ --todev 01

	# Listing: the target's own text after the rule.
	list=$(x "$t" -t mangle -L -n -v)
	grep -E -q '^ +0 +0 IMQ .* d0 .* IMQ: todev 1$' <<<"$list" || fail "$t -L: no 'IMQ: todev 1' rule: $list"
	grep -E -q '^ +0 +0 IMQ .* d0 .* IMQ: todev 0$' <<<"$list" || fail "$t -L: no 'IMQ: todev 0' rule: $list"
	[ "$(grep -c 'IMQ: todev' <<<"$list")" = 3 ] || fail "$t -L: not three IMQ rules: $list"
	spec=$(x "$t" -t mangle -S)
	for want in "-A PREROUTING -i d0 -j IMQ --todev 1" "-A POSTROUTING -o d0 -j IMQ --todev 0" \
		"-A POSTROUTING -o d1 -p udp -j IMQ --todev 1"; do
		grep -qxF -- "$want" <<<"$spec" || fail "$t -S: no '$want' in: $spec"
	done
	note "$t -L: $(grep -F 'todev 1' <<<"$list" | head -n1 | tr -s ' ')"

	# Save, flush, restore: the same rules come back.
	x "$t-save" -t mangle >/tmp/saved
	grep -qxF -- "-A PREROUTING -i d0 -j IMQ --todev 1" /tmp/saved || fail "$t-save: $(cat /tmp/saved)"
	x "$t" -t mangle -F
	[ "$(x "$t" -t mangle -S | grep -c IMQ)" = 0 ] || fail "$t: flush left IMQ rules"
	x "$t-restore" </tmp/saved || fail "$t-restore refused its own save: $(cat /tmp/saved)"
	[ "$(x "$t" -t mangle -S)" = "$spec" ] || fail "$t: restored rules differ: $(x "$t" -t mangle -S)"
	note "$t-save/-restore: round trip of $(grep -c IMQ /tmp/saved) IMQ rules"

	# Deleting by specification compares the device number (no --todev means 0).
	expect_fail "$t -D with another --todev" x "$t" -t mangle -D POSTROUTING -o d0 -j IMQ --todev 1
	expect_fail "$t -D without --todev of a todev 1 rule" x "$t" -t mangle -D POSTROUTING -o d1 -p udp -j IMQ
	x "$t" -t mangle -D POSTROUTING -o d0 -j IMQ || fail "$t -D of the todev 0 rule failed"
	x "$t" -t mangle -D POSTROUTING -o d1 -p udp -j IMQ --todev 1 || fail "$t -D of the todev 1 rule failed"
	[ "$(x "$t" -t mangle -S POSTROUTING | grep -c IMQ)" = 0 ] || fail "$t: POSTROUTING rules left"

	# The parser's refusals: iptables' error format, exit status 2, nothing added.
	refused "$t" 2 'IMQ: bad value for --todev "x": a device number from 0 to 15' "" \
		-t mangle -A PREROUTING -j IMQ --todev x
	refused "$t" 2 'IMQ: bad value for --todev "-1"' "" -t mangle -A PREROUTING -j IMQ --todev -1
	refused "$t" 2 'IMQ: bad value for --todev ""' "" -t mangle -A PREROUTING -j IMQ --todev ""
	refused "$t" 2 'IMQ: bad value for --todev "0x1"' "" -t mangle -A PREROUTING -j IMQ --todev 0x1
	refused "$t" 2 'IMQ: invalid device specified \(--todev 99999999999\), highest is 15' "" \
		-t mangle -A PREROUTING -j IMQ --todev 99999999999
	refused "$t" 2 'IMQ: invalid device specified \(--todev 16\), highest is 15' "" \
		-t mangle -A PREROUTING -j IMQ --todev 16
	refused "$t" 2 'IMQ: invalid device specified \(--todev 99\)' "" -t mangle -A PREROUTING -j IMQ --todev 99
	refused "$t" 2 'IMQ: --todev may be given only once' "" -t mangle -A PREROUTING -j IMQ --todev 0 --todev 1
	refused "$t" 2 'IMQ: unexpected "!" with --todev' "" -t mangle -A PREROUTING -j IMQ ! --todev 1
	refused "$t" 2 "^${t%-*} v1\.8\.[0-9]+ \((nf_tables|legacy)\): IMQ: " "" -t mangle -A PREROUTING -j IMQ --todev y
	refused "$t" 2 "Try \`${t%-*} -h' or '${t%-*} --help'" "" -t mangle -A PREROUTING -j IMQ --todev y

	# The kernel's refusals: a device imq does not have (xt_IMQ), another table or hook
	# (x_tables).
	refused "$t" "[14]" 'Invalid argument' 'xt_IMQ: rule refused \(--todev 2\): no imq device imq2 \(load imq first, with numdevs=3 or more, or ip link add imq2 type imq\)' \
		-t mangle -A PREROUTING -i d0 -j IMQ --todev 2
	refused "$t" "[14]" 'Invalid argument' 'xt_IMQ: rule refused \(--todev 15\): no imq device imq15' \
		-t mangle -A POSTROUTING -j IMQ --todev 15
	refused "$t" "[14]" 'Invalid argument' 'IMQ target: only valid in mangle table, not filter' \
		-t filter -A INPUT -j IMQ
	refused "$t" "[14]" 'Invalid argument' 'IMQ target: used from hooks INPUT, but only usable from PREROUTING/POSTROUTING' \
		-t mangle -A INPUT -j IMQ --todev 0
	refused "$t" "[14]" 'Invalid argument' 'IMQ target: used from hooks (FORWARD|OUTPUT)' \
		-t mangle -A FORWARD -j IMQ --todev 0
	left=$(x "$t" -t mangle -S | grep -c IMQ || true)
	[ "$left" = 1 ] || fail "$t: refused rules left something behind: $(x "$t" -t mangle -S)"

	# Usage text.
	help=$(x "$t" -j IMQ --help)
	grep -q '^IMQ target options:$' <<<"$help" || fail "$t -j IMQ --help: no IMQ section"
	grep -q -- '--todev <N>.*defaults to 0' <<<"$help" || fail "$t -j IMQ --help: no --todev"
	x "$t" -t mangle -F
done

# The rules hold xt_IMQ, not imq: imq unloads under them (their packets then pass unshaped),
# and a new rule is refused while no imq device is there.
x iptables -t mangle -A PREROUTING -i d0 -j IMQ --todev 1
expect_fail "rmmod xt_IMQ while a rule uses it" rmmod xt_IMQ
rmmod imq || fail "imq does not unload under a rule"
refused iptables "[14]" 'Invalid argument' 'xt_IMQ: rule refused \(--todev 0\): no imq device imq0 \(load imq first' \
	-t mangle -A PREROUTING -j IMQ --todev 0
# A device of that name made by something else is not imq's.
ip link add imq0 type dummy
refused iptables "[14]" 'Invalid argument' 'xt_IMQ: rule refused \(--todev 0\): no imq device imq0' \
	-t mangle -A PREROUTING -j IMQ --todev 0
ip link del imq0
cleanup
trap - EXIT
xt_imq_unload
note "all rules, listings, round trips and refusals as expected with $tools; imq and xt_IMQ unloaded"
[ -z "$missing" ] || skip "legacy backend not tested: the kernel has no$missing (the nft backend passed)"
