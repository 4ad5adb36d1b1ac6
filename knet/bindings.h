/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Input of the module-local bindgen run (see knet.mk). Only items named by the allowlists in
 * knet.mk are generated; types they mention resolve to kernel::bindings.
 */
#include <linux/if_arp.h>
#include <linux/in.h>
#include <linux/netdevice.h>
#include <linux/skbuff.h>
#include <linux/netfilter.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6.h>
#include <linux/netfilter/x_tables.h>
#include <net/net_namespace.h>
#include <net/netlink.h>
#include <net/rtnetlink.h>
#include <net/sch_generic.h>
#include <net/pkt_sched.h>
#include <linux/ptrace.h>
#include <linux/proc_fs.h>
#include "shim.h"
#include "probe.h"
#include "qdisc.h"
#include "net_helpers.h"
