"""`avacast prepare --src DIR [--src DIR ...] --out PACK [--size 256] [--fps 25] [--max-clip-s 10]`.

`add_parser(subparsers)` registers the sub-command on the main `avacast` parser;
`python -m engine.cli.prepare ...` runs it alone.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--src", action="append", required=True, metavar="DIR",
                   help="folder (searched recursively) or video file; repeatable")
    p.add_argument("--out", required=True, metavar="PACK", help="pack folder to create")
    p.add_argument("--size", type=int, default=256, help="square crop size in pixels (default 256)")
    p.add_argument("--fps", type=int, default=25, help="output frame rate (default 25)")
    p.add_argument("--max-clip-s", type=float, default=10.0, help="longest clip in seconds (default 10)")
    p.add_argument("--min-clip-s", type=float, default=1.0, help="shortest clip in seconds (default 1)")
    p.add_argument("--crf", type=int, default=18, help="H.264 quality, lower is better (default 18)")
    p.add_argument("--val-percent", type=float, default=10.0,
                   help="share of identities held out for validation (default 10)")
    p.add_argument("--audio-format", choices=("flac", "wav"), default="flac")
    p.add_argument("--identity-regex", default=None,
                   help="regex on the file stem; its first group is the identity")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("prepare", help="videos -> face-cropped training pack",
                              description=__doc__.splitlines()[0])
    add_arguments(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from engine.train.prepare import PrepareConfig, prepare

    try:
        cfg = PrepareConfig(size=args.size, fps=args.fps, max_clip_s=args.max_clip_s,
                            min_clip_s=args.min_clip_s, crf=args.crf, val_percent=args.val_percent,
                            audio_ext="." + args.audio_format, identity_regex=args.identity_regex)
        index = prepare(args.src, Path(args.out), cfg, progress=not args.quiet)
    except ValueError as e:  # bad arguments or paths: one line, no traceback
        print(f"avacast prepare: error: {e}", file=sys.stderr)
        return 2
    print_report(index, Path(args.out))
    return 0 if index["clips"] else 1


def print_report(index: dict, out: Path) -> None:
    s = index["stats"]
    size_mb = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 2**20
    for f in index["files"]:
        if f["status"] == "skipped":
            print(f"  skipped  {Path(f['source']).name}: {f['reason']}")
        elif f["reason"]:
            print(f"  note     {Path(f['source']).name}: {f['reason']}")
    print(f"{s['kept_files']}/{s['files']} files kept -> {s['clips']} clips, {s['minutes']} min "
          f"({s['minutes_with_usable_audio']} min with usable audio), {s['identities']} identities, "
          f"{s['val_clips']} val clips; {size_mb:.1f} MiB in {out}; {s['wall_s']} s")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(prog="avacast prepare", description=__doc__.splitlines()[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
