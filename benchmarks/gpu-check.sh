#!/usr/bin/env bash
# gpu-check.sh: one prepared check of the CUDA backend on a GPU machine
# (written for the lent H200: driver 580, python3 with CUDA PyTorch, no Go,
# nothing reachable). Budget: about 8 minutes in all.
#
#   benchmarks/gpu-check.sh build   # HERE (with Go): build the binaries into
#                                   # bin/gpu-check/ (ignored; carry it)
#   benchmarks/gpu-check.sh         # THERE: run; report to $OUT/gpu-report.txt
#                                   # (or ./gpu-report.txt without $OUT)
#
# Steps, each bounded by `timeout` so that one hang cannot eat the budget:
#   1. device facts (nvidia-smi, driver API version through cuda.Open)
#   2. the cuda conformance suite and golden forward passes on the GPU
#      (cuda.test -test.run 'GPU|Open'), tolerance 1e-4 per op, goldens 1e-4
#   3. matmul TFLOP/s on GPT-Neo-125M shapes (BenchmarkMatMul) beside
#      torch.matmul in fp32 (TF32 off) and TF32 on the same shapes
#   4. forward tokens/s, random-weight GPT-Neo-125M (BenchmarkForward)
#   5. the sweep: neoscope sweep --backend cuda, induction, singles(heads),
#      on a GPT-Neo-125M-shaped checkpoint made there by make_bench_model.py
# Where Go exists (a machine with a GPU and Go), step 0 builds instead.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BIN=bin/gpu-check

if [ "${1:-}" = build ]; then
	set -e
	mkdir -p $BIN
	go test -c -o $BIN/cuda.test ./cuda
	go build -o $BIN/neoscope ./cmd/neoscope || echo "gpu-check: neoscope did not build: the sweep step will be skipped" >&2
	for f in make_bench_model.py ref.py; do
		[ -f ../shared/bench/$f ] && cp ../shared/bench/$f $BIN/ || true
	done
	# The fixture models for the golden tests (small).
	if [ -d ../shared/fixtures ]; then
		rm -rf $BIN/fixtures && cp -r ../shared/fixtures $BIN/fixtures
	fi
	du -sh $BIN
	exit 0
fi

REPORT=${OUT:+$OUT/}gpu-report.txt
exec > >(tee "$REPORT") 2>&1
echo "== neoscope gpu-check $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"

if command -v go >/dev/null 2>&1; then
	echo "== building with $(go version)"
	timeout 240 "$0" build || echo "BUILD FAILED"
fi
if [ ! -x $BIN/cuda.test ]; then
	echo "FAIL: no $BIN/cuda.test: run 'benchmarks/gpu-check.sh build' where Go is, and carry $BIN"
	exit 1
fi
# The golden tests find the fixtures through ../shared/fixtures or NEOSCOPE_FIXTURES.
[ -d $BIN/fixtures ] && export NEOSCOPE_FIXTURES="$ROOT/$BIN/fixtures"

echo "== 1. device"
timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || echo "(no nvidia-smi)"
PY=python3
HAVE_TORCH=0
if timeout 60 $PY -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then HAVE_TORCH=1; fi
echo "python3 torch with CUDA: $HAVE_TORCH"

status=0
echo "== 2. conformance and golden tests on the GPU"
(cd cuda && timeout 180 "$ROOT/$BIN/cuda.test" -test.run 'GPU|Open|OutOfMemory|TF32' -test.v >/tmp/gpu-conformance.log 2>&1)
rc=$?
grep -E '^(--- |\s+--- |PASS|FAIL|ok)|device:|error|mismatch|Open:|panic' /tmp/gpu-conformance.log
# the error figures of the GPU runs (max error per output; full log in $OUT)
grep -E 'max (abs error|\|diff\|)' /tmp/gpu-conformance.log | tail -n 60
[ -n "${OUT:-}" ] && cp /tmp/gpu-conformance.log "$OUT/" 2>/dev/null
echo "conformance exit status: $rc"
[ "$rc" = 0 ] || status=1
if grep -q -- '--- SKIP: TestConformanceGPU' /tmp/gpu-conformance.log; then
	echo "FAIL: cuda.Open did not find a usable device (reason above)"
	status=1
fi

echo "== 3. matmul TFLOP/s (neoscope fp32 kernel, three runs of 20 launches each)"
(cd cuda && timeout 120 "$ROOT/$BIN/cuda.test" -test.run '^$' -test.bench 'MatMul' -test.benchtime 20x -test.count 3 2>&1) |
	grep -E 'Benchmark|FAIL|skip'
if [ $HAVE_TORCH = 1 ]; then
	echo "-- torch.matmul on the same shapes (x @ w.T, w [N,K]), fp32 and TF32"
	timeout 120 $PY - <<'PY'
import torch
def bench(M, N, K, tf32):
    torch.backends.cuda.matmul.allow_tf32 = tf32
    a = torch.randn(M, K, device="cuda"); w = torch.randn(N, K, device="cuda")
    for _ in range(3): a @ w.T
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(20): a @ w.T
    e.record(); torch.cuda.synchronize()
    return 2 * M * N * K / (s.elapsed_time(e) / 20 / 1e3) / 1e12
print("torch", torch.__version__, torch.cuda.get_device_name())
for name, M, N, K in [("QKV", 1024, 768, 768), ("MLPIn", 1024, 3072, 768), ("MLPOut", 1024, 768, 3072),
                      ("Unembed", 1024, 50257, 768), ("Square", 4096, 4096, 4096)]:
    print(f"{name:8s} {M}x{N}x{K}: fp32 {bench(M, N, K, False):7.2f} TFLOP/s  tf32 {bench(M, N, K, True):7.2f} TFLOP/s")
PY
fi

echo "== 4. forward tokens/s (random-weight GPT-Neo-125M, logits included)"
(cd cuda && timeout 150 "$ROOT/$BIN/cuda.test" -test.run '^$' -test.bench 'Forward' -test.benchtime 5x 2>&1) |
	grep -E 'Benchmark|FAIL|skip'

echo "== 5. sweep (induction, B=8, 2x10 tokens, 144 single-head ablations)"
MODEL=/tmp/neoscope-bench-model
if [ ! -f $MODEL/model.safetensors ] && [ -f $BIN/make_bench_model.py ] && [ $HAVE_TORCH = 1 ]; then
	timeout 120 $PY $BIN/make_bench_model.py $MODEL >/dev/null 2>&1 || echo "(make_bench_model.py failed)"
fi
if [ -f $MODEL/model.safetensors ] && [ -x $BIN/neoscope ]; then
	for be in cuda cpu; do
		/usr/bin/time -f "$be: %e s wall" timeout 120 $BIN/neoscope sweep --backend $be --model $MODEL --task induction \
			--batch 8 --period 10 --space 'singles(heads)' --out /tmp/sweep-$be.csv --force --top 3 2>&1 | tail -n 6
	done
	if [ -f /tmp/sweep-cuda.csv ] && [ -f /tmp/sweep-cpu.csv ]; then
		$PY - <<'PY' || true
import csv
def load(p):
    with open(p) as f:
        return list(csv.reader(f))
a, b = load("/tmp/sweep-cuda.csv"), load("/tmp/sweep-cpu.csv")
worst = 0.0
for ra, rb in zip(a[1:], b[1:]):
    for x, y in zip(ra, rb):
        try:
            worst = max(worst, abs(float(x) - float(y)))
        except ValueError:
            pass
print(f"sweep cuda vs cpu: {len(a)-1} rows, max |diff| over numeric columns {worst:.3g} (want <= 1e-3)")
PY
	fi
else
	echo "(skipped: no model at $MODEL or no neoscope binary)"
fi

echo "== done $(date -u +%FT%TZ); status $status"
exit $status
