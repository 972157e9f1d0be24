#!/usr/bin/env bash
# build-ptx.sh: compile every kernel (kernels/all.cu) to PTX for compute_80
# into cuda/kernels.ptx (or the file named by $1), which cuda/ embeds with
# go:embed and the driver JIT-compiles for the GPU it finds (sm_80 and later,
# H100/H200 included). Needs nvcc (kernels/install-cuda-toolkit.sh).
set -euo pipefail
cd "$(dirname "$0")"
OUT="${1:-../cuda/kernels.ptx}"
command -v nvcc >/dev/null || { echo "build-ptx: nvcc not found (run kernels/install-cuda-toolkit.sh)" >&2; exit 1; }
# -ccbin: Debian's nvcc picks g++-11 itself; keep whatever it picks.
nvcc -ptx -arch=compute_80 -O3 -std=c++17 all.cu -o "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "build-ptx: wrote $OUT ($(wc -c <"$OUT") bytes, $(grep -c '^\.visible \.entry' "$OUT") kernels)"
