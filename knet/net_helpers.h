/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for the divert datapath (imq): the static inlines and macros of netdevice.h,
 * skbuff.h, netfilter.h, net_namespace.h and sock.h that Rust cannot call, as functions with
 * the knet_ prefix (the kind of rust/helpers in the kernel tree). Exported functions are
 * called from Rust directly; struct layouts and constants come from bindgen.
 */
#ifndef KNET_NET_HELPERS_H
#define KNET_NET_HELPERS_H

#include <linux/netdevice.h>
#include <linux/netfilter.h>
#include <linux/skbuff.h>
#include <net/sock.h>
#include <net/net_namespace.h>

/* The part of skb->cb that the packet scheduler leaves alone: bytes 40..47. */
enum { KNET_SKB_CB_FREE_OFF = 40 };

/* Layout guards for the net_device and nf_hook_entries that bindgen generates for Rust (checked in sys.rs). */
enum {
	KNET_SIZEOF_NET_DEVICE = sizeof(struct net_device),
	KNET_OFF_NETDEV_OPS = offsetof(struct net_device, netdev_ops),
	KNET_OFF_NETDEV_MTU = offsetof(struct net_device, mtu),
	KNET_OFF_NETDEV_FLAGS = offsetof(struct net_device, flags),
	KNET_OFF_NETDEV_HARD_HEADER_LEN = offsetof(struct net_device, hard_header_len),
	KNET_OFF_NETDEV_FEATURES = offsetof(struct net_device, features),
	KNET_OFF_NETDEV_IFINDEX = offsetof(struct net_device, ifindex),
	KNET_OFF_NETDEV_HW_FEATURES = offsetof(struct net_device, hw_features),
	KNET_OFF_NETDEV_HW_ENC_FEATURES = offsetof(struct net_device, hw_enc_features),
	KNET_OFF_NETDEV_MIN_MTU = offsetof(struct net_device, min_mtu),
	KNET_OFF_NETDEV_MAX_MTU = offsetof(struct net_device, max_mtu),
	KNET_OFF_NETDEV_TYPE = offsetof(struct net_device, type),
	KNET_OFF_NETDEV_ADDR_LEN = offsetof(struct net_device, addr_len),
	KNET_OFF_NETDEV_TX_QUEUE_LEN = offsetof(struct net_device, tx_queue_len),
	KNET_OFF_NETDEV_NEEDS_FREE_NETDEV = offsetof(struct net_device, needs_free_netdev),
	KNET_OFF_NETDEV_RTNL_LINK_OPS = offsetof(struct net_device, rtnl_link_ops),
	KNET_OFF_NETDEV_PRIV = offsetof(struct net_device, priv),
	KNET_OFF_NETDEV_NUM_TX_QUEUES = offsetof(struct net_device, num_tx_queues),
	KNET_OFF_NETDEV_REAL_NUM_TX_QUEUES = offsetof(struct net_device, real_num_tx_queues),
	KNET_OFF_NETDEV_STATE = offsetof(struct net_device, state),
	KNET_OFF_NETDEV_TSTATS = offsetof(struct net_device, tstats),
	KNET_OFF_NF_HOOKS = offsetof(struct nf_hook_entries, hooks),
	KNET_SIZEOF_PCPU_SW_NETSTATS = sizeof(struct pcpu_sw_netstats),
	KNET_OFF_TSTATS_RX_PACKETS = offsetof(struct pcpu_sw_netstats, rx_packets),
	KNET_OFF_TSTATS_RX_BYTES = offsetof(struct pcpu_sw_netstats, rx_bytes),
	KNET_OFF_TSTATS_TX_PACKETS = offsetof(struct pcpu_sw_netstats, tx_packets),
	KNET_OFF_TSTATS_TX_BYTES = offsetof(struct pcpu_sw_netstats, tx_bytes),
};

/*
 * Where knet reads struct net (its netfilter hooks, its /proc/net directory): checked against
 * kernel::bindings' layout where it has one, the only layout knet uses where it has not
 * (knet_compat_net, see knet.mk).
 */
enum {
	KNET_OFF_NET_NF = offsetof(struct net, nf),
	KNET_OFF_NET_PROC_NET = offsetof(struct net, proc_net),
};

/* The features of a layer-3 virtual device (imq's): on, and GSO ones it may have (off). */
extern const netdev_features_t knet_l3_features;
extern const netdev_features_t knet_l3_gso_features;

void knet_netif_tx_start_all_queues(struct net_device *dev);
void knet_netif_tx_stop_all_queues(struct net_device *dev);
void knet_netif_stop_subqueue(struct net_device *dev, u16 queue);
bool knet_netif_subqueue_stopped(const struct net_device *dev, u16 queue);
void knet_netif_wake_subqueue(struct net_device *dev, u16 queue);
void knet_netdev_use_tstats(struct net_device *dev);
void knet_dev_stats_rx(struct net_device *dev, unsigned int len);
void knet_dev_stats_tx(struct net_device *dev, unsigned int len);
void knet_dev_stats_tx_dropped(struct net_device *dev);

u32 knet_skb_get_hash(struct sk_buff *skb);
bool knet_netif_needs_gso(struct sk_buff *skb, const struct net_device *dev);
struct sk_buff *knet_skb_gso_segment(struct sk_buff *skb, const struct net_device *dev);

void knet_local_bh_disable(void);
void knet_local_bh_enable(void);
/* Softirq, or bottom halves disabled: this CPU's per-CPU state is ours until they are on. */
bool knet_in_softirq(void);
void knet_tasklet_schedule(struct tasklet_struct *t);

struct net *knet_maybe_get_net(struct net *net);
void knet_put_net(struct net *net);
bool knet_sock_hold_not_zero(struct sock *sk);

bool knet_irqs_disabled(void);
unsigned long knet_local_irq_save(void);
void knet_local_irq_restore(unsigned long flags);

#endif
