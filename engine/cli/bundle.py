"""`avacast bundle`: a size-capped shard of a pack for a GPU slot with small transfer limits (issue 3.5).

Clips are split into N shards by a hash of their id (stable across runs); within the chosen shard, clips
with usable audio come first, then video-only clips, until the cap (minus what else travels) is reached.
The result is a pack itself. tools/gpu_slot.sh documents the whole slot: bundle, carry, train, bring back.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

from engine.cli import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("bundle", help="copy a size-capped shard of a pack (for remote GPU slots)")
    p.add_argument("--pack", required=True)
    p.add_argument("--out", required=True, help="new pack folder (replaced if it exists)")
    p.add_argument("--cap-mb", type=float, default=60.0, help="total size of everything that travels")
    p.add_argument("--reserve-mb", type=float, default=0.0, help="room kept for code, wheels, checkpoints")
    p.add_argument("--shard", default="0/1", help="K/N: take shard K of N (default: all clips)")
    p.add_argument("--audio-only", action="store_true", help="only clips with usable audio (generator)")
    p.add_argument("--split", default="train", choices=["train", "val"],
                   help="which split's clips (default train; val: a compact pack for `avacast eval`)")


def shard_of(clip_id: str, n: int) -> int:
    return int(hashlib.sha1(clip_id.encode()).hexdigest(), 16) % n


def run(args: argparse.Namespace) -> int:
    from engine.train.pack import INDEX, Pack, PackError

    try:
        pack = Pack(args.pack)
        k, n = (int(x) for x in args.shard.split("/"))
        if not 0 <= k < n:
            raise ValueError
    except PackError as e:
        raise UserError(str(e)) from None
    except ValueError:
        raise UserError(f"--shard must be K/N with 0 <= K < N, got {args.shard!r}") from None
    budget = (args.cap_mb - args.reserve_mb) * 2**20
    clips = [c for c in pack.clips(args.split) if shard_of(c.id, n) == k and (c.audio_usable or not args.audio_only)]
    clips.sort(key=lambda c: (not c.audio_usable, c.id))
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    (out / "clips").mkdir(parents=True)
    used, kept = 0, []
    for c in clips:
        files = [c.video] + ([c.audio] if c.audio else [])
        size = sum((pack.root / f).stat().st_size for f in files)
        if used + size > budget:
            continue
        for f in files:
            shutil.copy2(pack.root / f, out / f)
        used += size
        kept.append(c.id)
    index = dict(pack.index)
    index["clips"] = [c for c in pack.index["clips"] if c["id"] in set(kept)]
    index["bundle"] = {"from": str(pack.root), "shard": args.shard, "cap_mb": args.cap_mb}
    (out / INDEX).write_text(json.dumps(index, indent=1))
    audio = sum(1 for c in clips if c.id in set(kept) and c.audio_usable)
    print(f"{out}: {len(kept)} of {len(clips)} clips ({audio} with usable audio), {used / 2**20:.1f} MiB")
    return 0
