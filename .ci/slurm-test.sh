#!/usr/bin/env bash
# Sharded sweeps under a real Slurm: starts a private single-node Slurm
# (slurmctld + slurmd + munged on non-default ports, with their own munge key
# and socket, all killed at exit), submits a 4-task job array of one sweep on
# the tiny-neo fixture, merges the shards with `neoscope merge` and compares
# the result with the same sweep run unsharded. Exits non-zero on any
# mismatch or failure.
#
# Needs root to install slurm-wlm and munge (apt-get, skipped when present)
# and to run the daemons. Environment:
#   NEOSCOPE_BIN        the binary to test (default: bin/neoscope, built if missing)
#   NEOSCOPE_FIXTURES   the fixtures folder (default: ../shared/fixtures)
#   SLURM_TEST_PORT     slurmctld port; slurmd uses the next one (default: a free pair from a
#                       random start in 16817-17815, so two runs on one machine do not clash)
#   KEEP=1              keep the scratch folder (logs, outputs) for inspection
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${NEOSCOPE_BIN:-$ROOT/bin/neoscope}
FIX=${NEOSCOPE_FIXTURES:-$ROOT/../shared/fixtures}/tiny-neo
# A port is taken when something accepts a connection on it.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PORT=${SLURM_TEST_PORT:-}
if [ -z "$PORT" ]; then
	PORT=$((16817 + 2 * (RANDOM % 500)))
	while ! port_free "$PORT" || ! port_free $((PORT + 1)); do PORT=$((PORT + 2)); done
fi
SPACE='pairs(heads) | singles(attn) | singles(mlp) | none'
say() { echo "slurm-test: $*" >&2; }

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
	say "installing slurm-wlm and munge"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq && apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi
if [ ! -x "$BIN" ]; then
	say "building $BIN"
	(cd "$ROOT" && go build -o "$BIN" ./cmd/neoscope)
fi
[ -f "$FIX/config.json" ] || { say "no fixture at $FIX (set NEOSCOPE_FIXTURES)"; exit 1; }

DIR=$(mktemp -d /tmp/neoscope-slurm.XXXXXX)
chmod 755 "$DIR"
PIDS=()
cleanup() {
	local rc=$?
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ "${KEEP:-}" = 1 ] || [ $rc -ne 0 ]; then
		say "scratch folder kept: $DIR"
		[ $rc -ne 0 ] && tail -n 20 "$DIR"/log/*.log 2>/dev/null >&2 || true
	else
		rm -rf "$DIR"
	fi
	exit $rc
}
trap cleanup EXIT
mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/out"

# munge: a key and socket of our own, so a system munged is not disturbed.
if command -v mungekey >/dev/null; then
	mungekey -c -k "$DIR/munge.key" -f
else
	dd if=/dev/urandom of="$DIR/munge.key" bs=1024 count=1 2>/dev/null
fi
chmod 400 "$DIR/munge.key"
munged -F --force --socket="$DIR/munge.sock" --key-file="$DIR/munge.key" \
	--pid-file="$DIR/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge.seed" 2>"$DIR/log/munged.out" &
PIDS+=($!)
for _ in $(seq 50); do [ -S "$DIR/munge.sock" ] && break; sleep 0.1; done
[ -S "$DIR/munge.sock" ] || { say "munged did not start"; exit 1; }

HOST=$(hostname -s)
cat >"$DIR/slurm.conf" <<CONF
ClusterName=nstest
SlurmctldHost=$HOST
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$DIR/munge.sock
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$DIR/slurm.conf
slurmctld -D -i >"$DIR/log/slurmctld.out" 2>&1 &
PIDS+=($!)
slurmd -D >"$DIR/log/slurmd.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
	state=$(sinfo -h -N -o %t 2>/dev/null | head -1 || true)
	[ "$state" = idle ] && break
	sleep 0.2
done
[ "$state" = idle ] || { say "node not idle after 20 s (state '$state')"; exit 1; }
say "slurm up on $HOST (ports $PORT, $((PORT + 1)))"

python3 -c 'import json,sys; json.dump(json.load(open(sys.argv[1]))["tokens"], open(sys.argv[2], "w"))' \
	"$FIX/cases.json" "$DIR/tokens.json"

# The job array: each task runs its shard, taken from SLURM_ARRAY_TASK_ID/COUNT.
cat >"$DIR/job.sh" <<JOB
#!/bin/bash
exec "$BIN" sweep --model "$FIX" --tokens "$DIR/tokens.json" --threads 1 \\
	--space '$SPACE' --out "$DIR/out/part.\$SLURM_ARRAY_TASK_ID.csv" --resume
JOB
chmod +x "$DIR/job.sh"
start=$(date +%s.%N)
sbatch --wait --array=0-3 -o "$DIR/log/task_%a.txt" -J nstest "$DIR/job.sh" >/dev/null ||
	{ say "job array failed"; cat "$DIR"/log/task_*.txt >&2; exit 1; }
say "4-task array done in $(echo "$(date +%s.%N) - $start" | bc) s"
for i in 0 1 2 3; do
	grep -q "\"shard\": $i," "$DIR/out/part.$i.csv.meta.json" && grep -q '"shards": 4,' "$DIR/out/part.$i.csv.meta.json" ||
		{ say "task $i did not run shard $i/4"; cat "$DIR/out/part.$i.csv.meta.json" >&2; exit 1; }
done

NEOSCOPE_QUIET=1 "$BIN" merge "$DIR/out/merged.csv" "$DIR"/out/part.{0,1,2,3}.csv
NEOSCOPE_QUIET=1 "$BIN" sweep --model "$FIX" --tokens "$DIR/tokens.json" --threads 1 \
	--space "$SPACE" --out "$DIR/out/whole.csv" >/dev/null

# The same configurations in the same order, the same numbers (to float32
# rounding: shards batch different configurations together).
if ! cmp -s <(cut -d, -f1,2,5 "$DIR/out/merged.csv") <(cut -d, -f1,2,5 "$DIR/out/whole.csv"); then
	say "MISMATCH: merged shards and the unsharded run hold different configurations"
	diff <(cut -d, -f1,2,5 "$DIR/out/merged.csv") <(cut -d, -f1,2,5 "$DIR/out/whole.csv") | head >&2
	exit 1
fi
worst=$(paste -d, "$DIR/out/merged.csv" "$DIR/out/whole.csv" | awk -F, 'NR > 1 { d = $3 - $8; if (d < 0) d = -d; if (d > m) m = d } END { printf "%g", m + 0 }')
rows=$(($(wc -l <"$DIR/out/whole.csv") - 1))
if awk -v w="$worst" 'BEGIN { exit !(w <= 2e-5) }'; then
	say "OK: $rows configurations, merged 4 shards = unsharded run (max |diff| $worst)"
else
	say "MISMATCH: max |loss diff| $worst > 2e-5"
	exit 1
fi

# examples/sweep.sbatch as users run it, shrunk to this node: 4 tasks of
# singles(heads) on the induction task, then its dependent merge job.
mkdir -p "$DIR/ex"
NEOSCOPE=$BIN MODEL=$FIX SPACE='singles(heads)' OUTDIR=$DIR/ex \
	sbatch --wait --array=0-3 --cpus-per-task=1 --mem=100M -o "$DIR/log/ex_%a.txt" "$ROOT/examples/sweep.sbatch" >/dev/null ||
	{ say "examples/sweep.sbatch failed"; cat "$DIR"/log/ex_*.txt >&2; exit 1; }
for _ in $(seq 150); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.2; done
if [ -f "$DIR/ex/all.parquet" ] && grep -q '"count": 16,' "$DIR/ex/all.parquet.meta.json" && grep -q '"complete": true' "$DIR/ex/all.parquet.meta.json"; then
	say "OK: examples/sweep.sbatch: 4 shards and the dependent merge wrote all.parquet (16 configurations)"
else
	say "examples/sweep.sbatch: no complete merged all.parquet"
	cat "$DIR"/log/ex_*.txt "$DIR"/ex/merge_*.log >&2 2>/dev/null || true
	exit 1
fi
