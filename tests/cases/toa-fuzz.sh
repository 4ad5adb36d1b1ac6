# Fuzzing toa through the test balancer: toa-lb --variant random:SEED gives every client segment
# of the handshake and the first data a fresh random mix of options (TOA with the real client, a
# forged one or a wrong length, standard kinds with right and wrong lengths, MD5, TCP-AO,
# unknown kinds, raw bytes; its log shows each). Clients connect over IPv4 and IPv6, several at
# once, while toa is unloaded and loaded again every few seconds. What must hold: the kernel
# stays up (panic_on_warn; the host's stall watchdog), every connection that completes delivers
# its data intact, and the address the server sees is the balancer's (no option used) or one
# that a TOA option in the segments really carried, never anything else; a NAT64 lookup
# (getsockopt) on every connection answers only an address an option carried. `make fuzz` runs it
# longer (FUZZ_SECS, FUZZ_SEED); in `make test` FUZZ_SECS=60 with seed 1.
. /src/tests/vm/lib.sh
topo_3
fullnat_lb 0
seed=${FUZZ_SEED:-1} secs=${FUZZ_SECS:-60}
insmod "$(ko toa)"
toa_lb_start 0 both "random:$seed"

# The server: an IPv4 and an IPv6 listener; one line per connection: peer address, port, what
# the client sent; and one per NAT64 lookup (getsockopt TOA_SO_GET_LOOKUP): its answer.
ip netns exec srv python3 -u - >/tmp/fz-server.log 2>&1 <<'PY' &
import errno, socket, struct, threading
def listener(fam, addr):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, 8080))
    s.listen(64)
    return s
socks = [listener(socket.AF_INET, "0.0.0.0"), listener(socket.AF_INET6, "::")]
print("listening", flush=True)
out = threading.Lock()
def say(*words):
    # One whole line per write: print() from several threads interleaves its pieces.
    with out:
        print(*words, flush=True)
def serve(c):
    try:
        c.settimeout(10)
        p = c.getpeername()
        try:
            b = c.getsockopt(socket.IPPROTO_IP, 4096, 20)
            say("lookup ok", socket.inet_ntop(socket.AF_INET6, b[:16]), struct.unpack("!H", b[16:18])[0])
        except OSError as e:
            say("lookup", errno.errorcode.get(e.errno, str(e.errno)))
        data = b""
        while not data.endswith(b"\n"):
            b = c.recv(100)
            if not b:
                break
            data += b
        say("peer", p[0], p[1], data.decode(errors="replace").strip() or "-")
        c.sendall(b"ok")
    except OSError as e:
        say("error", e)
    finally:
        c.close()
def accept(s):
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
for s in socks:
    threading.Thread(target=accept, args=(s,), daemon=True).start()
threading.Event().wait()
PY
wait_until 10 "server did not start: $(cat /tmp/fz-server.log)" grep -q listening /tmp/fz-server.log

# Churn: toa goes and comes back every few seconds while connections are under way.
(
	end=$(($(date +%s) + secs))
	while [ "$(date +%s)" -lt "$end" ]; do
		sleep 3
		rmmod toa && insmod "$(ko toa)" && echo reloaded
	done
) >/tmp/fz-churn.log 2>&1 &
churn=$!

# The clients: four at a time for SECS seconds; one line per connection.
ip netns exec cli python3 -u - "$secs" >/tmp/fz-clients.log 2>&1 <<'PY'
import random, socket, sys, threading, time
end = time.monotonic() + float(sys.argv[1])
lock, out, n = threading.Lock(), threading.Lock(), [0]
def say(*words):
    # One whole line per write: print() from several threads interleaves its pieces.
    with out:
        print(*words, flush=True)
def beat(i):
    try:
        with open("/dev/console", "w") as c:
            c.write(f"@@BEAT toa-fuzz connection {i}\n")
    except OSError:
        pass
def client(k):
    r = random.Random(k)
    while time.monotonic() < end:
        with lock:
            n[0] += 1
            i = n[0]
        beat(i)
        six = r.random() < 0.5
        vip = ("2001:db8:9::100" if six else "10.0.9.100", 80)
        s = socket.socket(socket.AF_INET6 if six else socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(8)
        try:
            s.connect(vip)
            port = s.getsockname()[1]
            s.sendall(f"hello {i}\n".encode())
            ok = s.recv(2) == b"ok"
            say("conn", i, 6 if six else 4, port, "ok" if ok else "noreply")
        except OSError as e:
            say("conn", i, 6 if six else 4, 0, "fail", type(e).__name__)
        finally:
            s.close()
ts = [threading.Thread(target=client, args=(k,)) for k in range(4)]
for t in ts:
    t.start()
for t in ts:
    t.join()
PY
wait $churn || true
sleep 1
grep -q "^toa" /proc/modules || insmod "$(ko toa)"
note "clients: $(grep -c ' ok$' /tmp/fz-clients.log) completed of $(grep -c '^conn' /tmp/fz-clients.log); toa-lb: $(grep -c inserted /tmp/toa-lb.log) segments changed; toa reloaded $(grep -c reloaded /tmp/fz-churn.log) times"
cat /proc/net/toa_stats

# The oracle.
python3 - /tmp/fz-clients.log /tmp/fz-server.log /tmp/toa-lb.log <<'PY' || fail "see above"
import ipaddress, re, sys
clients, server, lb = (open(f).read().splitlines() for f in sys.argv[1:])
# Every TOA option the changed segments' option areas hold (toa-lb logs them whole: an inserted
# option may run on into the segment's own): kind 254, length 8 or 20, port, address.
carried = set()
for line in lb:
    m = re.match(r"inserted \d+ bytes:((?: [0-9a-f]{2})*)$", line)
    if not m:
        continue
    b = bytes(int(x, 16) for x in m.group(1).split())
    for i in range(len(b)):
        for ln in (8, 20):
            if b[i:i + 2] == bytes([254, ln]) and i + ln <= len(b):
                carried.add((ipaddress.ip_address(b[i + 4:i + ln]), int.from_bytes(b[i + 2:i + 4], "big")))
balancer = {ipaddress.ip_address("10.0.2.1"), ipaddress.ip_address("2001:db8:2::1")}
sent = {}
for line in clients:
    f = line.split()
    if f and f[0] == "conn" and f[4] == "ok":
        sent[f"hello {f[1]}"] = f
bad, seen = [], {}
for line in server:
    f = line.split(maxsplit=3)
    if not f or f[0] != "peer":
        continue
    a = ipaddress.ip_address(f[1])
    if a.version == 6 and a.ipv4_mapped:
        a = a.ipv4_mapped
    port, data = int(f[2]), f[3]
    seen[data] = (a, port)
    if a not in balancer and (a, port) not in carried:
        bad.append(f"server saw {a} port {port} ({data}): neither the balancer nor a TOA option of the segments")
lookups = {}
for line in server:
    f = line.split()
    if not f or f[0] != "lookup":
        continue
    lookups[f[1]] = lookups.get(f[1], 0) + 1
    if f[1] == "ok":
        a, port = ipaddress.ip_address(f[2]), int(f[3])
        if (a, port) not in carried:
            bad.append(f"a NAT64 lookup answered {a} port {port}: not a TOA option of the segments")
    elif f[1] not in ("EINVAL", "EFAULT", "ENOPROTOOPT", "ENOTCONN"):
        bad.append(f"a NAT64 lookup failed with {f[1]}")
print("NAT64 lookups:", " ".join(f"{k} {v}" for k, v in sorted(lookups.items())))
for data in sent:
    if data not in seen:
        bad.append(f"{data}: the client got its answer but the server logged other data")
total = sum(1 for l in clients if l.startswith("conn "))
print(f"{total} connections, {len(sent)} completed, {len(seen)} seen by the server, "
      f"{sum(1 for v in seen.values() if v[0] not in balancer)} with an address from an option, "
      f"{len(carried)} distinct TOA options inserted")
if total == 0 or len(sent) < total // 4:
    bad.append("fewer than a quarter of the connections completed")
for b in bad[:20]:
    print("FAIL:", b)
sys.exit(1 if bad else 0)
PY
[ "$(toa_stat probe_missed)" = 0 ] || fail "probe hits missed: $(toa_stat probe_missed)"
pkill -f 'toa-lb --queue' || true
rmmod toa
