"""espeak-ng through ctypes: speech with the exact start sample of every phoneme (issue 4).

The C library reports a PHONEME event (espeakINITIALIZE_PHONEME_EVENTS) carrying the output sample at
which the wave generator starts that phoneme. Checked against the waveform: energy starts/stops within
the 5 ms after the event's sample at pause<->speech boundaries (tests/engine/train/test_phonetic.py).
One correction: espeak emits the silent closure before a stop (p, t, k, tS ...) ahead of that stop's event,
so it would count as the previous phoneme; `synthesize` moves a stop's start back over the digital
silence just before it (the closed lips are the stop's mouth shape). The CLI's `-x`/`-X` print phonemes
but no timings, and `--pho` needs an MBROLA voice, so the library
is the one exact source. The library keeps global state: one process synthesizes one text at a time.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
from dataclasses import dataclass

import numpy as np

from engine.audio.resample import resample
from engine.config import SAMPLE_RATE

_SYNCHRONOUS = 2  # AUDIO_OUTPUT_SYNCHRONOUS: the callback receives the samples
_PHONEME_EVENTS = 0x0001  # espeakINITIALIZE_PHONEME_EVENTS
_DONT_EXIT = 0x8000  # espeakINITIALIZE_DONT_EXIT: report errors instead of exiting the process
_EV_END, _EV_PHONEME = 0, 7  # espeakEVENT_LIST_TERMINATED, espeakEVENT_PHONEME
_RATE, _PITCH, _RANGE = 1, 3, 4  # espeak_PARAMETER


class EspeakError(RuntimeError):
    """espeak-ng is missing or refused a voice/text."""


class _Event(ctypes.Structure):  # espeak_EVENT (speak_lib.h)
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice (`en-us+f3`: language + variant) and its prosody."""

    name: str = "en-us"
    rate: int = 175  # words per minute
    pitch: int = 50  # 0..100
    pitch_range: int = 50  # 0..100


@dataclass
class Utterance:
    audio: np.ndarray  # [S] float32 at 16 kHz
    starts: np.ndarray  # [P] int64 start sample (16 kHz) of each phoneme, non-decreasing, starts[0] == 0
    phonemes: list[str]  # [P] espeak mnemonics; "_..." are pauses


class _Engine:
    def __init__(self, lib: ctypes.CDLL):
        self.lib = lib
        self.rate = lib.espeak_Initialize(_SYNCHRONOUS, 0, None, _PHONEME_EVENTS | _DONT_EXIT)
        if self.rate <= 0:
            raise EspeakError("espeak_Initialize failed (espeak-ng-data missing?)")
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, str]] = []
        self._cb = _CALLBACK(self._on_audio)  # kept alive as long as the engine
        lib.espeak_SetSynthCallback(self._cb)

    def _on_audio(self, wav, n, events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
        i = 0
        while events[i].type != _EV_END:
            e = events[i]
            if e.type == _EV_PHONEME:
                self._events.append((e.sample, bytes(e.id).split(b"\0")[0].decode("ascii", "replace")))
            i += 1
        return 0

    def synth(self, text: str, voice: Voice) -> tuple[np.ndarray, list[tuple[int, str]]]:
        """-> (int16 samples at self.rate, [(start sample, phoneme)])."""
        if self.lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
            raise EspeakError(f"espeak-ng has no voice {voice.name!r}")
        for param, value in ((_RATE, voice.rate), (_PITCH, voice.pitch), (_RANGE, voice.pitch_range)):
            self.lib.espeak_SetParameter(param, int(value), 0)
        self._chunks, self._events = [], []
        data = text.encode("utf-8") + b"\0"
        if self.lib.espeak_Synth(data, len(data), 0, 0, 0, 1, None, None) != 0:  # 1: espeakCHARS_UTF8
            raise EspeakError(f"espeak_Synth failed on {text[:40]!r}")
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return audio, list(self._events)


@functools.lru_cache(maxsize=1)
def _engine() -> _Engine:
    path = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise EspeakError(f"libespeak-ng not found ({e}); install espeak-ng") from None
    return _Engine(lib)


def available() -> str | None:
    """None when espeak-ng works, else the reason it does not."""
    try:
        _engine()
    except EspeakError as e:
        return str(e)
    return None


STOPS = ("p", "t", "k", "b", "d", "g", "tS", "dZ", "t#", "t2", "t[", "d#", "?")
_MAX_CLOSURE_S = 0.12


def closure_starts(pcm: np.ndarray, events: list[tuple[int, str]], rate: int) -> list[int]:
    """Event samples, with each stop's start moved back over the run of zeros (>= 2 ms) before it."""
    out = []
    for i, (s, name) in enumerate(events):
        prev = out[-1] if out else 0
        if name in STOPS and i and not events[i - 1][1].startswith("_"):
            lo = max(prev, s - int(_MAX_CLOSURE_S * rate))
            nz = np.flatnonzero(pcm[lo:s])
            start = lo + (int(nz[-1]) + 1 if len(nz) else 0)
            s = start if s - start >= rate // 500 else s
        out.append(s)
    return out


def synthesize(text: str, voice: Voice = Voice()) -> Utterance:
    """Speak `text` -> 16 kHz float audio with exact phoneme start samples."""
    eng = _engine()
    pcm, events = eng.synth(text, voice)
    audio = resample(pcm.astype(np.float32) / 32768.0, eng.rate, SAMPLE_RATE)
    scale = SAMPLE_RATE / eng.rate
    starts = [0] + [min(int(round(s * scale)), len(audio)) for s in closure_starts(pcm, events, eng.rate)]
    names = ["_"] + [p for _, p in events]  # before the first event: leading silence
    starts_arr = np.maximum.accumulate(np.asarray(starts, np.int64))
    return Utterance(audio.astype(np.float32), starts_arr, names)
