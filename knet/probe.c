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
#include <net/inet_sock.h>
#include <net/tcp_states.h>
#include <linux/percpu.h>
#include <net/net_namespace.h>
#include <net/netns/generic.h>
#include <linux/fprobe.h>
#include <linux/ftrace.h>
#include <linux/trace_recursion.h>
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
/*
 * Entry probes are ftrace_ops of their own (knet/probe.rs), registered with no flag: ftrace
 * passes their callback the argument registers where the architecture saves them for every
 * callback (DYNAMIC_FTRACE_WITH_ARGS), which is what this checks.
 */
static_assert(FTRACE_OPS_FL_SAVE_ARGS == 0,
	      "knet: entry probes need DYNAMIC_FTRACE_WITH_ARGS (arguments saved for every callback)");

unsigned long knet_regs_arg(struct pt_regs *regs, unsigned int n)
{
	return regs_get_kernel_argument(regs, n);
}

unsigned long knet_regs_return(struct pt_regs *regs)
{
	return regs_return_value(regs);
}

int knet_ftrace_recursion_trylock(unsigned long ip, unsigned long parent_ip)
{
	return ftrace_test_recursion_trylock(ip, parent_ip);
}

void knet_ftrace_recursion_unlock(int bit)
{
	ftrace_test_recursion_unlock(bit);
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
 * The peer inet_getname() reports: its family (0 if the socket has no peer port, or is closed
 * or still connecting, as there), address (IPv4 in the first 4 of 16 bytes) and port. The
 * inet_* and sk_v6_* names are macros over the socket's common part.
 */
int knet_sk_peer(const struct sock *sk, u8 *addr, __be16 *port)
{
	const struct inet_sock *inet = inet_sk(sk);

	if (!inet->inet_dport || ((1 << sk->sk_state) & (TCPF_CLOSE | TCPF_SYN_SENT)))
		return 0;
	*port = inet->inet_dport;
	if (sk->sk_family == AF_INET6) {
		memcpy(addr, &sk->sk_v6_daddr, 16);
		return AF_INET6;
	}
	memcpy(addr, &inet->inet_daddr, 4);
	return sk->sk_family;
}

/* ---- the namespace of a socket, per-namespace areas (knet/stats.rs) ---- */

struct net *knet_sk_net(const struct sock *sk)
{
	return sock_net(sk);
}

void *knet_net_generic(const struct net *net, unsigned int id)
{
	return net_generic(net, id);
}

/* ---- qdiscs ---- */

#ifdef KNET_COMPAT_LOCK
/* ---- interrupt-safe spinlock (knet/lock.rs) ---- */

unsigned long knet_spin_lock_irqsave(spinlock_t *lock)
{
	unsigned long flags;

	spin_lock_irqsave(lock, flags);
	return flags;
}

bool knet_spin_trylock_irqsave(spinlock_t *lock, unsigned long *flags)
{
	return spin_trylock_irqsave(lock, *flags);
}

void knet_spin_unlock_irqrestore(spinlock_t *lock, unsigned long flags)
{
	spin_unlock_irqrestore(lock, flags);
}
#endif
