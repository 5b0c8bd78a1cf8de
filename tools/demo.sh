#!/usr/bin/env bash
# The main job: train CEN (RefineNet, CEN ResNet-50, RGB + depth) on the
# embedded synthetic RGB-D scenes on the CPU, then evaluate it and print the
# per-stream and ensemble metrics. Creates or reuses the pinned environment.
# Extra arguments go to tools/train.py (e.g. --cfg-options ...).
set -euo pipefail
cd "$(dirname "$0")/.."
env=$(bash tools/env.sh)
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} NO_ALBUMENTATIONS_UPDATE=1
config=configs/cen/cen-refinenet_r50_synthetic-conjunction-rgbd.py
work_dir=${WORK_DIR:-work_dirs/demo}
"$env/bin/python" tools/train.py "$config" --work-dir "$work_dir" "$@"
ckpt=$(cat "$work_dir/last_checkpoint")
"$env/bin/python" tools/test.py "$config" "$ckpt" --work-dir "$work_dir/test" \
    2>&1 | tee "$work_dir/test.log"
echo "== CEN demo: ensemble (Ens) and single-stream (RGB, Depth) metrics =="
grep -Eo '(rgb/|depth/)?(aAcc|mIoU|mAcc): [0-9.]+' "$work_dir/test.log" | tail -9
