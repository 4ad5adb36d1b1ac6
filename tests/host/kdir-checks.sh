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
