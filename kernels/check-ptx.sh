#!/usr/bin/env bash
# check-ptx.sh (make ptx-check; CI runs it where nvcc exists): rebuild the
# fatbin with build-ptx.sh (which also runs ptxas -Werror -warn-spills
# -warn-lmem-usage for sm_90 and sm_80) and fail if the committed
# cuda/kernels.fatbin is not current.
#
# "Current" means bit-identical: nvcc 11.8's fatbin output embeds no path,
# file name or time (checked by building in two directories under two output
# names). A different nvcc release may lay the container out differently, so
# when the bytes differ the extracted code is compared instead: the SASS
# disassembly of each ELF (cuobjdump -sass) and the PTX text (cuobjdump -ptx).
# Equal code passes with a note; different code fails.
set -euo pipefail
cd "$(dirname "$0")"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
COMMITTED=../cuda/kernels.fatbin
./build-ptx.sh "$TMP/kernels.fatbin" >/dev/null
[ -f "$COMMITTED" ] || { echo "check-ptx: $COMMITTED missing: run make ptx and commit it" >&2; exit 1; }
elfs="$(cuobjdump --list-elf "$COMMITTED")" ptxs="$(cuobjdump --list-ptx "$COMMITTED")"
for sm in sm_80 sm_90; do
	[[ "$elfs" == *"$sm"* ]] || { echo "check-ptx: $COMMITTED has no $sm SASS" >&2; exit 1; }
done
[[ "$ptxs" == *sm_80* ]] || { echo "check-ptx: $COMMITTED has no compute_80 PTX" >&2; exit 1; }
if ! cmp -s "$TMP/kernels.names" ../cuda/kernels.names; then
	echo "check-ptx: cuda/kernels.names is stale: run kernels/build-ptx.sh (make ptx) and commit it" >&2
	diff -u ../cuda/kernels.names "$TMP/kernels.names" >&2 || true
	exit 1
fi
if cmp -s "$TMP/kernels.fatbin" "$COMMITTED"; then
	echo "check-ptx: cuda/kernels.fatbin is up to date (bit-identical; sm_80 and sm_90 SASS, compute_80 PTX; ptxas -Werror clean)"
	exit 0
fi
dump() { { cuobjdump -sass "$1"; cuobjdump -ptx "$1"; } | grep -v -e '^[[:space:]]*$' -e '^compressed$' | sed 's/[[:space:]]*$//'; }
dump "$COMMITTED" | sed 's/Fatbin [a-z]* code:.*//' >"$TMP/old.txt"
dump "$TMP/kernels.fatbin" | sed 's/Fatbin [a-z]* code:.*//' >"$TMP/new.txt"
if cmp -s "$TMP/old.txt" "$TMP/new.txt"; then
	echo "check-ptx: cuda/kernels.fatbin is current (bytes differ, extracted SASS and PTX identical: another nvcc build?)"
	exit 0
fi
echo "check-ptx: cuda/kernels.fatbin is stale: run kernels/build-ptx.sh (make ptx) and commit it" >&2
diff -u "$TMP/old.txt" "$TMP/new.txt" | head -40 >&2 || true
exit 1
