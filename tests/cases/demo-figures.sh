# `make demo` cannot rot: the demo script runs here as it does there, and every figure it shows
# (htb_rs next to htb in the HOWTO's HTB example, imq's two downloads in the HOWTO's imq
# example, toa's getpeername() with and without the module, the refusals, the unload) must be
# within its bounds ("ok", never "OFF"), all of them present.
. /src/tests/vm/lib.sh

rc=0
bash /src/tests/vm/demo.sh >/tmp/demo.out 2>&1 || rc=$?
cat /tmp/demo.out
[ $rc = 0 ] || fail "demo.sh exited with $rc"
grep -q '^FAIL' /tmp/demo.out && fail "demo.sh failed: $(grep '^FAIL' /tmp/demo.out)"
for section in "sch_htb_rs: the HTB HOWTO" "imq: the tc HOWTO's imq example" "toa: a connection" \
	"bad parameters are refused" "unload"; do
	grep -q "^== $section" /tmp/demo.out || fail "no section '$section'"
done
off=$(grep -c ' OFF$' /tmp/demo.out || true)
[ "$off" = 0 ] || fail "$off figures out of bounds: $(grep ' OFF$' /tmp/demo.out)"
oks=$(grep -c ' ok$' /tmp/demo.out || true)
# 3 htb rows, 2 imq hosts, 2 toa peers, 5 refusals, 1 unload.
[ "$oks" -ge 13 ] || fail "only $oks figures shown, want 13"
grep -Eq '^demo: 1[3-9] figures, all as expected' /tmp/demo.out || fail "no summary line: $(tail -n 1 /tmp/demo.out)"
