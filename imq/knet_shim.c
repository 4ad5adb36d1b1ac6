#include "../knet/shim.c"
/* Only imq diverts packets. */
#include "../knet/net_helpers.c"
