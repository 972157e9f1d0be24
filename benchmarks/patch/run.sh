#!/usr/bin/env bash
# Side-by-side edge-patching benchmark on the GPT-Neo-125M-shaped checkpoint
# (../shared/bench/make_bench_model.py; benchmarks/model here):
# 8 prompts x 20 random tokens (clean) and the same prompts with 4 positions
# resampled (corrupt), random io/s ids, metric ld, every EVERY-th edge of the
# model's 32,491 (noise mode: one edge removed per configuration).
#   (a) neoscope sweep --task patch: edges/s
#   (b) ../shared/bench/torch_bench.py --sweep: configs/s of one full forward
#       per configuration (same B=8, T=20), a lower bound on the cost of a
#       per-edge patching loop (which also needs the corrupt activations).
# Wall and CPU seconds are printed for each; the machine may be shared, so
# run both side by side and compare the ratio.
#
#   bash benchmarks/patch/run.sh [MODEL] [THREADS] [EVERY]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
MODEL=${1:-benchmarks/model}
THREADS=${2:-2}
EVERY=${3:-40}
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
TAGS=$(printf 'int main(void){return 0;}' | cc -x c - -lopenblas -o /dev/null 2>/dev/null && echo openblas || true)
go build ${TAGS:+-tags $TAGS} -o "$W/neoscope" ./cmd/neoscope
/usr/bin/python3 - "$MODEL" "$W" "$EVERY" <<'PY'
import json, random, sys
model, w, every = sys.argv[1], sys.argv[2], int(sys.argv[3])
cfg = json.load(open(model + "/config.json"))
V, L, H = cfg["vocab_size"], cfg.get("num_layers", cfg.get("n_layer")), cfg.get("num_heads", cfg.get("n_head"))
r = random.Random(0)
clean = [[r.randrange(V) for _ in range(20)] for _ in range(8)]
corrupt = [row[:] for row in clean]
for row in corrupt:
    for p in r.sample(range(20), 4):
        row[p] = r.randrange(V)
json.dump(clean, open(w + "/clean.json", "w")); json.dump(corrupt, open(w + "/corrupt.json", "w"))
open(w + "/io", "w").write(",".join(str(r.randrange(V)) for _ in range(8)))
open(w + "/s", "w").write(",".join(str(r.randrange(V)) for _ in range(8)))
# The edge list in canonical order (CIRCUITS.md), every EVERY-th edge.
senders = ["embed"] + [s for l in range(L) for s in [f"{l}.{h}" for h in range(H)] + [f"mlp.{l}"]]
def layer(s): return -1 if s == "embed" else int(s.split(".")[1] if s.startswith("mlp.") else s.split(".")[0])
edges = []
for l in range(L):
    for h in range(H):
        for c in "qkv":
            edges += [f"{s}>{l}.{h}.{c}" for s in senders if layer(s) < l]
    edges += [f"{s}>mlp.{l}" for s in senders if layer(s) < l or (layer(s) == l and not s.startswith("mlp."))]
edges += [f"{s}>logits" for s in senders]
open(w + "/edges.txt", "w").write("\n".join(edges[::every]) + "\n")
print(f"{len(edges)} edges, timing {len(edges[::every])} (every {every}th)")
PY
N=$(wc -l < "$W/edges.txt")
echo "== $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg), threads $THREADS, blas ${TAGS:-gonum}, $(nproc) cores"
/usr/bin/time -f "neoscope: %e s wall, %U+%S CPU s for $N edges" "$W/neoscope" sweep --model "$MODEL" --threads "$THREADS" --task patch \
	--clean "$W/clean.json" --corrupt "$W/corrupt.json" --io "$(cat "$W/io")" --s "$(cat "$W/s")" \
	--mode noise --metric ld --space "file($W/edges.txt)" --out "$W/r.csv" --top 3 2> "$W/log" || { cat "$W/log"; exit 1; }
grep -E "neoscope:|sweep: [0-9]+ configurations" "$W/log"
echo "== PyTorch, one forward per configuration (load: $(cut -d' ' -f1-3 /proc/loadavg))"
/usr/bin/time -f 'torch: %e s wall, %U+%S CPU s' /usr/bin/python3 ../shared/bench/torch_bench.py "$MODEL" --threads "$THREADS" --sweep --sweep-limit 48
