// SPDX-License-Identifier: GPL-2.0
/* imq's string parameters (the Rust module! macro declares integers only). */
#include <linux/module.h>
#include "../knet/param.h"

KNET_STR_PARAM(behavior, "BA",
	       "Hook placement: AA, AB, BA (default) or BB; first letter PREROUTING, second "
	       "POSTROUTING; A = after NAT, B = before NAT");
