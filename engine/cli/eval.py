"""`avacast eval`: VAE reconstruction and generation quality on a pack's held-out clips (issue 3 item 4).

    avacast eval --weights W.safetensors --pack PACK --split val --out report.json
    avacast eval --weights M.safetensors --pack PACK --long-audio speech.wav --long-seconds 60 --out r.json
    avacast eval --weights M.safetensors --pack PACK --generation-only --renders 12 --portraits P/*.png --out r.json

Prints a markdown table (paste into resources/MODEL_CARD.md) and writes the full report, per-clip rows
included, as JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.cli import UserError
from engine.cli.common import add_hold_args, crop_portrait, hold_overrides


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="measure VAE reconstruction and generation quality on a pack",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", required=True, help="model, generator or VAE export (.safetensors; first shard)")
    p.add_argument("--pack", required=True, help="pack written by `avacast prepare`")
    p.add_argument("--split", default="val", choices=["train", "val"])
    p.add_argument("--max-clips", type=int, metavar="N", help="evaluate at most N clips (each part)")
    p.add_argument("--seconds", type=float, default=10.0, metavar="S",
                   help="seconds of each clip used: VAE windows tile them, generation renders them (default 10)")
    p.add_argument("--window", type=int, default=33, metavar="F", help="VAE window in frames, 4k+1 (default 33)")
    p.add_argument("--long-audio", metavar="FILE", help="speech for a long render from one portrait (drift)")
    p.add_argument("--long-seconds", type=float, default=60.0, metavar="S", help="length of the long render")
    p.add_argument("--portrait", metavar="IMG", help="portrait for the long render, cropped around its largest face "
                   "as the app and `avacast render` do (default: first eval clip's first frame)")
    p.add_argument("--portraits", nargs="+", metavar="IMG",
                   help="generation: render k of clip i starts from portrait (i + k) mod N (each cropped around "
                        "its largest face) instead of from the clip's own first frame: unseen faces driven by the "
                        "clips' speech (--renders N: every clip drives every portrait); likeness is then measured "
                        "to the portrait")
    p.add_argument("--driver", metavar="IMG|own",
                   help="generation: the generator animates this face (cropped like the portraits) and its motion "
                        "is moved onto the portrait; own (with --portraits): each clip's first frame")
    p.add_argument("--no-crop", action="store_true",
                   help="use --portrait/--portraits as given (already cropped, e.g. on a machine without the face "
                        "detector)")
    p.add_argument("--history-noise", type=float, metavar="T",
                   help="generation: noise level of the committed history (default: the model's)")
    p.add_argument("--cfg", type=float, metavar="S", help="generation: audio guidance scale (default: the model's)")
    p.add_argument("--steps", type=int, metavar="N", help="generation: sampler steps per block (default: the model's)")
    p.add_argument("--anchor", choices=["on", "off"],
                   help="generation: start the stream on the portrait's own latent (default: the model's)")
    add_hold_args(p, "generation: ")
    p.add_argument("--renders", type=int, default=1, metavar="N",
                   help="generation: renders per clip with seeds SEED..SEED+N-1, metrics averaged (one render's "
                        "lip-sync score is mostly sampling noise; default 1)")
    saved = p.add_mutually_exclusive_group()
    saved.add_argument("--save-renders", metavar="DIR",
                       help="generation: also write each render to DIR as MP4 (CLIP_seedN.mp4, with its audio; "
                            "the long render as long_seedN.mp4)")
    saved.add_argument("--from-renders", metavar="DIR",
                       help="generation: score the renders a --save-renders eval wrote instead of rendering "
                            "(same clips, seconds, seed and renders; e.g. with face landmarks on another machine)")
    p.add_argument("--renders-only", action="store_true",
                   help="with --save-renders: write the generation renders and round trips without scoring them "
                        "(a GPU machine without the face detector); score them later with --from-renders")
    p.add_argument("--no-ceiling", action="store_true",
                   help="generation: skip the real clips' VAE round trip (the lip-sync ceiling; minutes per clip "
                        "on a CPU)")
    p.add_argument("--generation-only", action="store_true",
                   help="skip the VAE windows (most of the time of a CPU eval): lip sync only (a VAE export: its "
                        "ceiling alone)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="the model's number format (default auto: bf16 on a GPU, fp32 on a CPU, as the app runs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--out", required=True, help="report .json")


def run(args: argparse.Namespace) -> int:
    from engine.io.checkpoint import CheckpointError
    from engine.io.media import MediaError, read_audio
    from engine.train.evaluate import EvalConfig, evaluate, json_ready
    from engine.train.pack import Pack, PackError

    out = Path(args.out)
    if out.suffix.lower() != ".json":
        raise UserError(f"{out}: the report must be a .json file")
    if args.renders_only and args.long_audio:
        raise UserError("--renders-only saves the clips' renders; the long render (--long-audio) needs scoring")
    try:
        cfg = EvalConfig(split=args.split, max_clips=args.max_clips, seconds=args.seconds, window=args.window,
                         seed=args.seed, long_seconds=args.long_seconds, history_noise=args.history_noise,
                         guidance=args.cfg, steps=args.steps,
                         anchor_first=None if args.anchor is None else args.anchor == "on",
                         vae=not args.generation_only, renders=args.renders,
                         renders_dir=args.save_renders or args.from_renders,
                         reuse_renders=args.from_renders is not None, ceiling=not args.no_ceiling,
                         precision=args.precision, score=not args.renders_only, driver_own=args.driver == "own",
                         **hold_overrides(args))
        pack = Pack(args.pack)
        long_audio = read_audio(args.long_audio) if args.long_audio else None
        portrait = _portrait(args.portrait, args.no_crop) if args.portrait else None
        portraits = [(Path(f).stem, _portrait(f, args.no_crop)) for f in args.portraits or []]
        if args.driver == "own" and not portraits:
            raise ValueError("--driver own moves --portraits by the clips' own faces: give the portraits too")
        driver = _portrait(args.driver, args.no_crop) if args.driver and args.driver != "own" else None
        if len({name for name, _ in portraits}) < len(portraits):
            raise ValueError("--portraits: two files with the same name")
    except (PackError, MediaError, ValueError) as e:
        raise UserError(str(e).splitlines()[0]) from None
    try:
        report = evaluate(args.weights, pack, cfg, args.device, long_audio, portrait,
                          progress=lambda s: print(s, file=sys.stderr), portraits=portraits, driver=driver)
    except (CheckpointError, PackError, MediaError, RuntimeError, ValueError) as e:
        raise UserError(str(e).splitlines()[0]) from None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(json_ready(report), indent=1))
    except OSError as e:
        raise UserError(f"{out}: cannot write ({e.strerror})") from None
    print(markdown(report))
    print(f"\nwrote {out}")
    return 0


def _portrait(path: str, as_given: bool):
    from engine.io.media import read_image

    image = read_image(path)
    return image if as_given else crop_portrait(image, path, "avacast eval")


def _f(x, fmt: str = ".3f") -> str:
    return "n/a" if x is None or x != x else format(x, fmt)


def _vae_lines(vae: dict, counts: list[int]) -> list[str]:
    v, clips = vae["mean"], vae["clips"]
    lines = [f"VAE: {len(clips)} clips, {sum(r['windows'] for r in clips)} windows of "
             f"{'/'.join(str(w) for w in sorted({r['window_frames'] for r in clips}))} frames",
             "", "| VAE references | PSNR (dB) | SSIM |", "|---|---|---|"]
    lines += [f"| {k} | {_f(v.get(f'psnr_{k}'), '.2f')} | {_f(v.get(f'ssim_{k}'))} |" for k in counts]
    if v.get("psnr_swap") is not None:  # near the 1-reference row: the appearance is in the latent
        lines += [f"| 1, of another person | {_f(v['psnr_swap'], '.2f')} | {_f(v.get('ssim_swap'))} |"]
    if v.get("stream_full_psnr") is not None:
        lines += ["", "VAE as one continuous stream (frame 0 as reference; PSNR after the first second): "
                  f"whole-clip encode {_f(v['stream_full_psnr'], '.2f')} dB, 5-frame-context encode "
                  f"(the generator's training latents) {_f(v['stream_short_psnr'], '.2f')} dB"]
    return lines


def _portrait_lines(faces: dict) -> list[str]:
    rows = sorted(faces.items(), key=lambda kv: -(kv[1]["lipsync"] if kv[1]["lipsync"] is not None else -9))
    return ["", "| portrait | renders | lip sync | mouth in silence / speech | in pauses / speech | mouth motion | "
                "PSNR to it after 1 s (dB) |", "|---|---|---|---|---|---|---|"] + [
        f"| {name} | {m['renders']} | {_f(m['lipsync'])} | {_f(m['silence_opening'], '.2f')} | "
        f"{_f(m.get('pause_opening'), '.2f')} | {_f(m.get('mouth_motion'), '.4f')} | {_f(m['psnr_after_1s'], '.2f')} |"
        for name, m in rows]


def _driven_by(config: dict) -> str:
    """How the renders were moved (Session driver), for the generation table's title."""
    if config.get("driver") == "own":
        return ", moved by each clip's own face"
    if config.get("driver"):
        return ", moved by a driver face"
    if config.get("model_driver") and (config.get("sampler") or {}).get("use_driver", True):
        return ", moved by the model's driver face"
    return ""


def markdown(report: dict) -> str:
    """The report as markdown tables (VAE, generation, long render) plus its notes."""
    lines = [f"Eval of `{Path(report['weights']).name}` ({report['kind']}) on {report['split']} split of "
             f"`{Path(report['pack']).name}`, {report['resolution']}²"]
    if report["vae"]:
        lines += _vae_lines(report["vae"], report["config"]["ref_counts"])
    g = report.get("generation")
    if g:
        m = g["mean"]
        faces = report["config"].get("portraits")
        whose = (f", from {len(faces)} other portraits" if faces else "") + _driven_by(report["config"])
        lines += ["", f"Generation ({len(g['clips'])} clips{whose}, mouth opening by "
                      f"{report.get('mouth_opening_method')})", "",
                  "| metric | generated | real |", "|---|---|---|",
                  f"| lip-sync score (corr., lag ±2) | {_f(m['gen_lipsync'])} | {_f(m['real_lipsync'])} |",
                  f"| lip-sync generated / real | {_f(m.get('lipsync_ratio_of_means'), '.0%')} | |",
                  f"| mouth opening in silence (÷ speech) | {_f(m['gen_silence_opening'])} | "
                  f"{_f(m['real_silence_opening'])} |",
                  f"| mouth opening in pauses of 320 ms or more (÷ speech) | {_f(m.get('gen_pause_opening'))} | "
                  f"{_f(m.get('real_pause_opening'))} |",
                  f"| mouth motion (std of the opening) | {_f(m.get('gen_mouth_motion'), '.4f')} | "
                  f"{_f(m.get('real_mouth_motion'), '.4f')} |",
                  f"| frame-to-frame change (stability) | {_f(m['gen_stability'], '.4f')} | "
                  f"{_f(m['real_stability'], '.4f')} |"]
        if m.get("gen_psnr_after_1s") is not None and faces:
            lines += [f"| PSNR to the portrait, first second / after it (dB) | "
                      f"{_f(m.get('gen_psnr_first_s'), '.2f')} / {_f(m['gen_psnr_after_1s'], '.2f')} | |"]
        elif m.get("gen_psnr_after_1s") is not None:
            lines += [f"| PSNR to the real clip, first second / after it (dB) | "
                      f"{_f(m.get('gen_psnr_first_s'), '.2f')} / {_f(m['gen_psnr_after_1s'], '.2f')} | "
                      f"still portrait: - / {_f(m.get('still_psnr_after_1s'), '.2f')} |"]
        if g.get("portraits"):
            lines += _portrait_lines(g["portraits"])
    c = report.get("ceiling")
    if c:
        m = c["mean"]
        lines += ["", f"Lip-sync ceiling: the real clips through the VAE alone score {_f(m['vae_lipsync'])} "
                      f"(real {_f(m['real_lipsync'])}, {len(c['clips'])} clips, mouth opening by "
                      f"{report.get('mouth_opening_method')}); no generator on this VAE can do better"]
        if m.get("vae_mouth_gain") is not None:
            lines += [f"Its mouth moves {_f(m['vae_mouth_gain'], '.2f')} of the real amplitude (correlation "
                      f"{_f(m['vae_mouth_corr'], '.2f')} with the real opening, frame by frame)"]
    lg = report.get("long")
    if lg:
        lines += ["", f"Long render ({lg['seconds']:g} s), first vs last {lg['span_s']:g} s", "",
                  "| metric | first | last |", "|---|---|---|",
                  f"| frame-to-frame change | {_f(lg['stability_first'], '.4f')} | {_f(lg['stability_last'], '.4f')} |",
                  f"| distance to portrait | {_f(lg['to_portrait_first'], '.4f')} | "
                  f"{_f(lg['to_portrait_last'], '.4f')} |"]
    lines += [f"\nNote: {s}" for s in report.get("notes", [])]
    return "\n".join(lines)
