#!/usr/bin/env bash
# gpu-check.sh: the one prepared run of neoscope on a GPU machine (written for
# the lent H100/H200: NVIDIA driver, python3 with CUDA PyTorch, no Go, nothing
# reachable, 16 cores). Three modes:
#
#   benchmarks/gpu-check.sh build     # HERE (Go, g++): stripped binaries and the
#                                     # Python anchors into bin/gpu-check/ (git-ignored)
#   benchmarks/gpu-check.sh --dry-run # HERE: the run's logic without a GPU: checks
#                                     # what it needs is built, prints every step with
#                                     # its timeout, runs the CPU-side pieces
#   benchmarks/gpu-check.sh           # THERE: the run; report in $OUT/gpu-report.txt
#
# With the device tool: run `benchmarks/gpu-check.sh build` here, then
#   run(command="bash benchmarks/gpu-check.sh", carry=["bin/gpu-check"], timeout_s=480)
# (bin/gpu-check holds one file, payload.tar.gz, about 25 MB: the stripped
# neoscope (30 MB) and cuda.test (4.5 MB) binaries, the fixtures (11 MB) and
# three Python files, unpacked into a temporary folder by the run).
# Every step has its own `timeout`; the timeouts sum to TOTAL_BUDGET below,
# 405 s (415 s with each step's 1 s kill grace: under 420 s), checked at
# start. Wall times come from bash's $EPOCHREALTIME (no /usr/bin/time).
#
# What it measures, and why:
#   1. device: nvidia-smi; torch's view of the GPU.
#   2. correctness on the GPU: the cuda test binary (built with -tags tf32,
#      run with NEOSCOPE_CUDA_SYNC=1) runs TestConformanceGPU (every op, every hook, the fixtures' forward
#      passes and sweep figures through runtime/backend/conformance),
#      TestOpenError, TestOutOfMemory, TestKernelNames and TestMatMulTF32
#      (the unverified tensor-core kernel: the first check of its fragment
#      layout, and its error against fp32 inputs).
#   3. the sweep goal: `neoscope sweep --backend cuda --task induction
#      --space 'pairs(heads)'`, all 10,296 pairs of GPT-Neo-125M's 144 heads
#      (B=8 prompts of 2x10 tokens), on a random-weight checkpoint of that
#      shape made there by make_bench_model.py. Expected 6-9 s of sweep on an
#      H200, from this count:
#        a pair re-runs the blocks from its first ablated layer: with two
#        distinct heads of 12 layers x 12, E[min layer] = 3.5, so 8.5 blocks;
#        a block over 8 x 19 rows is 2 x 152 x 7.08M weights = 2.15 GFLOP
#        (attention scores and mixing add 0.01); plus the unembedding of the
#        72 predicting rows, 2 x 72 x 768 x 50,257 = 5.56 GFLOP: 23.9 GFLOP a
#        pair, 246 TFLOP for 10,296 pairs. At 27-41 TFLOP/s (40-60% of an
#        H200's ~67 TFLOP/s fp32 without tensor cores) that is 6-9 s.
#        Launches: the default 2 GiB budget gives K = 168 pairs a pass
#        (M = 26,880 rows), about 62 passes x (12 blocks x ~14 launches + 2)
#        = ~10,500 launches; at ~5 us each, 0.05 s. The sweep is bound by
#        matmul throughput, not by launches.
#      Then the same command on shard 0/5000 (3 pairs) with --backend cpu and
#      --backend cuda: the two CSVs' figures must agree to 1e-3.
#   4. the PyTorch anchor on the same GPU: the hook loop of torch_bench.py's
#      task as pairs, every 40th pair (258), one pass per pair and 168 pairs
#      per pass (benchmarks/gpu_hookloop.py, ref.py from ../shared/bench).
#   5. matmul at the sweep's shapes (M = 5,120 and 26,880 rows; N x K of
#      q/k/v/out-proj, MLP in, MLP out) and the fused unembedding reduction
#      (LogitStats, 2,304 and 12,096 rows x 50,257), neoscope's kernels
#      (BenchmarkMatMulSweep, BenchmarkLogitStatsSweep) beside torch.matmul
#      and torch.logsumexp(x @ wte.T) in fp32 (TF32 off) and TF32.
# The report ends with a summary: each figure, and PASS/FAIL per check.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PAYLOAD=bin/gpu-check/payload.tar.gz
TOTAL_BUDGET=405 # seconds: the sum of the step timeouts below (+1 s kill grace each: 415)

# Step timeouts (seconds).
T_SMI=10 T_TORCH=20 T_CONF=95 T_MODEL=45 T_SWEEP=55 T_SHARD_CPU=30 T_SHARD_GPU=20 T_HOOK=50 T_GOBENCH=45 T_TORCHBENCH=35
sum=$((T_SMI + T_TORCH + T_CONF + T_MODEL + T_SWEEP + T_SHARD_CPU + T_SHARD_GPU + T_HOOK + T_GOBENCH + T_TORCHBENCH))
if [ "$sum" -ne "$TOTAL_BUDGET" ] || [ $((sum + 10)) -ge 420 ]; then
	echo "gpu-check: step timeouts sum to $sum s (TOTAL_BUDGET $TOTAL_BUDGET, limit < 420)" >&2
	exit 2
fi

if [ "${1:-}" = build ]; then
	set -e
	stage=$(mktemp -d)
	trap 'rm -rf "$stage"' EXIT
	# -s -w: no symbol table or DWARF (neoscope 40 -> 30 MB).
	go test -c -tags tf32 -ldflags='-s -w' -o "$stage/cuda.test" ./cuda
	go build -ldflags='-s -w' -o "$stage/neoscope" ./cmd/neoscope
	for f in make_bench_model.py ref.py torch_bench.py; do
		cp "../shared/bench/$f" "$stage/"
	done
	cp -r --no-preserve=mode ../shared/fixtures "$stage/fixtures"
	du -sh "$stage"/*
	mkdir -p "$(dirname "$PAYLOAD")"
	tar -C "$stage" -czf "$PAYLOAD.tmp" .
	mv "$PAYLOAD.tmp" "$PAYLOAD"
	du -sh "$PAYLOAD"
	exit 0
fi

DRY=0
[ "${1:-}" = --dry-run ] && DRY=1
if [ $DRY = 1 ]; then
	REPORT=/dev/null
else
	REPORT=${OUT:+$OUT/}gpu-report.txt
	exec > >(tee "$REPORT") 2>&1
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export PYTHONUNBUFFERED=1 # Python's lines reach the report as they are printed
PY=${PYTHON:-python3} # there: the python3 with CUDA torch (torch 2.11 seen in KINDS.md)
if [ $DRY = 1 ] && [ -z "${PYTHON:-}" ] && [ -x /usr/bin/python3 ]; then
	PY=/usr/bin/python3 # here: Debian's python3-torch (CPU)
fi
summary=()
status=0
note() { summary+=("$1"); }
fail() { summary+=("FAIL: $1"); status=1; }
now() { echo "${EPOCHREALTIME/,/.}"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# step NAME TIMEOUT CMD...: run CMD under timeout (printing it first); in a
# dry run, print it only. Returns CMD's status (124 on timeout).
step() {
	local name=$1 t=$2
	shift 2
	echo "-- [$name, timeout ${t}s] $*"
	if [ $DRY = 1 ]; then
		return 0
	fi
	timeout --kill-after=1 "$t" "$@"
}

echo "== neoscope gpu-check $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'); step timeouts sum to $sum s"
if [ ! -f "$PAYLOAD" ]; then
	echo "FAIL: $PAYLOAD missing: run 'benchmarks/gpu-check.sh build' where Go is, and carry bin/gpu-check"
	exit 1
fi
BIN=$TMP/payload
mkdir -p "$BIN" && tar -C "$BIN" -xzf "$PAYLOAD" || { echo "FAIL: cannot unpack $PAYLOAD"; exit 1; }
for f in cuda.test neoscope make_bench_model.py ref.py torch_bench.py fixtures; do
	if [ ! -e "$BIN/$f" ]; then
		echo "FAIL: $f missing from $PAYLOAD: rebuild it ('benchmarks/gpu-check.sh build')"
		exit 1
	fi
done
export NEOSCOPE_FIXTURES="$BIN/fixtures"

echo "== 1. device"
step smi $T_SMI nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || echo "(no nvidia-smi)"
HAVE_TORCH=0
if step torch $T_TORCH $PY -c 'import torch,sys; print("torch", torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA"); sys.exit(0 if torch.cuda.is_available() else 1)'; then
	HAVE_TORCH=1
fi
[ $DRY = 1 ] && HAVE_TORCH=0
echo "python3 torch with CUDA: $HAVE_TORCH"

echo "== 2. conformance on the GPU"
# NEOSCOPE_CUDA_SYNC=1: a first run on hardware, so a faulting kernel is named
# by its own launch (the timed steps below run without it).
(cd cuda && NEOSCOPE_CUDA_SYNC=1 step conformance $T_CONF "$BIN/cuda.test" -test.run 'GPU|OpenError|OutOfMemory|KernelNames|TF32' -test.v -test.count=1) >"$TMP/conf.log" 2>&1
rc=$?
grep -E '^(=== RUN|--- |\s+--- |PASS|FAIL|ok|-- \[)|device|max (abs|err|\|)|error|mismatch|panic' "$TMP/conf.log" | grep -v '^=== RUN' | tail -n 80
[ -n "${OUT:-}" ] && [ $DRY = 0 ] && cp "$TMP/conf.log" "$OUT/gpu-conformance.log"
if [ $DRY = 0 ]; then
	if [ $rc != 0 ]; then
		fail "conformance tests on the GPU (exit $rc; $OUT/gpu-conformance.log)"
	elif grep -q -- '--- SKIP: TestConformanceGPU' "$TMP/conf.log" || ! grep -q -- '--- PASS: TestConformanceGPU' "$TMP/conf.log"; then
		fail "TestConformanceGPU did not pass on a device (skipped or absent: cuda.Open failed?)"
	else
		note "PASS: conformance on the GPU ($(grep -c -- '--- PASS' "$TMP/conf.log") tests and subtests passed)"
	fi
	# TestMatMulTF32 also runs on the emulator: it counts only with a device.
	if grep -q -- '--- PASS: TestMatMulTF32' "$TMP/conf.log" && ! grep -q 'emulated only' "$TMP/conf.log" &&
		grep -q -- '--- PASS: TestConformanceGPU' "$TMP/conf.log"; then
		note "PASS: TF32 kernel on the GPU (its error against fp32 inputs is in the log above)"
	else
		fail "TestMatMulTF32 on a GPU did not pass or did not run there (the tf32 kernel stays out of the default build)"
	fi
fi

echo "== 3. the 10,296-pair sweep, --backend cuda"
MODEL=$TMP/neo125m
if [ $DRY = 1 ]; then
	MODEL=${DRY_MODEL:-$BIN/fixtures/tiny-neo}
	echo "(dry run: model $MODEL)"
elif [ -n "${GPU_CHECK_MODEL:-}" ]; then
	MODEL=$GPU_CHECK_MODEL # a GPT-Neo-125M-shaped checkpoint already there
else
	step model $T_MODEL $PY "$BIN/make_bench_model.py" "$MODEL" >/dev/null || fail "make_bench_model.py"
fi
sweep() { # sweep NAME TIMEOUT BACKEND OUT [extra flags]
	local name=$1 t=$2 be=$3 out=$4
	shift 4
	step "$name" "$t" "$BIN/neoscope" sweep --backend "$be" --model "$MODEL" --task induction --batch 8 --period 10 \
		--space 'pairs(heads)' --out "$out" --force --top 3 "$@"
}
t0=$(now)
sweep sweep $T_SWEEP cuda "$TMP/pairs-cuda.csv"
rc=$?
t1=$(now)
if [ $DRY = 0 ]; then
	rows=0
	[ -f "$TMP/pairs-cuda.csv" ] && rows=$(($(wc -l <"$TMP/pairs-cuda.csv") - 1))
	if [ $rc = 0 ] && [ "$rows" = 10296 ]; then
		note "sweep pairs(heads) --backend cuda: 10,296 pairs in $(elapsed "$t0" "$t1") s wall (model load included; expected 6-9 s of sweep on an H200)"
	elif [ $rc = 124 ] && [ "$rows" -gt 0 ]; then
		# Rows are appended (and fsynced) after every chunk: a rate from what finished.
		fail "sweep --backend cuda did not finish in ${T_SWEEP} s: $rows of 10,296 pairs written, about $(awk -v r="$rows" -v t="$T_SWEEP" 'BEGIN { printf "%.0f", 10296 / r * t }') s for all"
	else
		fail "sweep --backend cuda (exit $rc, $rows result rows, $(elapsed "$t0" "$t1") s)"
	fi
fi
# Agreement: shard 0 of 5000 (pairs 0, 5000 and 10000: 3; the CPU build uses gonum, about 6 s a pair on two cores here) on both backends.
sweep shard-cpu $T_SHARD_CPU cpu "$TMP/shard-cpu.csv" --shard 0/5000 >/dev/null
rc_cpu=$?
if [ $DRY = 1 ]; then
	# The CPU half really runs in a dry run: it checks the flags and the CSV comparison below.
	mkdir -p "$TMP/dry" && "$BIN/neoscope" sweep --backend cpu --model "$MODEL" --task induction --batch 8 --period 10 \
		--space 'pairs(heads)' --out "$TMP/shard-cpu.csv" --force --top 3 --shard 0/5000 >/dev/null && rc_cpu=0 || rc_cpu=$?
	cp "$TMP/shard-cpu.csv" "$TMP/shard-cuda.csv" 2>/dev/null
	echo "(dry run: the CPU shard ran, exit $rc_cpu; its CSV stands in for the cuda one)"
else
	sweep shard-cuda $T_SHARD_GPU cuda "$TMP/shard-cuda.csv" --shard 0/5000 >/dev/null
	rc_cuda=$?
fi
if [ -s "$TMP/shard-cpu.csv" ] && [ -s "$TMP/shard-cuda.csv" ]; then
	cmp_out=$($PY - "$TMP/shard-cpu.csv" "$TMP/shard-cuda.csv" <<'PY'
import csv, sys
a, b = (list(csv.DictReader(open(p))) for p in sys.argv[1:3])
worst, n = 0.0, 0
for ra, rb in zip(a, b):
    for k in ra:
        try:
            x, y = float(ra[k]), float(rb[k])
        except (TypeError, ValueError):
            if ra[k] != rb[k]:
                print(f"column {k}: {ra[k]!r} vs {rb[k]!r}"); sys.exit(1)
            continue
        worst, n = max(worst, abs(x - y)), n + 1
ok = len(a) == len(b) and len(a) > 0 and worst <= 1e-3
print(f"{len(a)} vs {len(b)} rows, {n} numbers, max |diff| {worst:.3g} (want <= 1e-3)")
sys.exit(0 if ok else 1)
PY
	)
	rc=$?
	echo "shard 0/5000, cpu vs cuda: $cmp_out"
	[ $rc = 0 ] && note "PASS: sweep shard 0/5000 cpu vs cuda: $cmp_out" || fail "sweep shard cpu vs cuda: $cmp_out"
else
	fail "sweep shard 0/5000: a CSV is missing (cpu exit $rc_cpu, cuda exit ${rc_cuda:-?})"
fi

echo "== 4. PyTorch hook loop on the same GPU (every 40th pair)"
if [ $DRY = 1 ]; then
	# Runs for real on the CPU, on the tiny model: the script's logic.
	timeout 60 $PY benchmarks/gpu_hookloop.py "$MODEL" --ref-dir "$BIN" --device cpu --every 40 --batched 4 |
		tee "$TMP/hook.log"
	[ "${PIPESTATUS[0]}" = 0 ] && note "PASS (dry run): gpu_hookloop.py ran on the CPU" || fail "gpu_hookloop.py on the CPU"
elif [ $HAVE_TORCH = 1 ]; then
	step hookloop $T_HOOK $PY benchmarks/gpu_hookloop.py "$MODEL" --ref-dir "$BIN" --device cuda --every 40 --batched 168 |
		tee "$TMP/hook.log"
	for loop in naive batched; do
		l=$(grep "\"loop\": \"$loop\"" "$TMP/hook.log")
		[ -n "$l" ] && note "torch hook loop ($loop) on the GPU: $l" || fail "torch hook loop ($loop): no result"
	done
else
	fail "no CUDA torch: no PyTorch anchor"
fi

echo "== 5. matmul and LogitStats at the sweep's shapes, neoscope beside torch"
(cd cuda && step gobench $T_GOBENCH "$BIN/cuda.test" -test.run '^$' -test.bench 'MatMulSweep|LogitStatsSweep' -test.benchtime 10x) |
	tee "$TMP/gobench.log" | grep -E 'Benchmark|FAIL|skip|-- \['
[ $DRY = 0 ] && { grep -q 'TFLOP/s' "$TMP/gobench.log" && note "neoscope kernels: $(grep -c 'TFLOP/s' "$TMP/gobench.log") shapes timed (above)" || fail "neoscope matmul benchmarks gave no figures"; }
if [ $HAVE_TORCH = 1 ] || [ $DRY = 1 ]; then
	cat >"$TMP/torchmm.py" <<'PY'
import sys, torch
dev = sys.argv[1]
def timeit(f, n=10):
    f()
    if dev == "cuda":
        torch.cuda.synchronize()
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        for _ in range(n): f()
        e.record(); torch.cuda.synchronize()
        return s.elapsed_time(e) / n / 1e3
    import time
    t = time.perf_counter()
    for _ in range(n): f()
    return (time.perf_counter() - t) / n
print("torch", torch.__version__, torch.cuda.get_device_name() if dev == "cuda" else "cpu")
scale = 1 if dev == "cuda" else 64  # a dry run on the CPU: small shapes
for M in (5120 // scale, 26880 // scale):
    for name, N, K in (("QKVorOut", 768, 768), ("MLPIn", 3072, 768), ("MLPOut", 768, 3072)):
        a = torch.randn(M, K, device=dev); w = torch.randn(N, K, device=dev)
        out = []
        for tf32 in (False, True):
            torch.backends.cuda.matmul.allow_tf32 = tf32
            out.append(2 * M * N * K / timeit(lambda: a @ w.T) / 1e12)
        print(f"torch.matmul {name}_{M}x{N}x{K}: fp32 {out[0]:7.2f} TFLOP/s  tf32 {out[1]:7.2f} TFLOP/s")
V, C = 50257 // scale, 768
wte = torch.randn(V, C, device=dev)
for NR in (72 * 32, 72 * 168 // scale):
    x = torch.randn(NR, C, device=dev)
    torch.backends.cuda.matmul.allow_tf32 = False
    s = timeit(lambda: torch.logsumexp(x @ wte.T, dim=-1))
    print(f"torch logsumexp(x @ wte.T) rows{NR} x {V}: fp32 {2 * NR * V * C / s / 1e12:7.2f} TFLOP/s")
PY
	if [ $DRY = 1 ]; then
		timeout 60 $PY "$TMP/torchmm.py" cpu && note "PASS (dry run): the torch matmul script ran on the CPU" ||
			fail "the torch matmul script on the CPU"
	else
		step torchbench $T_TORCHBENCH $PY "$TMP/torchmm.py" cuda | tee "$TMP/torchmm.log"
		grep -q 'TFLOP/s' "$TMP/torchmm.log" && note "torch.matmul: $(grep -c 'TFLOP/s' "$TMP/torchmm.log") shapes timed (above)" ||
			fail "torch.matmul benchmark gave no figures"
	fi
fi

echo "== summary ($(date -u +%FT%TZ))"
for s in "${summary[@]}"; do echo "  $s"; done
if [ $DRY = 1 ]; then
	echo "dry run: done, status $status (nothing above ran on a GPU; the CPU pieces did)"
	exit $status
fi
echo "status $status"
exit $status
