#include "../knet/shim.c"
#include "../knet/qdisc.c"
