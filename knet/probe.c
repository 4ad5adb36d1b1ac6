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
 * All probes are fprobes. With an exit handler: ftrace entry + function-graph return, far
 * cheaper per call than kretprobes, and no maxactive limit. Without one: a plain ftrace
 * callback that saves only the argument registers (a kprobe on ftrace saves them all). The
 * Rust handlers see the registers as a pt_regs: on x86-64 the ftrace_regs of an fprobe hold
 * the argument registers, and the return value at exit, in one.
 */
struct knet_probe_call {
	void *ctx;
	void *data;
};

struct knet_fprobe {
	struct fprobe fp;
	const char *symbol;
	knet_fprobe_entry_t entry;
	knet_fprobe_exit_t exit;
	void *ctx;
};

static int knet_fprobe_on_entry(struct fprobe *fp, unsigned long entry_ip, unsigned long ret_ip,
				  struct ftrace_regs *fregs, void *data)
{
	struct knet_fprobe *k = container_of(fp, struct knet_fprobe, fp);
	struct knet_probe_call call = { .ctx = k->ctx, .data = data };

	/* Non-zero skips the return handler of this call. */
	return k->entry(&call, &arch_ftrace_regs(fregs)->regs);
}

static void knet_fprobe_on_exit(struct fprobe *fp, unsigned long entry_ip, unsigned long ret_ip,
				  struct ftrace_regs *fregs, void *data)
{
	struct knet_fprobe *k = container_of(fp, struct knet_fprobe, fp);
	struct knet_probe_call call = { .ctx = k->ctx, .data = data };

	k->exit(&call, &arch_ftrace_regs(fregs)->regs);
}

struct knet_fprobe *knet_fprobe_new(const char *symbol, knet_fprobe_entry_t entry,
					knet_fprobe_exit_t exit, size_t data_size, void *ctx)
{
	struct knet_fprobe *k = kzalloc(sizeof(*k), GFP_KERNEL);

	if (!k)
		return NULL;
	k->symbol = symbol;
	k->entry = entry;
	k->exit = exit;
	k->ctx = ctx;
	k->fp.entry_handler = knet_fprobe_on_entry;
	/* Without an exit handler, an fprobe is a plain ftrace callback: no function graph. */
	if (exit) {
		k->fp.exit_handler = knet_fprobe_on_exit;
		k->fp.entry_data_size = data_size;
	}
	return k;
}

int knet_fprobe_register(struct knet_fprobe *k)
{
	return register_fprobe_syms(&k->fp, &k->symbol, 1);
}

/* After this returns no handler runs any more (unregister_fprobe waits for them). */
void knet_fprobe_unregister_free(struct knet_fprobe *k)
{
	unregister_fprobe(&k->fp);
	kfree(k);
}

/* For a probe whose registration failed. */
void knet_fprobe_free(struct knet_fprobe *k)
{
	kfree(k);
}

const unsigned long *knet_fprobe_nmissed_counter(const struct knet_fprobe *k)
{
	return &k->fp.nmissed;
}

/* A probe's missed-hit counter, which fprobe updates as it goes. */
s64 knet_probe_nmissed(const unsigned long *counter)
{
	return READ_ONCE(*counter);
}

void *knet_probe_call_ctx(struct knet_probe_call *call)
{
	return call->ctx;
}

void *knet_probe_call_data(struct knet_probe_call *call)
{
	return call->data;
}

unsigned long knet_regs_arg(struct pt_regs *regs, unsigned int n)
{
	return regs_get_kernel_argument(regs, n);
}

unsigned long knet_regs_return(struct pt_regs *regs)
{
	return regs_return_value(regs);
}

struct knet_sk_tracepoint {
	const char *name;
	struct tracepoint *tp;
	knet_sk_tracepoint_cb_t cb;
	void *ctx;
};

static void knet_sk_tracepoint_find(struct tracepoint *tp, void *priv)
{
	struct knet_sk_tracepoint *t = priv;

	if (!t->tp && !strcmp(tp->name, t->name))
		t->tp = tp;
}

/* The probe has the tracepoint's prototype with the probe's data pointer first. */
static void knet_sk_tracepoint_probe(void *data, struct sock *sk)
{
	struct knet_sk_tracepoint *t = data;

	t->cb(t->ctx, sk);
}

struct knet_sk_tracepoint *knet_sk_tracepoint_new(const char *name, knet_sk_tracepoint_cb_t cb,
						  void *ctx)
{
	struct knet_sk_tracepoint *t = kzalloc(sizeof(*t), GFP_KERNEL);

	if (!t)
		return NULL;
	t->name = name;
	t->cb = cb;
	t->ctx = ctx;
	return t;
}

int knet_sk_tracepoint_register(struct knet_sk_tracepoint *t)
{
	for_each_kernel_tracepoint(knet_sk_tracepoint_find, t);
	if (!t->tp)
		return -ENOENT;
	return tracepoint_probe_register(t->tp, (void *)knet_sk_tracepoint_probe, t);
}

/* After this returns no probe call runs any more. */
void knet_sk_tracepoint_unregister_free(struct knet_sk_tracepoint *t)
{
	tracepoint_probe_unregister(t->tp, (void *)knet_sk_tracepoint_probe, t);
	tracepoint_synchronize_unregister();
	kfree(t);
}

/* For a probe whose registration failed. */
void knet_sk_tracepoint_free(struct knet_sk_tracepoint *t)
{
	kfree(t);
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

/*
 * Copies the TCP header at skb's transport header, options included, into buf (at most size
 * bytes). Returns the bytes copied; 0 if there is no whole TCP header in the linear data. On the
 * receive path TCP has pulled the header and its options into the linear data already.
 */
unsigned int knet_skb_tcp_header(const struct sk_buff *skb, u8 *buf, unsigned int size)
{
	const u8 *th, *tail = skb_tail_pointer(skb);
	unsigned int len;

	if (!skb_transport_header_was_set(skb))
		return 0;
	th = skb_transport_header(skb);
	if (th < skb->head || th + sizeof(struct tcphdr) > tail)
		return 0;
	len = ((const struct tcphdr *)th)->doff * 4;
	if (len < sizeof(struct tcphdr) || th + len > tail)
		len = sizeof(struct tcphdr);
	len = min(len, size);
	memcpy(buf, th, len);
	return len;
}

/* The packet's source address into addr (4 or 16 bytes); returns 4, 6, or 0 if neither. */
int knet_skb_saddr(const struct sk_buff *skb, u8 *addr)
{
	const u8 *nh = skb_network_header(skb), *tail = skb_tail_pointer(skb);

	if (nh < skb->head)
		return 0;
	switch (skb->protocol) {
	case htons(ETH_P_IP):
		if (nh + sizeof(struct iphdr) > tail)
			return 0;
		memcpy(addr, &((const struct iphdr *)nh)->saddr, 4);
		return 4;
	case htons(ETH_P_IPV6):
		if (nh + sizeof(struct ipv6hdr) > tail)
			return 0;
		memcpy(addr, &((const struct ipv6hdr *)nh)->saddr, 16);
		return 6;
	}
	return 0;
}

/*
 * What a getname call left in uaddr: the address (4 bytes for AF_INET, 16 for AF_INET6) and the
 * port, network order. Returns 4, 6, or 0 for another family.
 */
int knet_sockaddr_get(const struct sockaddr *uaddr, u8 *addr, __be16 *port)
{
	if (uaddr->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)uaddr;

		memcpy(addr, &sin->sin_addr, 4);
		*port = sin->sin_port;
		return 4;
	}
	if (uaddr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)uaddr;

		memcpy(addr, &sin6->sin6_addr, 16);
		*port = sin6->sin6_port;
		return 6;
	}
	return 0;
}

/*
 * Overwrites address and port in uaddr, keeping its family: addr16 is an IPv6 address, or a
 * v4-mapped one whose last 4 bytes go into an AF_INET sockaddr.
 */
void knet_sockaddr_set(struct sockaddr *uaddr, const u8 *addr16, __be16 port)
{
	if (uaddr->sa_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)uaddr;

		memcpy(&sin->sin_addr, addr16 + 12, 4);
		sin->sin_port = port;
	} else if (uaddr->sa_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)uaddr;

		memcpy(&sin6->sin6_addr, addr16, 16);
		sin6->sin6_port = port;
	}
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
