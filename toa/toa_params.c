// SPDX-License-Identifier: GPL-2.0
/* toa's string parameters (the Rust module! macro declares integers only). */
#include <linux/module.h>
#include "../knet/param.h"

KNET_STR_PARAM(trusted, "",
	       "Comma-separated IPv4/IPv6 prefixes of the load balancers allowed to supply the "
	       "option (e.g. 10.0.0.0/8,2001:db8::/32); empty = any peer, as classic TOA");
KNET_STR_PARAM(kinds, "254",
	       "Comma-separated TCP option kinds read as the client address, up to 4 (e.g. 254,253; "
	       "Akamai uses 253, Tencent and UCloud 200); not 0-8 or 28-30");
