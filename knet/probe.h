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
unsigned long knet_regs_arg(struct pt_regs *regs, unsigned int n);
unsigned long knet_regs_return(struct pt_regs *regs);
int knet_ftrace_recursion_trylock(unsigned long ip, unsigned long parent_ip);
void knet_ftrace_recursion_unlock(int bit);

/* Sockets and packets, as the probe handlers see them. */
struct sock *knet_socket_sk(const struct socket *sock);
bool knet_sk_is_tcp(const struct sock *sk);
int knet_sk_peer(const struct sock *sk, u8 *addr, __be16 *port);


/* Per-namespace counters: sock_net and net_generic are static inlines. */
struct net *knet_sk_net(const struct sock *sk);
void *knet_net_generic(const struct net *net, unsigned int id);

#ifdef KNET_COMPAT_LOCK
/*
 * A spinlock_t taken with interrupts off, for knet/lock.rs where the kernel crate has no
 * SpinLockIrq (knet_compat_lock, see knet.mk): spin_lock_irqsave and its kin are macros.
 */
unsigned long knet_spin_lock_irqsave(spinlock_t *lock);
bool knet_spin_trylock_irqsave(spinlock_t *lock, unsigned long *flags);
void knet_spin_unlock_irqrestore(spinlock_t *lock, unsigned long flags);
#endif

#endif
