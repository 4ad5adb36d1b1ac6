// SPDX-License-Identifier: GPL-2.0
/*
 * knet qdisc shim (see qdisc.h). Included by the knet_shim.c of the modules that register a
 * qdisc kind (sch_htb_rs).
 */
#include <generated/utsrelease.h>
#include <linux/rtnetlink.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>
#include "qdisc.h"

const char *knet_uts_release(void)
{
	return UTS_RELEASE;
}

/* u64_stats_add() is local64_add() on 64-bit: what the Rust side does to a u64. */
static_assert(IS_ENABLED(CONFIG_64BIT));

struct sk_buff *knet_qdisc_peek_dequeued(struct Qdisc *sch)
{
	return qdisc_peek_dequeued(sch);
}

void knet_qdisc_schedule_root(struct Qdisc *sch)
{
	__netif_schedule(qdisc_root(sch));
}

void knet_schedule_work(struct work_struct *work)
{
	schedule_work(work);
}

unsigned int knet_qdisc_tx_queue_len(const struct Qdisc *sch)
{
	return READ_ONCE(qdisc_dev(sch)->tx_queue_len);
}

void knet_qdisc_tree_lock(struct Qdisc *sch)
{
	sch_tree_lock(sch);
}

void knet_qdisc_tree_unlock(struct Qdisc *sch)
{
	sch_tree_unlock(sch);
}

void knet_qdisc_count_enqueue(struct Qdisc *sch, unsigned int len)
{
	sch->qstats.backlog += len;
	sch->q.qlen++;
}

void knet_qdisc_count_dequeue(struct Qdisc *sch, struct sk_buff *skb)
{
	qdisc_bstats_update(sch, skb);
	qdisc_qstats_backlog_dec(sch, skb);
	sch->q.qlen--;
}

void knet_qdisc_count_drop(struct Qdisc *sch)
{
	qdisc_qstats_drop(sch);
}

void knet_qdisc_count_overlimits(struct Qdisc *sch, u32 n)
{
	sch->qstats.overlimits += n;
}

void knet_skb_drop(struct sk_buff *skb, struct Qdisc *sch, struct sk_buff **to_free)
{
	qdisc_drop(skb, sch, to_free);
}

void knet_skb_discard(struct sk_buff *skb, struct sk_buff **to_free)
{
	__qdisc_drop(skb, to_free);
}

struct Qdisc *knet_qdisc_create_pfifo(struct Qdisc *sch, u32 parentid,
				      struct netlink_ext_ack *extack)
{
	return qdisc_create_dflt(sch->dev_queue, &pfifo_qdisc_ops, parentid, extack);
}

int knet_qdisc_child_enqueue_counted(struct sk_buff *skb, struct Qdisc *child,
				     struct sk_buff **to_free, struct Qdisc *sch)
{
	/* Read before the child owns (and may free) the skb. */
	unsigned int len = qdisc_pkt_len(skb);
	int ret = qdisc_enqueue(skb, child, to_free);

	if (ret == NET_XMIT_SUCCESS)
		knet_qdisc_count_enqueue(sch, len);
	return ret;
}

struct sk_buff *knet_qdisc_child_dequeue(struct Qdisc *child, unsigned int *len,
					 unsigned int *segs, unsigned int *qlen)
{
	struct sk_buff *skb = child->dequeue(child);

	*len = skb ? qdisc_pkt_len(skb) : 0;
	/* A GSO packet counts as its segments, as bstats_update() counts it for every qdisc. */
	*segs = skb ? (skb_is_gso(skb) ? skb_shinfo(skb)->gso_segs : 1) : 0;
	*qlen = child->q.qlen;
	return skb;
}

bool knet_net_xmit_drop_count(int ret)
{
	return net_xmit_drop_count(ret);
}

void knet_qdisc_child_purge(struct Qdisc *child)
{
	qdisc_purge_queue(child);
}

void knet_qdisc_child_get(struct Qdisc *child)
{
	qdisc_refcount_inc(child);
}

u32 knet_qdisc_child_handle(const struct Qdisc *child)
{
	return child->handle;
}


int knet_filters_classify(struct sk_buff *skb, struct knet_filters *f, u32 *classid)
{
	struct tcf_proto *tp = rcu_dereference_bh(f->chain);
	struct tcf_result res = {};
	int result;

	if (!tp)
		return TC_ACT_UNSPEC;
	result = tcf_classify(skb, NULL, tp, &res, false);
	if (result >= 0)
		*classid = res.classid;
	return result;
}

void knet_class_stats_init(struct knet_class_stats *s)
{
	gnet_stats_basic_sync_init(&s->bstats);
	s->rate_est = NULL;
}

int knet_class_stats_estimator(struct knet_class_stats *s, struct nlattr *rate, bool replace)
{
	struct {
		struct nlattr nla;
		struct gnet_estimator opt;
	} est = {
		.nla = { .nla_len = nla_attr_size(sizeof(est.opt)), .nla_type = TCA_RATE },
		/* 4 s interval, 16 s averaging, as sch_htb's htb_rate_est. */
		.opt = { .interval = 2, .ewma_log = 2 },
	};
	struct nlattr *opt = rate ? rate : &est.nla;

	if (replace)
		return gen_replace_estimator(&s->bstats, NULL, &s->rate_est, NULL, true, opt);
	return gen_new_estimator(&s->bstats, NULL, &s->rate_est, NULL, true, opt);
}

int knet_class_stats_dump(struct gnet_dump *d, struct knet_class_stats *s, struct Qdisc *leaf,
			  u32 drops, u32 overlimits, const void *xstats, int xstats_len)
{
	struct gnet_stats_queue qs = { .drops = drops, .overlimits = overlimits };
	__u32 qlen = 0;

	if (leaf)
		qdisc_qstats_qlen_backlog(leaf, &qlen, &qs.backlog);
	if (gnet_stats_copy_basic(d, NULL, &s->bstats, true) < 0 ||
	    gnet_stats_copy_rate_est(d, &s->rate_est) < 0 ||
	    gnet_stats_copy_queue(d, NULL, &qs, qlen) < 0)
		return -1;
	return gnet_stats_copy_app(d, (void *)xstats, xstats_len);
}

const void *knet_nla_data(const struct nlattr *nla)
{
	return nla_data(nla);
}

int knet_nla_len(const struct nlattr *nla)
{
	return nla_len(nla);
}

struct nlattr *knet_nla_nest_start(struct sk_buff *skb, int type)
{
	return nla_nest_start_noflag(skb, type);
}

int knet_nla_nest_end(struct sk_buff *skb, struct nlattr *nest)
{
	return nla_nest_end(skb, nest);
}

void knet_nla_nest_cancel(struct sk_buff *skb, struct nlattr *nest)
{
	nla_nest_cancel(skb, nest);
}

void knet_extack_set(struct netlink_ext_ack *extack, const char *msg)
{
	if (!extack)
		return;
	strscpy(extack->_msg_buf, msg, NETLINK_MAX_FMTMSG_LEN);
	do_trace_netlink_extack(extack->_msg_buf);
	extack->_msg = extack->_msg_buf;
}

bool knet_walker_visit(struct Qdisc *sch, unsigned long cl, struct qdisc_walker *w)
{
	return tc_qdisc_stats_dump(sch, cl, w);
}
