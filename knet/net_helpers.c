// SPDX-License-Identifier: GPL-2.0
/* See net_helpers.h. Included by the knet_shim.c of the modules that divert packets (imq). */
#include <net/gso.h>
#include <linux/interrupt.h>
#include <linux/tracepoint.h>
#include <net/net_namespace.h>
#include <net/sch_generic.h>
#include "net_helpers.h"

/* The divert's tag sits after everything the packet scheduler keeps in skb->cb. */
static_assert(sizeof(struct tc_skb_cb) <= KNET_SKB_CB_FREE_OFF);
static_assert(sizeof_field(struct sk_buff, cb) >= KNET_SKB_CB_FREE_OFF + 8);

/*
 * As IFB: GSO packets stay whole, checksums and VLAN tags are not touched at dequeue. Why C:
 * the NETIF_F_* masks are macros with casts, which bindgen cannot evaluate.
 */
const netdev_features_t knet_l3_features = NETIF_F_HW_CSUM | NETIF_F_SG | NETIF_F_FRAGLIST |
	NETIF_F_HIGHDMA | NETIF_F_HW_VLAN_CTAG_TX | NETIF_F_HW_VLAN_STAG_TX;
const netdev_features_t knet_l3_gso_features = NETIF_F_GSO_SOFTWARE | NETIF_F_GSO_ENCAP_ALL;

void knet_netif_tx_start_all_queues(struct net_device *dev)
{
	netif_tx_start_all_queues(dev);
}

void knet_netif_tx_stop_all_queues(struct net_device *dev)
{
	netif_tx_stop_all_queues(dev);
}

void knet_netif_stop_subqueue(struct net_device *dev, u16 queue)
{
	netif_stop_subqueue(dev, queue);
}

bool knet_netif_subqueue_stopped(const struct net_device *dev, u16 queue)
{
	return __netif_subqueue_stopped(dev, queue);
}

void knet_netif_wake_subqueue(struct net_device *dev, u16 queue)
{
	netif_wake_subqueue(dev, queue);
}



/* Per-CPU device counters (the core allocates them for NETDEV_PCPU_STAT_TSTATS and sums them
 * for `ip -s link`): no cache line shared between queues on the packet path. */
void knet_netdev_use_tstats(struct net_device *dev)
{
	dev->pcpu_stat_type = NETDEV_PCPU_STAT_TSTATS;
}

void knet_dev_stats_rx(struct net_device *dev, unsigned int len)
{
	dev_sw_netstats_rx_add(dev, len);
}

void knet_dev_stats_tx(struct net_device *dev, unsigned int len)
{
	dev_sw_netstats_tx_add(dev, 1, len);
}

void knet_dev_stats_tx_dropped(struct net_device *dev)
{
	dev_core_stats_tx_dropped_inc(dev);
}

u32 knet_skb_get_hash(struct sk_buff *skb)
{
	return skb_get_hash(skb);
}

bool knet_netif_needs_gso(struct sk_buff *skb, const struct net_device *dev)
{
	return netif_needs_gso(skb, dev->features);
}

/* The segments of a GSO packet for `dev`, with its offloads (checksum, scatter-gather), a list
 * through ->next; NULL if it cannot be segmented. The packet itself is left to the caller. */
struct sk_buff *knet_skb_gso_segment(struct sk_buff *skb, const struct net_device *dev)
{
	struct sk_buff *segs = skb_gso_segment(skb, dev->features);

	return IS_ERR_OR_NULL(segs) ? NULL : segs;
}

void knet_local_bh_disable(void)
{
	local_bh_disable();
}

void knet_local_bh_enable(void)
{
	local_bh_enable();
}

bool knet_in_softirq(void)
{
	return in_softirq();
}

void knet_tasklet_schedule(struct tasklet_struct *t)
{
	tasklet_schedule(t);
}

struct net *knet_maybe_get_net(struct net *net)
{
	return maybe_get_net(net);
}

void knet_put_net(struct net *net)
{
	put_net(net);
}

bool knet_sock_hold_not_zero(struct sock *sk)
{
	return refcount_inc_not_zero(&sk->sk_refcnt);
}

/* Hard interrupt, or interrupts off: not a context to put socket references in. */
bool knet_irqs_disabled(void)
{
	return in_hardirq() || irqs_disabled();
}

unsigned long knet_local_irq_save(void)
{
	unsigned long flags;

	local_irq_save(flags);
	return flags;
}

void knet_local_irq_restore(unsigned long flags)
{
	local_irq_restore(flags);
}
