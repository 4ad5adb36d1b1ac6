#include "../knet/shim.c"
