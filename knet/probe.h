/* SPDX-License-Identifier: GPL-2.0 */
/*
 * knet probes: fprobes and tracepoints on kernel functions, the socket and packet helpers
 * their handlers use, and per-CPU counters in /proc/net (toa).
 */
#ifndef KNET_PROBE_H
#define KNET_PROBE_H

#include <linux/fprobe.h>
#include <linux/ptrace.h>
#include <linux/socket.h>
#include <linux/skbuff.h>
#include <net/sock.h>

/* The static inlines the Rust probes (knet/probe.rs) need. */
s64 knet_probe_nmissed(const unsigned long *counter);
unsigned long knet_regs_arg(struct pt_regs *regs, unsigned int n);
unsigned long knet_regs_return(struct pt_regs *regs);

/* Sockets and packets, as the probe handlers see them. */
struct sock *knet_socket_sk(const struct socket *sock);
bool knet_sk_is_tcp(const struct sock *sk);


/*
 * Per-CPU counters shown as a table in /proc/net/<name> (initial namespace). The last of the n
 * names is not a counter: it shows the sum of the probes' missed-hit counters being watched.
 */
struct knet_stats;
struct knet_stats *knet_stats_create(const char *name, const char *const *names, unsigned int n);
int knet_stats_watch(struct knet_stats *stats, const unsigned long *nmissed);
void knet_stats_unwatch(struct knet_stats *stats, const unsigned long *nmissed);
void knet_stats_destroy(struct knet_stats *stats);
void knet_stats_add(struct knet_stats *stats, unsigned int idx, s64 v);
s64 knet_stats_sum(struct knet_stats *stats, unsigned int idx);

#endif
