"""Trainer tests on a generated pack (issue 3): loss goes down, exact resume, generator export loads."""
import json

import numpy as np
import pytest
import torch

from engine.cli import main
from engine.io import media as M
from engine.io.checkpoint import load_weights
from engine.train.pack import Pack
from engine.train.prepare import PrepareConfig, prepare
from tests.engine.train import synth
from tests.engine.train.fit import fit_fixed_batch


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    for i, name in enumerate(["amy", "bob", "cat"]):
        a = synth.speech(2.5, seed=i)
        M.write_video(src / f"{name}.mp4", synth.talking_frames(a, 25, canvas=(240, 200), motion=3),
                      fps=25, audio=a)
    out = tmp_path_factory.mktemp("pack")
    prepare([src], out, PrepareConfig(size=32, max_clip_s=2.5, min_clip_s=1.0, val_percent=0), progress=False)
    return out


def train(pack, run, task, steps, *extra):
    return main(["train", task, "--preset", "tiny", "--pack", str(pack), "--out", str(run), "--device", "cpu",
                 "--max-steps", str(steps), "--batch", "2", "--workers", "2", "--log-every", "1", *extra])


def _weights(path):
    return load_weights(path)[1]


def test_vae_loss_goes_down_on_a_fixed_batch(pack):
    from engine.config import EngineConfig
    from engine.train.config import TrainConfig
    from engine.train.data import load_clips, step_generator
    from engine.train.pack import Pack
    from engine.train.vae_task import VAETask

    cfg, tcfg = EngineConfig.tiny(), TrainConfig(batch=2, lr=3e-3, warmup_steps=1)
    p = Pack(pack)
    task = VAETask(cfg, tcfg, load_clips(p, p.clips("train"), 32, False, 1))
    batch = task.batch(step_generator(0, 0), 0, torch.device("cpu"))
    losses = fit_fixed_batch(task, batch, 30)
    assert losses[-1] < 0.7 * losses[0]


def test_resume_is_bit_identical(pack, tmp_path):
    assert train(pack, tmp_path / "a", "vae", 6) == 0
    assert train(pack, tmp_path / "b", "vae", 3) == 0
    assert train(pack, tmp_path / "b", "vae", 6, "--resume") == 0
    a, b = _weights(tmp_path / "a/ckpt/train.safetensors"), _weights(tmp_path / "b/ckpt/train.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    rows = (tmp_path / "b/log.csv").read_text().splitlines()
    assert rows[0].startswith("step,loss")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_resume_on_the_gpu_keeps_the_ema_with_the_model(pack, tmp_path):
    """The checkpoint loads on the CPU; a resumed GPU run once failed at its first EMA update."""
    assert train(pack, tmp_path / "g", "vae", 2, "--device", "cuda") == 0
    assert train(pack, tmp_path / "g", "vae", 4, "--device", "cuda", "--resume") == 0
    assert load_weights(tmp_path / "g/vae.safetensors")[2]["step"] == "4"


def test_vae_clip_schedule_flags_reach_the_checkpoint(pack, tmp_path, capsys):
    """A warm-started VAE slot can train on long clips at once (the progressive schedule would restart)."""
    assert train(pack, tmp_path / "r", "vae", 1, "--clip-frames-start", "9", "--clip-frames-end", "13") == 0
    meta = load_weights(tmp_path / "r/ckpt/train.safetensors")[2]
    tcfg = json.loads(meta["train_config"])
    assert (tcfg["clip_frames_start"], tcfg["clip_frames_end"]) == (9, 13)
    assert train(pack, tmp_path / "bad", "vae", 1, "--clip-frames-start", "8") == 2
    assert "4k+1" in capsys.readouterr().err


def test_freeze_encoder_trains_the_decoder_only(pack, tmp_path):
    """--freeze-encoder: the latent space of the --init VAE stays (a generator trained on it stays valid)."""
    from engine.train.vae_task import ENCODER_PARTS

    assert train(pack, tmp_path / "v", "vae", 1) == 0
    assert train(pack, tmp_path / "d", "vae", 3, "--init", str(tmp_path / "v/vae.safetensors"),
                 "--freeze-encoder", "--latent-noise", "0.5") == 0
    init, out = _weights(tmp_path / "v/vae.safetensors"), _weights(tmp_path / "d/vae.safetensors")
    encoder = [k for k in init if k.startswith(tuple(f"vae.{p}." for p in ENCODER_PARTS))]
    decoder = [k for k in init if k.startswith(("vae.d1", "vae.d2", "vae.dref"))]
    assert encoder and all(torch.equal(init[k], out[k]) for k in encoder)
    assert decoder and any(not torch.equal(init[k], out[k]) for k in decoder)


def _vae_batches_with(pack, step, **option):
    """VAE tasks without and with a training option on the tiny pack, and their batches of one step ->
    (plain task, task, plain batch, batch)."""
    from engine.config import EngineConfig
    from engine.train.config import TrainConfig
    from engine.train.data import load_clips, step_generator
    from engine.train.vae_task import VAETask

    cfg, p = EngineConfig.tiny(), Pack(pack)
    clips = load_clips(p, p.clips("train"), 32, False, 1)
    tasks = VAETask(cfg, TrainConfig(batch=2), clips), VAETask(cfg, TrainConfig(batch=2, **option), clips)
    return (*tasks, *(t.batch(step_generator(0, step), step, torch.device("cpu")) for t in tasks))


def test_latent_noise_corrupts_the_decoder_input_and_keeps_other_batches(pack):
    from engine.train.config import TrainConfig

    plain, noisy, a, b = _vae_batches_with(pack, 3, latent_noise=2.0)
    assert "corrupt" not in a and all(torch.equal(a[k], b[k]) for k in a)
    sigma, extra = b["corrupt"]
    assert sigma.shape == (2,) and bool(((sigma >= 0) & (sigma <= 2.0)).all()) and extra.shape == b["noise"].shape
    with torch.no_grad():
        assert not torch.equal(plain.loss(plain.module, a)[0], plain.loss(plain.module, b)[0])
    with pytest.raises(ValueError, match="latent_noise"):
        TrainConfig(latent_noise=-0.1)


def test_fine_refs_flag_sets_the_vae_fusion_and_warm_starts_a_vae_without_it(pack, tmp_path, capsys):
    assert train(pack, tmp_path / "v0", "vae", 1, "--fine-refs", "0") == 0
    assert train(pack, tmp_path / "v2", "vae", 1, "--fine-refs", "2", "--init", str(tmp_path / "v0/vae.safetensors"),
                 "--freeze-encoder") == 0
    cfg, state, _ = load_weights(tmp_path / "v2/vae.safetensors")
    assert cfg.vae.fine_ref_blocks == 2 and any(k.startswith("vae.dref_fine.1.") for k in state)
    assert not any("fine" in k for k in load_weights(tmp_path / "v0/vae.safetensors")[1])
    # the latents did not change, so a generator trained on v0's ships with v2's decoder
    assert train(pack, tmp_path / "g0", "generator", 1, "--vae", str(tmp_path / "v0/vae.safetensors")) == 0
    assert main(["release", "--vae", str(tmp_path / "v2/vae.safetensors"), "--generator",
                 str(tmp_path / "g0/generator.safetensors"), "--out", str(tmp_path / "m.safetensors")]) == 0
    from engine.api import load_engine
    assert load_engine(weights=tmp_path / "m.safetensors", device="cpu").cfg.vae.fine_ref_blocks == 2
    capsys.readouterr()
    assert train(pack, tmp_path / "g", "generator", 1, "--fine-refs", "1") == 2
    assert "--fine-refs: VAE settings" in capsys.readouterr().err


def test_latent_channels_reach_the_vae_the_generator_and_the_engine(pack, tmp_path, capsys):
    """A 768x-style VAE (fewer latent channels) trains, and the generator and the engine follow its config."""
    assert train(pack, tmp_path / "v", "vae", 1, "--latent-channels", "4") == 0
    assert load_weights(tmp_path / "v/vae.safetensors")[0].vae.latent_channels == 4
    assert train(pack, tmp_path / "g", "generator", 1, "--vae", str(tmp_path / "v/vae.safetensors")) == 0
    from engine.api import load_engine
    engine = load_engine(weights=tmp_path / "g/generator.safetensors", device="cpu")
    assert engine.cfg.vae.latent_channels == 4
    s = engine.open_session([np.zeros((40, 40, 3), np.uint8)], seed=0)
    s.push_audio(np.zeros(4000, np.float32), 16000)
    assert len(s.step() + s.flush()) > 0
    # A generator of the preset's latent size warm-starts it only with --init-skip-shapes.
    assert train(pack, tmp_path / "v8", "vae", 1) == 0
    assert train(pack, tmp_path / "g8", "generator", 2, "--vae", str(tmp_path / "v8/vae.safetensors"),
                 "--lr", "0.05", "--warmup-steps", "1") == 0  # far from a fresh init
    g8 = str(tmp_path / "g8/generator.safetensors")
    capsys.readouterr()
    assert train(pack, tmp_path / "w", "generator", 1, "--vae", str(tmp_path / "v/vae.safetensors"), "--init", g8) == 2
    assert "--init-skip-shapes" in capsys.readouterr().err
    assert train(pack, tmp_path / "w", "generator", 1, "--vae", str(tmp_path / "v/vae.safetensors"), "--init", g8,
                 "--init-skip-shapes", "--lr", "1e-12") == 0
    assert train(pack, tmp_path / "f", "generator", 1, "--vae", str(tmp_path / "v/vae.safetensors"),
                 "--lr", "1e-12") == 0  # the same run without --init
    init, out, fresh = (_weights(p) for p in (g8, tmp_path / "w/generator.safetensors",
                                              tmp_path / "f/generator.safetensors"))
    same = [k for k in out if k.startswith("dit.") and init[k].shape == out[k].shape]
    other = [k for k in out if k.startswith("dit.") and init[k].shape != out[k].shape]
    assert same and other  # the DiT's latent-sized layers differ, its blocks are the init's
    assert all(torch.allclose(init[k].float(), out[k].float(), atol=1e-3) for k in same)
    assert any(not torch.allclose(fresh[k].float(), out[k].float(), atol=1e-3) for k in same)
    assert all(torch.allclose(fresh[k].float(), out[k].float(), atol=1e-6) for k in other)
    capsys.readouterr()
    assert train(pack, tmp_path / "bad", "vae", 1, "--latent-channels", "0") == 2
    assert "latent_channels" in capsys.readouterr().err
    assert train(pack, tmp_path / "g2", "generator", 1, "--latent-channels", "4") == 2


def test_generator_trains_and_exports_a_loadable_model(pack, tmp_path, capsys):
    assert train(pack, tmp_path / "vae", "vae", 2) == 0
    capsys.readouterr()
    assert train(pack, tmp_path / "gen", "generator", 4, "--vae", str(tmp_path / "vae/vae.safetensors"),
                 "--shard-mb", "0.5") == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["step"] == 4 and np.isfinite(summary["last_loss"])
    from engine.api import load_engine
    engine = load_engine(weights=tmp_path / "gen/generator.safetensors", device="cpu")
    assert engine.model.vae.latent_scale.item() != 1.0
    s = engine.open_session([np.zeros((40, 40, 3), np.uint8)], seed=0)
    s.push_audio(np.zeros(8000, np.float32), 16000)
    assert len(s.step() + s.flush()) == 12


def test_freeze_audio_convs_keeps_the_pretrained_encoder_stack(pack, tmp_path, capsys):
    """--freeze-audio-convs: the phonetic conv stack of an --init stays as given; the rest trains."""
    assert train(pack, tmp_path / "vae", "vae", 1) == 0
    assert train(pack, tmp_path / "g", "generator", 3, "--vae", str(tmp_path / "vae/vae.safetensors"),
                 "--freeze-audio-convs") == 0
    init = _weights(tmp_path / "g/generator.safetensors")
    assert train(pack, tmp_path / "g2", "generator", 3, "--vae", str(tmp_path / "vae/vae.safetensors"),
                 "--init", str(tmp_path / "g/generator.safetensors"), "--freeze-audio-convs") == 0
    out = _weights(tmp_path / "g2/generator.safetensors")
    frozen = [k for k in init if k.startswith(("audio.inp.", "audio.layers."))]
    trained = [k for k in init if k.startswith(("audio.rest.", "dit."))]
    assert frozen and all(torch.equal(init[k], out[k]) for k in frozen)
    assert any(not torch.equal(init[k], out[k]) for k in trained)


def test_generator_needs_a_vae(pack, tmp_path, capsys):
    assert train(pack, tmp_path / "g", "generator", 1) == 2
    assert "--vae" in capsys.readouterr().err


def test_latent_cache_release_and_warm_start(pack, tmp_path, capsys):
    """The GPU-slot path: cache latents once, train the generator from the cache alone, join with the
    VAE into a release, and warm-start a new run from exported weights."""
    assert train(pack, tmp_path / "vae", "vae", 2) == 0
    cache = tmp_path / "latents.safetensors"
    assert train(pack, tmp_path / "g0", "generator", 0, "--vae", str(tmp_path / "vae/vae.safetensors"),
                 "--save-latents", str(cache)) == 0
    assert load_weights(cache)[2]["encoder_context"] == "short"  # the bounded-context latents by default
    assert main(["train", "generator", "--preset", "tiny", "--latents", str(cache), "--out", str(tmp_path / "g"),
                 "--device", "cpu", "--max-steps", "2", "--batch", "2"]) == 0
    out = tmp_path / "model.safetensors"
    assert main(["release", "--vae", str(tmp_path / "vae/vae.safetensors"), "--generator",
                 str(tmp_path / "g/generator.safetensors"), "--out", str(out), "--shard-mb", "1",
                 "--anchor-first", "on", "--identity-hold", "0.5", "--hold-seconds", "4"]) == 0
    assert "wrote" in capsys.readouterr().out
    from engine.api import load_engine
    engine = load_engine(weights=out, device="cpu")
    assert engine.cfg.sampler.anchor_first and not load_weights(tmp_path / "g/generator.safetensors")[0].sampler.anchor_first
    assert engine.cfg.sampler.identity_hold == 0.5 and engine.cfg.sampler.hold_seconds == 4
    again = tmp_path / "again.safetensors"  # a release re-released (new decoder, v0.7 -> v0.8) keeps its step
    assert main(["release", "--vae", str(tmp_path / "vae/vae.safetensors"), "--generator", str(out),
                 "--out", str(again)]) == 0
    assert load_weights(again)[2]["generator_step"] == load_weights(out)[2]["generator_step"] != "?"
    assert main(["release", "--vae", str(tmp_path / "vae/vae.safetensors"), "--generator",
                 str(tmp_path / "g/generator.safetensors"), "--out", str(tmp_path / "bad.safetensors"),
                 "--identity-hold", "2"]) == 2
    assert "identity_hold in [0, 1]" in capsys.readouterr().err
    # the motion basis from the latent cache: stored with the model, orthonormal, usable by the hold
    held = tmp_path / "held.safetensors"
    release = ["release", "--vae", str(tmp_path / "vae/vae.safetensors"), "--generator",
               str(tmp_path / "g/generator.safetensors"), "--motion-basis", str(cache), "--motion-dims", "4"]
    assert main(release + ["--out", str(held), "--hold-free-dims", "3", "--identity-hold", "0.5",
                           "--hold-history", "on"]) == 0
    assert "4 directions span" in capsys.readouterr().out
    held_engine = load_engine(weights=held, device="cpu")
    assert held_engine.cfg.vae.motion_dims == 4 and held_engine.cfg.sampler.hold_free_dims == 3
    assert held_engine.cfg.sampler.hold_history
    basis = held_engine.model.vae.motion_basis.float()
    torch.testing.assert_close(basis @ basis.T, torch.eye(4), atol=2e-2, rtol=0)  # bf16 storage
    assert main(release + ["--out", str(tmp_path / "bad2.safetensors"), "--hold-free-dims", "5"]) == 2
    assert "stores 4 motion directions" in capsys.readouterr().err
    _check_driver_release(release[:5], tmp_path, capsys)
    g_state = load_weights(tmp_path / "g/generator.safetensors")[1]
    torch.testing.assert_close(engine.model.dit.null_audio, g_state["dit.null_audio"].float())
    assert engine.model.vae.latent_scale.item() == pytest.approx(g_state["vae.latent_scale"].item(), rel=1e-2)
    assert train(pack, tmp_path / "vae2", "vae", 0, "--init", str(tmp_path / "vae/vae.safetensors")) == 0
    a = load_weights(tmp_path / "vae/vae.safetensors")[1]
    b = load_weights(tmp_path / "vae2/vae.safetensors")[1]
    torch.testing.assert_close(a["vae.e1_in.conv.weight"], b["vae.e1_in.conv.weight"])


def _check_driver_release(release: list[str], tmp_path, capsys) -> None:
    """release --driver IMG: the face is stored as the session sees it and moves every session's portrait, as
    an explicit driver does on the plain release; --model-driver off ships it switched off."""
    import cv2

    from engine.api import load_engine
    from engine.train.evaluate import model_view

    rng = np.random.default_rng(5)
    face, portrait = rng.integers(0, 256, (2, 48, 40, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "face.png"), face[:, :, ::-1])
    assert main(release + ["--out", str(tmp_path / "drv.safetensors"), "--driver", str(tmp_path / "face.png")]) == 0
    engine = load_engine(weights=tmp_path / "drv.safetensors", device="cpu")
    assert engine.cfg.dit.driver and engine.cfg.sampler.use_driver
    assert np.array_equal(engine.model.dit.driver.numpy(), model_view(face, engine.cfg.vae.resolution))

    def frames(eng, **kw):
        s = eng.open_session([portrait], seed=1, **kw)
        s.push_audio(np.sin(np.arange(8000) / 9).astype(np.float32), 16000)
        return np.stack([f.rgb for f in s.step() + s.flush()])

    assert main(release + ["--out", str(tmp_path / "plain.safetensors")]) == 0
    plain_engine = load_engine(weights=tmp_path / "plain.safetensors", device="cpu")
    moved = frames(engine).astype(int)  # equal up to float noise (see tests/engine/test_session.py)
    assert np.abs(moved - frames(plain_engine, driver=model_view(face, engine.cfg.vae.resolution))).mean() < 1
    assert np.abs(moved - frames(plain_engine)).mean() > 3
    assert main(release + ["--out", str(tmp_path / "off.safetensors"), "--driver", str(tmp_path / "face.png"),
                           "--model-driver", "off"]) == 0
    assert np.array_equal(frames(load_engine(weights=tmp_path / "off.safetensors", device="cpu")),
                          frames(plain_engine))
    (tmp_path / "bad.png").write_bytes(b"not an image")
    assert main(release + ["--out", str(tmp_path / "x.safetensors"), "--driver", str(tmp_path / "bad.png")]) == 2
    assert "--driver" in capsys.readouterr().err


def test_torchrun_two_processes_gloo(pack, tmp_path):
    """`torchrun --nproc_per_node 2` runs the same trainer with DDP over gloo; rank 0 writes."""
    import os
    import shutil
    import subprocess
    import sys

    torchrun = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")
    run = tmp_path / "ddp"
    cmd = [torchrun, "--nproc_per_node", "2", "--master_port", "29517", "-m", "engine.cli", "train", "vae",
           "--preset", "tiny", "--pack", str(pack), "--out", str(run), "--device", "cpu", "--max-steps", "3",
           "--batch", "1", "--workers", "1", "--log-every", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (run / "vae.safetensors").exists() and (run / "ckpt" / "train.safetensors").exists()
    rows = (run / "log.csv").read_text().splitlines()
    assert len(rows) == 4  # header + 3 steps, written once (rank 0 only)
    # the rank-0 checkpoint resumes in a single process
    assert train(pack, run, "vae", 4, "--resume") == 0


@pytest.fixture(scope="module")
def mixed_pack(tmp_path_factory):
    """Two talking clips and one clip without audio (like ../shared/data/visual_only)."""
    src = tmp_path_factory.mktemp("mixed")
    for i, name in enumerate(["amy", "bob", "mute"]):
        a = synth.speech(2.5, seed=i)
        M.write_video(src / f"{name}.mp4", synth.talking_frames(a, 25, canvas=(240, 200), motion=3), fps=25,
                      audio=None if name == "mute" else a)
    out = tmp_path_factory.mktemp("mixedpack")
    prepare([src], out, PrepareConfig(size=32, max_clip_s=2.5, min_clip_s=1.0, val_percent=0), progress=False)
    return out


def _drawn_from(x0: torch.Tensor, latents: torch.Tensor) -> bool:
    """Is the training window x0 [C,T,h,w] a slice of a clip's latents [C,T',h,w]?"""
    t = x0.shape[1]
    return any(torch.equal(x0, latents[:, j:j + t]) for j in range(latents.shape[1] - t + 1))


def _live_head(step):
    """A fresh generator predicts zero velocity whatever its inputs (zero-initialised output head and block
    gates): perturb every DiT weight so that what it reads shows in the loss."""
    with torch.no_grad():
        for p in step.dit.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return step


def test_video_only_clips_train_with_the_unknown_audio(mixed_pack, tmp_path, capsys):
    """--video-only-share P: clips without usable audio join the latent cache (recorded as such) and are
    drawn for a share of the examples, always with the training-only "unknown audio" embedding, never the
    CFG null; P = 0 leaves the batches as before, and exports never hold the unknown embedding."""
    import dataclasses

    from engine.config import EngineConfig
    from engine.train import latent_cache
    from engine.train.config import TrainConfig
    from engine.train.data import step_generator
    from engine.train.gen_task import GeneratorTask

    assert train(mixed_pack, tmp_path / "vae", "vae", 1) == 0
    cache = tmp_path / "latents.safetensors"
    assert train(mixed_pack, tmp_path / "g0", "generator", 0, "--vae", str(tmp_path / "vae/vae.safetensors"),
                 "--save-latents", str(cache), "--latents-without-audio", "--video-only-share", "0.5") == 0
    vcfg, cached, scale = latent_cache.load(cache, Pack(mixed_pack))  # the mute clip needs no audio file
    mute = [c for c in cached if c["audio"] is None]
    assert len(cached) == 3 and len(mute) == 1 and "mute" in mute[0]["id"]
    cfg = dataclasses.replace(EngineConfig.tiny(), vae=vcfg.vae)
    tcfg = TrainConfig(task="generator", batch=8, blocks=2, audio_drop=1.0)
    cpu = torch.device("cpu")

    mixed = GeneratorTask(cfg, dataclasses.replace(tcfg, video_only_share=0.5), cached, scale)
    silent = talking = 0
    for step in range(4):
        b = mixed.batch(step_generator(0, step), step, cpu)
        for x0, dropped, unknown in zip(b["x0"], b["drop_audio"], b["video_only"]):
            is_mute = _drawn_from(x0, mute[0]["latents"])
            assert bool(unknown) == is_mute and bool(dropped) != is_mute  # audio_drop 1: all talking ones null
            silent, talking = silent + is_mute, talking + (not is_mute)
    assert silent > 4 and talking > 4  # ~half of 32
    step_module = _live_head(mixed.module)
    b = mixed.batch(step_generator(0, 0), 0, cpu)
    b["video_only"][:] = True
    with torch.no_grad():
        step_module.video_only_audio.fill_(3.0)
        loss_unknown = float(step_module(b)[0])
        step_module.video_only_audio.zero_()
        assert float(step_module(b)[0]) != loss_unknown  # the embedding reaches the DiT
    exported = mixed.export({k: v for k, v in step_module.state_dict().items()})
    assert "video_only_audio" not in exported and "dit.null_audio" in exported

    off = GeneratorTask(cfg, tcfg, cached, scale)  # share 0: the mute clip is left out ...
    without = GeneratorTask(cfg, tcfg, [c for c in cached if c["audio"] is not None], scale)
    a, b = off.batch(step_generator(0, 3), 3, cpu), without.batch(step_generator(0, 3), 3, cpu)
    assert torch.equal(a["x0"], b["x0"]) and torch.equal(a["noise"], b["noise"])  # ... and the RNG stream is as before

    assert main(["train", "generator", "--preset", "tiny", "--latents", str(cache), "--pack", str(mixed_pack),
                 "--out", str(tmp_path / "g"), "--device", "cpu", "--max-steps", "2", "--batch", "4",
                 "--video-only-share", "0.5"]) == 0
    # A continued run keeps the learned embedding: it is saved apart from the export and --init takes it.
    kept = _weights(tmp_path / "g/training-only.safetensors")
    assert list(kept) == ["video_only_audio"] and bool(kept["video_only_audio"].abs().sum() > 0)
    assert main(["train", "generator", "--preset", "tiny", "--latents", str(cache), "--pack", str(mixed_pack),
                 "--out", str(tmp_path / "g2"), "--device", "cpu", "--max-steps", "0", "--video-only-share", "0.5",
                 "--init", str(tmp_path / "g/generator.safetensors"),
                 "--init", str(tmp_path / "g/training-only.safetensors")]) == 0
    assert torch.equal(_weights(tmp_path / "g2/training-only.safetensors")["video_only_audio"],
                       kept["video_only_audio"])
    assert main(["train", "generator", "--preset", "tiny", "--latents", str(cache), "--out", str(tmp_path / "x"),
                 "--device", "cpu", "--max-steps", "1", "--video-only-share", "1.5"]) == 2
    talking_only = tmp_path / "talking.safetensors"  # built without the flag: the mute clip is not in it
    assert train(mixed_pack, tmp_path / "g1", "generator", 0, "--vae", str(tmp_path / "vae/vae.safetensors"),
                 "--save-latents", str(talking_only)) == 0
    assert (tmp_path / "g1/generator.safetensors").exists()
    assert not (tmp_path / "g1/training-only.safetensors").exists()  # runs without the share have none
    assert main(["train", "generator", "--preset", "tiny", "--latents", str(talking_only), "--out",
                 str(tmp_path / "y"), "--device", "cpu", "--max-steps", "1", "--video-only-share", "0.3"]) == 2
    assert "no clips without usable audio" in capsys.readouterr().err


def test_self_history_replaces_the_history_of_a_share_of_examples():
    """--self-history P: a share P of the examples sees the model's own one-step predictions as history;
    P = 0 draws nothing more (older runs' batches stay the same) and P = 1 changes the loss."""
    import dataclasses

    from engine.config import EngineConfig
    from engine.train.config import TrainConfig
    from engine.train.data import step_generator
    from engine.train.gen_task import GeneratorTask

    cfg = EngineConfig.tiny()
    c, s = cfg.vae.latent_channels, cfg.vae.latent_size
    lat = [{"latents": torch.randn(c, 6, s, s), "refs": torch.randn(8, c, s, s),
            "audio": torch.randn(16000)} for _ in range(2)]
    tcfg = TrainConfig(task="generator", batch=4, blocks=4, audio_drop=0.0, ref_drop=0.0)
    cpu = torch.device("cpu")
    plain = GeneratorTask(cfg, tcfg, lat, 1.0)
    own = GeneratorTask(cfg, dataclasses.replace(tcfg, self_history=1.0), lat, 1.0)
    a, b = plain.batch(step_generator(0, 2), 2, cpu), own.batch(step_generator(0, 2), 2, cpu)
    assert "self_history" not in a and bool(b["self_history"].all())
    assert all(torch.equal(a[k], b[k]) for k in ("x0", "noise", "hist_noise", "t", "t_hist"))
    assert float(b["t_self"].min()) >= 0.5
    with torch.no_grad():
        loss_own = float(_live_head(own.module)(b)[0])
        b["self_history"][:] = False
        assert float(own.module(b)[0]) != loss_own
    with pytest.raises(ValueError, match="self_history"):
        TrainConfig(task="generator", self_history=1.5)


@pytest.fixture(scope="module")
def cache(pack, tmp_path_factory):
    """A latent cache of the pack (a 1-step VAE, talking clips): generator runs without the VAE."""
    tmp = tmp_path_factory.mktemp("cache")
    assert train(pack, tmp / "vae", "vae", 1) == 0
    assert train(pack, tmp / "g0", "generator", 0, "--vae", str(tmp / "vae/vae.safetensors"),
                 "--save-latents", str(tmp / "latents.safetensors")) == 0
    return tmp / "latents.safetensors"


def test_augmented_copies_are_other_faces_with_the_same_audio(cache, pack, tmp_path, capsys):
    """--augment-copies K: each clip is cached K more times, recoloured and zoomed, the odd copies mirrored (so
    their latents and reference latents differ from the clip's), with the clip's own audio, under ids CLIP~aK that a
    --mute-clips entry for the clip also matches; the copies are seeded, so a rebuild gives the same cache."""
    from engine.train import latent_cache

    vae = str(cache.parent / "vae/vae.safetensors")
    paths = [tmp_path / f"aug{i}.safetensors" for i in range(2)]
    for i, path in enumerate(paths):
        assert train(pack, tmp_path / f"g{i}", "generator", 0, "--vae", vae, "--save-latents", str(path),
                     "--augment-copies", "2") == 0
    _, plain, _ = latent_cache.load(cache)
    _, aug, _ = latent_cache.load(paths[0])
    by_id = {c["id"]: c for c in aug}
    assert sorted(by_id) == sorted(f"{c['id']}{s}" for c in plain for s in ("", "~a1", "~a2"))
    def diff(a, b):
        return float((a - b).abs().mean())

    for c in plain:
        orig, mirrored, recoloured = (by_id[c["id"] + s] for s in ("", "~a1", "~a2"))
        assert torch.equal(orig["audio"], mirrored["audio"]) and torch.equal(orig["audio"], recoloured["audio"])
        assert orig["latents"].shape == mirrored["latents"].shape
        moving = diff(orig["latents"][:, 1:], orig["latents"][:, :-1])  # how much the clip itself changes
        assert diff(orig["latents"], mirrored["latents"]) > 2 * moving
        assert diff(orig["refs"], mirrored["refs"]) > 2 * moving
        assert diff(orig["latents"], recoloured["latents"]) > 0.005
    again = {c["id"]: c for c in latent_cache.load(paths[1])[1]}
    assert all(torch.equal(again[k]["latents"], v["latents"]) for k, v in by_id.items())
    first = plain[0]["id"]
    assert latent_cache.mute(aug, [first]) == (3, [])
    assert main(["train", "generator", "--preset", "tiny", "--latents", str(cache), "--out", str(tmp_path / "x"),
                 "--device", "cpu", "--max-steps", "1", "--augment-copies", "1"]) == 2
    assert "--augment-copies applies when the latents are built" in capsys.readouterr().err


def test_mute_clips_leaves_the_listed_clips_audio_out(cache, tmp_path, capsys, caplog):
    """--mute-clips FILE: the listed talking clips (ids or id prefixes; poor lip sync) lose their audio, so the
    generator leaves them out (or draws them as video-only examples); a line that matches no clip and a list
    that mutes every clip are refused with a message, never silently ignored."""
    from engine.train import latent_cache

    _, cached, _ = latent_cache.load(cache)
    ids = sorted(c["id"] for c in cached)
    assert len(ids) >= 3 and all(c["audio"] is not None for c in cached)
    bob = [i for i in ids if i.startswith("bob")]
    lst = tmp_path / "mute.txt"
    lst.write_text(f"# weak sync\n{ids[0]}\nbob  # every clip of bob\n\n")
    assert latent_cache.read_clip_list(lst) == [ids[0], "bob"]
    n, unknown = latent_cache.mute(cached, latent_cache.read_clip_list(lst))
    assert unknown == [] and n == len({ids[0], *bob}) >= 2
    assert sorted(c["id"] for c in cached if c["audio"] is None) == sorted({ids[0], *bob})

    def run(name, text):
        lst.write_text(text)
        return main(["train", "generator", "--preset", "tiny", "--latents", str(cache), "--out",
                     str(tmp_path / name), "--device", "cpu", "--max-steps", "1", "--batch", "2",
                     "--mute-clips", str(lst)])

    with caplog.at_level("INFO"):
        assert run("g1", "bob\n") == 0
    assert "the audio of %d clips is left out" % len(bob) in caplog.text
    capsys.readouterr()
    assert run("g2", "bob\nnobody_0000\n") == 2
    err = capsys.readouterr().err
    assert "match no clip" in err and "nobody_0000" in err
    assert run("g3", "".join(i + "\n" for i in ids)) == 2
    assert "no clips with usable audio" in capsys.readouterr().err


def test_encoder_jitter_recolours_only_what_the_encoder_sees(pack, tmp_path, monkeypatch):
    """--encoder-jitter S: the encoder gets a recoloured copy of the clip, while the loss still compares the
    decode with the original clip and the references keep their colours; other batch tensors stay as without
    it (drawn last), and S outside [0, 1] is refused."""
    from engine.train.config import TrainConfig

    _, jit, a, b = _vae_batches_with(pack, 5, encoder_jitter=0.5)
    assert "enc_video" not in a and all(torch.equal(a[k], b[k]) for k in a)
    enc = b["enc_video"]
    assert enc.shape == b["video"].shape and float(enc.abs().max()) <= 1
    assert float((enc - b["video"]).abs().mean()) > 0.02  # visibly recoloured
    seen = []
    real_encode = jit.module.vae.encode
    monkeypatch.setattr(jit.module.vae, "encode", lambda v: (seen.append(v), real_encode(v))[1])
    with torch.no_grad():
        loss_jit = jit.loss(jit.module, b)[0]
        loss_plain = jit.loss(jit.module, a)[0]
    assert torch.equal(seen[0], enc) and torch.equal(seen[1], a["video"])
    assert not torch.equal(loss_jit, loss_plain)  # same target, other latent
    with pytest.raises(ValueError, match="encoder_jitter"):
        TrainConfig(encoder_jitter=1.5)
    assert train(pack, tmp_path / "bad", "vae", 1, "--encoder-jitter", "-1") == 2
    assert train(pack, tmp_path / "run", "vae", 1, "--encoder-jitter", "0.3") == 0


def test_ref_residual_trains_the_flow_on_the_departure_from_the_references(cache, tmp_path, capsys, caplog):
    """--ref-residual: the flow's target is (latent - mean reference latent) * scale, the scale gives that
    residual unit std, the export records it, and the model it makes renders; other batch draws stay."""
    import dataclasses

    from engine.api import load_engine
    from engine.train import latent_cache
    from engine.train.config import TrainConfig
    from engine.train.data import step_generator
    from engine.train.gen_task import GeneratorTask, residual_scale

    cfg, cached, _ = latent_cache.load(cache)
    scale = residual_scale(cached)
    res = torch.cat([(c["latents"] - c["refs"][0].unsqueeze(1)).flatten() for c in cached])
    assert float((res * scale).std()) == pytest.approx(1.0, rel=1e-4)
    tcfg = TrainConfig(task="generator", batch=3, blocks=2)
    rcfg = dataclasses.replace(cfg, dit=dataclasses.replace(cfg.dit, ref_residual=scale))
    cpu = torch.device("cpu")
    a = GeneratorTask(cfg, tcfg, cached, 1.0).batch(step_generator(0, 1), 1, cpu)
    b = GeneratorTask(rcfg, tcfg, cached, 1.0).batch(step_generator(0, 1), 1, cpu)
    torch.testing.assert_close(b["x0"], (a["x0"] - a["refs"].mean(1).unsqueeze(2)) * scale)
    assert not torch.allclose(a["x0"], b["x0"])
    assert all(torch.equal(a[k], b[k]) for k in ("refs", "noise", "t", "t_hist", "drop_refs"))

    with caplog.at_level("INFO"):
        assert main(["train", "generator", "--preset", "tiny", "--latents", str(cache), "--out", str(tmp_path / "g"),
                     "--device", "cpu", "--max-steps", "2", "--batch", "2", "--ref-residual"]) == 0
    assert "residual scale %.4f" % scale in caplog.text
    assert load_weights(tmp_path / "g/generator.safetensors")[0].dit.ref_residual == pytest.approx(scale)
    capsys.readouterr()
    out = tmp_path / "model.safetensors"
    assert main(["release", "--vae", str(cache.parent / "vae/vae.safetensors"), "--generator",
                 str(tmp_path / "g/generator.safetensors"), "--out", str(out)]) == 0
    engine = load_engine(weights=out, device="cpu")
    assert engine.cfg.dit.ref_residual == pytest.approx(scale)
    s = engine.open_session([np.zeros((40, 40, 3), np.uint8)], seed=0)
    s.push_audio(np.zeros(8000, np.float32), 16000)
    assert len(s.step() + s.flush()) == 12


def test_mouth_weight_counts_the_mouth_cells_more(cache, tmp_path, capsys):
    """--mouth-weight W: the flow loss weighs the latent cells over the mouth (rows 5-6, columns 3-4 of the base
    8x8 grid) W times the rest, normalised so uniform errors give the plain loss; the run records it, logs the
    plain loss beside the weighted one, and values below 1 are refused."""
    from engine.flow.sampler import flow_loss, velocity_target
    from engine.train.gen_task import weighted_flow_loss
    from engine.train.losses import mouth_weights

    w = mouth_weights(8, 8, 4.0)
    assert w.sum() == 60 + 4 * 4 and torch.equal(w[5:7, 3:5], torch.full((2, 2), 4.0))
    assert mouth_weights(2, 2, 3.0).max() == 3.0  # a tiny grid still has one mouth cell
    x0, noise = torch.randn(2, 4, 3, 8, 8), torch.randn(2, 4, 3, 8, 8)
    target = velocity_target(x0, noise)
    uniform = target + 0.5
    assert weighted_flow_loss(uniform, x0, noise, w) == pytest.approx(flow_loss(uniform, x0, noise).item())
    mouth_only, rest_only = target.clone(), target.clone()
    mouth_only[..., 5, 3] += 1.0
    rest_only[..., 0, 0] += 1.0
    assert weighted_flow_loss(mouth_only, x0, noise, w) == pytest.approx(
        4 * weighted_flow_loss(rest_only, x0, noise, w).item())
    args = ["train", "generator", "--preset", "tiny", "--latents", str(cache), "--device", "cpu",
            "--max-steps", "2", "--batch", "2"]
    assert main([*args, "--out", str(tmp_path / "m"), "--mouth-weight", "3", "--history-noise-max", "0.9",
                 "--log-every", "1"]) == 0
    header = (tmp_path / "m/log.csv").read_text().splitlines()[0].split(",")
    assert {"flow", "weighted"} <= set(header)
    ck = json.loads(load_weights(tmp_path / "m/ckpt/train.safetensors")[2]["train_config"])
    assert (ck["mouth_weight"], ck["history_noise_max"]) == (3.0, 0.9)
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "bad"), "--mouth-weight", "0.5"]) == 2
    assert "mouth_weight" in capsys.readouterr().err


def test_vae_mouth_weight_weighs_the_mouth_pixels(pack, tmp_path):
    """train vae --mouth-weight W: L1 counts the mouth's pixels (160-223 x 96-159 of a 256² crop) W times; the
    log keeps the plain L1 beside the weighted one."""
    from engine.train.losses import mouth_weights

    w = mouth_weights(256, 256, 6.0)
    rows, cols = torch.nonzero(w == 6.0, as_tuple=True)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (160, 223, 96, 159)
    assert train(pack, tmp_path / "v", "vae", 2, "--mouth-weight", "6", "--log-every", "1") == 0
    header = (tmp_path / "v/log.csv").read_text().splitlines()[0].split(",")
    assert {"l1", "l1_weighted"} <= set(header)


def test_adversary_gives_each_side_only_its_own_gradient():
    """The VAE's adversarial term moves the reconstruction, never the discriminators; the discriminators' hinge
    term moves the discriminators, never the reconstruction (one optimiser trains both)."""
    from engine.train.adversarial import Adversary, hinge_d_loss, mouth_crop

    torch.manual_seed(0)
    adv = Adversary(width=8)
    real = torch.rand(2, 3, 32, 32) * 2 - 1
    recon = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_(True)
    g, d = adv(recon, real)
    g.backward(retain_graph=True)
    assert recon.grad is not None and recon.grad.abs().sum() > 0
    assert all(p.grad is None for p in adv.parameters())
    recon.grad = None
    d.backward()
    assert recon.grad is None and all(p.grad is not None for p in adv.parameters())
    assert mouth_crop(torch.zeros(1, 3, 256, 256)).shape[-2:] == (116, 116)  # rows 134-249, cols 70-185
    assert hinge_d_loss(torch.full((4,), 2.0), torch.full((4,), -2.0)) == 0  # both sides past the margin
    assert hinge_d_loss(torch.zeros(4), torch.zeros(4)) == 2
    torch.manual_seed(0)  # --adversarial-mouth M: the same discriminators, the mouth's term counted M times
    heavy = Adversary(width=8, mouth_weight=3.0)
    heavy.load_state_dict(adv.state_dict())
    frame_logit = -adv.frame(recon.detach()).mean()
    g1, g3 = adv(recon.detach(), real)[0], heavy(recon.detach(), real)[0]
    torch.testing.assert_close(g3 - frame_logit, 3 * (g1 - frame_logit))


def test_balanced_weight_matches_the_gradients_at_the_layer():
    """--adversarial W is relative: the term's gradient at the decoder's output layer is W times the
    reconstruction loss's, whatever the discriminators' scale; the graph stays for the step's backward."""
    from engine.train.adversarial import balanced_weight

    layer = torch.ones(3, requires_grad=True)
    rec, g = (2.0 * layer).sum(), (50.0 * layer).sum()  # gradients 2 and 50 per element
    w = balanced_weight(rec, g, layer, 0.5)
    assert float(w) == pytest.approx(0.5 * 2 / 50) and not w.requires_grad
    (rec + w * g).backward()  # still possible: the graph was kept
    assert torch.allclose(layer.grad, torch.full((3,), 2.0 + 0.5 * 2.0))
    assert float(balanced_weight((2.0 * layer).sum(), (0.0 * layer).sum(), layer, 0.5, cap=7.0)) == 7.0


def test_vae_adversarial_trains_discriminators_that_stay_out_of_the_export(pack, tmp_path, capsys):
    """train vae --adversarial W: discriminators of the frame and the mouth train with the VAE (logged, in the
    checkpoint, resumable), the export holds the VAE alone; other tasks refuse the flag."""
    assert train(pack, tmp_path / "a", "vae", 2, "--adversarial", "0.1", "--log-every", "1") == 0
    rows = (tmp_path / "a/log.csv").read_text().splitlines()
    last = dict(zip(rows[0].split(","), rows[-1].split(",")))
    assert {"g_adv", "d_hinge"} <= last.keys() and float(last["adv_effective"]) > 0  # balanced each step
    _, ck, meta = load_weights(tmp_path / "a/ckpt/train.safetensors")
    assert any(k.startswith("model.adversary.mouth.") for k in ck)
    vae_group, fine_group, disc_group = json.loads(meta["opt_groups"])  # the discriminators: GAN betas, no decay
    assert (disc_group["betas"], disc_group["weight_decay"]) == ([0.5, 0.9], 0.0)
    assert vae_group["betas"] == [0.9, 0.99] and vae_group["weight_decay"] > 0
    assert fine_group["betas"] == vae_group["betas"] and fine_group["lr_scale"] == 1  # tiny's fine fusion
    export = _weights(tmp_path / "a/vae.safetensors")
    assert export and all(k.startswith("vae.") for k in export)
    assert train(pack, tmp_path / "a", "vae", 3, "--adversarial", "0.1", "--resume") == 0
    assert json.loads(meta["train_config"])["adversarial_mouth"] == 1
    assert train(pack, tmp_path / "m", "vae", 1, "--adversarial", "0.1", "--adversarial-mouth", "3") == 0
    meta = load_weights(tmp_path / "m/ckpt/train.safetensors")[2]
    assert json.loads(meta["train_config"])["adversarial_mouth"] == 3
    capsys.readouterr()
    for flag in ("--adversarial", "--adversarial-mouth"):
        assert train(pack, tmp_path / "g", "generator", 1, flag, "0.1") == 2
        assert "VAE settings" in capsys.readouterr().err


def test_discriminators_learning_alone_leave_the_vae_as_without_them(pack, tmp_path):
    """Before --adversarial-start the discriminators train (at --disc-lr-scale times the VAE's rate) without
    touching the VAE: each parameter group is clipped on its own, so their gradients never shrink the VAE's
    step, and the export is the one of a run without them, bit for bit."""
    assert train(pack, tmp_path / "plain", "vae", 2, "--lr", "1e-3") == 0
    assert train(pack, tmp_path / "adv", "vae", 2, "--lr", "1e-3", "--adversarial", "0.5",
                 "--adversarial-start", "100", "--disc-lr-scale", "3", "--log-every", "1") == 0
    plain, adv = _weights(tmp_path / "plain/vae.safetensors"), _weights(tmp_path / "adv/vae.safetensors")
    assert plain.keys() == adv.keys() and all(torch.equal(plain[k], adv[k]) for k in plain)
    rows = (tmp_path / "adv/log.csv").read_text().splitlines()
    last = dict(zip(rows[0].split(","), rows[-1].split(",")))
    # groups: the VAE, its fine reference fusion (tiny has one), the discriminators (last)
    assert float(last["grad_norm_2"]) > 0 and float(last["adv_effective"]) == 0  # they learn; the VAE ignores them
    _, _, meta = load_weights(tmp_path / "adv/ckpt/train.safetensors")
    vae_group, _, disc_group = json.loads(meta["opt_groups"])
    assert disc_group["lr"] == pytest.approx(3 * vae_group["lr"]) and disc_group["lr_scale"] == 3


def test_fine_fusion_learns_at_its_own_rate(pack, tmp_path, capsys):
    """--fine-refs-lr-scale S: the fine reference fusion is its own AdamW group at S times the VAE's rate."""
    assert train(pack, tmp_path / "v", "vae", 2, "--lr", "1e-3", "--fine-refs-lr-scale", "10") == 0
    _, _, meta = load_weights(tmp_path / "v/ckpt/train.safetensors")
    vae_group, fine_group = json.loads(meta["opt_groups"])
    assert fine_group["lr_scale"] == 10 and fine_group["lr"] == pytest.approx(10 * vae_group["lr"])
    capsys.readouterr()
    assert train(pack, tmp_path / "g", "generator", 1, "--fine-refs-lr-scale", "10") == 2
    assert "VAE settings" in capsys.readouterr().err
