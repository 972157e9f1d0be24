#!/usr/bin/env bash
# Side-by-side sweep benchmark on the GPT-Neo-125M-shaped checkpoint
# (benchmarks/model, made by ../shared/bench/make_bench_model.py): the
# induction task, B=8 prompts of 2x10 tokens, second-half loss.
#   (a) one configuration per forward pass (no batching, no prefix sharing)
#   (b) the batched prefix-sharing engine: all 144 singles, and pairs
#   (c) the PyTorch hook loop, ../shared/bench/torch_bench.py --sweep
# Wall and CPU seconds are printed for each: the machine is shared, and CPU
# seconds move less with other jobs' load than wall time does (CPU time of
# an OpenMP program also counts spin-waiting, so treat (c)'s as an upper bound).
#
#   bash benchmarks/sweep/run.sh [THREADS] [PAIRS_EVERY]
# PAIRS_EVERY=N times every N-th pair (0 skips pairs; default 24): fewer
# pairs per first ablation than the full space, so a conservative rate.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
THREADS=${1:-2}
EVERY=${2:-24}
MODEL=benchmarks/model
[ -f $MODEL/config.json ] || /usr/bin/python3 ../shared/bench/make_bench_model.py $MODEL
TAGS=$(printf 'int main(void){return 0;}' | cc -x c - -lopenblas -o /dev/null 2>/dev/null && echo openblas || true)
go build ${TAGS:+-tags $TAGS} -o /tmp/sweep-bench ./benchmarks/sweep
echo "== $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg), threads $THREADS, blas ${TAGS:-gonum}"
/tmp/sweep-bench -model $MODEL -threads "$THREADS" -space 'singles(heads)' -mode single
# The batched engine as its own process, timed whole (model load and the
# unablated pass included), as the PyTorch loop is below.
/usr/bin/time -f 'engine: %e s wall, %U+%S CPU s' /tmp/sweep-bench -model $MODEL -threads "$THREADS" -space 'singles(heads)' -mode batched
if [ "$EVERY" -gt 0 ]; then
	/tmp/sweep-bench -model $MODEL -threads "$THREADS" -space 'pairs(heads)' -every "$EVERY" -mode batched
fi
echo "== PyTorch hook loop (load: $(cut -d' ' -f1-3 /proc/loadavg))"
/usr/bin/time -f 'torch: %e s wall, %U+%S CPU s' /usr/bin/python3 ../shared/bench/torch_bench.py $MODEL --threads "$THREADS" --sweep
