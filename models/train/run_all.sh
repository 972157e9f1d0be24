#!/bin/sh
# Reproduces models/neo-tiny from scratch (Debian bookworm: bible-kjv, fortunes, fortunes-min,
# jargon-text, python3-regex, python3-torch 1.13, python3-numpy; Go for the IOI prompts). One CPU
# thread.
# The run was done in phases (resumed from checkpoints, changing the data mixture); the phase
# boundaries are the checkpoint steps below. Resuming restores the model, AdamW state and the
# numpy data RNG, so the phases chain exactly.
set -e
cd "$(dirname "$0")"
/usr/bin/python3 prepare_data.py --out data --tok-out ../neo-tiny --vocab 4096
COMMON="--data data --ckpt ckpt/ckpt.pt --layers 4 --d 128 --heads 4 --ctx 128 --window 32 --vocab 4096 --batch 16 --warmup 150 --seed 0 --threads 1 --resume"
rm -f ckpt/ckpt.pt
# phase 1: 30% repeated random tokens, 10% repeated text spans, context 128
/usr/bin/python3 train.py $COMMON --steps 4500 --lr 1.5e-3 --frac-rand 0.3 --frac-textrep 0.1 --stop-step 1083
# phase 2: more copying data
/usr/bin/python3 train.py $COMMON --steps 3600 --lr 1.5e-3 --frac-rand 0.5 --frac-textrep 0.15 --stop-step 1702
# phase 3: 70% copying data on 64-token sequences (induction heads form here, ~step 2100)
/usr/bin/python3 train.py $COMMON --seq-len 64 --steps 3300 --lr 2.5e-3 --frac-rand 0.7 --frac-textrep 0.15 --stop-step 2994
# phase 4: back to 30% copying data, context 128, low learning rate (recovers text loss)
/usr/bin/python3 train.py $COMMON --steps 4600 --lr 1e-3 --frac-rand 0.3 --frac-textrep 0.1 --stop-step 4600
# phase 4's model, F16 (the bundled model before IOI training, as released up to commit 8dec549)
/usr/bin/python3 export.py --ckpt ckpt/ckpt.pt --data data --out ckpt/phase4
# phase 5: from phase 4's F16 weights with a fresh AdamW, 40% IOI-style sentences (ioi_data.py,
# answer loss x4); IOI measured on neoscope's own prompts, whose templates are held out
(cd ../.. && go run ./models/train/ioiprompts --model models/neo-tiny --n 200 --seed 1) > ckpt/ioi_eval.json
rm -f ckpt/ckpt.pt
/usr/bin/python3 train.py $COMMON --init ckpt/phase4/model.safetensors --ioi-eval ckpt/ioi_eval.json --steps 2000 --lr 1e-3 --warmup 100 --frac-rand 0.2 --frac-textrep 0.1 --frac-ioi 0.4 --ioi-weight 4 --eval-every 100
/usr/bin/python3 export.py --ckpt ckpt/ckpt.pt --data data --out ../neo-tiny --ioi-eval ckpt/ioi_eval.json
