"""Lip-sync metrics on a generated clip whose mouth opens with its own audio (issue 3 item 4)."""
import numpy as np
import pytest

from engine.train import lipsync as L
from tests.engine.train import synth


@pytest.fixture(scope="module")
def clip():
    audio = synth.speech(6.0, seed=1, pause=(3.0, 4.2))
    frames = synth.talking_frames(audio, fps=25, size=128)
    return frames, audio


def test_own_audio_scores_higher_than_shifted_audio(clip):
    frames, audio = clip
    opening = L.mouth_opening(frames, method="proxy")
    env = L.speech_envelope(audio, len(frames))
    own, lag = L.lipsync_score(opening, env)
    shifted, _ = L.lipsync_score(opening, L.speech_envelope(np.roll(audio, 16_000 // 2), len(frames)))
    assert own > 0.8 and abs(lag) <= 1
    assert shifted < own - 0.3


def test_proxy_finds_mouth_in_face_crop(clip):
    frames, _ = clip
    x0, y0, x1, y1 = L.mouth_box(frames)
    mx, my = synth.MOUTH[0] * 128 / 160, synth.MOUTH[1] * 128 / 160
    assert x0 < mx < x1 and y0 < my < y1


def test_lipsync_score_recovers_known_lag():
    rng = np.random.default_rng(0)
    env = np.convolve(rng.random(200), np.ones(4) / 4, "same")
    opening = np.roll(env, 2)  # the mouth moves 2 frames after the sound
    corr, lag = L.lipsync_score(opening, env, max_lag=2)
    assert lag == 2 and corr > 0.99
    assert L.lipsync_score(opening, env, max_lag=1)[0] < corr


def test_constant_signals_score_zero_not_nan():
    assert L.lipsync_score(np.zeros(50), np.random.rand(50)) == (0.0, -2)
    assert L.lipsync_score(np.ones(2), np.ones(2))[0] == 0.0


def test_speech_envelope_is_rms_per_frame_and_padded():
    audio = np.concatenate([np.full(640, 0.5), np.zeros(640), np.full(320, -0.2)]).astype(np.float32)
    env = L.speech_envelope(audio, 4)
    np.testing.assert_allclose(env, [0.5, 0.0, np.sqrt(0.2 ** 2 / 2), 0.0], atol=1e-6)


def test_silence_opening_separates_closed_mouth_from_babbling(clip):
    frames, audio = clip
    env = L.speech_envelope(audio, len(frames))
    calm = L.silence_opening(L.mouth_opening(frames, "proxy"), env)
    babble = L.silence_opening(np.abs(np.sin(np.arange(len(frames)))) + 0.1, env)
    assert calm < 0.3 < babble
    assert np.isnan(L.silence_opening(np.ones(10), np.ones(10)))  # no silent frames
    no_opening = np.where(L.silence_frames(env)[:len(frames)], 0.2, 0.0)  # the mouth box never darkens in speech
    assert np.isnan(L.silence_opening(no_opening, env))  # not a ratio over ~0


def test_pause_opening_counts_only_real_pauses_less_their_edges():
    """Only silent runs of >= PAUSE_FRAMES count, less PAUSE_MARGIN frames at their ends (the mouth closing and
    opening), so a mouth that shuts in a pause scores 0 even if it closes late, and syllable gaps do not count."""
    env = np.full(60, 0.5)
    env[20:40] = 0.0  # a 20-frame pause
    env[50:53] = 0.0  # a 3-frame gap between syllables: not a pause
    speech = env > 0
    closing = np.where(speech, 0.04, 0.0)
    closing[20:20 + L.PAUSE_MARGIN[0]] = 0.04  # still closing over the pause's first frames
    closing[40 - L.PAUSE_MARGIN[1]:40] = 0.04  # opening before the speech resumes
    closing[50:53] = 0.04  # half open in the syllable gap
    assert L.pause_opening(closing, env) == 0.0
    assert L.pause_opening(np.full(60, 0.04), env) == pytest.approx(1.0)  # as open as in speech
    short = env.copy()
    short[20:40] = 0.5
    assert np.isnan(L.pause_opening(closing, short))  # no pause of PAUSE_FRAMES or more
    assert np.isnan(L.pause_opening(np.where(speech, 0.0, 0.04), env))  # no opening in speech: not a ratio over 0


def test_stability_zero_for_still_and_grows_with_jitter(clip):
    frames, _ = clip
    still = np.repeat(frames[:1], 10, axis=0)
    assert L.stability(still) == 0.0
    shaken = np.stack([np.roll(frames[0], s, axis=1) for s in [0, 3, -3] * 4])
    assert L.stability(shaken) > L.stability(frames) > 0


def test_bad_frames_rejected_with_clear_message():
    with pytest.raises(ValueError, match="uint8"):
        L.mouth_opening(np.zeros((4, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="method"):
        L.mouth_opening(np.zeros((4, 8, 8, 3), np.uint8), method="lasers")


def test_mouth_follow_separates_a_squashed_mouth_from_a_faithful_one():
    """A reconstruction whose mouth moves a third as wide as the real one keeps its correlation but scores a
    gain of 1/3; a still real mouth gives no gain rather than a division by zero."""
    real = 0.05 + 0.04 * np.sin(np.linspace(0, 12, 100))
    gain, corr = L.mouth_follow(0.02 + real / 3, real)
    assert gain == pytest.approx(1 / 3) and corr == pytest.approx(1.0)
    assert L.mouth_follow(real, real)[0] == pytest.approx(1.0)
    assert L.mouth_follow(real, np.full(100, 0.03)) == (None, 0.0)
