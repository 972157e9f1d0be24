#!/usr/bin/env bash
# Forward tokens/s and peak RSS of neoscope beside ../shared/bench/torch_bench.py
# (PyTorch on OpenBLAS), same checkpoint, same thread count. Each shape runs
# REPEAT times, the two engines alternating, and the table gives the medians:
# on a shared virtual machine single runs drift by +-15%.
# Usage: benchmarks/cpu-bench.sh [THREADS]   (env: REPEAT=3, SHAPES="1x128 8x128 32x64 8x20")
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
repeat=${REPEAT:-3}
shapes=${SHAPES:-1x128 8x128 32x64 8x20}
model=benchmarks/model
anchor=../shared/bench/torch_bench.py
py=/usr/bin/python3
[ -f $model/model.safetensors ] || $py ../shared/bench/make_bench_model.py $model
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rss() { grep 'Maximum resident' "$1" | awk '{printf "%.0f", $6/1024}'; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# A field of a JSON result: neoscope prints one object, torch_bench.py one per line (the last is the result).
field() { $py -c '
import json, sys
s = sys.stdin.read().strip()
try: d = json.loads(s)
except ValueError: d = json.loads(s.splitlines()[-1])
print(d[sys.argv[1]])' "$1"; }
# rss_ns_MB: neoscope with all logits, as torch_bench.py; rss_loss_MB: neoscope --output loss
# (next-token losses, logits a chunk at a time), what probes and sweeps do.
printf "%-8s %12s %12s %7s %10s %11s %10s\n" shape "neoscope" "pytorch" ratio "rss_ns_MB" "rss_loss_MB" "rss_pt_MB"
for shape in $shapes; do
  b=${shape%x*}; t=${shape#*x}
  ns=(); pt=(); nsrss=(); ptrss=()
  for r in $(seq "$repeat"); do
    /usr/bin/time -v -o $tmp/ns.time env NEOSCOPE_QUIET=1 bin/neoscope bench --backend cpu --model $model \
      --batch "$b" --seq "$t" --threads "$threads" --runs 5 --json > $tmp/ns.json
    ns+=("$(field tokens_per_s < $tmp/ns.json)"); nsrss+=("$(rss $tmp/ns.time)")
    if [ -f $anchor ]; then
      /usr/bin/time -v -o $tmp/pt.time $py $anchor $model --threads "$threads" --batch "$b" --seq "$t" --runs 5 > $tmp/pt.json
      pt+=("$(field tokens_per_s < $tmp/pt.json)"); ptrss+=("$(rss $tmp/pt.time)")
      blas=$(head -1 $tmp/pt.json | $py -c 'import json,sys; print(",".join(json.load(sys.stdin)["blas"]))')
    fi
  done
  /usr/bin/time -v -o $tmp/nl.time env NEOSCOPE_QUIET=1 bin/neoscope bench --backend cpu --model $model \
    --batch "$b" --seq "$t" --threads "$threads" --runs 2 --output loss --json > /dev/null
  n=$(median "${ns[@]}")
  if [ ${#pt[@]} -gt 0 ]; then
    p=$(median "${pt[@]}"); prss=$(median "${ptrss[@]}")
    ratio=$($py -c "print('%.2f' % ($n/$p))")
  else
    p=nan; prss=nan; ratio=nan; blas="(no anchor at $anchor)"
  fi
  printf "%-8s %12s %12s %7s %10s %11s %10s\n" "$shape" "$n" "$p" "$ratio" "$(median "${nsrss[@]}")" "$(rss $tmp/nl.time)" "$prss"
  echo "         runs: neoscope ${ns[*]}; pytorch ${pt[*]:-}" >&2
done
echo "checkpoint: $(du -m $model/model.safetensors | cut -f1) MB; pytorch BLAS: ${blas:-?}; threads: $threads; medians of $repeat"
