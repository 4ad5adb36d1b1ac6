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

/* The part of skb->cb that the packet scheduler leaves alone: bytes 40..47. */
enum { KNET_SKB_CB_FREE_OFF = 40 };

/* net_device is opaque to kernel::bindings: what Rust reads or sets of it. */
void *knet_netdev_priv(const struct net_device *dev);
int knet_netdev_ifindex(const struct net_device *dev);
void knet_netdev_setup_l3(struct net_device *dev, const struct net_device_ops *ops);
void knet_netdev_set_link_ops(struct net_device *dev, const struct rtnl_link_ops *ops);

bool knet_netif_running(const struct net_device *dev);
void knet_netif_start_queue(struct net_device *dev);
void knet_netif_stop_queue(struct net_device *dev);
bool knet_netif_queue_stopped(const struct net_device *dev);
void knet_netif_wake_queue(struct net_device *dev);
bool knet_netif_tx_trylock(struct net_device *dev);
void knet_netif_tx_unlock(struct net_device *dev);
void knet_dev_stats_rx(struct net_device *dev, unsigned int len);
void knet_dev_stats_tx(struct net_device *dev, unsigned int len);
void knet_dev_stats_tx_dropped(struct net_device *dev);
int knet_dev_queue_xmit(struct sk_buff *skb);

void knet_skb_clear_tstamp(struct sk_buff *skb);

void knet_tasklet_schedule(struct tasklet_struct *t);

struct net *knet_maybe_get_net(struct net *net);
void knet_put_net(struct net *net);
bool knet_sock_hold_not_zero(struct sock *sk);

struct nf_hook_entries *knet_nf_hook_entries(struct net *net, u8 pf, unsigned int hook);
struct nf_hook_ops **knet_nf_hook_entries_ops(struct nf_hook_entries *e);
unsigned int knet_nf_hook_entries_num(const struct nf_hook_entries *e);

bool knet_irqs_disabled(void);

#endif
