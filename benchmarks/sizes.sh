#!/usr/bin/env bash
# The real sizes side by side: for each shape, a random-weight checkpoint written by
# ../shared/bench/make_bench_model.py (the hub model's exact config and tensor names), then
#   bench:  neoscope's load time, peak RSS (beside the float32 weights it must hold), forward
#           tokens/s and useful GFLOP/s (`neoscope bench --json`: 2 x parameters per token plus the
#           attention products), beside ../shared/bench/torch_bench.py at the same threads
#           (tokens/s, peak RSS, ratio), and GFLOP/s as a fraction of the sgemm peak measured first
#           on this machine (the best of cpu's BenchmarkMatMul shapes);
#   probes: every probe (embed, lens, ablate, induction, ioi) and sweeps, each with its wall time,
#           peak RSS and exit status, including a sweep whose --max-memory is below one
#           configuration's activations (must exit 2 naming the figure, not run out of memory).
# Each row ends with the 1-minute load average before and after its timed step: on a 2-core
# machine shared with other jobs, a row measured above ~2.5 says little about speed.
#
# Usage: benchmarks/sizes.sh [THREADS]
#   env: SHAPES="gpt2-medium gpt2-large gpt2-xl gpt-neo-1.3B gpt-neo-2.7B"  PHASES="bench probes"
#        PROBES="embed lens ablate induction ioi sweep" (the sweep item runs the three sweeps)
#        DTYPE=f16 (f32|f16|bf16)  SHARDS= (default per shape: 2 for gpt2-xl and the GPT-Neos, as
#        save_pretrained's 5 GB shards would give in F32; else 1)  BATCH=1 SEQ=128 RUNS=3
#        MODELS=benchmarks/models  KEEP=0 (1: keep the checkpoints this script wrote)
#        LOCK= (a lock file, e.g. /tmp/bench.lock: each timed step - the neoscope and PyTorch pair
#        of a shape, each probe - runs holding it, so no two big models run at once)
# Checkpoints are large (gpt-neo-2.7B: 5.3 GB in F16, 10.6 GB resident as float32): they are
# written as $MODELS/SHAPE-DTYPE (an existing one is reused), never into the repository, and
# deleted after their rows unless KEEP=1 or they existed before. Timings on a shared machine drift:
# compare the ratio column, measured in the same run.
#
# Probe inputs are small, so that every shape's probes fit in minutes on 2 cores: lens and ablate
# read 2 rows of 24 random token ids; ablate knocks out every attention layer and MLP (--each
# attn,mlp: 2L passes; --each head would be L x NH passes); induction runs 4 rows with period 10
# and --no-ablation (its per-head ablation is one pass per head; the sweep below does those
# knock-outs batched); ioi builds 1 prompt with models/neo-tiny's tokenizer (the random-weight
# checkpoints have none; ids below its 4096 are valid in every 50257-token vocabulary) and
# --no-resid: its per-head patching still runs L x NH configurations, about 28 TFLOP on
# gpt-neo-2.7B per prompt. The sweep ablates the last layer's heads and every attention layer on the induction
# task (4 x 20 tokens).
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
shapes=${SHAPES:-gpt2-medium gpt2-large gpt2-xl gpt-neo-1.3B gpt-neo-2.7B}
phases=${PHASES:-bench probes}
dtype=${DTYPE:-f16}; batch=${BATCH:-1}; seq=${SEQ:-128}; runs=${RUNS:-3}
models=${MODELS:-benchmarks/models}
py=/usr/bin/python3
anchor=../shared/bench/torch_bench.py
mkdir -p "$models"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -x bin/neoscope ] || make build >/dev/null
ns=bin/neoscope
lock() { if [ -n "${LOCK:-}" ]; then exec 9>>"$LOCK"; flock 9; fi; }
unlock() { if [ -n "${LOCK:-}" ]; then flock -u 9; exec 9>&-; fi; }
rss() { grep 'Maximum resident' "$1" | awk '{printf "%.0f", $6/1024}'; }
wall() { grep 'Elapsed (wall' "$1" | awk '{n = split($NF, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.1f", s}'; }
field() { $py -c '
import json, sys
s = sys.stdin.read().strip()
try: d = json.loads(s)
except ValueError: d = json.loads(s.splitlines()[-1])
print(d[sys.argv[1]])' "$1"; }
loadavg() { cut -d' ' -f1 /proc/loadavg; }
on() { [[ " ${PROBES:-embed lens ablate induction ioi sweep} " == *" $1 "* ]]; }
shards_of() { case "$1" in gpt2-xl|gpt-neo-*) echo 2 ;; *) echo 1 ;; esac; }

# checkpoint SHAPE: sets dir to the model directory, written (under the lock) if absent.
wrote=()
checkpoint() {
  dir=$models/$1-$dtype
  if [ ! -f "$dir/config.json" ]; then
    lock
    $py ../shared/bench/make_bench_model.py "$dir" --shape "$1" --dtype "$dtype" --shards "${SHARDS:-$(shards_of "$1")}" >&2
    unlock
    wrote+=("$dir")
  fi
}
cleanup() {
  [ "${KEEP:-0}" = 1 ] && return
  local d
  for d in ${wrote[@]+"${wrote[@]}"}; do [ "$d" = "$1" ] && rm -rf "$d"; done
  return 0
}

bench_header() {
  tags=""; printf 'int main(void){return 0;}' | cc -x c - -lopenblas -o /dev/null 2>/dev/null && tags="-tags openblas"
  lock
  peak=$(GOMAXPROCS=$threads go test $tags -run '^$' -bench 'BenchmarkMatMul/1024x' -benchtime 20x ./cpu/ 2>/dev/null |
    awk '/GFLOP\/s/ {for (i = 1; i < NF; i++) if ($(i+1) == "GFLOP/s" && $i > m) m = $i} END {print m + 0}')
  unlock
  echo "sgemm peak (cpu BenchmarkMatMul, $threads threads): $peak GFLOP/s; forward ${batch}x${seq}, $dtype, median of $runs; rss/f32: peak RSS over the float32 weights"
  printf "%-13s %6s %8s %8s %7s %8s %7s %9s %8s %6s %9s %9s %6s %11s\n" shape shards file_MB f32_MiB load_s rss_MiB rss/f32 tok/s GFLOP/s %peak pt_tok/s pt_rss_MiB ratio loadavg
}

bench_row() { # shape dir
  local shape=$1 dir=$2 mb nsh tps gf load f32 pct pt=nan ratio=nan ptrss=nan
  mb=$(du -m -L -c "$dir"/*.safetensors | tail -1 | cut -f1)
  nsh=$(ls "$dir"/*.safetensors | wc -l)
  lock
  la=$(loadavg)
  /usr/bin/time -v -o $tmp/ns.time env NEOSCOPE_QUIET=1 $ns bench --backend cpu --model "$dir" \
    --batch "$batch" --seq "$seq" --threads "$threads" --runs "$runs" --json > $tmp/ns.json
  if [ -f $anchor ]; then
    if /usr/bin/time -v -o $tmp/pt.time $py $anchor "$dir" --threads "$threads" --batch "$batch" --seq "$seq" --runs "$runs" > $tmp/pt.json 2>$tmp/pt.err; then
      pt=$(field tokens_per_s < $tmp/pt.json); ptrss=$(rss $tmp/pt.time)
    else
      echo "torch_bench.py failed on $shape: $(tail -1 $tmp/pt.err)" >&2
    fi
  fi
  la="$la-$(loadavg)"
  unlock
  tps=$(field tokens_per_s < $tmp/ns.json); gf=$(field gflops < $tmp/ns.json); load=$(field load_s < $tmp/ns.json)
  f32=$(field f32_weights_mib < $tmp/ns.json)
  pct=$($py -c "print('%.0f' % (100 * $gf / $peak) if $peak else 'nan')")
  [ "$pt" = nan ] || ratio=$($py -c "print('%.2f' % ($tps / $pt))")
  printf "%-13s %6s %8s %8.0f %7s %8s %7s %9s %8s %6s %9s %9s %6s %11s\n" "$shape" "$nsh" "$mb" "$f32" "$load" "$(rss $tmp/ns.time)" \
    "$($py -c "print('%.3f' % ($(rss $tmp/ns.time) / $f32))")" "$tps" "$gf" "$pct" "$pt" "$ptrss" "$ratio" "$la"
}

# probe NAME EXPECTED_STATUS COMMAND...: one timed, locked run; prints a row.
probe() {
  local name=$1 want=$2 rc=0 note=""
  shift 2
  lock
  la=$(loadavg)
  /usr/bin/time -v -o $tmp/p.time env NEOSCOPE_QUIET=1 "$@" > $tmp/p.out 2> $tmp/p.err || rc=$?
  la="$la-$(loadavg)"
  unlock
  [ "$rc" = "$want" ] || note="UNEXPECTED (want exit $want): $(tail -c 300 $tmp/p.err | tr '\n' ' ')"
  [ "$rc" = 0 ] || [ -n "$note" ] || note=$(tail -c 300 $tmp/p.err | tr '\n' ' ')
  printf "%-13s %-22s %7s %8s %5s %11s  %s\n" "$shape" "$name" "$(wall $tmp/p.time)" "$(rss $tmp/p.time)" "$rc" "$la" "$note"
  [ "$rc" = "$want" ] || failed=1
}

probes_rows() { # shape dir
  local shape=$1 dir=$2 pd=$tmp/probe-$1 last
  # The checkpoint plus models/neo-tiny's tokenizer, for ioi (links: nothing is copied).
  mkdir -p "$pd"
  ln -sf "$(realpath "$dir")"/* "$pd"/
  ln -sf "$(realpath models/neo-tiny/vocab.json)" "$(realpath models/neo-tiny/merges.txt)" "$pd"/
  $py -c 'import json, random; r = random.Random(1); print(json.dumps([[r.randrange(4096) for _ in range(24)] for _ in range(2)]))' > $tmp/tok.json
  last=$(( $($py -c "import json; c = json.load(open('$dir/config.json')); print(c.get('num_layers') or c.get('n_layer') or c['num_hidden_layers'])") - 1 ))
  local common=(--model "$dir" --threads "$threads" --backend cpu)
  on embed && probe embed 0 $ns embed "${common[@]}" --json
  on lens && probe lens 0 $ns lens "${common[@]}" --tokens $tmp/tok.json --json
  on ablate && probe ablate 0 $ns ablate "${common[@]}" --tokens $tmp/tok.json --each attn,mlp --json
  on induction && probe induction 0 $ns induction "${common[@]}" --batch 4 --period 10 --no-ablation --json
  on ioi && probe ioi 0 $ns ioi --model "$pd" --threads "$threads" --backend cpu --n 1 --no-resid --json
  on sweep || return 0
  local sw=(sweep "${common[@]}" --task induction --batch 4 --period 10 --space "singles($last.*)|singles(attn)")
  probe "sweep 2GiB" 0 $ns "${sw[@]}" --out $tmp/s.csv --force
  probe "sweep 64MiB" 0 $ns "${sw[@]}" --out $tmp/s64.csv --force --max-memory 64MiB
  cmp -s <(sort $tmp/s.csv) <(sort $tmp/s64.csv) || $py - $tmp/s.csv $tmp/s64.csv <<'EOF' || failed=1
import csv, sys
a, b = ([r for r in csv.DictReader(open(f))] for f in sys.argv[1:])
d = max(abs(float(x["delta"]) - float(y["delta"])) for x, y in zip(a, b))
print(f"  sweep 2GiB vs 64MiB: max |delta difference| {d:.3g}", file=sys.stderr)
sys.exit(0 if len(a) == len(b) and d < 1e-4 else 1)
EOF
  probe "sweep 1KiB (refused)" 2 $ns "${sw[@]}" --out $tmp/s1k.csv --force --max-memory 1KiB
  grep -q -- '--max-memory 1024B is below' $tmp/p.err || { echo "  the refusal does not name the figure: $(cat $tmp/p.err)"; failed=1; }
}

failed=0
for phase in $phases; do
  case $phase in
  bench) bench_header ;;
  probes) printf "%-13s %-22s %7s %8s %5s %11s  %s\n" shape probe wall_s rss_MiB exit loadavg note ;;
  *) echo "unknown phase $phase (want bench, probes)" >&2; exit 2 ;;
  esac
  for shape in $shapes; do
    checkpoint "$shape"
    if [ "$phase" = bench ]; then bench_row "$shape" "$dir"; else probes_rows "$shape" "$dir"; fi
    [ "$phase" != "${phases##* }" ] || cleanup "$dir"
  done
done
exit $failed
