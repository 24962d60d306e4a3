"""`avacast train vae|generator|audio`: resumable training on a pack (audio: on a synthetic speech corpus,
issue 4), on one GPU, CPU, or under torchrun."""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path

from engine.cli import UserError

log = logging.getLogger(__name__)


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train the VAE or the generator on a pack, or pretrain the audio encoder")
    p.add_argument("task", choices=["vae", "generator", "audio"])
    p.add_argument("--preset", default="base", choices=["tiny", "base", "paper"])
    p.add_argument("--pack", help="pack written by `avacast prepare`")
    p.add_argument("--out", required=True, help="run folder (checkpoints, log.csv, exported weights)")
    p.add_argument("--vae", help="generator: trained VAE weights (a VAE run's vae.safetensors); latents are "
                   "computed from the pack")
    p.add_argument("--latents", help="generator: a latent cache instead of --pack/--vae (no video decoding)")
    p.add_argument("--save-latents", help="generator: also write the latent cache it built (shards of --shard-mb)")
    p.add_argument("--full-context-latents", action="store_true",
                   help="generator: encode each clip in one causal call (before session 3; drifts with a VAE "
                        "trained on short clips) instead of the bounded 5-frame context (default)")
    p.add_argument("--augment-copies", type=int, default=0, metavar="K",
                   help="generator, with --vae: cache K more copies of each clip, each under one random colour "
                        "change and zoom of the clip and its reference frames, the odd copies mirrored (same audio): "
                        "more faces for the reference pathway (default 0)")
    p.add_argument("--latents-without-audio", action="store_true",
                   help="with --save-latents: leave the audio out (half the size; --latents then needs --pack)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/ckpt (exact)")
    p.add_argument("--init", action="append", metavar="FILE",
                   help="start from exported weights when no OUT/ckpt exists (a warm start: fresh optimizer; for "
                   "GPU slots that cannot carry the full checkpoint). Repeatable: each file sets the tensors it "
                   "has (later ones win), e.g. a generator export, then an audio pretext export (audio.*)")
    p.add_argument("--init-skip-shapes", action="store_true",
                   help="with --init: leave the tensors whose shape differs at their fresh values (listed in the "
                        "log) instead of failing, e.g. a generator's latent-sized input/output layers on a VAE "
                        "with other --latent-channels")
    p.add_argument("--corpus", help="audio: synthetic speech corpus folder (built there by espeak-ng if missing; "
                   "default OUT/corpus)")
    p.add_argument("--minutes", type=float, default=30.0, help="audio: minutes of training speech to synthesize "
                   "when the corpus is built")
    p.add_argument("--freeze-audio-convs", action="store_true",
                   help="generator: do not train the audio encoder's mel-rate conv stack (keeps the phonetic "
                        "features of an --init audio export; its latent-rate embedder still trains)")
    p.add_argument("--video-only-share", type=float, metavar="P",
                   help="generator: share of training examples drawn from the pack's clips without usable "
                        "audio, with a learned 'unknown audio' embedding that is not exported (more identities "
                        "for the reference pathway; default 0: those clips are left out). With the CFG null "
                        "embedding instead, 0.3 held the identity better but cut lip sync (docs/TRAINING.md)")
    p.add_argument("--mute-clips", metavar="FILE",
                   help="generator: a text file of clip ids or id prefixes (one per line, # comments) whose "
                        "audio is not used: they count as clips without usable audio, so they are left out, or "
                        "drawn as video-only examples with --video-only-share (talking clips with poor lip sync)")
    p.add_argument("--self-history", type=float, metavar="P",
                   help="generator: share of examples whose history latents are the model's own one-step "
                        "predictions (error recycling against identity drift; default 0)")
    p.add_argument("--mouth-weight", type=float, metavar="W",
                   help="loss weight of the mouth relative to the rest of the face: the VAE's L1 on its pixels, "
                        "the generator's flow loss on its latent cells (default 1: a plain mean)")
    p.add_argument("--history-noise-max", type=float, metavar="T",
                   help="generator: the most noise put on the teacher-forced history latents (default 0.7, the "
                        "paper's; more makes the model lean on the audio and the references)")
    p.add_argument("--ref-residual", action="store_true",
                   help="generator: the flow makes each latent's departure from the mean reference latent "
                        "(scaled to unit std) instead of the latent, so the portrait's appearance is kept by "
                        "construction; the model records it (a warm start from a plain generator relearns its output)")
    p.add_argument("--babble", type=float, metavar="P",
                   help="audio: share of examples with 1-3 other voices mixed in 5-25 dB below (default 0; "
                        "0.4 made real pauses silent but soft speech too: docs/TRAINING.md)")
    p.add_argument("--phone-delay", type=int, help="audio: label delay in 10 ms mel frames (default 2)")
    p.add_argument("--time-budget-min", type=float, help="stop cleanly (with a checkpoint) after M minutes")
    p.add_argument("--max-steps", type=int)
    p.add_argument("--batch", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--warmup-steps", type=int)
    p.add_argument("--total-steps", type=int, help="length of the cosine schedule")
    p.add_argument("--clip-frames-start", type=int, metavar="F",
                   help="vae: clip length (4k+1 frames) at step 0 of the progressive schedule (default 5)")
    p.add_argument("--clip-frames-end", type=int, metavar="F",
                   help="vae: clip length reached at half of --total-steps (default 17); a warm start that "
                        "should train on long clips at once sets both")
    p.add_argument("--latent-channels", type=int, metavar="C",
                   help="vae: latent channels instead of the preset's (base: 32 = 384x compression; 16 = the "
                        "paper's 768x: a tighter latent leaves more of the appearance to the references). The "
                        "exported VAE records it; a generator trained on it follows")
    p.add_argument("--fine-refs", type=int, metavar="N",
                   help="vae: N fine reference-fusion blocks at 1/8 of the resolution (default: the preset's; "
                        "base 0). They start as zero residuals, so `--init` of a VAE without them decodes as "
                        "before; with --freeze-encoder the latents, and so the generator, stay valid")
    p.add_argument("--freeze-encoder", action="store_true",
                   help="vae: train the decoder only (the latent space stays, so the generator trained on it "
                        "stays valid)")
    p.add_argument("--encoder-jitter", type=float, metavar="S",
                   help="vae: a random colour transform of strength S (0-1: channel gains and mixing, brightness) "
                        "on the encoder's input only, the target and references unchanged, so the latent cannot "
                        "carry the colours and the decoder takes them from the references (default 0)")
    p.add_argument("--latent-noise", type=float, metavar="S",
                   help="vae: Gaussian noise of up to S latent stds (uniform per example) on the decoder's "
                        "input latent: a decoder for imperfect, generated latents (default 0)")
    p.add_argument("--adversarial", type=float, metavar="W",
                   help="vae: add discriminators of the frame and of the mouth (against the blur that L1 + SSIM "
                        "leave on the mouth; trained from scratch; default 0: off), their term's gradient at the "
                        "decoder's output layer W times the reconstruction loss's (balanced each step; session 11: "
                        "0.1)")
    p.add_argument("--adversarial-mouth", type=float, metavar="M",
                   help="vae, with --adversarial: the mouth discriminator's term counts M times the whole frame's "
                        "(default 1; the balanced weight keeps their sum at W)")
    p.add_argument("--adversarial-start", type=int, metavar="STEP",
                   help="vae: the step from which the discriminators' term counts; before it they learn alone "
                        "(default 0)")
    p.add_argument("--disc-lr-scale", type=float, metavar="S",
                   help="vae: the discriminators' learning rate as a multiple of the VAE's (default 4)")
    p.add_argument("--fine-refs-lr-scale", type=float, metavar="S",
                   help="vae: learning rate of the fine reference fusion (--fine-refs) over the rest's (default 1; "
                        "new blocks added to a trained VAE start at zero and want larger steps, e.g. 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=20, help="steps between log lines")
    p.add_argument("--device", default="auto")
    p.add_argument("--shard-mb", type=float, help="split checkpoints into files of at most this size")
    p.add_argument("--workers", type=int, default=8, help="threads decoding the pack")


# VAEConfig fields set by a flag (argparse's dest -> field), when given
VAE_OVERRIDES = {"latent_channels": "latent_channels", "fine_refs": "fine_ref_blocks"}
# TrainConfig fields set by the flag of the same name (argparse's dest), when given
TRAIN_OVERRIDES = ("batch", "lr", "total_steps", "warmup_steps", "clip_frames_start", "clip_frames_end",
                   "phone_delay", "babble", "video_only_share", "self_history", "latent_noise", "encoder_jitter",
                   "mouth_weight", "history_noise_max", "adversarial", "adversarial_mouth", "adversarial_start",
                   "disc_lr_scale", "fine_refs_lr_scale")


def run(args: argparse.Namespace) -> int:
    from engine.config import EngineConfig
    from engine.train.config import TrainConfig
    from engine.train.loop import train

    cfg = EngineConfig.preset(args.preset)
    vae_only = (args.adversarial, args.adversarial_mouth, args.adversarial_start, args.disc_lr_scale,
                args.fine_refs_lr_scale)
    if args.task != "vae" and vae_only != (None,) * len(vae_only):
        raise UserError("--adversarial, --adversarial-mouth, --adversarial-start, --disc-lr-scale and "
                        "--fine-refs-lr-scale are VAE settings")
    if args.mouth_weight is not None and args.task == "audio":
        raise UserError("--mouth-weight is a VAE or generator setting")
    vae_fields = {field: getattr(args, dest) for dest, field in VAE_OVERRIDES.items()
                  if getattr(args, dest) is not None}
    if vae_fields:
        flags = ", ".join("--" + d.replace("_", "-") for d in VAE_OVERRIDES if getattr(args, d) is not None)
        if args.task != "vae":
            raise UserError(f"{flags}: VAE settings; the generator takes them from its VAE")
        try:
            cfg = dataclasses.replace(cfg, vae=dataclasses.replace(cfg.vae, **vae_fields))
        except ValueError as e:
            raise UserError(f"invalid {flags}: {e}") from None
    overrides = {k: getattr(args, k) for k in TRAIN_OVERRIDES if getattr(args, k) is not None}
    try:
        tcfg = TrainConfig(task=args.task, seed=args.seed, log_every=args.log_every,
                           freeze_audio_convs=args.freeze_audio_convs, freeze_encoder=args.freeze_encoder,
                           **overrides)
    except ValueError as e:
        raise UserError(f"invalid training settings: {e}") from None
    if args.task == "vae":
        task = _vae_task(cfg, tcfg, _pack(args), args.workers)
    elif args.task == "audio":
        task = _audio_task(cfg, tcfg, args)
    else:
        cfg, task = _generator_task(cfg, tcfg, args)
    if args.init and not (args.resume and (Path(args.out) / "ckpt").exists()):
        for path in args.init:
            _warm_start(task.module, path, args.init_skip_shapes)
    summary = train(task, cfg, tcfg, Path(args.out), resume=args.resume, device=args.device,
                    time_budget_min=args.time_budget_min, max_steps=args.max_steps, shard_mb=args.shard_mb)
    print(json.dumps(summary))
    return 0


def _warm_start(module, path: str, skip_shapes: bool = False) -> None:
    """Copy the tensors of `path` that the module has (same shapes); the rest keep their values. A tensor of
    another shape fails the warm start, unless skip_shapes (then it keeps its fresh value and is logged)."""
    from engine.io.checkpoint import CheckpointError, load_into, load_weights

    try:
        _, state, _ = load_weights(path)
        if skip_shapes:
            own = module.state_dict()
            skipped = sorted(k for k, v in state.items() if k in own and own[k].shape != v.shape)
            state = {k: v for k, v in state.items() if k not in skipped}
            if skipped:
                log.warning("--init %s: %d tensors of another shape left fresh: %s", Path(path).name,
                            len(skipped), ", ".join(skipped))
        n = load_into(module, state, f"--init {Path(path).name}", partial=True)
    except CheckpointError as e:
        hint = "" if skip_shapes else "; --init-skip-shapes leaves those tensors fresh"
        raise UserError(f"{str(e).splitlines()[0]} (trained with another preset?{hint})") from None
    log.info("--init %s: %d of %d tensors", Path(path).name, n, len(module.state_dict()))


def _audio_task(cfg, tcfg, args):
    from engine.train.phonetic import corpus, espeak
    from engine.train.phonetic.task import PhoneticTask

    root = Path(args.corpus) if args.corpus else Path(args.out) / "corpus"
    if not corpus.exists(root):
        if (why := espeak.available()) is not None:
            raise UserError(f"cannot synthesize the corpus: {why}")
        corpus.build(root, corpus.CorpusConfig(minutes=args.minutes, seed=args.seed))
    return PhoneticTask(cfg, tcfg, corpus.load(root, "train"))


def _pack(args):
    from engine.train.pack import Pack, PackError

    if not args.pack:
        raise UserError("--pack is required")
    try:
        return Pack(args.pack)
    except PackError as e:
        raise UserError(str(e)) from None


def _vae_task(cfg, tcfg, pack, workers):
    from engine.train.data import load_clips
    from engine.train.vae_task import VAETask

    clips = pack.clips("train")
    if not clips:
        raise UserError(f"{pack.root}: no training clips")
    return VAETask(cfg, tcfg, load_clips(pack, clips, cfg.vae.resolution, with_audio=False, workers=workers))


def _generator_task(cfg, tcfg, args):
    from engine.io.checkpoint import CheckpointError
    from engine.train import latent_cache
    from engine.train.gen_task import GeneratorTask

    if args.augment_copies and (args.latents or not args.vae):
        raise UserError("--augment-copies applies when the latents are built (--vae with --pack); a "
                        "--latents cache keeps the copies it was built with")
    try:
        if args.latents:
            vcfg, cached, scale = latent_cache.load(Path(args.latents), _pack(args) if args.pack else None)
            vae_state = None
        elif args.vae:
            vcfg, cached, scale, vae_state = _build_cache(args)
        else:
            raise UserError("generator training needs --vae (with --pack) or --latents")
    except (CheckpointError, ValueError) as e:
        raise UserError(str(e).splitlines()[0]) from None
    cfg = dataclasses.replace(cfg, vae=vcfg.vae)
    if args.mute_clips:
        _mute(cached, args.mute_clips)
    if args.ref_residual:
        from engine.train.gen_task import residual_scale

        scale = residual_scale([c for c in cached if c["audio"] is not None])
        log.info("--ref-residual: residual scale %.4f", scale)
        cfg = dataclasses.replace(cfg, dit=dataclasses.replace(cfg.dit, ref_residual=scale))
    if not any(c["audio"] is not None for c in cached):
        raise UserError("no clips with usable audio")
    if tcfg.video_only_share > 0 and all(c["audio"] is not None for c in cached):
        raise UserError("--video-only-share: no clips without usable audio here (a latent cache keeps them only "
                        "when it was built with --video-only-share)")
    return cfg, GeneratorTask(cfg, tcfg, cached, scale, vae_state)


def _mute(cached, path):
    from engine.train import latent_cache

    try:
        entries = latent_cache.read_clip_list(path)
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"--mute-clips: cannot read {path} ({e})") from None
    n, unknown = latent_cache.mute(cached, entries)
    if unknown:
        raise UserError(f"--mute-clips: {len(unknown)} entries match no clip of the training data: "
                        + ", ".join(unknown[:5]))
    log.info("--mute-clips: the audio of %d clips is left out (%d entries)", n, len(entries))


def _build_cache(args):
    import torch

    from engine.device import default_dtype
    from engine.train import latent_cache
    from engine.train.data import load_clips
    from engine.train.loop import dist_setup

    pack = _pack(args)
    vcfg, vae = latent_cache.load_vae(args.vae)
    clips = pack.clips("train", audio=True)
    if args.video_only_share:
        clips += pack.clips("train", audio=False)
    _, _, dev = dist_setup(args.device)
    dtype = default_dtype(dev)
    vae = vae.to(dev, dtype).eval().requires_grad_(False)
    short = not args.full_context_latents
    if args.augment_copies < 0:
        raise UserError("--augment-copies must be >= 0")
    cached = latent_cache.build(vae, load_clips(pack, clips, vcfg.vae.resolution, True, args.workers), dev, dtype,
                                short, args.augment_copies, args.seed)
    scale = float(vae.latent_scale)
    if args.save_latents:
        shard = int(args.shard_mb * 2**20) if args.shard_mb else None
        latent_cache.save(Path(args.save_latents), cached, vcfg, scale, shard, not args.latents_without_audio,
                          "short" if short else "full")
    vae_state = {f"vae.{k}": v.detach().float().cpu() for k, v in vae.state_dict().items()}
    del vae
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return vcfg, cached, scale, vae_state
