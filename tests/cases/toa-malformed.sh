# Malformed and repeated options in real handshakes: nothing crashes, connections work, a
# broken option is never used (the server sees the balancer) and is counted; with several
# options the last one (nearest the client) wins. (A zero-length option with 5 or more bytes of
# header after it never reaches toa: the kernel's own TCP-AO/MD5 option walk drops the segment;
# the client's retransmission, carrying no option, completes the handshake.)
. /src/tests/vm/lib.sh
topo_3
fullnat_lb 0
insmod "$(ko toa)"

run() { # run VARIANT PLACE WANT_PEER_V4 WANT_PEER_V6
	toa_through_lb "$@"
	note "$1 in $2: server sees $3 and $4 (malformed $(toa_stat toa_malformed), ignored $(toa_stat toa_ignored), no_toa $(toa_stat syn_recv_sock_no_toa); lb: $(grep -c inserted /tmp/toa-lb.log) inserted)"
}
before() { toa_stat "$1"; }

m0=$(before toa_malformed) i0=$(before toa_ignored)
run bad-len ack 10.0.2.1 2001:db8:2::1
[ "$(toa_stat toa_ignored)" -ge $((i0 + 2)) ] || fail "bad-len options not counted as ignored"
run truncated ack 10.0.2.1 2001:db8:2::1
run zero-len ack 10.0.2.1 2001:db8:2::1
cat /proc/net/toa_stats
[ "$(toa_stat toa_malformed)" -ge $((m0 + 4)) ] || fail "truncated/zero-len options not counted as malformed"
run repeated ack 10.0.1.2 2001:db8:1::2
[ "$(toa_stat toa_multiple)" -ge 2 ] || fail "repeated options not counted"
cat /proc/net/toa_stats
rmmod toa
