"""End to end with real components: espeak-ng speech -> PulseAudio pipe-source virtual mic ->
sounddevice (ALSA pulse plugin) -> the app's mic path and noise gate -> Runner + tiny engine ->
a pyvirtualcam backend. Skips cleanly where pulseaudio or espeak-ng are missing."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from app.audio.sources import decode_audio
from tests.app.fakecam import FakeCamera
from tests.app.test_window import make_window  # noqa: F401 (fixture)

pytestmark = pytest.mark.e2e
TOOLS = ("pulseaudio", "pactl", "espeak-ng")
RATE = 16_000


def _run(cmd, env, timeout=10):
    return subprocess.run(cmd, env=env, timeout=timeout, check=True, capture_output=True, text=True)


@pytest.fixture
def virtual_mic(tmp_path, monkeypatch):
    """User-space PulseAudio whose default source reads s16le 16 kHz mono from a FIFO."""
    if missing := [t for t in TOOLS if shutil.which(t) is None]:
        pytest.skip(f"needs {', '.join(missing)} (apt-get install pulseaudio libasound2-plugins "
                    "libportaudio2 espeak-ng)")
    try:
        import sounddevice as sd
    except OSError as exc:
        pytest.skip(f"PortAudio missing: {exc}")
    runtime = tmp_path / "xdg"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
    env.pop("PULSE_SERVER", None)
    fifo = runtime / "vmic.fifo"
    try:
        _run(["pulseaudio", "-n", "--daemonize=yes", "--exit-idle-time=-1", "--use-pid-file=yes",
              "--load=module-native-protocol-unix"], env, timeout=20)
        _run(["pactl", "load-module", "module-pipe-source", "source_name=vmic", f"file={fifo}",
              "format=s16le", f"rate={RATE}", "channels=1"], env)
        _run(["pactl", "set-default-source", "vmic"], env)
        _run(["pactl", "load-module", "module-null-sink", "sink_name=cable"], env)  # a virtual cable
        _run(["pactl", "set-default-sink", "cable"], env)
    except (subprocess.SubprocessError, OSError) as exc:
        _kill_pulse(runtime, env)
        pytest.skip(f"could not start a user-space PulseAudio: {exc}")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("PULSE_SERVER", f"unix:{runtime}/pulse/native")
    sd._terminate()  # PortAudio enumerated devices at import, maybe before this server existed
    sd._initialize()
    try:
        yield fifo
    finally:
        _kill_pulse(runtime, env)
        sd._terminate()
        sd._initialize()


def _kill_pulse(runtime: Path, env) -> None:
    """Stop exactly the daemon this test started (its pid file), never any other PulseAudio."""
    pid_file = runtime / "pulse" / "pid"
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        pid = None
    try:
        subprocess.run(["pulseaudio", "--kill"], env=env, timeout=10, capture_output=True)
    except (subprocess.SubprocessError, OSError):
        pass
    deadline = time.monotonic() + 5
    while pid is not None and time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    if pid is not None:  # --kill failed or timed out
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def speech(tmp_path) -> np.ndarray:
    wav = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "Hello, this is a test of the live avatar."],
                   check=True, timeout=30, capture_output=True)
    return decode_audio(wav, RATE)


def feed_fifo(fifo: Path, pcm: np.ndarray, stop: threading.Event) -> None:
    """Write float32 [n] as s16le in 20 ms chunks at real-time pace, like a microphone would."""
    data = (np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes()
    chunk = RATE // 50 * 2
    fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # the source holds the read end: no hang
    t0 = time.monotonic()
    try:
        for i, start in enumerate(range(0, len(data), chunk)):
            if stop.is_set():
                break
            piece = memoryview(data)[start:start + chunk]
            while piece and not stop.is_set():
                try:
                    piece = piece[os.write(fd, piece):]
                except BlockingIOError:
                    time.sleep(0.005)
            time.sleep(max(0.0, t0 + (i + 1) * 0.02 - time.monotonic()))
    finally:
        os.close(fd)


def test_spoken_audio_through_pulseaudio_reaches_engine_and_camera(
        virtual_mic, make_window, face_png, tmp_path, qtbot, monkeypatch):  # noqa: F811
    import pyvirtualcam
    from pyvirtualcam import camera as pvc

    monkeypatch.setattr(pvc, "BACKENDS", {})
    pyvirtualcam.register_backend("avacast-test", FakeCamera)
    FakeCamera.instances.clear()
    voice = speech(tmp_path)
    silence = np.zeros(RATE, np.float32)
    pcm = np.concatenate([silence, voice, silence])  # [n] 16 kHz
    seconds = pcm.size / RATE

    w = make_window(source_factory=None)
    w.settings.audio.use_file = False
    w.settings.audio.input_device = "pulse"
    w.settings.output.vcam_enabled = True
    w.settings.output.passthrough_enabled = True  # delayed voice to the virtual cable
    w.settings.output.passthrough_device = "pulse"
    w.avatar_panel.add_files([str(face_png)])
    energy = {"in": 0.0, "samples": 0}
    real_open = w.bridge.engine.open_session

    def open_counting(refs, seed=0, **kw):  # measure what the engine session itself receives
        session = real_open(refs, seed=seed, **kw)
        push = session.push_audio

        def counted(samples, sample_rate):
            energy["in"] += float(np.dot(samples, samples))
            energy["samples"] += samples.size
            push(samples, sample_rate)
        session.push_audio = counted
        return session
    monkeypatch.setattr(w.bridge.engine, "open_session", open_counting)

    assert w.start(), w.messages.label.text()
    qtbot.waitUntil(lambda: w.bridge.state == "running", timeout=60_000)
    stop = threading.Event()
    writer = threading.Thread(target=feed_fifo, args=(virtual_mic, pcm, stop), daemon=True)
    writer.start()
    try:
        writer.join(timeout=seconds + 20)
        assert not writer.is_alive(), "FIFO writer stalled"
        qtbot.wait(1500)  # the last blocks: pipeline latency
        stats = w.bridge.runner.stats()
        passthrough = w.outputs.passthrough
        assert passthrough is not None, (w.outputs.passthrough_error, w.settings.output, w.messages.label.text())
        line = passthrough.delay_line
        assert line._write >= 0.8 * seconds * line.sample_rate  # the mic fed the delay line
        assert abs(line.delay_s * 1000 - stats.latency_p50_ms) < 200  # follows measured latency
    finally:
        stop.set()
        w.stop()
    cam = FakeCamera.instances[-1]
    expected = seconds * 25
    assert stats.frames_out >= 0.5 * expected, stats.line()
    assert cam.frames >= 0.5 * expected and cam.closed
    voice_energy = float(np.dot(voice, voice))
    assert energy["samples"] >= 0.8 * pcm.size
    assert energy["in"] > 0.3 * voice_energy, (energy, voice_energy)  # speech passed the gate
    assert w.bridge.gate is not None
