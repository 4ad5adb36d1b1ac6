// SPDX-License-Identifier: GPL-2.0
/*
 * knet C shim, core part: compiled into each module (each module's knet_shim.c includes this
 * file and the parts of knet it uses: probe.c, qdisc.c or net_helpers.c, so the symbols stay
 * private to that .ko).
 */
#include <linux/tracepoint.h>
#include <linux/percpu.h>
#include "shim.h"

void __percpu *knet_alloc_percpu(size_t size, size_t align)
{
	return __alloc_percpu(size, align);
}

void *knet_per_cpu_ptr(void __percpu *base, int cpu)
{
	return per_cpu_ptr(base, cpu);
}

void knet_this_cpu_add_s64(void __percpu *base, unsigned int idx, s64 v)
{
	this_cpu_add(((s64 __percpu *)base)[idx], v);
}

s64 knet_this_cpu_read_s64(void __percpu *base, unsigned int idx)
{
	return this_cpu_read(((s64 __percpu *)base)[idx]);
}

void knet_tracepoint_synchronize_unregister(void)
{
	tracepoint_synchronize_unregister();
}
