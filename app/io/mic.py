"""Microphone source over sounddevice (PortAudio), same callback shape as the app's other sources.

`MicSource(device).start(on_audio)` calls `on_audio(samples float32 [n], sample_rate)` from the
PortAudio thread every `block_ms`; the callback must only copy (the runner's `push_audio` does).
"""
from __future__ import annotations

import logging
import platform
from typing import Any, Callable

import numpy as np

log = logging.getLogger(__name__)
AudioCallback = Callable[[np.ndarray, int], None]


class MicUnavailable(RuntimeError):
    """No usable microphone or audio library; the message says what to do, in one or two lines."""


def install_hint() -> str:
    if platform.system() == "Linux":
        return ("install PortAudio and sounddevice: sudo apt install libportaudio2 && "
                "pip install sounddevice")
    return "install sounddevice: pip install sounddevice"


def _sounddevice() -> Any:
    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:  # OSError: the wheel is there but PortAudio is not
        raise MicUnavailable(f"microphone input unavailable ({exc}); {install_hint()}") from None
    return sd


def list_inputs() -> list[str]:
    """Names of input devices, for `--mic` help and the settings panel."""
    sd = _sounddevice()
    return [d["name"] for d in sd.query_devices() if d.get("max_input_channels", 0) > 0]


def _resolve(sd: Any, device: str | int | None) -> int | None:
    """None/"default" -> the system default; an int or digits -> that index; else a name substring."""
    if device is None or device == "default":
        return None
    if isinstance(device, int) or str(device).isdigit():
        return int(device)
    devices = sd.query_devices()
    for i, d in enumerate(devices):
        if d.get("max_input_channels", 0) > 0 and str(device).lower() in d["name"].lower():
            return i
    names = ", ".join(d["name"] for d in devices if d.get("max_input_channels", 0) > 0) or "none"
    raise MicUnavailable(f"no input device matches {device!r}; inputs: {names}")


class MicSource:
    def __init__(self, device: str | int | None = None, sample_rate: int | None = None,
                 block_ms: int = 20) -> None:
        self._sd = _sounddevice()
        try:
            self.device = _resolve(self._sd, device)
            info = self._sd.query_devices(self.device, "input")
        except MicUnavailable:
            raise
        except Exception as exc:  # PortAudioError, ValueError: no such/default device
            raise MicUnavailable(f"no usable microphone ({exc}); connect one or pick another with "
                                 "--mic DEVICE (python -m sounddevice lists them)") from None
        self.name = info["name"]
        self.sample_rate = int(sample_rate or info["default_samplerate"])
        self.block = max(1, self.sample_rate * block_ms // 1000)
        self.overflows = 0  # PortAudio input overflows (the OS dropped mic audio)
        self._stream: Any = None

    def start(self, on_audio: AudioCallback) -> None:
        def callback(indata: np.ndarray, frames: int, t: Any, status: Any) -> None:
            if status and status.input_overflow:
                self.overflows += 1
            try:
                on_audio(indata[:, 0].copy(), self.sample_rate)  # [n, 1] -> [n]
            except Exception:  # never raise into PortAudio's thread
                log.exception("microphone callback failed")

        try:
            self._stream = self._sd.InputStream(device=self.device, channels=1, dtype="float32",
                                                samplerate=self.sample_rate, blocksize=self.block,
                                                callback=callback)
            self._stream.start()
        except Exception as exc:
            self._stream = None
            raise MicUnavailable(f"cannot open {self.name!r}: {exc}") from None

    def stop(self) -> None:
        if self._stream is not None:
            # abort, not stop: stop() waits for pending buffers, and a stalled device (a paused
            # virtual mic, an unplugged USB mic) never delivers them, freezing the caller for
            # tens of seconds; an input stream has nothing worth draining.
            self._stream.abort()
            self._stream.close()
            self._stream = None
