"""User settings: what the panels show, with a schema version (DESIGN.md §5.2).

Separate from `EngineConfig`: these are the user's choices (devices, gate, avatars, output), stored as
JSON under the config dir. Writes are atomic (temp file + `os.replace`), so a crash mid-write never
leaves a half file. A file that cannot be read is kept as `settings.json.bad-<timestamp>` and defaults
are used; `load_settings` returns a notice for the UI to show.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app import paths

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MAX_IMAGES = 8
RESOLUTIONS = ("512", "720p")


@dataclass
class AudioSettings:
    input_device: str | None = None  # sounddevice device name; None = system default
    gate_threshold_db: float = -45.0  # blocks quieter than this (dBFS RMS) become silence
    gate_hold_ms: int = 250  # gate stays open this long after the last loud block
    use_file: bool = False  # feed an audio file instead of the microphone
    input_file: str | None = None

    def validate(self) -> None:
        _check(-90.0 <= self.gate_threshold_db <= 0.0, "gate threshold must be in [-90, 0] dB")
        _check(0 <= self.gate_hold_ms <= 5000, "gate hold must be in [0, 5000] ms")


@dataclass
class OutputSettings:
    vcam_enabled: bool = False
    vcam_resolution: str = "512"  # "512" (512x512) or "720p" (1280x720, letterboxed)
    mirror: bool = False
    passthrough_enabled: bool = False  # delayed mic pass-through for A/V sync (DESIGN.md §3)
    passthrough_device: str | None = None

    def validate(self) -> None:
        _check(self.vcam_resolution in RESOLUTIONS, f"resolution must be one of {RESOLUTIONS}")


@dataclass
class EngineSettings:
    steps: int | None = None  # None = the model's own default
    cfg: float | None = None
    identity_hold: float | None = None  # 0-1; None = the model's own default
    use_driver: bool | None = None  # the model's driver face moves the portrait; None = the model's own default
    weights: str | None = None  # None = the shipped default model

    def validate(self) -> None:
        _check(self.steps is None or 1 <= self.steps <= 50, "steps must be in [1, 50]")
        _check(self.cfg is None or 0.0 <= self.cfg <= 10.0, "cfg must be in [0, 10]")
        _check(self.identity_hold is None or 0.0 <= self.identity_hold <= 1.0, "identity_hold must be in [0, 1]")
        _check(self.use_driver is None or isinstance(self.use_driver, bool), "use_driver must be true, false or null")


@dataclass
class ImageEntry:
    file: str  # file name inside the avatar's data folder (a copy; see app.avatars)
    crop: tuple[int, int, int] | None = None  # square crop (x, y, size) in source pixels

    def validate(self) -> None:
        _check(bool(self.file) and "/" not in self.file and "\\" not in self.file, "bad image name")
        if self.crop is not None:
            _check(len(self.crop) == 3 and all(isinstance(v, int) for v in self.crop), "bad crop")
            _check(self.crop[2] > 0, "crop size must be positive")


@dataclass
class Avatar:
    id: str
    name: str
    images: list[ImageEntry] = field(default_factory=list)

    def validate(self) -> None:
        _check(bool(self.id) and self.id.isalnum(), "bad avatar id")
        _check(len(self.images) <= MAX_IMAGES, f"an avatar holds at most {MAX_IMAGES} images")
        for image in self.images:
            image.validate()


@dataclass
class Settings:
    schema: int = SCHEMA_VERSION
    audio: AudioSettings = field(default_factory=AudioSettings)
    output: OutputSettings = field(default_factory=OutputSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    avatars: list[Avatar] = field(default_factory=list)
    active_avatar: str | None = None

    def validate(self) -> None:
        _check(self.schema == SCHEMA_VERSION, f"unsupported settings schema {self.schema}")
        self.audio.validate()
        self.output.validate()
        self.engine.validate()
        for avatar in self.avatars:
            avatar.validate()
        ids = [a.id for a in self.avatars]
        _check(len(ids) == len(set(ids)), "duplicate avatar ids")

    def avatar(self, avatar_id: str | None) -> Avatar | None:
        return next((a for a in self.avatars if a.id == avatar_id), None)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Settings":
        """Strict: unknown keys or wrong types raise ValueError (the file is then kept aside)."""
        _check(isinstance(raw, dict), "settings must be a JSON object")
        _check(raw.get("schema") == SCHEMA_VERSION, f"unsupported settings schema {raw.get('schema')!r}")
        avatars = []
        for a in raw.get("avatars", []):
            a = dict(_obj(a, "avatar"))
            images = [_build(ImageEntry, _obj(i, "image")) for i in a.pop("images", [])]
            for image in images:  # JSON turns the crop tuple into a list
                image.crop = tuple(image.crop) if image.crop is not None else None
            avatars.append(_build(Avatar, {**a, "images": images}))
        settings = cls(
            schema=SCHEMA_VERSION,
            audio=_build(AudioSettings, _obj(raw.get("audio", {}), "audio")),
            output=_build(OutputSettings, _obj(raw.get("output", {}), "output")),
            engine=_build(EngineSettings, _obj(raw.get("engine", {}), "engine")),
            avatars=avatars,
            active_avatar=raw.get("active_avatar"),
        )
        extra = set(raw) - {f.name for f in dataclasses.fields(cls)}
        _check(not extra, f"unknown settings keys {sorted(extra)}")
        settings.validate()
        return settings


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(msg)


def _obj(value: Any, what: str) -> dict[str, Any]:
    _check(isinstance(value, dict), f"{what} must be a JSON object")
    return value


def _build(kind: type, raw: dict[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = set(raw) - names
    _check(not unknown, f"unknown {kind.__name__} keys {sorted(unknown)}")
    try:
        return kind(**raw)
    except TypeError as exc:  # missing required field
        raise ValueError(f"bad {kind.__name__}: {exc}") from None


def load_settings(path: Path | None = None) -> tuple[Settings, str | None]:
    """Read settings; returns (settings, notice). The notice is None unless the file was unusable."""
    path = path or paths.settings_path()
    if not path.exists():
        return Settings(), None
    try:
        return Settings.from_dict(json.loads(path.read_text(encoding="utf-8"))), None
    except (ValueError, TypeError, UnicodeDecodeError, OSError) as exc:
        backup = path.with_name(f"{path.name}.bad-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            os.replace(path, backup)
        except OSError:
            log.exception("could not move the unreadable settings file aside")
            backup = path
        log.warning("settings file %s unusable (%s); using defaults", path, exc)
        return Settings(), (f"Your settings file could not be read ({exc}); defaults are in use. "
                            f"The old file was kept as {backup.name}.")


def save_settings(settings: Settings, path: Path | None = None) -> None:
    """Atomic write: a reader sees either the old file or the new one, never a half-written one."""
    settings.validate()
    path = path or paths.settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(settings.to_dict(), indent=2, sort_keys=True)
    fd, tmp = tempfile.mkstemp(prefix=".settings-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
