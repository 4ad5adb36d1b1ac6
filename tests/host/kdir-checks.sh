#!/usr/bin/env bash
# 'make' against a kernel tree that cannot build Rust modules stops with a message that says
# what is missing, not with compiler errors. Prints PASS/FAIL lines.
# Usage: kdir-checks.sh [REAL_KDIR]  (REAL_KDIR: a Rust tree, to check the rustc-mismatch case)
set -u
project=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
check() { # check NAME KDIR EXPECTED-REGEX
	local name=$1 kdir=$2 want=$3 out
	if out=$(make -s -C "$project" KDIR="$kdir" modules 2>&1); then
		echo "FAIL host/$name (make succeeded)"
	elif echo "$out" | grep -qE "$want" && ! echo "$out" | grep -qE 'error\[E[0-9]+\]'; then
		echo "PASS host/$name"
	else
		echo "FAIL host/$name (unexpected output: $(echo "$out" | head -n 5))"
	fi
}
check kdir-missing "$tmp/nonexistent" 'no such directory'
mkdir -p "$tmp/norust"
echo '# CONFIG_RUST is not set' >"$tmp/norust/.config"
check kdir-without-rust "$tmp/norust" 'configured without Rust'
mkdir -p "$tmp/nometa"
echo 'CONFIG_RUST=y' >"$tmp/nometa/.config"
check kdir-without-rust-metadata "$tmp/nometa" 'no Rust metadata .*rust/libkernel.rmeta'
real=${1:-}
if [ -n "$real" ] && [ -d "$real" ]; then
	want=$(sed -n 's/^CONFIG_RUSTC_VERSION_TEXT="\(.*\)"$/\1/p' "$real/.config")
	if [ "$(rustc --version 2>/dev/null)" != "$want" ]; then
		check kdir-rustc-mismatch "$real" 'only loads into the exact same rustc build'
	fi
fi

# The kernel crate's API (check-kdir's last part): trees that pass every check before it, their
# metadata and bindings holding only the names check-kdir and knet.mk look for, with a rustc and
# a bindgen that report the versions their .config names.
mkdir -p "$tmp/bin"
printf '#!/bin/sh\necho "rustc 0.0.0-fake"\n' >"$tmp/bin/rustc"
printf '#!/bin/sh\necho "bindgen 0.0.0-fake"\n' >"$tmp/bin/bindgen"
chmod +x "$tmp/bin/rustc" "$tmp/bin/bindgen"
api_tree() { # api_tree DIR RMETA-NAMES BINDINGS-LINES
	mkdir -p "$1/rust/bindings" "$1/scripts" "$1/include/generated"
	printf 'CONFIG_RUST=y\nCONFIG_RUSTC_VERSION_TEXT="rustc 0.0.0-fake"\nCONFIG_BINDGEN_VERSION_TEXT="bindgen 0.0.0-fake"\n' >"$1/.config"
	touch "$1/rust/libcore.rmeta" "$1/rust/libmacros.so" "$1/scripts/target.json" \
		"$1/include/generated/rustc_cfg"
	printf '%s\n' "$2" >"$1/rust/libkernel.rmeta"
	printf '%s\n' "$3" >"$1/rust/bindings/bindings_generated.rs"
	printf '    pub fn __spin_lock_init(\n    pub fn spin_assert_is_held(lock: *mut spinlock_t);\n' \
		>"$1/rust/bindings/bindings_helpers_generated.rs"
}
check_api() { # check_api NAME KDIR pass|fail EXPECTED-REGEX (empty: no output at all)
	local out rc
	out=$(RUSTC=$tmp/bin/rustc BINDGEN=$tmp/bin/bindgen "$project/tools/refenv/check-kdir" "$2" 2>&1)
	rc=$?
	if { [ "$3" = pass ] && [ $rc -eq 0 ]; } || { [ "$3" = fail ] && [ $rc -ne 0 ]; }; then
		if { [ -z "$4" ] && [ -z "$out" ]; } || { [ -n "$4" ] && echo "$out" | grep -qE "$4"; }; then
			echo "PASS host/$1"
			return
		fi
	fi
	echo "FAIL host/$1 (exit $rc: $(echo "$out" | head -n 4))"
}
meta73='ModuleParamAccess PARAM_OPS_BOOL SpinLockIrq SpinLockBackend ENOPROTOOPT'
meta72='ModuleParamAccess SpinLockBackend'
errnos='pub const ENOBUFS: u32 = 105;
pub const EOPNOTSUPP: u32 = 95;
pub const ENOTCONN: u32 = 107;
pub const ENOPROTOOPT: u32 = 92;
pub const MAX_ERRNO: u32 = 4095;'
net='pub struct pernet_operations {
pub struct netns_nf {
pub struct sockaddr_in {
pub struct in_addr {
    pub fn nla_put(
    pub fn nla_put_64bit('
api_tree "$tmp/api73" "$meta73" "$errnos
$net"
check_api kdir-api-7.3 "$tmp/api73" pass ''
api_tree "$tmp/api72" "$meta72" "$errnos"
check_api kdir-api-7.2-fallbacks "$tmp/api72" pass \
	'knet provides: module!-bool-params SpinLockIrq error-codes net-bindings'
api_tree "$tmp/apinoparams" 'SpinLockBackend' "$errnos"
check_api kdir-api-no-module-params "$tmp/apinoparams" fail "module! macro's 'params'"
api_tree "$tmp/apimixed" "$meta72" "$errnos
pub struct pernet_operations {"
check_api kdir-api-mixed-net-bindings "$tmp/apimixed" fail \
	'netns_nf, sockaddr_in, in_addr, nla_put, nla_put_64bit \(while it has pernet_operations\)'
api_tree "$tmp/apinoerrno" "$meta72" ''
check_api kdir-api-no-errno-values "$tmp/apinoerrno" fail 'kernel::error::code::ENOBUFS, and bindings::ENOBUFS'
