#!/usr/bin/env bash
# One training slot on a rented or shared GPU box with small transfer limits (issue 3 item 5).
#
# Here (before the slot):
#   avacast bundle --pack PACK --out .carry/pack --cap-mb 60 --reserve-mb 38 [--shard 0/2]
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 \
#       -d .whl av tqdm                      # PyAV decodes the pack's H.264/FLAC there
#   copy the last run's files (ckpt shards or exported weights) into .carry/run
# There (the slot), from the repository root:
#   tools/gpu_slot.sh TASK MINUTES OUTDIR [extra `avacast train` arguments]
# It installs the carried wheels, trains with --resume for MINUTES (stopping cleanly with a checkpoint),
# writes checkpoints and exports in size-capped shards (default 16 MiB), and copies them to OUTDIR.
# Back here: put OUTDIR's files in RUN/ (ckpt/ shards go to RUN/ckpt/) and run the next slot.
set -euo pipefail
task=${1:?task: vae or generator}; minutes=${2:-9}; outdir=${3:?output folder}; shift 3 || true
shard_mb=${SHARD_MB:-16}
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
run=.carry/run
mkdir -p "$run" "$outdir"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
set +e
python3 -m engine.cli train "$task" --out "$run" --resume --time-budget-min "$minutes" \
  --shard-mb "$shard_mb" "$@" 2>&1 | tee "$outdir/train.log"
code=${PIPESTATUS[0]}
set -e
cp "$run"/log.csv "$outdir"/ 2>/dev/null || true
cp "$run"/*.safetensors "$outdir"/ 2>/dev/null || true
exit "$code"
