#!/usr/bin/env bash
# The real sizes side by side: for each shape, build a random-weight checkpoint with
# ../shared/bench/make_bench_model.py (the hub model's exact config and tensor names), then print
# neoscope's load time, peak RSS, forward tokens/s and useful GFLOP/s (`neoscope bench --json`,
# 2 x parameters per token plus the attention products) beside ../shared/bench/torch_bench.py at
# the same threads, and neoscope's GFLOP/s as a fraction of the sgemm peak measured first on this
# machine (the best of cpu's BenchmarkMatMul shapes).
#
# Usage: benchmarks/sizes.sh [THREADS]
#   env: SHAPES="gpt2-medium gpt2-large gpt2-xl gpt-neo-1.3B gpt-neo-2.7B"  DTYPE=f32|f16|bf16
#        SHARDS=1  BATCH=1  SEQ=128  RUNS=3  MODELS=benchmarks/models  KEEP=0 (1: keep checkpoints)
# Checkpoints are large (gpt-neo-2.7B: 10.6 GB in F32): they are written under $MODELS, never into
# the repository, and deleted after their row unless KEEP=1. Timings on a shared machine drift:
# compare the ratio column, measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
shapes=${SHAPES:-gpt2-medium gpt2-large gpt2-xl gpt-neo-1.3B gpt-neo-2.7B}
dtype=${DTYPE:-f32}; shards=${SHARDS:-1}; batch=${BATCH:-1}; seq=${SEQ:-128}; runs=${RUNS:-3}
models=${MODELS:-benchmarks/models}
py=/usr/bin/python3
anchor=../shared/bench/torch_bench.py
mkdir -p "$models"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -x bin/neoscope ] || make build >/dev/null
rss() { grep 'Maximum resident' "$1" | awk '{printf "%.0f", $6/1024}'; }
field() { $py -c '
import json, sys
s = sys.stdin.read().strip()
try: d = json.loads(s)
except ValueError: d = json.loads(s.splitlines()[-1])
print(d[sys.argv[1]])' "$1"; }
tags=""; printf 'int main(void){return 0;}' | cc -x c - -lopenblas -o /dev/null 2>/dev/null && tags="-tags openblas"
peak=$(GOMAXPROCS=$threads go test $tags -run '^$' -bench 'BenchmarkMatMul/1024x' -benchtime 20x ./cpu/ 2>/dev/null |
  awk '/GFLOP\/s/ {for (i = 1; i < NF; i++) if ($(i+1) == "GFLOP/s" && $i > m) m = $i} END {print m + 0}')
echo "sgemm peak (cpu BenchmarkMatMul, $threads threads): $peak GFLOP/s; forward ${batch}x${seq}, $dtype, $shards shard(s), median of $runs"
printf "%-13s %8s %7s %9s %9s %8s %6s %9s %9s %7s\n" shape file_MB load_s rss_MB tok/s GFLOP/s %peak pt_tok/s pt_rss_MB ratio
for shape in $shapes; do
  dir=$models/$shape-$dtype-s$shards
  if [ ! -f "$dir/config.json" ]; then
    $py ../shared/bench/make_bench_model.py "$dir" --shape "$shape" --dtype "$dtype" --shards "$shards" >&2
  fi
  mb=$(du -m -L -c "$dir"/*.safetensors | tail -1 | cut -f1)
  /usr/bin/time -v -o $tmp/ns.time env NEOSCOPE_QUIET=1 bin/neoscope bench --backend cpu --model "$dir" \
    --batch "$batch" --seq "$seq" --threads "$threads" --runs "$runs" --json > $tmp/ns.json
  tps=$(field tokens_per_s < $tmp/ns.json); gf=$(field gflops < $tmp/ns.json); load=$(field load_s < $tmp/ns.json)
  pct=$($py -c "print('%.0f' % (100 * $gf / $peak) if $peak else 'nan')")
  pt=nan; ratio=nan; ptrss=nan
  if [ -f $anchor ]; then
    if /usr/bin/time -v -o $tmp/pt.time $py $anchor "$dir" --threads "$threads" --batch "$batch" --seq "$seq" --runs "$runs" > $tmp/pt.json 2>$tmp/pt.err; then
      pt=$(field tokens_per_s < $tmp/pt.json); ratio=$($py -c "print('%.2f' % ($tps / $pt))"); ptrss=$(rss $tmp/pt.time)
    else
      echo "torch_bench.py failed on $shape: $(tail -1 $tmp/pt.err)" >&2
    fi
  fi
  printf "%-13s %8s %7s %9s %9s %8s %6s %9s %9s %7s\n" "$shape" "$mb" "$load" "$(rss $tmp/ns.time)" "$tps" "$gf" "$pct" "$pt" "$ptrss" "$ratio"
  [ "${KEEP:-0}" = 1 ] || rm -rf "$dir"
done
