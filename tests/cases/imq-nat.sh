# behavior=XY places imq's hooks before (B) or after (A) NAT: X at PREROUTING (DNAT), Y at
# POSTROUTING (SNAT). For each of AA, AB, BA, BB (the module reloaded with it) two uploads run
# at once through the router: one to the router's public address 10.0.1.1:8000, DNATed to
# srv 10.0.2.2:5201 and diverted at PREROUTING to imq0; one to srv:5202, MASQUERADEd to
# 10.0.2.1 and diverted at POSTROUTING to imq1. Each device's htb has a 1mbit class for the
# address before NAT (imq0: dst 10.0.1.1; imq1: src 10.0.1.2), a 2mbit class for the address
# after NAT (dst 10.0.2.2; src 10.0.2.1) and a 4mbit default: the rate each flow gets says
# which address the qdisc saw. Both flows complete (their replies come back through conntrack
# and NAT) and conntrack shows them translated and assured.
. /src/tests/vm/lib.sh
. /src/tests/vm/imq-lib.sh
imq_setup

topo_3
iperf_server srv 5201
iperf_server srv 5202
r() { ip netns exec rtr "$@"; }
if kernel_has xt_nat; then
	r iptables -t nat -A PREROUTING -i r0 -d 10.0.1.1 -p tcp --dport 8000 \
		-j DNAT --to-destination 10.0.2.2:5201
	r iptables -t nat -A POSTROUTING -o r1 -p tcp --dport 5202 -j MASQUERADE
else
	# Debian's rt flavour has no xt_nat (the DNAT and MASQUERADE targets): the same NAT in
	# nftables, at the same priorities (dstnat -100, srcnat 100), so behavior=XY means the same.
	note "no xt_nat in this kernel: NAT by nftables"
	r nft -f - <<-'EOF'
		table ip nat_test {
			chain pre {
				type nat hook prerouting priority dstnat; policy accept;
				iifname "r0" ip daddr 10.0.1.1 tcp dport 8000 dnat to 10.0.2.2:5201
			}
			chain post {
				type nat hook postrouting priority srcnat; policy accept;
				oifname "r1" tcp dport 5202 masquerade
			}
		}
	EOF
fi
sleep 0.5

# tree DEV PRE_NAT_MATCH POST_NAT_MATCH
tree() {
	local dev=$1
	ip link set "$dev" up
	tc qdisc add dev "$dev" root handle 1: htb default 30
	tc class add dev "$dev" parent 1: classid 1:10 htb rate 1mbit
	tc class add dev "$dev" parent 1: classid 1:20 htb rate 2mbit
	tc class add dev "$dev" parent 1: classid 1:30 htb rate 4mbit
	for c in 10 20 30; do tc qdisc add dev "$dev" parent 1:$c handle $c: pfifo; done
	tc filter add dev "$dev" parent 1:0 protocol ip prio 1 u32 match $2 flowid 1:10
	tc filter add dev "$dev" parent 1:0 protocol ip prio 2 u32 match $3 flowid 1:20
}

rate_of() { [ "$1" = A ] && echo 2 || echo 1; }
for beh in AA AB BA BB; do
	imq_load behavior=$beh
	dmesg_has "imq: loaded: numdevs=2 numqueues=1 behavior=$beh"
	tree imq0 "ip dst 10.0.1.1/32" "ip dst 10.0.2.2/32"
	tree imq1 "ip src 10.0.1.2/32" "ip src 10.0.2.1/32"
	r iptables -t mangle -A PREROUTING -i r0 -p tcp --dport 8000 -j IMQ --todev 0
	r iptables -t mangle -A POSTROUTING -o r1 -p tcp --dport 5202 -j IMQ --todev 1
	iperf_bg cli 10.0.1.1 10 /tmp/dnat.json -p 8000
	p1=$!
	iperf_bg cli 10.0.2.2 10 /tmp/snat.json -p 5202
	p2=$!
	wait $p1 || fail "$beh: the DNATed flow did not complete: $(tail -n 5 /tmp/dnat.json)"
	wait $p2 || fail "$beh: the SNATed flow did not complete: $(tail -n 5 /tmp/snat.json)"
	ct=$(r cat /proc/net/nf_conntrack)
	grep -E -q 'src=10\.0\.1\.2 dst=10\.0\.1\.1 sport=[0-9]+ dport=8000 .*src=10\.0\.2\.2 dst=10\.0\.1\.2 sport=5201 .*ASSURED' <<<"$ct" ||
		fail "$beh: no assured DNAT conntrack entry: $ct"
	grep -E -q 'src=10\.0\.1\.2 dst=10\.0\.2\.2 sport=[0-9]+ dport=5202 .*src=10\.0\.2\.2 dst=10\.0\.2\.1 sport=5202 .*ASSURED' <<<"$ct" ||
		fail "$beh: no assured SNAT conntrack entry: $ct"
	d=$(mbit /tmp/dnat.json)
	s=$(mbit /tmp/snat.json)
	want_d=$(rate_of "${beh:0:1}")
	want_s=$(rate_of "${beh:1:1}")
	note "$beh: DNAT flow $d Mbit/s (want class ${want_d}mbit: $(expect "$want_d")), SNAT flow $s Mbit/s (want ${want_s}mbit: $(expect "$want_s"))"
	for dev in imq0 imq1; do
		note "  $dev: $(tc -s class show dev $dev | awk '/^class/ { c = $3 } /Sent/ { printf "%s %s bytes; ", c, $2 }')"
	done
	# The other classes of each device carried nothing.
	[ "$(tc -s class show dev imq0 | awk -v c="1:$((want_d * 10))" '/^class/ { k = $3 } /Sent/ && k != c { n += $2 } END { print n + 0 }')" = 0 ] ||
		fail "$beh: imq0 classified some of the DNATed flow elsewhere"
	[ "$(tc -s class show dev imq1 | awk -v c="1:$((want_s * 10))" '/^class/ { k = $3 } /Sent/ && k != c { n += $2 } END { print n + 0 }')" = 0 ] ||
		fail "$beh: imq1 classified some of the SNATed flow elsewhere"
	near "$d" "$want_d" || fail "$beh: PREROUTING ${beh:0:1}: the DNATed flow got $d Mbit/s, not its ${want_d}mbit class"
	near "$s" "$want_s" || fail "$beh: POSTROUTING ${beh:1:1}: the SNATed flow got $s Mbit/s, not its ${want_s}mbit class"
	line=$(imq_unload)
	note "  $line"
	[ "$(counter "$line" lost)" = 0 ] && [ "$(counter "$line" gone)" = 0 ] || fail "$beh: packets lost their way: $line"
	dmesg_has "imq: unloaded \(2 devices, behavior $beh\): diverted [1-9]"
	r conntrack -F 2>/dev/null || true
done
