# Regressions found by fuzzing htb_rs against htb (issue 19), replayed by the differential
# fuzzer (tests/fuzz/htb_diff.py --replay): each step list in tests/fuzz/htb-regress runs on
# htb and htb_rs side by side, with traffic; outcomes and dumps must agree and the kernel must
# stay up (a WARN panics the VM, a hang trips the host's stall watchdog).
. /src/tests/vm/lib.sh
htb_rs_setup
modprobe dummy numdummies=0
for f in /src/tests/fuzz/htb-regress/*.steps; do
	note "replaying $(basename "$f")"
	python3 -u /src/tests/fuzz/htb_diff.py --replay "$f" || fail "$(basename "$f") failed"
done
