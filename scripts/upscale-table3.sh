#!/usr/bin/env bash
# The PONO paper's Table 3 on the x4 upscaler at equal budget (same steps, data, seed, crop, schedule):
# none / MS without PONO / PONO-MS / PONO-DMS one-channel / PONO-DMS multi-channel (1 conv 3x3).
# Two lanes of one thread each (this machine's 2 cores); each row writes runs/table3-<row>/.
#   bash scripts/upscale-table3.sh [STEPS]        (default 4000: the model card's table)
# Then: /usr/bin/python3 -m trainer upscale evaluate --split val --limit 20 row=runs/table3-row/best.pt ...
set -uo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-4000}
COMMON=(--steps "$STEPS" --batch 16 --crop 128 --nf 32 --n-mid 4 --n-lr 4 --clean-share 0.35 --light-share 0.65
  --lr 2e-4 --val-crops 48 --val-crop 192 --val-photos 20 --select photos --threads 1 --seed 0
  --log-every 500 --ckpt-every 250 --resume)
row() {  # name, extra args
  local name=$1; shift
  /usr/bin/python3 -m trainer upscale train --out "runs/table3-$name" "${COMMON[@]}" "$@" > "runs/table3-$name.log" 2>&1
}
mkdir -p runs
( row none --shortcut none; row ms --shortcut ms; row pono-dms-one --shortcut pono_dms --dms-channels one ) &
( row pono-ms --shortcut pono_ms; row pono-dms-multi --shortcut pono_dms --dms-channels multi ) &
wait
