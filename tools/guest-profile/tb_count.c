// SPDX-License-Identifier: GPL-2.0
/*
 * tb_count: a QEMU TCG plugin that counts how often each translation block of the guest
 * kernel runs, so that tools/guest-profile/report can attribute guest instructions to kernel
 * functions. A host tool: it runs inside QEMU, never in the guest.
 *
 * One counter per block (address, instruction count), added to inline by TCG itself (no
 * callback per block), so the guest runs at about its usual speed. At exit the blocks that ran
 * are written as "address instructions executions" lines to the file named by `out=`.
 *
 * The declarations below are the few entry points of QEMU's plugin API (version 1, as in
 * QEMU 7.2) this plugin uses, written out so that no QEMU development package is needed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_info_t;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*udata_cb_t)(qemu_plugin_id_t id, void *userdata);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, tb_trans_cb_t cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
					      void *ptr, uint64_t imm);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, udata_cb_t cb, void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

/* Kernel addresses only: user space is not what we profile. */
#define KERNEL_START 0xffff800000000000ULL
/* Open addressing; a kernel run translates some 10^5 distinct blocks. */
#define NBLOCKS (1u << 21)

struct block {
	uint64_t pc;
	uint64_t insns;
	uint64_t execs;
};

static struct block *blocks;
static unsigned int used;
static const char *out_path = "tb_count.txt";

static struct block *block_of(uint64_t pc, uint64_t insns)
{
	uint64_t h = (pc * 0x9E3779B97F4A7C15ULL + insns) >> 43;

	for (unsigned int probes = 0; probes < NBLOCKS; probes++, h++) {
		struct block *b = &blocks[h & (NBLOCKS - 1)];

		if (b->pc == pc && b->insns == insns)
			return b;
		if (!b->pc) {
			/* Keep a quarter free so that probes stay short. */
			if (used >= NBLOCKS / 4 * 3)
				return NULL;
			used++;
			b->pc = pc;
			b->insns = insns;
			return b;
		}
	}
	return NULL;
}

/* TCG runs one vCPU at a time with thread=single, which the runner asks for: no lost adds. */
static void translated(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	uint64_t pc = qemu_plugin_tb_vaddr(tb);
	struct block *b;

	if (pc < KERNEL_START)
		return;
	b = block_of(pc, qemu_plugin_tb_n_insns(tb));
	if (b)
		qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &b->execs, 1);
}

static void finished(qemu_plugin_id_t id, void *userdata)
{
	FILE *f = fopen(out_path, "w");

	if (!f) {
		perror(out_path);
		return;
	}
	for (unsigned int i = 0; i < NBLOCKS; i++)
		if (blocks[i].execs)
			fprintf(f, "%llx %llu %llu\n", (unsigned long long)blocks[i].pc,
				(unsigned long long)blocks[i].insns,
				(unsigned long long)blocks[i].execs);
	if (used >= NBLOCKS / 4 * 3)
		fprintf(stderr, "tb_count: block table full; some blocks were not counted\n");
	fclose(f);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id,
							    const struct qemu_info_t *info,
							    int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		if (!strncmp(argv[i], "out=", 4))
			out_path = strdup(argv[i] + 4);
	blocks = calloc(NBLOCKS, sizeof(*blocks));
	if (!blocks)
		return -1;
	qemu_plugin_register_vcpu_tb_trans_cb(id, translated);
	qemu_plugin_register_atexit_cb(id, finished, NULL);
	return 0;
}
