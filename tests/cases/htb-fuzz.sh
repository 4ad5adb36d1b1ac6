# Differential fuzzing of htb_rs against htb (tests/fuzz/htb_diff.py), with a fixed seed:
# random tc qdisc/class/filter commands, malformed raw netlink requests and traffic on both;
# any disagreement, kernel report or hang fails. `make fuzz` runs it longer (FUZZ_SECS,
# FUZZ_SEED); in `make test` it runs FUZZ_SECS=100 with seed 1.
. /src/tests/vm/lib.sh
htb_rs_setup
modprobe dummy numdummies=0
python3 -u /src/tests/fuzz/htb_diff.py --seed "${FUZZ_SEED:-1}" --secs "${FUZZ_SECS:-100}"
