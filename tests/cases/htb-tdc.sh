# The kernel's tdc test cases that use HTB (tools/testing/selftests/tc-testing/tc-tests:
# qdiscs/htb.json, qdiscs/depth.json, infra/qdiscs.json, infra/filter.json), ported with the
# kind renamed htb_rs. Each case runs twice, in two namespaces with the same devices: as
# written (kind htb, stock tc) and renamed (kind htb_rs, tc with the plugin). For htb_rs the
# cmdUnderTest must exit as the case expects and the verify output must match the renamed
# matchPattern matchCount times, as tdc checks; and, stricter than tdc, both runs must print
# the same for the command and the verification (htb_rs read as htb; counters masked where
# `tc -s` prints them, as they depend on timing).
# timeout: 1200
. /src/tests/vm/lib.sh

so=/src/target/release/libq_htb_rs.so
[ -e "$so" ] || fail "$so not built (cargo build --release -p tc-htb-rs)"
mkdir -p /tmp/tcplug
cp "$so" /tmp/tcplug/q_htb_rs.so
insmod "$(ko sch_htb_rs)"
modprobe dummy numdummies=0
modprobe ifb numifbs=0
for m in sch_netem cls_u32 act_mirred; do modprobe $m; done

# tdc's scapy plugin, without scapy: COUNT Ethernet frames from IFACE to its veth peer, as
# Ether()/IP(dst='10.10.10.1', src='10.10.10.10')/ICMP() or .../TCP(sport=12345, dport=80).
cat >/tmp/sendpkt.py <<'PY'
import socket, struct, sys
ifc, peer, kind, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
mac = lambda d: bytes.fromhex(open(f"/sys/class/net/{d}/address").read().strip().replace(":", ""))
def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
src, dst = socket.inet_aton("10.10.10.10"), socket.inet_aton("10.10.10.1")
if kind == "icmp":
    l4 = struct.pack("!BBHHH", 8, 0, 0, 0, 0)
    l4 = l4[:2] + struct.pack("!H", csum(l4)) + l4[4:]
    proto = 1
else:
    l4 = struct.pack("!HHIIBBHHH", 12345, 80, 0, 0, 5 << 4, 0x02, 8192, 0, 0)
    c = csum(src + dst + struct.pack("!BBH", 0, 6, len(l4)) + l4)
    l4 = l4[:16] + struct.pack("!H", c) + l4[18:]
    proto = 6
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0, 64, proto, 0, src, dst)
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifc, 0))
for _ in range(count):
    s.send(mac(peer) + mac(ifc) + b"\x08\x00" + ip + l4)
PY

# A namespace like tdc's nsPlugin: $DUMMY, the veth pair $DEV0-$DEV1 (10.10.10.1 on $DEV1)
# and $IFB, all up; no IPv6 (no autoconfiguration traffic through the qdiscs).
mkns() {
	ip netns add "$1"
	ip -n "$1" link set lo up
	ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	ip -n "$1" link add dum0 type dummy
	ip -n "$1" link add v0 type veth peer name v1
	ip -n "$1" link add ifb0 type ifb
	ip -n "$1" addr add 10.10.10.1/24 dev v1
	for d in dum0 v0 v1 ifb0; do ip -n "$1" link set "$d" up; done
}

# For htb_rs: the kind renamed in a command or pattern (the words htb and "htb" only).
rs() {
	local s=${1// htb/ htb_rs}
	echo "${s//\"htb\"/\"htb_rs\"}"
}
# For comparing: htb_rs read as htb, netem's random seed masked; with MASK, all numbers.
norm() {
	local s
	s=$(sed -E 's/htb_rs/htb/g; s/("seed":|seed )[0-9]+/\1N/g' <<<"$2")
	if [ "$1" = 1 ]; then s=$(sed -E 's/[0-9]+/N/g' <<<"$s"); fi
	echo "$s"
}

# same WHAT HTB_OUT HTB_RS_OUT: equal, or fail with the difference.
same() {
	[ "$2" = "$3" ] && return 0
	echo "$2" >/tmp/out.htb
	echo "$3" >/tmp/out.htb_rs
	fail "$1 prints differently for htb and htb_rs: $(diff /tmp/out.htb /tmp/out.htb_rs)"
}

# Two namespaces, one per kind, for all the cases (each case cleans up after itself).
mkns ns-htb
mkns ns-htb_rs
mkdir -p /tmp/tdc
# The steps of one case for one kind, in one shell in the kind's namespace (with tdc's
# variables; kind htb_rs gets the plugin): setup (each must succeed), cmdUnderTest (output
# and exit code kept), verify (output kept), then a teardown of whatever is left.
cat >/tmp/tdc/case.sh <<'EOF_CASE'
out=$1
shift
verify=$1 cmd=$2
shift 2
for s in "$@"; do
	bash -c "$s" >$out.setup 2>&1 || { echo "setup '$s' failed: $(cat $out.setup)"; exit 1; }
done
rc=0
bash -c "$cmd" >$out.cmd 2>&1 || rc=$?
echo $rc >$out.rc
bash -c "$verify" >$out.verify 2>&1
for d in $DUMMY $DEV1 $IFB; do
	tc qdisc del dev $d root 2>/dev/null
	tc qdisc del dev $d ingress 2>/dev/null
done
ip addr flush dev $DUMMY
exit 0
EOF_CASE

n=0
# tdc ID EXIT COUNT PATTERN VERIFY CMD [SETUP...]: one case, as the JSON has it.
tdc() {
	local id=$1 exp=$2 count=$3 pat=$4 verify=$5 cmd=$6
	shift 6
	local mask=0 kind s got setup
	[[ "$verify $cmd" == *'TC -s'* ]] && mask=1
	declare -A o r v
	for kind in htb htb_rs; do
		setup=()
		for s in "$@"; do
			if [ $kind = htb_rs ]; then setup+=("$(rs "$s")"); else setup+=("$s"); fi
		done
		if [ $kind = htb_rs ]; then
			ip netns exec ns-$kind env TC=tc IP=ip DUMMY=dum0 DEV0=v0 DEV1=v1 IFB=ifb0 TC_LIB_DIR=/tmp/tcplug \
				bash /tmp/tdc/case.sh /tmp/tdc/$kind "$(rs "$verify")" "$(rs "$cmd")" "${setup[@]}" ||
				fail "$id ($kind): $(cat /tmp/tdc/$kind.setup)"
		else
			ip netns exec ns-$kind env TC=tc IP=ip DUMMY=dum0 DEV0=v0 DEV1=v1 IFB=ifb0 \
				bash /tmp/tdc/case.sh /tmp/tdc/$kind "$verify" "$cmd" "${setup[@]}" ||
				fail "$id ($kind): $(cat /tmp/tdc/$kind.setup)"
		fi
		o[$kind]=$(cat /tmp/tdc/$kind.cmd)
		r[$kind]=$(cat /tmp/tdc/$kind.rc)
		v[$kind]=$(cat /tmp/tdc/$kind.verify)
	done
	[ "${r[htb]}" = "$exp" ] || fail "$id: htb itself exits ${r[htb]}, the case expects $exp: ${o[htb]}"
	[ "${r[htb_rs]}" = "$exp" ] || fail "$id: htb_rs exits ${r[htb_rs]}, want $exp: ${o[htb_rs]}"
	got=$(python3 -c 'import re, sys; print(len(re.findall(sys.argv[1], sys.argv[2])))' "$(rs "$pat")" "${v[htb_rs]}")
	[ "$got" = "$count" ] || fail "$id: /$(rs "$pat")/ matched $got times, want $count, in: ${v[htb_rs]}"
	same "$id: cmdUnderTest" "$(norm $mask "${o[htb]}")" "$(norm $mask "${o[htb_rs]}")"
	same "$id: verify" "$(norm $mask "${v[htb]}")" "$(norm $mask "${v[htb_rs]}")"
	python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$id" "$exp" "$count" "$pat" "$verify" "$cmd" "$@" >>/tmp/tdc/ported
	n=$((n + 1))
	note "$id: ok (exit $exp, $count match$([ "$count" = 1 ] || echo es), same output as htb; ${SECONDS}s)"
}

# --- qdiscs/htb.json
Q='$TC qdisc show dev $DUMMY'
C='$TC class show dev $DUMMY'
ROOT='$TC qdisc add dev $DUMMY handle 1: root htb'
tdc 0904 0 1 'qdisc htb 1: root refcnt [0-9]+ r2q 10 default 0 direct_packets_stat.*direct_qlen' "$Q" "$ROOT"
tdc 3906 0 1 'qdisc htb 1: root refcnt [0-9]+ r2q 10 default 0x10 direct_packets_stat.* direct_qlen' "$Q" "$ROOT default 10"
tdc 8492 0 1 'qdisc htb 1: root refcnt [0-9]+ r2q 5 default 0 direct_packets_stat.*direct_qlen' "$Q" "$ROOT r2q 5"
tdc 9502 0 1 'qdisc htb 1: root refcnt [0-9]+ r2q 10 default 0 direct_packets_stat.*direct_qlen 1024' "$Q" "$ROOT direct_qlen 1024"
CL='$TC class add dev $DUMMY parent 1: classid 1:1 htb'
tdc b924 0 1 'class htb 1:1 root prio 0 rate 20Kbit ceil 20Kbit burst 1000b cburst 1600b' "$C" "$CL rate 20kbit burst 1000" "$ROOT"
tdc 4359 0 1 'class htb 1:1 root prio 0 rate 20Kbit ceil 20Kbit burst 1600b cburst 1600b' "$C" "$CL rate 20Kbit mpu 64" "$ROOT"
tdc 9048 0 1 'class htb 1:1 root prio 1 rate 20Kbit ceil 20Kbit burst 1600b cburst 1600b' "$C" "$CL rate 20Kbit prio 1" "$ROOT"
tdc 4994 0 1 'class htb 1:1 root prio 0 rate 20Kbit ceil 10Kbit burst 1600b cburst 1600b' "$C" "$CL rate 20Kbit ceil 10Kbit" "$ROOT"
tdc 9523 0 1 'class htb 1:1 root prio 0 rate 20Kbit ceil 20Kbit burst 1600b cburst 2000b' "$C" "$CL rate 20Kbit cburst 2000" "$ROOT"
tdc 5353 0 1 'class htb 1:1 root prio 0 rate 20Kbit ceil 20Kbit burst 2Kb cburst 2Kb' "$C" "$CL rate 20Kbit mtu 2048" "$ROOT"
tdc 346a 0 1 'class htb 1:1 root prio 0 rate 20Kbit ceil 20Kbit burst 1600b cburst 1600b' "$C" "$CL rate 20Kbit quantum 2048" "$ROOT"
tdc 303a 0 0 'qdisc htb 1: root refcnt [0-9]+' "$Q" '$TC qdisc del dev $DUMMY handle 1: root' "$ROOT r2q 5"

# --- qdiscs/depth.json: nested htb qdiscs up to the core's limit of 8 levels (ad43), and the
# 9th refused (c519).
nest=('$TC qdisc add dev $DUMMY root handle 1: htb default 1' '$TC class add dev $DUMMY parent 1: classid 1:1 htb rate 10mbit')
for i in 2 3 4 5 6 7; do
	nest+=("\$TC qdisc add dev \$DUMMY parent $((i - 1)):1 handle $i: htb default 1"
		"\$TC class add dev \$DUMMY parent $i: classid $i:1 htb rate 10mbit")
done
tdc ad43 0 1 'qdisc htb 8: parent 7:1' "$Q" '$TC qdisc add dev $DUMMY parent 7:1 handle 8: htb default 1' "${nest[@]}"
nest+=('$TC qdisc add dev $DUMMY parent 7:1 handle 8: htb default 1' '$TC class add dev $DUMMY parent 8: classid 8:1 htb rate 10mbit')
tdc c519 2 0 'qdisc htb 9:' "$Q" '$TC qdisc add dev $DUMMY parent 8:1 handle 9: htb default 1' "${nest[@]}"

# --- infra/qdiscs.json
# 5456: htb -> netem -> blackhole: netem's dequeue drops into the blackhole and tells htb its
# queue emptied (qlen_notify) while htb is dequeuing that very class. tdc's `ping -W0.01` is
# busybox's `ping -W1` here (no iputils in the image; busybox takes whole seconds). tdc's
# matchJSON [] only asks for a JSON list; here the htb root must still be in it.
tdc 5456 1 1 '"kind":"htb","handle":"1:","root":true' '$TC -j qdisc show dev $DUMMY' \
	'busybox ping -c1 -W1 -I $DUMMY 10.10.11.11' \
	'$IP link set dev $DUMMY up || true' '$IP addr add 10.10.11.10/24 dev $DUMMY || true' \
	'$TC qdisc add dev $DUMMY root handle 1: htb default 1' \
	'$TC class add dev $DUMMY parent 1: classid 1:1 htb rate 64bit ' \
	'$TC qdisc add dev $DUMMY parent 1:1 handle 2: netem' \
	'$TC qdisc add dev $DUMMY parent 2:1 handle 3: blackhole'
# a4bb: ICMP mirrored from $DEV1's ingress to $IFB, whose htb leaf fq_codel (memory_limit 1)
# must drop. The scapy step (5 frames on $DEV0) is the last setup command.
tdc a4bb 0 1 'dropped [1-9][0-9]*' "\$TC -s qdisc show dev \$IFB | grep -A 5 'qdisc fq_codel'" '$TC -s qdisc show dev $IFB' \
	'$TC qdisc add dev $IFB handle 1: root htb default 10' \
	'$TC class add dev $IFB parent 1: classid 1:10 htb rate 1kbit' \
	'$TC qdisc add dev $IFB parent 1:10 handle 10: fq_codel memory_limit 1 flows 1 target 0.1ms interval 1ms' \
	'$TC filter add dev $IFB parent 1: protocol ip prio 1 u32 match ip protocol 1 0xff flowid 1:10' \
	'$TC qdisc add dev $DEV1 ingress' \
	'$TC filter add dev $DEV1 ingress protocol ip prio 1 u32 match ip protocol 1 0xff action mirred egress mirror dev $IFB' \
	'python3 /tmp/sendpkt.py $DEV0 $DEV1 icmp 5'
# 62c4: fq_codel under a 10kbit htb class on $DEV1, which answers 5 TCP SYNs to port 80.
tdc 62c4 0 1 'Sent [0-9]+ bytes [0-9]+ pkt' "\$TC -s qdisc show dev \$DEV1 | grep -A 5 'qdisc fq_codel'" '$TC -s qdisc show dev $DEV1' \
	'$TC qdisc add dev $DEV1 root handle 1: htb default 11' \
	'$TC class add dev $DEV1 parent 1: classid 1:1 htb rate 10kbit' \
	'$TC class add dev $DEV1 parent 1:1 classid 1:11 htb rate 10kbit prio 0 quantum 1486' \
	'$TC qdisc add dev $DEV1 parent 1:11 fq_codel quantum 300 noecn' \
	'sleep 0.5' 'python3 /tmp/sendpkt.py $DEV0 $DEV1 tcp 5'

# --- infra/filter.json c2b4: a filter in chain 0 of the htb qdisc's block, after the chain's
# prio-0 filter was deleted: refused without a kind, no soft lockup.
tdc c2b4 2 1 'chain parent 1: chain 0' '$TC chain ls dev $DUMMY' '$TC filter add dev $DUMMY chain 0 parent 1:' \
	'$TC qdisc add dev $DUMMY root handle 1: htb default 1' '$TC chain add dev $DUMMY' \
	'$TC filter del dev $DUMMY chain 0 parent 1: prio 0'

note "$n tdc cases passed with htb_rs, printing as htb does"

# The table against the kernel's own tdc files, where the build root has them: same commands,
# exit codes, patterns and counts, except where noted above (5456's ping and JSON check, the
# scapy step of a4bb and 62c4); and no HTB case of those files left out.
tdcdir=$(ls -d /build/*/src/tools/testing/selftests/tc-testing/tc-tests 2>/dev/null | head -n1)
if [ -n "$tdcdir" ]; then
	python3 - "$tdcdir" /tmp/tdc/ported <<'PY' || fail "the ported table differs from tdc's files (see above)"
import glob, json, sys
cases = {}
for f in glob.glob(sys.argv[1] + "/**/*.json", recursive=True):
    for c in json.load(open(f)):
        if " htb" in json.dumps(c):
            cases[c["id"]] = c
ported = [json.loads(l) for l in open(sys.argv[2])]
allowed = {"5456": {"cmd", "verify", "pat", "count"}}
bad = 0
for id_, exp, count, pat, verify, cmd, *setup in ported:
    c = cases.pop(id_, None)
    if c is None:
        print(f"{id_}: not an HTB case of tdc")
        bad += 1
        continue
    ok = allowed.get(id_, set())
    if "scapy" in c:
        setup = setup[:-1]
    for field, ours, theirs in [("exp", exp, c["expExitCode"]), ("count", count, c.get("matchCount")),
                                ("pat", pat, c.get("matchPattern")), ("verify", verify, c["verifyCmd"]),
                                ("cmd", cmd, c["cmdUnderTest"]), ("setup", setup, c["setup"])]:
        if ours != theirs and field not in ok:
            print(f"{id_}: {field} is {ours!r} here, {theirs!r} in tdc")
            bad += 1
for id_ in cases:
    print(f"{id_}: an HTB case of tdc not ported")
    bad += 1
print(f"{len(ported)} ported cases checked against {sys.argv[1]}")
sys.exit(1 if bad else 0)
PY
else
	note "tdc's JSON files not in the build root: table not cross-checked"
fi
ip -all netns delete
# Namespaces go asynchronously; the module is free once they are gone.
for _ in $(seq 50); do
	rmmod sch_htb_rs 2>/dev/null && break
	sleep 0.2
done
lsmod | grep_q '^sch_htb_rs' && fail "sch_htb_rs still in use after the cases: $(lsmod | grep sch_htb_rs)"
dmesg_has 'sch_htb_rs: unloaded'
