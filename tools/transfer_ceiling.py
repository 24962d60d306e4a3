"""How much lip sync the driver's latent shift keeps when the motion is real (session 15).

The driver face (Session's driver) moves a portrait by decoding latent + (portrait's reference latent - the
driver's) with the portrait's reference features. Here the motion is a real validation clip's own (its
bounded-context latents, as the generator is trained to make them), so no generator is involved: the lip sync
of these transfers is the ceiling of the driver method on this VAE, beside the clip's own round trip.

Variants (one MP4 each per clip and photo, photo k of clip i = photos[(i + k) % N]):
  own          the clip's own round trip (once per clip): the VAE's ceiling
  shift        latents - clip ref latent + photo ref latent, decoded with the photo's reference features
  shift_refs   the same latents decoded with the clip's reference features (what the features add)
  shift_mouth  the photo's ref latent + the clip's motion on the mouth's latent cells only

    PYTHONPATH=. python tools/transfer_ceiling.py render --vae VAE --pack VALPACK --portraits P/*.png --out DIR
    PYTHONPATH=. python tools/transfer_ceiling.py score --pack VALPACK --renders DIR   # face landmarks (mediapipe)
"""
import argparse
from pathlib import Path

import numpy as np
import torch

from engine.config import FPS, HOLD_MOUTH_MARGIN, SAMPLE_RATE, mouth_slices
from engine.io import media
from engine.runtime.session import prepare_references
from engine.train import lipsync
from engine.train.evaluate import EvalConfig, _to_video, clip_span, file_id, load_for_eval, select_clips
from engine.train.pack import Pack

VARIANTS = ("own", "shift", "shift_refs", "shift_mouth")


def _name(clip_id: str, photo: str = "") -> str:
    return file_id(clip_id) + (f"@{photo}" if photo else "") + ".mp4"


def _clips(pack: Pack, n: int, seconds: float):
    cfg = EvalConfig(seconds=seconds)
    for clip in select_clips(pack.clips("val", audio=True), n):
        frames, audio = clip_span(pack.load_frames(clip, 256), pack.load_audio(clip), cfg)
        n4 = 4 * ((len(frames) - 1) // 4) + 1
        yield clip.id, frames[:n4], audio[: n4 * SAMPLE_RATE // FPS]


@torch.inference_mode()
def render(args: argparse.Namespace) -> None:
    _, vae, _ = load_for_eval(args.vae, args.device)
    p = next(vae.parameters())
    photos = [(Path(f).stem, media.read_image(f)) for f in args.portraits]
    size = vae.cfg.resolution
    h = vae.cfg.latent_size
    mask = torch.zeros((1, 1, 1, h, h), device=p.device, dtype=p.dtype)
    rows, cols = mouth_slices(h, h, HOLD_MOUTH_MARGIN)
    mask[..., rows, cols] = 1
    out = Path(args.out)
    for v in VARIANTS:
        (out / v).mkdir(parents=True, exist_ok=True)
    for i, (cid, frames, audio) in enumerate(_clips(Pack(args.pack), args.clips, args.seconds)):
        video = _to_video(frames, p.device, p.dtype)  # [1,3,F,H,W]
        z = vae.encode_short_context(video)  # [1,C,T,h,w]
        tok_c, lat_c = vae.encode_refs(video[:, :, :1].transpose(1, 2))  # lat [1,1,C,h,w]
        lat_c = lat_c[:, 0].unsqueeze(2)  # [1,C,1,h,w]

        def save(variant: str, lat: torch.Tensor, tokens, photo: str = "") -> None:
            x = vae.decode(lat, tokens)[0]  # [3,F,H,W]
            rgb = ((x.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 3, 0).cpu().numpy()
            media.write_video(out / variant / _name(cid, photo), rgb, audio=audio)

        save("own", z, tok_c)
        for k in range(args.per_clip):
            name, img = photos[(i + k) % len(photos)]
            tok_p, lat_p = vae.encode_refs(prepare_references([img], size).to(p.device, p.dtype))
            lat_p = lat_p[:, 0].unsqueeze(2)
            save("shift", z - lat_c + lat_p, tok_p, name)
            save("shift_refs", z - lat_c + lat_p, tok_c, name)
            save("shift_mouth", lat_p + mask * (z - lat_c), tok_p, name)
        print(f"clip {i + 1}: {cid}", flush=True)


def score(args: argparse.Namespace) -> None:
    root = Path(args.renders)
    res: dict[str, list[tuple[float, float]]] = {v: [] for v in args.variants}
    real = []
    for cid, frames, audio in _clips(Pack(args.pack), args.clips, args.seconds):
        env = lipsync.speech_envelope(audio, len(frames))
        o = lipsync.mouth_opening(frames, "landmarks")
        real.append((lipsync.lipsync_score(o, env)[0], lipsync.mouth_motion(o)))
        for v in args.variants:
            for f in sorted((root / v).glob(_name(cid).removesuffix(".mp4") + "*.mp4")):
                o = lipsync.mouth_opening(media.read_video(f)[0][: len(frames)], "landmarks")
                res[v].append((lipsync.lipsync_score(o, env)[0], lipsync.mouth_motion(o)))
        print(f"scored {cid}", flush=True)
    print("| variant | renders | lip sync | mouth motion |\n|---|---|---|---|")
    for name, rows in (("real clips", real), *res.items()):
        a = np.array(rows)
        print(f"| {name} | {len(a)} | {a[:, 0].mean():.3f} | {a[:, 1].mean():.4f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["render", "score"])
    ap.add_argument("--pack", required=True)
    ap.add_argument("--vae", help="render: a VAE export or model file")
    ap.add_argument("--portraits", nargs="+", help="render: photos (as the model sees them: centre square)")
    ap.add_argument("--out", help="render: output folder")
    ap.add_argument("--renders", help="score: the render folder")
    ap.add_argument("--clips", type=int, default=12)
    ap.add_argument("--per-clip", type=int, default=6, help="render: photos per clip")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS), help="score: these only")
    args = ap.parse_args()
    render(args) if args.mode == "render" else score(args)


if __name__ == "__main__":
    main()
