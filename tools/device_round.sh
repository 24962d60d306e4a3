#!/usr/bin/env bash
# One training round through the `device` tool's chained calls (docs/TRAINING.md, session 4): each call
# carries under 64 MiB and brings back under 64 MiB, so data, wheels and inits travel in separate calls
# and wait in /root/keep while the machine stays warm (30 s between calls, 30 minutes per machine).
# Run each step from the repository root on the device, in this order (one `run` call each):
#   stage DIR...          copy carried folders (packs, inits, renders) to /root/keep; install carried
#                         wheels (.whl/*.whl: PyAV; opencv-python-headless for eval) into /root/keep/site
#   vae MIN INIT [args]   train the VAE on /root/keep/pack from INIT -> /root/keep/vrun; a decoder-only round
#                         (round 6, keeps the latents and the generator valid): --freeze-encoder --batch 4
#                         --lr 1e-4 --clip-frames-start 17 --clip-frames-end 17 --total-steps 4000 --resume,
#                         3.8 steps/s on an H100. Run VAE rounds alone: three at once ran 0.76 steps/s each.
#                         Round 7 (16 latent channels, from a 32-channel VAE): --latent-channels 16
#                         --init-skip-shapes, then 25-frame clips (1.7 steps/s, 41 GiB). Loading the pack takes
#                         ~1.5 min outside --time-budget-min: keep MIN <= 8 in a 10-minute call. The export is
#                         copied to $OUT every call (a machine given back takes /root/keep with it)
#   gen MIN VAE INIT [args]  latents of /root/keep/pack (5-frame context) + generator from INIT -> /root/keep/grun;
#                         on the whole split: --mute-clips tools/weak_sync_clips.txt --video-only-share 0.3
#   multi MIN LATENTS INIT NAME:FLAGS...  several generator runs at once on one GPU (round 5: three runs
#                         at 3.3-3.9 steps/s each vs 6.2 alone) from a latent cache -> /root/keep/NAME
#   model NAME VAE GEN    release VAE + GEN as /root/keep/NAME/avacast-base (6 shards)
#   eval NAME [ARGS]      avacast eval on /root/keep/valpack (12 clips x 8 s) -> $OUT/NAME.json; ARGS e.g.
#                         --generation-only (~1 min instead of ~2.5), --anchor on; --renders 2 --save-renders
#                         /root/keep/r_NAME --renders-only (no opencv wheel needed; `tarback`, then score here
#                         with --from-renders and face landmarks)
#   render NAME AUDIO IMG...  60 s renders -> /root/keep/NAME_<image>.mp4
#   fetch FILE...         copy files into $OUT (mind the 8-file / 64 MiB return limit)
#   start NAME TASK [args]  `avacast train TASK --out /root/keep/NAME args` in its own process session: it
#                         outlives the call (the device ends a call's other processes), so one run spans
#                         several calls without reloading its pack; stage the PyAV wheel first (the pack's
#                         video). Session 11: a decoder-only adversarial VAE run 3.4 steps/s alone, two at once
#                         1.06 steps/s each (run them alone)
#   wait SECONDS NAME...  until those runs end or SECONDS pass (keep it under the call's limit): their last log
#                         lines, log.csv and exports (NAME/*.safetensors, mind the 8-file limit) into $OUT
#   tarback DIR...        each folder as one tar in $OUT, e.g. the renders of `eval NAME --save-renders
#                         /root/keep/r_NAME` (24 MP4s + 12 VAE round trips, ~7 MiB), re-scored elsewhere with
#                         `avacast eval ... --from-renders` (face landmarks: docs/TRAINING.md round 10)
# A generator export from `gen` holds the VAE too: `python tools/strip_vae.py IN OUT` makes it 46 MiB.
set -euo pipefail
K=${AVACAST_KEEP:-/root/keep}  # survives between calls while the machine is warm
export PYTHONPATH=$K/site:$PWD
step=${1:?step}; shift
case $step in
  stage)
    mkdir -p $K/site
    for d in "$@"; do cp -r "$d" $K/; done
    if compgen -G ".whl/*.whl" >/dev/null; then python3 -m pip install -q --no-index --no-deps --target $K/site .whl/*.whl; fi
    ls $K ;;
  vae)
    python3 -m engine.cli train vae --preset base --pack $K/pack --out $K/vrun --init "$2" --time-budget-min "$1" \
      --log-every 100 --shard-mb 15 "${@:3}" 2>&1 | grep -v Warning | tail -12
    cp $K/vrun/vae*.safetensors "$OUT"/ ;;
  gen)
    python3 -m engine.cli train generator --preset base --pack $K/pack --vae "$2" --init "$3" --out $K/grun \
      --save-latents $K/latents/cache.safetensors --time-budget-min "$1" --log-every 200 --shard-mb 15 "${@:4}" \
      2>&1 | grep -v Warning | tail -12 ;;
  multi)
    min=$1 lat=$2 init=$3; shift 3
    for spec in "$@"; do
      python3 -m engine.cli train generator --preset base --latents "$lat" --init "$init" --out "$K/${spec%%:*}" \
        --time-budget-min "$min" --log-every 500 --shard-mb 15 ${spec#*:} > "$K/${spec%%:*}.log" 2>&1 &
    done
    wait
    for spec in "$@"; do echo "== ${spec%%:*}"; grep -v Warning "$K/${spec%%:*}.log" | tail -2; done ;;
  model)
    python3 -m engine.cli release --vae "$2" --generator "$3" --out $K/$1/avacast-base.safetensors --shard-mb 15 | tail -1 ;;
  eval)
    python3 -m engine.cli eval --weights $K/$1/avacast-base-00001-of-00006.safetensors --pack $K/valpack --split val \
      --device cuda --max-clips 12 --seconds 8 "${@:2}" --out "$OUT/$1.json" > "$OUT/$1.log" 2>&1
    tail -14 "$OUT/$1.log" ;;
  render)
    name=$1 audio=$2; shift 2
    for img in "$@"; do
      b=$(basename "$img"); b=${b%%.*}
      python3 -m engine.cli render --ref "$img" --audio "$audio" --weights $K/$name/avacast-base-00001-of-00006.safetensors \
        --device cuda --out $K/${name}_$b.mp4 2>&1 | tail -1
    done ;;
  start)
    name=$1 task=$2; shift 2
    setsid nohup python3 -m engine.cli train "$task" --out "$K/$name" "$@" > "$K/$name.log" 2>&1 < /dev/null &
    echo $! > "$K/$name.pid"; echo "started $name (pid $(cat "$K/$name.pid"))" ;;
  wait)
    sec=$1; shift; t0=$SECONDS
    while (( SECONDS - t0 < sec )); do
      alive=0; for n in "$@"; do kill -0 "$(cat "$K/$n.pid")" 2>/dev/null && alive=1; done
      (( alive )) || break; sleep 15
    done
    for n in "$@"; do
      echo "== $n"; grep -v Warning "$K/$n.log" | tail -3 | cut -c1-400
      mkdir -p "$OUT/$n"; cp "$K/$n/log.csv" "$K/$n"/*.safetensors "$OUT/$n/" 2>/dev/null || true
    done ;;
  fetch)
    for f in "$@"; do cp "$f" "$OUT"/; done; ls -la "$OUT" ;;
  tarback)
    for d in "$@"; do tar -C "$(dirname "$d")" -cf "$OUT/$(basename "$d").tar" "$(basename "$d")"; done; ls -la "$OUT" ;;
  *) echo "unknown step $step" >&2; exit 2 ;;
esac
