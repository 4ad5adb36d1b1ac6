// SPDX-License-Identifier: GPL-2.0
/*
 * knet C shim, compiled into each module (each module's knet_shim.c includes this file, so
 * the symbols stay private to that .ko).
 */
#include <generated/utsrelease.h>
#include "shim.h"

const char *knet_uts_release(void)
{
	return UTS_RELEASE;
}
