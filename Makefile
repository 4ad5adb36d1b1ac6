# Out-of-tree Rust traffic-control modules: imq, toa, sch_htb_rs.
#
#   make                 build the modules against KDIR (default: the running kernel)
#   make kdir            reconstruct a Rust build tree for a Debian kernel (KVER=, default the
#                        running Debian 7.x kernel, else the newest of trixie-backports)
#   make ref             build the modules inside the reference build root, against its kernel
#   make demo            set everything up, boot the reference kernel in QEMU, show the modules
#   make test            host tests + VM tests; FILTER=word runs only matching tests
#   make bench           benchmarks in the VM, each against its in-kernel baseline
#   make fmt / lint      rustfmt check / clippy build, with the kernel's settings
#
# CACHE (default ~/.cache/rust-tc) holds the build root, build trees and VM images.

KDIR ?= /lib/modules/$(shell uname -r)/build
CACHE ?= $(HOME)/.cache/rust-tc
REFENV := $(CURDIR)/tools/refenv/refenv
export CACHE DIST KVER FILTER REFRESH MIRROR

# Build with the C compiler that built the kernel (Debian names it gcc-NN).
KCC = $(shell sed -n 's/^CONFIG_CC_VERSION_TEXT="\(gcc-[0-9]*\) .*/\1/p' $(KDIR)/.config 2>/dev/null)
KMAKE = $(MAKE) -C $(KDIR) M=$(CURDIR) $(if $(KCC),$(if $(shell command -v $(KCC)),CC=$(KCC) HOSTCC=$(KCC)))

.PHONY: all modules check-kdir clean kdir setup ref ref-selftest demo test host-test vm-test \
	fmt lint bench

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
		$$(git ls-files "*.rs" 2>/dev/null || find . -name "*.rs" -not -path "./target/*")'

lint: setup
	@$(REFENV) run make -C /src KDIR=$$($(REFENV) path kdir-in-root) \
		CLIPPY=1 modules

host-test:
	@tests/run host

vm-test: ref ref-selftest
	@tests/run vm

test:
	@tests/run all

demo: ref
	@tests/vm/run-vm demo

bench: ref
	@cargo build --release --quiet -p toa-lb -p conn-rate -p tc-htb-rs -p xt-imq
	@f=$$(mktemp); RUN_DIR_FILE=$$f tests/vm/run-vm bench >/dev/null; \
	d=$$(cat $$f); rm -f $$f; grep -h '^bench ' $$d/logs/*.log || \
		{ echo "no benchmark figures; see $$d/logs" >&2; exit 1; }
