#!/usr/bin/env bash
# build-ptx.sh (make ptx): compile every kernel to cuda/kernels.fatbin (or
# the file named by $1), which cuda/ embeds with go:embed and loads with
# cuModuleLoadData. The fatbin holds
#   - sm_80 SASS  (A100; also runs on sm_86/sm_89: same major version),
#   - sm_90 SASS  (H100, H200),
#   - compute_80 PTX, which the driver JIT-compiles for any later GPU.
# Needs nvcc (kernels/install-cuda-toolkit.sh; Debian's 11.8 is what wrote the
# committed file). Before writing, ptxas checks the PTX for sm_90 and sm_80
# with -Werror -warn-spills -warn-lmem-usage: a register spill or any use of
# local memory fails the build.
#
# Beside it, kernels.names lists the entry names (cuda/kernels.names).
#
# Every kernels/*.cu is part of the module: the compiled unit is all.cu (which
# the emulator compiles too) plus any kernels/*.cu that all.cu does not
# #include, so a kernel file added by a branch is in the fatbin after
# `make ptx` even before all.cu names it; a warning names such files, since
# the emulator (kernels/emu/kernels.cc includes all.cu) cannot see them.
#
# Determinism (checked with nvcc 11.8.89): the fatbin depends only on the
# source, not on paths, output names or the time; check-ptx.sh relies on it.
set -euo pipefail
cd "$(dirname "$0")"
OUT="${1:-../cuda/kernels.fatbin}"
NAMES="${OUT%.fatbin}.names" # the entry names, one a line (cuda/ embeds them too)
command -v nvcc >/dev/null || { echo "build-ptx: nvcc not found (run kernels/install-cuda-toolkit.sh)" >&2; exit 1; }

extra=()
for f in *.cu; do
	[ "$f" = all.cu ] && continue
	grep -q "^#include \"$f\"" all.cu || extra+=("$f")
done
if [ ${#extra[@]} -gt 0 ]; then
	echo "build-ptx: warning: kernels/all.cu does not #include ${extra[*]}: compiled into the fatbin anyway; add them to all.cu for the emulator" >&2
fi

NVFLAGS=(-O3 -std=c++17)
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
# The unit nvcc compiles: all.cu and the extra files, by absolute path (quoted
# includes inside them resolve next to each file; no path reaches the output).
KDIR="$(pwd)"
{
	echo "#include \"$KDIR/all.cu\""
	for f in ${extra[@]+"${extra[@]}"}; do echo "#include \"$KDIR/$f\""; done
} >"$TMP/unit.cu"
nvcc -ptx -arch=compute_80 "${NVFLAGS[@]}" "$TMP/unit.cu" -o "$TMP/all.ptx"
for sm in sm_90 sm_80; do
	if ! ptxas -arch=$sm -O3 -Werror -warn-spills -warn-lmem-usage "$TMP/all.ptx" -o "$TMP/$sm.cubin" 2>"$TMP/ptxas.log"; then
		echo "build-ptx: ptxas -arch=$sm -Werror -warn-spills -warn-lmem-usage failed:" >&2
		cat "$TMP/ptxas.log" >&2
		exit 1
	fi
done
# -compress-all: 241 KB instead of 615 KB (nvcc compresses the PTX member by
# default anyway, so the driver's decompression is used either way).
nvcc -fatbin "${NVFLAGS[@]}" -Xfatbin -compress-all \
	-gencode arch=compute_80,code=sm_80 \
	-gencode arch=compute_90,code=sm_90 \
	-gencode arch=compute_80,code=compute_80 \
	"$TMP/unit.cu" -o "$TMP/kernels.fatbin"
sed -n 's/^\.visible \.entry \([A-Za-z0-9_]*\)(.*/\1/p' "$TMP/all.ptx" | LC_ALL=C sort >"$TMP/kernels.names"
mv "$TMP/kernels.fatbin" "$OUT"
mv "$TMP/kernels.names" "$NAMES"
echo "build-ptx: wrote $OUT ($(wc -c <"$OUT") bytes, $(grep -c '^\.visible \.entry' "$TMP/all.ptx") kernels;" \
	"$(cuobjdump --list-elf "$OUT" | grep -o 'sm_[0-9]*' | tr '\n' ' ')SASS, compute_80 PTX)"
