// SPDX-License-Identifier: GPL-2.0
/*
 * sch_htb_rs's bool parameters, for a kernel crate whose module! macro has no bool parameters
 * (7.2's; built only then, see knet/knet.mk). With 7.3's, module! declares them.
 */
#include <linux/module.h>
#include "../knet/param.h"

KNET_BOOL_PARAM(htb_hysteresis, false,
		"Hysteresis mode: fewer CPU cycles, less accurate rates (as sch_htb)");
KNET_BOOL_PARAM(htb_rate_est, false,
		"Set up a default rate estimator (4sec 16sec) for every class (as sch_htb)");
