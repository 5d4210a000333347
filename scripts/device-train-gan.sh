#!/bin/bash
# Resume the issue-16 GAN runs (AN and the no-AN ablation, side by side) on a lent CUDA machine for $T seconds.
#
# Run on the device machine from the repository root, with the ignored folder .devrun carried along:
#   .devrun/fm/*.gz           Debian's dataset-fashion-mnist IDX files (/usr/share/datasets/fashion-mnist)
#   .devrun/an.pt, noan.pt    the resumable checkpoints (checkpoints/generate/{an,noan}/checkpoint.pt)
# Env: T (s, default 470), STEPS (schedule length, default 60000), B (batch, default 64), SNAP (snapshot every, default 1000),
#      EXTRA (more train flags).
# Writes to $OUT: {an,noan}.log, {an,noan}-ckpt.tar (checkpoint.pt), {an,noan}-snap.tar (EMA snapshots, every 1000).
# The runs of issue 16 used: T=465 (batch 64, constant LR, 1500/1250 -> 6500/8500), then
# B=256 STEPS=14000 EXTRA="--lr-decay-from 9000" T=525, then the same with T=300 (both at 14000).
# A timeout stops a run with SIGINT: at most --ckpt-every steps are lost, and the next call resumes.
nvidia-smi -L; python3 -c "import torch; print(torch.__version__)"
mkdir -p /usr/share/datasets/fashion-mnist && cp .devrun/fm/* /usr/share/datasets/fashion-mnist/
export TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 PYTHONUNBUFFERED=1   # our checkpoints hold argparse values (torch >= 2.6)
T=${T:-470}; EXTRA=${EXTRA:-}
mkdir -p r/gen-an r/gen-noan
cp .devrun/an.pt r/gen-an/checkpoint.pt; cp .devrun/noan.pt r/gen-noan/checkpoint.pt
C="--steps ${STEPS:-60000} --ch 32 --threads 4 --seed 0 --snapshot-every ${SNAP:-1000} --batch ${B:-64} --ckpt-every 500 --log-every 1000 --device cuda --resume $EXTRA"
timeout -s INT "$T" python3 -m trainer generate train --out r/gen-an $C > "$OUT/an.log" 2>&1 &
timeout -s INT "$T" python3 -m trainer generate train --out r/gen-noan --no-an $C > "$OUT/noan.log" 2>&1 &
wait
tail -n 3 "$OUT/an.log" "$OUT/noan.log"
for r in an noan; do
  tar cf "$OUT/$r-ckpt.tar" -C r "gen-$r/checkpoint.pt"
  [ -d "r/gen-$r/snapshots" ] && tar cf "$OUT/$r-snap.tar" -C r "gen-$r/snapshots"
done
ls -la "$OUT"
