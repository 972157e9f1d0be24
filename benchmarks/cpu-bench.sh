#!/usr/bin/env bash
# Forward tokens/s and peak RSS of neoscope beside ../shared/bench/torch_bench.py
# (PyTorch on OpenBLAS), same checkpoint, same thread count, one shape after
# the other in one run. Usage: benchmarks/cpu-bench.sh [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
model=benchmarks/model
anchor=../shared/bench/torch_bench.py
[ -f $model/model.safetensors ] || /usr/bin/python3 ../shared/bench/make_bench_model.py $model
rss() { grep 'Maximum resident' "$1" | awk '{printf "%.0f", $6/1024}'; }
printf "%-8s %12s %12s %7s %10s %10s\n" shape "neoscope" "pytorch" ratio "rss_ns_MB" "rss_pt_MB"
for shape in 1x128 8x128 32x64 8x20; do
  b=${shape%x*}; t=${shape#*x}
  /usr/bin/time -v -o /tmp/ns.time env NEOSCOPE_QUIET=1 bin/neoscope bench --backend cpu --model $model \
    --batch "$b" --seq "$t" --threads "$threads" --runs 5 --json > /tmp/ns.json
  ns=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open("/tmp/ns.json"))["tokens_per_s"])')
  if [ -f $anchor ]; then
    /usr/bin/time -v -o /tmp/pt.time /usr/bin/python3 $anchor $model --threads "$threads" --batch "$b" --seq "$t" --runs 5 > /tmp/pt.json
    pt=$(tail -1 /tmp/pt.json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens_per_s"])')
    blas=$(head -1 /tmp/pt.json | /usr/bin/python3 -c 'import json,sys; print(",".join(json.load(sys.stdin)["blas"]))')
    ptrss=$(rss /tmp/pt.time)
  else
    pt=nan; ptrss=nan; blas="(no anchor)"
  fi
  ratio=$(/usr/bin/python3 -c "print('%.2f' % ($ns/$pt))" 2>/dev/null || echo nan)
  printf "%-8s %12s %12s %7s %10s %10s\n" "$shape" "$ns" "$pt" "$ratio" "$(rss /tmp/ns.time)" "$ptrss"
done
echo "checkpoint: $(du -m $model/model.safetensors | cut -f1) MB; pytorch BLAS: ${blas:-?}; threads: $threads"
