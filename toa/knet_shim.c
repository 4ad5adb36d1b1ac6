#include "../knet/shim.c"
#include "../knet/probe.c"
