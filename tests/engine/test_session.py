import math

import numpy as np
import pytest

from engine.config import FPS


def run(engine, refs, audio, chunk, seed=3, sr=16000, warm_up=None):
    s = engine.open_session(refs, seed=seed, warm_up=warm_up)
    frames = []
    for i in range(0, len(audio), chunk):
        s.push_audio(audio[i : i + chunk], sr)
        frames += s.step()
    return frames + s.flush()


def test_frame_count_and_order(tiny_engine, portrait, speech):
    frames = run(tiny_engine, [portrait], speech, 640)
    assert len(frames) == round(len(speech) / 16000 * FPS) == 50
    assert [f.index for f in frames] == list(range(50))
    assert frames[10].pts_s == pytest.approx(10 / FPS)
    assert frames[0].rgb.shape == (32, 32, 3) and frames[0].rgb.dtype == np.uint8


def test_chunking_does_not_change_frames(tiny_engine, portrait, speech):
    """DESIGN §6: streaming == offline; 40 ms chunks, odd chunks and one push give identical frames."""
    a = run(tiny_engine, [portrait], speech, 640)
    b = run(tiny_engine, [portrait], speech, 1237)
    c = run(tiny_engine, [portrait], speech, len(speech))
    for x, y, z in zip(a, b, c):
        np.testing.assert_array_equal(x.rgb, y.rgb)
        np.testing.assert_array_equal(x.rgb, z.rgb)


def test_warm_up_at_open_rewinds_to_the_same_stream(tiny_engine, portrait, speech):
    """On GPUs a session runs its first KV window on silence at open (first-call costs leave the stream);
    after the rewind the stream must be exactly that of a session opened cold."""
    cold = run(tiny_engine, [portrait], speech, 640, warm_up=False)
    warm = run(tiny_engine, [portrait], speech, 640, warm_up=True)
    assert [f.index for f in warm] == [f.index for f in cold]
    for x, y in zip(cold, warm):
        np.testing.assert_array_equal(x.rgb, y.rgb)
    s = tiny_engine.open_session([portrait], seed=3, warm_up=True)
    assert s._cache.next_block == 0 and s._cache.filled == 0 and s.samples_needed > 0
    assert not s._dec_state.started and s._dec_state.frames  # buffers kept, hidden until overwritten


def test_open_session_takes_sampler_overrides(tiny_engine, portrait):
    s = tiny_engine.open_session([portrait], seed=0, steps=3, cfg=1.5)
    assert (s.sampler.steps, s.sampler.cfg) == (3, 1.5)
    assert tiny_engine.open_session([portrait]).sampler == tiny_engine.cfg.sampler
    with pytest.raises(ValueError, match="steps"):
        tiny_engine.open_session([portrait], steps=0)


def test_deterministic_under_seed(tiny_engine, portrait, speech):
    a = run(tiny_engine, [portrait], speech[:8000], 8000, seed=5)
    b = run(tiny_engine, [portrait], speech[:8000], 8000, seed=5)
    c = run(tiny_engine, [portrait], speech[:8000], 8000, seed=6)
    assert all(np.array_equal(x.rgb, y.rgb) for x, y in zip(a, b))
    assert any(not np.array_equal(x.rgb, y.rgb) for x, y in zip(a, c))


@pytest.mark.parametrize("n_refs", [0, 1, 3])
def test_reference_counts(tiny_engine, portrait, speech, n_refs):
    frames = run(tiny_engine, [portrait] * n_refs, speech[:4000], 4000)
    assert len(frames) == round(4000 / 640)


def test_step_waits_for_lookahead(tiny_engine, portrait):
    s = tiny_engine.open_session([portrait], seed=0)
    need = s.samples_needed  # latent 0: frame 0 plus 40 ms look-ahead
    assert need == 640 + 640
    s.push_audio(np.zeros(need - 1, np.float32), 16000)
    assert s.step() == []
    s.push_audio(np.zeros(1, np.float32), 16000)
    assert [f.index for f in s.step()] == [0]
    assert set(s.timings) == {"features", "denoise", "decode"}


def test_other_sample_rates_are_resampled(tiny_engine, portrait):
    audio48 = np.zeros(48000, np.float32)
    frames = run(tiny_engine, [portrait], audio48, 960, sr=48000)
    assert len(frames) == 25


def test_set_sampler_applies_at_next_block(tiny_engine, portrait, speech):
    s = tiny_engine.open_session([portrait], seed=0)
    s.set_sampler(steps=1, cfg=1.5)
    s.push_audio(speech[:4000], 16000)
    s.step()
    assert s.sampler.steps == 1 and s.sampler.cfg == 1.5


def test_bad_reference_is_a_clear_error(tiny_engine):
    with pytest.raises(ValueError, match="RGB uint8"):
        tiny_engine.open_session([np.zeros((10, 10), np.uint8)])
    with pytest.raises(ValueError, match="at most 8"):
        tiny_engine.open_session([np.zeros((32, 32, 3), np.uint8)] * 9)


def test_audio_buffer_stays_bounded(tiny_engine, portrait):
    s = tiny_engine.open_session([portrait], seed=0)
    for _ in range(60):
        s.push_audio(np.zeros(2560, np.float32), 16000)
        s.step()
    assert s._buf.size < 16000  # trailing receptive field only, not the whole stream


def test_anchored_stream_starts_on_the_portrait(tiny_engine, portrait, speech):
    """anchor_first: latent 0 is the first portrait's own latent, so frame 0 is the VAE's decode of the
    portrait (not a sample), and the blocks after it attend to that exact latent."""
    import dataclasses

    import torch

    from engine.api import build_model
    from engine.nn.conv import StreamState
    from engine.runtime.session import Session, prepare_references, to_uint8

    eng = tiny_engine
    anchored = dataclasses.replace(eng.cfg.sampler, anchor_first=True)
    s = Session(eng.model, [portrait], 3, eng.device, eng.dtype, False, anchored)
    s.push_audio(speech[:16000], 16000)
    frames = s.step() + s.flush()
    vae = eng.model.vae
    with torch.no_grad():
        e1, lat = vae.encode_refs(prepare_references([portrait], eng.cfg.vae.resolution))
        direct = to_uint8(vae.decode(lat[:, 0].unsqueeze(2), e1, StreamState()))  # [1,H,W,3]
    assert np.abs(frames[0].rgb.astype(int) - direct[0].astype(int)).max() <= 1
    plain = run(eng, [portrait], speech[:16000], 16000)
    assert not np.array_equal(plain[0].rgb, frames[0].rgb)  # a sampled latent 0 differs
    assert not np.array_equal(plain[-1].rgb, frames[-1].rgb)  # and so does what follows it

    cfg = dataclasses.replace(eng.cfg, dit=dataclasses.replace(eng.cfg.dit, block_frames=2))
    with pytest.raises(ValueError, match="anchor_first"):
        Session(build_model(cfg), [portrait], 0, eng.device, eng.dtype, False, anchored)


def _residual_engine(eng, scale=2.0):
    """The tiny engine's weights under a config whose flow makes reference residuals."""
    import dataclasses

    from engine.api import build_model

    cfg = dataclasses.replace(eng.cfg, dit=dataclasses.replace(eng.cfg.dit, ref_residual=scale))
    model = build_model(cfg)
    model.load_state_dict(eng.model.state_dict())
    return model


def test_a_ref_residual_model_decodes_its_output_around_the_portrait(tiny_engine, portrait, speech, monkeypatch):
    """dit.ref_residual: the flow's output is (latent - mean reference latent) * scale, so a zero output
    shows the portrait's own latent, and an anchored stream's latent 0 is still the portrait exactly."""
    import dataclasses

    import torch

    from engine.nn.conv import StreamState
    from engine.runtime.session import Session, prepare_references, to_uint8

    eng = tiny_engine
    model = _residual_engine(eng)
    anchored = dataclasses.replace(eng.cfg.sampler, anchor_first=True)
    s = Session(model, [portrait], 3, eng.device, eng.dtype, False, anchored)
    s.push_audio(speech[:16000], 16000)
    frames = s.step() + s.flush()
    vae = model.vae
    with torch.no_grad():
        e1, lat = vae.encode_refs(prepare_references([portrait], eng.cfg.vae.resolution))
        direct = to_uint8(vae.decode(lat[:, 0].unsqueeze(2), e1, StreamState()))  # [1,H,W,3]
    assert np.abs(frames[0].rgb.astype(int) - direct[0].astype(int)).max() <= 1

    still = Session(model, [portrait], 3, eng.device, eng.dtype, False)
    monkeypatch.setattr(still, "_denoise", lambda audio: torch.zeros_like(still._ref_mean))  # no motion at all
    still.push_audio(speech[:16000], 16000)
    out = still.step() + still.flush()
    assert np.abs(out[0].rgb.astype(int) - direct[0].astype(int)).max() <= 1
    plain = Session(eng.model, [portrait], 3, eng.device, eng.dtype, False)
    monkeypatch.setattr(plain, "_denoise", lambda audio: torch.zeros_like(still._ref_mean))
    plain.push_audio(speech[:16000], 16000)
    assert not np.array_equal((plain.step() + plain.flush())[0].rgb, out[0].rgb)  # a plain model: latent 0


def test_a_ref_residual_model_needs_a_portrait(tiny_engine):
    from engine.runtime.session import Session

    with pytest.raises(ValueError, match="give a reference image"):
        Session(_residual_engine(tiny_engine), [], 0, tiny_engine.device, tiny_engine.dtype, False)


def _held_latents(model, sampler, portrait, speech, monkeypatch, make, warm_up=False):
    """Open a session on `model` with `sampler`, let the generator's denoising end on make(block index) every
    block, and return (session, the scaled latents reaching the decoder, the latents committed as history)
    for 2 s of speech."""
    import torch

    from engine.runtime import graphs
    from engine.runtime.session import Session

    sess = Session(model, [portrait], 3, torch.device("cpu"), torch.float32, warm_up, sampler)
    seen, committed = [], []
    monkeypatch.setattr(graphs, "euler_step", lambda x, v, t, t_next: make(sess._cache.next_block).to(x.dtype))
    decode, forward = sess.model.vae.decode, sess.model.dit.block_forward
    monkeypatch.setattr(sess.model.vae, "decode", lambda z, *a: seen.append(z.clone()) or decode(z, *a))
    monkeypatch.setattr(sess.model.dit, "block_forward",
                        lambda c, x, t, a, commit, *r: (committed.append(x[:1].clone()) if commit else None)
                        or forward(c, x, t, a, commit, *r))
    sess.push_audio(speech[:32000], 16000)
    sess.step()
    sess.flush()
    return sess, [z * sess.model.vae.latent_scale for z in seen], committed


def test_identity_hold_keeps_the_motion_and_puts_the_portrait_under_it(tiny_engine, portrait, speech, monkeypatch):
    """identity_hold 1: a generator stuck on some other face that moves (two latents in turn) decodes as the
    portrait's own latent plus that motion, from the first latent on; strength 0 leaves the latents as they
    are; a warm-up rewind restarts the running mean."""
    import dataclasses

    import torch

    eng = tiny_engine
    c, s = eng.cfg.vae.latent_channels, eng.cfg.vae.latent_size
    g = torch.Generator().manual_seed(1)
    other = torch.randn((1, c, eng.cfg.dit.block_frames, s, s), generator=g)
    move = 0.3 * torch.randn(other.shape, generator=g)

    def decoded(hold, warm_up=False, history=False):
        sp = dataclasses.replace(eng.cfg.sampler, identity_hold=hold, hold_seconds=0.5, hold_history=history)
        return _held_latents(eng.model, sp, portrait, speech, monkeypatch,
                             lambda block: other + (1.0 if block % 2 == 0 else -1.0) * move, warm_up)

    sess, held, committed = decoded(1.0)
    ref = sess._ref_mean
    torch.testing.assert_close(held[0], ref, atol=1e-4, rtol=0)  # starts on the portrait
    k = 1 - math.exp(-0.16 / 0.5)
    for i in (-2, -1):  # later: the portrait plus the motion (the running mean lags by about k x motion)
        sign = 1.0 if (len(held) + i) % 2 == 0 else -1.0
        assert float((held[i] - ref - sign * move).abs().max()) <= 1.5 * k * float(move.abs().max())
    torch.testing.assert_close(committed[1], other - move)  # the generator's history: its own latents
    _, held_hist, committed_hist = decoded(1.0, history=True)  # hold_history: the held latents instead
    torch.testing.assert_close(committed_hist[1], held_hist[1], atol=1e-5, rtol=0)
    torch.testing.assert_close(held_hist[0], ref, atol=1e-4, rtol=0)
    _, plain, _ = decoded(0.0)
    torch.testing.assert_close(plain[1], other - move)  # off: the generator's latents as they are
    _, rewound, _ = decoded(1.0, warm_up=True)  # warmed at open, before the patches: the rewind resets the mean
    torch.testing.assert_close(rewound[3], held[3])
    with pytest.raises(ValueError, match="identity_hold"):
        dataclasses.replace(eng.cfg.sampler, identity_hold=1.5)


def test_identity_hold_switched_on_live_starts_a_fresh_running_mean(tiny_engine, portrait, speech, monkeypatch):
    """Off, then on again mid-stream (the app's slider): the running mean restarts, so at strength 1 the first
    block after the switch shows the portrait itself, not a pull computed from latents of long ago."""
    import dataclasses

    import torch

    from engine.runtime import graphs
    from engine.runtime.session import Session

    eng = tiny_engine
    c, s, bf = eng.cfg.vae.latent_channels, eng.cfg.vae.latent_size, eng.cfg.dit.block_frames
    g = torch.Generator().manual_seed(4)
    a, b = torch.randn((1, c, bf, s, s), generator=g), torch.randn((1, c, bf, s, s), generator=g)
    sp = dataclasses.replace(eng.cfg.sampler, identity_hold=1.0, hold_seconds=4.0)
    sess = Session(eng.model, [portrait], 3, eng.device, eng.dtype, False, sp)
    monkeypatch.setattr(graphs, "euler_step",
                        lambda x, v, t, t_next: (a if sess._cache.next_block < 4 else b).to(x.dtype))
    seen = []
    decode = sess.model.vae.decode
    monkeypatch.setattr(sess.model.vae, "decode", lambda z, *r: seen.append(z.clone()) or decode(z, *r))
    for i in range(0, 32000, 640):
        if sess._next_latent == 4 and sess.sampler.identity_hold == 1.0:
            sess.set_sampler(identity_hold=0.0)
        if sess._next_latent == 8 and sess.sampler.identity_hold == 0.0:
            sess.set_sampler(identity_hold=1.0)
        sess.push_audio(speech[i : i + 640], 16000)
        sess.step()
    held = [z * sess.model.vae.latent_scale for z in seen]
    torch.testing.assert_close(held[5], b)  # off: the generator's latent
    torch.testing.assert_close(held[8], sess._ref_mean, atol=1e-4, rtol=0)  # on again: the portrait
    assert float((held[9] - sess._ref_mean).abs().max()) < 1e-4  # b still: its own mean, so the portrait


def test_identity_hold_on_the_mouth_is_scaled_by_hold_mouth(tiny_engine, portrait, speech, monkeypatch):
    """hold_mouth M: on the mouth's latent cells the pull to the portrait is M times the rest's, so a still
    generator stuck on another face decodes as the portrait outside the mouth and, inside it, stays itself (M 0)
    or goes half way (M 0.5); a value outside [0, 1] is refused."""
    import dataclasses

    import torch

    from engine.config import HOLD_MOUTH_MARGIN, mouth_slices

    eng = tiny_engine
    c, s = eng.cfg.vae.latent_channels, eng.cfg.vae.latent_size
    other = torch.randn((1, c, 1, s, s), generator=torch.Generator().manual_seed(5))
    rows, cols = mouth_slices(s, s, HOLD_MOUTH_MARGIN)
    mouth = torch.zeros(s, s, dtype=torch.bool)
    mouth[rows, cols] = True
    assert 0 < int(mouth.sum()) < s * s
    for m in (0.0, 0.5):
        sp = dataclasses.replace(eng.cfg.sampler, identity_hold=1.0, hold_mouth=m)
        sess, held, _ = _held_latents(eng.model, sp, portrait, speech, monkeypatch, lambda block: other)
        ref = sess._ref_mean
        for z in held[1:]:  # a still generator: its running mean is itself
            torch.testing.assert_close(z[..., ~mouth], ref[..., ~mouth], atol=1e-4, rtol=0)
            torch.testing.assert_close(z[..., mouth], (other + m * (ref - other))[..., mouth], atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="hold_mouth"):
        dataclasses.replace(eng.cfg.sampler, hold_mouth=1.5)


def test_identity_hold_leaves_the_free_motion_directions_alone(tiny_engine, portrait, speech, monkeypatch):
    """hold_free_dims: the pull to the portrait loses its part along the model's leading motion directions
    (the portrait's expression is not imposed: an open smile does not keep the mouth open in pauses) and keeps
    the rest (the identity); asking for more free directions than the model stores is refused."""
    import dataclasses

    import torch

    from engine.api import build_model
    from engine.runtime.session import Session

    eng = tiny_engine
    cfg = dataclasses.replace(eng.cfg, vae=dataclasses.replace(eng.cfg.vae, motion_dims=3))
    model = build_model(cfg)
    model.load_state_dict(eng.model.state_dict(), strict=False)
    d = cfg.vae.latent_channels * cfg.vae.latent_size**2
    basis = torch.linalg.qr(torch.randn(d, 3, generator=torch.Generator().manual_seed(2)))[0].T  # [3, D]
    model.vae.motion_basis.copy_(basis)
    other = torch.randn((1, cfg.vae.latent_channels, 1, cfg.vae.latent_size, cfg.vae.latent_size))
    sp = dataclasses.replace(cfg.sampler, identity_hold=1.0, hold_free_dims=2)
    sess, held, _ = _held_latents(model, sp, portrait, speech, monkeypatch, lambda block: other)
    free = basis[:2]
    for z in held:  # a still generator: its running mean is itself, so the full pull would give the portrait
        moved = (z - other).reshape(-1)
        assert float((free @ moved).abs().max()) < 1e-4  # nothing along the free directions
        gap = (z - sess._ref_mean).reshape(-1)
        torch.testing.assert_close(gap, free.T @ (free @ gap), atol=1e-4, rtol=0)  # the rest is the portrait's
    assert float((held[-1] - sess._ref_mean).abs().max()) > 1e-2  # and the free part did stay the generator's
    with pytest.raises(ValueError, match="stores 3 motion directions"):
        Session(model, [portrait], 0, eng.device, eng.dtype, False, dataclasses.replace(sp, hold_free_dims=4))


def test_a_driver_face_moves_the_portrait(tiny_engine, portrait, speech, monkeypatch):
    """Session driver: the generator animates the driver (its reference tokens, its latent space) and the
    decoder gets latent + (portrait's mean reference latent - driver's) with the portrait's features. So a
    residual model that makes no motion shows the portrait exactly, and the portrait as its own driver
    changes nothing."""
    import torch

    from engine.runtime.session import Session

    eng, driver = tiny_engine, np.ascontiguousarray(255 - portrait[:, ::-1])
    plain = np.stack([f.rgb for f in run(eng, [portrait], speech, len(speech))]).astype(int)
    # equal up to float noise (the driver's separate encode), which the random model's autoregression can
    # amplify in a few pixels (tests/engine/train/test_eval.py saw mean 0.35 of 255 in some processes)
    assert np.abs(plain - _run_driven(eng, portrait, portrait, speech)).mean() < 1
    assert np.abs(plain - _run_driven(eng, portrait, driver, speech)).mean() > 3
    model = _residual_engine(eng)
    out = []
    for drv in (None, driver):
        s = Session(model, [portrait], 3, eng.device, eng.dtype, False, driver=drv)
        monkeypatch.setattr(s, "_denoise", lambda audio, s=s: torch.zeros_like(s._ref_mean))  # no motion at all
        s.push_audio(speech[:16000], 16000)
        out.append([f.rgb for f in s.step() + s.flush()])
    assert all(np.abs(a.astype(int) - b.astype(int)).max() <= 1 for a, b in zip(*out))
    with pytest.raises(ValueError, match="give a reference image too"):
        Session(eng.model, [], 0, eng.device, eng.dtype, False, driver=driver)


def _run_driven(engine, portrait, driver, speech):
    s = engine.open_session([portrait], seed=3, driver=driver)
    s.push_audio(speech, 16000)
    return np.stack([f.rgb for f in s.step() + s.flush()])
