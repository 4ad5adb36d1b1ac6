#include "../knet/shim.c"
/* Only imq diverts packets: the others must not depend on x_tables. */
#include "../knet/net_helpers.c"
