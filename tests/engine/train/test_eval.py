"""`avacast eval` on a generated pack with tiny random-weights models (issue 3 item 4)."""
import json
import math
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from engine.io import media as M
from engine.train.prepare import PrepareConfig, prepare
from tests.engine.train import synth

VAE_KEYS = {f"{m}_{k}" for m in ("psnr", "ssim") for k in (0, 1, 3)}


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    for i, name in enumerate(["amy", "bob"]):
        a = synth.speech(2.0, seed=i, pause=(0.9, 1.4))
        M.write_video(src / f"{name}.mp4", synth.talking_frames(a, 25, canvas=(240, 200), motion=2),
                      fps=25, audio=a)
    out = tmp_path_factory.mktemp("pack")
    # val_percent=100: every identity held out, so the default --split val has clips
    prepare([src], out, PrepareConfig(size=32, max_clip_s=2.0, min_clip_s=1.0, val_percent=100), progress=False)
    return out


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    from engine.api import build_model
    from engine.config import EngineConfig
    from engine.io.checkpoint import save_weights

    d = tmp_path_factory.mktemp("w")
    cfg = EngineConfig.tiny()
    state = build_model(cfg).state_dict()
    save_weights(d / "model.safetensors", state, cfg, kind="model")
    save_weights(d / "vae.safetensors", {k: v for k, v in state.items() if k.startswith("vae.")}, cfg, kind="vae",
                 shard_bytes=40_000)  # sharded like a real export: the first shard's path is given
    M.write_audio(d / "speech.wav", synth.speech(1.5, seed=7), 16_000)
    return d


def _saved(path, kind):
    import torch

    from engine.config import EngineConfig
    from engine.io.checkpoint import save_weights

    save_weights(path, {"x": torch.zeros(1)}, EngineConfig.tiny(), kind=kind)
    return path


def _eval(pack, w, out, *extra):
    return main(["eval", "--weights", str(w), "--pack", str(pack), "--device", "cpu", "--out", str(out), *extra])


def _finite(d: dict, keys) -> bool:
    return all(d[k] is not None and math.isfinite(d[k]) for k in keys)


def test_full_model_gives_vae_and_generation_metrics(pack, weights, tmp_path, capsys):
    assert _eval(pack, weights / "model.safetensors", tmp_path / "r.json", "--max-clips", "1",
                 "--seconds", "1.2", "--window", "9", "--history-noise", "0.3", "--cfg", "1.5",
                 "--anchor", "on") == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["kind"] == "model" and rep["resolution"] == 32
    sampler = rep["config"]["sampler"]  # the sampler the generation ran with
    assert (sampler["history_noise"], sampler["cfg"], sampler["anchor_first"]) == (0.3, 1.5, True)
    assert VAE_KEYS <= rep["vae"]["mean"].keys() and _finite(rep["vae"]["mean"], VAE_KEYS)
    assert len(rep["vae"]["clips"]) == 1 and rep["vae"]["clips"][0]["windows"] == 3  # 30 frames / 9
    gen = rep["generation"]["mean"]
    assert _finite(gen, ["gen_lipsync", "real_lipsync", "gen_stability", "real_stability", "gen_psnr_first_s",
                         "gen_psnr_after_1s", "still_psnr_after_1s"])
    assert _finite(rep["ceiling"]["mean"], ["vae_lipsync", "real_lipsync", "vae_mouth_corr"])
    assert "vae_mouth_gain" in rep["ceiling"]["mean"]  # None only where no real mouth moved
    assert rep["ceiling"]["mean"]["real_lipsync"] == pytest.approx(gen["real_lipsync"])
    assert rep["generation"]["clips"][0]["frames"] == 30
    stream = ["stream_full_psnr", "stream_short_psnr"]  # 1.2 s: the continuous stream past its first second
    assert _finite(rep["vae"]["mean"], stream)
    out = capsys.readouterr().out
    assert "| VAE references | PSNR (dB) | SSIM |" in out and "lip-sync score" in out and "Lip-sync ceiling" in out
    assert _finite(rep["vae"]["mean"], ["psnr_swap", "ssim_swap"]) and "| 1, of another person |" in out
    assert "VAE as one continuous stream" in out and "PSNR to the real clip" in out


def test_long_render_reports_first_and_last_span(pack, weights, tmp_path):
    assert _eval(pack, weights / "model.safetensors", tmp_path / "r.json", "--max-clips", "1", "--seconds", "0.4",
                 "--window", "9", "--long-audio", str(weights / "speech.wav"), "--long-seconds", "4",
                 "--save-renders", str(tmp_path / "renders")) == 0
    assert len(M.read_video(tmp_path / "renders/long_seed0.mp4")[0]) == 100  # 4 s at 25 fps, to look at
    lg = json.loads((tmp_path / "r.json").read_text())["long"]
    assert lg["seconds"] == 4 and lg["span_s"] == 2  # speech of 1.5 s looped to 4 s; halves compared
    assert _finite(lg, ["stability_first", "stability_last", "to_portrait_first", "to_portrait_last",
                        "psnr_to_portrait_first", "psnr_to_portrait_last"])


def test_drift_grows_when_the_render_leaves_the_portrait():
    """evaluate.drift (the long render's numbers, tools/drift_check.py): a render that is the portrait held still
    sits on it first and last; one that fades to another face over its last span moves away from it there."""
    from engine.train.evaluate import drift

    rng = np.random.default_rng(4)
    portrait, other = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    still = np.repeat(portrait[None], 100, 0)
    d = drift(still, portrait, 1.0)
    assert d["to_portrait_first"] == d["to_portrait_last"] == 0 and d["psnr_to_portrait_first"] > 60
    fading = still.copy()
    w = np.linspace(0, 1, 25)[:, None, None, None]  # the last second fades to the other face
    fading[-25:] = (w * other + (1 - w) * portrait).astype(np.uint8)
    d = drift(fading, portrait, 1.0)
    assert d["to_portrait_last"] > 0.1 and d["psnr_to_portrait_last"] < 20 < d["psnr_to_portrait_first"]
    assert d["stability_last"] > d["stability_first"] == 0


def test_long_render_portrait_is_cropped_as_the_app_does(pack, weights, tmp_path, monkeypatch, capsys):
    """--portrait gets the app's head-and-shoulders crop (a whole photo would put a small face in the frame)."""
    import cv2

    import engine.train.evaluate as evaluate_module

    seen = []

    def capture(weights, pack, cfg, device, long_audio, portrait, **kw):
        seen.append(portrait)
        raise ValueError("captured")

    monkeypatch.setattr(evaluate_module, "evaluate", capture)  # the CLI imports it when it runs
    photo = Path(__file__).resolve().parents[3] / "resources/default_portrait.png"  # 512 px, face + suit
    noise = np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "noise.png"), noise)
    for path in (photo, tmp_path / "noise.png"):
        assert _eval(pack, weights / "model.safetensors", tmp_path / "r.json", "--long-audio",
                     str(weights / "speech.wav"), "--portrait", str(path)) == 2
    assert seen[0].shape[0] == seen[0].shape[1] < 300  # a square around the face, not the whole photo
    assert seen[1].shape == noise.shape and "no face found in" in capsys.readouterr().err


def test_vae_only_file_skips_generation_with_a_note(pack, weights, tmp_path, capsys):
    """A VAE export: the reconstruction table and the lip-sync ceiling (its round trip of the real clips), no
    generation."""
    first = sorted(weights.glob("vae-*-of-*.safetensors"))[0]
    assert _eval(pack, first, tmp_path / "r.json", "--max-clips", "1", "--seconds", "0.4", "--window", "9",
                 "--save-renders", str(tmp_path / "rt")) == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["kind"] == "vae" and rep["generation"] is None
    assert _finite(rep["ceiling"]["mean"], ["vae_lipsync", "real_lipsync"])
    assert [p.name.endswith("_vae.mp4") for p in (tmp_path / "rt").iterdir()] == [True]
    assert _finite(rep["vae"]["mean"], VAE_KEYS)
    assert any("generation metrics skipped" in n for n in rep["notes"])
    assert "stream_full_psnr" not in rep["vae"]["mean"]  # 0.4 s: no stream past a first second to score
    assert "generation metrics skipped" in capsys.readouterr().out


@pytest.mark.parametrize("make,expect", [
    (lambda d: d / "missing.safetensors", "not found"),
    (lambda d: (d / "junk.safetensors").write_bytes(b"not a file") and d / "junk.safetensors", "safetensors"),
    (lambda d: _saved(d / "cache.safetensors", "latent_cache"), "eval needs a model, generator or VAE export"),
])
def test_bad_weights_is_one_line_exit_2(pack, tmp_path, capsys, make, expect):
    assert _eval(pack, make(tmp_path), tmp_path / "r.json") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("avacast eval:") and expect in err
    assert not (tmp_path / "r.json").exists()


def test_bad_pack_and_window_are_one_line_errors(pack, weights, tmp_path, capsys):
    assert _eval(tmp_path, weights / "model.safetensors", tmp_path / "r.json") == 2
    assert "not a pack" in capsys.readouterr().err
    assert _eval(pack, weights / "model.safetensors", tmp_path / "r.json", "--window", "10") == 2
    assert "4k+1" in capsys.readouterr().err


def test_lipsync_is_higher_with_own_audio_than_shifted():
    from engine.train.evaluate import score_pair

    audio = synth.speech(4.0, seed=3)
    frames = synth.talking_frames(audio, 25)
    own = score_pair(frames, audio, method="proxy")
    shifted = score_pair(frames, np.roll(audio, 16_000 // 25 * 12), method="proxy")  # 12 frames (0.48 s) late
    assert own["lipsync"] > 0.5 and abs(own["lag"]) <= 1
    assert own["lipsync"] > shifted["lipsync"] + 0.3


def test_silence_opening_and_stability_separate_closed_from_babbling():
    from engine.train.evaluate import score_pair

    audio = synth.speech(4.0, seed=4, pause=(1.5, 3.0))
    closed = score_pair(synth.talking_frames(audio, 25), audio, method="proxy")
    babble = score_pair(synth.talking_frames(synth.speech(4.0, seed=5), 25), audio, method="proxy")
    assert closed["silence_opening"] < 0.3 < babble["silence_opening"]
    assert closed["pause_opening"] < 0.3 < babble["pause_opening"]  # the 1.5 s pause, its edges left out
    assert 0 < closed["stability"] < 0.05
    still = score_pair(np.repeat(synth.talking_frames(audio, 25)[:1], 100, 0), audio, method="proxy")
    assert still["mouth_motion"] == 0 < closed["mouth_motion"]  # the opening's std: a frozen mouth does not move


def test_reference_frames_come_from_outside_the_window():
    from engine.train.evaluate import reference_indices, window_starts

    assert window_starts(100, 33, 250) == [0, 33, 66]
    assert window_starts(100, 33, 33) == [0]
    refs = reference_indices(100, 33, 33, 3)
    assert len(refs) == 3 and all(not 33 <= i < 66 for i in refs) and refs[0] == 0 and refs[-1] == 99
    assert reference_indices(9, 0, 9, 1) == [0]  # nothing outside: fall back to the clip itself
    assert reference_indices(100, 0, 33, 0) == []


class _CopyVAE(__import__("torch").nn.Module):
    """Perfect autoencoder (latent = video): eval must compare each window with itself, frame for frame."""

    def __init__(self):
        import torch
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.refs_seen = []

    def encode(self, video):
        return video, video

    def ref_features(self, refs):
        self.refs_seen.append(refs.shape[1])
        self.last_refs = refs
        return refs

    def decode(self, z, ref_tokens):
        return z


def test_vae_window_compares_aligned_frames_and_passes_references():
    from engine.train.evaluate import vae_window

    frames = np.random.default_rng(0).integers(0, 256, (40, 16, 16, 3), dtype=np.uint8)
    vae = _CopyVAE()
    other = np.full((16, 16, 3), 7, np.uint8)
    res = vae_window(vae, frames, 9, 9, (0, 1, 3), foreign=other)
    assert vae.refs_seen == [0, 1, 3, 1] and set(res) == {0, 1, 3, "swap"}
    assert float(vae.last_refs.max()) == float(vae.last_refs.min()) == pytest.approx(7 / 127.5 - 1)  # foreign
    assert all(r["psnr"] > 90 and r["ssim"] > 0.999 for r in res.values())


def test_references_change_a_trained_like_vae():
    import torch

    from engine.config import EngineConfig
    from engine.train.evaluate import vae_window
    from engine.vae.model import CausalVAE

    torch.manual_seed(0)
    vae = CausalVAE(EngineConfig.tiny().vae).eval()
    with torch.no_grad():  # random init zeroes D_ref's output; perturb it so references reach the picture
        for p in vae.dref.parameters():
            p.add_(0.3 * torch.randn_like(p))
    frames = synth.talking_frames(synth.speech(1.6, seed=1), 25, size=32)
    other = synth.talking_frames(synth.speech(0.2, seed=2), 25, size=32, motion=0)[0][::-1]  # upside down
    res = vae_window(vae, frames, 0, 9, (0, 1, 3), foreign=other)
    assert res[0]["psnr"] != res[3]["psnr"] and res["swap"]["psnr"] != res[1]["psnr"]


def test_max_clips_covers_identities_round_robin():
    from types import SimpleNamespace as C

    from engine.train.evaluate import select_clips

    clips = [C(id=i, identity=i[0]) for i in ["a0", "a1", "a2", "b0", "b1", "c0"]]
    assert [c.id for c in select_clips(clips, 4)] == ["a0", "b0", "c0", "a1"]
    assert [c.id for c in select_clips(clips, None)] == [c.id for c in clips]


def test_likeness_drops_when_the_render_leaves_the_real_clip_after_one_second():
    from engine.train.evaluate import likeness

    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (60, 16, 16, 3), dtype=np.uint8)
    kept = np.clip(real.astype(int) + rng.integers(-4, 5, real.shape), 0, 255).astype(np.uint8)
    lost = kept.copy()
    lost[25:] = rng.integers(0, 256, (35, 16, 16, 3), dtype=np.uint8)  # another "face" from 1 s on
    a, b = likeness(kept, real), likeness(lost, real)
    assert a["psnr_first_s"] == pytest.approx(b["psnr_first_s"]) and a["psnr_first_s"] > 35
    assert a["psnr_after_1s"] > 35 > 15 > b["psnr_after_1s"]
    assert likeness(kept[:20], real)["psnr_after_1s"] is None  # under a second: no after-1s value


def test_generation_only_skips_the_vae_windows(pack, weights, tmp_path, capsys):
    assert _eval(pack, weights / "model.safetensors", tmp_path / "r.json", "--max-clips", "1", "--seconds", "1.2",
                 "--generation-only") == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["vae"] is None and _finite(rep["generation"]["mean"], ["gen_lipsync", "gen_psnr_after_1s"])
    out = capsys.readouterr().out
    assert "lip-sync score" in out and "VAE references" not in out
    first = sorted(weights.glob("vae-*-of-*.safetensors"))[0]  # a VAE export: its lip-sync ceiling alone
    assert _eval(pack, first, tmp_path / "v.json", "--generation-only", "--max-clips", "1", "--seconds", "1.2") == 0
    rep = json.loads((tmp_path / "v.json").read_text())
    assert rep["vae"] is None and rep["generation"] is None and _finite(rep["ceiling"]["mean"], ["vae_lipsync"])
    assert _eval(pack, first, tmp_path / "w.json", "--generation-only", "--no-ceiling") == 2
    assert "no generation to evaluate" in capsys.readouterr().err


def test_precision_is_chosen_and_reported(pack, weights, tmp_path, capsys):
    """--precision bf16 runs the model in bf16 even on a CPU (the GPU's default, to tell its effect apart) and
    the report says so; an unknown precision is refused by the parser."""
    first = sorted(weights.glob("vae-*-of-*.safetensors"))[0]
    args = ("--generation-only", "--max-clips", "1", "--seconds", "1.2")
    assert _eval(pack, first, tmp_path / "b.json", *args, "--precision", "bf16") == 0
    assert json.loads((tmp_path / "b.json").read_text())["dtype"] == "bfloat16"
    assert _eval(pack, weights / "model.safetensors", tmp_path / "f.json", *args, "--no-ceiling") == 0
    assert json.loads((tmp_path / "f.json").read_text())["dtype"] == "float32"  # auto on a CPU
    with pytest.raises(SystemExit):
        _eval(pack, first, tmp_path / "x.json", *args, "--precision", "fp8")
    assert "invalid choice" in capsys.readouterr().err


def test_renders_average_several_seeds(pack, weights, tmp_path):
    """--renders N scores N renders per clip (seeds SEED..SEED+N-1) and reports their mean: one render's
    lip-sync score is mostly sampling noise."""
    def gen_row(name, *extra):
        assert _eval(pack, weights / "model.safetensors", tmp_path / name, "--max-clips", "1", "--seconds", "1.2",
                     "--generation-only", *extra) == 0
        return json.loads((tmp_path / name).read_text())["generation"]["clips"][0]

    one, other, both = gen_row("a.json"), gen_row("b.json", "--seed", "1"), gen_row("c.json", "--renders", "2")
    assert both["renders"] == 2 and one["renders"] == 1
    for k in ("gen_psnr_after_1s", "gen_stability"):
        assert both[k] == pytest.approx((one[k] + other[k]) / 2)
    assert one["gen_psnr_after_1s"] != other["gen_psnr_after_1s"]  # the seeds do draw other streams
    assert both["real_lipsync"] == one["real_lipsync"]  # the real clip is scored once


def test_identity_hold_flags_reach_the_evaluated_sampler(pack, weights, tmp_path, capsys):
    """eval --identity-hold/--hold-seconds/--hold-history set the sampler the report records; a bad value is a
    one-line error."""
    assert _eval(pack, weights / "model.safetensors", tmp_path / "h.json", "--max-clips", "1", "--seconds", "1.2",
                 "--generation-only", "--identity-hold", "0.5", "--hold-seconds", "3", "--hold-history", "on",
                 "--hold-mouth", "0.25", "--motion-gain", "1.5", "--mouth-gain", "2") == 0
    sampler = json.loads((tmp_path / "h.json").read_text())["config"]["sampler"]
    assert (sampler["identity_hold"], sampler["hold_seconds"], sampler["hold_history"]) == (0.5, 3.0, True)
    assert (sampler["hold_mouth"], sampler["motion_gain"], sampler["mouth_gain"]) == (0.25, 1.5, 2.0)
    assert _eval(pack, weights / "model.safetensors", tmp_path / "x.json", "--generation-only",
                 "--identity-hold", "2") == 2
    assert "identity_hold in [0, 1]" in capsys.readouterr().err


def test_saved_renders_are_written_and_scored_again_without_rendering(pack, weights, tmp_path, capsys):
    """--save-renders DIR writes each render (CLIP_seedN.mp4); --from-renders DIR scores those files instead
    of rendering (how GPU renders get landmark scores on a machine with mediapipe); a missing file is a
    one-line error."""
    d = tmp_path / "renders"
    args = ("--max-clips", "1", "--seconds", "1.2", "--generation-only", "--renders", "2")
    assert _eval(pack, weights / "model.safetensors", tmp_path / "a.json", *args, "--save-renders", str(d)) == 0
    first = json.loads((tmp_path / "a.json").read_text())
    row = first["generation"]["clips"][0]
    files = sorted(p.name for p in d.iterdir())
    assert len(files) == 3 and files[0].endswith("_seed0.mp4") and files[1].endswith("_seed1.mp4")
    assert files.pop().endswith("_vae.mp4")  # the VAE round trip (the ceiling), reused too
    assert len(M.read_video(d / files[0])[0]) == row["frames"]
    # Replace the renders by the real clip: a re-scored report must now see a perfect likeness.
    from engine.train.pack import Pack

    p = Pack(pack)
    clip = next(c for c in p.clips("val", audio=True) if files[0].startswith(c.id.replace("/", "_")))
    real = p.load_frames(clip, 32)[:row["frames"]]
    for f in files:
        M.write_video(d / f, real, crf=0)
    assert _eval(pack, weights / "model.safetensors", tmp_path / "b.json", *args, "--from-renders", str(d),
                 "--no-ceiling") == 0
    second = json.loads((tmp_path / "b.json").read_text())
    again = second["generation"]["clips"][0]
    assert again["gen_psnr_after_1s"] > 40 > row["gen_psnr_after_1s"]
    assert first["ceiling"] is not None and second["ceiling"] is None  # --no-ceiling
    (d / files[1]).unlink()
    assert _eval(pack, weights / "model.safetensors", tmp_path / "c.json", *args, "--from-renders", str(d)) == 2
    assert "no saved render" in capsys.readouterr().err


def test_renders_only_saves_what_a_later_eval_scores(pack, weights, tmp_path, capsys):
    """--renders-only (a GPU without the face detector): the renders and round trips are written, nothing is
    scored; --from-renders on another machine then scores exactly those files."""
    w, d = weights / "model.safetensors", tmp_path / "renders"
    args = ["--max-clips", "2", "--seconds", "0.6", "--generation-only", "--renders", "2"]
    assert _eval(pack, w, tmp_path / "a.json", *args, "--save-renders", str(d), "--renders-only") == 0
    saved = json.loads((tmp_path / "a.json").read_text())
    assert saved["generation"] is None and saved["ceiling"] is None and "not scored" in saved["notes"][-1]
    assert len(list(d.glob("*_seed[01].mp4"))) == 4 and len(list(d.glob("*_vae.mp4"))) == 2
    assert _eval(pack, w, tmp_path / "b.json", *args, "--from-renders", str(d)) == 0
    scored = json.loads((tmp_path / "b.json").read_text())
    assert len(scored["generation"]["clips"]) == 2 and len(scored["ceiling"]["clips"]) == 2
    capsys.readouterr()
    assert _eval(pack, w, tmp_path / "c.json", *args, "--renders-only") == 2  # nowhere to save them
    assert "saved" in capsys.readouterr().err
    assert _eval(pack, w, tmp_path / "c.json", *args, "--save-renders", str(d), "--renders-only",
                 "--long-audio", str(weights / "speech.wav")) == 2


def test_portraits_drive_unseen_faces_with_the_clips_speech(pack, weights, tmp_path, capsys):
    """--portraits A B: render k of clip i starts from portrait (i + k) mod 2 (its own file CLIP@NAME_seedK) and
    its likeness is measured to that portrait as the model sees it: a render that is the portrait held still
    scores a perfect likeness; renders-only + from-renders works as for the clips' own frames."""
    import cv2

    from engine.train.evaluate import model_view

    rng = np.random.default_rng(1)
    paths = []
    for name, colour in (("ann", (200, 80, 60)), ("ben", (40, 90, 210))):
        img = np.clip(np.array(colour) + rng.normal(0, 20, (64, 48, 3)), 0, 255).astype(np.uint8)
        cv2.imwrite(str(tmp_path / f"{name}.png"), img[..., ::-1])
        paths.append(str(tmp_path / f"{name}.png"))
    w, d = weights / "model.safetensors", tmp_path / "renders"
    args = ["--max-clips", "2", "--seconds", "1.2", "--generation-only", "--no-ceiling", "--renders", "2",
            "--portraits", *paths, "--no-crop"]
    assert _eval(pack, w, tmp_path / "a.json", *args, "--save-renders", str(d), "--renders-only") == 0
    files = sorted(f.name for f in d.iterdir())
    assert len(files) == 4 and sum("_ann_seed0" in f for f in files) == sum("_ann_seed1" in f for f in files) == 1
    assert _eval(pack, w, tmp_path / "b.json", *args, "--from-renders", str(d)) == 0
    report = json.loads((tmp_path / "b.json").read_text())
    assert report["config"]["portraits"] == ["ann", "ben"]
    rows = report["generation"]["clips"]
    assert [r["portraits"] for r in rows] == [["ann", "ben"], ["ben", "ann"]]  # every clip drives every portrait
    faces = report["generation"]["portraits"]  # per portrait: the means over the renders that started from it
    ann = [d for r in rows for d in r["draws"] if d["portrait"] == "ann"]
    assert faces["ann"]["renders"] == len(ann) == 2
    assert faces["ann"]["lipsync"] == pytest.approx(np.mean([d["lipsync"] for d in ann]))
    assert faces["ann"]["mouth_motion"] == pytest.approx(np.mean([d["mouth_motion"] for d in ann]))
    out = capsys.readouterr().out
    assert "| mouth motion (std of the opening) |" in out and "| mouth opening in pauses of 320 ms" in out
    assert rows[0]["still_psnr_after_1s"] is None and "PSNR to the portrait" in out and "| ann | 2 |" in out
    held = {n: model_view(M.read_image(p), 32) for n, p in zip(("ann", "ben"), paths)}
    for f in files:  # every render replaced by its portrait held still: the likeness to it is perfect
        M.write_video(d / f, np.repeat(held[f.rsplit("_seed", 1)[0][-3:]][None], rows[0]["frames"], axis=0), crf=0)
    assert _eval(pack, w, tmp_path / "c.json", *args, "--from-renders", str(d)) == 0
    again = json.loads((tmp_path / "c.json").read_text())["generation"]["clips"]
    assert all(a["gen_psnr_after_1s"] > 30 > r["gen_psnr_after_1s"] + 5 for a, r in zip(again, rows))  # (yuv420p)
    assert _eval(pack, w, tmp_path / "d.json", *args[:-3], paths[0], paths[0], "--no-crop") == 2
    assert "same name" in capsys.readouterr().err


def test_driver_moves_the_portrait_renders(pack, weights, tmp_path, capsys):
    """--driver own: each clip's first frame drives the portrait renders (other frames than without a driver, the
    report says so); --driver IMG: that face does; own without --portraits is a one-line error."""
    import cv2

    rng = np.random.default_rng(2)
    ann, ben = tmp_path / "ann.png", tmp_path / "ben.png"
    for path in (ann, ben):
        cv2.imwrite(str(path), rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    w = weights / "model.safetensors"
    args = ["--max-clips", "1", "--seconds", "1.2", "--generation-only", "--no-ceiling", "--portraits", str(ann),
            "--no-crop", "--renders-only"]
    videos = {}
    for name, extra in (("plain", []), ("own", ["--driver", "own"]), ("ben", ["--driver", str(ben)]),
                        ("self", ["--driver", str(ann)])):
        d = tmp_path / name
        assert _eval(pack, w, tmp_path / f"{name}.json", *args, "--save-renders", str(d), *extra) == 0
        videos[name] = M.read_video(next(d.iterdir()))[0].astype(np.int16)
        config = json.loads((tmp_path / f"{name}.json").read_text())["config"]
        assert config["driver"] == ("own" if name == "own" else name != "plain") and not config["model_driver"]
    change = {k: np.abs(v - videos["plain"]).mean() for k, v in videos.items()}
    assert change["own"] > 3 and change["ben"] > 3 and np.abs(videos["ben"] - videos["own"]).mean() > 3
    # the portrait as its own driver: the same stream up to float noise, which the tiny random model's
    # autoregression can amplify in a few pixels (observed: mean 0 or 0.35 of 255 on this CPU, run to run)
    assert change["self"] < 1
    scored = [a for a in args if a != "--renders-only"] + ["--from-renders", str(tmp_path / "own"), "--driver", "own"]
    capsys.readouterr()
    assert _eval(pack, w, tmp_path / "own_scored.json", *scored) == 0
    assert "from 1 other portraits, moved by each clip's own face" in capsys.readouterr().out
    assert _eval(pack, w, tmp_path / "x.json", "--max-clips", "1", "--generation-only", "--driver", "own") == 2
    assert "give the portraits too" in capsys.readouterr().err


def test_generation_title_says_what_moved_the_renders():
    """The report's generation title names the driver: the model's own unless switched off, or an explicit one;
    reports from before drivers existed have none."""
    from engine.cli.eval import _driven_by

    on, off = {"sampler": {"use_driver": True}}, {"sampler": {"use_driver": False}}
    assert _driven_by({"model_driver": True, **on}) == ", moved by the model's driver face"
    assert _driven_by({"model_driver": True, **off}) == "" == _driven_by({"model_driver": False, **on})
    assert _driven_by({"driver": True, "model_driver": True, **on}) == ", moved by a driver face"
    assert _driven_by({}) == ""


def test_vae_roundtrip_ceiling_scores_the_decoded_real_clip():
    """The ceiling row is the real clip's own score after the VAE: a VAE that returns its input exactly gives
    the real clip's 4k+1 frames back."""
    import torch

    from engine.train import evaluate as E

    class Exact(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def ref_features(self, refs):  # [1,R,3,H,W]
            return refs

        def encode_short_context(self, video):  # [1,3,F,H,W] -> "latents"
            return video

        def decode(self, lat, refs):
            return lat

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (30, 16, 16, 3), dtype=np.uint8)
    out = E.vae_roundtrip(Exact(), frames)
    assert out.shape == (29, 16, 16, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - frames[:29]).max() <= 1
