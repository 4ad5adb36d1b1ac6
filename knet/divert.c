// SPDX-License-Identifier: GPL-2.0
/*
 * knet divert (see divert.h). Included by the knet_shim.c of the modules that use it (it
 * needs x_tables); one instance per module at most.
 */
#include <linux/etherdevice.h>
#include <linux/interrupt.h>
#include <linux/llist.h>
#include <linux/netfilter/x_tables.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6.h>
#include <linux/rtnetlink.h>
#include <linux/slab.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>
#include <net/net_namespace.h>
#include <net/rtnetlink.h>
#include <net/sch_generic.h>
#include <net/sock.h>
#include <trace/events/skb.h>
#include "divert.h"

/* Where our 8 bytes sit in skb->cb: after everything the packet scheduler uses. */
#define KNET_DIVERT_CB_OFF 40
static_assert(sizeof(struct tc_skb_cb) <= KNET_DIVERT_CB_OFF);
static_assert(sizeof_field(struct sk_buff, cb) >= KNET_DIVERT_CB_OFF + 8);

/* The target's tag ("divert at hook H to device N") and a queued packet's entry id. */
#define KNET_TAG_TARGET 0x494d5100u	/* | hook number */
#define KNET_TAG_ENTRY 0x494d51ffu
/*
 * Ids below this name slots of a flat table claimed and released by compare-and-swap, the
 * common case (few packets queued at a time); ids above it, once the slots a CPU tries are
 * taken, an xarray, which grows as far as queues do. The xarray alone cost two locked walks a
 * packet, about half of what imq costs beyond IFB.
 */
#define KNET_DIVERT_SLOTS 2048u
/* Slots tried from a CPU's cursor before falling back to the xarray. */
#define KNET_DIVERT_TRIES 4
/* Packets the reinjection queue holds before the device's queue is stopped. */
#define KNET_DIVERT_RQ_MAX 64
/* Packets reinjected per tasklet run before yielding. */
#define KNET_DIVERT_BUDGET 64

struct knet_divert_tag {
	u32 magic;
	u32 val;
};

struct knet_divert_entry {
	struct sk_buff *skb;	/* the packet this state belongs to */
	unsigned long born;	/* jiffies */
	struct nf_hook_state state;	/* in/out are not used: see the ifindexes */
	const struct nf_hook_ops *ops;	/* our hook the packet left at */
	int in_ifindex, out_ifindex, dev_ifindex;
	ktime_t tstamp;
	u32 priority;
	u16 mac_header;
	u16 queue_mapping;
	u8 tstamp_type;
	bool wmem_charged;	/* skb->sk's send buffer was charged for the packet (sock_wfree) */
	char cb[sizeof_field(struct sk_buff, cb)];
	struct llist_node release;
};

struct knet_divert_dev {
	struct knet_divert *d;
	struct net_device *dev;
	unsigned int index;
	struct sk_buff_head rq;	/* from the qdisc, under the tx lock */
	struct sk_buff_head tq;	/* being reinjected, tasklet only */
	struct tasklet_struct tasklet;
	bool pending;
};

struct knet_divert {
	unsigned int ndevs;
	struct net_device __rcu **devs;
	struct nf_hook_ops ops[4];
	struct pernet_operations pernet;
	bool pernet_registered;
	struct xt_target targets[2];
	bool targets_registered;
	bool probe_registered;
	struct rtnl_link_ops link_ops;
	bool link_registered;
	char name_fmt[IFNAMSIZ];
	char kind[IFNAMSIZ];	/* name_fmt up to its %d: the rtnl link kind */
	char target_name[XT_EXTENSION_MAXNAMELEN];
	struct knet_divert_cbs cbs;
	void *ctx;
	struct knet_divert_entry **slots;	/* ids 0..KNET_DIVERT_SLOTS-1 */
	unsigned int __percpu *cursor;	/* where a CPU tries a slot first */
	struct xarray entries;		/* ids from KNET_DIVERT_SLOTS on */
	struct kmem_cache *cache;	/* of entries; SLAB_TYPESAFE_BY_RCU */
	struct llist_head to_release;
	struct work_struct release_work;
	struct delayed_work sweep;
	atomic64_t diverted, reinjected, passed_down, no_state, lost, foreign, gone, freed, expired;
	atomic64_t outstanding;
};

struct knet_divert_tginfo {
	__u32 todev;
};

/* Hook and pernet callbacks have no private pointer to the instance. */
static struct knet_divert *knet_divert_instance;

static struct knet_divert_tag *knet_divert_tag(struct sk_buff *skb)
{
	return (struct knet_divert_tag *)(skb->cb + KNET_DIVERT_CB_OFF);
}

/*
 * Drops the entry's references and frees it at once. Readers that found it in the table before
 * it was taken out may still look at it: the cache is SLAB_TYPESAFE_BY_RCU, so until they leave
 * their RCU read section it stays an entry (perhaps a new packet's), and they only use what
 * they found after comparing its skb and taking it out of the table by cmpxchg on their id,
 * which succeeds only for the entry that holds that id now. (Freeing each entry after a grace
 * period instead, kfree_rcu, cost more per packet than all the rest of the divert.) Softirq or
 * process context; the entry is already out of the table.
 */
static void knet_divert_release_now(struct knet_divert *d, struct knet_divert_entry *e)
{
	if (e->state.sk)
		sock_gen_put(e->state.sk);
	put_net(e->state.net);
	kmem_cache_free(d->cache, e);
	atomic64_dec(&d->outstanding);
}

static void knet_divert_release_work(struct work_struct *w)
{
	struct knet_divert *d = container_of(w, struct knet_divert, release_work);
	struct llist_node *list = llist_del_all(&d->to_release);
	struct knet_divert_entry *e, *n;

	llist_for_each_entry_safe(e, n, list, release)
		knet_divert_release_now(d, e);
}

/* Any context (the tracepoint may fire with interrupts off): release from a work item. */
static void knet_divert_release(struct knet_divert *d, struct knet_divert_entry *e)
{
	llist_add(&e->release, &d->to_release);
	schedule_work(&d->release_work);
}

/* Replaces entry `id` by `new` if it is still `old`; true if it was. */
static bool knet_divert_swap(struct knet_divert *d, u32 id, struct knet_divert_entry *old,
			     struct knet_divert_entry *new)
{
	unsigned long flags;
	bool swapped;

	if (id < KNET_DIVERT_SLOTS)
		return cmpxchg(&d->slots[id], old, new) == old;
	xa_lock_irqsave(&d->entries, flags);
	swapped = __xa_cmpxchg(&d->entries, id, old, new, GFP_ATOMIC) == old;
	xa_unlock_irqrestore(&d->entries, flags);
	return swapped;
}

/* The entry named `id` now, or NULL. Under RCU; the entry may be another packet's. */
static struct knet_divert_entry *knet_divert_lookup(struct knet_divert *d, u32 id)
{
	if (id < KNET_DIVERT_SLOTS)
		return READ_ONCE(d->slots[id]);
	return xa_load(&d->entries, id);
}

/* Gives `e` an id: a free slot near this CPU's cursor, else one in the xarray. */
static int knet_divert_insert(struct knet_divert *d, struct knet_divert_entry *e, u32 *id)
{
	static const struct xa_limit above_slots = XA_LIMIT(KNET_DIVERT_SLOTS, INT_MAX);
	unsigned int at = this_cpu_read(*d->cursor);
	unsigned long flags;
	int i, err;

	for (i = 0; i < KNET_DIVERT_TRIES; i++, at++) {
		at %= KNET_DIVERT_SLOTS;
		if (!READ_ONCE(d->slots[at]) && !cmpxchg(&d->slots[at], NULL, e)) {
			/* Likely free again by this CPU's next packet. */
			this_cpu_write(*d->cursor, at);
			*id = at;
			return 0;
		}
	}
	this_cpu_write(*d->cursor, at);
	xa_lock_irqsave(&d->entries, flags);
	err = __xa_alloc(&d->entries, id, e, above_slots, GFP_ATOMIC);
	xa_unlock_irqrestore(&d->entries, flags);
	return err;
}

/* Takes entry `id` out of the table if it is still the one `e`; true if we took it. */
static bool knet_divert_take(struct knet_divert *d, u32 id, struct knet_divert_entry *e)
{
	return knet_divert_swap(d, id, e, NULL);
}

/*
 * Takes the entry named `id` out of the table if it is `skb`'s; NULL if not. What a look finds
 * may be freed and reused for another packet given the same id (the cache is type-safe) before
 * the compare-and-swap, which then succeeds on the same address: so the entry's skb is checked
 * again once it is ours. The first check only spares the common case, a copy or segment whose
 * tag names its original's entry, a take and a put-back. Another packet's entry taken in that
 * race goes back; if its id was given out meanwhile it cannot, and is released as expired (its
 * packet then finds no state, as after the sweep). Under RCU.
 */
static struct knet_divert_entry *knet_divert_take_skb(struct knet_divert *d, u32 id,
						      const struct sk_buff *skb)
{
	struct knet_divert_entry *e = knet_divert_lookup(d, id);

	if (!e || READ_ONCE(e->skb) != skb || !knet_divert_take(d, id, e))
		return NULL;
	if (likely(e->skb == skb))
		return e;
	if (!knet_divert_swap(d, id, NULL, e)) {
		atomic64_inc(&d->expired);
		knet_divert_release(d, e);
	}
	return NULL;
}

/* kfree_skb tracepoint: a diverted packet was dropped (by a qdisc, or on a purge). */
static void knet_divert_kfree_probe(void *data, struct sk_buff *skb, void *location,
				    enum skb_drop_reason reason, const struct sock *rx_sk)
{
	struct knet_divert *d = data;
	struct knet_divert_tag *tag = knet_divert_tag(skb);
	struct knet_divert_entry *e;

	if (likely(tag->magic != KNET_TAG_ENTRY))
		return;
	rcu_read_lock();
	e = knet_divert_take_skb(d, tag->val, skb);
	if (e) {
		atomic64_inc(&d->freed);
		knet_divert_release(d, e);
	}
	rcu_read_unlock();
}

/* Frees entry `id` if it is older than KNET_DIVERT_MAX_AGE_S. Under RCU. */
static void knet_divert_sweep_one(struct knet_divert *d, u32 id, struct knet_divert_entry *e)
{
	if (!time_after(jiffies, READ_ONCE(e->born) + KNET_DIVERT_MAX_AGE_S * HZ) ||
	    !knet_divert_take(d, id, e))
		return;
	/* Ours now: its age may have been read off an entry freed and reused for the same id
	 * meanwhile (type-safe cache). A young one goes back if its id is still free. */
	if (!time_after(jiffies, e->born + KNET_DIVERT_MAX_AGE_S * HZ) &&
	    knet_divert_swap(d, id, NULL, e))
		return;
	atomic64_inc(&d->expired);
	knet_divert_release(d, e);
}

static void knet_divert_sweep(struct work_struct *w)
{
	struct knet_divert *d = container_of(w, struct knet_divert, sweep.work);
	struct knet_divert_entry *e;
	unsigned long id;

	/* xa_for_each leaves RCU between steps: the entry it found must stay an entry while we
	 * look at it. */
	rcu_read_lock();
	for (id = 0; id < KNET_DIVERT_SLOTS; id++) {
		e = READ_ONCE(d->slots[id]);
		if (e)
			knet_divert_sweep_one(d, id, e);
	}
	xa_for_each(&d->entries, id, e)
		knet_divert_sweep_one(d, id, e);
	rcu_read_unlock();
	schedule_delayed_work(&d->sweep, 10 * HZ);
}

static unsigned int knet_divert_hook(void *priv, struct sk_buff *skb,
				     const struct nf_hook_state *state)
{
	struct knet_divert *d = priv;
	struct knet_divert_tag *tag = knet_divert_tag(skb);
	struct knet_divert_entry *e;
	struct net_device *dev;
	unsigned int devno;
	u32 id;
	int err;

	if (likely(tag->magic != (KNET_TAG_TARGET | state->hook)))
		return NF_ACCEPT;
	devno = tag->val;
	tag->magic = 0;
	tag->val = 0;
	if (devno >= d->ndevs)
		return NF_ACCEPT;
	dev = rcu_dereference(d->devs[devno]);
	if (!dev || !netif_running(dev)) {
		/* A device that is down lets packets pass unshaped, the chain going on. */
		atomic64_inc(&d->passed_down);
		return NF_ACCEPT;
	}
	e = kmem_cache_alloc(d->cache, GFP_ATOMIC);
	if (!e)
		goto no_state;
	e->state = *state;
	e->state.in = NULL;
	e->state.out = NULL;
	if (!maybe_get_net(state->net))
		goto free;
	if (state->sk && !refcount_inc_not_zero(&state->sk->sk_refcnt))
		goto put_net;
	/* Filled in before it gets an id: readers may find it from then on. */
	e->skb = skb;
	e->born = jiffies;
	e->ops = state->pf == NFPROTO_IPV4 ?
		&d->ops[state->hook == NF_INET_PRE_ROUTING ? 0 : 1] :
		&d->ops[state->hook == NF_INET_PRE_ROUTING ? 2 : 3];
	e->in_ifindex = state->in ? state->in->ifindex : 0;
	e->out_ifindex = state->out ? state->out->ifindex : 0;
	e->dev_ifindex = skb->dev ? skb->dev->ifindex : 0;
	e->tstamp = skb->tstamp;
	e->tstamp_type = skb->tstamp_type;
	e->priority = skb->priority;
	e->mac_header = skb->mac_header;
	e->queue_mapping = skb->queue_mapping;
	e->wmem_charged = skb->sk && skb->sk == state->sk && skb->destructor == sock_wfree;
	memcpy(e->cb, skb->cb, sizeof(e->cb));
	err = knet_divert_insert(d, e, &id);
	if (err)
		goto put_sk;
	atomic64_inc(&d->outstanding);
	tag->magic = KNET_TAG_ENTRY;
	tag->val = id;
	/* Receive timestamps mean departure times to fq and friends: not on ingress. */
	if (state->hook == NF_INET_PRE_ROUTING)
		skb_clear_tstamp(skb);
	DEV_STATS_INC(dev, rx_packets);
	DEV_STATS_ADD(dev, rx_bytes, skb->len);
	atomic64_inc(&d->diverted);
	skb->dev = dev;
	dev_queue_xmit(skb);
	return NF_STOLEN;

put_sk:
	if (state->sk)
		sock_gen_put(state->sk);
put_net:
	put_net(state->net);
free:
	kmem_cache_free(d->cache, e);
no_state:
	atomic64_inc(&d->no_state);
	return NF_ACCEPT;
}

/* The hook chain the packet left, and our place in it; NULL if our hook is gone. */
static struct nf_hook_entries *knet_divert_chain(struct knet_divert_entry *e, unsigned int *next)
{
	struct net *net = e->state.net;
	struct nf_hook_entries *hooks = NULL;
	struct nf_hook_ops **ops;
	unsigned int i;

	if (e->state.hook >= NF_INET_NUMHOOKS)
		return NULL;
	if (e->state.pf == NFPROTO_IPV4)
		hooks = rcu_dereference(net->nf.hooks_ipv4[e->state.hook]);
#if IS_ENABLED(CONFIG_IPV6)
	else if (e->state.pf == NFPROTO_IPV6)
		hooks = rcu_dereference(net->nf.hooks_ipv6[e->state.hook]);
#endif
	if (!hooks)
		return NULL;
	/* Looked up now, not at divert time: hooks may have come and gone meanwhile. */
	ops = nf_hook_entries_get_hook_ops(hooks);
	for (i = 0; i < hooks->num_hook_entries; i++) {
		if (ops[i] == e->ops) {
			*next = i + 1;
			return hooks;
		}
	}
	return NULL;
}

/*
 * A qdisc may trade a packet's send-buffer charge for a plain socket reference: netem with a
 * delay does (skb_orphan_partial: sock_wfree becomes sock_efree). Behind a NIC that is
 * harmless. Behind imq the qdisc runs before IP fragmentation, whose fast path
 * (ip_do_fragment, ip6_fragment) makes the fragments of a packet with a socket sock_wfree
 * owners of their share of its charge, as if it still held it: the socket's wmem count then
 * underflows. So the charge goes back before the packet does. The entry's own reference keeps
 * the socket alive across the swap.
 */
static void knet_divert_recharge(struct knet_divert_entry *e, struct sk_buff *skb)
{
	if (e->wmem_charged && skb->sk == e->state.sk && skb->destructor != sock_wfree)
		skb_set_owner_w(skb, e->state.sk);
}

/* Softirq: the packet left the device's qdisc; send it on where it left netfilter. */
static void knet_divert_reinject(struct knet_divert *d, struct sk_buff *skb)
{
	struct knet_divert_tag *tag = knet_divert_tag(skb);
	struct knet_divert_entry *e = NULL;
	struct nf_hook_entries *hooks;
	struct nf_hook_state state;
	unsigned int next = 0;
	u32 id = tag->val;
	int ret;

	if (tag->magic != KNET_TAG_ENTRY) {
		/* Not diverted by us: the stack's own packets (IPv6 autoconfiguration, ...). */
		atomic64_inc(&d->foreign);
		DEV_STATS_INC(skb->dev, tx_dropped);
		kfree_skb(skb);
		return;
	}
	rcu_read_lock();
	e = knet_divert_take_skb(d, id, skb);
	if (!e) {
		/* A copy or segment made inside the qdisc, or state expired: no way back. */
		rcu_read_unlock();
		atomic64_inc(&d->lost);
		kfree_skb(skb);
		return;
	}
	memcpy(skb->cb, e->cb, sizeof(e->cb));
	state = e->state;
	hooks = knet_divert_chain(e, &next);
	if (e->in_ifindex)
		state.in = dev_get_by_index_rcu(state.net, e->in_ifindex);
	if (e->out_ifindex)
		state.out = dev_get_by_index_rcu(state.net, e->out_ifindex);
	/* Mostly the device the packet came in on (PREROUTING) or goes out of (POSTROUTING). */
	if (e->dev_ifindex == e->in_ifindex)
		skb->dev = state.in;
	else if (e->dev_ifindex == e->out_ifindex)
		skb->dev = state.out;
	else
		skb->dev = dev_get_by_index_rcu(state.net, e->dev_ifindex);
	if (!hooks || !skb->dev || (e->in_ifindex && !state.in) ||
	    (e->out_ifindex && !state.out)) {
		rcu_read_unlock();
		atomic64_inc(&d->gone);
		kfree_skb(skb);
		knet_divert_release_now(d, e);
		return;
	}
	skb->tstamp = e->tstamp;
	skb->tstamp_type = e->tstamp_type;
	skb->priority = e->priority;
	skb->mac_header = e->mac_header;
	skb->queue_mapping = e->queue_mapping;
	knet_divert_recharge(e, skb);
	atomic64_inc(&d->reinjected);
	ret = nf_hook_slow(skb, &state, hooks, next);
	/* Under RCU as on the stack's own path (netif_receive_skb, ip_local_out): okfn reads
	 * RCU-protected state (dev_net_rcu, routes), and state.in/out were found under it. */
	if (ret == 1)
		state.okfn(state.net, state.sk, skb);
	rcu_read_unlock();
	knet_divert_release_now(d, e);
}

static void knet_divert_tasklet(struct tasklet_struct *t)
{
	struct knet_divert_dev *p = from_tasklet(p, t, tasklet);
	struct netdev_queue *txq = netdev_get_tx_queue(p->dev, 0);
	struct sk_buff *skb;
	int budget = KNET_DIVERT_BUDGET;

	if (skb_queue_empty(&p->tq)) {
		if (!__netif_tx_trylock(txq))
			goto resched;
		skb_queue_splice_tail_init(&p->rq, &p->tq);
		__netif_tx_unlock(txq);
	}
	while (budget-- > 0 && (skb = __skb_dequeue(&p->tq)) != NULL)
		knet_divert_reinject(p->d, skb);
	if (!skb_queue_empty(&p->tq))
		goto resched;
	if (__netif_tx_trylock(txq)) {
		if (skb_queue_empty(&p->rq)) {
			p->pending = false;
			if (netif_tx_queue_stopped(txq))
				netif_tx_wake_queue(txq);
			__netif_tx_unlock(txq);
			return;
		}
		__netif_tx_unlock(txq);
	}
resched:
	p->pending = true;
	tasklet_schedule(&p->tasklet);
}

static netdev_tx_t knet_divert_xmit(struct sk_buff *skb, struct net_device *dev)
{
	struct knet_divert_dev *p = netdev_priv(dev);

	DEV_STATS_INC(dev, tx_packets);
	DEV_STATS_ADD(dev, tx_bytes, skb->len);
	__skb_queue_tail(&p->rq, skb);
	if (skb_queue_len(&p->rq) >= KNET_DIVERT_RQ_MAX)
		netif_stop_queue(dev);
	if (!p->pending) {
		p->pending = true;
		tasklet_schedule(&p->tasklet);
	}
	return NETDEV_TX_OK;
}

static int knet_divert_open(struct net_device *dev)
{
	netif_start_queue(dev);
	return 0;
}

static int knet_divert_stop(struct net_device *dev)
{
	netif_stop_queue(dev);
	return 0;
}

/* Unregistration (rmmod, or `ip link del`): forget the device, drop what it still holds. */
static void knet_divert_uninit(struct net_device *dev)
{
	struct knet_divert_dev *p = netdev_priv(dev);

	if (p->d && p->index < p->d->ndevs)
		RCU_INIT_POINTER(p->d->devs[p->index], NULL);
	tasklet_kill(&p->tasklet);
	/* kfree_skb, so that the tracepoint frees their state. */
	skb_queue_purge_reason(&p->rq, SKB_DROP_REASON_DEV_READY);
	skb_queue_purge_reason(&p->tq, SKB_DROP_REASON_DEV_READY);
}

static const struct net_device_ops knet_divert_netdev_ops = {
	.ndo_open = knet_divert_open,
	.ndo_stop = knet_divert_stop,
	.ndo_start_xmit = knet_divert_xmit,
	.ndo_uninit = knet_divert_uninit,
};

/* As IFB: GSO packets stay whole, checksums and VLAN tags are not touched at dequeue. */
#define KNET_DIVERT_FEATURES (NETIF_F_HW_CSUM | NETIF_F_SG | NETIF_F_FRAGLIST | \
			      NETIF_F_GSO_SOFTWARE | NETIF_F_GSO_ENCAP_ALL | \
			      NETIF_F_HIGHDMA | NETIF_F_HW_VLAN_CTAG_TX | NETIF_F_HW_VLAN_STAG_TX)

static void knet_divert_setup(struct net_device *dev)
{
	struct knet_divert_dev *p = netdev_priv(dev);

	dev->netdev_ops = &knet_divert_netdev_ops;
	/* Packets arrive at layer 3, as the original IMQ's devices took them. */
	dev->type = ARPHRD_VOID;
	dev->mtu = 16000;
	dev->min_mtu = 0;
	dev->max_mtu = 0;
	dev->hard_header_len = 0;
	dev->addr_len = 0;
	dev->tx_queue_len = 1000;
	dev->flags = IFF_NOARP;
	dev->features |= KNET_DIVERT_FEATURES;
	dev->hw_features |= dev->features;
	dev->hw_enc_features |= dev->features;
	dev->priv_flags &= ~IFF_TX_SKB_SHARING;
	netif_keep_dst(dev);
	/* Packets of every namespace come here; the device stays where the module made it. */
	dev->netns_immutable = true;
	dev->needs_free_netdev = true;
	netif_set_tso_max_size(dev, GSO_MAX_SIZE);
	p->dev = dev;
	__skb_queue_head_init(&p->rq);
	__skb_queue_head_init(&p->tq);
	tasklet_setup(&p->tasklet, knet_divert_tasklet);
}

static int knet_divert_validate(struct nlattr *tb[], struct nlattr *data[],
				struct netlink_ext_ack *extack)
{
	NL_SET_ERR_MSG(extack, "these devices are made by the module (its numdevs parameter)");
	return -EOPNOTSUPP;
}

static unsigned int knet_divert_tg(struct sk_buff *skb, const struct xt_action_param *par)
{
	const struct knet_divert_tginfo *info = par->targinfo;
	struct knet_divert_tag *tag = knet_divert_tag(skb);

	tag->magic = KNET_TAG_TARGET | xt_hooknum(par);
	tag->val = info->todev;
	return XT_CONTINUE;
}

static int knet_divert_tg_check(const struct xt_tgchk_param *par)
{
	const struct knet_divert_tginfo *info = par->targinfo;
	struct knet_divert *d = knet_divert_instance;

	if (!d)
		return -ENOENT;
	return d->cbs.check(d->ctx, info->todev, par->hook_mask);
}

static int __net_init knet_divert_net_init(struct net *net)
{
	struct knet_divert *d = knet_divert_instance;

	return nf_register_net_hooks(net, d->ops, ARRAY_SIZE(d->ops));
}

static void __net_exit knet_divert_net_exit(struct net *net)
{
	struct knet_divert *d = knet_divert_instance;

	nf_unregister_net_hooks(net, d->ops, ARRAY_SIZE(d->ops));
}

static int knet_divert_add_dev(struct knet_divert *d, unsigned int i)
{
	struct knet_divert_dev *p;
	struct net_device *dev;
	int err;

	dev = alloc_netdev(sizeof(*p), d->name_fmt, NET_NAME_ENUM, knet_divert_setup);
	if (!dev)
		return -ENOMEM;
	p = netdev_priv(dev);
	p->d = d;
	p->index = i;
	dev->rtnl_link_ops = &d->link_ops;
	rtnl_lock();
	err = register_netdevice(dev);
	if (!err)
		rcu_assign_pointer(d->devs[i], dev);
	rtnl_unlock();
	if (err)
		free_netdev(dev);
	return err;
}

void knet_divert_destroy(struct knet_divert *d, struct knet_divert_counters *final)
{
	struct knet_divert_entry *e;
	unsigned long id;

	/* No new tags, then no devices (their qdiscs drop what they hold, and the tracepoint
	 * frees its state; what their tasklets release meanwhile still finds our hooks and is
	 * reinjected, not dropped as gone; tagged packets still on their way find no device and
	 * pass), then no hooks, then no tracepoint. */
	if (d->targets_registered)
		xt_unregister_targets(d->targets, ARRAY_SIZE(d->targets));
	if (d->link_registered)
		rtnl_link_unregister(&d->link_ops);
	if (d->pernet_registered)
		unregister_pernet_subsys(&d->pernet);
	if (d->probe_registered) {
		unregister_trace_kfree_skb(knet_divert_kfree_probe, d);
		tracepoint_synchronize_unregister();
	}
	cancel_delayed_work_sync(&d->sweep);
	/* State whose packet was freed unseen (consumed, not dropped): counted as expired. */
	for (id = 0; d->slots && id < KNET_DIVERT_SLOTS; id++) {
		e = d->slots[id];
		if (e && knet_divert_take(d, id, e)) {
			atomic64_inc(&d->expired);
			knet_divert_release(d, e);
		}
	}
	xa_for_each(&d->entries, id, e) {
		if (knet_divert_take(d, id, e)) {
			atomic64_inc(&d->expired);
			knet_divert_release(d, e);
		}
	}
	flush_work(&d->release_work);
	rcu_barrier();
	xa_destroy(&d->entries);
	kmem_cache_destroy(d->cache);
	free_percpu(d->cursor);
	kfree(d->slots);
	/* Now that the devices' queues are gone too: what the unload itself dropped counts. */
	if (final)
		knet_divert_counters(d, final);
	knet_divert_instance = NULL;
	kfree(d->devs);
	kfree(d);
}

struct knet_divert *knet_divert_create(const char *name_fmt, unsigned int ndevs, int pre_prio,
				       int post_prio, const char *target,
				       const struct knet_divert_cbs *cbs, void *ctx,
				       struct module *owner)
{
	static const u8 pfs[4] = { NFPROTO_IPV4, NFPROTO_IPV4, NFPROTO_IPV6, NFPROTO_IPV6 };
	static const u8 hooks[4] = { NF_INET_PRE_ROUTING, NF_INET_POST_ROUTING,
				     NF_INET_PRE_ROUTING, NF_INET_POST_ROUTING };
	struct knet_divert *d;
	unsigned int i;
	int err;

	if (knet_divert_instance)
		return ERR_PTR(-EBUSY);
	if (!ndevs || strlen(name_fmt) >= IFNAMSIZ || strlen(target) >= XT_EXTENSION_MAXNAMELEN)
		return ERR_PTR(-EINVAL);
	d = kzalloc(sizeof(*d), GFP_KERNEL);
	if (!d)
		return ERR_PTR(-ENOMEM);
	d->devs = kcalloc(ndevs, sizeof(*d->devs), GFP_KERNEL);
	if (!d->devs) {
		kfree(d);
		return ERR_PTR(-ENOMEM);
	}
	d->ndevs = ndevs;
	d->cbs = *cbs;
	d->ctx = ctx;
	strscpy(d->name_fmt, name_fmt);
	strscpy(d->target_name, target);
	xa_init_flags(&d->entries, XA_FLAGS_ALLOC);
	init_llist_head(&d->to_release);
	INIT_WORK(&d->release_work, knet_divert_release_work);
	INIT_DELAYED_WORK(&d->sweep, knet_divert_sweep);
	knet_divert_instance = d;

	d->cache = kmem_cache_create("knet_divert_entry", sizeof(struct knet_divert_entry), 0,
				     SLAB_TYPESAFE_BY_RCU, NULL);
	d->slots = kcalloc(KNET_DIVERT_SLOTS, sizeof(*d->slots), GFP_KERNEL);
	d->cursor = alloc_percpu(unsigned int);
	if (!d->cache || !d->slots || !d->cursor) {
		err = -ENOMEM;
		goto fail;
	}
	/* CPUs start apart, so that they rarely race for a slot. */
	for_each_possible_cpu(i)
		*per_cpu_ptr(d->cursor, i) = i * 64 % KNET_DIVERT_SLOTS;

	err = register_trace_kfree_skb(knet_divert_kfree_probe, d);
	if (err)
		goto fail;
	d->probe_registered = true;

	strscpy(d->kind, name_fmt);
	if (strchr(d->kind, '%'))
		*strchr(d->kind, '%') = 0;
	d->link_ops.kind = d->kind;
	d->link_ops.priv_size = sizeof(struct knet_divert_dev);
	d->link_ops.setup = knet_divert_setup;
	d->link_ops.validate = knet_divert_validate;
	err = rtnl_link_register(&d->link_ops);
	if (err)
		goto fail;
	d->link_registered = true;
	for (i = 0; i < ndevs; i++) {
		err = knet_divert_add_dev(d, i);
		if (err)
			goto fail;
	}

	for (i = 0; i < ARRAY_SIZE(d->ops); i++) {
		d->ops[i].hook = knet_divert_hook;
		d->ops[i].priv = d;
		d->ops[i].pf = pfs[i];
		d->ops[i].hooknum = hooks[i];
		d->ops[i].priority = hooks[i] == NF_INET_PRE_ROUTING ? pre_prio : post_prio;
	}
	d->pernet.init = knet_divert_net_init;
	d->pernet.exit = knet_divert_net_exit;
	err = register_pernet_subsys(&d->pernet);
	if (err)
		goto fail;
	d->pernet_registered = true;

	for (i = 0; i < ARRAY_SIZE(d->targets); i++) {
		struct xt_target *t = &d->targets[i];

		strscpy((char *)t->name, d->target_name, sizeof(t->name));
		t->revision = 0;
		t->family = i ? NFPROTO_IPV6 : NFPROTO_IPV4;
		t->target = knet_divert_tg;
		t->checkentry = knet_divert_tg_check;
		t->targetsize = sizeof(struct knet_divert_tginfo);
		t->table = "mangle";
		t->hooks = (1 << NF_INET_PRE_ROUTING) | (1 << NF_INET_POST_ROUTING);
		t->me = owner;
	}
	err = xt_register_targets(d->targets, ARRAY_SIZE(d->targets));
	if (err)
		goto fail;
	d->targets_registered = true;
	schedule_delayed_work(&d->sweep, 10 * HZ);
	return d;

fail:
	knet_divert_destroy(d, NULL);
	return ERR_PTR(err);
}

void knet_divert_counters(struct knet_divert *d, struct knet_divert_counters *c)
{
	c->diverted = atomic64_read(&d->diverted);
	c->reinjected = atomic64_read(&d->reinjected);
	c->passed_down = atomic64_read(&d->passed_down);
	c->no_state = atomic64_read(&d->no_state);
	c->lost = atomic64_read(&d->lost);
	c->foreign = atomic64_read(&d->foreign);
	c->gone = atomic64_read(&d->gone);
	c->freed = atomic64_read(&d->freed);
	c->expired = atomic64_read(&d->expired);
	c->outstanding = atomic64_read(&d->outstanding);
}
