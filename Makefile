# Out-of-tree Rust traffic-control modules: imq, toa, sch_htb_rs.
#
#   make                 build the modules against KDIR (default: the running kernel)
#   make kdir            reconstruct a Rust build tree for a Debian kernel (KVER=, default the
#                        running Debian 7.x kernel, else the newest of trixie-backports)
#   make ref             build the modules inside the reference build root, against its kernel
#   make demo            set everything up, boot the reference kernel in QEMU, show the modules
#                        at work with traffic (about a minute once the cache is warm)
#   make test            host tests + VM tests; FILTER=word runs only matching tests;
#                        KERNEL=debug boots the reference version built with lockdep, KMEMLEAK,
#                        UBSAN, DEBUG_OBJECTS (tools/refenv/debug-kernel) instead; KERNEL=kasan
#                        the same version built by clang with KASAN and UBSAN; KERNEL=upstream
#                        with upstream's defconfig plus what the tests need (a self-built kernel)
#   make test KVER=r     the same for another Debian kernel (7.2.13+deb14-amd64: the sid root)
#   make test-matrix     smoke tests on every kernel of tests/matrix/kernels, then a table
#   make bench           benchmarks in the VM, each against its in-kernel baseline
#   make fuzz            differential fuzzing in the VM (FUZZ_SECS=, default 600; FUZZ_SEED=,
#                        default random, printed): htb_rs against htb
#   make fmt / lint      rustfmt check / clippy build, with the kernel's settings
#   make install         modules, iptables extension, tc plugin, autoload configs (DESTDIR=,
#                        AUTOLOAD="toa imq", IMQ_OPTS=..., see tools/install/install)
#   make uninstall       remove what install put there
#   make dkms-build      what dkms.conf runs: build for KVER=, reconstructing the Rust build
#                        tree when the kernel's headers lack it
#
# CACHE (default ~/.cache/rust-tc) holds the build root, build trees and VM images.

KDIR ?= /lib/modules/$(shell uname -r)/build
CACHE ?= $(HOME)/.cache/rust-tc
REFENV := $(CURDIR)/tools/refenv/refenv
export CACHE DIST KVER FILTER REFRESH MIRROR KERNEL

# Build with the C compiler that built the kernel (Debian names it gcc-NN).
# A kernel built by clang (CONFIG_CC_IS_CLANG) wants its modules built with LLVM=1, as kbuild
# documents (the KASAN flavour of tools/refenv/debug-kernel is one).
KCC = $(shell sed -n 's/^CONFIG_CC_VERSION_TEXT="\(gcc-[0-9]*\) .*/\1/p' $(KDIR)/.config 2>/dev/null)
KLLVM = $(shell grep -qs '^CONFIG_CC_IS_CLANG=y' $(KDIR)/.config && echo LLVM=1)
KMAKE = $(MAKE) -C $(KDIR) M=$(CURDIR) $(KLLVM) $(if $(KCC),$(if $(shell command -v $(KCC)),CC=$(KCC) HOSTCC=$(KCC)))

.PHONY: all modules check-kdir clean kdir setup ref ref-selftest demo test host-test vm-test \
	fmt lint bench fuzz install uninstall dkms-build test-matrix profile

all: modules

modules: check-kdir
	$(KMAKE) modules

check-kdir:
	@tools/refenv/check-kdir "$(KDIR)"

clean:
	-$(KMAKE) clean 2>/dev/null
	-$(MAKE) -C $(KDIR) M=$(CURDIR)/tests/harness/warn_on clean 2>/dev/null
	rm -rf target

kdir:
	@$(REFENV) kdir

setup:
	@$(REFENV) setup

# Inside the build root the toolchain is exactly the kernel's; the project is mounted at /src.
ref: setup
	@$(REFENV) run make -C /src KDIR=$$($(REFENV) path kdir-in-root) modules

ref-selftest: setup
	@$(REFENV) run make -C /src/tests/harness/warn_on \
		KDIR=$$($(REFENV) path kdir-in-root)

fmt:
	@$(REFENV) run sh -c 'cd /src && rustfmt --check --edition 2021 \
		--config-path $$(dirname $$(ls -d /build/*/obj/.rustfmt.toml | head -n1)) \
		$$(git ls-files "*.rs" 2>/dev/null || \
			find . -name "*.rs" -not -path "./target/*" -not -name "*_generated.rs")'

lint: setup
	@$(REFENV) run make -C /src KDIR=$$($(REFENV) path kdir-in-root) \
		CLIPPY=1 modules

host-test:
	@tests/run host

vm-test: ref ref-selftest
	@tests/run vm

test:
	@tests/run all

test-matrix:
	@tests/matrix/run

demo: ref
	@cargo build --release --quiet -p toa-lb -p tc-htb-rs -p xt-imq
	@tests/vm/run-vm demo

bench: ref
	@cargo build --release --quiet -p toa-lb -p conn-rate -p udp-rate -p tc-htb-rs -p xt-imq
	@f=$$(mktemp); VM_ICOUNT=$${VM_ICOUNT-shift=3,sleep=off} RUN_DIR_FILE=$$f \
		tests/vm/run-vm bench >/dev/null; \
	d=$$(cat $$f); rm -f $$f; grep -h '^bench ' $$d/logs/*.log || \
		{ echo "no benchmark figures; see $$d/logs" >&2; exit 1; }

# Per-function guest instruction counts of workloads in tests/profile (tools/guest-profile).
CASES ?= pps-imq-iifname pps-ifb-imqloaded
profile: ref
	@cargo build --release --quiet -p udp-rate -p xt-imq -p toa-lb
	@tools/guest-profile/run $(CASES)

# The fuzz cases are tests/cases/*-fuzz.sh; their step lists and the seed are in the run's logs.
FUZZ_SECS ?= 600
fuzz: ref
	@cargo build --release --quiet -p tc-htb-rs -p xt-imq -p toa-lb
	@seed=$${FUZZ_SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}; echo "fuzz: seed $$seed, $(FUZZ_SECS) s a case"; \
	FILTER=$${FILTER:--fuzz} FUZZ_SEED=$$seed FUZZ_SECS=$(FUZZ_SECS) VM_HUNG_SECS=30 \
		TEST_TIMEOUT=$$(($(FUZZ_SECS) + 600)) VM_TIMEOUT=$$(($(FUZZ_SECS) * 2 + 1200)) \
		tests/vm/run-vm test

install:
	@cargo build --release --quiet -p xt-imq -p tc-htb-rs -p gw-top 2>/dev/null || true
	@tools/install/install install

uninstall:
	@tools/install/install uninstall

# DKMS: the kernel's own build tree if it has the Rust metadata (see check-kdir), else the
# reference build root's tree for KVER (reconstructed by tools/refenv, minutes the first time).
dkms-build:
	@[ -n "$(KVER)" ] || { echo "dkms-build: set KVER (dkms passes \$${kernelver})" >&2; exit 1; }
	@if tools/refenv/check-kdir /lib/modules/$(KVER)/build >/dev/null 2>&1; then \
		$(MAKE) modules KDIR=/lib/modules/$(KVER)/build; \
	elif tools/refenv/check-kdir /build/$(KVER)/obj >/dev/null 2>&1; then \
		$(MAKE) modules KDIR=/build/$(KVER)/obj; \
	else \
		echo "dkms-build: /lib/modules/$(KVER)/build has no Rust build metadata;" \
			"reconstructing it with tools/refenv (KVER=$(KVER))"; \
		$(REFENV) setup && $(REFENV) run make -C /src KDIR=$$($(REFENV) path kdir-in-root) modules || \
		{ echo "dkms-build: cannot build for $(KVER): the kernel's headers lack the Rust" \
			"metadata and tools/refenv could not reconstruct it (see above)" >&2; exit 1; }; \
	fi
