"""Phoneme and viseme classes for the phonetic pretext task, and per-mel-frame labels (issue 4).

espeak-ng's English mnemonics map to the 39 ARPAbet phonemes + SIL; phonemes group into the 15 visemes
of the Oculus/MPEG-4 style lip-sync set (silence + 14 mouth shapes), which is what lip sync needs.
Pure functions and tables (DESIGN.md §5.6).
"""
from __future__ import annotations

import numpy as np

PHONEMES = ("SIL AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y"
            " Z ZH").split()
VISEMES = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou")
_VISEME_OF = {
    "sil": "SIL", "PP": "P B M", "FF": "F V", "TH": "TH DH", "DD": "T D", "kk": "K G NG HH",
    "CH": "CH JH SH ZH", "SS": "S Z", "nn": "N L", "RR": "R ER", "aa": "AA AE AH AY AW", "E": "EH EY",
    "ih": "IH IY Y", "oh": "AO OW OY", "ou": "UH UW W",
}
# phoneme class -> viseme class  [len(PHONEMES)]
PHONEME_TO_VISEME = np.array([next(VISEMES.index(v) for v, ps in _VISEME_OF.items() if p in ps.split())
                              for p in PHONEMES], np.int64)

# espeak-ng mnemonic (en, en-us, en-gb-*, en-029 dictionaries) -> ARPAbet
_ESPEAK = {
    "a": "AE", "a#": "AH", "aa": "AA", "A:": "AA", "A@": "AA", "0": "AA", "V": "AH", "@": "AH", "@2": "AH",
    "@5": "AH", "@-": "AH", "O:": "AO", "O@": "AO", "o@": "AO", "O": "AO", "aU": "AW", "aI": "AY", "aI@": "AY",
    "aI3": "AY", "E": "EH", "e": "EH", "e@": "EH", "3": "ER", "3:": "ER", "VR": "ER", "eI": "EY", "I": "IH",
    "I2": "IH", "I#": "IH", "i@": "IH", "i@3": "IH", "i:": "IY", "i": "IY", "oU": "OW", "@U": "OW", "o": "OW",
    "OI": "OY", "U": "UH", "U@": "UH", "u:": "UW", "u": "UW", "b": "B", "tS": "CH", "d": "D", "D": "DH",
    "f": "F", "g": "G", "h": "HH", "dZ": "JH", "k": "K", "x": "K", "l": "L", "@L": "L", "l-": "L", "m": "M",
    "m-": "M", "n": "N", "n-": "N", "N": "NG", "p": "P", "r": "R", "r-": "R", "s": "S", "S": "SH", "t": "T",
    "t#": "T", "?": "T", "T": "TH", "v": "V", "w": "W", "W": "W", "j": "Y", "z": "Z", "Z": "ZH",
}


def phoneme_class(name: str) -> int | None:
    """espeak mnemonic -> PHONEMES index; None for modifiers (';') and unknown names, which continue the
    previous phoneme. Stress/allophone suffixes (t2, t[, O2, aI2) fall back to the bare mnemonic."""
    if name.startswith("_"):
        return 0
    for cand in (name, name.rstrip("0123456789#[;-") or name):
        if cand in _ESPEAK:
            return PHONEMES.index(_ESPEAK[cand])
    return None


def segment_classes(names: list[str]) -> np.ndarray:
    """[P] mnemonics -> [P] phoneme classes; unknown names take the class before them (SIL at the start)."""
    out, prev = np.zeros(len(names), np.int64), 0
    for i, n in enumerate(names):
        c = phoneme_class(n)
        prev = prev if c is None else c
        out[i] = prev
    return out


def label_samples(m: np.ndarray, hop: int, win: int, delay: int) -> np.ndarray:
    """Sample whose phoneme labels mel frame m: the centre of the window of frame m - delay.
    Mel frame m's window ends at sample (m+1)*hop (engine.audio.mel), so its centre is win/2 earlier."""
    return (m - delay + 1) * hop - win // 2


def frame_labels(starts: np.ndarray, classes: np.ndarray, n_frames: int, hop: int, win: int,
                 delay: int = 0, first_frame: int = 0) -> np.ndarray:
    """Class per mel frame [n_frames] from segments (starts [P] non-decreasing samples, classes [P]);
    samples before starts[0] are class 0 (silence)."""
    s = label_samples(np.arange(first_frame, first_frame + n_frames), hop, win, delay)
    idx = np.searchsorted(starts, s, side="right") - 1  # last segment starting at or before s
    return np.where(idx >= 0, classes[np.clip(idx, 0, None)], 0)
