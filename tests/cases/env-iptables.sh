# Both iptables backends (nft through nft_compat, and legacy) and ip6tables work in the VM, with
# the mangle table our IMQ target will live in.
. /src/tests/vm/lib.sh
ip netns add fw
backends="nft legacy"
kernel_has ip_tables || backends=nft
for v in iptables ip6tables; do
	for b in $backends; do
		ip netns exec fw "$v-$b" -t mangle -A PREROUTING -p tcp --dport 9 -j MARK --set-mark 7
		ip netns exec fw "$v-$b" -t mangle -S PREROUTING | grep_q -- '--set-xmark 0x7/0xffffffff' ||
			fail "$v-$b: rule not listed"
		ip netns exec fw "$v-$b" -t mangle -F
		note "$v-$b ok"
	done
done
lsmod | grep_q '^nft_compat' || fail "nft_compat not loaded by iptables-nft"
[ "$backends" = nft ] && skip "iptables-nft works; legacy iptables: the kernel has no ip_tables (CONFIG_NETFILTER_XTABLES_LEGACY unset)"
lsmod | grep_q '^ip_tables' || fail "ip_tables (legacy) not loaded"
