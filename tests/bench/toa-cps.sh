# Connections per second accepted by a real server (accept + getpeername + close per
# connection), with toa loaded against without, in the same VM run, alternating runs and taking
# the median of each. Two setups: a direct veth link (no option: what every TCP connection pays
# for the probes) and through the FULLNAT test balancer (every connection carries the option).
. /src/tests/vm/lib.sh
SECS=${BENCH_SECS:-8}
ROUNDS=${BENCH_ROUNDS:-3}
topo_3
fullnat_lb 0
toa_lb_start 0
ip netns exec srv python3 -u -c '
import socket, threading
def serve(fam, addr):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 8080)); s.listen(512)
    while True:
        c, a = s.accept()
        c.getpeername()
        c.close()
threading.Thread(target=serve, args=(socket.AF_INET, "0.0.0.0"), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
' >/tmp/bench-server.log 2>&1 &
sleep 1

# cps ADDR PORT: connections per second from 2 client processes over $SECS seconds.
cps() {
	ip netns exec cli python3 -c '
import os, socket, sys, time
addr, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
r, w = os.pipe()
for _ in range(2):
    if os.fork() == 0:
        n, end = 0, time.time() + secs
        while time.time() < end:
            s = socket.create_connection((addr, port), timeout=5)
            s.recv(1)
            s.close()
            n += 1
        os.write(w, b"%d\n" % n)
        os._exit(0)
os.close(w)
total = sum(int(x) for x in os.fdopen(r).read().split())
for _ in range(2):
    os.wait()
print("%.1f" % (total / secs))
' "$1" "$2" "$SECS"
}

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

bench() { # bench NAME ADDR PORT
	local base=() ours=() i
	for i in $(seq "$ROUNDS"); do
		base+=("$(cps "$2" "$3")")
		insmod "$(ko toa)"
		ours+=("$(cps "$2" "$3")")
		rmmod toa
	done
	local b o
	b=$(printf '%s\n' "${base[@]}" | median)
	o=$(printf '%s\n' "${ours[@]}" | median)
	note "$1: without toa ${base[*]}; with toa ${ours[*]}"
	echo "bench $1: ours=$o baseline=$b ratio=$(awk -v o="$o" -v b="$b" 'BEGIN { printf "%.3f", o / b }') (connections/s)"
}
bench toa_cps_direct 10.0.2.2 8080
bench toa_cps_fullnat 10.0.9.100 80
