#!/usr/bin/env bash
# Side-by-side attribution benchmark: neoscope (benchmarks/grad/main.go) and the
# PyTorch autograd anchor (torch_grad.py on ../shared/bench/ref.py) at the same
# threads, on a GPT-Neo-125M-shaped checkpoint, B=8 prompts x T=20 tokens:
# AtP (every head, head x position, MLP), EAP (every edge) and the parameter
# gradients of the loss, each in units of the engine's own forward pass.
# The machine is shared: read the ratios of one run; CPU seconds are printed
# beside wall seconds because they move less with other jobs' load.
#   bash benchmarks/grad/run.sh [MODEL_DIR] [THREADS] [RUNS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
MODEL=${1:-benchmarks/model}
THREADS=${2:-2}
RUNS=${3:-3}
TAGS=$(printf 'int main(void){return 0;}' | cc -x c - -lopenblas -o /dev/null 2>/dev/null && echo openblas || true)
go build ${TAGS:+-tags $TAGS} -o /tmp/grad-bench ./benchmarks/grad
echo "== $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg), threads $THREADS, blas ${TAGS:-gonum}, $MODEL"
/tmp/grad-bench -model "$MODEL" -threads "$THREADS" -runs "$RUNS"
echo "== PyTorch autograd (load: $(cut -d' ' -f1-3 /proc/loadavg))"
PYTHONPATH="$ROOT/../shared/bench${PYTHONPATH:+:$PYTHONPATH}" /usr/bin/python3 benchmarks/grad/torch_grad.py "$MODEL" --threads "$THREADS" --runs "$RUNS"
