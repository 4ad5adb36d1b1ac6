# imq's devices: imq0..imq{numdevs-1} appear with the module, take any qdisc, count in
# `ip -s link`, can be made with `ip link add` too (in any namespace), can be deleted with
# `ip link del`, and go
# with the module; the load refuses out-of-range parameters.
. /src/tests/vm/lib.sh
# imq needs no x_tables (its target is xt_IMQ): nothing loads it here.
insmod "$(ko imq)" numdevs=3
for i in 0 1 2; do
	ip link show imq$i >/dev/null || fail "imq$i missing"
done
! ip link show imq3 >/dev/null 2>&1 || fail "imq3 exists with numdevs=3"
ip -d link show imq0 | grep_q "imq" || fail "imq0 does not say its kind: $(ip -d link show imq0)"
note "$(ip -d link show imq0 | head -n 3)"
ip link set imq0 up
tc qdisc add dev imq0 root handle 1: htb default 20
tc class add dev imq0 parent 1: classid 1:1 htb rate 2mbit burst 15k
tc qdisc show dev imq0 | grep_q "qdisc htb 1: root" || fail "no htb on imq0: $(tc qdisc show dev imq0)"
ip -s link show imq0 | grep_q "RX:" || fail "no counters: $(ip -s link show imq0)"

# More with `ip link add`, here or in any namespace; options are refused.
ip link add imq9 type imq || fail "ip link add imq9 type imq"
ip -d link show imq9 | grep_q 'imq' || fail "imq9 is not of kind imq"
expect_fail "ip link add with options" ip link add imq8 type imq foo bar
ip netns add other
ip -n other link add imq0 type imq || fail "ip link add imq0 type imq in a namespace"
# The devices stay in their namespace.
expect_fail "moving imq1 to another namespace" ip link set imq1 netns other
expect_fail "moving other's imq0" ip -n other link set imq0 netns 1
ip netns del other
ip link del imq9 || fail "ip link del imq9"

# Deleting a device is clean; the others stay.
ip link del imq2 || fail "ip link del imq2 failed"
! ip link show imq2 >/dev/null 2>&1 || fail "imq2 still there"
ip link show imq1 >/dev/null || fail "imq1 went with imq2"

rmmod imq || fail "rmmod imq failed"
! ip link show imq0 >/dev/null 2>&1 || fail "imq0 outlived the module"
dmesg_has 'imq: unloaded \(3 devices, behavior BA\)'

# Reload with the defaults: two devices again.
insmod "$(ko imq)"
ip link show imq1 >/dev/null || fail "imq1 missing after reload"
rmmod imq
