/* SPDX-License-Identifier: GPL-2.0 */
/*
 * knet probes: fprobes and tracepoints on kernel functions, the socket and packet helpers
 * their handlers use, and per-CPU counters in /proc/net (toa).
 */
#ifndef KNET_PROBE_H
#define KNET_PROBE_H

#include <linux/ptrace.h>
#include <linux/socket.h>
#include <linux/skbuff.h>
#include <net/sock.h>

/*
 * Probes. The probe structs live in C (allocated here) with a context pointer for the Rust
 * side beside them, so Rust never depends on their layout. Probes are fprobes, with an exit
 * handler (return probes) or without (entry probes); their handlers get the call's context and
 * entry data through a knet_probe_call.
 */
struct knet_probe_call;
struct knet_fprobe;
typedef int (*knet_fprobe_entry_t)(struct knet_probe_call *call, struct pt_regs *regs);
typedef void (*knet_fprobe_exit_t)(struct knet_probe_call *call, struct pt_regs *regs);
struct knet_fprobe *knet_fprobe_new(const char *symbol, knet_fprobe_entry_t entry,
					knet_fprobe_exit_t exit, size_t data_size, void *ctx);
int knet_fprobe_register(struct knet_fprobe *rp);
void knet_fprobe_unregister_free(struct knet_fprobe *rp);
void knet_fprobe_free(struct knet_fprobe *rp);
s64 knet_probe_nmissed(const unsigned long *counter);
void *knet_probe_call_ctx(struct knet_probe_call *call);
void *knet_probe_call_data(struct knet_probe_call *call);
const unsigned long *knet_fprobe_nmissed_counter(const struct knet_fprobe *rp);
unsigned long knet_regs_arg(struct pt_regs *regs, unsigned int n);
unsigned long knet_regs_return(struct pt_regs *regs);

/*
 * A probe on a core-kernel tracepoint whose prototype is (struct sock *sk), found by name
 * (for_each_kernel_tracepoint: tracepoints need no export to be watched this way).
 */
struct knet_sk_tracepoint;
typedef void (*knet_sk_tracepoint_cb_t)(void *ctx, struct sock *sk);
struct knet_sk_tracepoint *knet_sk_tracepoint_new(const char *name, knet_sk_tracepoint_cb_t cb,
						  void *ctx);
int knet_sk_tracepoint_register(struct knet_sk_tracepoint *t);
void knet_sk_tracepoint_unregister_free(struct knet_sk_tracepoint *t);
void knet_sk_tracepoint_free(struct knet_sk_tracepoint *t);

/* Sockets and packets, as the probe handlers see them. */
struct sock *knet_socket_sk(const struct socket *sock);
bool knet_sk_is_tcp(const struct sock *sk);
unsigned int knet_skb_tcp_header(const struct sk_buff *skb, u8 *buf, unsigned int size);
int knet_skb_saddr(const struct sk_buff *skb, u8 *addr);
int knet_sockaddr_get(const struct sockaddr *uaddr, u8 *addr, __be16 *port);
void knet_sockaddr_set(struct sockaddr *uaddr, const u8 *addr16, __be16 port);


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
