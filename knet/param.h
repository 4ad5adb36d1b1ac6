/* SPDX-License-Identifier: GPL-2.0 */
/*
 * String module parameters for Rust modules. The kernel's module! macro only declares integer
 * and bool parameters, so string ones are declared here in C (read-only in sysfs, listed by
 * modinfo) and read from Rust through knet::param::str_param!.
 */
#ifndef KNET_PARAM_H
#define KNET_PARAM_H

#include <linux/moduleparam.h>

#define KNET_STR_PARAM(name, def, desc)                                 \
	static char *knet_param_var_##name = def;                       \
	module_param_named(name, knet_param_var_##name, charp, 0444);   \
	MODULE_PARM_DESC(name, desc);                                   \
	const char *knet_param_##name(void);                            \
	const char *knet_param_##name(void)                             \
	{                                                               \
		return knet_param_var_##name;                           \
	}

/*
 * A bool parameter declared as module! declares it (perm 0: not in sysfs), for a kernel crate
 * whose module! has no bool parameters (knet_compat_params, see knet.mk); read from Rust
 * through knet::param::bool_param!.
 */
#define KNET_BOOL_PARAM(name, def, desc)                                \
	static bool knet_param_var_##name = def;                        \
	module_param_named(name, knet_param_var_##name, bool, 0);       \
	MODULE_PARM_DESC(name, desc);                                   \
	bool knet_param_##name(void);                                   \
	bool knet_param_##name(void)                                    \
	{                                                               \
		return knet_param_var_##name;                           \
	}

#endif
