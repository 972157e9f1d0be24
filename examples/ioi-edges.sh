#!/usr/bin/env bash
# Which edges carry IOI? Builds `neoscope ioi`'s prompts (--n N, --seed S),
# keeps the largest group of equal-length prompts, and removes every edge of
# the residual graph one at a time (noise mode: the edge's sender output
# taken from the corrupt prompt, ACDC's semantics), metric ld; prints the
# clean/corrupt gap with its standard error and the edges that move the
# logit difference most. MODEL defaults to the bundled model.
#   bash examples/ioi-edges.sh [MODEL] [N] [SEED]
set -euo pipefail
NEO=${NEO:-neoscope}
MODEL=${1:-}
N=${2:-200}
SEED=${3:-1}
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
M=(); [ -n "$MODEL" ] && M=(--model "$MODEL")
"$NEO" ioi "${M[@]}" --n "$N" --seed "$SEED" --show "$N" --no-resid --json > "$W/ioi.json"
python3 - "$W" <<'PY'
import json, sys, collections
w = sys.argv[1]
r = json.load(open(w + "/ioi.json"))
ex = r["examples"]
T = collections.Counter(len(e["clean_ids"]) for e in ex).most_common(1)[0][0]
g = [e for e in ex if len(e["clean_ids"]) == T]
json.dump([e["clean_ids"] for e in g], open(w + "/clean.json", "w"))
json.dump([e["corrupt_ids"] for e in g], open(w + "/corrupt.json", "w"))
open(w + "/io", "w").write(",".join(str(e["io_id"]) for e in g))
open(w + "/s", "w").write(",".join(str(e["s_id"]) for e in g))
print(f"{len(g)} of {len(ex)} prompts have {T} tokens; e.g. {g[0]['text']!r}", file=sys.stderr)
PY
"$NEO" sweep "${M[@]}" --task patch --clean "$W/clean.json" --corrupt "$W/corrupt.json" --io "$(cat "$W/io")" --s "$(cat "$W/s")" \
	--mode noise --metric ld --space edges --out "$W/edges.csv" --top "${TOP:-12}"
