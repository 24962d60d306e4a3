"""`avacast phonetic corpus|eval`: the synthetic speech corpus of the audio pretext task, and its measures
(issue 4; training is `avacast train audio`).

    avacast phonetic corpus --corpus DIR --minutes 40
    avacast phonetic eval --weights RUN/audio.safetensors --corpus DIR --real ../shared/data/audio_only --out r.json
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from engine.cli import UserError

log = logging.getLogger(__name__)
AUDIO_EXT = (".wav", ".m4a", ".mp3", ".flac", ".ogg")


def add_parser(sub) -> None:
    p = sub.add_parser("phonetic", help="synthetic phoneme corpus (espeak-ng) and audio-encoder measures",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("action", choices=["corpus", "eval"])
    p.add_argument("--corpus", required=True, help="corpus folder")
    p.add_argument("--minutes", type=float, default=30.0, help="corpus: minutes of training speech")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weights", help="eval: an `avacast train audio` export (RUN/audio.safetensors)")
    p.add_argument("--real", nargs="*", default=[], help="eval: real speech files or folders (no labels)")
    p.add_argument("--out", help="eval: report .json")


def run(args: argparse.Namespace) -> int:
    from engine.train.phonetic import corpus, espeak

    root = Path(args.corpus)
    if args.action == "corpus":
        if (why := espeak.available()) is not None:
            raise UserError(f"cannot synthesize: {why}")
        corpus.build(root, corpus.CorpusConfig(minutes=args.minutes, seed=args.seed))
        return 0
    if not args.weights or not corpus.exists(root):
        raise UserError("eval needs --weights and a built --corpus")
    report = evaluate(args.weights, root, args.real)
    text = json.dumps(report, indent=1)
    if args.out:
        Path(args.out).write_text(text)
    print(json.dumps({k: v for k, v in report.items() if k != "real_files"}, indent=1))
    return 0


def evaluate(weights: str, root: Path, real: list[str]) -> dict:
    import numpy as np

    from engine.io.checkpoint import CheckpointError, load_weights
    from engine.io.media import MediaError, read_audio
    from engine.train.phonetic import corpus
    from engine.train.phonetic import evaluate as ev
    from engine.train.phonetic.task import PhoneticStep

    try:
        cfg, state, _ = load_weights(weights)
    except CheckpointError as e:
        raise UserError(str(e)) from None
    if "head.phone.weight" not in state:
        raise UserError(f"{weights}: not an `avacast train audio` export (no head.* tensors)")
    delay = int(state["phone_delay"])
    module = PhoneticStep(cfg, delay)
    module.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    module.eval()
    val = corpus.load(root, "val")
    report = {"weights": str(weights), "preset": cfg.name, "phone_delay": delay,
              "val_clean": ev.synthetic_report(module, val, delay, noisy=False),
              "val_noisy": ev.synthetic_report(module, val, delay, noisy=True), "real_files": {}}
    files = [f for r in real for f in (sorted(Path(r).iterdir()) if Path(r).is_dir() else [Path(r)])
             if f.suffix.lower() in AUDIO_EXT]
    for f in files:
        try:
            report["real_files"][f.name] = ev.real_report(module, read_audio(f), delay)
        except MediaError as e:
            log.warning("%s: %s", f.name, e)
    rows = list(report["real_files"].values())
    if rows:
        def pooled(key: str, n: str) -> float:
            have = [r for r in rows if r[key] is not None]
            return float(sum(r[key] * r[n] for r in have) / max(1, sum(r[n] for r in have)))
        report["real"] = {"files": len(rows), "seconds": sum(r["seconds"] for r in rows),
                          "silence_in_pause": pooled("silence_in_pause", "pause_frames"),
                          "silence_in_speech": pooled("silence_in_speech", "speech_frames"),
                          "viseme_changes_per_s_speech":
                              float(np.mean([r["viseme_changes_per_s_speech"] for r in rows])),
                          "visemes_used_in_speech": float(np.mean([r["visemes_used_in_speech"] for r in rows]))}
    return report
