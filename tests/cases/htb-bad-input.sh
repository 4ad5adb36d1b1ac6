# Bad input to htb_rs: malformed and out-of-range netlink attributes (raw rtnetlink requests),
# classes of the wrong qdisc or parent, deleting a class that has children or filters, a tree
# deeper than 8 levels. Each is refused with an error and, where htb_rs decides, a clear extack
# message, and leaves the existing qdisc and classes exactly as they were. The same requests
# go to htb on a twin device; where htb answers the same it must (core checks, in-use,
# depth), elsewhere its answer is shown. Then what htb cannot do: `tc qdisc change` of the
# default class, r2q and direct_qlen in place, with traffic following the new default.
. /src/tests/vm/lib.sh

so=/src/target/release/libq_htb_rs.so
[ -e "$so" ] || fail "$so not built (cargo build --release -p tc-htb-rs)"
mkdir -p /tmp/tcplug
cp "$so" /tmp/tcplug/q_htb_rs.so
insmod "$(ko sch_htb_rs)"
modprobe dummy numdummies=0
modprobe cls_u32

ip netns add t
ip -n t link set lo up
ip netns exec t sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
for d in h0 r0; do
	ip -n t link add "$d" type dummy
	ip -n t link set "$d" up
done
ip -n t addr add 10.0.0.1/24 dev r0
ip -n t addr add 10.0.1.1/24 dev h0
tcx() { TC_LIB_DIR=/tmp/tcplug ip netns exec t tc "$@"; }
trap 'for d in h0 r0; do tcx qdisc del dev $d root 2>/dev/null || true; done' EXIT

# nl.py DEV OP HANDLE PARENT KIND ATTR...: one raw rtnetlink request; prints "OK [warning]"
# or "ERR <errno name> <extack message>" (python names EOPNOTSUPP ENOTSUP), exits 0 or 1. OP: qdisc-add (create, exclusive),
# qdisc-change, class-add (create, exclusive), class-change. ATTRs build TCA_OPTIONS:
#   init=VER,R2Q,DEFCLS  tc_htb_glob      init-short   TCA_HTB_INIT of 8 bytes
#   parms=RATE,CEIL[,LL] tc_htb_opt (bytes/s; LL = link layer; 1 ms buffers)
#   parms-short          TCA_HTB_PARMS of 20 bytes
#   offload              TCA_HTB_OFFLOAD     dqlen=N   TCA_HTB_DIRECT_QLEN
#   garbage              an attribute whose length runs past the end
#   noopts               no TCA_OPTIONS at all
cat >/tmp/nl.py <<'PY'
import errno, os, socket, struct, sys
dev, op, handle, parent, kind = sys.argv[1:6]
specs = sys.argv[6:]
def h(s):
    if s == "root":
        return 0xFFFFFFFF
    maj, _, mi = s.partition(":")
    return (int(maj or "0", 16) << 16) | int(mi or "0", 16)
def attr(ty, data):
    a = struct.pack("<HH", 4 + len(data), ty) + data
    return a + b"\0" * (-len(a) % 4)
def ratespec(rate, ll=1):
    return struct.pack("<BBHhHI", 0, ll, 0, 0, 0, rate)
opts, send_opts = b"", True
for s in specs:
    k, _, v = s.partition("=")
    if k == "init":
        ver, r2q, defcls = (int(x, 0) for x in v.split(","))
        opts += attr(2, struct.pack("<5I", ver, r2q, defcls, 0, 0))
    elif k == "init-short":
        opts += attr(2, struct.pack("<2I", 3, 10))
    elif k == "parms":
        f = [int(x, 0) for x in v.split(",")]
        rate, ceil, ll = f[0], f[1], (f[2] if len(f) > 2 else 1)
        ticks = 1000000 // 64
        opts += attr(1, ratespec(rate, ll) + ratespec(ceil, ll) + struct.pack("<5I", ticks, ticks, 0, 0, 0))
    elif k == "parms-short":
        opts += attr(1, ratespec(125000) + b"\0" * 8)
    elif k == "offload":
        opts += attr(9, b"")
    elif k == "dqlen":
        opts += attr(5, struct.pack("<I", int(v)))
    elif k == "garbage":
        opts += struct.pack("<HH", 200, 1) + b"\0" * 8
    elif k == "noopts":
        send_opts = False
    else:
        sys.exit(f"unknown spec {s}")
body = attr(1, kind.encode() + b"\0")
if send_opts:
    body += struct.pack("<HH", 4 + len(opts), 2) + opts
typ = 36 if op.startswith("qdisc") else 40
flags = 1 | 4  # REQUEST, ACK
if op.endswith("add"):
    flags |= 0x400 | 0x200  # CREATE, EXCL
tcm = struct.pack("<BBHiIII", 0, 0, 0, socket.if_nametoindex(dev), h(handle), h(parent), 0)
msg = tcm + body
sk = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
sk.setsockopt(270, 11, 1)  # SOL_NETLINK, NETLINK_EXT_ACK
sk.setsockopt(270, 10, 1)  # NETLINK_CAP_ACK
sk.send(struct.pack("<IHHII", 16 + len(msg), typ, flags, 1, 0) + msg)
r = sk.recv(65536)
ln, ty, fl = struct.unpack_from("<IHH", r)
assert ty == 2, f"reply type {ty}"
err = -struct.unpack_from("<i", r, 16)[0]
text, off = "", 16 + 4 + 16
while off + 4 <= ln:
    al, at = struct.unpack_from("<HH", r, off)
    if al < 4:
        break
    if at == 1:
        text = r[off + 4:off + al].rstrip(b"\0").decode()
    off += (al + 3) & ~3
if err:
    print("ERR", errno.errorcode.get(err, str(err)), text)
    sys.exit(1)
print("OK", text)
PY
nl() { ip netns exec t python3 /tmp/nl.py "$@"; }

# A small tree on each device: 1: with 1:1 (inner) over the leaves 1:10 and 1:20, default 10.
tree() { # tree DEV KIND
	local dev=$1 k=$2
	tcx qdisc add dev $dev root handle 1: $k default 10
	tcx class add dev $dev parent 1: classid 1:1 $k rate 10mbit
	tcx class add dev $dev parent 1:1 classid 1:10 $k rate 5mbit ceil 10mbit
	tcx class add dev $dev parent 1:1 classid 1:20 $k rate 5mbit ceil 10mbit
}
tree h0 htb
tree r0 htb_rs
snap() { tcx -d qdisc show dev "$1"; tcx -d class show dev "$1"; tcx filter show dev "$1"; }
snap r0 >/tmp/before
tcx class show dev r0 | grep_q 'class htb_rs 1:20 parent 1:1' || fail "tree not built: $(cat /tmp/before)"

# refuse WHAT ERRNO MSG_REGEX CMD...: CMD (run for htb_rs) fails with ERRNO (empty: any) and
# a message matching MSG_REGEX, and r0's qdisc, classes and filters are unchanged.
refuse() {
	local what=$1 want=$2 msg=$3 out rc=0
	shift 3
	out=$("$@" 2>&1) || rc=$?
	[ $rc -ne 0 ] || fail "$what: accepted: $out"
	[ -z "$want" ] || grep_q "$want" <<<"$out" || fail "$what: want $want, got: $out"
	grep -Eq -- "$msg" <<<"$out" || fail "$what: message /$msg/ missing: $out"
	snap r0 >/tmp/after
	cmp -s /tmp/before /tmp/after || fail "$what: the tree changed: $(diff /tmp/before /tmp/after)"
	note "$what: refused: $(tr '\n' ' ' <<<"$out")"
}
# htb_says WHAT CMD...: what htb answers to the same request on h0 (for the log).
htb_says() {
	local what=$1 out
	shift
	out=$("$@" 2>&1) && out="accepted ($out)"
	note "    htb: $(tr '\n' ' ' <<<"$out")"
	tcx class del dev h0 classid 1:30 2>/dev/null || true
}
# both WHAT ERRNO MSG_REGEX HTB_RS_CMD... -- HTB_CMD...: both refuse alike.
both() {
	local what=$1 want=$2 msg=$3 a=() b=() oh rc=0
	shift 3
	while [ "$1" != -- ]; do a+=("$1"); shift; done
	shift
	b=("$@")
	refuse "$what" "$want" "$msg" "${a[@]}"
	oh=$("${b[@]}" 2>&1) || rc=$?
	[ $rc -ne 0 ] || fail "$what: htb accepted it: $oh"
	grep -Eq -- "$msg" <<<"$oh" || fail "$what: htb says something else: $oh"
}

# --- the qdisc's own options: a new qdisc on a fresh device, and a change of the existing one.
ip -n t link add r9 type dummy
ip -n t link add h9 type dummy
qadd() { nl "$1" qdisc-add 1: root "$2" "${@:3}"; }
for spec in "init-short|ERR ERANGE TCA_HTB_INIT too short" "init=2,10,0|ERR EINVAL need HTB protocol version 3, tc speaks 2" \
	"dqlen=5|ERR EINVAL TCA_HTB_INIT missing" "garbage|ERR EINVAL malformed attribute in TCA_OPTIONS" \
	"init=3,10,0 offload|ERR ENOTSUP hardware offload is not supported"; do
	IFS='|' read -r a want <<<"$spec"
	# shellcheck disable=SC2086
	out=$(qadd r9 htb_rs $a) && fail "qdisc with $a: accepted"
	[ "$out" = "$want" ] || fail "qdisc with $a: '$out', want '$want'"
	[ -z "$(tcx qdisc show dev r9 | grep htb_rs)" ] || fail "qdisc with $a: a qdisc was left: $(tcx qdisc show dev r9)"
	# shellcheck disable=SC2086
	note "new qdisc with $a: $out; htb: $(qadd h9 htb $a)"
	# The same as a change of the existing qdisc: refused, nothing changed.
	# shellcheck disable=SC2086
	refuse "qdisc change with $a" "" "${want#ERR * }" nl r0 qdisc-change 1: root htb_rs $a
done
# Without TCA_OPTIONS at all (stock tc without the plugin sends none): htb's defaults.
out=$(nl r9 qdisc-add 1: root htb_rs noopts) || fail "qdisc without options: $out"
tcx qdisc show dev r9 | grep_q 'qdisc htb_rs 1: root refcnt [0-9]* r2q 10 default 0 ' ||
	fail "qdisc without options: $(tcx qdisc show dev r9)"
note "new qdisc without options: $out, as $(tcx qdisc show dev r9 | head -n1); htb: $(nl h9 qdisc-add 1: root htb noopts)"
tcx qdisc del dev r9 root

# --- class options.
cadd() { nl "$1" class-add 1:30 1:1 "$2" "${@:3}"; }
for spec in "parms-short|ERR ERANGE TCA_HTB_PARMS too short" "init=3,10,0|ERR EINVAL TCA_HTB_PARMS missing" \
	"noopts|ERR EINVAL class options missing" "parms=0,125000|ERR EINVAL rate must not be zero" \
	"parms=125000,0|ERR EINVAL ceil must not be zero" "parms=125000,125000,5|ERR EINVAL unknown link layer" \
	"parms=125000,125000 garbage|ERR EINVAL malformed attribute in TCA_OPTIONS"; do
	IFS='|' read -r a want <<<"$spec"
	# shellcheck disable=SC2086
	refuse "class with $a" "" "^${want}" cadd r0 htb_rs $a
	# shellcheck disable=SC2086
	htb_says "$a" cadd h0 htb $a
	# shellcheck disable=SC2086
	refuse "class change with $a" "" "^${want}" nl r0 class-change 1:10 1:1 htb_rs $a
done
# TCA_HTB_OFFLOAD in a class request is ignored, as sch_htb reads it only when a qdisc is made
# (htb-fuzz, seed 181804814).
out=$(cadd r0 htb_rs parms=125000,125000 offload) || fail "class with offload refused: $out"
oh=$(cadd h0 htb parms=125000,125000 offload) || fail "htb refused a class with offload: $oh"
note "class with offload: $out; htb: $oh"
tcx class del dev r0 classid 1:30
tcx class del dev h0 classid 1:30
# The class's parent must exist (htb silently puts the class at the root instead).
refuse "parent that does not exist" "" "^ERR ENOENT parent class not found" nl r0 class-add 1:30 1:7 htb_rs parms=125000,125000
htb_says "parent 1:7" nl h0 class-add 1:30 1:7 htb parms=125000,125000
# Core checks, the same for both: a class id of another qdisc; a class that exists.
both "class id of another major" "" "Invalid argument" tcx class add dev r0 parent 1: classid 2:5 htb_rs rate 1mbit -- \
	tcx class add dev h0 parent 1: classid 2:5 htb rate 1mbit
both "class that exists" "" "File exists" tcx class add dev r0 parent 1:1 classid 1:10 htb_rs rate 1mbit -- \
	tcx class add dev h0 parent 1:1 classid 1:10 htb rate 1mbit
# A class id with minor 0 is the qdisc's own handle (htb accepts it, as a class 1:0).
refuse "class id 1:0" "" "^ERR EINVAL invalid class id" nl r0 class-add 1:0 1:1 htb_rs parms=125000,125000

# --- deleting classes in use.
both "delete a class with children" "" "Error: HTB class in use" tcx class del dev r0 classid 1:1 -- \
	tcx class del dev h0 classid 1:1
for d in r0 h0; do
	tcx filter add dev $d parent 1: protocol ip prio 1 u32 match ip dport 80 0xffff flowid 1:20
done
snap r0 >/tmp/before
both "delete a class a filter points at" "" "Error: HTB class in use" tcx class del dev r0 classid 1:20 -- \
	tcx class del dev h0 classid 1:20
for d in r0 h0; do tcx filter del dev $d parent 1: prio 1; done
tcx class del dev r0 classid 1:20 || fail "class 1:20 not deletable once its filter is gone"
tcx class del dev h0 classid 1:20
snap r0 >/tmp/before

# --- depth: eight levels of classes (1:1, 1:10, 1:103 .. 1:108) are fine, the ninth is refused (htb: "sch_htb: tree is too
# deep"); the tree stays as it was.
for d in r0 h0; do
	k=htb_rs
	[ $d = h0 ] && k=htb
	p=1:10
	for i in 3 4 5 6 7 8; do
		tcx class add dev $d parent $p classid 1:$((100 + i)) $k rate 1mbit || fail "$k: level $i refused"
		p=1:$((100 + i))
	done
done
snap r0 >/tmp/before
grep -q 'class htb_rs 1:108 parent 1:107 ' /tmp/before || fail "eight levels: $(grep class /tmp/before)"
both "a ninth level" "" "tree is too deep" tcx class add dev r0 parent 1:108 classid 1:109 htb_rs rate 1mbit -- \
	tcx class add dev h0 parent 1:108 classid 1:109 htb rate 1mbit

# Unclassified UDP to a neighbour of the dummy device (no ARP on dummy: straight to the qdisc).
send() { ip netns exec t python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[1])):
    s.sendto(b"x" * 100, ("10.0.0.2", 9))
' "$1"; }
pkts() { tcx -s class show dev r0 classid "$1" | awk '/Sent/ { print $4; exit }'; }

# Deleting the chain bottom-up: each parent becomes a leaf again, with a queue of its own, and
# the default class 1:10 takes unclassified traffic again (inner, it could not).
a=$(pkts 1:10)
for i in 8 7 6 5 4 3; do
	tcx class del dev r0 classid 1:10$i || fail "could not delete 1:10$i"
done
send 5
[ "$(pkts 1:10)" -eq $((a + 5)) ] || fail "1:10, a leaf again, sent $(pkts 1:10) packets, want $((a + 5))"
tcx -s qdisc show dev r0 | grep_q 'backlog 0b 0p' || fail "the qdisc holds packets: $(tcx -s qdisc show dev r0)"

# --- beyond htb: tc qdisc change of default, r2q and direct_qlen in place.
rc=0
out=$(tcx qdisc change dev h0 root handle 1: htb default 20 r2q 5 direct_qlen 50 2>&1) || rc=$?
[ $rc -ne 0 ] || fail "htb accepted a change: did the kernel's htb learn it?"
note "htb refuses the change: $out"
tcx qdisc del dev r0 root
tcx qdisc add dev r0 root handle 1: htb_rs default 10
tcx class add dev r0 parent 1: classid 1:10 htb_rs rate 100mbit
tcx class add dev r0 parent 1: classid 1:20 htb_rs rate 100mbit
send 10
[ "$(pkts 1:10)" -ge 10 ] || fail "default 10: class 1:10 sent $(pkts 1:10) packets"
[ "$(pkts 1:20)" -eq 0 ] || fail "default 10: class 1:20 sent $(pkts 1:20) packets"
tcx qdisc change dev r0 root handle 1: htb_rs default 20 r2q 5 direct_qlen 50 ||
	fail "htb_rs refused the change"
tcx qdisc show dev r0 | grep_q 'qdisc htb_rs 1: root refcnt [0-9]* r2q 5 default 0x20 direct_packets_stat 0 direct_qlen 50' ||
	fail "the change did not show: $(tcx qdisc show dev r0)"
a=$(pkts 1:10)
send 10
[ "$(pkts 1:20)" -ge 10 ] || fail "default 20: class 1:20 sent $(pkts 1:20) packets"
[ "$(pkts 1:10)" -eq "$a" ] || fail "default 20: class 1:10 still gets packets"
# r2q applies to classes made after the change: quantum = rate / 5.
tcx class add dev r0 parent 1: classid 1:30 htb_rs rate 4mbit
tcx -d class show dev r0 classid 1:30 | grep_q 'quantum 100000 ' ||
	fail "r2q 5 not applied: $(tcx -d class show dev r0 classid 1:30)"
# default 0: unclassified packets take the direct queue, counted in direct_packets_stat.
tcx qdisc change dev r0 root handle 1: htb_rs default 0
send 7
tcx qdisc show dev r0 | grep_q 'default 0 direct_packets_stat 7 direct_qlen 50' ||
	fail "default 0: $(tcx qdisc show dev r0)"
note "change in place: $(tcx qdisc show dev r0)"
tcx qdisc del dev r0 root
tcx qdisc del dev h0 root
trap - EXIT
rmmod sch_htb_rs
