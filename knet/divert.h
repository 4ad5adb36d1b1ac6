/* SPDX-License-Identifier: GPL-2.0 */
/*
 * knet divert: take packets out of the netfilter PREROUTING/POSTROUTING chains at a hook of
 * ours, pass them through the qdisc of one of our virtual devices, and resume the chain right
 * after our hook (IMQ without a kernel patch). An xtables target tags the packets to take.
 *
 * Per-packet state (the hook state, the 48-byte skb->cb, device, MAC header, ...) lives in an
 * entry named by an id in skb->cb bytes 40..47, the only ones the packet scheduler leaves
 * alone (checked at build time). Entries of packets a qdisc drops are freed from the kfree_skb
 * tracepoint, and a periodic sweep frees entries older than KNET_DIVERT_MAX_AGE_S seconds.
 */
#ifndef KNET_DIVERT_H
#define KNET_DIVERT_H

#include <linux/netdevice.h>
#include <linux/netfilter.h>

enum {
	/* Entries older than this are presumed leaked (their packet freed untraced). */
	KNET_DIVERT_MAX_AGE_S = 120,
};

/* What the module decides: whether an xtables rule may use `todev` (0 or a negative errno). */
struct knet_divert_cbs {
	int (*check)(void *ctx, unsigned int todev, unsigned int hook_mask);
};

/* Counters, summed over devices. */
struct knet_divert_counters {
	u64 diverted;	/* packets taken to a device */
	u64 reinjected; /* packets that continued after the device's qdisc */
	u64 passed_down;	/* tagged for a device that is down: left alone */
	u64 no_state;	/* could not allocate state: left alone */
	u64 lost;	/* dequeued without valid state (clone, segment, expired): dropped */
	u64 foreign;	/* sent to a device by anything else (the stack's own packets): dropped */
	u64 gone;	/* their network namespace, device or hook went away: dropped */
	u64 freed;	/* dropped inside the qdisc (state freed from the tracepoint) */
	u64 expired;	/* state freed by the age sweep, or at teardown without its packet */
	u64 outstanding; /* entries alive now */
};

struct knet_divert;
/*
 * Creates `ndevs` devices named from `name_fmt` (e.g. "imq%d"), hooks at PREROUTING (priority
 * `pre_prio`) and POSTROUTING (`post_prio`) for IPv4 and IPv6 in every network namespace, and
 * the xtables target `target` (revision 0, mangle table, PRE/POSTROUTING, one u32 `todev`).
 * ERR_PTR on failure.
 */
struct knet_divert *knet_divert_create(const char *name_fmt, unsigned int ndevs, int pre_prio,
				       int post_prio, const char *target,
				       const struct knet_divert_cbs *cbs, void *ctx,
				       struct module *owner);
/*
 * Tears everything down; packets still queued are dropped and their state freed. If `final`
 * is not NULL it gets the counters as they stand after the teardown (including the packets
 * the devices' queues held: dropped in the qdisc).
 */
void knet_divert_destroy(struct knet_divert *d, struct knet_divert_counters *final);
void knet_divert_counters(struct knet_divert *d, struct knet_divert_counters *c);

#endif
