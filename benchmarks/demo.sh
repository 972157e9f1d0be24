#!/usr/bin/env bash
# The neoscope tour on the bundled GPT-Neo (no --model anywhere: every command
# uses the model built into the binary, so nothing outside this repository is
# needed). `make demo` builds bin/neoscope and runs this; it ends by printing
# where the HTML report is.
#
#   bash benchmarks/demo.sh            # uses bin/neoscope (NEOSCOPE=... to override)
#
# Outputs go to out/demo/ (charts, tables) and out/report/ (the page). About a
# minute on 2 CPU cores.
set -euo pipefail

cd "$(dirname "$0")/.."
NEOSCOPE=${NEOSCOPE:-bin/neoscope}
OUT=${OUT:-out}
if [[ ! -x $NEOSCOPE ]]; then
	echo "demo: $NEOSCOPE not found; run 'make build' (or 'make demo') first" >&2
	exit 1
fi
mkdir -p "$OUT/demo"
# The demo owns $OUT/demo: its charts are replaced on every run (--force).
# Every command picks the GPU when one is usable, else the CPU (BACKEND=cpu to force it).
BACKEND=${BACKEND:-auto}
ns() { "$NEOSCOPE" "$@" --backend "$BACKEND"; }

bold='' plain=''
if [[ -t 1 ]]; then bold=$'\033[1m' plain=$'\033[0m'; fi
step=0
header() {
	step=$((step + 1))
	printf '\n%s== %d. %s%s\n$ neoscope %s\n' "$bold" "$step" "$1" "$plain" "$2"
}
SECONDS=0

# A few verses of the King James Bible, the bundled model's training text.
verses=$OUT/demo/verses.txt
# (No final newline: the lens' last position is then the final word.)
printf '%s' 'In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness was upon the face of the deep. And the Spirit of God moved upon the face of the waters. And God said, Let there be light: and there was light.' >"$verses"

header "The bundled model" "info"
ns info

header "Embedding geometry" "embed --plot $OUT/demo/embed.png"
ns embed --plot "$OUT/demo/embed.png" --force

header "Logit lens on Genesis 1:1-3" "lens --text $verses --positions -1 --topk 5 --plot $OUT/demo/lens.png"
ns lens --text "$verses" --positions -1 --topk 5 --plot "$OUT/demo/lens.png" --force

header "Induction heads on repeated random tokens" "induction --batch 16 --period 10 --top 4 --plot $OUT/demo/induction.png"
ns induction --batch 16 --period 10 --top 4 --plot "$OUT/demo/induction.png" --force | tee "$OUT/demo/induction.txt"
# The four heads ranked highest under "top induction heads" (lines "  1. L.H  score").
heads=$(awk '/^top induction heads/ {f = 1; next} f && NF == 0 {exit} f && n < 4 {print $2; n++}' "$OUT/demo/induction.txt" | paste -sd, -)
if [[ ! $heads =~ ^[0-9]+\.[0-9]+(,[0-9]+\.[0-9]+){3}$ ]]; then
	echo "demo: could not read the top 4 induction heads from the induction table (got '$heads')" >&2
	exit 1
fi

header "Ablating every head, attention layer and MLP on the verses" "ablate --text $verses --each all --plot $OUT/demo/ablate.png"
ns ablate --text "$verses" --each all --plot "$OUT/demo/ablate.png" --force

header "Sweep: every subset of the top 4 induction heads ($heads)" "sweep --task induction --batch 16 --period 10 --space 'subsets($heads)' --out $OUT/demo/sweep.csv"
ns sweep --task induction --batch 16 --period 10 --seed 1 --space "subsets($heads)" \
	--out "$OUT/demo/sweep.csv" --force --plot "$OUT/demo/sweep.png"

header "Indirect object identification" "ioi --n 32 --plot $OUT/demo/ioi.png"
ns ioi --n 32 --show 2 --plot "$OUT/demo/ioi.png" --force

header "Circuit discovery (ACDC) on the induction task" "circuit --task induction --threshold 0.05 --out $OUT/demo/circuit"
rm -rf "$OUT/demo/circuit" # a fresh run (a kept journal would need --resume)
ns circuit --task induction --batch 8 --period 10 --threshold 0.05 --out "$OUT/demo/circuit" >"$OUT/demo/circuit.txt"
head -3 "$OUT/demo/circuit.txt"
grep -E '^  (embed>mlp\.0|mlp\.0>1\.[0-9]\.v) ' "$OUT/demo/circuit.txt" || true
echo "(the circuit drawn: $OUT/demo/circuit/circuit.png)"

header "The report: every experiment on one page" "report --out $OUT/report --circuit $OUT/demo/circuit"
ns report --out "$OUT/report" --circuit "$OUT/demo/circuit"

printf '\n%sdone in %ds.%s Charts and tables: %s/demo/\nOpen the report: %s/report/index.html\n' "$bold" "$SECONDS" "$plain" "$OUT" "$OUT"
