import sys

import av
import pytest

from engine.cli import main

TINY = ["--preset", "tiny", "--device", "cpu"]


def video_frames(path) -> tuple[int, tuple[int, int], bool]:
    with av.open(str(path)) as c:
        n = sum(1 for _ in c.decode(video=0))
        v = c.streams.video[0]
        return n, (v.width, v.height), bool(c.streams.audio)


def test_stream_audio_file_to_mp4_writes_every_frame_with_audio(speech_wav, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    rc = main(["stream", "--audio-file", str(speech_wav(1.0)), "--sink", f"file:{out}", "--sink", "null", *TINY])
    assert rc == 0
    assert video_frames(out) == (25, (32, 32), True)
    assert "final: fps" in capsys.readouterr().out


def test_stream_realtime_prints_stats_and_file_keeps_the_audio_timeline(speech_wav, tmp_path, capsys):
    out = tmp_path / "live.mp4"
    rc = main(["stream", "--audio-file", str(speech_wav(1.6)), "--realtime", "--seconds", "1.2",
               "--sink", f"file:{out}", *TINY])
    assert rc == 0
    printed = capsys.readouterr().out
    assert printed.count("latency p50") >= 2  # at least one per-second line plus the final one
    assert video_frames(out)[0] == 30  # held (re-sent) frames are not written twice


@pytest.mark.parametrize("argv, msg", [
    (["--audio-file", "/nonexistent.wav"], "no such file"),
    (["--audio-file", "x.wav", "--sink", "udp:1234"], "unknown --sink"),
    (["--audio-file", "x.wav", "--sink", "file:out.gif"], ".mp4"),
    (["--audio-file", "x.wav", "--seconds", "0"], "--seconds must be > 0"),
])
def test_bad_input_is_one_line_and_exit_2(argv, msg, capsys):
    assert main(["stream", *argv, *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1


@pytest.fixture(autouse=True)
def app_io():
    """What the `avacast` entry point (app.cli) registers before dispatching to the engine CLI."""
    from engine.cli.stream import IO_PROVIDERS, register_io

    saved = dict(IO_PROVIDERS)
    register_io("mic", "app.io.mic")
    register_io("vcam", "app.io.vcam")
    yield
    IO_PROVIDERS.clear()
    IO_PROVIDERS.update(saved)


def test_mic_without_the_app_io_is_a_clear_error(capsys):
    from engine.cli.stream import IO_PROVIDERS

    IO_PROVIDERS.clear()
    assert main(["stream", "--mic", *TINY]) == 2
    assert "desktop app" in capsys.readouterr().err


def test_mic_without_sounddevice_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails like an uninstalled package
    assert main(["stream", "--mic", *TINY]) == 2
    err = capsys.readouterr().err
    assert "sounddevice" in err and "install" in err


def test_vcam_without_a_driver_says_what_to_install(speech_wav, monkeypatch, capsys):
    import pyvirtualcam

    def no_device(*a, **k):
        raise RuntimeError("'v4l2loopback' backend: No v4l2 loopback device found")

    monkeypatch.setattr(pyvirtualcam, "Camera", no_device)
    monkeypatch.setattr("platform.system", lambda: "Linux")
    assert main(["stream", "--audio-file", str(speech_wav(0.2)), "--sink", "vcam", *TINY]) == 2
    err = capsys.readouterr().err
    assert "sudo apt install v4l2loopback-dkms" in err and "card_label=Avacast" in err


def test_vcam_without_pyvirtualcam_says_what_to_install(speech_wav, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)
    assert main(["stream", "--audio-file", str(speech_wav(0.2)), "--sink", "vcam", *TINY]) == 2
    assert "pip install pyvirtualcam" in capsys.readouterr().err
