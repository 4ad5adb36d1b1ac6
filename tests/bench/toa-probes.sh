# What each of toa's probes costs, in instructions (under `make bench`'s icount a guest
# nanosecond is 2^-shift instructions, so timing a loop in the guest counts its instructions):
# - toa_conn_insn: a whole connection (connect, accept, getpeername, close, in one thread over
#   loopback, without the option: what every TCP connection pays) with toa loaded against
#   without;
# - toa_getpeername_insn: one getpeername() with toa loaded against without (its return probe
#   on inet_getname, the only probe a running server meets after accept);
# - as notes: how often each probed function runs per connection (counted by recording tracefs
#   fprobe events on the same functions), what an fprobe costs the kernel by itself per hit,
#   entry-only and with a return handler (an fprobe event on inet_getname that records
#   nothing: a filter that never holds), and so the return probes' cost per connection and
#   what the entry probes cost at most per hit.
. /src/tests/vm/lib.sh
ROUNDS=${BENCH_ROUNDS:-6}
CONNS=${BENCH_CONNS:-3000}
CALLS=${BENCH_CALLS:-100000}
tr=/sys/kernel/tracing
[ -d $tr/events ] || mount -t tracefs nodev $tr
[ -w $tr/dynamic_events ] || skip "no tracefs dynamic events (CONFIG_FPROBE_EVENTS)"
shift=$(printf '%s\n' "${VM_ICOUNT:-}" | sed -n 's/.*shift=\([0-9]*\).*/\1/p')
if [ -n "$shift" ]; then
	unit=instructions
	per_ns=$(awk -v s="$shift" 'BEGIN { print 1 / 2 ^ s }')
else
	unit=ns
	per_ns=1
	note "not under icount: figures are nanoseconds, not instructions"
fi
ip link set lo up

cat >/tmp/probe-loops.py <<'EOF'
import socket, struct, sys, time
what, n = sys.argv[1], int(sys.argv[2])
l = socket.socket()
# connopt: a fixed port, whose handshake-completing ACKs the test balancer's option inserter
# rewrites (see below).
l.bind(("127.0.0.1", 7654 if what == "connopt" else 0))
l.listen(128)
addr = l.getsockname()
# The server closes first and the client resets: no TIME_WAIT piles up over the rounds (its
# sockets made each connect's port search longer, and the figure drift by ~1%).
linger0 = struct.pack("ii", 1, 0)
def conn():
    c = socket.create_connection(addr)
    a, _ = l.accept()
    a.getpeername()
    a.close()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger0)
    c.close()
if what in ("conn", "connopt"):
    for _ in range(200):
        conn()
    t = time.perf_counter_ns()
    for _ in range(n):
        conn()
else:
    if what == "namebusy":
        # A connection whose handshake carried the option (port 7654, see below), kept open:
        # toa's table holds its entry while the loop asks the other socket's peer.
        l2 = socket.socket()
        l2.bind(("127.0.0.1", 7654))
        l2.listen(1)
        c2 = socket.create_connection(("127.0.0.1", 7654))
        a2, _ = l2.accept()
    c = socket.create_connection(addr)
    a, _ = l.accept()
    gp = a.getpeername
    for _ in range(1000):
        gp()
    t = time.perf_counter_ns()
    for _ in range(n):
        gp()
print((time.perf_counter_ns() - t) / n)
EOF

# loop conn|connopt|name|namebusy: nanoseconds per connection (connopt: with the option) or per
# getpeername (namebusy: with another connection's entry in toa's table; one thread, pinned).
loop() {
	local n=$CONNS
	case $1 in name*) n=$CALLS ;; esac
	taskset -c 0 python3 /tmp/probe-loops.py "$1" "$n"
}
insn() { awk -v v="$1" -v k="$per_ns" 'BEGIN { printf "%.0f", v * k }'; }

# with WHAT LOOP MODE: LOOP's figure (in $unit) with WHAT on (MODE on: `WHAT_on` before, `WHAT_off`
# after) or off, for abba_medians.
with() {
	[ "$3" = on ] && "$1_on"
	insn "$(loop "$2")"
	[ "$3" = on ] && "$1_off"
	return 0
}
diff_ob() { awk -v o="$abba_o" -v b="$abba_b" 'BEGIN { printf "%.0f", o - b }'; }
toa_on() { insmod "$(ko toa)"; }
toa_off() { rmmod toa; }

# The functions toa probes (knet/tcp.rs), return probes marked.
entry_fns="tcp_v4_route_req tcp_v6_route_req inet_csk_reqsk_queue_add inet_csk_complete_hashdance tcp_v4_syn_recv_sock tcp_v6_syn_recv_sock __reqsk_free"
ret_fns="inet_getname inet6_getname"

# Hits per connection: record every probed function (and the tracepoint) over CONNS
# connections with toa unloaded.
events_add() {
	local f
	for f in $entry_fns; do echo "f:toab/$f $f" >>$tr/dynamic_events; done
	for f in $ret_fns; do echo "f:toab/${f}_ret $f%return" >>$tr/dynamic_events; done
}
events_del() {
	echo 0 >$tr/events/toab/enable 2>/dev/null
	echo 0 >$tr/events/tcp/tcp_destroy_sock/enable
	grep '^f:toab/' $tr/dynamic_events | sed 's/^f:\([^ ]*\).*/-:\1/' >>$tr/dynamic_events
}
events_add
echo 65536 >$tr/buffer_size_kb
echo >$tr/trace
echo 1 >$tr/events/toab/enable
echo 1 >$tr/events/tcp/tcp_destroy_sock/enable
n_conns=500
taskset -c 0 python3 /tmp/probe-loops.py conn $n_conns >/dev/null
echo 0 >$tr/events/toab/enable
echo 0 >$tr/events/tcp/tcp_destroy_sock/enable
declare -A hits
for f in $entry_fns $ret_fns tcp_destroy_sock; do
	ev=$f
	case " $ret_fns " in *" $f "*) ev=${f}_ret ;; esac
	# The warm-up's 200 connections count too.
	hits[$f]=$(awk -v c="$(grep -c " $ev:" $tr/trace)" -v n=$((n_conns + 200)) 'BEGIN { printf "%.2f", c / n }')
done
cat $tr/per_cpu/cpu*/stats | awk '/^overrun:/ && $2 > 0 { o = 1 } END { exit !o }' &&
	fail "the trace buffer overran: hit counts would be low"
events_del
note "hits per connection: $(for f in $entry_fns $ret_fns tcp_destroy_sock; do printf '%s %s, ' "$f" "${hits[$f]}"; done)"

# An fprobe by itself, on inet_getname: entry only, and entry + return, recording nothing.
fp_on() { # fp_on SUFFIX: the event on inet_getname$SUFFIX
	echo "f:toab/nop inet_getname$1" >>$tr/dynamic_events
	echo 'common_pid < 0' >$tr/events/toab/nop/filter
	echo 1 >$tr/events/toab/nop/enable
}
fp_off() {
	echo 0 >$tr/events/toab/nop/enable
	echo "-:toab/nop" >>$tr/dynamic_events
}
fp_entry_on() { fp_on ""; }
fp_entry_off() { fp_off; }
fp_ret_on() { fp_on %return; }
fp_ret_off() { fp_off; }
abba_medians fprobe_entry off on with fp_entry name
fp_entry=$(diff_ob)
abba_medians fprobe_return off on with fp_ret name
fp_ret=$(diff_ob)
note "an fprobe that does nothing, per hit: $fp_entry $unit entry only, $fp_ret with a return handler"

abba toa_getpeername_insn "$unit per getpeername" off on with toa name
getname=$(diff_ob)
abba toa_conn_insn "$unit per connection" off on with toa conn
total=$(diff_ob)

# The same loop with the option in every handshake's final ACK: the client's second packet to
# port 7654 goes through NFQUEUE to the test balancer's option inserter (its own address and
# port as the client's), with toa loaded and without alike. What toa adds is then the whole
# path of an entry: made at the handshake, moved to the child, read by getname, dropped with
# the socket.
toa_lb_loopback 7654 3
# checked LOOP N COUNTER MIN WHAT: one run of LOOP (N iterations after its warm-up) with toa
# loaded; fails unless toa's COUNTER (WHAT it counts) reached MIN.
checked() {
	toa_on
	taskset -c 0 python3 /tmp/probe-loops.py "$1" "$2" >/dev/null
	local n
	n=$(toa_stat "$3")
	toa_off
	[ "$n" -ge "$4" ] || fail "$1: $n $5, expected at least $4"
}
# Once, to check that the option arrives and toa takes every connection's.
checked connopt 100 syn_recv_sock_toa 300 "connections whose option toa took"
abba toa_conn_option_insn "$unit per connection with the option" off on with toa connopt
opt_total=$(diff_ob)
# getpeername() on a socket without the option while another one has it (a server whose
# balanced and direct connections mix): the entry half looks the socket up and skips the
# return half. Checked once: every call found the table non-empty and the socket not in it.
checked namebusy 1000 getname_toa_empty 2000 "getpeername calls that met a table with entries"
abba toa_getpeername_other_insn "$unit per getpeername without the option, another connection with it" off on with toa namebusy
kill $TOA_LB_PID
iptables -t mangle -F OUTPUT
note "with the option toa adds $opt_total $unit a connection, $((opt_total - total)) more than without"

# The return probes' share: getname's hits per connection times its cost per hit, measured
# (toa_getpeername: an fprobe's dispatch through the function graph and a look into the empty
# table). The rest is the entry probes (each an ftrace callback of its own: the trampoline, the
# recursion guard and the handler, such as reading the SYN's options) and the tracepoint (a
# direct call), shown per entry-probe hit as an upper bound. The do-nothing fprobe events above
# cost more per hit than toa's probes: an event also reserves and discards a ring-buffer record.
sum=0 entry_hits=0
line=
for f in $ret_fns; do
	c=$(awk -v h="${hits[$f]}" -v p="$getname" 'BEGIN { printf "%.0f", h * p }')
	sum=$((sum + c))
	line="$line$f ${hits[$f]} x $getname = $c; "
done
for f in $entry_fns; do
	entry_hits=$(awk -v a="$entry_hits" -v h="${hits[$f]}" 'BEGIN { print a + h }')
done
note "per connection ($unit): ${line}the rest, $((total - sum)) of $total measured, is the entry probes' $entry_hits hits (at most $(awk -v r=$((total - sum)) -v h="$entry_hits" 'BEGIN { printf "%.0f", (h > 0 ? r / h : 0) }') each, handler included) and the tracepoint"
