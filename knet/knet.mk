# knet build rules, included by each module's Kbuild:
#   include $(src)/../knet/knet.mk
#   $(obj)/<crate root>.o: $(obj)/knet_generated.rs
#
# Runs bindgen over knet/bindings.h with the kernel's own C flags (minus the GCC-only ones
# libclang rejects), narrow allowlists and --no-recursive-allowlist: everything the allowlisted
# items mention resolves to kernel::bindings, so there is one sk_buff type, not two.

knet_dir := $(src)/../knet

# GCC-only flags of Debian's x86 kernel that libclang does not accept.
knet_skip_c_flags := -mno-fp-ret-in-387 -mpreferred-stack-boundary=% -mskip-rax-setup \
	-mindirect-branch=thunk-extern -mindirect-branch-register -mfunction-return=thunk-extern \
	-mrecord-mcount -mindirect-branch-cs-prefix -mharden-sls=% -fconserve-stack \
	-falign-jumps=% -falign-loops=% -femit-struct-debug-baseonly -fno-ipa-cp-clone \
	-fno-ipa-sra -fno-partial-inlining -fno-reorder-blocks -fno-allow-store-data-races \
	-fzero-call-used-regs=% -fno-stack-clash-protection -fno-inline-functions-called-once \
	-fsanitize=bounds-strict -fstrict-flex-arrays=% -fmin-function-alignment=% \
	-fzero-init-padding-bits=% -fdiagnostics-show-context% --param=% --param \
	-fno-isolate-erroneous-paths-dereference -fplugin=% -fplugin-arg-% \
	-fno-var-tracking-assignments -fcf-protection=% -mstack-protector-guard% \
	-fpatchable-function-entry=% -fmerge-constants -Wp,-MMD,%

# Scheduler types Rust only points to (or embeds whole, never looking inside).
knet_opaque_net := gnet_dump|qdisc_walker|tcf_block|tcf_proto|net_rate_estimator|qdisc_watchdog

# The qdisc and the counters the packet path updates, laid out by bindgen (kernel::bindings
# lacks them); the qdisc's members Rust never looks into are opaque, size and alignment kept.
knet_qdisc_types := Qdisc|qdisc_skb_head|gnet_stats_basic_sync|gnet_stats_queue|qdisc_skb_cb
knet_qdisc_members := qdisc_size_table

# Netfilter, xtables and netdevice types whose tables Rust builds (imq's divert). kernel::bindings
# lacks them; what their function pointers mention only by pointer is made opaque.
knet_net_types := nf_hook_entries|nf_hook_entry|net_device|pcpu_sw_netstats|net_device_ops|nf_hook_ops|nf_hook_state|xt_target|xt_action_param|xt_tgchk_param|rtnl_link_ops
knet_net_alias := rx_handler_func_t|rx_handler_result|rx_handler_result_t|netdev_tx|netdev_tx_t|nf_hookfn|nf_hook_ops_type|tc_setup_type
# net_device's own members that Rust never looks into: opaque, with their size and alignment
# kept, so that the fields Rust does read sit where the C compiler put them.
knet_netdev_members := bpf_mprog_entry|bpf_xdp_entity|cpu_rmap|dcbnl_rtnl_ops|dev_ifalias|devlink_port|dim_irq_moder|dm_hw_stat_delta|dpll_pin|garp_port|header_ops|in_device|inet6_dev|iw_handler_def|l3mdev_ops|mpls_dev|mrp_port|napi_config|ndisc_ops|net_device_core_stats|net_shaper_hierarchy|netdev_config|netdev_ml_priv_type|netdev_name_node|netdev_queue_mgmt_ops|netdev_rx_queue|netdev_stat_ops|netdev_stat_type|netdev_tc_txq|netpoll_info|netprio_map|pcpu_dstats|pcpu_lstats|phy_link_topology|rtnl_hw_stats64|tipc_bearer|tlsdev_ops|udp_tunnel_nic|udp_tunnel_nic_info|vlan_info|wireless_dev|wpan_dev|xdp_dev_bulk_queue|xdp_features_t|xdp_metadata_ops|xfrmdev_ops|xps_dev_maps|xsk_tx_metadata_ops
knet_net_ptr_only := $(knet_netdev_members)|netdev_queue|ifla_vf_guid|ifla_vf_info|ifla_vf_stats|ip_tunnel_parm_kern|ndmsg|neigh_parms|net_device_path|net_device_path_ctx|net_device_stats|net_shaper_ops|netdev_bpf|netdev_fcoe_hbainfo|netdev_hw_addr_list|netdev_phys_item_id|rtnl_link_stats64|rtnl_newlink_params|xdp_buff|xt_match|xt_tgdtor_param|xsk_buff_pool
# Exported functions the divert calls that kernel::bindings does not declare.
# Kernel constants the divert uses (macros and enums).
knet_net_vars := ARPHRD_VOID|IFLA_NUM_TX_QUEUES|GSO_MAX_SIZE|NF_ACCEPT|NF_STOLEN|NET_NAME_ENUM|XT_CONTINUE|NFPROTO_IPV4|NFPROTO_IPV6
knet_net_enums := netdev_priv_flags|netdev_state_t|nf_inet_hooks|nf_ip_hook_priorities|nf_ip6_hook_priorities
# Exported qdisc functions the qdisc parts call directly.
knet_qdisc_functions := tcf_block_get|tcf_block_put|gen_kill_estimator|qdisc_reset|qdisc_put|qdisc_hash_add|register_qdisc|unregister_qdisc|qdisc_watchdog_init|qdisc_watchdog_cancel|qdisc_watchdog_schedule_range_ns
knet_net_functions := nf_register_net_hooks|nf_unregister_net_hooks|nf_hook_slow|xt_register_targets|xt_unregister_targets|rtnl_link_register|rtnl_link_unregister|alloc_netdev_mqs|register_netdevice|free_netdev|dev_get_by_index_rcu|sock_gen_put|netif_set_tso_max_size|__dev_queue_xmit|skb_set_owner_w|sock_wfree|rtnl_lock|rtnl_unlock|dev_get_by_name_rcu|unregister_netdevice_queue

knet_bindgen_flags := --rust-target 1.85 --use-core --with-derive-default \
	--ctypes-prefix kernel::ffi --no-layout-tests --no-debug '.*' --no-doc-comments \
	--enable-function-attribute-detection --no-recursive-allowlist \
	--blocklist-type '__kernel_s?size_t' --blocklist-type __kernel_ptrdiff_t \
	--allowlist-function 'knet_.*' --allowlist-var 'KNET_.*|knet_l3_features|knet_l3_gso_features' \
	--allowlist-type 'fprobe_hlist' --opaque-type 'ftrace_regs|fprobe_hlist' \
	--allowlist-type 'fprobe|fprobe_entry_cb|fprobe_exit_cb|ftrace_regs' \
	--allowlist-function 'register_fprobe_syms|unregister_fprobe|proc_create_single_data|remove_proc_entry' \
	--allowlist-type 'ftrace_ops|ftrace_func_t|ftrace_ops_func_t|ftrace_ops_cmd|ftrace_ops_hash' --opaque-type 'ftrace_ops_hash' \
	--allowlist-function 'register_ftrace_function|unregister_ftrace_function|ftrace_set_filter|ftrace_free_filter' \
	--allowlist-type 'nf_sockopt_ops' --allowlist-function 'nf_register_sockopt|nf_unregister_sockopt' \
	--allowlist-type 'Qdisc_ops|Qdisc_class_ops|knet_filters|knet_class_stats|tcmsg' \
	--allowlist-type '$(knet_qdisc_types)' --allowlist-type '$(knet_qdisc_members)' --opaque-type '$(knet_qdisc_members)' \
	--allowlist-type '$(knet_net_types)|$(knet_net_alias)' \
	--allowlist-type '$(knet_net_ptr_only)' --opaque-type '$(knet_net_ptr_only)' \
	--allowlist-function '$(knet_net_functions)|$(knet_qdisc_functions)' \
	--allowlist-var '$(knet_net_vars)' --allowlist-type '$(knet_net_enums)' \
	--allowlist-type '$(knet_opaque_net)' --opaque-type '$(knet_opaque_net)' \
	--blocklist-type '($(knet_opaque_net))__bindgen_.*'


# What the kernel crate offers, probed at build time in the tree's own Rust metadata and
# bindings (tools/refenv/check-kdir reads the same). 7.3's has all of it; for an older kernel
# crate (7.2's) knet provides each missing part itself, chosen by a cfg (and a C define):
#   knet_compat_lock    no kernel::sync::SpinLockIrq: knet/lock.rs, a spin_lock_irqsave backend
#   knet_compat_errno   no ENOBUFS, EOPNOTSUPP, ENOTCONN, ENOPROTOOPT: knet/errno.rs
#   knet_compat_net     kernel::bindings without struct net's layout, pernet_operations,
#                       sockaddr_in & co, nla_put: knet's own bindgen generates them (below),
#                       struct net's members are reached at the C compiler's offsets
#   knet_compat_params  module! params without bool, value() by reference: knet/param.rs
knet_kmeta := $(objtree)/rust/libkernel.rmeta
knet_kbind := $(objtree)/rust/bindings/bindings_generated.rs
knet_kernel_has = $(shell grep -aqs -- '$(1)' '$(2)' && echo y)
knet_compat :=
ifneq ($(call knet_kernel_has,SpinLockIrq,$(knet_kmeta)),y)
knet_compat += knet_compat_lock
endif
ifneq ($(call knet_kernel_has,ENOPROTOOPT,$(knet_kmeta)),y)
knet_compat += knet_compat_errno
endif
ifneq ($(call knet_kernel_has,PARAM_OPS_BOOL,$(knet_kmeta)),y)
knet_compat += knet_compat_params
# A module's bool parameters are then declared in its C file (KNET_BOOL_PARAM).
knet_c_bool_params := y
endif
ifneq ($(call knet_kernel_has,pub struct pernet_operations,$(knet_kbind)),y)
knet_compat += knet_compat_net
# The items kernel::bindings lacks there; what they only point to is opaque.
knet_bindgen_flags += --allowlist-type 'netns_nf|pernet_operations|in_addr|sockaddr_in' \
	--allowlist-type 'possible_net_t|netdevice_tracker|ref_tracker_dir|neighbour' \
	--allowlist-type 'nf_logger' --opaque-type 'ref_tracker_dir|neighbour|nf_logger' \
	--allowlist-function 'register_pernet_subsys|unregister_pernet_subsys|nla_put|nla_put_64bit'
endif
rustflags-y += $(addprefix --cfg ,$(knet_compat))
ccflags-y += $(patsubst %,-D%,$(shell echo $(knet_compat) | tr a-z A-Z))

quiet_cmd_knet_bindgen = BINDGEN $@
      cmd_knet_bindgen = $(BINDGEN) $< $(knet_bindgen_flags) -o $@ -- \
	$(filter-out $(knet_skip_c_flags),$(c_flags)) -Wp,-MMD,$(depfile) \
	-w --target=x86_64-linux-gnu -fno-builtin -D__BINDGEN__ -DMODULE \
	-DKBUILD_MODNAME='"knet"'

$(obj)/knet_generated.rs: $(knet_dir)/bindings.h $(knet_dir)/shim.h $(knet_dir)/probe.h $(knet_dir)/qdisc.h $(knet_dir)/net_helpers.h FORCE
	$(call if_changed_dep,knet_bindgen)

targets += knet_generated.rs
clean-files += knet_generated.rs

# Where knet/sys.rs finds the generated file (each module has its own copy).
export KNET_OUT := $(abspath $(obj))
