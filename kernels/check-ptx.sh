#!/usr/bin/env bash
# check-ptx.sh: regenerate the PTX and fail if it differs from the committed
# cuda/kernels.ptx (a kernel was edited without running build-ptx.sh).
set -euo pipefail
cd "$(dirname "$0")"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
./build-ptx.sh "$TMP/kernels.ptx" >/dev/null
if ! cmp -s "$TMP/kernels.ptx" ../cuda/kernels.ptx; then
	echo "check-ptx: cuda/kernels.ptx is stale: run kernels/build-ptx.sh (make ptx) and commit it" >&2
	diff -u ../cuda/kernels.ptx "$TMP/kernels.ptx" | head -40 >&2 || true
	exit 1
fi
echo "check-ptx: cuda/kernels.ptx is up to date"
