"""Phonetic pretext task (issue 4): espeak-ng timings, frame labels, training, export -> generator --init."""
import json

import numpy as np
import pytest
import torch

from engine.cli import main
from engine.config import EngineConfig
from engine.io.checkpoint import load_weights, save_weights
from engine.train.phonetic import corpus, espeak
from engine.train.phonetic.phonemes import PHONEMES, VISEMES, PHONEME_TO_VISEME, frame_labels, phoneme_class
from tests.engine.train.fit import fit_fixed_batch

WHY = espeak.available()
pytestmark = pytest.mark.skipif(WHY is not None, reason=f"espeak-ng unusable: {WHY} (apt-get install espeak-ng)")
TEXT = "Hello, the quick brown fox jumps over the lazy dog. Chips and cheese, please!"
VOWELS = {p for p in PHONEMES if p[0] in "AEIOU"}


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if len(x) else 0.0


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    corpus.build(root, corpus.CorpusConfig(minutes=0.3))
    return root


@pytest.mark.parametrize("voice", ["en-us", "en-gb-x-rp+f3", "en-029+klatt"])
def test_espeak_timings_are_monotone_cover_the_audio_and_map(voice):
    u = espeak.synthesize(TEXT, espeak.Voice(voice, rate=200))
    assert u.audio.dtype == np.float32 and 1.5 * 16_000 < len(u.audio) < 10 * 16_000
    assert u.starts[0] == 0 and np.all(np.diff(u.starts) >= 0) and u.starts[-1] <= len(u.audio)
    assert u.phonemes[-1].startswith("_")  # ends in a pause that runs to the end of the audio
    assert len(u.starts) > 40
    assert all(phoneme_class(p) is not None for p in u.phonemes if p != ";")


def test_phoneme_starts_are_sample_accurate():
    """At every pause -> speech boundary the audio is silent just before the phoneme's start sample and
    sounds within 10 ms after it (the resampler's kernel spreads ~1 ms)."""
    u = espeak.synthesize(TEXT, espeak.Voice("en-us"))
    peak = rms(u.audio)
    checked = 0
    for i in range(len(u.phonemes) - 1):
        a, b, c = u.starts[i], u.starts[i + 1], u.starts[min(i + 2, len(u.starts) - 1)]
        if u.phonemes[i].startswith("_") and not u.phonemes[i + 1].startswith("_") and b - a > 160:
            assert rms(u.audio[b - 160:b - 24]) < 0.01 * peak, (i, u.phonemes[i + 1])
            assert rms(u.audio[b:b + 160]) > 0.05 * peak, (i, u.phonemes[i + 1])
            checked += 1
    assert checked >= 2


def test_frame_labels_line_up_with_the_audio(built):
    split = corpus.load(built, "train")
    a = EngineConfig.tiny().audio
    m = len(split.audio) // a.hop_length
    lab = frame_labels(split.starts, split.classes, m, a.hop_length, a.win_length)
    audio = split.float_audio()
    win = np.lib.stride_tricks.sliding_window_view(np.pad(audio, (a.win_length - a.hop_length, 0)),
                                                   a.win_length)[::a.hop_length][:m]  # [M, win]: mel windows
    energy = np.sqrt((win.astype(np.float64) ** 2).mean(1))
    silent = energy == 0.0  # digital silence: inter-utterance gaps, pauses and stop closures
    vowel = np.isin(lab, [PHONEMES.index(p) for p in VOWELS])
    stops = [PHONEMES.index(p) for p in ("SIL", "P", "T", "K", "B", "D", "G", "CH", "JH")]
    assert (lab[silent] == 0).mean() > 0.7 and np.isin(lab[silent], stops).mean() > 0.98
    assert (energy[vowel] > 1e-3).mean() > 0.98  # vowels sound
    assert set(np.unique(PHONEME_TO_VISEME[lab])) >= {0, VISEMES.index("PP"), VISEMES.index("aa")}
    # a delay of d frames labels frame m with what frame m - d had
    lab3 = frame_labels(split.starts, split.classes, m, a.hop_length, a.win_length, delay=3)
    assert np.array_equal(lab3[3:], lab[:-3]) and np.all(lab3[:3] == 0)


def test_pretext_loss_falls_on_a_tiny_encoder(built):
    from engine.train.config import TrainConfig
    from engine.train.data import step_generator
    from engine.train.phonetic.task import PhoneticTask

    task = PhoneticTask(EngineConfig.tiny(), TrainConfig(task="audio", batch=4, crop_seconds=2.0),
                        corpus.load(built, "train"))
    batch = task.batch(step_generator(0, 0), 0, torch.device("cpu"))
    assert batch["samples"].shape == (4, 32_000) and batch["phone"].shape == (4, 200 - 4)  # tiny: 40 ms look-ahead
    assert torch.isfinite(batch["samples"]).all() and batch["samples"].abs().max() <= 1.0
    losses = fit_fixed_batch(task, batch, 40)
    assert losses[-1] < 0.75 * losses[0]


def test_train_audio_export_warm_starts_only_the_generator_encoder(built, tmp_path, capsys):
    from engine.cli.train import _warm_start
    from engine.train.gen_task import GeneratorStep

    run = tmp_path / "run"
    assert main(["train", "audio", "--preset", "tiny", "--corpus", str(built), "--out", str(run), "--device", "cpu",
                 "--max-steps", "3", "--batch", "2", "--log-every", "1"]) == 0
    _, exp, meta = load_weights(run / "audio.safetensors")
    assert meta["avacast_kind"] == "audio" and {k.split(".")[0] for k in exp} == {"audio", "head", "phone_delay"}
    cfg = EngineConfig.tiny()
    gen = GeneratorStep(cfg)
    base = tmp_path / "gen.safetensors"  # stands in for a generator export
    save_weights(base, {k: v + 1.0 if v.is_floating_point() else v for k, v in gen.state_dict().items()}, cfg)
    before = {k: v.clone() for k, v in load_weights(base)[1].items()}
    target = GeneratorStep(cfg)
    for path in (base, run / "audio.safetensors"):  # --init GEN --init AUDIO: later files win
        _warm_start(target, str(path))
    for k, v in target.state_dict().items():
        want = exp[k] if k.startswith("audio.") else before[k]
        torch.testing.assert_close(v, want.to(v.dtype), msg=k)
    assert not torch.equal(exp["audio.inp.weight"].float(), before["audio.inp.weight"].float())


def test_phonetic_eval_reports_synthetic_and_real(built, tmp_path, capsys):
    from engine.io import media as M
    from tests.engine.train import synth

    run = tmp_path / "run"
    assert main(["train", "audio", "--preset", "tiny", "--corpus", str(built), "--out", str(run), "--device", "cpu",
                 "--max-steps", "1", "--batch", "2"]) == 0
    speech = np.concatenate([synth.speech(1.5, seed=1), np.zeros(8000, np.float32), synth.speech(1.0, seed=2)])
    M.write_audio(tmp_path / "real.wav", speech)
    out = tmp_path / "r.json"
    assert main(["phonetic", "eval", "--weights", str(run / "audio.safetensors"), "--corpus", str(built),
                 "--real", str(tmp_path / "real.wav"), "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    assert 0.0 <= r["val_clean"]["viseme_acc"] <= 1.0 and r["val_noisy"]["frames"] == r["val_clean"]["frames"]
    assert r["real"]["files"] == 1 and r["real_files"]["real.wav"]["pause_frames"] > 20


def test_babble_is_mixed_below_the_speech_on_some_examples():
    from engine.train.phonetic.task import augment

    x, babble = torch.randn(200, 8000), torch.randn(200, 8000)
    plain = augment(x, torch.Generator().manual_seed(0), babble * 0)
    mixed = augment(x, torch.Generator().manual_seed(0), babble)
    d = (mixed - plain).pow(2).mean(1).sqrt()
    on = d > 1e-6
    assert 0.25 < on.float().mean() < 0.55
    assert (d[on] < plain.pow(2).mean(1).sqrt()[on] * 10 ** (-4 / 20)).all()  # >= 5 dB below the speech
