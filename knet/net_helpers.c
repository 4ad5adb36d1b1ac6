// SPDX-License-Identifier: GPL-2.0
/* See net_helpers.h. Included by the knet_shim.c of the modules that divert packets (imq). */
#include <linux/if_arp.h>
#include <linux/interrupt.h>
#include <linux/tracepoint.h>
#include <net/net_namespace.h>
#include <net/sch_generic.h>
#include "net_helpers.h"

/* The divert's tag sits after everything the packet scheduler keeps in skb->cb. */
static_assert(sizeof(struct tc_skb_cb) <= KNET_SKB_CB_FREE_OFF);
static_assert(sizeof_field(struct sk_buff, cb) >= KNET_SKB_CB_FREE_OFF + 8);

void *knet_netdev_priv(const struct net_device *dev)
{
	return netdev_priv(dev);
}

int knet_netdev_ifindex(const struct net_device *dev)
{
	return dev->ifindex;
}

/* As IFB: GSO packets stay whole, checksums and VLAN tags are not touched at dequeue. */
#define KNET_L3_FEATURES (NETIF_F_HW_CSUM | NETIF_F_SG | NETIF_F_FRAGLIST | \
			  NETIF_F_GSO_SOFTWARE | NETIF_F_GSO_ENCAP_ALL | \
			  NETIF_F_HIGHDMA | NETIF_F_HW_VLAN_CTAG_TX | NETIF_F_HW_VLAN_STAG_TX)

/*
 * Field stores of a layer-3 virtual device's setup. Why C: net_device is opaque to
 * kernel::bindings, and giving Rust its layout would pull in some 150 types for a dozen stores.
 */
void knet_netdev_setup_l3(struct net_device *dev, const struct net_device_ops *ops)
{
	dev->netdev_ops = ops;
	/* Packets arrive at layer 3, as the original IMQ's devices took them. */
	dev->type = ARPHRD_VOID;
	dev->mtu = 16000;
	dev->min_mtu = 0;
	dev->max_mtu = 0;
	dev->hard_header_len = 0;
	dev->addr_len = 0;
	dev->tx_queue_len = 1000;
	dev->flags = IFF_NOARP;
	dev->features |= KNET_L3_FEATURES;
	dev->hw_features |= dev->features;
	dev->hw_enc_features |= dev->features;
	dev->priv_flags &= ~IFF_TX_SKB_SHARING;
	netif_keep_dst(dev);
	/* Packets of every namespace come here; the device stays where the module made it. */
	dev->netns_immutable = true;
	dev->needs_free_netdev = true;
	netif_set_tso_max_size(dev, GSO_MAX_SIZE);
}

void knet_netdev_set_link_ops(struct net_device *dev, const struct rtnl_link_ops *ops)
{
	dev->rtnl_link_ops = ops;
}

bool knet_netif_running(const struct net_device *dev)
{
	return netif_running(dev);
}

void knet_netif_start_queue(struct net_device *dev)
{
	netif_start_queue(dev);
}

void knet_netif_stop_queue(struct net_device *dev)
{
	netif_stop_queue(dev);
}

bool knet_netif_queue_stopped(const struct net_device *dev)
{
	return netif_queue_stopped(dev);
}

void knet_netif_wake_queue(struct net_device *dev)
{
	netif_wake_queue(dev);
}

bool knet_netif_tx_trylock(struct net_device *dev)
{
	return __netif_tx_trylock(netdev_get_tx_queue(dev, 0));
}

void knet_netif_tx_unlock(struct net_device *dev)
{
	__netif_tx_unlock(netdev_get_tx_queue(dev, 0));
}

void knet_dev_stats_rx(struct net_device *dev, unsigned int len)
{
	DEV_STATS_INC(dev, rx_packets);
	DEV_STATS_ADD(dev, rx_bytes, len);
}

void knet_dev_stats_tx(struct net_device *dev, unsigned int len)
{
	DEV_STATS_INC(dev, tx_packets);
	DEV_STATS_ADD(dev, tx_bytes, len);
}

void knet_dev_stats_tx_dropped(struct net_device *dev)
{
	DEV_STATS_INC(dev, tx_dropped);
}

int knet_dev_queue_xmit(struct sk_buff *skb)
{
	return dev_queue_xmit(skb);
}

void knet_skb_clear_tstamp(struct sk_buff *skb)
{
	skb_clear_tstamp(skb);
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

/* The hook chain of (pf, hook) in `net` now (rcu_dereference). Under RCU. */
struct nf_hook_entries *knet_nf_hook_entries(struct net *net, u8 pf, unsigned int hook)
{
	if (hook >= NF_INET_NUMHOOKS)
		return NULL;
	if (pf == NFPROTO_IPV4)
		return rcu_dereference(net->nf.hooks_ipv4[hook]);
#if IS_ENABLED(CONFIG_IPV6)
	if (pf == NFPROTO_IPV6)
		return rcu_dereference(net->nf.hooks_ipv6[hook]);
#endif
	return NULL;
}

struct nf_hook_ops **knet_nf_hook_entries_ops(struct nf_hook_entries *e)
{
	return nf_hook_entries_get_hook_ops(e);
}

unsigned int knet_nf_hook_entries_num(const struct nf_hook_entries *e)
{
	return e->num_hook_entries;
}

/* Hard interrupt, or interrupts off: not a context to put socket references in. */
bool knet_irqs_disabled(void)
{
	return in_hardirq() || irqs_disabled();
}
