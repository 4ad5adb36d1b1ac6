# The tc plugin q_htb_rs.so (tools/tc-htb-rs) makes stock tc speak kind htb_rs with its own htb
# code: without it tc refuses the kind; with it the netlink requests carry exactly htb's
# TCA_OPTIONS (captured on an nlmon device, so the module need not exist), except that classes
# given no burst get the larger computed one; errors and usage text are htb's. If sch_htb_rs
# registers the qdisc, `tc class/qdisc show` (plain, -s, -d, -j) must print as for htb.
. /src/tests/vm/lib.sh

so=/src/target/release/libq_htb_rs.so
[ -e "$so" ] || fail "$so not built (tests/run builds it: cargo build --release -p tc-htb-rs)"
# tc looks for $TC_LIB_DIR/q_<kind>.so; /src is read-only, so copy it under the plugin's name.
plugdir=/tmp/tcplug
mkdir -p "$plugdir" /tmp/tc-none
cp "$so" "$plugdir/q_htb_rs.so"
note "$(tc -V)"

modprobe dummy numdummies=0
modprobe nlmon
ip netns add t
ip -n t link set lo up
# No IPv6 autoconfiguration traffic through the qdiscs under test.
ip netns exec t sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
for d in h0 r0 h1 r1; do
	ip -n t link add "$d" type dummy
	ip -n t link set "$d" up
done
htb() { ip netns exec t tc "$@"; }                    # kind htb, built into tc
rs() { TC_LIB_DIR=$plugdir ip netns exec t tc "$@"; } # kind htb_rs, through the plugin
# No htb_rs qdisc may outlive the test: the module is unloaded after it.
trap 'for d in r0 r1; do htb qdisc del dev $d root 2>/dev/null || true; done' EXIT

# Without the plugin tc has no parser for the kind: this is why the plugin exists.
rc=0
out=$(TC_LIB_DIR=/tmp/tc-none ip netns exec t tc qdisc add dev r0 root handle 1: htb_rs default 30 2>&1) || rc=$?
[ $rc -ne 0 ] || fail "tc without the plugin accepted kind htb_rs"
grep -q 'Unknown qdisc "htb_rs"' <<<"$out" || fail "without the plugin: unexpected '$out'"
note "without the plugin: $out"

# Bad options: htb's own message and usage text, and a failing exit, before anything is sent.
same_error() { # same_error WHAT HTB_ARGS... -- HTB_RS_ARGS...
	local what=$1 h=() r=() rc_h=0 rc_r=0 out_h out_r
	shift
	while [ "$1" != -- ]; do h+=("$1"); shift; done
	shift
	r=("$@")
	out_h=$(htb "${h[@]}" 2>&1) || rc_h=$?
	out_r=$(rs "${r[@]}" 2>&1) || rc_r=$?
	[ $rc_h -ne 0 ] && [ $rc_r -ne 0 ] || fail "$what: exit codes htb $rc_h, htb_rs $rc_r (want both non-zero)"
	[ "$out_h" = "$out_r" ] || fail "$what: htb_rs says something else than htb: $(diff <(echo "$out_h") <(echo "$out_r"))"
	note "$what: both exit non-zero with: $(head -n1 <<<"$out_r")"
}
same_error "qdisc bogus option" qdisc add dev h0 root handle 1: htb bogus -- qdisc add dev r0 root handle 1: htb_rs bogus
same_error "class bogus option" class add dev h0 parent 1: classid 1:9 htb rate 1mbit bogus -- \
	class add dev r0 parent 1: classid 1:9 htb_rs rate 1mbit bogus
same_error "class without rate" class add dev h0 parent 1: classid 1:9 htb burst 10k -- \
	class add dev r0 parent 1: classid 1:9 htb_rs burst 10k
same_error "class help" class add dev h0 parent 1: classid 1:9 htb help -- \
	class add dev r0 parent 1: classid 1:9 htb_rs help
grep -q 'What is "bogus"' <<<"$(rs qdisc add dev r0 root handle 1: htb_rs bogus 2>&1)" ||
	fail "htb_rs bogus: no htb error text"

# Capture the requests tc sends for htb on h0 and for htb_rs on r0.
ip -n t link add nlmon0 type nlmon
ip -n t link set nlmon0 up
ip netns exec t tcpdump -i nlmon0 -n -U --immediate-mode -w /tmp/nl.pcap 2>/tmp/tcpdump.log &
dump=$!
for _ in $(seq 50); do
	grep -q 'listening on' /tmp/tcpdump.log && break
	sleep 0.1
done
grep -q 'listening on' /tmp/tcpdump.log || fail "tcpdump did not start: $(cat /tmp/tcpdump.log)"

htb qdisc add dev h0 root handle 1: htb default 30
rs qdisc add dev r0 root handle 1: htb_rs default 30 ||
	note "the kernel refused kind htb_rs (module not loaded?): fine, the request is captured"
# classid|parent|htb_rs options|htb options that must give the very same TCA_OPTIONS.
# Explicit bursts pass unchanged; missing ones become min(max(rate x 1ms, 64KiB + mtu),
# rate x 10ms) where that exceeds htb's default (rate/HZ + mtu, about one MTU).
pairs=(
	"1:1|1:|rate 6mbit burst 15k cburst 15k|"
	"1:10|1:1|rate 5mbit burst 15k cburst 15k|"
	"1:20|1:1|rate 3mbit ceil 6mbit burst 15k cburst 15k|"
	"1:30|1:1|rate 1kbit ceil 6mbit burst 15k cburst 15k|"
	"1:31|1:1|rate 5mbit b 10k/8 cbuffer 12k mtu 9000 prio 2 quantum 3000 mpu 64 overhead 4|"
	"1:32|1:1|rate 1gbit maxburst 10k cmaxburst 20k|"
	"1:33|1:1|rate 1mbit|"
	"1:40|1:1|rate 6mbit burst 15k|rate 6mbit burst 15k cburst 7500"
	"1:41|1:1|rate 1kbit ceil 6mbit burst 15k|rate 1kbit ceil 6mbit burst 15k cburst 7500"
	"1:42|1:1|rate 1gbit|rate 1gbit burst 125000 cburst 125000"
	"1:43|1:1|rate 100mbit ceil 1gbit mtu 9000|rate 100mbit ceil 1gbit mtu 9000 burst 74536 cburst 125000"
	"1:44|1:1|rate 40gbit cburst 3000|rate 40gbit cburst 3000 burst 5000000"
	"1:45|1:1|ceil 10gbit rate 10mbit bu 20k|ceil 10gbit rate 10mbit bu 20k cburst 1250000"
)
ids=()
for p in "${pairs[@]}"; do
	IFS='|' read -r id parent opts hopts <<<"$p"
	ids+=("$id")
	# shellcheck disable=SC2086
	htb class add dev h0 parent "$parent" classid "$id" htb ${hopts:-$opts} 2>/dev/null ||
		note "htb refused class $id ($hopts): the request still counts"
	# shellcheck disable=SC2086
	rs class add dev r0 parent "$parent" classid "$id" htb_rs $opts 2>/dev/null || true
done
# htb's own default for comparison: about one MTU at 1 Gbit/s.
htb class add dev h0 parent 1:1 classid 1:99 htb rate 1gbit 2>/dev/null
# The kernel's dumps of htb's configuration, for the printing check below.
htb qdisc show dev h0 >/dev/null
htb class show dev h0 >/dev/null
sleep 1
kill -INT $dump
wait $dump || true

ia=$(ip -n t -o link show h0 | cut -d: -f1)
ib=$(ip -n t -o link show r0 | cut -d: -f1)
python3 - /tmp/nl.pcap /tmp/dump "$ia" "$ib" 1: "${ids[@]}" <<'PY' || fail "the captured requests do not match (see above)"
import struct, sys
pcap, dumpfile, ia, ib = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ids = sys.argv[5:]
RTM_NEWQDISC, RTM_NEWTCLASS, NLM_F_REQUEST, NLM_F_MULTI = 36, 40, 1, 2
TCA_KIND, TCA_OPTIONS, TCA_HTB_PARMS = 1, 2, 1

def handle(s):
    maj, _, mi = s.partition(":")
    return (int(maj or "0", 16) << 16) | int(mi or "0", 16)

def attrs(buf):
    off, out = 0, {}
    while off + 4 <= len(buf):
        ln, ty = struct.unpack_from("<HH", buf, off)
        if ln < 4:
            break
        out.setdefault(ty & 0x3FFF, buf[off + 4:off + ln])
        off += (ln + 3) & ~3
    return out

data = open(pcap, "rb").read()
magic = data[:4]
assert magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"), "not a little-endian pcap"
linktype = struct.unpack_from("<I", data, 20)[0]
assert linktype == 253, f"link type {linktype}, not NETLINK"
reqs, dumps, off = {}, [], 24
while off + 16 <= len(data):
    incl = struct.unpack_from("<I", data, off + 8)[0]
    pkt, off = data[off + 16:off + 16 + incl], off + 16 + incl
    # libpcap may put a cooked (SLL) header with hatype ARPHRD_NETLINK (824) before the message.
    if len(pkt) >= 16 and struct.unpack_from(">H", pkt, 2)[0] == 824:
        pkt = pkt[16:]
    m = 0
    while m + 16 <= len(pkt):
        ln, ty, fl = struct.unpack_from("<IHH", pkt, m)
        if ln < 16:
            break
        if ty in (RTM_NEWQDISC, RTM_NEWTCLASS) and fl & NLM_F_REQUEST and ln >= 36:
            _, ifi, h, _, _ = struct.unpack_from("<iiIII", pkt, m + 16)
            a = attrs(pkt[m + 36:m + ln])
            reqs.setdefault((ty, ifi, h), (a.get(TCA_KIND, b"").rstrip(b"\0").decode(), a.get(TCA_OPTIONS)))
        elif ty in (RTM_NEWQDISC, RTM_NEWTCLASS) and fl & NLM_F_MULTI and ln >= 36:
            if struct.unpack_from("<i", pkt, m + 20)[0] == ia:
                dumps.append(pkt[m:m + ln])
        m += (ln + 3) & ~3

def renamed(msg):
    """The message with TCA_KIND "htb_rs" instead of "htb"."""
    out, off = bytearray(msg[:36]), 36
    while off + 4 <= len(msg):
        ln, ty = struct.unpack_from("<HH", msg, off)
        a = msg[off:off + ((ln + 3) & ~3)]
        if ty == TCA_KIND:
            a = struct.pack("<HH", 4 + 7, TCA_KIND) + b"htb_rs\0" + b"\0"
        out += a
        off += (ln + 3) & ~3
    struct.pack_into("<I", out, 0, len(out))
    return bytes(out)

# tc monitor file reads netlink messages back to back: a dump of htb, and the same as htb_rs.
with open(f"{dumpfile}.htb", "wb") as f, open(f"{dumpfile}.htb_rs", "wb") as g:
    for msg in dumps:
        f.write(msg)
        g.write(renamed(msg))
print(f"{len(dumps)} dumped qdisc/class messages of htb saved")

def parms(opts):
    p = attrs(opts)[TCA_HTB_PARMS]
    return struct.unpack_from("<II", p, 24)  # buffer, cbuffer (psched ticks) after rate, ceil

bad = 0
for i, cid in enumerate(ids):
    ty = RTM_NEWQDISC if i == 0 else RTM_NEWTCLASS
    h = handle(cid)
    ra, rb = reqs.get((ty, ia, h)), reqs.get((ty, ib, h))
    if not ra or not rb:
        print(f"{cid}: request missing (htb: {bool(ra)}, htb_rs: {bool(rb)})")
        bad += 1
        continue
    (ka, oa), (kb, ob) = ra, rb
    if (ka, kb) != ("htb", "htb_rs") or oa is None or ob is None:
        print(f"{cid}: kinds {ka}/{kb}, options present {oa is not None}/{ob is not None}")
        bad += 1
    elif oa != ob:
        print(f"{cid}: TCA_OPTIONS differ ({len(oa)} vs {len(ob)} bytes)")
        bad += 1
    else:
        extra = "" if i == 0 else " buffer/cbuffer %d/%d ticks" % parms(ob)
        print(f"{cid}: htb and htb_rs TCA_OPTIONS identical ({len(ob)} bytes){extra}")
own = reqs.get((RTM_NEWTCLASS, ia, handle("1:99")))
ours = reqs.get((RTM_NEWTCLASS, ib, handle("1:42")))
if own and ours:
    b_own, b_ours = parms(own[1])[0], parms(ours[1])[0]
    print(f"rate 1gbit without burst: htb buffer {b_own} ticks, htb_rs {b_ours} ticks")
    if not b_ours > 50 * b_own:
        print("htb_rs's default burst is not the larger one")
        bad += 1
else:
    print("requests for htb 1:99 / htb_rs 1:42 missing")
    bad += 1
sys.exit(1 if bad else 0)
PY

# Printing, without the module: tc monitor reads the kernel's dumps of the htb configuration
# back from a file; with the kind renamed htb_rs, the plugin's printers must print the same.
for args in "" "-s" "-d" "-s -d" "-j" "-s -j"; do
	# shellcheck disable=SC2086
	oh=$(htb $args monitor file /tmp/dump.htb)
	# shellcheck disable=SC2086
	or=$(rs $args monitor file /tmp/dump.htb_rs)
	[ "$(sed 's/htb_rs/htb/g' <<<"$or")" = "$oh" ] ||
		fail "tc $args monitor: htb_rs prints differently: $(diff <(echo "$oh") <(echo "$or"))"
	note "tc${args:+ $args} monitor file: htb_rs prints as htb ($(grep -c htb_rs <<<"$or") mentions of htb_rs)"
done
or=$(rs -s -d monitor file /tmp/dump.htb_rs)
echo "$or"
for want in "qdisc htb_rs 1: dev h0 root refcnt [0-9]+ r2q 10 default 0x30" \
	"class htb_rs 1:42 dev h0 parent 1:1 .*rate 1Gbit ceil 1Gbit .*burst 125000b" "ctokens: [0-9]+"; do
	grep -Eq "$want" <<<"$or" || fail "tc -s -d monitor with htb_rs: no /$want/"
done

# With the module registering kind htb_rs, the printed configuration must be htb's.
modok=0
if [ -e "$(ko sch_htb_rs)" ] && insmod "$(ko sch_htb_rs)" 2>/tmp/insmod.log; then
	rs qdisc add dev r1 root handle 1: htb_rs default 30 2>/tmp/add.log && modok=1
fi
if [ $modok = 0 ]; then
	note "sch_htb_rs does not register kind htb_rs yet ($(cat /tmp/insmod.log /tmp/add.log 2>/dev/null | tr '\n' ' ')): output comparison skipped"
	exit 0
fi
htb qdisc add dev h1 root handle 1: htb default 30
# The example configuration on r1; on h1 the same with the cbursts htb_rs computes.
rs class add dev r1 parent 1: classid 1:1 htb_rs rate 6mbit burst 15k
rs class add dev r1 parent 1:1 classid 1:10 htb_rs rate 5mbit burst 15k
rs class add dev r1 parent 1:1 classid 1:20 htb_rs rate 3mbit ceil 6mbit burst 15k
rs class add dev r1 parent 1:1 classid 1:30 htb_rs rate 1kbit ceil 6mbit burst 15k
htb class add dev h1 parent 1: classid 1:1 htb rate 6mbit burst 15k cburst 7500
htb class add dev h1 parent 1:1 classid 1:10 htb rate 5mbit burst 15k cburst 6250
htb class add dev h1 parent 1:1 classid 1:20 htb rate 3mbit ceil 6mbit burst 15k cburst 7500
htb class add dev h1 parent 1:1 classid 1:30 htb rate 1kbit ceil 6mbit burst 15k cburst 7500

# Kind renamed, counters and tokens zeroed, classes in handle order (dump order is the module's).
normalize() {
	python3 -c '
import json, re, sys
text = sys.stdin.read().replace("htb_rs", "htb")
if sys.argv[1] == "json":
    def zero(v):
        if isinstance(v, dict):
            return {k: zero(x) for k, x in v.items()}
        if isinstance(v, list):
            return [zero(x) for x in v]
        return 0 if isinstance(v, (int, float)) else v
    objs = [{k: zero(v) if "stats" in k else v for k, v in o.items()} for o in json.loads(text)]
    print("\n".join(json.dumps(o) for o in sorted(objs, key=lambda o: o.get("handle", ""))))
else:
    blocks = re.split(r"\n(?=(?:class|qdisc) )", text.strip())
    out = []
    for b in blocks:
        head, _, rest = b.strip().partition("\n")
        out.append(head + "\n" + re.sub(r"-?\d+", "N", rest))
    print("\n".join(sorted(out)))
' "$1"
}
for args in "class show" "-s class show" "-d class show" "-s -d class show" "-s qdisc show" "-d qdisc show"; do
	# shellcheck disable=SC2086
	oc=$(htb $args dev h1 | normalize text)
	# shellcheck disable=SC2086
	od=$(rs $args dev r1 | normalize text)
	[ "$oc" = "$od" ] || fail "tc $args: htb_rs prints differently: $(diff <(echo "$oc") <(echo "$od"))"
	note "tc $args: same as htb"
done
for args in "-j class show" "-s -j class show" "-j qdisc show"; do
	# shellcheck disable=SC2086
	oc=$(htb $args dev h1 | normalize json)
	# shellcheck disable=SC2086
	od=$(rs $args dev r1 | normalize json)
	[ "$oc" = "$od" ] || fail "tc $args: htb_rs prints differently: $(diff <(echo "$oc") <(echo "$od"))"
	note "tc $args: same as htb"
done
rs -s class show dev r1
