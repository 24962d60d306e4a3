"""Motion gain (SamplerConfig.motion_gain / mouth_gain, engine/runtime/magnify.py): the fast motion of the
latents grows, what stays does not move, and at gain 1 the stream is exactly the model's."""
import dataclasses

import numpy as np
import pytest
import torch

from engine.config import HOLD_MOUTH_MARGIN, SamplerConfig, mouth_slices
from engine.runtime.magnify import MotionGain


def _mouth(s: int) -> torch.Tensor:
    rows, cols = mouth_slices(s, s, HOLD_MOUTH_MARGIN)
    m = torch.zeros(s, s, dtype=torch.bool)
    m[rows, cols] = True
    return m


def test_a_still_face_stays_and_a_change_grows_by_the_gain():
    """A constant latent passes unchanged at any gain (the identity is never pushed); a jump away from it is
    scaled by the gain against the running mean, and mouth_gain multiplies it on the mouth's cells only."""
    g = torch.Generator().manual_seed(0)
    still, jump = torch.randn((1, 4, 1, 8, 8), generator=g), torch.randn((1, 4, 1, 8, 8), generator=g)
    gain = MotionGain(torch.zeros_like(still))
    gain.configure(SamplerConfig(motion_gain=2.0, mouth_gain=1.5))
    for _ in range(5):
        torch.testing.assert_close(gain(still), still)
    acc, w, k = gain.mean.acc.clone(), float(gain.mean.weight), float(gain.mean.k)
    new_mean = (acc + k * (jump - acc)) / (w + k * (1 - w))  # the (bias-corrected) mean takes the new latent in
    out = gain(jump)
    mouth = _mouth(8)
    expect = jump + (jump - new_mean)  # gain 2 outside the mouth ...
    torch.testing.assert_close(out[..., ~mouth], expect[..., ~mouth])
    expect_mouth = jump + 2.0 * (jump - new_mean)  # ... 2 x 1.5 = 3 inside it
    torch.testing.assert_close(out[..., mouth], expect_mouth[..., mouth])


def test_two_frame_blocks_match_frame_by_frame_and_reset_forgets():
    g = torch.Generator().manual_seed(1)
    z = torch.randn((1, 4, 6, 8, 8), generator=g)
    a, b = MotionGain(z[:, :, :1]), MotionGain(z[:, :, :1])
    for m in (a, b):
        m.configure(SamplerConfig(motion_gain=1.7))
    whole = torch.cat([a(z[:, :, i : i + 2]) for i in range(0, 6, 2)], dim=2)
    single = torch.cat([b(z[:, :, i : i + 1]) for i in range(6)], dim=2)
    torch.testing.assert_close(whole, single)
    a.reset()
    torch.testing.assert_close(a(z[:, :, 3:4]), z[:, :, 3:4])  # a fresh mean: the first latent is itself


def test_gains_outside_their_range_are_refused():
    for bad in ({"motion_gain": -0.5}, {"mouth_gain": 5.0}):
        with pytest.raises(ValueError, match="motion_gain and mouth_gain"):
            SamplerConfig(**bad)


def _frames(engine, portrait, speech, **sampler) -> np.ndarray:
    from engine.runtime.session import Session

    sp = dataclasses.replace(engine.cfg.sampler, **sampler)
    s = Session(engine.model, [portrait], 4, torch.device("cpu"), torch.float32, sampler=sp)
    s.push_audio(speech, 16000)
    return np.stack([f.rgb for f in s.step() + s.flush()])


def test_the_session_moves_more_with_a_gain_and_is_unchanged_without(tiny_engine, portrait, speech, monkeypatch):
    """Gain 1 is exactly the model's stream (the magnifier bypassed gives the same frames); gain 2 keeps the
    first frame (nothing has moved yet) and changes the later ones."""
    base = _frames(tiny_engine, portrait, speech)
    gained = _frames(tiny_engine, portrait, speech, motion_gain=2.0)
    monkeypatch.setattr(MotionGain, "__call__", lambda self, z: z)
    bypassed = _frames(tiny_engine, portrait, speech)
    np.testing.assert_array_equal(base, bypassed)
    np.testing.assert_array_equal(gained[0], base[0])
    assert np.abs(gained[8:].astype(int) - base[8:]).mean() > 0.5
