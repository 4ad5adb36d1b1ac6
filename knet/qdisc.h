/* SPDX-License-Identifier: GPL-2.0 */
/*
 * knet qdisc shim: the static inlines of the packet scheduler API that Rust cannot call
 * directly, and the offsets of the few fields of scheduler structs the packet path reads (the
 * ops tables and the qdisc's private area are built in Rust, knet/qdisc.rs).
 */
#ifndef KNET_QDISC_H
#define KNET_QDISC_H

#include <linux/skbuff.h>
#include <net/sch_generic.h>
#include <net/pkt_sched.h>
#include <net/pkt_cls.h>
#include <net/gen_stats.h>

/* Values Rust needs from macros and anonymous enums. */
enum {
	KNET_NET_XMIT_SUCCESS = NET_XMIT_SUCCESS,
	KNET_NET_XMIT_DROP = NET_XMIT_DROP,
	KNET_NET_XMIT_STOLEN = __NET_XMIT_STOLEN,
	KNET_NET_XMIT_BYPASS = __NET_XMIT_BYPASS,
	KNET_TCA_OPTIONS = TCA_OPTIONS,
	KNET_TCA_RATE = TCA_RATE,
};

/* The static inlines a qdisc kind's ops need as functions. */
struct sk_buff *knet_qdisc_peek_dequeued(struct Qdisc *sch);
/* Runs the root qdisc of `sch` again (__netif_schedule). Under RCU. */
void knet_qdisc_schedule_root(struct Qdisc *sch);
void knet_schedule_work(struct work_struct *work);

unsigned int knet_qdisc_tx_queue_len(const struct Qdisc *sch);
void knet_qdisc_tree_lock(struct Qdisc *sch);
void knet_qdisc_tree_unlock(struct Qdisc *sch);

/* Accounting of a qdisc's own queue length, backlog and counters. */
void knet_qdisc_count_enqueue(struct Qdisc *sch, unsigned int len);
void knet_qdisc_count_dequeue(struct Qdisc *sch, struct sk_buff *skb);
void knet_qdisc_count_drop(struct Qdisc *sch);
void knet_qdisc_count_overlimits(struct Qdisc *sch, u32 n);

/* Packets. */
void knet_skb_drop(struct sk_buff *skb, struct Qdisc *sch, struct sk_buff **to_free);
void knet_skb_discard(struct sk_buff *skb, struct sk_buff **to_free);

/* Child qdiscs. */
struct Qdisc *knet_qdisc_create_pfifo(struct Qdisc *sch, u32 parentid,
				      struct netlink_ext_ack *extack);
/* Queues skb in child and, if the child took it, counts it in the parent sch (backlog, queue
 * length) as knet_qdisc_count_enqueue: one call per packet on the path. */
int knet_qdisc_child_enqueue_counted(struct sk_buff *skb, struct Qdisc *child,
				     struct sk_buff **to_free, struct Qdisc *sch);
/* The child's next packet with its qdisc_pkt_len in *len and the packets it counts as (GSO
 * segments) in *segs, and the child's queue length after it in *qlen: one call per dequeue on
 * the packet path. */
struct sk_buff *knet_qdisc_child_dequeue(struct Qdisc *child, unsigned int *len,
					 unsigned int *segs, unsigned int *qlen);
bool knet_net_xmit_drop_count(int ret);
void knet_qdisc_child_purge(struct Qdisc *child);
void knet_qdisc_child_get(struct Qdisc *child);
u32 knet_qdisc_child_handle(const struct Qdisc *child);

/* Filters attached to a qdisc or a class. */
struct knet_filters {
	struct tcf_block *block;
	struct tcf_proto __rcu *chain;
};
/* TC_ACT_* verdict, or -1 if no filter matched; on a match *classid is set. */
int knet_filters_classify(struct sk_buff *skb, struct knet_filters *f, u32 *classid);

/* Where the packet path finds the fields it reads for every packet, as byte offsets fixed at
 * build time: Rust loads them directly, as the static inline accessors compile to in C, instead
 * of calling a function per field. */
/* Layout guards for the Qdisc and qdisc_skb_cb that bindgen generates (checked in sys.rs). */
enum {
	KNET_SIZEOF_QDISC = sizeof(struct Qdisc),
	KNET_OFF_QDISC_HANDLE = offsetof(struct Qdisc, handle),
	KNET_OFF_QDISC_QLEN = offsetof(struct Qdisc, q.qlen),
	KNET_OFF_QDISC_BYTES = offsetof(struct Qdisc, bstats.bytes),
	KNET_OFF_QDISC_PACKETS = offsetof(struct Qdisc, bstats.packets),
	KNET_OFF_QDISC_BACKLOG = offsetof(struct Qdisc, qstats.backlog),
	KNET_OFF_QDISC_PRIVDATA = offsetof(struct Qdisc, privdata),
	KNET_OFF_SKB_CB_PKT_LEN = offsetof(struct qdisc_skb_cb, pkt_len),
};

/* Byte/packet counters and a rate estimator of one class. */
struct knet_class_stats {
	struct gnet_stats_basic_sync bstats;
	struct net_rate_estimator __rcu *rate_est;
};
void knet_class_stats_init(struct knet_class_stats *s);
/* Replaces the estimator from a TCA_RATE attribute, or the default one (4 s / 16 s) if NULL. */
int knet_class_stats_estimator(struct knet_class_stats *s, struct nlattr *rate, bool replace);
/* Basic, rate estimator, queue (qlen/backlog of `leaf` if any) and application stats. */
int knet_class_stats_dump(struct gnet_dump *d, struct knet_class_stats *s, struct Qdisc *leaf,
			  u32 drops, u32 overlimits, const void *xstats, int xstats_len);

/* Netlink. */
const void *knet_nla_data(const struct nlattr *nla);
int knet_nla_len(const struct nlattr *nla);
struct nlattr *knet_nla_nest_start(struct sk_buff *skb, int type);
int knet_nla_nest_end(struct sk_buff *skb, struct nlattr *nest);
void knet_nla_nest_cancel(struct sk_buff *skb, struct nlattr *nest);
/* Sets the extack message to a copy of `msg` (NUL-terminated, truncated to fit). */
void knet_extack_set(struct netlink_ext_ack *extack, const char *msg);

/* One class for a walker: false when the walk must stop. */
bool knet_walker_visit(struct Qdisc *sch, unsigned long cl, struct qdisc_walker *w);

/* Kernel release the module was built for (UTS_RELEASE), for load-time messages. */
const char *knet_uts_release(void);

#endif
