"""`avacast render` end to end on CPU with the tiny preset (issue 2: streaming = offline, bad inputs)."""
import cv2
import numpy as np
import pytest

from engine.cli import main
from engine.io.media import video_info, write_audio


@pytest.fixture
def inputs(tmp_path, portrait, speech):
    img = tmp_path / "face.png"
    cv2.imwrite(str(img), portrait[:, :, ::-1])
    wav = tmp_path / "speech.wav"
    write_audio(wav, np.concatenate([speech, speech[:8800]]), 16000)  # 2.55 s
    return img, wav


def render(tmp_path, img, wav, name, *extra):
    out = tmp_path / name
    code = main(["render", "--preset", "tiny", "--device", "cpu", "--ref", str(img), "--audio", str(wav),
                 "--out", str(out), *extra])
    return code, out


def test_streaming_equals_offline_and_seed_is_deterministic(tmp_path, inputs):
    img, wav = inputs
    runs = {}
    for name, extra in (("a.npz", ["--chunk-ms", "40"]), ("b.npz", ["--chunk-ms", "100000"]),
                        ("c.npz", ["--chunk-ms", "40"])):
        code, out = render(tmp_path, img, wav, name, *extra)
        assert code == 0
        runs[name] = np.load(out)
    a, b, c = (runs[k]["frames"] for k in ("a.npz", "b.npz", "c.npz"))
    assert a.shape == (round(2.55 * 25), 32, 32, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    assert runs["a.npz"]["audio"].dtype == np.float32 and runs["a.npz"]["audio"].size == 40800


def test_mp4_has_video_and_audio(tmp_path, inputs):
    img, wav = inputs
    code, out = render(tmp_path, img, wav, "x.mp4")
    assert code == 0
    info = video_info(out)
    assert info.has_audio and abs(info.n_frames - 64) <= 1 and abs(info.fps - 25) < 0.01


def test_dtype_bf16_renders_on_cpu_close_to_fp32(tmp_path, inputs, caplog):
    """--dtype bf16 (~2x faster on CPUs with native bf16, docs/PERFORMANCE.md) runs the model in bf16 and keeps the
    picture of fp32 to within bf16's rounding; a dtype the flag does not know is a usage error."""
    img, wav = inputs
    caplog.set_level("INFO")
    runs = {}
    for dtype in ("fp32", "bf16"):
        code, out = render(tmp_path, img, wav, f"{dtype}.npz", "--dtype", dtype)
        assert code == 0
        runs[dtype] = np.load(out)["frames"].astype(np.float32)
    assert "torch.bfloat16" in caplog.text and "torch.float32" in caplog.text
    assert runs["bf16"].shape == runs["fp32"].shape
    assert 0 < np.abs(runs["bf16"] - runs["fp32"]).mean() < 8  # of 255: rounding, not another picture
    with pytest.raises(SystemExit):
        render(tmp_path, img, wav, "x.npz", "--dtype", "fp16")


@pytest.mark.parametrize("case", ["missing_image", "corrupt_image", "no_audio_stream", "empty_audio",
                                  "bad_extension"])
def test_bad_inputs_exit_2_with_one_line(tmp_path, inputs, capsys, case):
    img, wav = inputs
    if case == "missing_image":
        img = tmp_path / "nope.png"
    elif case == "corrupt_image":
        img = tmp_path / "bad.jpg"
        img.write_bytes(b"\xff\xd8\xff garbage")
    elif case == "no_audio_stream":
        wav = img  # an image has no audio stream
    elif case == "empty_audio":
        wav = tmp_path / "empty.wav"
        write_audio(wav, np.zeros(0, np.float32), 16000)
    code, _ = render(tmp_path, img, wav, "out.txt" if case == "bad_extension" else "o.npz")
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("avacast render:") and "\n" not in err and "Traceback" not in err


def test_shipped_default_model_renders_on_cpu(tmp_path):
    """Issue 4: without --weights/--preset, render uses the shipped model and default portrait."""
    from engine.io.checkpoint import default_weights

    assert default_weights() is not None, "resources/model must ship the default model"
    wav = tmp_path / "s.wav"
    t = np.arange(12800) / 16000  # 0.8 s
    write_audio(wav, (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32), 16000)
    out = tmp_path / "d.npz"
    assert main(["render", "--ref", "resources/default_portrait.png", "--audio", str(wav), "--out", str(out),
                 "--device", "cpu"]) == 0
    frames = np.load(out)["frames"]
    assert frames.shape == (20, 256, 256, 3)
    assert frames.std() > 5  # a picture, not a flat colour


def test_shipped_driver_face_is_credited_and_can_be_switched_off(tmp_path):
    """The shipped model's driver face (a GRID corpus frame, CC BY 4.0) is credited in the notices the installers
    ship, and `--model-driver off` renders the portrait animated by itself (other frames)."""
    from pathlib import Path

    from engine.io.checkpoint import default_weights, load_weights

    if not load_weights(default_weights())[0].dit.driver:
        pytest.skip("the shipped model has no driver face")
    notices = (Path(__file__).parents[2] / "installer/THIRD_PARTY_NOTICES.txt").read_text()
    assert "GRID" in notices and "CC BY 4.0" in notices
    wav = tmp_path / "s.wav"
    write_audio(wav, (0.3 * np.sin(np.arange(6400) / 9)).astype(np.float32), 16000)
    frames = []
    for name, extra in (("on.npz", []), ("off.npz", ["--model-driver", "off"])):
        assert main(["render", "--ref", "resources/default_portrait.png", "--audio", str(wav), "--out",
                     str(tmp_path / name), "--device", "cpu", *extra]) == 0
        frames.append(np.load(tmp_path / name)["frames"].astype(np.int16))
    assert np.abs(frames[0] - frames[1]).mean() > 1


def test_identity_hold_flags_change_the_render_and_bad_values_are_one_line(tmp_path, inputs, capsys):
    """--identity-hold/--hold-history reach the session (the frames change); out-of-range values and free
    motion directions the model does not store exit 2 with one line."""
    img, wav = inputs
    frames = {}
    for name, extra in (("off.npz", ["--identity-hold", "0"]),
                        ("on.npz", ["--identity-hold", "1", "--hold-history", "on"])):
        code, out = render(tmp_path, img, wav, name, "--crop", "none", *extra)
        assert code == 0
        frames[name] = np.load(out)["frames"].astype(np.int16)
    assert np.abs(frames["off.npz"] - frames["on.npz"]).mean() > 0.5
    for extra, msg in ((["--identity-hold", "1.5"], "identity_hold in [0, 1]"),
                       (["--hold-free-dims", "2"], "stores 0 motion directions")):
        capsys.readouterr()
        code, _ = render(tmp_path, img, wav, "bad.npz", "--crop", "none", *extra)
        err = capsys.readouterr().err.strip()
        assert code == 2 and msg in err and "\n" not in err
