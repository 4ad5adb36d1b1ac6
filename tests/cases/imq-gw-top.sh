# gw-top, the gateway traffic view, on the classic setup: rtr shapes the downloads of two
# clients, cli (10.0.1.2, 2001:db8:1::2) and cli2 (10.0.3.2, 2001:db8:3::2, on a second LAN port
# r2), on imq0 (PREROUTING from the server side) and their uploads on imq1 (PREROUTING from the
# LAN ports), one HTB class per client on each device, u32 filters on the client's addresses
# (ip dst / ip6 dst on imq0, ip src / ip6 src on imq1). Four flows with known rates run at once
# (on the debug kernel every rate a quarter and refreshes every 4 s, below):
# TCP downloads filling the 1mbit (cli, IPv4) and 2mbit (cli2, IPv6) classes, and UDP uploads
# at a fixed 1.5 and 3 Mbit/s. gw-top --json --interval 2 --count 4 runs in the middle. Every
# refresh's rates must be within 10% of what the client's LAN port carried in the same
# seconds (rtr's veth counters, sampled every 50 ms: the truth even when a loaded host stalls
# the VM and the flows with it), the mean within 10% of the flows' rates as iperf3 measured
# them (with the headers; shown, not held, on the debug kernel); the clients are the addresses of the filters, and once traffic
# stops the totals are tc's and ip's counters. Meanwhile a second gw-top refreshes every second
# in a pseudo-terminal: its last screen must draw both clients' rate history (sparklines).
. /src/tests/vm/lib.sh

bin=/src/target/release/gw-top
so=/src/target/release/libxt_IMQ.so
[ -x "$bin" ] || fail "$bin not built (cargo build --release -p gw-top)"
[ -e "$so" ] || fail "$so not built (cargo build --release -p xt-imq)"
mkdir -p /tmp/xt
cp "$so" /tmp/xt/
export XTABLES_LIBDIR=/tmp/xt:/usr/lib/x86_64-linux-gnu/xtables

# Before imq is loaded: a clear error, no panic.
out=$("$bin" --count 1 2>&1) && fail "gw-top ran without imq0: $out"
rc=$?
[ $rc = 1 ] && grep -q 'no device imq0' <<<"$out" || fail "without imq0: rc $rc: $out"
note "errors: $out"
# Everything is read over netlink: no tc, no ip needed.
out=$(PATH=/nonexistent "$bin" --down lo --count 1 --interval 0.1 2>&1) || fail "gw-top needed a program on PATH: $out"

insmod "$(ko imq)"
xt_imq_load
for d in /proc/sys/net/ipv6/conf/imq*; do echo 1 >"$d/disable_ipv6"; done
topo_3
ip netns add cli2
ip -n cli2 link set lo up
ip link add c1 netns cli2 type veth peer name r2 netns rtr
ip -n rtr addr add 10.0.3.1/24 dev r2
ip -n rtr addr add 2001:db8:3::1/64 dev r2 nodad
ip -n cli2 addr add 10.0.3.2/24 dev c1
ip -n cli2 addr add 2001:db8:3::2/64 dev c1 nodad
ip -n rtr link set r2 up
ip -n cli2 link set c1 up
ip -n cli2 route add default via 10.0.3.1
ip -n cli2 -6 route add default via 2001:db8:3::1
ip netns exec rtr sysctl -qw net.ipv6.conf.r2.forwarding=1
# The server sends MTU-sized packets: a qdisc charges a GSO packet the headers of every
# segment, a veth's counters only its one, and the ports' counters are the yardstick here.
ip netns exec srv ethtool -K s0 tso off gso off >/dev/null

# The debug kernels (lockdep; KASAN) under TCG cannot carry these rates: there the guest ran out
# of CPU (the 1 and 2mbit downloads at 0.67 and 0.68, the 1.5 and 3 Mbit/s uploads at 0.51 and
# 0.48) and single refreshes strayed up to 34% from the ports. There every rate is a quarter
# (SCALE=4) and gw-top refreshes every 4 s (IV), so that a refresh still spans ~80 packets of
# the slowest flow; the flows last long enough for the longer refreshes.
SCALE=1 IV=2 secs=18
case $(uname -r) in *-debug | *-kasan) SCALE=4 IV=4 secs=28 ;; esac
kbit() { echo "$(($1 / SCALE))kbit"; } # kbit RATE_KBIT: the rate on this kernel

# tree DEV DIR RATE_A RATE_B: one class per client (rates in kbit), a default class for
# everything else.
tree() {
	local dev=$1 dir=$2
	ip link set "$dev" up
	tc qdisc add dev "$dev" root handle 1: htb default 99
	tc class add dev "$dev" parent 1: classid 1:1 htb rate $(kbit 12000) burst 15k
	tc class add dev "$dev" parent 1:1 classid 1:10 htb rate $(kbit "$3")
	tc class add dev "$dev" parent 1:1 classid 1:20 htb rate $(kbit "$4")
	tc class add dev "$dev" parent 1:1 classid 1:99 htb rate $(kbit 10000)
	for c in 10 20 99; do tc qdisc add dev "$dev" parent 1:$c handle $c: pfifo; done
	tc filter add dev "$dev" parent 1:0 protocol ip prio 1 u32 match ip "$dir" 10.0.1.2/32 flowid 1:10
	tc filter add dev "$dev" parent 1:0 protocol ip prio 1 u32 match ip "$dir" 10.0.3.2/32 flowid 1:20
	tc filter add dev "$dev" parent 1:0 protocol ipv6 prio 2 u32 match ip6 "$dir" 2001:db8:1::2/128 flowid 1:10
	tc filter add dev "$dev" parent 1:0 protocol ipv6 prio 2 u32 match ip6 "$dir" 2001:db8:3::2/128 flowid 1:20
}
tree imq0 dst 1000 2000
tree imq1 src 4000 4000
for t in iptables ip6tables; do
	ip netns exec rtr $t -t mangle -A PREROUTING -i r1 -j IMQ --todev 0
	ip netns exec rtr $t -t mangle -A PREROUTING -i r0 -j IMQ --todev 1
	ip netns exec rtr $t -t mangle -A PREROUTING -i r2 -j IMQ --todev 1
done
ip netns exec cli iperf3 -s -D -p 5201
ip netns exec cli2 iperf3 -s -D -p 5202
ip netns exec srv iperf3 -s -D -p 5203
ip netns exec srv iperf3 -s -D -p 5204
sleep 1

# The truth: rtr's LAN ports, each one client's: tx is its downloads after shaping, rx its
# uploads as they arrive. Read every 50 ms by one process (no fork per sample: on the debug
# kernel a shell loop's `sleep` made it one sample every 2 s), each port's four counters
# between two clock readings (the sampler was seen held up mid-row there long enough to put a
# port 13-31% off gw-top for one refresh).
ip netns exec rtr python3 -c '
import sys, time
ports = [[open(f"/sys/class/net/{d}/statistics/{c}", "rb", buffering=0)
          for c in ("tx_bytes", "tx_packets", "rx_bytes", "rx_packets")] for d in ("r0", "r2")]
while True:
    row = []
    for files in ports:
        t0 = time.time()
        vals = []
        for f in files:
            f.seek(0)
            vals.append(f.read().decode().strip())
        row += [f"{t0:.6f}", *vals, f"{time.time():.6f}"]
    print(" ".join(row), flush=True)
    time.sleep(0.05)
' >/tmp/truth.txt &
sampler=$!
# Python takes seconds to start on the debug kernel: the ports are read before anything is timed.
wait_until 60 'no port sample after 60 s' test -s /tmp/truth.txt

# Downloads: TCP from srv, filling the clients' classes (a small window, as imq-lib.sh explains).
ip netns exec srv iperf3 -c 10.0.1.2 -p 5201 -t $secs -w 32K -l 8K -J >/tmp/d2.json 2>&1 &
p1=$!
ip netns exec srv iperf3 -c 2001:db8:3::2 -p 5202 -t $secs -w 32K -l 8K -J >/tmp/d3.json 2>&1 &
p2=$!
# Uploads: UDP at fixed rates, 1000-byte datagrams (1028-byte IPv4 packets).
ip netns exec cli iperf3 -u -c 10.0.2.2 -p 5203 -b $(kbit 1500) -l 1000 -t $secs -J >/tmp/u2.json 2>&1 &
p3=$!
ip netns exec cli2 iperf3 -u -c 10.0.2.2 -p 5204 -b $(kbit 3000) -l 1000 -t $secs -J >/tmp/u3.json 2>&1 &
p4=$!
# On a terminal, the history: a refresh a second for most of the flows' time.
script -qc "$bin --interval 1 --count 15" /dev/null </dev/null >/tmp/tty-live.txt 2>&1 &
ptty=$!
sleep 5
"$bin" --json --interval $IV --count 4 >/tmp/live.json 2>/tmp/live.err || fail "gw-top failed: $(cat /tmp/live.err)"
cp /tmp/live.json /out/logs/imq-gw-top-live.json
for p in $p1 $p2 $p3 $p4; do wait $p || fail "an iperf3 flow failed: $(tail -n 3 /tmp/[du][23].json)"; done
wait $ptty || fail "gw-top on a terminal failed: $(tail -n 20 /tmp/tty-live.txt)"
cp /tmp/tty-live.txt /out/logs/imq-gw-top-tty-live.txt
# The last screen: both clients' rates drawn, downloads and uploads, with blocks above the
# lowest (traffic all along), and every sparkline its 15 cells.
python3 - <<'PY' || fail "no rate history on the terminal (see above)"
import re
text = open("/tmp/tty-live.txt", encoding="utf-8").read().replace("\r", "")
last = text.split("\x1b[H\x1b[2J")[-1]
print(last)
blocks = "▁▂▃▄▅▆▇█"
bad = 0
for client in ("10.0.1.2", "10.0.3.2"):
    line = next((l for l in last.splitlines() if l.startswith(client + " ")), None)
    sparks = re.findall(f"[{blocks} ]*[{blocks}]", line or "")
    sparks = [s.strip() for s in sparks if s.strip()]
    if len(sparks) != 2 or any(len(s) > 15 or not set(s) - set("▁") for s in sparks):
        print(f"{client}: sparklines {sparks} in {line!r}")
        bad += 1
if "60s █=" not in last:
    print("no scale in the header")
    bad += 1
raise SystemExit(1 if bad else 0)
PY
kill $sampler
wait $sampler 2>/dev/null || true
cp /tmp/truth.txt /out/logs/imq-gw-top-truth.txt

# The flows' rates as the qdiscs see them (IP packets): iperf3's steady figures with headers.
rates=$(python3 - <<'PY'
import json
def tcp(f, payload):  # goodput of the steady seconds; full segments carry `payload` of 1500
    d = json.load(open(f))
    ivs = [i["sum"] for i in d["intervals"]][2:-1]
    return sum(i["bytes"] for i in ivs) * 8 / sum(i["seconds"] for i in ivs) * 1500 / payload
def udp(f):  # what the server received, 1000-byte datagrams in 1028-byte packets
    d = json.load(open(f))["end"]
    s = d.get("sum_received") or d["sum"]
    return s["bits_per_second"] * 1028 / 1000
print(tcp("/tmp/d2.json", 1448), tcp("/tmp/d3.json", 1428), udp("/tmp/u2.json"), udp("/tmp/u3.json"))
PY
) || fail "no iperf3 figures"
read -r d2 d3 u2 u3 <<<"$rates"
note "iperf3 (IP rate, bit/s): down 10.0.1.2 $d2, down 2001:db8:3::2 $d3, up 10.0.1.2 $u2, up 10.0.3.2 $u3"

SCALE=$SCALE IV=$IV python3 - "$d2" "$d3" "$u2" "$u3" <<'PY' || fail "gw-top's rates are off (see above)"
import json, os, sys
d2, d3, u2, u3 = map(float, sys.argv[1:])
SCALE, IV = int(os.environ["SCALE"]), float(os.environ["IV"])
lines = [json.loads(l) for l in open("/tmp/live.json")]
assert len(lines) == 4, f"{len(lines)} refreshes, want 4"
# The LAN ports' counters: for r0, then r2, the clock, tx bytes, tx packets, rx bytes, rx
# packets and the clock again. A port's reading is dated at the middle of its two clock readings,
# and left out when they are more than 25 ms apart (the sampler held up: when is unknown).
rows = [list(map(float, l.split())) for l in open("/tmp/truth.txt") if len(l.split()) == 12]
truth = [[([(r[6 * p] + r[6 * p + 5]) / 2] + r[6 * p + 1:6 * p + 5]) for r in rows
          if r[6 * p + 5] - r[6 * p] <= 0.025] for p in (0, 1)]
for p, port in zip(("r0", "r2"), truth):
    assert len(port) >= 0.5 * len(rows) > 0, f"{p}: {len(port)} of {len(rows)} samples read within 25 ms"
print(f"port samples: {len(rows)}, every {(rows[-1][0] - rows[0][0]) / max(len(rows) - 1, 1) * 1e3:.0f} ms")
def ip_bytes(t, col):  # IP bytes through a port by time t: Ethernet headers off, interpolated
    port = truth[(col - 1) // 4]
    c = (col - 1) % 4 + 1
    for a, b in zip(port, port[1:]):
        if a[0] <= t <= b[0]:
            f = (t - a[0]) / (b[0] - a[0]) if b[0] > a[0] else 0
            va, vb = a[c] - 14 * a[c + 1], b[c] - 14 * b[c + 1]
            return va + f * (vb - va)
    raise SystemExit(f"no port counters around {t} ({port[0][0]}..{port[-1][0]})")
# Each client: its addresses, its port's columns (down = tx, up = rx), and the flows' rates:
# the class rate for the downloads (the flows fill their classes), iperf3's figures.
want = {
    "10.0.1.2": (["10.0.1.2", "2001:db8:1::2"], 1, 3, [1e6 / SCALE, d2], [u2]),
    "10.0.3.2": (["10.0.3.2", "2001:db8:3::2"], 5, 7, [2e6 / SCALE, d3], [u3]),
}
bad = 0
worst = 0.0
sums = {}
def check(what, got, exp, limit=0.10):
    global bad, worst
    err = got / exp - 1
    worst = max(worst, abs(err))
    ok = abs(err) <= limit
    bad += not ok
    print(f"{what}: {got / 1e6:.3f} Mbit/s, expected {exp / 1e6:.3f}: {err * 100:+.1f}%{'' if ok else f'  <-- more than {limit * 100:.0f}% off'}")
# On the debug kernel (2-3 times slower) the senders do not hold their pace: a window of 4
# refreshes need not see iperf3's whole-run rate (seen there: the 3 Mbit/s UDP upload at 2.5
# over the run and 3.0 in the window, the port's counters agreeing with gw-top within 3%). There
# the means are shown, not held to iperf3; each refresh against the port's own counters, the
# truth, stays at 10%.
import os
DEBUG_KERNEL = os.uname().release.endswith(("-debug", "-kasan"))
# Refreshes are due every IV s from the first; a stalled VM delays one and shortens the next, so
# the intervals must join up (each starts where the last ended) and keep the cadence overall.
# Under TCG on a busy host the guest stalls for seconds at a time ("htb: too many events!" in
# its log): 10.35 s was seen for 6, in 1 of 3 runs, with imq's divert code old and new alike.
span = lines[-1]["time"] - lines[0]["time"]
assert 2.75 * IV < span < 6.5 * IV, f"4 refreshes over {span:.3f} s, want about {3 * IV}"
for a, b in zip(lines, lines[1:]):
    assert abs(b["time"] - b["interval"] - a["time"]) < 0.01, (a, b)
checked = 0
for n, l in enumerate(lines):
    t1, dt = l["time"], l["interval"]
    assert 0 < dt < 2.5 * IV, dt
    if dt < IV / 2:
        # Too short beside 50 ms port samples for a 10% bound (it follows a stall).
        print(f"refresh {n}: {dt:.3f} s after the last, not compared")
        continue
    checked += 1
    rows = {c["address"]: c for c in l["clients"] if c["address"]}
    for addr, (addrs, dcol, ucol, _, _) in want.items():
        c = rows.get(addr)
        if c is None or c["addresses"] != addrs:
            print(f"refresh {n}: no client {addr} with addresses {addrs}: {l['clients']}")
            bad += 1
            continue
        for what, col in (("down", dcol), ("up", ucol)):
            got = c[f"{what}_bps"]
            port = (ip_bytes(t1, col) - ip_bytes(t1 - dt, col)) * 8 / dt
            check(f"refresh {n}: {addr} {what} (its port: {port / 1e6:.3f})", got, port)
            sums.setdefault((addr, what), []).append((got, dt))
    # The default classes carry nothing (every packet was a client's).
    for c in l["clients"]:
        if c["address"] is None and c["down_bps"] + c["up_bps"] > 20000:
            print(f"refresh {n}: traffic outside the clients' classes: {c}")
            bad += 1
    d = {x["dev"]: x for x in l["devices"]}
    assert set(d) == {"imq0", "imq1"} and d["imq0"]["role"] == "down", l["devices"]
    # imq0 sends the two downloads.
    down = sum(rows[a]["down_bps"] for a in want if a in rows)
    check(f"refresh {n}: imq0 out (the clients' downloads)", d["imq0"]["tx_bps"], down)
assert checked >= 3, f"only {checked} refreshes long enough to compare"
# Over the refreshes compared (weighed by their length), the flows' rates as iperf3 measured
# them (the class rates, which a stalled VM's HTB can fall short of for a moment, are shown).
for addr, (_, _, _, downs, ups) in want.items():
    for what, exps in (("down", downs), ("up", ups)):
        got = sums.get((addr, what), [(0, 1)])
        mean = sum(r * t for r, t in got) / sum(t for _, t in got)
        if len(exps) > 1:
            print(f"mean: {addr} {what}: {(mean / exps[0] - 1) * 100:+.1f}% from the class rate")
        check(f"mean: {addr} {what} (iperf3)", mean, exps[-1], 1e9 if DEBUG_KERNEL else 0.10)
print(f"largest deviation {worst * 100:.1f}%")
sys.exit(1 if bad else 0)
PY

# Totals: with the traffic over, gw-top's totals are tc's class counters and ip's device
# counters. A stray packet (neighbour discovery, a late FIN) may still pass: the counters are
# read before and after gw-top, and gw-top is held to them only when nothing moved meanwhile.
counters() { # counters SUFFIX
	local d
	for d in imq0 imq1; do
		tc -s class show dev $d >/tmp/class-$d.$1
		ip -s -j link show dev $d >/tmp/link-$d.$1
	done
}
sleep 1
for try in 1 2 3 4 5; do
	counters before
	"$bin" --json --interval 0.5 --count 1 >/tmp/final.json || fail "gw-top failed"
	counters txt
	still=1
	for d in imq0 imq1; do
		cmp -s /tmp/class-$d.before /tmp/class-$d.txt || still=0
		cmp -s /tmp/link-$d.before /tmp/link-$d.txt || still=0
	done
	[ $still = 1 ] && break
	note "try $try: packets passed while gw-top read; again"
	sleep 1
done
[ $still = 1 ] || fail "the counters never stood still for a read (5 tries)"
python3 - <<'PY' || fail "gw-top's totals differ from tc's"
import json, re
l = json.loads(open("/tmp/final.json").read())
bad = 0
def sent(dev):  # class -> (bytes, packets, drops) from tc's plain output
    t = open(f"/tmp/class-{dev}.txt").read()
    return {m[0]: tuple(map(int, m[1:])) for m in re.findall(r"class htb (\S+) .*\n Sent (\d+) bytes (\d+) pkt \(dropped (\d+)", t)}
cls = {"down": sent("imq0"), "up": sent("imq1")}
seen = {"down": set(), "up": set()}
for c in l["clients"]:
    for role in ("down", "up"):
        want = [sum(cls[role][k][i] for k in c[f"{role}_classes"]) for i in range(3)]
        got = [c[f"{role}_bytes"], c[f"{role}_packets"], c[f"{role}_drops"]]
        seen[role].update(c[f"{role}_classes"])
        if got != want:
            print(f"{c['address'] or c['class']} {role}: gw-top {got}, tc {want}")
            bad += 1
    print(f"{c['address'] or c['class']}: down {c['down_bytes']} bytes {c['down_classes']}, up {c['up_bytes']} bytes {c['up_classes']}, drops {c['drops']}")
for role in ("down", "up"):
    # Every leaf class is in exactly one row (1:1 is the inner class).
    if seen[role] != set(cls[role]) - {"1:1"}:
        print(f"{role}: rows cover {sorted(seen[role])}, classes {sorted(cls[role])}")
        bad += 1
for d in l["devices"]:
    s = json.load(open(f"/tmp/link-{d['dev']}.txt"))[0]["stats64"]
    want = [s["rx"]["bytes"], s["rx"]["packets"], s["tx"]["bytes"], s["tx"]["packets"]]
    got = [d["rx_bytes"], d["rx_packets"], d["tx_bytes"], d["tx_packets"]]
    if got != want:
        print(f"{d['dev']}: gw-top {got}, ip {want}")
        bad += 1
assert len(l["clients"]) == 4, l["clients"]  # two clients, two default classes
raise SystemExit(1 if bad else 0)
PY

# The kernel's own answers, recorded for gw-top's host tests (tools/gw-top/testdata/nl-*):
# each device's class dump, filter dump and link, as the bytes read from the socket, with
# what tc and ip print beside them.
for d in imq0 imq1; do
	python3 - "$d" <<'PY' || note "could not record $d's netlink answers"
import socket, struct, sys
dev = sys.argv[1]
ifindex = socket.if_nametoindex(dev)
def record(name, msg_type, flags, body):
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    s.send(struct.pack("=IHHII", 16 + len(body), msg_type, flags, 1, 0) + body)
    data, done = b"", False
    while not done:
        d = s.recv(1 << 16)
        data += d
        off = 0
        while off + 16 <= len(d):
            length, ty = struct.unpack_from("=IH", d, off)
            # NLMSG_ERROR or NLMSG_DONE end a dump; a plain request has one answer.
            done = done or ty in (2, 3) or not flags & 0x300
            off += (length + 3) & ~3
    open(f"/out/logs/nl-{name}-{dev}.bin", "wb").write(data)
tcmsg = struct.pack("=BxxxiIII", 0, ifindex, 0, 0, 0)
record("class", 42, 0x301, tcmsg)   # RTM_GETTCLASS, dump
record("filter", 46, 0x301, tcmsg)  # RTM_GETTFILTER at the root qdisc, dump
record("link", 18, 0x1, struct.pack("=BxHiII", 0, 0, ifindex, 0, 0))  # RTM_GETLINK
PY
	tc -j -s class show dev $d >/out/logs/nl-class-$d.json
	tc -j filter show dev $d >/out/logs/nl-filter-$d.json
	ip -s -j link show dev $d >/out/logs/nl-link-$d.json
done

# The table (not a terminal: no escape sequences), sorted by rate, unmapped classes by id.
"$bin" --interval 0.5 --count 1 >/tmp/table.txt || fail "gw-top (table) failed"
cat /tmp/table.txt
grep -q $'\e' /tmp/table.txt && fail "escape sequences in the table without a terminal"
grep -qE '^10\.0\.1\.2 \+1 .* 1:10/1:10$' /tmp/table.txt || fail "no row for 10.0.1.2"
grep -qE '^10\.0\.3\.2 \+1 .* 1:20/1:20$' /tmp/table.txt || fail "no row for 10.0.3.2"
grep -qE '^imq0:1:99 .* 1:99/-$' /tmp/table.txt || fail "no row for imq0's default class"
# On a terminal each refresh clears the screen and redraws the table.
script -qc "$bin --interval 0.5 --count 2" /dev/null </dev/null >/tmp/tty.txt
[ "$(grep -c $'\e\[H\e\[2J' /tmp/tty.txt)" = 2 ] || fail "no redraws on a terminal: $(od -c /tmp/tty.txt | head)"
grep -q '10\.0\.3\.2 +1' /tmp/tty.txt || fail "no table on a terminal: $(cat /tmp/tty.txt)"
# An upload device that is named but absent is an error; the default one is optional.
out=$("$bin" --up imq5 --count 1 2>&1) && fail "gw-top ran with --up imq5"
grep -q 'no device imq5' <<<"$out" || fail "--up imq5: $out"
for t in iptables ip6tables; do ip netns exec rtr $t -t mangle -F; done
for _ in $(seq 50); do rmmod imq 2>/dev/null && break; sleep 0.2; done
xt_imq_unload
