# What 'make demo' shows inside the VM: the stock kernel, our modules loading into it with
# their parameters, refusing bad ones, and unloading cleanly.
set -u
ko() { echo "/src/$1/$1.ko"; }
run() { echo "\$ $*"; "$@" 2>&1 | sed 's/^/  /'; }
echo "kernel: $(uname -r), $(uname -v) -- the stock Debian build, unmodified"
for m in imq toa sch_htb_rs; do
	echo
	echo "== $m"
	run modinfo -F description "$(ko $m)"
	run modinfo -F parm "$(ko $m)"
done
echo
dmesg -c >/dev/null
run insmod "$(ko imq)" numdevs=4 behavior=AB
run insmod "$(ko toa)" trusted=10.0.0.0/8,2001:db8::/32
run insmod "$(ko sch_htb_rs)"
run sh -c "lsmod | grep -E '^(imq|toa|sch_htb_rs) '"
run grep -H . /sys/module/imq/parameters/behavior /sys/module/toa/parameters/trusted
run rmmod imq toa sch_htb_rs
echo
echo "bad parameters are refused with a message:"
run insmod "$(ko imq)" numdevs=99
run insmod "$(ko toa)" trusted=10.0.0.0/40
echo
run dmesg
