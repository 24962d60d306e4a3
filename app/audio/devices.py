"""Sound device listing and the A/V-sync pass-through output (sounddevice, imported lazily).

PortAudio may be missing (no libportaudio2) or have no devices (headless box); the app then works
with an audio file and says so, instead of failing at start-up.
"""
from __future__ import annotations

import logging

import numpy as np

from app.audio.processing import DelayLine

log = logging.getLogger(__name__)


def _sd():
    import sounddevice

    return sounddevice


def list_devices(kind: str) -> tuple[list[str], str | None]:
    """Names of input ("input") or output ("output") devices, and an error line if listing failed."""
    key = "max_input_channels" if kind == "input" else "max_output_channels"
    try:
        devices = _sd().query_devices()
    except (OSError, ImportError) as exc:  # PortAudio library missing
        return [], f"Sound devices unavailable ({exc}); install PortAudio (libportaudio2)."
    except Exception as exc:  # PortAudioError: no host API etc.
        return [], f"Sound devices unavailable: {exc}"
    names = [d["name"] for d in devices if d[key] > 0]
    return list(dict.fromkeys(names)), None  # ALSA lists some names twice


class Passthrough:
    """Plays the delayed microphone on an output device (e.g. a virtual audio cable).

    The output callback only copies from the delay line (DESIGN.md §3: callbacks never compute).
    """

    def __init__(self, device: str | None, sample_rate: int, delay_s: float):
        self.delay_line = DelayLine(sample_rate, delay_s)
        self._stream = _sd().OutputStream(device=device, samplerate=sample_rate, channels=1,
                                          dtype="float32", callback=self._callback)

    def _callback(self, outdata: np.ndarray, frames: int, time_info, status) -> None:
        self.delay_line.read(outdata[:, 0])  # outdata [frames, 1]

    def set_delay(self, delay_s: float) -> None:
        self.delay_line.set_delay(delay_s)

    def start(self) -> None:
        self._stream.start()

    def close(self) -> None:
        self._stream.abort()  # don't wait for the delayed tail to play out
        self._stream.close()
