// SPDX-License-Identifier: GPL-2.0
/*
 * knet C shim, core part: compiled into each module (each module's knet_shim.c includes this
 * file and the parts of knet it uses: probe.c, qdisc.c or net_helpers.c, so the symbols stay
 * private to that .ko).
 */
#include <linux/tracepoint.h>
#include "shim.h"

void knet_tracepoint_synchronize_unregister(void)
{
	tracepoint_synchronize_unregister();
}
