# Fuzzing imq (tests/fuzz/imq_fuzz.py): random rules in both hooks and families, devices down,
# up and deleted, devices of the router's namespace made and deleted (`ip link add`), root qdiscs of every kind (tbf with a small burst, netem duplicate, reorder
# and loss, cake, htb and htb_rs trees...), traffic of every kind through the router (TCP, UDP
# bursts of small packets, fragments, ICMP, IPv6, GRE, VXLAN, the router's own, multicast) and
# unload attempts. The kernel stays up, every unload's counters balance, traffic flows after.
# `make fuzz` runs it longer (FUZZ_SECS, FUZZ_SEED); in `make test` FUZZ_SECS=60 with seed 1.
. /src/tests/vm/lib.sh
. /src/tests/vm/imq-lib.sh
imq_setup
htb_rs_setup
topo_3
# Tunnels between cli and srv, through rtr: GRE (10.9.9.0/30) and VXLAN (10.9.8.0/30).
ip -n cli link add gre1 type gre local 10.0.1.2 remote 10.0.2.2
ip -n srv link add gre1 type gre local 10.0.2.2 remote 10.0.1.2
ip -n cli addr add 10.9.9.1/30 dev gre1
ip -n srv addr add 10.9.9.2/30 dev gre1
ip -n cli link add vx1 type vxlan id 42 local 10.0.1.2 remote 10.0.2.2 dstport 4789
ip -n srv link add vx1 type vxlan id 42 local 10.0.2.2 remote 10.0.1.2 dstport 4789
ip -n cli addr add 10.9.8.1/30 dev vx1
ip -n srv addr add 10.9.8.2/30 dev vx1
for ns in cli srv; do
	ip -n $ns link set gre1 up
	ip -n $ns link set vx1 up
	# A test whose client gave up (see imq_fuzz.py) must not keep the server busy.
	ip netns exec $ns iperf3 -s -D -p 5201 --idle-timeout 10 --rcv-timeout 5000
done
sleep 0.5
python3 -u /src/tests/fuzz/imq_fuzz.py --seed "${FUZZ_SEED:-1}" --secs "${FUZZ_SECS:-60}"
