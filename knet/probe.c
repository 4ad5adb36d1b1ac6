// SPDX-License-Identifier: GPL-2.0
/*
 * knet probes (see probe.h). Included by the knet_shim.c of the modules that watch kernel
 * functions (toa).
 */
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/percpu.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <net/net_namespace.h>
#include <linux/fprobe.h>
#include <linux/tracepoint.h>
#include "probe.h"

/* ---- probes ---- */

/*
 * The fprobes and tracepoint probes are built in Rust (knet/probe.rs). It reads an fprobe
 * handler's registers as the pt_regs at the start of its ftrace_regs (arch_ftrace_regs), and the
 * missed-hit counter as a word.
 */
static_assert(offsetof(struct __arch_ftrace_regs, regs) == 0);
static_assert(sizeof_field(struct fprobe, nmissed) == sizeof(unsigned long));

/* A probe's missed-hit counter, which fprobe updates as it goes. */
s64 knet_probe_nmissed(const unsigned long *counter)
{
	return READ_ONCE(*counter);
}

unsigned long knet_regs_arg(struct pt_regs *regs, unsigned int n)
{
	return regs_get_kernel_argument(regs, n);
}

unsigned long knet_regs_return(struct pt_regs *regs)
{
	return regs_return_value(regs);
}

/* ---- sockets and packets ---- */

struct sock *knet_socket_sk(const struct socket *sock)
{
	return sock ? READ_ONCE(sock->sk) : NULL;
}

bool knet_sk_is_tcp(const struct sock *sk)
{
	return sk && sk->sk_type == SOCK_STREAM && sk->sk_protocol == IPPROTO_TCP &&
	       (sk->sk_family == AF_INET || sk->sk_family == AF_INET6);
}

/* ---- per-CPU counters in /proc/net ---- */

#define KNET_STATS_MAX_WATCH 16

struct knet_stats {
	const char *name;
	const char *const *names;
	unsigned int n;
	s64 __percpu *vals;
	struct mutex watch_lock;	/* guards watch[] against the proc reader */
	const unsigned long *watch[KNET_STATS_MAX_WATCH];	/* probes' nmissed counters */
};

int knet_stats_watch(struct knet_stats *s, const unsigned long *nmissed)
{
	int i, ret = -ENOSPC;

	mutex_lock(&s->watch_lock);
	for (i = 0; i < KNET_STATS_MAX_WATCH; i++) {
		if (!s->watch[i]) {
			s->watch[i] = nmissed;
			ret = 0;
			break;
		}
	}
	mutex_unlock(&s->watch_lock);
	return ret;
}

/* After this returns the proc reader no longer looks at nmissed. */
void knet_stats_unwatch(struct knet_stats *s, const unsigned long *nmissed)
{
	int i;

	mutex_lock(&s->watch_lock);
	for (i = 0; i < KNET_STATS_MAX_WATCH; i++)
		if (s->watch[i] == nmissed)
			s->watch[i] = NULL;
	mutex_unlock(&s->watch_lock);
}

static s64 knet_stats_missed(struct knet_stats *s)
{
	s64 missed = 0;
	int i;

	mutex_lock(&s->watch_lock);
	for (i = 0; i < KNET_STATS_MAX_WATCH; i++)
		if (s->watch[i])
			missed += knet_probe_nmissed(s->watch[i]);
	mutex_unlock(&s->watch_lock);
	return missed;
}

static int knet_stats_show(struct seq_file *seq, void *v)
{
	struct knet_stats *s = seq->private;
	unsigned int i;
	int cpu;

	seq_printf(seq, "%-26s", "");
	for_each_online_cpu(cpu)
		seq_printf(seq, "CPU%-8d", cpu);
	seq_puts(seq, "total\n");
	for (i = 0; i + 1 < s->n; i++) {
		seq_printf(seq, "%-25s:", s->names[i]);
		for_each_online_cpu(cpu)
			seq_printf(seq, "%-10lld ", per_cpu_ptr(s->vals, cpu)[i]);
		seq_printf(seq, "%lld\n", knet_stats_sum(s, i));
	}
	seq_printf(seq, "%-25s:", s->names[s->n - 1]);
	for_each_online_cpu(cpu)
		seq_printf(seq, "%-10s ", "-");
	seq_printf(seq, "%lld\n", knet_stats_missed(s));
	return 0;
}

struct knet_stats *knet_stats_create(const char *name, const char *const *names, unsigned int n)
{
	struct knet_stats *s;

	if (n < 1)
		return NULL;
	s = kzalloc(sizeof(*s), GFP_KERNEL);
	if (!s)
		return NULL;
	mutex_init(&s->watch_lock);
	s->name = name;
	s->names = names;
	s->n = n;
	s->vals = __alloc_percpu(n * sizeof(s64), sizeof(s64));
	if (!s->vals)
		goto fail;
	if (!proc_create_single_data(name, 0444, init_net.proc_net, knet_stats_show, s))
		goto fail;
	return s;
fail:
	free_percpu(s->vals);
	kfree(s);
	return NULL;
}

/* Removes the proc file (waiting for its readers), then frees the counters. */
void knet_stats_destroy(struct knet_stats *s)
{
	remove_proc_entry(s->name, init_net.proc_net);
	free_percpu(s->vals);
	kfree(s);
}

void knet_stats_add(struct knet_stats *s, unsigned int idx, s64 v)
{
	if (idx < s->n)
		this_cpu_add(s->vals[idx], v);
}

s64 knet_stats_sum(struct knet_stats *s, unsigned int idx)
{
	s64 sum = 0;
	int cpu;

	if (idx >= s->n)
		return 0;
	for_each_possible_cpu(cpu)
		sum += per_cpu_ptr(s->vals, cpu)[idx];
	return sum;
}

/* ---- qdiscs ---- */
